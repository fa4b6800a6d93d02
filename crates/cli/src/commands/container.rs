//! Container verbs: run, create, start, ps, logs, exec, stop, kill,
//! restart, wait, rm, inspect, attach, rename, top.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use chrono::Utc;
use clap::{Args, Subcommand};
use engine::config::NetworkMode;
use engine::container::create::{parse_ulimit, CreateRequest};
use engine::container::start::AttachMode;
use engine::container::Container;
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

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
    /// IPC mode to use (private, shareable, host).
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

/// A request docker's daemon refuses: docker's CLI exits 1 for those
/// (125 is for `run`'s own failures).
pub(crate) fn daemon_error(e: engine::EngineError) -> Failure {
    Failure::msg(1, e.to_string())
}

pub(crate) fn bad(what: &str, reason: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("invalid {what}: {reason}"))
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

impl CreateArgs {
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
                    v.extend(
                        engine::config::PortMapping::parse(p)
                            .map_err(|e| bad("-p/--publish", e))?,
                    );
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
                .map_err(|e| bad("--restart", e))?,
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
    let req = a.request()?;
    // `docker run` words its failures its own way; `docker create` does not.
    let worded = |f: Failure| if start { as_docker_run(f, true) } else { f };
    super::distribution::pull_for_run(engine, a.image(), &a.pull, a.platform.as_deref(), a.quiet)
        .map_err(worded)?;
    let c = engine.create(&req).map_err(|e| worded(e.into()))?;
    if !start {
        println!("{}", c.id());
        return Ok(());
    }
    if a.detach {
        engine
            .start(c.id().as_str(), AttachMode::Detached)
            .map_err(|e| as_docker_run(e.into(), false))?;
        println!("{}", c.id());
        return Ok(());
    }
    let _raw = (a.tty && a.interactive && crate::terminal::stdin_is_tty())
        .then(crate::terminal::RawMode::enable);
    let launched = engine
        .start(
            c.id().as_str(),
            AttachMode::Foreground {
                stdin: a.interactive,
            },
        )
        .map_err(|e| as_docker_run(e.into(), false))?;
    attached_exit(engine, launched)
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

/// `ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Show the latest created container.
    #[arg(short = 'l', long)]
    latest: bool,
    /// Show the n last created containers (all states).
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    last: Option<i64>,
    /// Filter (ancestor, before, exited, expose, health, id, is-task,
    /// isolation, label, name, network, publish, since, status, volume).
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Output format: table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
}

pub(crate) fn container_row(c: &Container, no_trunc: bool) -> Row {
    let mut r = Row::new();
    let id = if no_trunc {
        c.id().as_str().to_string()
    } else {
        c.id().short().to_string()
    };
    // As the daemon lists it: arguments holding a space in single quotes.
    let mut command = engine::container::summary::command_line(c);
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    r.insert("ID", id);
    r.insert("Image", c.record.image_ref.clone());
    r.insert("Command", format!("\"{command}\""));
    r.insert(
        "CreatedAt",
        c.record
            .created
            .format("%Y-%m-%d %H:%M:%S %z UTC")
            .to_string(),
    );
    r.insert(
        "RunningFor",
        format!(
            "{} ago",
            format::human_duration(Utc::now() - c.record.created)
        ),
    );
    r.insert("Status", engine::container::summary::status_text(c));
    r.insert("State", c.state.status.as_str().to_string());
    r.insert("Ports", engine::ports::display_ports(&c.api_ports()));
    r.insert("Names", c.name().to_string());
    r.insert(
        "Labels",
        c.config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    r.insert(
        "Networks",
        match &c.config.network_mode {
            NetworkMode::None if !c.config.networks.is_empty() => c.config.networks.join(","),
            other => other.docker_name(&c.config.networks),
        },
    );
    // Docker's Mounts: volume names (binds: their source), each cut to 15
    // characters unless --no-trunc; LocalVolumes: how many are volumes.
    let mounts: Vec<String> = c
        .config
        .mounts
        .iter()
        .filter(|m| m.kind != engine::config::MountType::Tmpfs)
        .map(|m| {
            if no_trunc || m.source.chars().count() <= 15 {
                m.source.clone()
            } else {
                m.source.chars().take(14).collect::<String>() + "…"
            }
        })
        .collect();
    r.insert("Mounts", mounts.join(","));
    r.insert(
        "LocalVolumes",
        c.config
            .mounts
            .iter()
            .filter(|m| m.kind == engine::config::MountType::Volume)
            .count()
            .to_string(),
    );
    r
}

/// `ps`.
pub fn ps(engine: &Engine, a: PsArgs) -> Result<(), Failure> {
    let req = engine::container::list::ListRequest {
        all: a.all,
        limit: if a.latest {
            Some(1)
        } else {
            a.last.filter(|&n| n >= 0).map(|n| n as usize)
        },
        filters: engine::filters::Filters::parse(&a.filter, engine::container::list::PS_FILTERS)
            .map_err(daemon_error)?,
    };
    let rows: Vec<Row> = engine
        .list_containers(&req)
        .map_err(daemon_error)?
        .iter()
        .map(|c| container_row(c, a.no_trunc))
        .collect();
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"]);
        }
        return Ok(());
    }
    const COLS: &[(&str, &str)] = &[
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), COLS),
            &rows,
            &format::PS
        )?
    );
    Ok(())
}

