//! `pod` (podman's): create, ls/ps, inspect, start, stop, rm, logs, top,
//! stats, exists. Output and exit codes as podman 4.3 gives them (errors
//! 125, `pod rm` of a missing pod 1); tables in berth's column spacing.
use std::collections::BTreeMap;
use std::io::Write;

use clap::{Args, Subcommand};
use engine::pod::inspect::PodSummary;
use engine::Engine;

use crate::format::{self, Format, Listing, Row};
use crate::Failure;

/// `pod` subcommands.
#[derive(Subcommand, Debug)]
pub enum PodCommand {
    /// Create a pod: an infra process holding the network, IPC and UTS
    /// namespaces its containers (run --pod) share.
    Create(Box<CreateArgs>),
    /// List pods.
    #[command(alias = "ps", alias = "list")]
    Ls(LsArgs),
    /// Show a pod's details (podman's JSON).
    Inspect(InspectArgs),
    /// Start pods: the infra process, then their containers.
    Start(NamesArgs),
    /// Stop pods: their containers, then the infra process.
    Stop(StopArgs),
    /// Remove pods with their containers.
    Rm(RmArgs),
    /// Stop pods, then start them again.
    Restart(StopArgs),
    /// Send a signal to every running container of pods.
    Kill(KillArgs),
    /// Pause every running container of pods.
    Pause(NamesArgs),
    /// Unpause every paused container of pods.
    Unpause(NamesArgs),
    /// Remove every pod none of whose containers runs.
    Prune(PruneArgs),
    /// Show the output of a pod's containers, merged in time order.
    Logs(LogsArgs),
    /// Show the processes of a pod's containers.
    Top(TopArgs),
    /// Resource use of pods' containers.
    Stats(StatsArgs),
    /// Exit 0 if the pod exists, 1 if not.
    Exists {
        /// Pod.
        pod: String,
    },
}

/// `pod create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The pod's name.
    #[arg(long)]
    name: Option<String>,
    /// The host name its containers share (default: the pod's name).
    #[arg(long)]
    hostname: Option<String>,
    /// Namespaces to share: ipc, net, pid, uts (comma-separated; replaces
    /// the default ipc,net,uts, or adds to it with a leading +), or none.
    #[arg(long)]
    share: Option<String>,
    /// The pod's network: bridge (default), none, host or a network made
    /// with berth network create.
    #[arg(long = "network", alias = "net")]
    network: Option<String>,
    /// Publish a port of the pod ([ip:]hostPort:containerPort[/proto]).
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Set metadata on the pod (key=value).
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip) to the pod's /etc/hosts.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_host: Vec<String>,
    /// Make the pod's cgroup below this path (default /berth).
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Make the cgroups of the pod's containers below the pod's, where its
    /// limits hold (default true; false: the pod has no cgroup).
    #[arg(long = "share-parent", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    share_parent: Option<String>,
    /// Number of CPUs the pod's containers may use together (e.g. 0.5).
    #[arg(long, allow_hyphen_values = true)]
    cpus: Option<String>,
    /// CPUs in which the pod's containers may run (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes the pod's containers may use (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit of the pod (<number>[<unit>], unit b, k, m or g).
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory plus swap limit of the pod ('-1': unlimited swap).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Block I/O weight of the pod, 10 to 1000.
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<String>,
    /// Block I/O weight of the pod on a device (DEVICE:WEIGHT, repeatable).
    #[arg(long = "blkio-weight-device")]
    blkio_weight_device: Vec<String>,
    /// Limit the pod's read rate from a device (DEVICE:RATE, e.g. /dev/sda:1mb).
    #[arg(long = "device-read-bps")]
    device_read_bps: Vec<String>,
    /// Limit the pod's write rate to a device (DEVICE:RATE).
    #[arg(long = "device-write-bps")]
    device_write_bps: Vec<String>,
    /// Size of the /dev/shm the pod's containers share (<number>[<unit>],
    /// unit b, k, m or g; default 64m).
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// User namespace of the pod, which its containers share: as run's
    /// --userns (auto[:size=N], host; rootless keep-id, nomap).
    #[arg(long)]
    userns: Option<String>,
    /// UID map of the pod's user namespace: CONTAINER:HOST:SIZE (repeatable).
    #[arg(long = "uidmap")]
    uidmap: Vec<String>,
    /// GID map of the pod's user namespace (repeatable; default: the uid map).
    #[arg(long = "gidmap")]
    gidmap: Vec<String>,
    /// Add a host device to the pod's containers
    /// (HOST[:CONTAINER][:PERMISSIONS]).
    #[arg(long = "device")]
    device: Vec<String>,
}

