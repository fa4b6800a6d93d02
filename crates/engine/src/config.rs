//! What the engine stores for a container: its configuration (decided at
//! create time, Docker's `Config` + `HostConfig` in one) and its state
//! (owned by the monitor while it runs). Both are kept as JSON in the
//! store's container row.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// rlimit name without `RLIMIT_` (`nofile`).
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The seccomp setting of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SeccompSetting {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A custom Docker-format profile (its JSON, read at create time).
    Profile(String),
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address ("" = all).
    pub host_ip: String,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The host port was not given: berth picked it (Docker's `HostPort: ""`
    /// in `HostConfig.PortBindings`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub picked: bool,
}

impl PortMapping {
    /// Parse one `-p` value: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`.
    /// A missing host port, or host port 0 (as Docker takes it:
    /// testcontainers-node sends `HostPort: "0"`), is 0 (picked at create).
    /// A bad one is refused in Docker's words (go-connections' `nat`).
    pub fn parse(spec: &str) -> Result<Vec<PortMapping>, String> {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p),
            None => (spec, "tcp"),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, cont) = match parts.as_slice() {
            [c] => ("", "", *c),
            [h, c] => ("", *h, *c),
            [i, h, c] => (*i, *h, *c),
            _ => {
                return Err(format!(
                    "invalid port specification {spec:?}: expected [ip:][hostPort:]containerPort[/proto]"
                ))
            }
        };
        if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!("Invalid ip address: {ip}"));
        }
        if cont.is_empty() {
            return Err(format!("No port specified: {spec}<empty>"));
        }
        let range = |s: &str| -> Option<(u16, u16)> {
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
            (a != 0 && b >= a).then_some((a, b))
        };
        let (c0, c1) = range(cont).ok_or_else(|| format!("Invalid containerPort: {cont}"))?;
        let host_range = if host.is_empty() || host == "0" {
            None
        } else {
            Some(range(host).ok_or_else(|| format!("Invalid hostPort: {host}"))?)
        };
        if let Some((h0, h1)) = host_range {
            if h1 - h0 != c1 - c0 {
                return Err(format!(
                    "Invalid ranges specified for container and host Ports: {cont} and {host}"
                ));
            }
        }
        let proto = proto.to_ascii_lowercase();
        if proto != "tcp" && proto != "udp" {
            return Err(format!("Invalid proto: {proto}"));
        }
        Ok((0..=(c1 - c0))
            .map(|i| PortMapping {
                host_ip: ip.to_string(),
                host_port: host_range.map(|(h0, _)| h0 + i).unwrap_or(0),
                container_port: c0 + i,
                proto: proto.clone(),
                picked: false,
            })
            .collect())
    }
}

/// What a mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    /// A named (or anonymous) volume.
    #[default]
    Volume,
    /// A host path.
    Bind,
    /// A fresh tmpfs.
    Tmpfs,
}

impl MountType {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Volume => "volume",
            MountType::Bind => "bind",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

/// One `-v`, `--mount`, `--volumes-from` mount or image `VOLUME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MountSpec {
    /// Volume, bind or tmpfs.
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Volume name or host path (empty for tmpfs).
    pub source: String,
    /// Where it appears in the container.
    pub target: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// Do not fill an empty volume from the image (`volume-nocopy`).
    pub nocopy: bool,
    /// `rprivate` (default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    pub propagation: String,
    /// `tmpfs-size` in bytes.
    pub tmpfs_size: Option<u64>,
    /// `tmpfs-mode`.
    pub tmpfs_mode: Option<u32>,
    /// `:U`: chown the volume to the container's user at start.
    pub chown: bool,
    /// `:idmap` (podman's): in a user namespace, mounted with the
    /// container's id mapping (volumes always are).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idmap: bool,
    /// A volume made for this container alone (removed by `rm -v`).
    pub anonymous: bool,
    /// `-v` spelling (Docker's `HostConfig.Binds`), empty for `--mount`.
    pub bind_spec: String,
    /// `volume-subpath`: a path inside the volume mounted instead of its
    /// root (relative, must exist).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// `--network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace: loopback, plus the bridge networks in
    /// [`ContainerConfig::networks`] (none: `--network none`).
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// The network namespace of another container (its id).
    Container(String),
}