/// `logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow the output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines from the end (or "all").
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show the extra attributes given with --log-opt labels=/env=.
    #[arg(long)]
    details: bool,
    /// Only logs since a timestamp (RFC 3339) or a relative time (10m, 1h).
    #[arg(long)]
    since: Option<String>,
    /// Only logs before a timestamp (RFC 3339) or a relative time (10m, 1h).
    #[arg(long)]
    until: Option<String>,
    /// Container.
    container: String,
}

/// A `--since`/`--until` value: RFC 3339, Unix seconds, or a duration
/// before now (`10m`, `1h30m`, `90s`).
pub fn parse_time(flag: &str, s: &str) -> Result<chrono::DateTime<Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        return chrono::DateTime::from_timestamp(whole, nanos).ok_or_else(|| bad(flag, s));
    }
    match engine::health::parse_duration(s) {
        Ok(ns) => Ok(Utc::now() - chrono::Duration::nanoseconds(ns)),
        Err(_) => Err(bad(
            flag,
            format!("{s:?}: use a timestamp (2006-01-02T15:04:05Z), Unix seconds or a duration like 10m"),
        )),
    }
}

/// `logs`.
pub fn logs(engine: &Engine, a: LogsArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    if c.config.log_config.driver() == "none" {
        return Err(bad(
            "logs",
            format!(
                "container {} uses the \"none\" log driver: it keeps no logs to read",
                c.name()
            ),
        ));
    }
    let path = engine.container_log(&c);
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time("--until", s))
        .transpose()?;
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| bad("--tail", format!("{n:?}: a number or \"all\"")))?,
        ),
    };
    // Started before reading, so nothing written meanwhile is missed.
    let mut follower = a.follow.then(|| engine::logs::Follower::at_end(&path));
    let mut entries = engine::logs::read_all(&path)?;
    entries.retain(|e| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u));
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let emit = |e: &engine::logs::Entry| {
        let _ = match e.stream {
            engine::logs::Stream::Stdout => {
                engine::logs::print_entry(&mut stdout.lock(), e, a.timestamps, a.details)
            }
            engine::logs::Stream::Stderr => {
                engine::logs::print_entry(&mut stderr.lock(), e, a.timestamps, a.details)
            }
        };
    };
    for e in &entries {
        emit(e);
    }
    let Some(follower) = follower.as_mut() else {
        return Ok(());
    };
    if until.is_some_and(|u| u <= Utc::now()) {
        return Ok(());
    }
    loop {
        let new = follower.poll()?;
        for e in &new {
            if until.is_some_and(|u| e.time >= u) {
                return Ok(());
            }
            emit(e);
        }
        let _ = std::io::stdout().flush();
        if new.is_empty() {
            let running = engine
                .container(c.id().as_str())
                .map(|c| c.is_running() || c.state.status == engine::config::Status::Restarting)
                .unwrap_or(false);
            if !running || until.is_some_and(|u| u <= Utc::now()) {
                // One last read: output written just before the exit.
                for e in follower.poll()? {
                    emit(&e);
                }
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// `exec`.
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Environment variables.
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// User (name or uid[:group]).
    #[arg(short = 'u', long)]
    pub(crate) user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub(crate) workdir: Option<String>,
    /// Container.
    pub(crate) container: String,
    /// Command and arguments.
    #[arg(required = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

fn dup_std(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, Failure> {
    fd.try_clone_to_owned().map_err(Failure::from)
}

fn devnull() -> Result<OwnedFd, Failure> {
    Ok(OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

/// `exec`.
pub fn exec(engine: &Engine, a: ExecArgs) -> Result<(), Failure> {
    let req = engine::container::exec::ExecRequest {
        cmd: a.command.clone(),
        env: with_values_from_here(a.env.clone()),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
    };
    let code = if a.detach {
        let stdio = [devnull()?, devnull()?, devnull()?];
        engine.exec(&a.container, &req, stdio)?;
        0
    } else if a.tty {
        let (master, slave) = engine.container_pty(&a.container)?;
        let stdio = [slave.try_clone()?, slave.try_clone()?, slave];
        let _raw = (a.interactive && crate::terminal::stdin_is_tty())
            .then(crate::terminal::RawMode::enable);
        crate::terminal::sync_winsize(master.as_fd());
        let pid = engine.exec(&a.container, &req, stdio)?;
        engine::term::pump_pty(master, true, true);
        engine::term::wait_child(pid)
    } else {
        let stdin = if a.interactive {
            dup_std(std::io::stdin().as_fd())?
        } else {
            devnull()?
        };
        let stdio = [
            stdin,
            dup_std(std::io::stdout().as_fd())?,
            dup_std(std::io::stderr().as_fd())?,
        ];
        let pid = engine.exec(&a.container, &req, stdio)?;
        engine::term::wait_child(pid)
    };
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}

/// `stop` and `restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing.
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    time: Option<i64>,
    /// Signal to send (instead of the container's stop signal).
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), Failure>) -> Result<(), Failure> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                if let Some(m) = e.message {
                    eprintln!("berth: {m}");
                }
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}

/// `stop` / `restart`.
pub fn stop(engine: &Engine, a: StopArgs, restart: bool) -> Result<(), Failure> {
    if let Some(s) = &a.signal {
        s.parse::<model::Signal>()
            .map_err(|_| bad("--signal", format!("{s:?} is not a signal")))?;
    }
    each(&a.containers, |n| {
        if let Some(s) = &a.signal {
            let c = engine.container(n)?;
            if c.is_running() {
                engine.kill(n, s.parse().unwrap_or(model::Signal::TERM))?;
            }
        }
        engine.stop(n, a.time)?;
        if restart {
            engine.start(n, AttachMode::Detached)?;
        }
        Ok(())
    })
}

/// `kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `kill`.
pub fn kill(engine: &Engine, a: KillArgs) -> Result<(), Failure> {
    let sig: model::Signal = a
        .signal
        .parse()
        .map_err(|_| bad("--signal", format!("{:?} is not a signal", a.signal)))?;
    each(&a.containers, |n| {
        engine
            .kill(n, sig)
            .map_err(|e| Failure::msg(1, format!("Cannot kill container: {n}: {e}")))?;
        Ok(())
    })
}

/// Container names.
#[derive(Args, Debug)]
pub struct NamesArgs {
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `--memory` and `--memory-swap` (`-1`: unlimited) of `run` and `update`.
fn parse_memory_flags(
    memory: Option<&str>,
    swap: Option<&str>,
) -> Result<(Option<u64>, Option<i64>), Failure> {
    let memory = memory
        .map(|m| {
            model::size::parse_bytes(m)
                .map_err(|_| bad("--memory", format!("{m:?}: use a size like 512m or 1g")))
        })
        .transpose()?;
    let swap = swap
        .map(|m| {
            if m == "-1" {
                Ok(-1)
            } else {
                model::size::parse_bytes(m).map(|v| v as i64).map_err(|_| {
                    bad(
                        "--memory-swap",
                        format!("{m:?}: use a size like 1g, or -1 for unlimited"),
                    )
                })
            }
        })
        .transpose()?;
    Ok((memory, swap))
}

/// `update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
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
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries].
    #[arg(long)]
    restart: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `update`.
pub fn update(engine: &Engine, a: UpdateArgs) -> Result<(), Failure> {
    let restart = a
        .restart
        .as_deref()
        .map(engine::restart::RestartPolicy::parse)
        .transpose()
        .map_err(|e| bad("--restart", e))?;
    let (memory, memory_swap) = parse_memory_flags(a.memory.as_deref(), a.memory_swap.as_deref())?;
    if memory.is_none()
        && memory_swap.is_none()
        && a.cpus.is_none()
        && a.cpu_shares.is_none()
        && a.pids_limit.is_none()
        && restart.is_none()
    {
        return Err(bad(
            "update",
            "nothing to update: give --memory, --memory-swap, --cpus, --cpu-shares, --pids-limit or --restart",
        ));
    }
    let req = engine::container::ops::UpdateRequest {
        memory,
        memory_swap,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        restart,
    };
    each(&a.containers, |n| {
        engine.update(n, &req)?;
        Ok(())
    })
}

/// `pause`.
pub fn pause(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    each(&a.containers, |n| {
        engine.pause(n)?;
        Ok(())
    })
}

/// `unpause`.
pub fn unpause(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    each(&a.containers, |n| {
        engine.unpause(n)?;
        Ok(())
    })
}

/// `wait`.
pub fn wait(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    let mut failed = false;
    for n in &a.containers {
        match engine.wait(n) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}

/// `rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `rm`.
pub fn rm(engine: &Engine, a: RmArgs) -> Result<(), Failure> {
    // As docker: `rm -f` of a container that does not exist says so but
    // is no error.
    let names: Vec<String> = a
        .containers
        .iter()
        .filter(|n| match engine.container(n) {
            Err(e) if a.force => {
                eprintln!("berth: {e}");
                false
            }
            _ => true,
        })
        .cloned()
        .collect();
    each(&names, |n| {
        engine.remove(n, a.force, a.volumes)?;
        Ok(())
    })
}

/// `inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output with a Go template (e.g. {{.State.Status}}).
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only look at this kind of object (container or image).
    #[arg(long = "type")]
    kind: Option<String>,
    /// Names or ids.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `inspect`.
pub fn inspect(engine: &Engine, a: InspectArgs) -> Result<(), Failure> {
    let mut values = Vec::new();
    let mut failed = false;
    for n in &a.names {
        let kind = a.kind.as_deref();
        let found = if kind != Some("image") {
            engine
                .container(n)
                .ok()
                .map(|c| engine.inspect_container(&c))
        } else {
            None
        };
        let found = match found {
            Some(v) => Some(v),
            None if kind != Some("container") => {
                crate::commands::image::inspect_image(engine, n).ok()
            }
            None => None,
        };
        match found {
            Some(v) => values.push(v),
            None => {
                eprintln!("berth: no such object: {n}");
                failed = true;
            }
        }
    }
    print_inspect(&values, a.format.as_deref())?;
    if failed {
        Err(Failure::silent(1))
    } else {
        Ok(())
    }
}

/// Print inspect results as Docker does (a JSON array, or one template line each).
pub fn print_inspect(values: &[serde_json::Value], format: Option<&str>) -> Result<(), Failure> {
    match format {
        Some(t) => crate::format::print_inspect(values, t)?,
        None => println!(
            "{}",
            serde_json::to_string_pretty(values).unwrap_or_default()
        ),
    }
    Ok(())
}

/// `attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Do not forward signals to the container.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Container.
    pub(crate) container: String,
}

/// `attach`: connect to the container's monitor; output from now on goes
/// to stdout/stderr, stdin to the container (unless --no-stdin), signals are
/// forwarded; exits with the container's code.
pub fn attach(engine: &Engine, a: AttachArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    if !c.is_running() {
        return Err(Failure::msg(
            125,
            format!(
                "you cannot attach to a stopped container {}: start it first",
                c.name()
            ),
        ));
    }
    let want_stdin = !a.no_stdin && c.config.open_stdin;
    let stdin_fd = std::io::stdin();
    let terminal = (c.config.tty && crate::terminal::stdin_is_tty()).then(|| stdin_fd.as_fd());
    let mut sock = engine
        .attach_connect(&c, want_stdin, terminal)
        .map_err(|e| Failure::msg(125, e.to_string()))?;
    let _raw = (want_stdin && c.config.tty && crate::terminal::stdin_is_tty())
        .then(crate::terminal::RawMode::enable);
    let set = {
        let mut set = nix::sys::signal::SigSet::empty();
        if a.sig_proxy {
            for s in [
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::Signal::SIGQUIT,
                nix::sys::signal::Signal::SIGUSR1,
                nix::sys::signal::Signal::SIGUSR2,
            ] {
                set.add(s);
            }
        }
        if c.config.tty {
            set.add(nix::sys::signal::Signal::SIGWINCH);
        }
        set
    };
    let _ = set.thread_block();
    let sfd = nix::sys::signalfd::SignalFd::new(&set).ok();
    let stdin = std::io::stdin();
    let mut stdin_open = want_stdin;
    let mut inbuf = [0u8; 16384];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let r: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if r[0] {
            let n = std::io::Read::read(&mut sock, &mut inbuf)?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&inbuf[..n]);
            while pending.len() >= 5 {
                let len =
                    u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                if pending.len() < 5 + len {
                    break;
                }
                let kind = pending[0];
                let data: Vec<u8> = pending[5..5 + len].to_vec();
                pending.drain(..5 + len);
                match kind {
                    1 => {
                        let _ = std::io::stdout().write_all(&data);
                        let _ = std::io::stdout().flush();
                    }
                    2 => {
                        let _ = std::io::stderr().write_all(&data);
                    }
                    _ => {
                        let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(Failure::silent(code))
                        };
                    }
                }
            }
        }
        if sfd.is_some() && r.get(1).copied().unwrap_or(false) {
            if let Some(Ok(Some(info))) = sfd.as_ref().map(|s| s.read_signal()) {
                if info.ssi_signo as i32 == libc::SIGWINCH {
                    engine.resize(&c);
                } else {
                    let _ = engine.kill(c.id().as_str(), model::Signal(info.ssi_signo as i32));
                }
            }
        }
        let stdin_idx = if sfd.is_some() { 2 } else { 1 };
        if stdin_open && r.get(stdin_idx).copied().unwrap_or(false) {
            match nix::unistd::read(stdin.as_fd(), &mut inbuf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = sock.shutdown(std::net::Shutdown::Write);
                }
                Ok(n) => sock.write_all(&inbuf[..n])?,
            }
        }
    }
    let code = engine
        .container(c.id().as_str())
        .map(|c| c.state.exit_code)
        .unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}