impl CreateArgs {
    /// The limit flags, parsed; podman's words for values it refuses.
    fn resources(&self) -> Result<engine::pod::cgroup::PodResources, Failure> {
        // podman's flag parser (Go's strconv) for --cpus.
        let cpus = self
            .cpus
            .as_deref()
            .map(|c| {
                c.parse::<f64>().map_err(|_| {
                    Failure::flag_value(
                        c,
                        "--cpus",
                        &format!("strconv.ParseFloat: parsing \"{c}\": invalid syntax"),
                    )
                })
            })
            .transpose()?;
        // podman's words for both memory flags.
        let size = |v: &str| {
            model::size::parse_bytes(v).map_err(|_| {
                Failure::usage(format!("invalid value for memory: invalid size: '{v}'"))
            })
        };
        let memory = self.memory.as_deref().map(size).transpose()?;
        let memory_swap = self
            .memory_swap
            .as_deref()
            .map(|v| {
                if v == "-1" {
                    Ok(-1)
                } else {
                    size(v).map(|b| b as i64)
                }
            })
            .transpose()?;
        let blkio_weight = self
            .blkio_weight
            .as_deref()
            .map(|v| {
                v.parse::<u16>().map_err(|_| {
                    Failure::usage(format!(
                        "invalid value for blkio-weight: {v:?} is not a weight (a number from 10 to 1000)"
                    ))
                })
            })
            .transpose()?;
        // podman's words: the docker CLI's checks, without the flag's name.
        use model::blkio::{ThrottleDevice, WeightDevice};
        fn devices<T>(
            values: &[String],
            parse: impl Fn(&str) -> Result<T, model::ParseError>,
        ) -> Result<Vec<T>, Failure> {
            values
                .iter()
                .map(|v| parse(v).map_err(|e| Failure::usage(e.to_string())))
                .collect()
        }
        Ok(engine::pod::cgroup::PodResources {
            cpus,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory,
            memory_swap,
            blkio_weight,
            blkio_weight_device: devices(&self.blkio_weight_device, WeightDevice::parse)?,
            device_read_bps: devices(&self.device_read_bps, ThrottleDevice::parse_bps)?,
            device_write_bps: devices(&self.device_write_bps, ThrottleDevice::parse_bps)?,
        })
    }

    /// `--share-parent[=BOOL]`, as Go's strconv.ParseBool takes it.
    fn share_parent(&self) -> Result<Option<bool>, Failure> {
        self.share_parent
            .as_deref()
            .map(|v| match v {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                _ => Err(Failure::flag_value(
                    v,
                    "--share-parent",
                    &format!("strconv.ParseBool: parsing \"{v}\": invalid syntax"),
                )),
            })
            .transpose()
    }
}

/// `pod ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// Whole ids.
    #[arg(long)]
    no_trunc: bool,
    /// Add the containers' names.
    #[arg(long)]
    ctr_names: bool,
    /// Add the containers' ids.
    #[arg(long)]
    ctr_ids: bool,
    /// Add the containers' states.
    #[arg(long)]
    ctr_status: bool,
    /// A Go template, `table …` or `json`.
    #[arg(long)]
    format: Option<String>,
}

/// `pod inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A Go template for each pod.
    #[arg(short, long)]
    format: Option<String>,
    /// Pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// Pods, by name or id.
#[derive(Args, Debug)]
pub struct NamesArgs {
    /// Pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `pod stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait for each container before killing it.
    #[arg(short = 't', long = "time")]
    time: Option<i64>,
    /// Pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `pod rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill running containers first; a missing pod is no error.
    #[arg(short, long)]
    force: bool,
    /// Pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `pod kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Pods.
    #[arg(required = true)]
    pods: Vec<String>,
}

/// `pod prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask (berth never asks: accepted for podman's scripts).
    #[arg(short, long)]
    force: bool,
}

/// `pod logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Only this container of the pod.
    #[arg(short = 'c', long)]
    container: Option<String>,
    /// Prefix lines with container names instead of ids.
    #[arg(short = 'n', long)]
    names: bool,
    /// The last N lines of each container.
    #[arg(long)]
    tail: Option<usize>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Follow the output until the pod's containers have stopped.
    #[arg(short, long)]
    follow: bool,
    /// Only lines since this time (RFC 3339, a Unix time, or a duration such as 10m).
    #[arg(long)]
    since: Option<String>,
    /// Only lines before this time.
    #[arg(long)]
    until: Option<String>,
    /// Pod.
    pod: String,
}

/// `pod top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Pod.
    pod: String,
    /// Options for the host's `ps`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