impl NetworkMode {
    /// Docker's `HostConfig.NetworkMode` for a container on `networks`.
    pub fn docker_name(&self, networks: &[String]) -> String {
        match self {
            NetworkMode::None => match networks.first() {
                Some(n) if n == "bridge" => "bridge".into(),
                Some(n) => n.clone(),
                None => "none".into(),
            },
            NetworkMode::Host => "host".into(),
            NetworkMode::Container(id) => format!("container:{id}"),
        }
    }
}

/// An endpoint's settings beyond its IPv4 address and MAC (Docker's
/// `EndpointSettings.IPAMConfig.IPv6Address`/`LinkLocalIPs`, `DriverOpts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EndpointExtra {
    /// `--ip6`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
    /// `--link-local-ip`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    /// The endpoint's driver options (shown; the bridge driver ignores
    /// them, as Docker's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

impl EndpointExtra {
    /// Nothing asked for.
    pub fn is_empty(&self) -> bool {
        self == &EndpointExtra::default()
    }
}

/// One line of a user namespace's id map (OCI's `LinuxIDMapping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    /// First id inside the container.
    pub container_id: u32,
    /// The host id it is.
    pub host_id: u32,
    /// How many ids.
    pub size: u32,
}

impl IdMapping {
    /// The host id of the container's `id` in `map`, if it maps it.
    pub fn host_of(map: &[IdMapping], id: u32) -> Option<u32> {
        map.iter()
            .find(|r| id >= r.container_id && id - r.container_id < r.size)
            .map(|r| r.host_id + (id - r.container_id))
    }
}

/// The container's user namespace (`--userns`, `--uidmap`, `--gidmap`),
/// decided at create: an `auto` range is allocated then and recorded here,
/// so no other container is given it while this one exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct UserNs {
    /// The mode as given (`auto`, `auto:size=1024`, `host`; `private` for
    /// explicit maps), Docker's `HostConfig.UsernsMode`.
    pub mode: String,
    /// The uid map; empty: the host's user namespace.
    pub uid_map: Vec<IdMapping>,
    /// The gid map.
    pub gid_map: Vec<IdMapping>,
}

impl UserNs {
    /// No user namespace and no mode given (left out of the stored config).
    pub fn is_host(&self) -> bool {
        self.mode.is_empty() && self.uid_map.is_empty()
    }

    /// Does the container get a user namespace of its own?
    pub fn is_private(&self) -> bool {
        !self.uid_map.is_empty()
    }

    /// The host ids `(uid, gid)` of the container's `uid`/`gid` (as they
    /// are without a user namespace).
    pub fn host_ids(&self, uid: u32, gid: u32) -> (u32, u32) {
        if !self.is_private() {
            return (uid, gid);
        }
        (
            IdMapping::host_of(&self.uid_map, uid).unwrap_or(65534),
            IdMapping::host_of(&self.gid_map, gid).unwrap_or(65534),
        )
    }
}