/// `rename`.
#[derive(Args, Debug)]
pub struct RenameArgs {
    /// Container.
    container: String,
    /// New name.
    new_name: String,
}

/// `rename`.
pub fn rename(engine: &Engine, a: RenameArgs) -> Result<(), Failure> {
    engine.rename(&a.container, &a.new_name)?;
    Ok(())
}

/// `top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Container.
    container: String,
    /// Options for the host's `ps` (e.g. `aux`, `-o pid,rss,args`); its
    /// lines are kept for the container's processes only.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// Run the host's `ps` with `opts` and keep the header and the lines whose
/// PID column is one of `pids` (Docker's `top CONTAINER [ps OPTIONS]`).
fn ps_filtered(opts: &[String], pids: &[i32]) -> Result<String, Failure> {
    let out = std::process::Command::new("ps")
        .args(opts)
        .output()
        .map_err(|e| Failure::msg(125, format!("running ps: {e} (install procps)")))?;
    if !out.status.success() {
        return Err(Failure::msg(
            125,
            format!(
                "ps {}: {}",
                opts.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            Failure::msg(
                125,
                "couldn't find the PID field in the ps output: add pid to the -o fields",
            )
        })?;
    let mut out = format!("{header}\n");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[2] == uid.to_string())
                .map(|f| f[0].to_string())
        })
        .unwrap_or_else(|| uid.to_string())
}

