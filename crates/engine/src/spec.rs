//! Turning a container's configuration and image into an OCI runtime spec
//! carrying Docker's defaults (capabilities, seccomp, masked and read-only
//! paths, devices, mounts), so every runtime sees the same contract.
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::config::{ContainerConfig, NetworkMode};
use crate::error::{EngineError, Result};

/// Docker's masked paths (moby `oci/defaults.go`).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where `--init`'s binary appears inside the container (as Docker).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// A user resolved to numeric ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership).
    pub additional_gids: Vec<u32>,
    /// The user's home directory from its passwd entry, `/` without one
    /// (runc's default for `HOME`).
    pub home: String,
}

/// Read `rel` (e.g. `etc/passwd`) from the topmost layer dir that has it.
/// `dirs` is searched in order (upper first). Every component is opened
/// from its parent's fd with `O_NOFOLLOW`: a symlink anywhere on the way
/// (an image whose `/etc` points at the host's, or a running container
/// swapping its upper dir's `/etc` for one) ends the search instead of
/// being followed on the host; so does a whiteout or anything not a file.
fn read_layered(dirs: &[PathBuf], rel: &str) -> Option<String> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    use std::os::fd::AsFd;
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let (last, parents) = comps.split_last()?;
    'layers: for d in dirs {
        let Ok(mut dir) = std::fs::File::open(d).map(std::os::fd::OwnedFd::from) else {
            continue;
        };
        for c in parents {
            match openat(
                dir.as_fd(),
                *c,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => dir = fd,
                // Absent here: look in the layer below.
                Err(nix::errno::Errno::ENOENT) => continue 'layers,
                // A symlink (ELOOP/ENOTDIR) or a whiteout: stop.
                Err(_) => return None,
            }
        }
        match openat(
            dir.as_fd(),
            *last,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let mut f = std::fs::File::from(fd);
                if !f.metadata().ok()?.is_file() {
                    return None;
                }
                let mut s = String::new();
                return std::io::Read::read_to_string(&mut f, &mut s)
                    .ok()
                    .map(|_| s);
            }
            Err(nix::errno::Errno::ENOENT) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// The `PATH` a container (and a built image whose base has none) gets