/// Everything a container was created with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ContainerConfig {
    /// The image as the user named it.
    pub image: String,
    /// Hostname (defaults to the short id).
    pub hostname: String,
    /// `--domainname` (NIS domain name of the container's UTS namespace).
    pub domainname: String,
    /// `user[:group]` as given (or from the image).
    pub user: String,
    /// Environment, image's first then `-e`/`--env-file`.
    pub env: Vec<String>,
    /// Command (image CMD unless given).
    pub cmd: Vec<String>,
    /// Entrypoint (image ENTRYPOINT unless `--entrypoint`).
    pub entrypoint: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Labels, image's then `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `--stop-signal` (or the image's), as a name.
    pub stop_signal: String,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<i64>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--network`.
    pub network_mode: NetworkMode,
    /// User-defined networks (`--network NAME`), by name; the first one
    /// has the default route.
    #[serde(default)]
    pub networks: Vec<String>,
    /// `-p` / `-P`, host ports resolved.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// `-P` was given (Docker's `HostConfig.PublishAllPorts`).
    #[serde(default)]
    pub publish_all: bool,
    /// Docker's `Config.ExposedPorts`: the image's, `--expose` and the
    /// published ports, as `PORT/PROTO`, sorted.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// `--network-alias`: more names on the (first) network.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `network connect --alias`: names on a connected network (by name).
    #[serde(default)]
    pub connect_aliases: BTreeMap<String, Vec<String>>,
    /// `network connect --ip`: the address asked for on a connected network.
    #[serde(default)]
    pub connect_ips: BTreeMap<String, String>,
    /// `--ip` on the first network.
    #[serde(default)]
    pub ip: Option<String>,
    /// `--mac-address`.
    #[serde(default)]
    pub mac_address: Option<String>,
    /// `--dns`.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--dns-search`.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host name:ip` (host-gateway resolved).
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs dest[:options]`.
    pub tmpfs: BTreeMap<String, String>,
    /// `--shm-size` in bytes (0: Docker's 64 MiB).
    pub shm_size: u64,
    /// `--pid`: "" (its own namespace) or "host".
    pub pid_mode: String,
    /// `--ipc`: "" (private), "none", "private", "shareable", "host" or `container:ID`.
    pub ipc_mode: String,
    /// `--sysctl` (namespaced ones only).
    pub sysctls: BTreeMap<String, String>,
    /// Volumes, binds and tmpfs mounts (`-v`, `--mount`, `--volumes-from`,
    /// the image's `VOLUME`s), in the order given.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `--memory` in bytes (0 = unlimited).
    pub memory: i64,
    /// `--memory-swap` in bytes (0 = default, -1 = unlimited).
    pub memory_swap: i64,
    /// `--memory-reservation` in bytes (0 = none): a soft limit.
    pub memory_reservation: i64,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: u64,
    /// `--pids-limit` (0 = unlimited).
    pub pids_limit: i64,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// Effective capability mask after `--cap-add/--cap-drop/--privileged`.
    pub capabilities: u64,
    /// `--cap-add` as given.
    pub cap_add: Vec<String>,
    /// `--cap-drop` as given.
    pub cap_drop: Vec<String>,
    /// `--security-opt` as given.
    pub security_opt: Vec<String>,
    /// Seccomp choice.
    pub seccomp: SeccompSetting,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--init`.
    pub init: bool,
    /// `--runtime` (`berth` = built in).
    pub runtime: String,
    /// `--restart`.
    #[serde(default)]
    pub restart_policy: crate::restart::RestartPolicy,
    /// The healthcheck (the image's, overridden by `--health-*`); `None`
    /// or a `["NONE"]` test: no probes.
    #[serde(default)]
    pub healthcheck: Option<crate::health::HealthConfig>,
    /// `--health-on-failure`.
    #[serde(default)]
    pub health_on_failure: crate::health::OnFailure,
    /// `--log-driver` and `--log-opt`.
    #[serde(default)]
    pub log_config: crate::logs::LogConfig,
    /// Layer dirs over the image's, top last (a build's RUN step on a
    /// layer whose digest is still being computed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_layers: Vec<std::path::PathBuf>,
    /// `--group-add`: supplementary groups, names (looked up in the
    /// container's /etc/group at start, as Docker does) or numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// `--uts`: "" (its own UTS namespace) or "host".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uts_mode: String,
    /// `--device-cgroup-rule`: more devices the container may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<DeviceRule>,
    /// `--device`: host devices made in the container (Docker's
    /// `HostConfig.Devices`), as given; resolved at each start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceMapping>,
    /// `--isolation` (Linux knows only `default`), as given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    /// `--volumes-from` as given (Docker's `HostConfig.VolumesFrom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// `--cpuset-cpus`: the CPUs it may run on (`0-2,4`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpuset_cpus: String,
    /// `--cpuset-mems`: the memory nodes it may use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpuset_mems: String,
    /// `--blkio-weight`, `--blkio-weight-device`, `--device-read-bps` …
    /// (what this host's kernel takes; the rest was discarded at create).
    #[serde(default, skip_serializing_if = "is_no_blkio")]
    pub blkio: crate::blkio::BlkioLimits,
    /// `--volume-driver` (Docker's `HostConfig.VolumeDriver`): only the
    /// `local` driver exists; kept to be shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub volume_driver: String,
    /// Docker's `HostConfig.NetworkMode`, decided at create and kept when
    /// networks are connected or disconnected later (empty in records made
    /// before it was kept: derived from the networks then).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_mode_name: String,
    /// `network connect` with a MAC address: the address asked for on a
    /// connected network.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connect_macs: BTreeMap<String, String>,
    /// What an endpoint asked for besides its IPv4 address and MAC, by
    /// network name (`--ip6`, `--link-local-ip`, driver options).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_extras: BTreeMap<String, EndpointExtra>,
    /// `--link` on the default bridge (Docker's legacy links).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Links on a user-defined network, by network name: `name:alias` as
    /// given; the alias resolves to that container for this one only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_links: BTreeMap<String, Vec<String>>,
    /// The pod it belongs to (the pod's id), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// It is its pod's infra container (the process that holds the pod's
    /// namespaces), removed only with the pod.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pod_infra: bool,
    /// `--cgroup-parent`, or its pod's cgroup (empty: berth's `/berth`):
    /// its cgroup is `<parent>/<id>` in every hierarchy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    /// `--userns`, `--uidmap`, `--gidmap`.
    #[serde(skip_serializing_if = "UserNs::is_host")]
    pub userns: UserNs,
}