/// `top`.
pub fn top(engine: &Engine, a: TopArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    let pids = engine.container_pids(&c)?;
    if !a.ps_options.is_empty() {
        print!("{}", ps_filtered(&a.ps_options, &pids)?);
        return Ok(());
    }
    let mut lines = vec!["UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD".to_string()];
    for pid in pids {
        if let Some(r) = engine::container::ops::process_row(pid) {
            lines.push(format!(
                "{}\t{}\t{}\t0\t{}\t{}\t{}\t{}",
                user_name(r.uid),
                r.pid,
                r.ppid,
                r.stime,
                r.tty,
                r.time,
                r.cmd
            ));
        }
    }
    let widths = lines.iter().fold(vec![0usize; 8], |mut w, l| {
        for (i, col) in l.split('\t').enumerate().take(7) {
            w[i] = w[i].max(col.len());
        }
        w
    });
    for l in lines {
        let cols: Vec<&str> = l.split('\t').collect();
        let mut out = String::new();
        for (i, col) in cols.iter().enumerate() {
            if i < 7 {
                out.push_str(&format!("{col:<w$}   ", w = widths[i]));
            } else {
                out.push_str(col);
            }
        }
        println!("{}", out.trim_end());
    }
    Ok(())
}

/// `container …` subcommands (Docker's management-command spelling).
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create and run a container.
    Run(CreateArgs),
    /// Create a container.
    Create(CreateArgs),
    /// Start containers.
    Start(StartArgs),
    /// Stop containers.
    Stop(StopArgs),
    /// Restart containers.
    Restart(StopArgs),
    /// Kill containers.
    Kill(KillArgs),
    /// Remove containers.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List a container's published ports.
    Port(PortArgs),
    /// Live resource use of containers.
    Stats(super::system::StatsArgs),
    /// Wait for containers.
    Wait(NamesArgs),
    /// Inspect containers.
    Inspect(ContainerArgs),
    /// Show logs.
    Logs(LogsArgs),
    /// Run a command in a container.
    Exec(ExecArgs),
    /// Show processes.
    Top(TopArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Attach to a container.
    Attach(AttachArgs),
    /// Remove all stopped containers.
    Prune(super::system::ContainerPruneArgs),
    /// Freeze every process of containers.
    Pause(NamesArgs),
    /// Change containers' limits (live when running).
    Update(UpdateArgs),
    /// Thaw paused containers.
    Unpause(NamesArgs),
    /// Copy files between a container and the host.
    Cp(super::fs::CpArgs),
    /// List the changes to a container's filesystem.
    Diff(super::fs::DiffArgs),
    /// Write a container's filesystem as a tar archive.
    Export(super::fs::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(super::fs::CommitArgs),
}

/// `container inspect` arguments.
#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Containers.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Run a `container …` subcommand.
pub fn dispatch(engine: &Engine, c: ContainerCommand) -> Result<(), Failure> {
    match c {
        ContainerCommand::Ls(a) => ps(engine, a),
        ContainerCommand::Prune(a) => super::system::container_prune(engine, a),
        ContainerCommand::Pause(a) => pause(engine, a),
        ContainerCommand::Update(a) => update(engine, a),
        ContainerCommand::Unpause(a) => unpause(engine, a),
        ContainerCommand::Cp(a) => super::fs::cp(engine, a),
        ContainerCommand::Diff(a) => super::fs::diff(engine, a),
        ContainerCommand::Export(a) => super::fs::export(engine, a),
        ContainerCommand::Commit(a) => super::fs::commit(engine, a),
        ContainerCommand::Run(a) => run(engine, a, true),
        ContainerCommand::Create(a) => run(engine, a, false),
        ContainerCommand::Start(a) => start(engine, a),
        ContainerCommand::Stop(a) => stop(engine, a, false),
        ContainerCommand::Restart(a) => stop(engine, a, true),
        ContainerCommand::Kill(a) => kill(engine, a),
        ContainerCommand::Rm(a) => rm(engine, a),
        ContainerCommand::Port(a) => port(engine, a),
        ContainerCommand::Stats(a) => super::system::stats(engine, a),
        ContainerCommand::Wait(a) => wait(engine, a),
        ContainerCommand::Inspect(a) => inspect(
            engine,
            InspectArgs {
                format: a.format,
                kind: Some("container".into()),
                names: a.names,
            },
        ),
        ContainerCommand::Logs(a) => logs(engine, a),
        ContainerCommand::Exec(a) => exec(engine, a),
        ContainerCommand::Top(a) => top(engine, a),
        ContainerCommand::Rename(a) => rename(engine, a),
        ContainerCommand::Attach(a) => attach(engine, a),
    }
}

/// `port`.
#[derive(Args, Debug)]
pub struct PortArgs {
    /// The container.
    container: String,
    /// Only this port: PORT[/PROTO].
    private_port: Option<String>,
}

/// `port`: `80/tcp -> 0.0.0.0:8080`, one line per published port.
pub fn port(engine: &Engine, a: PortArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    let want = a.private_port.as_deref().map(|p| {
        let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        (n.to_string(), proto.to_string())
    });
    let mut found = false;
    for p in &c.config.ports {
        if let Some((n, proto)) = &want {
            if *n != p.container_port.to_string() || *proto != p.proto {
                continue;
            }
        }
        found = true;
        let ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        if want.is_some() {
            println!("{ip}:{}", p.host_port);
        } else {
            println!("{}/{} -> {ip}:{}", p.container_port, p.proto, p.host_port);
        }
    }
    if let (Some(p), false) = (&a.private_port, found) {
        return Err(Failure::msg(
            1,
            format!("no public port '{p}' published for {}", c.name()),
        ));
    }
    Ok(())
}