/// `pod stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// One reading, then exit.
    #[arg(long)]
    no_stream: bool,
    /// Every pod (the default when none is named).
    #[arg(short, long)]
    all: bool,
    /// Pods.
    pods: Vec<String>,
}

/// Run a `pod` subcommand.
pub fn dispatch(engine: &Engine, cmd: PodCommand) -> Result<(), Failure> {
    match cmd {
        PodCommand::Create(a) => create(engine, *a),
        PodCommand::Ls(a) => ls(engine, a),
        PodCommand::Inspect(a) => inspect(engine, a),
        PodCommand::Start(a) => each(&a.pods, |p| engine.pod_start(p).map(|p| Some(p.id))),
        PodCommand::Stop(a) => each(&a.pods, |p| engine.pod_stop(p, a.time).map(|p| Some(p.id))),
        PodCommand::Rm(a) => rm(engine, a),
        PodCommand::Restart(a) => each(&a.pods, |p| {
            engine.pod_stop(p, a.time)?;
            engine.pod_start(p).map(|p| Some(p.id))
        }),
        PodCommand::Kill(a) => {
            let sig: model::Signal = a
                .signal
                .parse()
                .map_err(|_| Failure::usage(format!("invalid signal: {}", a.signal)))?;
            each(&a.pods, |p| engine.pod_kill(p, sig).map(|p| Some(p.id)))
        }
        PodCommand::Pause(a) => each(&a.pods, |p| engine.pod_pause(p).map(|p| Some(p.id))),
        PodCommand::Unpause(a) => each(&a.pods, |p| engine.pod_unpause(p).map(|p| p.map(|p| p.id))),
        PodCommand::Prune(a) => {
            let _ = a.force;
            for p in engine.pod_prune()? {
                println!("{}", p.id);
            }
            Ok(())
        }
        PodCommand::Logs(a) => logs(engine, a),
        PodCommand::Top(a) => top(engine, a),
        PodCommand::Stats(a) => stats(engine, a),
        PodCommand::Exists { pod } => match engine.pod(&pod) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(Failure::silent(1)),
            Err(e) => Err(e.into()),
        },
    }
}