/// One legacy `--link name:alias` on the default bridge: the container
/// gets `ALIAS_*` variables and an /etc/hosts entry for its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Link {
    /// The linked container's id.
    pub target: String,
    /// Its name when the link was made (shown if it is gone).
    pub name: String,
    /// The alias.
    pub alias: String,
}

/// One `--device HOST[:CONTAINER][:PERMISSIONS]` (Docker's
/// `HostConfig.Devices` entry, in its JSON names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// The device (or a directory of devices) on the host.
    #[serde(rename = "PathOnHost")]
    pub path_on_host: String,
    /// Where it is in the container.
    #[serde(rename = "PathInContainer")]
    pub path_in_container: String,
    /// Some of `r`, `w`, `m` (`rwm` when not given).
    #[serde(rename = "CgroupPermissions")]
    pub cgroup_permissions: String,
}

impl DeviceMapping {
    /// The docker CLI's parsing and words: `HOST`, `HOST:CONTAINER`,
    /// `HOST:PERMISSIONS` (a second field that is a mode) or
    /// `HOST:CONTAINER:PERMISSIONS`; both paths absolute.
    pub fn parse(s: &str) -> Result<DeviceMapping, String> {
        let valid_mode = |m: &str| {
            !m.is_empty()
                && m.len() <= 3
                && m.bytes().all(|b| b"rwm".contains(&b))
                && m.bytes()
                    .enumerate()
                    .all(|(i, b)| !m.as_bytes()[..i].contains(&b))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, perms) = match parts.as_slice() {
            [src] => (*src, *src, "rwm"),
            [src, m] if valid_mode(m) => (*src, *src, *m),
            [src, dst] => (*src, *dst, "rwm"),
            [src, dst, m] => {
                if !valid_mode(m) {
                    return Err(format!("bad mode specified: {m}"));
                }
                (*src, *dst, *m)
            }
            _ => return Err(format!("bad format for path: {s}")),
        };
        for p in [dst, src] {
            if !p.starts_with('/') {
                return Err(format!("{p} is not an absolute path"));
            }
        }
        Ok(DeviceMapping {
            path_on_host: src.to_string(),
            path_in_container: dst.to_string(),
            cgroup_permissions: perms.to_string(),
        })
    }

