//! `berth create` (and the first half of `run`): validate the options,
//! merge them with the image's config, and record the container in one
//! store transaction.
use std::collections::BTreeMap;

use chrono::Utc;
use model::capability::CapArg;
use model::{ContainerId, Signal};

use crate::config::{ContainerConfig, ContainerState, NetworkMode, SeccompSetting, Ulimit};
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

/// Options of `create`/`run`, parsed by the CLI into types.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// `--name`.
    pub name: Option<String>,
    /// The image reference or id.
    pub image: String,
    /// Command (empty: the image's CMD).
    pub cmd: Vec<String>,
    /// The entrypoint: `--entrypoint X` is `Some(vec![X])`, `Some(vec![])`
    /// (`--entrypoint ""`) clears the image's; compose and the API give lists.
    pub entrypoint: Option<Vec<String>>,
    /// `-e`/`--env-file`, already merged in order (`KEY=value`; a bare `KEY`
    /// takes the value from the CLI's environment).
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--domainname`.
    pub domainname: Option<String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `--stop-signal`.
    pub stop_signal: Option<Signal>,
    /// `--stop-timeout`.
    pub stop_timeout: Option<i64>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--network`.
    pub network: NetworkMode,
    /// `--network NAME` of user-defined networks.
    pub networks: Vec<String>,
    /// Docker's `HostConfig.NetworkMode` as the client named it, when the
    /// networks do not say it: `default` (no `--network` given, or the
    /// API's empty mode). None: derived from the networks.
    pub network_mode_name: Option<String>,
    /// `-p`.
    pub ports: Vec<crate::config::PortMapping>,
    /// `-P`: publish every EXPOSEd port on a random host port.
    pub publish_all: bool,
    /// `--expose`: `PORT[-END][/PROTO]` the container exposes besides the
    /// image's.
    pub expose: Vec<String>,
    /// `--network-alias`.
    pub network_aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--ip6`, `--link-local-ip` and driver options of the first
    /// network's endpoint.
    pub endpoint: crate::config::EndpointExtra,
    /// Aliases on the networks after the first, by the name given (the
    /// API's `NetworkingConfig` with several endpoints).
    pub connect_aliases: BTreeMap<String, Vec<String>>,
    /// The IPv4 address asked for on the networks after the first.
    pub connect_ips: BTreeMap<String, String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// `--pid` (`host`).
    pub pid_mode: Option<String>,
    /// `--ipc` (`none`, `private`, `shareable`, `host`, `container:ID`).
    pub ipc_mode: Option<String>,
    /// `--sysctl name=value`.
    pub sysctls: BTreeMap<String, String>,
    /// `--tmpfs` (dest, options).
    pub tmpfs: Vec<(String, String)>,
    /// `-v`/`--volume` as given.
    pub volumes: Vec<String>,
    /// `--mount` as given.
    pub mounts: Vec<String>,
    /// `--volumes-from container[:ro|rw]`.
    pub volumes_from: Vec<String>,
    /// `--memory` bytes.
    pub memory: Option<u64>,
    /// `--memory-swap` bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: Option<u64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--cap-add` (parsed) with the original spelling.
    pub cap_add: Vec<(CapArg, String)>,
    /// `--cap-drop`.
    pub cap_drop: Vec<(CapArg, String)>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--init`.
    pub init: bool,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--restart`.
    pub restart: crate::restart::RestartPolicy,
    /// `--health-cmd` (as `["CMD-SHELL", cmd]`) and the other `--health-*`
    /// durations; unset fields are inherited from the image.
    pub health: crate::health::HealthConfig,
    /// `--no-healthcheck`.
    pub no_healthcheck: bool,
    /// `--health-on-failure`.
    pub health_on_failure: crate::health::OnFailure,
    /// `--log-driver` and `--log-opt`.
    pub log_config: crate::logs::LogConfig,
    /// Layer dirs over the image's, top last (the builder's).
    pub extra_layers: Vec<std::path::PathBuf>,
    /// `--group-add`: group names or numbers.
    pub group_add: Vec<String>,
    /// `--uts` (`host`).
    pub uts_mode: Option<String>,
    /// `--device-cgroup-rule`, parsed.
    pub device_cgroup_rules: Vec<crate::config::DeviceRule>,
    /// `--device`, parsed (the nodes are looked up at create and at
    /// each start).
    pub devices: Vec<crate::config::DeviceMapping>,
    /// `--isolation` (`default` is the only one on Linux).
    pub isolation: Option<String>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--blkio-weight`, `--blkio-weight-device`, `--device-read-bps`,
    /// `--device-write-bps`, `--device-read-iops`, `--device-write-iops`.
    pub blkio: crate::blkio::BlkioLimits,
    /// `--volume-driver`: the driver of the volumes it creates (`local`
    /// is the only one; another is refused when a volume needs it).
    pub volume_driver: Option<String>,
    /// `--link name[:alias]` on the default bridge (Docker's
    /// `HostConfig.Links`; dropped on other networks, as dockerd drops them).
    pub links: Vec<String>,
    /// Links of the (first) user-defined network's endpoint: `name:alias`,
    /// resolved by name when looked up (the target may come later).
    pub endpoint_links: Vec<String>,
    /// `--pod`: the container joins a pod's namespaces.
    pub pod: PodMembership,
    /// `--cgroup-parent`: its cgroup is made below this one (a pod's
    /// member: below the pod's cgroup unless given).
    pub cgroup_parent: Option<String>,
    /// `--userns` (`host`, `auto[:size=N,uidmapping=…,gidmapping=…]`,
    /// `container:NAME`, `ns:PATH`, rootless `keep-id`/`nomap`).
    pub userns: Option<String>,
    /// `--uidmap CONTAINER:HOST:SIZE`.
    pub uidmap: Vec<String>,
    /// `--gidmap CONTAINER:HOST:SIZE`.
    pub gidmap: Vec<String>,
}

/// A container's place in a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PodMembership {
    /// Not in a pod.
    #[default]
    None,
    /// `--pod NAME`: joins the pod's shared namespaces (name or id).
    Member(String),
    /// The pod's infra container (the pod's id); made by `pod create` only.
    Infra(String),
}

/// Check `--memory`, `--memory-swap` and `--cpus` as Docker does.
/// Docker's rule for `--sysctl`: only what the container's own namespaces
/// hold (IPC: `kernel.msg*`, `kernel.sem`, `kernel.shm*`, `fs.mqueue.*`;
/// network: `net.*` unless it shares the host's network).
pub fn check_sysctl(name: &str, network: &NetworkMode) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if name.starts_with("net.") {
        if *network == NetworkMode::Host {
            return Err(EngineError::invalid(
                "--sysctl",
                format!("sysctl {name:?} not allowed in host network namespace"),
            ));
        }
        return Ok(());
    }
    Err(EngineError::invalid(
        "--sysctl",
        format!("sysctl {name:?} is not in a separate kernel namespace"),
    ))
}

pub fn check_limits(
    memory: Option<u64>,
    memory_swap: Option<i64>,
    cpus: Option<f64>,
) -> Result<()> {
    if let Some(c) = cpus {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        if c <= 0.0 || c > ncpu {
            return Err(EngineError::invalid("--cpus", format!("range of CPUs is from 0.01 to {ncpu:.2}, as there are only {ncpu} CPUs available")));
        }
    }
    if let (Some(m), Some(s)) = (memory, memory_swap) {
        if s >= 0 && (s as u64) < m {
            return Err(EngineError::invalid(
                "--memory-swap",
                "minimum memoryswap limit should be larger than memory limit, see usage",
            ));
        }
    }
    if let Some(m) = memory {
        if m < 6 * 1024 * 1024 {
            return Err(EngineError::invalid(
                "--memory",
                "minimum memory limit allowed is 6MB",
            ));
        }
    }
    Ok(())
}

/// Parse `--ulimit name=soft[:hard]`.
pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    let bad = |why: &str| {
        EngineError::invalid(
            "--ulimit",
            format!("{s:?}: {why} (expected name=soft[:hard], e.g. nofile=1024:2048)"),
        )
    };
    let (name, vals) = s.split_once('=').ok_or_else(|| bad("missing '='"))?;
    if !NAMES.contains(&name) {
        return Err(bad("unknown limit name"));
    }
    let parse = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            Ok(u64::MAX)
        } else {
            v.parse().map_err(|_| bad("not a number"))
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(vals)?, parse(vals)?),
    };
    if soft > hard {
        return Err(bad("soft limit is above the hard limit"));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// Parse `--security-opt` values into (no_new_privs, seccomp).
pub fn parse_security_opts(opts: &[String]) -> Result<(bool, SeccompSetting)> {
    let mut nnp = false;
    let mut seccomp = SeccompSetting::Default;
    for o in opts {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" => {
                nnp = match v {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(EngineError::invalid("--security-opt", format!("{o:?}: no-new-privileges takes true or false"))),
                }
            }
            "seccomp" if v == "unconfined" => seccomp = SeccompSetting::Unconfined,
            "seccomp" if !v.is_empty() => {
                let text = std::fs::read_to_string(v).map_err(|e| {
                    EngineError::invalid("--security-opt", format!("cannot read seccomp profile {v}: {e}"))
                })?;
                runtime::seccomp::oci_from_docker_profile(text.as_bytes(), model::capability::docker_default_mask())
                    .map_err(|e| EngineError::invalid("--security-opt", format!("seccomp profile {v}: {e}")))?;
                seccomp = SeccompSetting::Profile(text);
            }
            "apparmor" | "label" => {
                return Err(EngineError::invalid(
                    "--security-opt",
                    format!("{o:?}: AppArmor and SELinux options are not supported by berth"),
                ))
            }
            _ => {
                return Err(EngineError::invalid(
                    "--security-opt",
                    format!("{o:?}: expected no-new-privileges, seccomp=unconfined or seccomp=<profile.json>"),
                ))
            }
        }
    }
    Ok((nnp, seccomp))
}

fn shell_split_check(args: &[String]) -> Result<()> {
    if args.is_empty() {
        return Err(EngineError::invalid(
            "command",
            "no command specified: the image has no CMD or ENTRYPOINT; give one after the image name",
        ));
    }
    Ok(())
}

/// Find the `--init` binary: a static init that reaps zombies and
/// forwards signals (tini, as Docker ships it).
pub fn find_init_binary() -> Result<std::path::PathBuf> {
    for p in [
        "/usr/libexec/berth/berth-init",
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
    ] {
        let p = std::path::Path::new(p);
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
    }
    Err(EngineError::invalid(
        "--init",
        "no static init binary found: install one with \"apt-get install tini\" (berth uses /usr/bin/tini-static)",
    ))
}

impl Engine {
    /// Create a container; returns it.
    /// The image policy (policy.toml) is enforced first.
    pub fn create(&self, req: &CreateRequest) -> Result<Container> {
        self.create_early(req, None)
    }

    /// `create` for `berth run`, whose rootless network may have been
    /// started already ([`Engine::early_user_net`]): the container takes
    /// that network's id.
    pub fn create_early(
        &self,
        req: &CreateRequest,
        early: Option<&crate::usernet::EarlyNet>,
    ) -> Result<Container> {
        self.policy_for_local(&req.image)?;
        self.create_as(req, true, early.map(|e| e.id().clone()))?
            .ok_or_else(|| EngineError::io("create", std::io::Error::other("refused to fork")))
    }

    /// `create` without the image policy: a build's RUN step, whose image
    /// is the build's own (its FROM was checked).
    pub(crate) fn create_step(&self, req: &CreateRequest) -> Result<Container> {
        self.create_as(req, true, None)?
            .ok_or_else(|| EngineError::io("create", std::io::Error::other("refused to fork")))
    }

    /// `create`, unless it would fork a helper process: a container that
    /// mounts a volume (an empty one gets the image's content, copied by
    /// a forked process). `None` then, and nothing was done. For a
    /// multi-threaded caller (the API server), which runs those in a
    /// process of their own and the others in place.
    pub fn create_without_fork(&self, req: &CreateRequest) -> Result<Option<Container>> {
        self.policy_for_local(&req.image)?;
        self.create_as(req, false, None)
    }

    fn create_as(
        &self,
        req: &CreateRequest,
        may_fork: bool,
        id: Option<ContainerId>,
    ) -> Result<Option<Container>> {
        // `--pod`: the request joins the pod's infra container.
        let in_pod;
        let req = match &req.pod {
            PodMembership::Member(pod) => {
                in_pod = self.pod_member_request(req, pod)?;
                &in_pod
            }
            _ => req,
        };
        if let Some(n) = &req.name {
            if !model::id::valid_container_name(n.trim_start_matches('/')) {
                return Err(EngineError::Refused(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let (no_new_privileges, seccomp) = parse_security_opts(&req.security_opt)?;
        for name in req.sysctls.keys() {
            check_sysctl(name, &req.network)?;
        }
        // `container:NAME` must name a container now; kept by id.
        let pid_mode = self.namespace_mode("--pid", req.pid_mode.as_deref(), &["host"])?;
        let ipc_mode = self.namespace_mode(
            "--ipc",
            req.ipc_mode.as_deref(),
            &["none", "private", "shareable", "host"],
        )?;
        if req.shm_size == Some(0) {
            return Err(EngineError::invalid(
                "--shm-size",
                "the size must be more than 0",
            ));
        }
        if req.init {
            find_init_binary()?;
        }
        let runtime_name = req.runtime.clone().unwrap_or_else(|| "berth".to_string());
        if runtime_name != "berth" {
            runtime::by_name(&runtime_name, &self.runtime_state())?;
        }
        // Rootless: by default containers share berth's own user
        // namespace; keep-id, `--uidmap`/`--gidmap` and `auto` nest one in
        // it, whose HOST ids are that namespace's (0 the user, 1..N its
        // subordinate ids), with a copied root whose owners are shifted.
        let rootless = crate::rootless::active();
        let userns_req =
            crate::userns::parse(req.userns.as_deref(), &req.uidmap, &req.gidmap, rootless)?;
        if let (true, crate::userns::Request::Maps { uid, gid }) = (rootless, &userns_req) {
            let size = |f| crate::container::copyroot::namespace_size(f);
            crate::userns::check_inside("--uidmap", uid, size("/proc/self/uid_map"))?;
            let gid_flag = if req.gidmap.is_empty() {
                "--uidmap"
            } else {
                "--gidmap"
            };
            crate::userns::check_inside(gid_flag, gid, size("/proc/self/gid_map"))?;
        }
        if let (true, crate::userns::Request::Auto { uid, gid, .. }) = (rootless, &userns_req) {
            let size = |f| crate::container::copyroot::namespace_size(f);
            crate::userns::check_inside("--userns", uid, size("/proc/self/uid_map"))?;
            crate::userns::check_inside("--userns", gid, size("/proc/self/gid_map"))?;
        }
        // `container:` and `ns:` join a user namespace that exists: its
        // maps are the container's (the root's owners are made for them).
        let joined_userns = match &userns_req {
            crate::userns::Request::Container(name) => {
                // podman's words.
                let donor = self.container(name).map_err(|_| {
                    EngineError::invalid(
                        "--userns",
                        format!("looking up container to share user namespace with: no container with name or ID {name:?} found: no such container"),
                    )
                })?;
                Some(crate::config::UserNs {
                    mode: format!("container:{}", donor.id()),
                    uid_map: donor.config.userns.uid_map.clone(),
                    gid_map: donor.config.userns.gid_map.clone(),
                })
            }
            // Its maps are read by a helper process that joins it.
            crate::userns::Request::Path(_) if !may_fork => return Ok(None),
            crate::userns::Request::Path(path) => Some(userns_at(path)?),
            _ => None,
        };
        // Another container's namespaces belong to its user namespace: a
        // container may join them from the same one only (`container:` of
        // a container in it), not from one of its own.
        let own_key = match (&userns_req, &joined_userns) {
            (crate::userns::Request::Host, _) => None,
            (_, Some(u)) if !u.is_private() => None,
            (_, Some(u)) => Some(self.userns_key(u, "")),
            _ => Some(String::new()),
        };
        if let Some(own_key) = own_key {
            for (flag, donor) in &self.namespace_donors(req, &pid_mode, &ipc_mode)? {
                let theirs = self.userns_key(&donor.config.userns, donor.id().as_str());
                // Keys that differ may still name one namespace: an `ns:`
                // path to a running container's (compared by inode).
                let same = theirs == own_key
                    || self.userns_identity(&theirs) == self.userns_identity(&own_key);
                if own_key.is_empty() || !same {
                    let ours = match &joined_userns {
                        Some(u) => format!("--userns={}", u.mode),
                        None => "a user namespace of its own".to_string(),
                    };
                    return Err(EngineError::invalid(
                        "--userns",
                        format!(
                            "a container with {ours} cannot use {flag}{}: that container's namespaces belong to {} user namespace; share its user namespace too (--userns=container:{}), or drop one of the two",
                            donor.name(),
                            if theirs.is_empty() { "the host's" } else { "another" },
                            donor.name()
                        ),
                    ));
                }
            }
        }
        let auto_pool = match &userns_req {
            crate::userns::Request::Host
            | crate::userns::Request::Container(_)
            | crate::userns::Request::Path(_)
                if joined_userns.as_ref().is_none_or(|u| !u.is_private()) =>
            {
                None
            }
            _ if runtime_name != "berth" => {
                return Err(EngineError::invalid(
                    "--userns",
                    format!(
                    "user namespaces need berth's built-in runtime (not --runtime {runtime_name})"
                ),
                ))
            }
            crate::userns::Request::Auto { size, uid, gid } if rootless => Some((
                crate::userns::rootless_pool(),
                *size,
                uid.clone(),
                gid.clone(),
            )),
            crate::userns::Request::Auto { size, uid, gid } => {
                let settings = crate::settings::Settings::load(&self.paths().config)?;
                Some((
                    crate::userns::auto_pool(&settings.userns, *size)?,
                    *size,
                    uid.clone(),
                    gid.clone(),
                ))
            }
            crate::userns::Request::Host
            | crate::userns::Request::Container(_)
            | crate::userns::Request::Path(_)
            | crate::userns::Request::Maps { .. }
            | crate::userns::Request::KeepId { .. }
            | crate::userns::Request::KeepIdRoot
            | crate::userns::Request::NoMap => None,
        };
        let mut keep_id = None;
        let userns = match &userns_req {
            crate::userns::Request::KeepId { uid, gid } => {
                let (k, uid_map, gid_map) = crate::container::copyroot::keep_id_for(*uid, *gid)?;
                keep_id = Some(k);
                crate::config::UserNs {
                    mode: req.userns.clone().unwrap_or_default(),
                    uid_map,
                    gid_map,
                }
            }
            crate::userns::Request::Host => crate::config::UserNs {
                mode: req.userns.clone().unwrap_or_default(),
                ..Default::default()
            },
            crate::userns::Request::Auto { .. } => crate::config::UserNs {
                mode: req.userns.clone().unwrap_or_default(),
                ..Default::default()
            },
            crate::userns::Request::Container(_) | crate::userns::Request::Path(_) => {
                joined_userns.clone().unwrap_or_default()
            }
            crate::userns::Request::NoMap => {
                let size = crate::container::copyroot::namespace_size;
                crate::config::UserNs {
                    mode: "nomap".into(),
                    uid_map: crate::userns::nomap("--userns", size("/proc/self/uid_map"))?,
                    gid_map: crate::userns::nomap("--userns", size("/proc/self/gid_map"))?,
                }
            }
            crate::userns::Request::Maps { uid, gid } => crate::config::UserNs {
                mode: "private".into(),
                uid_map: uid.clone(),
                gid_map: gid.clone(),
            },
            crate::userns::Request::KeepIdRoot => crate::config::UserNs {
                mode: "keep-id".into(),
                uid_map: vec![crate::userns::IDENTITY],
                gid_map: vec![crate::userns::IDENTITY],
            },
        };
        // A member of a keep-id pod (`pod create --userns=keep-id`) is in
        // the infra's user namespace and, as podman's, runs as the user
        // with the user's passwd and group entries.
        if let (PodMembership::Member(_), crate::userns::Request::Container(name)) =
            (&req.pod, &userns_req)
        {
            let donor_mode = self.container(name)?.config.userns.mode;
            if let Ok(crate::userns::Request::KeepId { uid, gid }) =
                crate::userns::parse(Some(&donor_mode), &[], &[], rootless)
            {
                keep_id = Some(crate::container::copyroot::keep_id_for(uid, gid)?.0);
            }
        }
        // `--device`: the host's nodes must be there now (dockerd's words).
        for d in &req.devices {
            d.resolve().map_err(EngineError::Refused)?;
        }
        check_limits(req.memory, req.memory_swap, req.cpus)?;
        if let Some(p) = &req.cgroup_parent {
            crate::config::check_cgroup_parent(p)?;
        }
        if let (Some(m), Some(r)) = (req.memory, req.memory_reservation) {
            if r > m {
                return Err(EngineError::invalid(
                    "--memory-reservation",
                    "Minimum memory limit can not be less than memory reservation limit, see usage",
                ));
            }
        }
        if req.auto_remove && req.restart.is_set() {
            // docker's words: a removed container cannot be restarted.
            return Err(EngineError::Refused(
                "Conflicting options: --restart and --rm".into(),
            ));
        }
        req.log_config
            .effective()
            .map_err(|e| EngineError::invalid("--log-driver/--log-opt", e))?;
        check_health_flags(&req.health)?;
        let uts_mode = match req.uts_mode.as_deref() {
            None | Some("") => String::new(),
            Some(m @ ("host" | "private")) => m.to_string(),
            // A pod's members share its infra container's (set by the
            // engine: docker's CLI takes host or nothing).
            Some(m) if m.starts_with("container:") => self.namespace_mode("--uts", Some(m), &[])?,
            Some(m) => {
                return Err(EngineError::invalid(
                    "--uts",
                    format!("{m:?}: berth supports host (or leave it out for the container's own)"),
                ))
            }
        };
        if uts_mode == "host" {
            if req.hostname.is_some() {
                return Err(EngineError::Refused(
                    "conflicting options: hostname and the UTS mode".into(),
                ));
            }
            if req.domainname.is_some() {
                return Err(EngineError::Refused(
                    "conflicting options: domainname and the UTS mode".into(),
                ));
            }
        }
        let isolation = match req.isolation.as_deref() {
            None | Some("") => String::new(),
            Some("default") => "default".to_string(),
            Some(i) => {
                return Err(EngineError::Refused(format!(
                    "Invalid isolation: {i:?} - linux only supports 'default'"
                )))
            }
        };
        let cpuset_cpus = check_cpuset(req.cpuset_cpus.as_deref(), Cpuset::Cpus)?;
        let cpuset_mems = check_cpuset(req.cpuset_mems.as_deref(), Cpuset::Mems)?;
        let mut blkio = req.blkio.clone();
        // What the kernel cannot limit is dropped first, as dockerd 20.10
        // drops it (its warnings: `BlkioLimits::warnings`), then the rest
        // is checked.
        if let Some(h) = blkio
            .any()
            .then(crate::rootless::cgroup_hierarchy)
            .transpose()?
            .flatten()
        {
            blkio.discard_unsupported(h.blkio_support());
        }
        blkio.check()?;

        let image = self.store().resolve_image(&req.image)?;
        let mut networks = Vec::new();
        let mut connect_aliases = BTreeMap::new();
        let mut connect_ips = BTreeMap::new();
        // Rootless: no bridge is the user's to make; the default network
        // is slirp4netns' (else pasta's), as podman 4.3's, or berth.toml's
        // `default_rootless_network_cmd`.
        let mut rootless_net = None;
        let mut req_networks: &[String] = &req.networks;
        if crate::rootless::active() && req.network == NetworkMode::None {
            let default_tool =
                || crate::settings::Settings::load(&self.paths().config)?.rootless_network_tool();
            match req.networks.as_slice() {
                [] => {}
                [n] if n == "bridge" || n == "default" => {
                    rootless_net = Some(default_tool()?);
                }
                [n] if crate::usernet::Tool::from_name(n).is_some() => {
                    rootless_net = crate::usernet::Tool::from_name(n);
                }
                // User-defined networks: bridges in the rootless network
                // namespace (`rootlessnet`), which reaches the outside
                // through pasta or slirp4netns.
                nets => {
                    let special = |n: &String| {
                        n == "bridge"
                            || n == "default"
                            || crate::usernet::Tool::from_name(n).is_some()
                    };
                    if let Some(n) = nets.iter().find(|n| special(n)) {
                        return Err(EngineError::invalid(
                            "--network",
                            format!("{n:?} cannot be combined with other networks in rootless berth: use it alone, or only user-defined networks"),
                        ));
                    }
                    default_tool()?
                        .for_user_networks()
                        .map_err(|e| EngineError::invalid("--network", e))?;
                }
            }
            if let Some(tool) = rootless_net {
                tool.for_own_network()
                    .map_err(|e| EngineError::invalid("--network", e))?;
                req_networks = &[];
            }
        }
        for n in req_networks {
            // By name in the config, as Docker shows it; must exist now.
            let rec = if n == "bridge" || n == "default" {
                self.default_network()?
            } else {
                self.store().network(n)?
            };
            if let Some(a) = req.connect_aliases.get(n) {
                connect_aliases.insert(rec.name.clone(), a.clone());
            }
            if let Some(ip) = req.connect_ips.get(n) {
                connect_ips.insert(rec.name.clone(), ip.clone());
            }
            if !networks.contains(&rec.name) {
                networks.push(rec.name);
            }
        }
        // --network container:NAME: its namespace (and hostname), no
        // networking options of its own.
        let mut network_mode = req.network.clone();
        let mut joined_hostname = None;
        if let NetworkMode::Container(target) = &req.network {
            let t = self.container(target)?;
            let conflicts: [(&str, bool); 8] = [
                ("--hostname", req.hostname.is_some()),
                ("-p/--publish", !req.ports.is_empty() || req.publish_all),
                ("--dns", !req.dns.is_empty()),
                ("--dns-search", !req.dns_search.is_empty()),
                ("--dns-option", !req.dns_options.is_empty()),
                ("--add-host", !req.extra_hosts.is_empty()),
                ("--mac-address", req.mac_address.is_some()),
                (
                    "--ip/--network-alias",
                    req.ip.is_some() || !req.network_aliases.is_empty(),
                ),
            ];
            if let Some((flag, _)) = conflicts.iter().find(|(_, set)| *set) {
                return Err(EngineError::invalid(
                    *flag,
                    "conflicting options: it cannot be used with --network container:<name>",
                ));
            }
            if let NetworkMode::Container(_) = t.config.network_mode {
                return Err(EngineError::invalid(
                    "--network",
                    format!(
                        "container {} itself shares another container's network: join that one",
                        t.name()
                    ),
                ));
            }
            joined_hostname = Some(t.config.hostname.clone());
            network_mode = NetworkMode::Container(t.id().as_str().to_string());
        }
        let links = self.resolve_links(&req.links, &network_mode, &networks)?;
        let mut network_links = BTreeMap::new();
        if let Some(first) = networks.first() {
            if !req.endpoint_links.is_empty() && first != "bridge" {
                for l in &req.endpoint_links {
                    crate::container::links::parse_link(l)?;
                }
                network_links.insert(first.clone(), req.endpoint_links.clone());
            }
        }
        let mut ports = req.ports.clone();
        if req.publish_all {
            let exposed = image_config_exposed(&self.store().image_config_raw(&image.id)?);
            for (port, proto) in exposed {
                if !ports
                    .iter()
                    .any(|p| p.container_port == port && p.proto == proto)
                {
                    ports.push(crate::config::PortMapping {
                        host_ip: String::new(),
                        host_port: 0,
                        container_port: port,
                        proto,
                        picked: true,
                    });
                }
            }
        }
        if !ports.is_empty() && networks.is_empty() && rootless_net.is_none() {
            return Err(EngineError::invalid(
                "-p/--publish",
                "published ports need a bridge network: leave out --network none/host, or use --network NAME",
            ));
        }
        for p in ports.iter_mut().filter(|p| p.host_port == 0) {
            p.host_port = free_port(&p.proto)?;
            p.picked = true;
        }
        let exposed_ports = crate::ports::exposed(
            &image_config_exposed(&self.store().image_config_raw(&image.id)?),
            &req.expose,
            &ports,
        )?;
        let first_net = match networks.first() {
            Some(n) => Some(self.store().network(n)?),
            None => None,
        };
        let needs_net = |what: &str| {
            EngineError::invalid(
                what,
                "it needs a bridge network (leave out --network none/host)",
            )
        };
        let user_net = first_net
            .as_ref()
            .filter(|n| !crate::networks::is_default(n));
        if let Some(ip) = &req.ip {
            let n = first_net.as_ref().ok_or_else(|| needs_net("--ip"))?;
            if user_net.is_none() {
                return Err(EngineError::invalid(
                    "--ip",
                    "a user-specified address is supported on user-defined networks only (berth network create NAME)",
                ));
            }
            check_ip(n, ip)?;
        }
        if let Some(n) = &first_net {
            check_endpoint(n, &req.endpoint)?;
        }
        if !req.network_aliases.is_empty() && user_net.is_none() {
            return Err(EngineError::invalid(
                "--network-alias",
                "network-scoped aliases are supported only on user-defined networks (--network NAME)",
            ));
        }
        if let Some(m) = &req.mac_address {
            parse_mac(m)?;
        }
        for d in &req.dns {
            d.parse::<std::net::IpAddr>().map_err(|_| {
                EngineError::invalid("--dns", format!("{d:?} is not an IP address"))
            })?;
        }
        let mut extra_hosts = Vec::new();
        for h in &req.extra_hosts {
            let (name, ip) = h.split_once(':').ok_or_else(|| {
                EngineError::invalid("--add-host", format!("{h:?}: expected host:ip"))
            })?;
            let ip = if ip == "host-gateway" {
                first_net
                    .as_ref()
                    .map(|n| n.gateway.clone())
                    .ok_or_else(|| needs_net("--add-host host-gateway"))?
            } else {
                ip.parse::<std::net::IpAddr>().map_err(|_| {
                    EngineError::invalid("--add-host", format!("{ip:?} is not an IP address"))
                })?;
                ip.to_string()
            };
            if name.is_empty() {
                return Err(EngineError::invalid(
                    "--add-host",
                    format!("{h:?}: empty host name"),
                ));
            }
            extra_hosts.push(format!("{ip}\t{name}"));
        }
        let image_config = self.store().image_config(&image.id)?;
        let ic = image_config.config().clone().unwrap_or_default();

        let id = id.unwrap_or_else(ContainerId::random);
        let mut env: Vec<String> = ic.env().clone().unwrap_or_default();
        for e in &req.env {
            let (key, value) = match e.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                // A bare name unsets the variable (the CLI filled in the
                // ones set where it runs, as docker's CLI does; the engine
                // never reads its own environment for a container).
                None => (e.clone(), None),
            };
            if key.is_empty() {
                return Err(EngineError::invalid(
                    "environment variable",
                    format!("{e:?}: empty name"),
                ));
            }
            env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
            match value {
                Some(v) => env.push(format!("{key}={v}")),
                None => env.push(key),
            }
        }
        let entrypoint: Vec<String> = match &req.entrypoint {
            Some(e) if e.len() == 1 && e[0].is_empty() => Vec::new(),
            Some(e) => e.clone(),
            None => ic.entrypoint().clone().unwrap_or_default(),
        };
        let cmd: Vec<String> = if !req.cmd.is_empty() {
            req.cmd.clone()
        } else if req.entrypoint.is_some() {
            Vec::new()
        } else {
            ic.cmd().clone().unwrap_or_default()
        };
        let mut args = entrypoint.clone();
        args.extend(cmd.iter().cloned());
        shell_split_check(&args)?;
        let working_dir = match &req.workdir {
            Some(w) => {
                if !w.starts_with('/') {
                    return Err(EngineError::invalid(
                        "-w",
                        format!("{w:?}: the working directory must be an absolute path"),
                    ));
                }
                w.clone()
            }
            None => ic.working_dir().clone().unwrap_or_default(),
        };
        let mut labels: BTreeMap<String, String> = ic
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        labels.extend(req.labels.clone());
        let adds: Vec<CapArg> = req.cap_add.iter().map(|(c, _)| *c).collect();
        let drops: Vec<CapArg> = req.cap_drop.iter().map(|(c, _)| *c).collect();
        let mut tmpfs = BTreeMap::new();
        for (dest, opts) in &req.tmpfs {
            if !dest.starts_with('/') || dest.split('/').any(|c| c == "..") {
                return Err(EngineError::invalid(
                    "--tmpfs",
                    format!("{dest:?}: the mount point must be an absolute path"),
                ));
            }
            tmpfs.insert(dest.clone(), opts.clone());
        }
        let plan = self.plan_mounts(
            &req.volumes,
            &req.mounts,
            &req.volumes_from,
            &tmpfs,
            &ic.volumes().clone().unwrap_or_default(),
        )?;
        // Rootless, a host directory cannot be idmapped (its filesystem
        // belongs to the host's user namespace): said, not ignored.
        if rootless && !matches!(userns_req, crate::userns::Request::Host) {
            if let Some(m) = plan.mounts.iter().find(|m| m.idmap) {
                return Err(EngineError::invalid(
                    "--volume",
                    format!(
                        "{}: rootless berth cannot idmap a bind mount (an idmapped mount of a host directory needs the host's root): drop :idmap — its files then show inside as the ids they map to, the others as nobody — or give them to the container's user with :U",
                        m.target
                    ),
                ));
            }
        }
        let volume_driver = req.volume_driver.clone().unwrap_or_default();
        if !volume_driver.is_empty() && volume_driver != "local" {
            if let Some(m) = plan
                .mounts
                .iter()
                .find(|m| m.kind == crate::config::MountType::Volume)
            {
                // dockerd's words: no plugin of that name.
                return Err(EngineError::invalid(
                    "--volume-driver",
                    format!(
                        "create {}: error looking up volume plugin {volume_driver}: plugin {volume_driver:?} not found (berth has the local driver only)",
                        m.source
                    ),
                ));
            }
        }
        // Nothing is recorded yet. A volume to fill, or rootless berth's
        // first overlay probe of this boot, forks a helper.
        if !may_fork
            && (plan
                .mounts
                .iter()
                .any(|m| m.kind == crate::config::MountType::Volume)
                || (keep_id.is_none() && self.overlay_probe_pending()))
        {
            return Ok(None);
        }
        let network_mode_name = match rootless_net {
            Some(tool) => tool.name().to_string(),
            None => req
                .network_mode_name
                .clone()
                .unwrap_or_else(|| network_mode.docker_name(&networks)),
        };
        let endpoint_extras = match (networks.first(), req.endpoint.is_empty()) {
            (Some(first), false) => BTreeMap::from([(first.clone(), req.endpoint.clone())]),
            _ => BTreeMap::new(),
        };
        let config = ContainerConfig {
            image: req.image.clone(),
            hostname: req
                .hostname
                .clone()
                .or(joined_hostname)
                .unwrap_or_else(|| id.short().to_string()),
            // keep-id: the user's ids unless -u says otherwise (podman).
            user: req.user.clone().unwrap_or_else(|| match &keep_id {
                Some(k) => format!("{}:{}", k.uid, k.gid),
                None => ic.user().clone().unwrap_or_default(),
            }),
            env,
            cmd,
            entrypoint,
            working_dir,
            labels,
            tty: req.tty,
            open_stdin: req.interactive,
            stop_signal: req
                .stop_signal
                .map(|s| s.to_string())
                .or_else(|| ic.stop_signal().clone())
                .unwrap_or_else(|| "SIGTERM".to_string()),
            stop_timeout: req.stop_timeout,
            auto_remove: req.auto_remove,
            network_mode,
            networks,
            ports,
            publish_all: req.publish_all,
            exposed_ports,
            network_aliases: req.network_aliases.clone(),
            connect_aliases,
            connect_ips,
            ip: req.ip.clone(),
            mac_address: req.mac_address.clone(),
            dns: req.dns.clone(),
            dns_search: req.dns_search.clone(),
            dns_options: req.dns_options.clone(),
            extra_hosts,
            read_only: req.read_only,
            tmpfs,
            shm_size: req.shm_size.unwrap_or(0),
            domainname: req.domainname.clone().unwrap_or_default(),
            pid_mode,
            ipc_mode,
            sysctls: req.sysctls.clone(),
            mounts: plan.mounts,
            cgroup_parent: req.cgroup_parent.clone().unwrap_or_default(),
            memory: req.memory.unwrap_or(0) as i64,
            memory_swap: req.memory_swap.unwrap_or(0),
            memory_reservation: req.memory_reservation.unwrap_or(0) as i64,
            nano_cpus: req.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            cpu_shares: req.cpu_shares.unwrap_or(0),
            pids_limit: req.pids_limit.unwrap_or(0),
            ulimits: req.ulimits.clone(),
            capabilities: model::capability::resolve(req.privileged, &adds, &drops),
            cap_add: req.cap_add.iter().map(|(_, s)| s.clone()).collect(),
            cap_drop: req.cap_drop.iter().map(|(_, s)| s.clone()).collect(),
            security_opt: req.security_opt.clone(),
            seccomp,
            no_new_privileges,
            privileged: req.privileged,
            init: req.init,
            runtime: runtime_name,
            restart_policy: req.restart,
            healthcheck: if req.no_healthcheck {
                Some(crate::health::HealthConfig {
                    test: vec!["NONE".into()],
                    ..Default::default()
                })
            } else {
                crate::health::HealthConfig::merge(
                    image_healthcheck(&self.store().image_config_raw(&image.id)?).as_ref(),
                    &req.health,
                )
            },
            health_on_failure: req.health_on_failure,
            log_config: req.log_config.clone(),
            extra_layers: req.extra_layers.clone(),
            group_add: req.group_add.clone(),
            uts_mode,
            device_cgroup_rules: req.device_cgroup_rules.clone(),
            devices: req.devices.clone(),
            isolation,
            volumes_from: req.volumes_from.clone(),
            cpuset_cpus,
            cpuset_mems,
            blkio,
            volume_driver,
            network_mode_name,
            connect_macs: BTreeMap::new(),
            endpoint_extras,
            links,
            network_links,
            pod: match &req.pod {
                PodMembership::None => String::new(),
                PodMembership::Member(p) | PodMembership::Infra(p) => p.clone(),
            },
            pod_infra: matches!(req.pod, PodMembership::Infra(_)),
            userns,
        };
        // A -u the image's /etc/passwd lacks is not refused here: as in
        // Docker, the container is created and its start fails.
        let mut dirs = self.store().layer_dirs(&image.id)?;
        dirs.extend(req.extra_layers.iter().cloned());
        dirs.reverse();

        let mut name = match &req.name {
            Some(n) => n.trim_start_matches('/').to_string(),
            None => self.random_name()?,
        };
        let mut record = store::ContainerRecord {
            id: id.clone(),
            name,
            image_id: image.id.clone(),
            image_ref: req.image.clone(),
            created: Utc::now(),
            config: serde_json::to_value(&config)
                .map_err(|e| EngineError::io("encoding config", std::io::Error::other(e)))?,
            state: serde_json::to_value(ContainerState::default())
                .map_err(|e| EngineError::io("encoding state", std::io::Error::other(e)))?,
        };
        // A generated name can be taken by a concurrent create between
        // the check and the insert: draw another.
        let mut tries = 0;
        // `auto`: the range is chosen in the transaction that records the
        // container, among those no other container holds.
        let mut amend = |config: &mut serde_json::Value,
                         others: &[serde_json::Value]|
         -> std::result::Result<(), String> {
            let Some((pool, size, forced_uid, forced_gid)) = &auto_pool else {
                return Ok(());
            };
            let taken = crate::userns::taken_by(others);
            let (uid, gid) =
                crate::userns::auto_maps(pool, &taken, *size, (forced_uid, forced_gid), rootless)?;
            config["userns"]["uid_map"] = serde_json::json!(uid);
            config["userns"]["gid_map"] = serde_json::json!(gid);
            Ok(())
        };
        let dir = loop {
            match self
                .store()
                .create_container_with(&mut record, &plan.volumes, &mut amend)
            {
                Err(store::StoreError::NameInUse { .. }) if req.name.is_none() && tries < 8 => {
                    tries += 1;
                    name = self.random_name()?;
                    record.name = name.clone();
                }
                other => break other?,
            }
        };
        crate::faults::point("create.record-written");
        // On a user network the network's DNS responder (its gateway)
        // answers, and relays other names to the host's resolvers.
        let dns = match config.networks.first() {
            Some(n) => {
                let n = self.store().network(n)?;
                (!crate::networks::is_default(&n)).then_some(n.gateway)
            }
            // slirp4netns answers DNS on 10.0.2.3 and sends it on to the
            // host's resolver from the host's side, which also serves a
            // resolver on the host's loopback (systemd-resolved's
            // 127.0.0.53) the container cannot reach: podman's choice.
            None if rootless_net == Some(crate::usernet::Tool::Slirp4netns) => {
                Some(crate::usernet::SLIRP_DNS.to_string())
            }
            None => None,
        };
        // Rootless maps of the container's own (keep-id's, `--uidmap`'s,
        // `auto`'s, whose range the transaction above chose): its copied
        // root's owners go through them.
        let nested = if rootless && !matches!(userns_req, crate::userns::Request::Host) {
            serde_json::from_value::<crate::config::UserNs>(record.config["userns"].clone())
                .ok()
                .filter(crate::config::UserNs::is_private)
        } else {
            None
        };
        let shift = nested
            .as_ref()
            .and_then(crate::container::copyroot::shift_of);
        // A copied root (vfs, keep-id, rootless maps) before the volumes
        // are filled from it.
        let copied = {
            let mut base_first = dirs.clone();
            base_first.reverse();
            match self.make_copied_root(&dir, &base_first, keep_id.as_ref(), shift.as_ref()) {
                Ok(true) => {
                    self.fill_volumes(&config, &[dir.join(crate::container::copyroot::DIR)])
                }
                Ok(false) => self.fill_volumes(&config, &dirs),
                Err(e) => Err(e),
            }
        };
        crate::faults::point("create.volumes-filled");
        let written = copied
            .and_then(|()| write_etc_files(&dir, &config, dns.as_deref()))
            .and_then(|()| match &nested {
                // keep-id's stay the user's (the container's own id).
                Some(u) if keep_id.is_none() => give_etc_files(&dir, u.host_ids(0, 0)),
                _ => Ok(()),
            });
        if let Err(e) = written {
            let _ = self.store().remove_container(&id);
            self.remove_anonymous_volumes(&config.mounts);
            return Err(e);
        }
        crate::faults::point("create.files-written");
        let c = Container::from_record(record)?;
        self.emit_container(&c, "create", &[]);
        Ok(Some(c))
    }

    pub(crate) fn random_name(&self) -> Result<String> {
        const LEFT: &[&str] = &[
            "brave",
            "calm",
            "eager",
            "fond",
            "keen",
            "lucid",
            "merry",
            "quiet",
            "swift",
            "witty",
            "bold",
            "proud",
            "amazing",
            "busy",
            "clever",
            "dazzling",
            "elegant",
            "festive",
            "gentle",
            "happy",
            "jolly",
            "kind",
            "lively",
            "modest",
            "nifty",
            "optimistic",
            "peaceful",
            "quirky",
            "relaxed",
            "serene",
            "tender",
            "upbeat",
            "vibrant",
            "wise",
            "zealous",
            "agile",
            "bright",
            "cosmic",
            "daring",
            "epic",
        ];
        const RIGHT: &[&str] = &[
            "turing",
            "hopper",
            "lovelace",
            "ritchie",
            "thompson",
            "knuth",
            "dijkstra",
            "torvalds",
            "shannon",
            "liskov",
            "lamport",
            "hamilton",
            "babbage",
            "curie",
            "darwin",
            "einstein",
            "feynman",
            "galileo",
            "hawking",
            "joliot",
            "kepler",
            "lumiere",
            "meitner",
            "newton",
            "noether",
            "pascal",
            "ramanujan",
            "sinoussi",
            "tesla",
            "volta",
            "wozniak",
            "yonath",
            "archimedes",
            "bohr",
            "cerf",
            "diffie",
            "euler",
            "fermat",
            "goodall",
            "hellman",
            "johnson",
            "kilby",
            "leakey",
            "mccarthy",
            "napier",
            "ostrom",
            "perlman",
            "raman",
            "stallman",
            "wing",
        ];
        for _ in 0..16 {
            let r = random_u32() as usize;
            let n = format!(
                "{}_{}",
                LEFT[r % LEFT.len()],
                RIGHT[(r / LEFT.len()) % RIGHT.len()]
            );
            if self.store().container(&n).is_err() {
                return Ok(n);
            }
        }
        let r = random_u32();
        Ok(format!("berth_{r:08x}"))
    }
}

/// Which cpuset list `check_cpuset` checks.
#[derive(Clone, Copy)]
pub(crate) enum Cpuset {
    Cpus,
    Mems,
}

/// `--cpuset-cpus` / `--cpuset-mems`: a list (`0-2,4`) of CPUs or memory
/// nodes this host has, checked as dockerd checks it; kept as given.
pub(crate) fn check_cpuset(list: Option<&str>, which: Cpuset) -> Result<String> {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return Ok(String::new());
    };
    let (what, online, noun) = match which {
        Cpuset::Cpus => ("cpus", "/sys/devices/system/cpu/online", "CPUs"),
        Cpuset::Mems => ("mems", "/sys/devices/system/node/online", "memory nodes"),
    };
    let asked = parse_id_list(list).ok_or_else(|| {
        EngineError::Refused(format!(
            "Invalid value {list} for cpuset {what}: invalid format: {list}"
        ))
    })?;
    // A kernel without NUMA has node 0 only.
    let available = std::fs::read_to_string(online)
        .unwrap_or_else(|_| "0".to_string())
        .trim()
        .to_string();
    let have = parse_id_list(&available).unwrap_or_default();
    if !asked.is_subset(&have) {
        return Err(EngineError::Refused(format!(
            "Requested {noun} are not available - requested {list}, available: {available}"
        )));
    }
    Ok(list.to_string())
}

/// A kernel list of ids (`0-2,4`), as Go's `parsers.ParseUintList` reads it.
pub(crate) fn parse_id_list(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut out = std::collections::BTreeSet::new();
    for part in s.split(',') {
        let num = |n: &str| -> Option<u32> {
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| n.parse().ok())
                .flatten()
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(num(part)?);
            }
        }
    }
    Some(out)
}

/// `ExposedPorts` of an image config: `{"80/tcp": {}}`.
/// The image's `HEALTHCHECK` (Docker's `config.Healthcheck`).
fn image_healthcheck(raw: &[u8]) -> Option<crate::health::HealthConfig> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    serde_json::from_value(v["config"]["Healthcheck"].clone()).ok()
}

/// Docker's limits on `--health-*`.
fn check_health_flags(h: &crate::health::HealthConfig) -> Result<()> {
    for (flag, v) in [
        ("--health-interval", h.interval),
        ("--health-timeout", h.timeout),
        ("--health-start-period", h.start_period),
        ("--health-start-interval", h.start_interval),
    ] {
        if v < 0 || (v > 0 && v < 1_000_000) {
            return Err(EngineError::invalid(
                flag,
                "must be at least 1ms (or 0 for the default)",
            ));
        }
    }
    if h.retries < 0 {
        return Err(EngineError::invalid(
            "--health-retries",
            "cannot be negative",
        ));
    }
    Ok(())
}

fn image_config_exposed(raw: &[u8]) -> Vec<(u16, String)> {
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
    let mut out: Vec<(u16, String)> = v["config"]["ExposedPorts"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| {
                    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                    Some((p.parse().ok()?, proto.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `aa:bb:cc:dd:ee:ff`, a unicast address.
pub(crate) fn parse_mac(m: &str) -> Result<[u8; 6]> {
    let bad = || {
        EngineError::invalid(
            "--mac-address",
            format!("{m:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"),
        )
    };
    let parts: Vec<&str> = m.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 != 0 {
        return Err(EngineError::invalid(
            "--mac-address",
            format!("{m} is a multicast address"),
        ));
    }
    Ok(out)
}

/// `--ip` / `connect --ip`: a host address of `n` other than its gateway.
pub(crate) fn check_ip(n: &store::NetworkRecord, ip: &str) -> Result<()> {
    let addr: std::net::Ipv4Addr = ip
        .parse()
        .map_err(|_| EngineError::invalid("--ip", format!("{ip:?} is not an IPv4 address")))?;
    let subnet: network::Subnet = n
        .subnet
        .parse()
        .map_err(|e: String| EngineError::invalid("network", e))?;
    if !subnet.contains(addr)
        || addr == subnet.addr()
        || addr == subnet.broadcast()
        || n.gateway == ip
    {
        return Err(EngineError::invalid(
            "--ip",
            format!(
                "{ip} is not a free host address of network {} ({})",
                n.name, n.subnet
            ),
        ));
    }
    Ok(())
}

/// `--ip6` and `--link-local-ip` for an endpoint on `n`, refused with
/// dockerd's words.
pub(crate) fn check_endpoint(
    n: &store::NetworkRecord,
    ep: &crate::config::EndpointExtra,
) -> Result<()> {
    if let Some(ip6) = &ep.ip6 {
        let addr: std::net::Ipv6Addr = ip6
            .parse()
            .map_err(|_| EngineError::Refused(format!("invalid IPv6 address: {ip6}.")))?;
        match n.subnet6.as_deref().map(str::parse::<network::Subnet6>) {
            Some(Ok(s)) => {
                if !s.contains(addr) {
                    return Err(EngineError::Refused(format!(
                        "Invalid address {ip6}: It does not belong to any of this network's subnets."
                    )));
                }
                if n.ipv6_gateway().as_deref() == Some(ip6.as_str()) || addr == s.addr() {
                    return Err(EngineError::Refused("Address already in use.".into()));
                }
            }
            // The default bridge takes it (and gives no IPv6), as
            // dockerd 20.10.
            _ if crate::networks::is_default(n) => {}
            _ => {
                return Err(EngineError::Refused(
                    "user specified IP address is supported only when connecting to networks with user configured subnets.".into(),
                ))
            }
        }
    }
    for ll in &ep.link_local_ips {
        let ip: std::net::IpAddr = ll
            .parse()
            .map_err(|_| EngineError::Refused(format!("Invalid link-local IP address: [{ll}].")))?;
        let link_local = match ip {
            std::net::IpAddr::V4(a) => a.is_link_local(),
            std::net::IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80,
        };
        if !link_local {
            return Err(EngineError::Refused(format!(
                "invalid link local IP address: {ll}."
            )));
        }
    }
    Ok(())
}

/// A free host port, from the kernel's ephemeral range.
fn free_port(proto: &str) -> Result<u16> {
    let port = if proto == "udp" {
        std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("0.0.0.0:0").and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| EngineError::io("picking a free host port", e))
}

fn random_u32() -> u32 {
    u32::from_str_radix(&ContainerId::random().as_str()[..8], 16).unwrap_or(0)
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf for the container,
/// bind-mounted over the image's.
fn write_etc_files(dir: &std::path::Path, c: &ContainerConfig, dns: Option<&str>) -> Result<()> {
    let w = |name: &str, content: &str| {
        std::fs::write(dir.join(name), content)
            .map_err(|e| EngineError::io(format!("writing {name}"), e))
    };
    w("hostname", &format!("{}\n", c.hostname))?;
    w("hosts", &hosts_file(c, &[]))?;
    w("resolv.conf", &resolv_conf(c, dns))?;
    std::fs::create_dir_all(dir.join("rootfs"))
        .map_err(|e| EngineError::io("creating rootfs dir", e))
}

/// Rootless with maps of the container's own: berth's files bound on
/// `/etc` belong to the container's root (as podman chowns them), since
/// they cannot be idmapped there and the user who made them may be no id
/// of the container's.
fn give_etc_files(dir: &std::path::Path, (uid, gid): (u32, u32)) -> Result<()> {
    for name in ["hostname", "hosts", "resolv.conf"] {
        std::os::unix::fs::lchown(dir.join(name), Some(uid), Some(gid))
            .map_err(|e| EngineError::io(format!("giving {name} to the container's root"), e))?;
    }
    Ok(())
}

/// The container's /etc/hosts: the host's with `--network host`, else
/// Docker's standard entries; then `--add-host` entries and `links`
/// (`IP\tnames`); then the container's own name, on 127.0.1.1 until the
/// monitor puts its address there at start.
pub(crate) fn hosts_file(c: &ContainerConfig, links: &[String]) -> String {
    let mut hosts = match c.network_mode {
        NetworkMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        NetworkMode::None | NetworkMode::Container(_) => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string(),
    };
    for h in c.extra_hosts.iter().chain(links) {
        hosts.push_str(h);
        hosts.push('\n');
    }
    if c.network_mode != NetworkMode::Host {
        hosts.push_str(&format!("127.0.1.1\t{}\n", c.hostname));
    }
    hosts
}

/// The container's /etc/resolv.conf: `dns` (a user network's responder)
/// or the host's resolvers, with `--dns`, `--dns-search`, `--dns-option`.
pub(crate) fn resolv_conf(c: &ContainerConfig, dns: Option<&str>) -> String {
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = match (dns, c.dns.is_empty()) {
        (_, false) | (Some(_), true) => {
            let mut r = String::new();
            if c.dns.is_empty() {
                r.push_str(&format!("nameserver {}\n", dns.unwrap_or_default()));
            }
            for d in &c.dns {
                r.push_str(&format!("nameserver {d}\n"));
            }
            for l in host_resolv.lines() {
                let t = l.trim_start();
                if (t.starts_with("search") && c.dns_search.is_empty())
                    || (t.starts_with("options") && c.dns_options.is_empty())
                {
                    r.push_str(l);
                    r.push('\n');
                }
            }
            r
        }
        (None, true) if c.network_mode != NetworkMode::Host => network::dns::container_resolv_conf(
            &host_resolv,
            std::fs::read_to_string("/run/systemd/resolve/resolv.conf")
                .ok()
                .as_deref(),
        )
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            let replaced_search = t.starts_with("search") && !c.dns_search.is_empty();
            let replaced_options = t.starts_with("options") && !c.dns_options.is_empty();
            !replaced_search && !replaced_options
        })
        .map(|l| format!("{l}\n"))
        .collect(),
        (None, true) => host_resolv
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                let replaced_search = t.starts_with("search") && !c.dns_search.is_empty();
                let replaced_options = t.starts_with("options") && !c.dns_options.is_empty();
                !replaced_search && !replaced_options
            })
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    // Docker's layout: `search`, then the name servers, then `options`.
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut rest: Vec<String> = Vec::new();
    for l in resolv.lines() {
        let t = l.trim_start();
        if t.starts_with("search") {
            search.push(l.to_string());
        } else if t.starts_with("options") {
            options.push(l.to_string());
        } else {
            rest.push(l.to_string());
        }
    }
    if !c.dns_search.is_empty() {
        search.push(format!("search {}", c.dns_search.join(" ")));
    }
    if !c.dns_options.is_empty() {
        options.push(format!("options {}", c.dns_options.join(" ")));
    }
    search
        .into_iter()
        .chain(rest)
        .chain(options)
        .map(|l| l + "\n")
        .collect()
}

impl Engine {
    /// `--pid` / `--ipc`: one of `plain`, empty, or `container:NAME` (which
    /// must exist; kept as `container:<id>`, as Docker keeps it).
    /// The containers whose namespaces `req` joins, with the flag that
    /// names them (`--network container:`…); `None` for a pod's infra.
    fn namespace_donors(
        &self,
        req: &CreateRequest,
        pid_mode: &str,
        ipc_mode: &str,
    ) -> Result<Vec<(&'static str, Container)>> {
        let mut out = Vec::new();
        // A pod's members join its infra's namespaces (UTS too).
        if let PodMembership::Member(p) = &req.pod {
            let pod = self.pod(p)?;
            out.push(("--pod", self.container(&pod.config.infra_id)?));
        }
        if let NetworkMode::Container(x) = &req.network {
            out.push(("--network container:", self.container(x)?));
        }
        for (flag, mode) in [
            ("--ipc container:", ipc_mode),
            ("--pid container:", pid_mode),
        ] {
            if let Some(x) = mode.strip_prefix("container:") {
                out.push((flag, self.container(x)?));
            }
        }
        Ok(out)
    }

    /// Which user namespace a container with `userns` is in, as a key
    /// equal for containers sharing one: empty for the host's (rootless:
    /// berth's), the id of the container that made it (`own`), or the
    /// `ns:PATH` joined (`container:` leads to the donor's).
    fn userns_key(&self, userns: &crate::config::UserNs, own: &str) -> String {
        let mut u = userns.clone();
        let mut own = own.to_string();
        // A chain of `container:` donors is short; a cycle cannot be made
        // (a donor exists before its joiner), the bound is for safety.
        for _ in 0..64 {
            if !u.is_private() {
                return String::new();
            }
            match u.mode.split_once(':') {
                Some(("container", id)) => match self.container(id) {
                    Ok(d) => {
                        own = d.id().to_string();
                        u = d.config.userns.clone();
                    }
                    Err(_) => return format!("gone:{id}"),
                },
                Some(("ns", path)) => return format!("ns:{path}"),
                _ => return own,
            }
        }
        own
    }

    /// The user namespace a [`Engine::userns_key`] names, as `ino:DEV:INO`
    /// where it can be seen now (an `ns:` path; a running container's
    /// own), else the key itself.
    fn userns_identity(&self, key: &str) -> String {
        use std::os::unix::fs::MetadataExt;
        let path = match key.strip_prefix("ns:") {
            Some(p) => Some(std::path::PathBuf::from(p)),
            None if key.is_empty() || key.starts_with("gone:") => None,
            None => self
                .container(key)
                .ok()
                .filter(|c| c.state.is_alive())
                .map(|c| std::path::PathBuf::from(format!("/proc/{}/ns/user", c.state.pid))),
        };
        match path.and_then(|p| std::fs::metadata(p).ok()) {
            Some(m) => format!("ino:{}:{}", m.dev(), m.ino()),
            None => key.to_string(),
        }
    }

    fn namespace_mode(&self, flag: &str, mode: Option<&str>, plain: &[&str]) -> Result<String> {
        match mode {
            None | Some("") => Ok(String::new()),
            Some(m) if plain.contains(&m) => Ok(m.to_string()),
            Some(m) if m.starts_with("container:") && m.len() > "container:".len() => {
                let target = self.container(&m["container:".len()..])?;
                Ok(format!("container:{}", target.id()))
            }
            Some(m) => Err(EngineError::invalid(
                flag,
                format!(
                    "{m:?}: berth supports {} and container:NAME (or leave it out for the container's own)",
                    plain.join(", ")
                ),
            )),
        }
    }
}

/// `--userns=ns:PATH`: the maps of the user namespace at PATH (none: the
/// host's own, rootless berth's own).
fn userns_at(path: &std::path::Path) -> Result<crate::config::UserNs> {
    let mode = format!("ns:{}", path.display());
    let same = |a: &std::path::Path, b: &str| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            (a.dev(), a.ino()) == (b.dev(), b.ino())
        }
        _ => false,
    };
    let (_, maps) = runtime::userns::open_at(path)
        .map_err(|e| EngineError::invalid("--userns", format!("ns:{e}")))?;
    if same(path, "/proc/self/ns/user") {
        return Ok(crate::config::UserNs {
            mode,
            ..Default::default()
        });
    }
    let conv = |r: &[runtime::plan::IdRange]| -> Vec<crate::config::IdMapping> {
        r.iter()
            .map(|r| crate::config::IdMapping {
                container_id: r.container,
                host_id: r.host,
                size: r.size,
            })
            .collect()
    };
    let (uid_map, gid_map) = (conv(&maps.uid), conv(&maps.gid));
    if crate::config::IdMapping::host_of(&uid_map, 0).is_none()
        || crate::config::IdMapping::host_of(&gid_map, 0).is_none()
    {
        return Err(EngineError::invalid(
            "--userns",
            format!("{mode}: that user namespace does not map id 0 (berth sets a container up as its root)"),
        ));
    }
    Ok(crate::config::UserNs {
        mode,
        uid_map,
        gid_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits() {
        assert_eq!(parse_ulimit("nofile=1024:2048").unwrap().hard, 2048);
        assert_eq!(parse_ulimit("nproc=10").unwrap().soft, 10);
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile=10:5").is_err());
    }

    #[test]
    fn id_lists() {
        let l = parse_id_list("0-2,4").unwrap();
        assert_eq!(l.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 4]);
        for bad in ["", "x", "1-", "3-1", "1,,2", " 1"] {
            assert!(parse_id_list(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn security_opts() {
        assert!(
            parse_security_opts(&["no-new-privileges".into()])
                .unwrap()
                .0
        );
        assert!(
            !parse_security_opts(&["no-new-privileges:false".into()])
                .unwrap()
                .0
        );
        assert_eq!(
            parse_security_opts(&["seccomp=unconfined".into()])
                .unwrap()
                .1,
            SeccompSetting::Unconfined
        );
        assert!(parse_security_opts(&["seccomp=/nonexistent.json".into()]).is_err());
        assert!(parse_security_opts(&["bogus".into()]).is_err());
    }
}