/// Do `op` on each pod, printing its id; the first failure is reported
/// after the others were tried (podman goes on too).
/// `op` on each of `pods`, printing the id it answers (none: nothing),
/// the first failure returned and the others printed.
fn each(
    pods: &[String],
    op: impl Fn(&str) -> engine::Result<Option<String>>,
) -> Result<(), Failure> {
    let mut failure = None;
    for p in pods {
        match op(p) {
            Ok(Some(id)) => println!("{id}"),
            Ok(None) => {}
            Err(e) => {
                if let Some(f) = failure.replace(Failure::from(e)) {
                    eprintln!("berth: {}", f.message.unwrap_or_default());
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

fn create(engine: &Engine, a: CreateArgs) -> Result<(), Failure> {
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(engine::config::PortMapping::parse(p).map_err(Failure::with_help)?);
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let resources = a.resources()?;
    // podman's words for a bad mode.
    let devices = a
        .device
        .iter()
        .map(|d| {
            engine::config::DeviceMapping::parse(d).map_err(|e| {
                Failure::usage(match e.strip_prefix("bad mode specified: ") {
                    Some(m) => format!("invalid device mode: {m}"),
                    None => e,
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let share_parent = a.share_parent()?;
    // podman's words.
    let shm_size = a
        .shm_size
        .as_deref()
        .map(|v| {
            model::size::parse_bytes(v).map_err(|_| {
                Failure::usage(format!(
                    "unable to translate --shm-size: invalid size: '{v}'"
                ))
            })
        })
        .transpose()?;
    let req = engine::pod::create::PodCreateRequest {
        name: a.name,
        hostname: a.hostname,
        share: a.share,
        network: a.network,
        ports,
        labels,
        extra_hosts: a.add_host,
        create_command: std::env::args().collect(),
        shm_size,
        cgroup_parent: a.cgroup_parent,
        share_parent,
        resources,
        userns: a.userns,
        uidmap: a.uidmap,
        gidmap: a.gidmap,
        devices,
    };
    if let Some(w) = engine::rootless::pod_limit_warning(&req) {
        eprintln!("{w}");
    }
    let pod = engine.pod_create(&req)?;
    println!("{}", pod.id);
    Ok(())
}

/// `pod ps`'s rows and columns (podman's).
const POD_PS: Listing = Listing {
    type_name: "entities.ListPodsReport",
    parse_prefix: "template: ",
    exec_prefix: "template: ",
    headers: &[
        ("ID", "POD ID"),
        ("InfraID", "INFRA ID"),
        ("NumberOfContainers", "# OF CONTAINERS"),
        ("ContainerIds", "IDS"),
        ("ContainerNames", "NAMES"),
        ("ContainerStatuses", "STATUS"),
    ],
    fields: &[
        "ID",
        "Name",
        "Status",
        "Created",
        "InfraID",
        "NumberOfContainers",
        "Labels",
        "Networks",
        "ContainerIds",
        "ContainerNames",
        "ContainerStatuses",
    ],
    validate: false,
};

fn ls(engine: &Engine, a: LsArgs) -> Result<(), Failure> {
    let list = engine.pod_list()?;
    let short = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            id[..12.min(id.len())].to_string()
        }
    };
    if a.quiet {
        for s in &list {
            println!("{}", short(&s.pod.id));
        }
        return Ok(());
    }
    let row = |s: &PodSummary| -> Row {
        let mut r = Row::new();
        r.insert("ID", short(&s.pod.id));
        r.insert("Name", s.pod.name.clone());
        r.insert("Status", s.status.as_str().to_string());
        r.insert(
            "Created",
            engine::container::summary::human_duration(chrono::Utc::now() - s.pod.config.created)
                + " ago",
        );
        r.insert("InfraID", short(&s.pod.config.infra_id));
        r.insert("NumberOfContainers", s.containers.len().to_string());
        r.insert(
            "Labels",
            s.pod
                .config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        r.insert(
            "Networks",
            s.containers
                .iter()
                .find(|c| c.config.pod_infra)
                .map(|c| c.config.networks.join(","))
                .unwrap_or_default(),
        );
        let join = |f: &dyn Fn(&engine::container::Container) -> String| {
            s.containers.iter().map(f).collect::<Vec<_>>().join(",")
        };
        r.insert("ContainerIds", join(&|c| short(c.id().as_str())));
        r.insert("ContainerNames", join(&|c| c.name().to_string()));
        r.insert(
            "ContainerStatuses",
            join(&|c| c.state.status.as_str().to_string()),
        );
        r
    };
    let rows: Vec<Row> = list.iter().map(row).collect();
    let mut cols: Vec<(&'static str, &'static str)> = vec![
        ("POD ID", "ID"),
        ("NAME", "Name"),
        ("STATUS", "Status"),
        ("CREATED", "Created"),
        ("INFRA ID", "InfraID"),
    ];
    if a.ctr_ids {
        cols.push(("IDS", "ContainerIds"));
    }
    if a.ctr_names {
        cols.push(("NAMES", "ContainerNames"));
    }
    if a.ctr_status {
        cols.push(("STATUS", "ContainerStatuses"));
    }
    if !(a.ctr_ids || a.ctr_names || a.ctr_status) {
        cols.push(("# OF CONTAINERS", "NumberOfContainers"));
    }
    let out = format::print(&Format::parse(a.format.as_deref(), &cols), &rows, &POD_PS)?;
    print!("{out}");
    Ok(())
}

fn inspect(engine: &Engine, a: InspectArgs) -> Result<(), Failure> {
    let mut docs = Vec::new();
    let mut failure = None;
    for p in &a.pods {
        match engine.pod_inspect(p) {
            Ok(d) => docs.push(d),
            Err(e) => {
                failure = Some(Failure::from(e));
            }
        }
    }
    if let Some(f) = &a.format {
        format::print_inspect(&docs, f)?;
    } else if docs.len() == 1 && failure.is_none() {
        // podman 4.3 prints a lone pod as an object.
        println!(
            "{}",
            serde_json::to_string_pretty(&docs[0]).unwrap_or_default()
        );
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&docs).unwrap_or_default()
        );
    }
    failure.map_or(Ok(()), Err)
}

fn rm(engine: &Engine, a: RmArgs) -> Result<(), Failure> {
    let mut failure: Option<Failure> = None;
    for p in &a.pods {
        match engine.pod_remove(p, a.force) {
            Ok(pod) => println!("{}", pod.id),
            // podman: a missing pod is no error with -f, and exit 1 without.
            Err(e) if e.is_not_found() && a.force => {}
            Err(e) if e.is_not_found() => failure = Some(Failure::msg(1, e.to_string())),
            Err(e) => {
                if let Some(f) = failure.replace(Failure::from(e)) {
                    eprintln!("berth: {}", f.message.unwrap_or_default());
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

fn logs(engine: &Engine, a: LogsArgs) -> Result<(), Failure> {
    let members = engine.pod_log_members(&a.pod, a.container.as_deref())?;
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| super::container::parse_time(flag, s))
            .transpose()
    };
    let (since, until) = (time("--since", &a.since)?, time("--until", &a.until)?);
    let who: Vec<String> = members
        .iter()
        .map(|c| {
            if a.names {
                c.name().to_string()
            } else {
                c.id().as_str()[..12].to_string()
            }
        })
        .collect();
    let print = |i: usize, e: &engine::logs::Entry| {
        let mut line = format!("{} ", who[i]).into_bytes();
        if a.timestamps {
            line.extend(
                e.time
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                    .as_bytes(),
            );
            line.push(b' ');
        }
        line.extend(&e.data);
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let _ = match e.stream {
            engine::logs::Stream::Stderr => std::io::stderr().lock().write_all(&line),
            _ => std::io::stdout().lock().write_all(&line),
        };
    };
    // Each container's lines so far (a follower goes on where its read
    // ended), merged in time order; a container's own keep their order.
    let mut followers = Vec::new();
    let mut all = Vec::new();
    for (i, c) in members.iter().enumerate() {
        let path = engine.container_log(c);
        let mut entries = if a.follow {
            let (entries, follower) = engine::logs::read_and_follow(&path)?;
            followers.push(follower);
            entries
        } else {
            engine::logs::read_all(&path)?
        };
        entries.retain(|e| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u));
        if let Some(n) = a.tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        all.extend(entries.into_iter().map(|e| (i, e)));
    }
    all.sort_by_key(|(_, e)| e.time);
    for (i, e) in &all {
        print(*i, e);
    }
    if !a.follow || until.is_some_and(|u| u <= chrono::Utc::now()) {
        return Ok(());
    }
    // podman's `pod logs -f`: until every container has stopped (or
    // Ctrl-C).
    let ids: Vec<&str> = members.iter().map(|c| c.id().as_str()).collect();
    super::container::follow_logs(engine, &ids, &mut followers, until, print)
}

fn top(engine: &Engine, a: TopArgs) -> Result<(), Failure> {
    let (_, running) = engine.pod_running(&a.pod)?;
    let mut pids = Vec::new();
    for c in &running {
        pids.extend(engine.container_pids(c)?);
    }
    crate::commands::container::print_processes(&pids, &a.ps_options)
}

fn stats(engine: &Engine, a: StatsArgs) -> Result<(), Failure> {
    use engine::container::ops::StatsSample;
    let pick = || -> Result<Vec<(String, engine::container::Container)>, Failure> {
        let pods: Vec<engine::pod::Pod> = if a.pods.is_empty() || a.all {
            engine.pods()?
        } else {
            a.pods
                .iter()
                .map(|p| engine.pod(p))
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for pod in pods {
            for c in engine.pod_containers(&pod)? {
                if c.is_running() {
                    out.push((pod.short_id().to_string(), c));
                }
            }
        }
        Ok(out)
    };
    let sample = |c: &engine::container::Container| engine.stats_sample(c).unwrap_or_default();
    let mut prev: BTreeMap<String, StatsSample> = pick()?
        .iter()
        .map(|(_, c)| (c.id().as_str().to_string(), sample(c)))
        .collect();
    let size = crate::commands::system::binary_size;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut lines = vec![
            "POD\tCID\tNAME\tCPU %\tMEM USAGE/ LIMIT\tMEM %\tNET IO\tBLOCK IO\tPIDS".to_string(),
        ];
        let mut now = BTreeMap::new();
        for (pod, c) in pick()? {
            let s = sample(&c);
            let p = prev.get(c.id().as_str()).cloned().unwrap_or_default();
            let mem = if s.mem_limit > 0 {
                s.mem_usage as f64 * 100.0 / s.mem_limit as f64
            } else {
                0.0
            };
            lines.push(format!(
                "{pod}\t{}\t{}\t{:.2}%\t{} / {}\t{mem:.2}%\t{} / {}\t{} / {}\t{}",
                c.id().short(),
                c.name(),
                s.cpu_percent(&p),
                size(s.mem_usage),
                size(s.mem_limit),
                format::human_size(s.net_rx),
                format::human_size(s.net_tx),
                format::human_size(s.blk_read),
                format::human_size(s.blk_write),
                s.pids
            ));
            now.insert(c.id().as_str().to_string(), s);
        }
        let table = align(&lines);
        if a.no_stream {
            print!("{table}");
            return Ok(());
        }
        print!("\x1b[2J\x1b[H{table}");
        let _ = std::io::stdout().flush();
        prev = now;
    }
}

/// Columns of tab-separated lines padded to their widest cell (two
/// spaces apart, as podman's tables).
fn align(lines: &[String]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for l in lines {
        for (i, cell) in l.split('\t').enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for l in lines {
        let cells: Vec<&str> = l.split('\t').collect();
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
