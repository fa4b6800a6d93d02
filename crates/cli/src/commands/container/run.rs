//! `run`, `create` and `start`.

use std::collections::BTreeMap;

use clap::Args;
use engine::config::NetworkMode;
use engine::container::create::{parse_ulimit, CreateRequest};
use engine::container::start::AttachMode;
use engine::Engine;

use crate::Failure;

use super::{bad, parse_memory_flags};

/// Options of `run` and `create` (Docker's names and short flags).
#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true, trailing_var_arg = true)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Skip the image policy (policy.toml) for this command; logged as an event.
    #[arg(long)]
    disable_policy: bool,
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Container name.
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read environment variables from files.
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// User name or uid, optionally with group (user[:group]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container hostname.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long = "read-only")]
    read_only: bool,
    /// Mount a tmpfs (dest[:options]).
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Size of /dev/shm (e.g. 256m).
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// PID namespace to use (host).
    #[arg(long)]
    pid: Option<String>,
    /// Container NIS domain name.
    #[arg(long)]
    domainname: Option<String>,
    /// Memory soft limit (e.g. 256m).
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// IPC mode to use (none, private, shareable, host, container:NAME).
    #[arg(long)]
    ipc: Option<String>,
    /// Namespaced kernel parameters (name=value).
    #[arg(long)]
    sysctl: Vec<String>,
    /// Mount a volume or host path: [name|/host/path:]/path[:ro|rw,U,nocopy,...].
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Mount: type=volume|bind|tmpfs,source=,target=[,readonly,...].
    #[arg(long = "mount")]
    mount: Vec<String>,
    /// Mount the volumes of another container (NAME[:ro|rw]).
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
    /// Memory limit (e.g. 512m).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// Process limit (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Security options (no-new-privileges, seccomp=unconfined|<profile.json>).
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Give extended privileges to the container.
    #[arg(long)]
    privileged: bool,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    init: bool,
    /// Additional groups to join (names from the container's /etc/group, or numbers).
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// UTS namespace to use (host).
    #[arg(long)]
    uts: Option<String>,
    /// Run in a pod (podman's): join its network, IPC and UTS namespaces
    /// (and pid with --share pid); `new:NAME` creates the pod first, with
    /// this container's -p, --network and --hostname.
    #[arg(long)]
    pod: Option<String>,
    /// User namespace: host (the default), auto[:size=N] (a range of its own
    /// from the subordinate ids of the `containers` user). keep-id and nomap are rootless only.
    #[arg(long)]
    userns: Option<String>,
    /// Map container uids to host uids: CONTAINER:HOST:SIZE (repeatable).
    #[arg(long = "uidmap")]
    uidmap: Vec<String>,
    /// Map container gids to host gids: CONTAINER:HOST:SIZE (repeatable; default: the uid map).
    #[arg(long = "gidmap")]
    gidmap: Vec<String>,
    /// Add a rule to the cgroup allowed devices list ('c 7:128 rwm').
    #[arg(long = "device-cgroup-rule")]
    device_cgroup_rule: Vec<String>,
    /// Add a host device to the container (HOST[:CONTAINER][:PERMISSIONS],
    /// permissions some of r, w, m).
    #[arg(long = "device")]
    device: Vec<String>,
    /// Container isolation technology (Linux has only default).
    #[arg(long)]
    isolation: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<String>,
    /// Block IO weight (relative device weight) (DEVICE:WEIGHT).
    #[arg(long = "blkio-weight-device")]
    blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device (DEVICE:RATE, e.g. /dev/sda:1mb).
    #[arg(long = "device-read-bps")]
    device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device (DEVICE:RATE).
    #[arg(long = "device-write-bps")]
    device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device (DEVICE:N).
    #[arg(long = "device-read-iops")]
    device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device (DEVICE:N).
    #[arg(long = "device-write-iops")]
    device_write_iops: Vec<String>,
    /// Make the container's cgroup below this path (a pod's member: below
    /// the pod's cgroup unless given).
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Volume driver for the container (only `local`).
    #[arg(long = "volume-driver")]
    volume_driver: Option<String>,
    /// Add a link to another container (name[:alias]).
    #[arg(long = "link")]
    link: Vec<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (seconds) to stop the container.
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    stop_timeout: Option<i64>,
    /// Set metadata labels (key=value).
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Network: bridge (the default), none, host, container:NAME, or a
    /// network made with `berth network create`.
    #[arg(long = "network", alias = "net", default_value = "default")]
    network: String,
    /// OCI runtime: berth (built in) or an OCI runtime binary such as runc.
    #[arg(long)]
    runtime: Option<String>,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries].
    #[arg(long, default_value = "no")]
    restart: String,
    /// Command to run to check health (run by /bin/sh -c in the container).
    #[arg(long = "health-cmd")]
    health_cmd: Option<String>,
    /// Time between health checks (e.g. 30s, 1m).
    #[arg(long = "health-interval")]
    health_interval: Option<String>,
    /// Maximum time a health check may run (e.g. 30s).
    #[arg(long = "health-timeout")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    health_retries: Option<i64>,
    /// Start period during which failures do not count (e.g. 10s).
    #[arg(long = "health-start-period")]
    health_start_period: Option<String>,
    /// Time between health checks during the start period (e.g. 5s).
    #[arg(long = "health-start-interval")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Action when the container turns unhealthy: none, kill, restart, stop.
    #[arg(long = "health-on-failure", default_value = "none")]
    health_on_failure: String,
    /// Logging driver: json-file (default), local, none.
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Log driver options (max-size=10m, max-file=3, compress=, labels=, env=).
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Publish a container's port to the host: [ip:][hostPort:]containerPort[/proto].
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish every EXPOSEd port to a random host port.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports (PORT[-END][/PROTO]).
    #[arg(long)]
    expose: Vec<String>,
    /// Another name for the container on its network.
    #[arg(long = "network-alias", alias = "net-alias")]
    network_alias: Vec<String>,
    /// IPv4 address on the network.
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address on the network.
    #[arg(long)]
    ip6: Option<String>,
    /// Link-local addresses on the network (IPv4 and IPv6).
    #[arg(long = "link-local-ip")]
    link_local_ip: Vec<String>,
    /// MAC address of the container's interface.
    #[arg(long)]
    mac_address: Option<String>,
    /// DNS server for the container.
    #[arg(long)]
    dns: Vec<String>,
    /// DNS search domain.
    #[arg(long)]
    dns_search: Vec<String>,
    /// resolv.conf option.
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    /// An /etc/hosts entry: host:ip (ip may be host-gateway).
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Pull the image: missing (default), always or never.
    #[arg(long, default_value = "missing")]
    pull: String,
    /// Platform to pull if the image is pulled (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Write the container's id to this file (which must not exist yet).
    #[arg(long)]
    cidfile: Option<std::path::PathBuf>,
    /// Suppress the pull output.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// The image, then the command and its arguments: everything after the
    /// image belongs to the command, even words that start with `-`.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    image_and_command: Vec<String>,
}