/// when its config sets none: Docker's `system.DefaultPathEnv` on Linux.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolve `user[:group]` (names or numbers) against the container's
/// /etc/passwd and /etc/group, as Docker does.
pub fn resolve_user(spec: &str, dirs: &[PathBuf]) -> Result<ResolvedUser> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // No user: root, with its passwd entry's home and groups (as Docker).
    let user = if user.is_empty() { "0" } else { user };
    let passwd = read_layered(dirs, "etc/passwd").unwrap_or_default();
    let groups = read_layered(dirs, "etc/group").unwrap_or_default();
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user || (user.parse::<u32>().is_ok() && f[2] == user)));
    let home = entry
        .as_ref()
        .map(|f| f.get(5).copied().unwrap_or(""))
        .filter(|h| !h.is_empty())
        .unwrap_or("/")
        .to_string();
    let (uid, mut gid, name) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            Some(f[0].to_string()),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => {
            return Err(EngineError::Refused(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    EngineError::Refused(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&name, group) {
        for f in groups.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if g != gid && !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    // Docker's process is in its primary group as a supplementary one too.
    if !additional_gids.contains(&gid) {
        additional_gids.insert(0, gid);
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Add `--group-add` groups to `user`'s supplementary groups: a name
/// is looked up in the container's /etc/group, a number taken as it is,
/// as runc's `GetAdditionalGroups` does (a group given twice counts once).
pub fn add_groups(user: &mut ResolvedUser, groups: &[String], dirs: &[PathBuf]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let file = read_layered(dirs, "etc/group").unwrap_or_default();
    let entries: Vec<(&str, u32)> = file
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((*f.first()?, f.get(2)?.trim().parse().ok()?))
        })
        .collect();
    for g in groups {
        let gid = match entries
            .iter()
            .find(|(name, gid)| name == g || gid.to_string() == *g)
        {
            Some((_, gid)) => *gid,
            None => g.parse::<u32>().map_err(|_| {
                EngineError::Refused(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(())
}

/// Everything the spec is made from.
pub struct SpecInputs<'a> {
    /// Container id (for the cgroup path).
    pub id: &'a str,
    /// Its configuration.
    pub config: &'a ContainerConfig,
    /// Where the rootfs is mounted.
    pub rootfs: &'a Path,
    /// The container's dir (hosts, hostname, resolv.conf live there).
    pub container_dir: &'a Path,
    /// `--network container:`: the other container's dir (its hosts and
    /// resolv.conf are shared) and network namespace.
    pub joined: Option<(&'a Path, &'a Path)>,
    /// `--pid container:`: that container's pid namespace (start only).
    pub pid_ns: Option<&'a Path>,
    /// `--ipc container:`: that container's IPC namespace.
    pub ipc_ns: Option<&'a Path>,
    /// A host tmpfs to bind at `/dev/shm` ([`crate::shm`]): the
    /// container's own with `--ipc shareable`, its donor's when it joins
    /// one (start only; `None`: a tmpfs of its own, as before).
    pub shm: Option<&'a Path>,
    /// A pod member: its infra container's UTS namespace (start only).
    pub uts_ns: Option<&'a Path>,
    /// `--userns=container:`/`ns:`: the user namespace joined (start
    /// only; its maps are the config's).
    pub user_ns: Option<&'a Path>,
    /// The resolved user.
    pub user: &'a ResolvedUser,
    /// The binary bind-mounted at [`INIT_PATH`] for `--init`.
    pub init_binary: Option<&'a Path>,
    /// The process args (entrypoint + cmd) before `--init` wrapping.
    pub args: &'a [String],
    /// Volume, bind and tmpfs mounts, sources resolved
    /// ([`crate::volumes::oci_mount`]).
    pub mounts: &'a [Value],
    /// One of its networks has IPv6 (`--ipv6`): the namespace keeps it on.
    pub ipv6: bool,
}

fn cap_names(mask: u64) -> Vec<String> {
    (0..64u8)
        .filter(|b| mask & (1u64 << b) != 0)
        .filter_map(model::capability::name_of)
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

/// Parse `--tmpfs` options into OCI mount options (Docker's defaults:
/// `noexec,nosuid,nodev` unless overridden).
fn tmpfs_options(opts: &str) -> Vec<String> {
    let mut out: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        if let Some(op) = opposite {
            out.retain(|x| x != op);
        }
        out.push(o.to_string());
    }
    out
}

/// The memory, CPU and pids limits of a container, as OCI
/// `linux.resources` fields (also what `update` applies live).
pub fn limits(c: &ContainerConfig) -> Result<Value> {
    let mut out = json!({});
    let mut memory = json!({});
    if c.memory > 0 {
        memory["limit"] = json!(c.memory);
        // Docker: swap defaults to twice the memory limit.
        memory["swap"] = json!(match c.memory_swap {
            0 => c.memory * 2,
            s => s,
        });
    } else if c.memory_swap > 0 {
        return Err(EngineError::invalid(
            "--memory-swap",
            "you should always set the memory limit when using the memoryswap limit, see usage",
        ));
    }
    if c.memory_reservation > 0 {
        if c.memory > 0 && c.memory_reservation > c.memory {
            return Err(EngineError::invalid(
                "--memory-reservation",
                "Minimum memory limit can not be less than memory reservation limit, see usage",
            ));
        }
        memory["reservation"] = json!(c.memory_reservation);
    }
    if memory.as_object().is_some_and(|m| !m.is_empty()) {
        out["memory"] = memory;
    }
    let mut cpu = json!({});
    if c.nano_cpus > 0 {
        cpu["period"] = json!(100_000u64);
        cpu["quota"] = json!(c.nano_cpus / 10_000);
    }
    if c.cpu_shares > 0 {
        cpu["shares"] = json!(c.cpu_shares);
    }
    if !c.cpuset_cpus.is_empty() {
        cpu["cpus"] = json!(c.cpuset_cpus);
    }
    if !c.cpuset_mems.is_empty() {
        cpu["mems"] = json!(c.cpuset_mems);
    }
    if cpu.as_object().is_some_and(|m| !m.is_empty()) {
        out["cpu"] = cpu;
    }
    if c.pids_limit != 0 {
        out["pids"] = json!({"limit": c.pids_limit});
    }

    Ok(out)
}

/// Build the spec.
pub fn build(inp: &SpecInputs<'_>) -> Result<Spec> {
    let c = inp.config;
    let privileged = c.privileged;
    let mut args: Vec<String> = Vec::new();
    if c.init {
        args.push(INIT_PATH.to_string());
        args.push("--".to_string());
    }
    args.extend(inp.args.iter().cloned());

    // A bare name in the config (`-e NAME` unset where the client ran)
    // stays in the config, as dockerd keeps it, and is unset here.
    let mut env: Vec<String> = c.env.iter().filter(|e| e.contains('=')).cloned().collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", c.hostname));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", inp.user.home));
    }
    if c.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }

    let caps = cap_names(c.capabilities);
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if privileged {
                &["nosuid", "noexec", "nodev"][..]
            } else {
                &["nosuid", "noexec", "nodev", "ro"][..]
            },
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            if privileged {
                &["nosuid", "noexec", "nodev", "relatime"][..]
            } else {
                &["nosuid", "noexec", "nodev", "relatime", "ro"][..]
            },
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    // /dev/shm, as dockerd makes it: a tmpfs of the container's own; the
    // host's with `--ipc host`; with `shareable` or joining a donor's IPC
    // (a pod's members: the infra's), the host-side tmpfs of
    // [`crate::shm`]; none with `--ipc none`.
    if c.ipc_mode == "host" {
        mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "nosuid", "noexec", "nodev"],
        ));
    } else if let Some(shm) = inp.shm {
        mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "nosuid", "noexec", "nodev"]}));
    } else if c.ipc_mode != "none" {
        mounts.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!(
                    "size={}",
                    if c.shm_size > 0 { c.shm_size } else { 67108864 }
                ),
            ],
        ));
    }
    // Parents before children (Docker sorts by depth): /data before
    // /data/cache whatever the order given.
    let mut user: Vec<Value> = c
        .tmpfs
        .iter()
        .map(|(dest, opts)| json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": tmpfs_options(opts)}))
        .chain(inp.mounts.iter().cloned())
        .collect();
    user.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| Path::new(d).components().count())
            .unwrap_or(0)
    });
    mounts.extend(user);
    // After the user's mounts: a volume on /etc gets them on top, as
    // in Docker.
    let user_targets: Vec<&str> = inp
        .mounts
        .iter()
        .filter_map(|m| m["destination"].as_str())
        .collect();
    for (file, dest) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        // A mount of the user's own there wins, as in Docker.
        if user_targets.contains(&dest) {
            continue;
        }
        let src = match inp.joined {
            Some((dir, _)) if file != "hostname" => dir.join(file),
            _ => inp.container_dir.join(file),
        };
        // In a user namespace berth's own files are the container root's.
        let opts: &[&str] = if c.userns.is_private() && !crate::rootless::active() {
            &["rbind", "rprivate", "idmap"]
        } else {
            &["rbind", "rprivate"]
        };
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": opts}));
    }
    if let Some(init) = inp.init_binary {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    // `--device`: looked up again now (a node may have come or gone since
    // the create). Made with mknod where the runtime may (a device entry
    // below); in a user namespace (the container's, or rootless berth's)
    // mknod is refused, so the host's node is bound there, as podman does.
    let mut host_devices = Vec::new();
    for d in &c.devices {
        for node in d.resolve().map_err(EngineError::Refused)? {
            host_devices.push((node, d.cgroup_permissions.as_str()));
        }
    }
    // (Only asked when there are devices: `rootless::active` reads a
    // /proc file, and this is the start path.)
    let bind_devices =
        !host_devices.is_empty() && (c.userns.is_private() || crate::rootless::active());
    if bind_devices {
        for (d, _) in &host_devices {
            mounts.push(json!({"destination": d.inside, "type": "bind", "source": d.host, "options": ["bind", "rprivate"]}));
        }
    }

    // `--uts host`: the host's UTS namespace, whose name stays as it is.
    // `container:` (a pod's members): the infra's, whose name is the pod's.
    let host_uts = c.uts_mode == "host" || c.uts_mode.starts_with("container:");
    let mut namespaces = vec![json!({"type": "mount"}), json!({"type": "cgroup"})];
    match inp.user_ns {
        Some(p) if c.userns.is_private() => {
            namespaces.insert(0, json!({"type": "user", "path": p}))
        }
        _ if c.userns.is_private() => namespaces.insert(0, json!({"type": "user"})),
        _ => {}
    }
    match inp.uts_ns {
        Some(p) => namespaces.insert(0, json!({"type": "uts", "path": p})),
        None if !host_uts => namespaces.insert(0, json!({"type": "uts"})),
        None => {}
    }
    // `--pid host` / `--ipc host`: the host's namespace (none of its own);
    // `container:`: that container's.
    for (kind, mode, path) in [
        ("ipc", &c.ipc_mode, inp.ipc_ns),
        ("pid", &c.pid_mode, inp.pid_ns),
    ] {
        match path {
            _ if mode == "host" => {}
            Some(p) => namespaces.insert(0, json!({"type": kind, "path": p})),
            // An exec's spec: the process joins the container's namespaces.
            None if mode.starts_with("container:") => {}
            None => namespaces.insert(0, json!({"type": kind})),
        }
    }
    match (&c.network_mode, inp.joined) {
        (NetworkMode::None, _) => namespaces.push(json!({"type": "network"})),
        (NetworkMode::Container(_), Some((_, ns))) => {
            namespaces.push(json!({"type": "network", "path": ns}))
        }
        (NetworkMode::Container(id), None) => {
            return Err(EngineError::invalid(
                "--network",
                format!("container:{id}: that container is not running"),
            ))
        }
        (NetworkMode::Host, _) => {}
    }

    let mut resources = json!({});
    if !privileged {
        let mut rules = serde_json::to_value(runtime::cgroup::docker_default_devices())
            .map_err(|e| EngineError::io("encoding devices", std::io::Error::other(e)))?;
        // `--device-cgroup-rule` and `--device`: allowed after Docker's
        // defaults (a device's with the permissions given, as dockerd).
        if let Value::Array(list) = &mut rules {
            list.extend(c.device_cgroup_rules.iter().map(|r| {
                json!({"allow": true, "type": r.kind.to_string(), "major": r.major, "minor": r.minor, "access": r.access})
            }));
            list.extend(host_devices.iter().map(|(d, access)| {
                json!({"allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "access": access})
            }));
        }
        resources["devices"] = rules;
    } else {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    if let Value::Object(limits) = limits(c)? {
        for (k, v) in limits {
            resources[k] = v;
        }
    }
    // Each device's numbers looked up at this start, as dockerd does.
    if let Some(b) = c.blkio.resources()? {
        resources["blockIO"] = b;
    }

    let mut devices: Vec<Value> = [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]
        .iter()
        .filter(|(p, _, _)| !host_devices.iter().any(|(d, _)| d.inside == *p))
        .map(|(p, ma, mi)| json!({"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0}))
        .collect();
    if !bind_devices {
        devices.extend(host_devices.iter().map(|(d, _)| {
            json!({"path": d.inside, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid})
        }));
    }

    let rlimits: Vec<Value> = c
        .ulimits
        .iter()
        .map(|u| json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard}))
        .collect();

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": c.cgroup_path(inp.id),
        "devices": devices,
    });
    if c.userns.is_private() {
        let map = |m: &[crate::config::IdMapping]| -> Vec<Value> {
            m.iter()
                .map(
                    |r| json!({"containerID": r.container_id, "hostID": r.host_id, "size": r.size}),
                )
                .collect()
        };
        linux["uidMappings"] = json!(map(&c.userns.uid_map));
        linux["gidMappings"] = json!(map(&c.userns.gid_map));
    }
    let mut sysctl = serde_json::Map::new();
    if c.network_mode == NetworkMode::None && !inp.ipv6 {
        // An IPv4-only container's networks have no IPv6: as Docker, a namespace of the
        // container's own has none either (lo included; interfaces added
        // later by `network connect` take `default`). With a link-local
        // address glibc resolves `localhost` to `::1` first.
        sysctl.insert("net.ipv6.conf.all.disable_ipv6".into(), json!("1"));
        sysctl.insert("net.ipv6.conf.default.disable_ipv6".into(), json!("1"));
    }
    for (k, v) in &c.sysctls {
        sysctl.insert(k.clone(), json!(v));
    }
    // The domain name is the UTS namespace's `kernel.domainname` (the
    // built-in runtime writes sysctls in the container's namespaces).
    if !c.domainname.is_empty() && !sysctl.contains_key("kernel.domainname") {
        sysctl.insert("kernel.domainname".into(), json!(c.domainname));
    }
    if !sysctl.is_empty() {
        linux["sysctl"] = Value::Object(sysctl);
    }
    if !privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }

    let spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": inp.rootfs, "readonly": c.read_only},
        "hostname": if host_uts { "" } else { c.hostname.as_str() },
        "process": {
            "terminal": c.tty,
            "user": {"uid": inp.user.uid, "gid": inp.user.gid, "additionalGids": inp.user.additional_gids},
            "args": args,
            "env": env,
            "cwd": if c.working_dir.is_empty() { "/" } else { c.working_dir.as_str() },
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits,
            "noNewPrivileges": c.no_new_privileges,
        },
        "mounts": mounts,
        "linux": linux,
    });
    let mut spec: Spec = serde_json::from_value(spec).map_err(|e| {
        EngineError::invalid(
            "container configuration",
            format!("cannot form an OCI spec: {e}"),
        )
    })?;
    let seccomp = match (&c.seccomp, privileged) {
        (_, true) | (crate::config::SeccompSetting::Unconfined, _) => None,
        (crate::config::SeccompSetting::Default, _) => {
            Some(runtime::seccomp::docker_default_oci(c.capabilities)?)
        }
        (crate::config::SeccompSetting::Profile(p), _) => Some(
            runtime::seccomp::oci_from_docker_profile(p.as_bytes(), c.capabilities)?,
        ),
    };
    if let Some(linux) = spec.linux_mut() {
        linux.set_seccomp(seccomp);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(d.path().join("etc/group"), group).unwrap();
        d
    }

    #[test]
    fn resolves_names_numbers_and_groups() {
        let d = rootfs_with(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
            "root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:\n",
        );
        let dirs = vec![d.path().to_path_buf()];
        let root = resolve_user("", &dirs).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        let app = resolve_user("app", &dirs).unwrap();
        assert_eq!(app.home, "/home/app");
        // A uid without an entry, or an entry without a home: `/`.
        assert_eq!(resolve_user("4242", &dirs).unwrap().home, "/");
        assert_eq!(resolve_user("nobody", &dirs).unwrap().home, "/");
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![1000, 10])
        );
        let n = resolve_user("nobody:staff", &dirs).unwrap();
        assert_eq!((n.uid, n.gid), (65534, 50));
        let num = resolve_user("4242:4343", &dirs).unwrap();
        assert_eq!((num.uid, num.gid), (4242, 4343));
        let by_uid = resolve_user("1000", &dirs).unwrap();
        assert_eq!(by_uid.gid, 1000);
        assert!(resolve_user("ghost", &dirs)
            .unwrap_err()
            .to_string()
            .contains("unable to find user ghost"));
        assert!(resolve_user("app:ghosts", &dirs).is_err());
    }

    #[test]
    fn group_add_by_name_and_number() {
        let d = rootfs_with(
            "root:x:0:0:root:/root:/bin/sh\n",
            "root:x:0:\nwheel:x:10:\naudio:x:29:\n",
        );
        let dirs = vec![d.path().to_path_buf()];
        let mut u = resolve_user("", &dirs).unwrap();
        let groups = ["wheel", "4242", "10", "29"].map(String::from);
        add_groups(&mut u, &groups, &dirs).unwrap();
        assert_eq!(u.additional_gids, vec![0, 10, 4242, 29]);
        let err = add_groups(&mut u, &["nosuch".to_string()], &dirs).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn upper_layer_wins_and_symlinks_are_not_followed() {
        let lower = rootfs_with("app:x:1:1::/:/bin/sh\n", "");
        let upper = rootfs_with("app:x:2:2::/:/bin/sh\n", "");
        let dirs = vec![upper.path().to_path_buf(), lower.path().to_path_buf()];
        assert_eq!(resolve_user("app", &dirs).unwrap().uid, 2);
        let evil = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(evil.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", evil.path().join("etc/passwd")).unwrap();
        assert!(resolve_user("root", &[evil.path().to_path_buf()]).is_err());
    }

    #[test]
    fn tmpfs_defaults_and_overrides() {
        assert_eq!(tmpfs_options(""), vec!["noexec", "nosuid", "nodev"]);
        assert_eq!(
            tmpfs_options("exec,size=1m"),
            vec!["nosuid", "nodev", "exec", "size=1m"]
        );
    }
}