    /// The device nodes it names, found now: the host's node (a symlink
    /// followed), or every node below a directory (`--device /dev/snd`),
    /// each with where it goes in the container. dockerd's words when
    /// there is none.
    pub fn resolve(&self) -> Result<Vec<HostDevice>, String> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let gathering = |e: &dyn std::fmt::Display| {
            format!(
                "error gathering device information while adding custom device {:?}: {e}",
                self.path_on_host
            )
        };
        // The path given is followed if a symlink (as dockerd resolves
        // it); links inside a directory are not devices.
        let node = |host: &std::path::Path, inside: String, follow: bool| -> Option<HostDevice> {
            let m = if follow {
                std::fs::metadata(host)
            } else {
                std::fs::symlink_metadata(host)
            }
            .ok()?;
            let t = m.file_type();
            let kind = if t.is_char_device() {
                'c'
            } else if t.is_block_device() {
                'b'
            } else {
                return None;
            };
            let rdev = m.rdev();
            Some(HostDevice {
                host: host.to_path_buf(),
                inside,
                kind,
                major: nix::sys::stat::major(rdev) as i64,
                minor: nix::sys::stat::minor(rdev) as i64,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            })
        };
        let host = std::path::Path::new(&self.path_on_host);
        let m = std::fs::metadata(host).map_err(|e| {
            gathering(&if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                e.to_string()
            })
        })?;
        if !m.is_dir() {
            return node(host, self.path_in_container.clone(), true)
                .map(|d| vec![d])
                .ok_or_else(|| gathering(&"not a device node"));
        }
        // A directory: its device nodes, below the container path.
        let mut out = Vec::new();
        let mut stack = vec![host.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(host).unwrap_or(&path);
                let inside = std::path::Path::new(&self.path_in_container)
                    .join(rel)
                    .to_string_lossy()
                    .into_owned();
                out.extend(node(&path, inside, false));
            }
        }
        if out.is_empty() {
            return Err(gathering(&"not a device node"));
        }
        out.sort_by(|a, b| a.inside.cmp(&b.inside));
        Ok(out)
    }
}

/// A host device node a [`DeviceMapping`] resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Its path on the host.
    pub host: std::path::PathBuf,
    /// Its path in the container.
    pub inside: String,
    /// `c` or `b`.
    pub kind: char,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

fn is_no_blkio(b: &crate::blkio::BlkioLimits) -> bool {
    !b.any()
}

/// One `--device-cgroup-rule`: `TYPE MAJOR:MINOR ACCESS` (`c 7:128 rwm`,
/// `*` for any number), kept in the spelling given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// `a`, `b` or `c`.
    pub kind: char,
    /// Major number, `None` for `*`.
    pub major: Option<i64>,
    /// Minor number, `None` for `*`.
    pub minor: Option<i64>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl std::str::FromStr for DeviceRule {
    type Err = String;

    /// Docker's format: `^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid device cgroup format '{s}'");
        let parts: Vec<&str> = s.split(' ').collect();
        let [kind, numbers, access] = parts.as_slice() else {
            return Err(bad());
        };
        let kind = match *kind {
            "a" | "b" | "c" => kind.chars().next().unwrap_or('a'),
            _ => return Err(bad()),
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
        let number = |n: &str| -> Result<Option<i64>, String> {
            match n {
                "*" => Ok(None),
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().map(Some).map_err(|_| bad())
                }
                _ => Err(bad()),
            }
        };
        if access.is_empty() || access.len() > 3 || !access.bytes().all(|b| b"rwm".contains(&b)) {
            return Err(bad());
        }
        Ok(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: access.to_string(),
        })
    }
}

impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

impl Serialize for DeviceRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl ContainerConfig {
    /// Docker's `HostConfig.NetworkMode`: as decided at create (derived
    /// from the networks for records made before it was kept).
    pub fn docker_network_mode(&self) -> String {
        if self.network_mode_name.is_empty() {
            self.network_mode.docker_name(&self.networks)
        } else {
            self.network_mode_name.clone()
        }
    }