fn parse_caps(
    list: &[String],
    flag: &str,
) -> Result<Vec<(model::capability::CapArg, String)>, Failure> {
    list.iter()
        .map(|c| {
            model::capability::parse(c)
                .map(|a| (a, c.clone()))
                .map_err(|_| {
                    bad(
                        flag,
                        format!("unknown capability {c:?} (see capabilities(7); ALL is accepted)"),
                    )
                })
        })
        .collect()
}

/// docker's env-file rules: lines trimmed on the left only, `#` comments
/// and blank lines skipped, a variable name with white space refused.
/// `-e NAME` takes NAME's value from where the CLI runs, as docker's CLI
/// does; a name not set here stays bare (the container goes without it).
pub(crate) fn with_values_from_here(env: Vec<String>) -> Vec<String> {
    env.into_iter()
        .map(|e| match (e.contains('='), std::env::var(&e)) {
            (false, Ok(v)) => format!("{e}={v}"),
            _ => e,
        })
        .collect()
}

fn read_env_file(path: &str) -> Result<Vec<String>, Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad("--env-file", format!("{path}: {e}")))?;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim_start) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_once('=').map_or(line, |(k, _)| k);
        if name.contains(char::is_whitespace) {
            return Err(Failure::usage(format!(
                "poorly formatted environment: variable '{name}' contains whitespaces.\nSee 'berth run --help'."
            )));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

/// `--blkio-weight` as docker's flag parser (Go's `strconv.ParseUint`
/// into 16 bits) takes it.
pub(crate) fn parse_blkio_weight(v: &str, flag: &str) -> Result<u16, Failure> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::flag_value(
            v,
            flag,
            &format!("strconv.ParseUint: parsing {v:?}: invalid syntax"),
        ));
    }
    v.parse().map_err(|_| {
        Failure::flag_value(
            v,
            flag,
            &format!("strconv.ParseUint: parsing {v:?}: value out of range"),
        )
    })
}