    /// Was it made with `--network none` (no network may be connected)?
    /// A container whose networks were all disconnected was not.
    pub fn network_none(&self) -> bool {
        self.network_mode == NetworkMode::None
            && self.networks.is_empty()
            && matches!(self.network_mode_name.as_str(), "" | "none")
    }
}

/// A container's lifecycle state, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or failed to start).
    #[default]
    Created,
    /// Its init is running.
    Running,
    /// Frozen.
    Paused,
    /// Being restarted.
    Restarting,
    /// Being removed.
    Removing,
    /// Its init has exited.
    Exited,
    /// Could not be cleaned up.
    Dead,
}

impl Status {
    /// Docker's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A container's runtime state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ContainerState {
    /// Lifecycle state.
    pub status: Status,
    /// Host pid of the init while running (0 otherwise).
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/PID/stat), guarding against pid reuse.
    pub pid_start: u64,
    /// Host pid of the monitor while running.
    pub monitor_pid: i32,
    /// Start time of `monitor_pid` (guards against pid reuse after a reboot).
    pub monitor_start: u64,
    /// Exit code of the last run.
    pub exit_code: i32,
    /// The last run was killed by the OOM killer.
    pub oom_killed: bool,
    /// Why the last start failed, if it did.
    pub error: String,
    /// When the last run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The runtime that runs it.
    pub runtime: String,
    /// Times the restart policy (or `--health-on-failure=restart`) has
    /// restarted it since its last manual start.
    pub restart_count: u32,
    /// Stopped or killed by a user: the restart policy does not apply
    /// (Docker's `HasBeenManuallyStopped`).
    pub manually_stopped: bool,
    /// The restart back-off the next restart waits, in ms (Docker's:
    /// 100 ms doubling up to 1 min, back to 100 ms after 10 s of running).
    pub restart_delay_ms: u64,
    /// Healthcheck status and last probes (with a healthcheck).
    pub health: Option<crate::health::HealthState>,
    /// Without a cgroup (rootless on v1), the mount namespace (device,
    /// inode of its nsfs file) a running `--pid host` container's
    /// processes are known by — also once its init is gone, so that what
    /// it left behind can still be found (`system check`) and killed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stray_ns: Option<(u64, u64)>,
}

/// `/proc/PID/stat` in one read call (`read_to_string`'s small first read
/// and growing buffer make three, each through the kernel's seq_file
/// machinery): a server looks at every running container's.
fn proc_stat(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    if n < buf.len() {
        return String::from_utf8(buf[..n].to_vec()).ok();
    }
    // A line longer than that (it never is): the rest too.
    let mut v = buf.to_vec();
    f.read_to_end(&mut v).ok()?;
    String::from_utf8(v).ok()
}

/// Start time (in clock ticks since boot) of a process, from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = proc_stat(pid)?;
    // The command name (field 2) may contain spaces and ')' — split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Start time of `pid` if it is running: `None` once it has exited, also
/// while it waits unreaped as a zombie (its /proc entry, start time
/// included, outlives it until then).
fn live_start_time(pid: i32) -> Option<u64> {
    let stat = proc_stat(pid)?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl ContainerState {
    /// Is the recorded init still the same live process (not a zombie
    /// left unreaped after its monitor died)?
    pub fn is_alive(&self) -> bool {
        self.pid > 0 && live_start_time(self.pid) == Some(self.pid_start)
    }

    /// Is the recorded monitor still the same live process?
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid > 0 && live_start_time(self.monitor_pid) == Some(self.monitor_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_start_time() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        let st = ContainerState {
            pid: me,
            pid_start: process_start_time(me).unwrap(),
            ..Default::default()
        };
        assert!(st.is_alive());
    }

    #[test]
    fn state_round_trips_as_json() {
        let st = ContainerState {
            status: Status::Exited,
            exit_code: 137,
            ..Default::default()
        };
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["status"], "exited");
        let back: ContainerState = serde_json::from_value(v).unwrap();
        assert_eq!(back, st);
    }
}

#[cfg(test)]
mod device_rule_tests {
    use super::DeviceRule;

    #[test]
    fn device_rules() {
        let r: DeviceRule = "c 7:128 rwm".parse().unwrap();
        assert_eq!((r.kind, r.major, r.minor), ('c', Some(7), Some(128)));
        assert_eq!(r.to_string(), "c 7:128 rwm");
        let any: DeviceRule = "b *:* m".parse().unwrap();
        assert_eq!((any.major, any.minor), (None, None));
        assert_eq!(any.to_string(), "b *:* m");
        for bad in [
            "x 7:128 rwm",
            "c 7:128",
            "c 7:128 rwx",
            "a",
            "c 42 rw",
            "c 7:128 ",
            "c -1:2 r",
            "c 1:2 rwmr",
        ] {
            assert!(bad.parse::<DeviceRule>().is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod port_tests {
    use super::PortMapping;

    #[test]
    fn port_specs() {
        let p = |s| PortMapping::parse(s).unwrap();
        assert_eq!(p("80")[0].host_port, 0);
        assert_eq!(
            p("8080:80")[0],
            PortMapping {
                host_ip: "".into(),
                host_port: 8080,
                container_port: 80,
                proto: "tcp".into(),
                picked: false,
            }
        );
        assert_eq!(p("127.0.0.1:8080:80/udp")[0].proto, "udp");
        assert_eq!(p("127.0.0.1::80")[0].host_ip, "127.0.0.1");
        // Host port 0: picked, as an empty one.
        assert_eq!(p("0:80")[0], p("80")[0]);
        let r = p("8000-8002:80-82");
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (8002, 82));
        for (bad, why) in [
            ("x", "Invalid containerPort: x"),
            ("80/sctp", "Invalid proto: sctp"),
            (
                "8000-8001:80",
                "Invalid ranges specified for container and host Ports: 80 and 8000-8001",
            ),
            ("0", "Invalid containerPort: 0"),
            ("x:80", "Invalid hostPort: x"),
            ("host:80:80", "Invalid ip address: host"),
        ] {
            assert_eq!(PortMapping::parse(bad).unwrap_err(), why, "{bad}");
        }
        assert!(PortMapping::parse("1:2:3:4").is_err());
    }
}

/// The cgroup parent of containers and pods that name none (podman's is
/// `/libpod_parent`).
pub const DEFAULT_CGROUP_PARENT: &str = "/berth";

/// The cgroup of `id` under `parent` (empty: [`DEFAULT_CGROUP_PARENT`]), as
/// an absolute path below every hierarchy's root; a relative parent is
/// taken from the root, the cgroup of berth's own init process.
pub fn cgroup_path(parent: &str, id: &str) -> String {
    let parent = if parent.is_empty() {
        DEFAULT_CGROUP_PARENT
    } else {
        parent
    };
    format!("/{}/{id}", parent.trim_matches('/')).replace("//", "/")
}

impl ContainerConfig {
    /// Its cgroup's path below every hierarchy's root (`/berth/<id>`, or
    /// under its pod's cgroup or `--cgroup-parent`).
    pub fn cgroup_path(&self, id: &str) -> String {
        cgroup_path(&self.cgroup_parent, id)
    }
}

/// Check a `--cgroup-parent` (of a container or a pod): podman's words for
/// a systemd slice with the cgroupfs manager, and no `..` that would lead
/// out of the hierarchy.
pub fn check_cgroup_parent(parent: &str) -> crate::Result<()> {
    if std::path::Path::new(parent)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".slice"))
    {
        return Err(crate::EngineError::Refused(
            "systemd slice received as cgroup parent when using cgroupfs: invalid argument".into(),
        ));
    }
    if parent
        .split('/')
        .any(|c| c == ".." || c == "." || c.contains('\0'))
    {
        return Err(crate::EngineError::invalid(
            "--cgroup-parent",
            format!("{parent:?}: a cgroup path without . or .. components (e.g. /mypods)"),
        ));
    }
    Ok(())
}