/// Repeated `DEVICE:VALUE` flags, each parsed by `parse` (docker's words
/// for a bad one).
pub(crate) fn parse_device_flags<T>(
    values: &[String],
    flag: &str,
    parse: impl Fn(&str) -> Result<T, model::ParseError>,
) -> Result<Vec<T>, Failure> {
    values
        .iter()
        .map(|v| parse(v).map_err(|e| Failure::flag_value(v, flag, &e.to_string())))
        .collect()
}

impl CreateArgs {
    /// The block-I/O flags, checked as docker's CLI checks them.
    fn blkio(&self) -> Result<engine::blkio::BlkioLimits, Failure> {
        use model::blkio::{ThrottleDevice, WeightDevice};
        Ok(engine::blkio::BlkioLimits {
            weight: match &self.blkio_weight {
                Some(v) => parse_blkio_weight(v, "--blkio-weight")?,
                None => 0,
            },
            weight_device: parse_device_flags(
                &self.blkio_weight_device,
                "--blkio-weight-device",
                WeightDevice::parse,
            )?,
            read_bps: parse_device_flags(
                &self.device_read_bps,
                "--device-read-bps",
                ThrottleDevice::parse_bps,
            )?,
            write_bps: parse_device_flags(
                &self.device_write_bps,
                "--device-write-bps",
                ThrottleDevice::parse_bps,
            )?,
            read_iops: parse_device_flags(
                &self.device_read_iops,
                "--device-read-iops",
                ThrottleDevice::parse_iops,
            )?,
            write_iops: parse_device_flags(
                &self.device_write_iops,
                "--device-write-iops",
                ThrottleDevice::parse_iops,
            )?,
        })
    }

    /// `--pod` was given.
    pub fn in_pod(&self) -> bool {
        self.pod.as_deref().is_some_and(|p| !p.is_empty())
    }

    /// The image named on the command line.
    fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    fn request(&self) -> Result<CreateRequest, Failure> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().cloned());
        let env = with_values_from_here(env);
        let mut labels = BTreeMap::new();
        for l in &self.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        let (memory, memory_swap) =
            parse_memory_flags(self.memory.as_deref(), self.memory_swap.as_deref())?;
        let stop_signal = self
            .stop_signal
            .as_deref()
            .map(|s| {
                s.parse::<model::Signal>()
                    .map_err(|_| bad("--stop-signal", format!("{s:?} is not a signal")))
            })
            .transpose()?;
        let mut networks = Vec::new();
        let network = match self.network.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "bridge" | "default" => {
                networks.push("bridge".to_string());
                NetworkMode::None
            }
            other if other.starts_with("container:") => {
                let target = &other["container:".len()..];
                if target.is_empty() {
                    return Err(bad("--network", "container:<name|id> needs a container"));
                }
                NetworkMode::Container(target.to_string())
            }
            name => {
                networks.push(name.to_string());
                NetworkMode::None
            }
        };
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::from)?;
        let tmpfs = self
            .tmpfs
            .iter()
            .map(|t| {
                let (d, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
                (d.to_string(), o.to_string())
            })
            .collect();
        if self.image().is_empty() {
            return Err(bad("image", "an image name is required"));
        }
        let host_mode = network == NetworkMode::Host;
        // As docker's CLI: links on the default bridge are the container's
        // (HostConfig.Links), on a user-defined network its endpoint's.
        let (links, endpoint_links) = match (&network, networks.first()) {
            (_, _) if self.link.is_empty() => (Vec::new(), Vec::new()),
            (NetworkMode::None, Some(n)) if n == "bridge" => (self.link.clone(), Vec::new()),
            (NetworkMode::None, Some(_)) => (Vec::new(), self.link.clone()),
            _ => {
                return Err(Failure::usage(
                    "links are only supported for user-defined networks",
                ))
            }
        };
        // docker's CLI takes host or nothing.
        if self
            .uts
            .as_deref()
            .is_some_and(|m| !m.is_empty() && m != "host")
        {
            return Err(Failure::usage("--uts: invalid UTS mode"));
        }
        let blkio = self.blkio()?;
        let device_cgroup_rules = self
            .device_cgroup_rule
            .iter()
            .map(|r| {
                r.parse().map_err(|e| {
                    Failure::usage(format!(
                        "invalid argument {r:?} for \"--device-cgroup-rule\" flag: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CreateRequest {
            name: self.name.clone(),
            image: self.image().to_string(),
            cmd: self.image_and_command[1..].to_vec(),
            entrypoint: self.entrypoint.clone().map(|e| vec![e]),
            env,
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            hostname: self.hostname.clone(),
            labels,
            tty: self.tty,
            interactive: self.interactive,
            stop_signal,
            stop_timeout: self.stop_timeout,
            auto_remove: self.rm,
            network,
            networks,
            ports: {
                let mut v = Vec::new();
                for p in &self.publish {
                    v.extend(engine::config::PortMapping::parse(p).map_err(Failure::with_help)?);
                }
                if host_mode && (!v.is_empty() || self.publish_all) {
                    // As Docker: the host's ports are the container's already.
                    eprintln!(
                        "WARNING: Published ports are discarded when using host network mode"
                    );
                    v.clear();
                }
                v
            },
            publish_all: self.publish_all && !host_mode,
            expose: self.expose.clone(),
            network_aliases: self.network_alias.clone(),
            ip: self.ip.clone(),
            endpoint: engine::config::EndpointExtra {
                ip6: self.ip6.clone(),
                link_local_ips: self.link_local_ip.clone(),
                driver_opts: None,
            },
            // docker run sends `default` when no --network is given.
            network_mode_name: (self.network == "default").then(|| "default".to_string()),
            connect_aliases: Default::default(),
            connect_ips: Default::default(),
            mac_address: self.mac_address.clone(),
            dns: self.dns.clone(),
            dns_search: self.dns_search.clone(),
            dns_options: self.dns_option.clone(),
            extra_hosts: self.add_host.clone(),
            read_only: self.read_only,
            tmpfs,
            shm_size: self
                .shm_size
                .as_deref()
                .map(|s| {
                    model::size::parse_bytes(s)
                        .map_err(|_| bad("--shm-size", format!("{s:?}: use a size like 64m or 1g")))
                })
                .transpose()?,
            pid_mode: self.pid.clone(),
            domainname: self.domainname.clone(),
            memory_reservation: self
                .memory_reservation
                .as_deref()
                .map(|s| {
                    model::size::parse_bytes(s).map_err(|_| {
                        bad(
                            "--memory-reservation",
                            format!("{s:?}: use a size like 256m or 1g"),
                        )
                    })
                })
                .transpose()?,
            ipc_mode: self.ipc.clone(),
            sysctls: self
                .sysctl
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| bad("--sysctl", format!("{s:?}: use name=value")))
                })
                .collect::<Result<_, _>>()?,
            volumes: self.volume.clone(),
            mounts: self.mount.clone(),
            volumes_from: self.volumes_from.clone(),
            memory,
            memory_swap,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            pids_limit: self.pids_limit.map(|p| if p < 0 { 0 } else { p }),
            ulimits,
            cap_add: parse_caps(&self.cap_add, "--cap-add")?,
            cap_drop: parse_caps(&self.cap_drop, "--cap-drop")?,
            security_opt: self.security_opt.clone(),
            privileged: self.privileged,
            init: self.init,
            runtime: self.runtime.clone(),
            restart: engine::restart::RestartPolicy::parse(&self.restart)
                .map_err(Failure::with_help)?,
            health: self.health_flags()?,
            no_healthcheck: self.no_healthcheck,
            health_on_failure: engine::health::OnFailure::parse(&self.health_on_failure)
                .map_err(|e| bad("--health-on-failure", e))?,
            log_config: engine::logs::LogConfig {
                driver: self.log_driver.clone().unwrap_or_default(),
                config: self
                    .log_opt
                    .iter()
                    .map(|o| {
                        o.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| {
                                bad(
                                    "--log-opt",
                                    format!("{o:?}: use key=value, like max-size=10m"),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?,
            },
            extra_layers: Vec::new(),
            group_add: self.group_add.clone(),
            uts_mode: self.uts.clone(),
            device_cgroup_rules,
            devices: Vec::new(),
            isolation: self.isolation.clone(),
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            blkio,
            cgroup_parent: self.cgroup_parent.clone().filter(|p| !p.is_empty()),
            volume_driver: self.volume_driver.clone(),
            links,
            endpoint_links,
            pod: match &self.pod {
                Some(p) if !p.is_empty() => {
                    engine::container::create::PodMembership::Member(p.clone())
                }
                _ => engine::container::create::PodMembership::None,
            },
            userns: self.userns.clone(),
            uidmap: self.uidmap.clone(),
            gidmap: self.gidmap.clone(),
        })
    }

    /// The `--health-*` flags as a Healthcheck to lay over the image's.
    fn health_flags(&self) -> Result<engine::health::HealthConfig, Failure> {
        let d = |flag: &str, v: &Option<String>| -> Result<i64, Failure> {
            v.as_deref()
                .map(|s| engine::health::parse_duration(s).map_err(|e| bad(flag, e)))
                .transpose()
                .map(|o| o.unwrap_or(0))
        };
        let h = engine::health::HealthConfig {
            test: self
                .health_cmd
                .as_ref()
                .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
                .unwrap_or_default(),
            interval: d("--health-interval", &self.health_interval)?,
            timeout: d("--health-timeout", &self.health_timeout)?,
            start_period: d("--health-start-period", &self.health_start_period)?,
            start_interval: d("--health-start-interval", &self.health_start_interval)?,
            retries: self.health_retries.unwrap_or(0),
        };
        if self.no_healthcheck && (h != engine::health::HealthConfig::default()) {
            return Err(bad(
                "--no-healthcheck",
                "conflicting options: --no-healthcheck and the --health-* options",
            ));
        }
        Ok(h)
    }
}

/// Wait for an attached container to exit, proxying signals; its exit code.
pub(crate) fn attached_exit(
    engine: &Engine,
    mut launched: engine::container::start::Launched,
) -> Result<(), Failure> {
    let container = launched.container.clone();
    crate::terminal::proxy_until(launched.status_fd(), launched.init_pid, &|| {
        engine.resize(&container)
    });
    let code = match launched.wait_exit() {
        Some(c) => c,
        None => engine
            .container(launched.container.id().as_str())
            .map(|c| c.state.exit_code)
            .unwrap_or(125),
    };
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}

/// `run` (start = true) and `create`.
pub fn run(engine: &Engine, a: CreateArgs, start: bool) -> Result<(), Failure> {
    let mut req = a.request()?;
    // `--device`: the docker CLI's checks and words.
    for d in &a.device {
        req.devices
            .push(engine::config::DeviceMapping::parse(d).map_err(|e| {
                let verb = if start { "run" } else { "create" };
                Failure::usage(format!("{e}.\nSee 'berth {verb} --help'."))
            })?);
    }
    // `--pod new:NAME`: the pod first, with the container's network
    // options, which are the pod's then (podman).
    if let Some(name) = a.pod.as_deref().and_then(|p| p.strip_prefix("new:")) {
        let pod = engine
            .pod_create(&engine::pod::create::PodCreateRequest {
                name: Some(name.to_string()),
                hostname: req.hostname.take(),
                network: (a.network != "default").then(|| a.network.clone()),
                ports: std::mem::take(&mut req.ports),
                // The user namespace too: the members share the pod's.
                userns: req.userns.take(),
                uidmap: std::mem::take(&mut req.uidmap),
                gidmap: std::mem::take(&mut req.gidmap),
                ..Default::default()
            })
            .map_err(|e| {
                if start {
                    as_docker_run(e.into(), true)
                } else {
                    e.into()
                }
            })?;
        req.pod = engine::container::create::PodMembership::Member(pod.id);
        req.network_mode_name = Some("default".into());
    }
    // `docker run` words its failures its own way; `docker create` does not.
    let worded = |f: Failure| if start { as_docker_run(f, true) } else { f };
    let mut cidfile = CidFile::open(a.cidfile.as_deref()).map_err(Failure::with_help)?;
    if a.disable_policy {
        engine.disable_policy(if start { "run" } else { "create" }, a.image());
    }
    crate::commands::distribution::pull_for_run(
        engine,
        a.image(),
        &a.pull,
        a.platform.as_deref(),
        a.quiet,
    )
    .map_err(worded)?;
    if let Some(w) = engine::rootless::limit_warning(&req) {
        eprintln!("{w}");
    }
    // dockerd's create warnings, as docker's CLI prints them.
    for w in req.blkio.warnings().map_err(|e| worded(e.into()))? {
        eprintln!("WARNING: {w}");
    }
    // Rootless, pasta's start (most of a rootless start) overlaps the
    // create from here on.
    let early = start.then(|| engine.early_user_net(&req)).flatten();
    let c = engine
        .create_early(&req, early.as_ref())
        .map_err(|e| worded(e.into()))?;
    cidfile.write(c.id().as_str()).map_err(worded)?;
    if !start {
        println!("{}", c.id());
        return Ok(());
    }
    if a.detach {
        engine
            .start_early(c.id().as_str(), AttachMode::Detached, early)
            .map_err(|e| as_docker_run(e.into(), false))?;
        println!("{}", c.id());
        return Ok(());
    }
    let _raw = (a.tty && a.interactive && crate::terminal::stdin_is_tty())
        .then(crate::terminal::RawMode::enable);
    let launched = engine
        .start_early(
            c.id().as_str(),
            AttachMode::Foreground {
                stdin: a.interactive,
            },
            early,
        )
        .map_err(|e| as_docker_run(e.into(), false))?;
    attached_exit(engine, launched)
}

/// `--cidfile`, as docker's CLI keeps it: made (empty) before the image is
/// pulled, refused if it exists, the id written once the container is
/// created, removed again if it never was.
struct CidFile {
    path: Option<std::path::PathBuf>,
    written: bool,
}

impl CidFile {
    fn open(path: Option<&std::path::Path>) -> Result<CidFile, String> {
        let Some(path) = path else {
            return Ok(CidFile {
                path: None,
                written: false,
            });
        };
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(format!(
                "container ID file found, make sure the other container isn't running or delete {}",
                path.display()
            ));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| format!("failed to create the container ID file: {e}"))?;
        Ok(CidFile {
            path: Some(path.to_path_buf()),
            written: false,
        })
    }

    fn write(&mut self, id: &str) -> Result<(), Failure> {
        if let Some(p) = &self.path {
            std::fs::write(p, id).map_err(|e| {
                Failure::msg(
                    125,
                    format!("failed to write the container ID to the file: {e}"),
                )
            })?;
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let (Some(p), false) = (&self.path, self.written) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A failed `run` in the docker CLI's words: the message ends with a
/// period, and a failure to create adds where to find help.
fn as_docker_run(mut f: Failure, help: bool) -> Failure {
    if let Some(m) = f.message.as_mut() {
        if !m.ends_with('.') {
            m.push('.');
        }
        if help {
            m.push_str("\nSee 'berth run --help'.");
        }
    }
    f
}

/// `start`.
#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach stdout/stderr and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach stdin.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `start`.
pub fn start(engine: &Engine, a: StartArgs) -> Result<(), Failure> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(bad(
                "start",
                "you cannot start and attach multiple containers at once",
            ));
        }
        let c = engine.container(&a.containers[0])?;
        if c.is_running() {
            return Ok(());
        }
        let _raw = (c.config.tty && a.interactive && crate::terminal::stdin_is_tty())
            .then(crate::terminal::RawMode::enable);
        let launched = engine.start(
            &a.containers[0],
            AttachMode::Foreground {
                stdin: a.interactive,
            },
        )?;
        return attached_exit(engine, launched);
    }
    // As docker: each failure said as it happens, then one line naming
    // them all, exit status 1.
    let mut failed = Vec::new();
    for name in &a.containers {
        match engine.container(name) {
            Ok(c) if c.is_running() => println!("{name}"),
            Ok(_) => match engine.start(name, AttachMode::Detached) {
                Ok(_) => println!("{name}"),
                Err(e) => {
                    eprintln!("berth: {e}");
                    failed.push(name.as_str());
                }
            },
            Err(e) => {
                eprintln!("berth: {e}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::msg(
        1,
        format!("failed to start containers: {}", failed.join(", ")),
    ))
}
