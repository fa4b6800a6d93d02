//! The leak census and `system check`.
//!
//! [`Engine::census`] lists everything of this state root's on the host:
//! berth's processes (monitors, DNS responders, commands), the cgroups of
//! its containers, mounts under its directories, its veths and bridges,
//! its firewall rules, its leases, work dirs and run files. Something is
//! this root's only when that can be shown: a cgroup or rule is named by
//! one of its container ids (random, 256 bits), a veth by one of its
//! network ids, a removed container's port rule points into one of its
//! subnets, a removed network's rules and bridge are named by the run
//! root's files about it (a DNS lock, a mark) or by the root's default
//! bridge (a name derived from the root). Other roots' objects on the
//! same host are never counted, reported or touched.
//!
//! [`Engine::check`] turns the census and the store's own audit into
//! problems; [`Engine::repair`] fixes those that are berth's alone, each
//! checked again right before.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use model::ContainerId;

use crate::container::Container;
use crate::{Engine, Result};
use census::{container_ref, Known};

mod census;
mod host;
mod problem;
mod repair;

pub use network::firewall::{RuleTag, TaggedRule};
pub use problem::{Area, ContainerRef, Problem, Remedy, RuleOwner};
pub use repair::Repaired;
pub use store::{Finding, Lease};

/// What a berth process of this root is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessRole {
    /// The recorded monitor of a container.
    Monitor(ContainerId),
    /// The DNS responder of a network (its id).
    DnsResponder(String),
    /// `berth serve`.
    Server,
    /// A process that leads its own session but is recorded nowhere: a
    /// monitor that is starting, or one no container knows.
    Detached,
    /// A command in progress (someone's `berth ps`, `logs -f`…).
    Command,
}

/// A berth process of this root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BerthProcess {
    /// Its pid.
    pub pid: i32,
    /// Its command line.
    pub command: String,
    /// What it is.
    pub role: ProcessRole,
    /// How long it has run.
    pub age: Duration,
}

/// The processes of one of this root's containers that has no cgroup
/// (rootless on v1), found by the mount namespace its run recorded
/// (`--pid host`: what its init leaves behind outlives it there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceProcs {
    /// The container.
    pub container: ContainerId,
    /// The processes in it (of berth's user namespace only).
    pub pids: Vec<i32>,
}

/// The cgroup dirs of one of this root's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupDirs {
    /// The container.
    pub container: ContainerId,
    /// Its `berth/<id>` dir in each hierarchy.
    pub dirs: Vec<PathBuf>,
    /// The processes in them.
    pub pids: Vec<i32>,
}

/// What a mount under berth's directories is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOwner {
    /// A volume made with driver options (its name).
    Volume(String),
    /// The root filesystem of a running container (external runtime).
    RootFs(ContainerId),
    /// The host-side `/dev/shm` of a running shareable container.
    Shm(ContainerId),
    /// Nothing of berth's.
    Nothing,
}

/// A mount under the state or run root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The mount point.
    pub path: PathBuf,
    /// Its filesystem type.
    pub fstype: String,
    /// What was mounted.
    pub source: String,
    /// What it is for.
    pub owner: MountOwner,
}

/// One of this root's network interfaces on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostLink {
    /// A container's host-side veth (`vb<container id 6><network id 7>`).
    Veth {
        /// The interface.
        name: String,
        /// The network id.
        network: String,
        /// The running container it belongs to, if any.
        container: Option<ContainerId>,
    },
    /// A network's bridge.
    Bridge {
        /// The interface.
        name: String,
        /// The network id (None: the default bridge of this root, without
        /// its record).
        network: Option<String>,
    },
}

/// A firewall rule of this root's, with whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEntry {
    /// The rule.
    pub rule: TaggedRule,
    /// A running container's or an existing network's (None: stale).
    pub live: bool,
    /// Whose it is when stale.
    pub owner: Option<RuleOwner>,
}

/// A file under the run root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunFile {
    /// `<id>.sock`: a monitor's attach socket.
    AttachSocket {
        /// The file.
        path: PathBuf,
        /// The container id it is named after.
        container: String,
    },
    /// `dns/<network id>.lock`: held by a DNS responder.
    DnsLock {
        /// The file.
        path: PathBuf,
        /// The network id.
        network: String,
    },
    /// `docker-path/<network id>`: the `docker0` a network was checked
    /// against.
    DockerPath {
        /// The file.
        path: PathBuf,
        /// The network id.
        network: String,
    },
    /// `forked-<pid>.err`: a forked operation's report.
    ForkReport {
        /// The file.
        path: PathBuf,
        /// The process.
        pid: i32,
    },
}

impl RunFile {
    /// Its path.
    pub fn path(&self) -> &Path {
        match self {
            RunFile::AttachSocket { path, .. }
            | RunFile::DnsLock { path, .. }
            | RunFile::DockerPath { path, .. }
            | RunFile::ForkReport { path, .. } => path,
        }
    }
}

/// Everything of this state root's on the host (see the module).
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// berth processes of this root (this one left out).
    pub processes: Vec<BerthProcess>,
    /// Cgroups of its containers.
    pub cgroups: Vec<CgroupDirs>,
    /// Processes of its containers without a cgroup, by namespace.
    pub namespaced: Vec<NamespaceProcs>,
    /// Mounts under its state and run roots.
    pub mounts: Vec<MountEntry>,
    /// Its veths and bridges.
    pub links: Vec<HostLink>,
    /// Its firewall rules.
    pub rules: Vec<RuleEntry>,
    /// Its address leases.
    pub leases: Vec<Lease>,
    /// Entries under its `tmp/` (work of commands; lock files left out).
    pub work_dirs: Vec<PathBuf>,
    /// Files under its run root that name containers, networks or
    /// processes.
    pub run_files: Vec<RunFile>,
    /// Its pods' cgroups (marked in its run root), whether or not the pod
    /// is still recorded.
    pub pod_cgroups: Vec<PodCgroupDirs>,
}

/// The cgroup of one of this root's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCgroupDirs {
    /// The pod's id.
    pub pod: String,
    /// Its cgroup path (`/berth/<pod id>`).
    pub path: String,
    /// Its dir in each hierarchy that has it.
    pub dirs: Vec<PathBuf>,
    /// The processes in them and below them.
    pub pids: Vec<i32>,
}

/// `system check` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Skip hashing every blob.
    pub quick: bool,
}

/// What [`Engine::check`] looked at and found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The store's counts.
    pub store: store::audit::Counts,
    /// The census the host checks were made on.
    pub census: Census,
    /// The problems, in report order ([`Area`]).
    pub problems: Vec<Problem>,
}

impl Engine {
    /// Check the store against itself and the host against the store
    /// (see the module): every problem found, in report order.
    pub fn check(&self, opts: CheckOptions) -> Result<CheckReport> {
        let audit = self.store().audit(!opts.quick)?;
        let known = self.known()?;
        let mut census = self.census_of(&known);
        let mut problems = host_problems(&known, &census);
        // A stopped container's veth goes with its network namespace,
        // which the kernel cleans up in the background: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while problems
            .iter()
            .any(|p| matches!(p, Problem::StrayVeth { .. }))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
            census.links = self.links_of(&known);
            problems = host_problems(&known, &census);
        }
        let pods = self.store().pods()?;
        problems.extend(pod_problems(&known, &pods));
        // A pod's cgroup is its own while the pod is recorded (with or
        // without running containers); once it is not, it is left over.
        for g in &census.pod_cgroups {
            if !pods.iter().any(|p| p.id == g.pod) {
                problems.push(Problem::OrphanPodCgroup {
                    pod: g.pod.clone(),
                    path: g.path.clone(),
                    dirs: g.dirs.clone(),
                    pids: g.pids.clone(),
                });
            }
        }
        problems.extend(audit.findings.into_iter().map(Problem::Store));
        problems.sort_by_key(Problem::area);
        Ok(CheckReport {
            store: audit.counts,
            census,
            problems,
        })
    }
}

/// Pods and containers that should name each other and do not: a pod
/// whose infra container is gone, a container of a pod that is gone.
fn pod_problems(known: &Known, pods: &[store::PodRecord]) -> Vec<Problem> {
    let mut out = Vec::new();
    for p in pods {
        let infra = p.config["infra_id"].as_str().unwrap_or_default();
        if infra.is_empty() || known.container(infra).is_none() {
            out.push(Problem::PodWithoutInfra {
                name: p.name.clone(),
                id: p.id.clone(),
            });
        }
    }
    for c in known.containers.values() {
        if !c.config.pod.is_empty() && !pods.iter().any(|p| p.id == c.config.pod) {
            out.push(Problem::ContainerWithoutPod {
                container: container_ref(c),
                pod: c.config.pod.clone(),
                infra: c.config.pod_infra,
            });
        }
    }
    out
}

/// The problems of the host side of a census.
fn host_problems(known: &Known, census: &Census) -> Vec<Problem> {
    let mut out = Vec::new();
    // Another berth command of this root may be starting a container:
    // its monitor makes the cgroup, lease, veth and rules before it
    // records the container running. Such a container is left alone.
    let others = census
        .processes
        .iter()
        .any(|p| matches!(p.role, ProcessRole::Command | ProcessRole::Detached));
    let cgroup_of = |id: &ContainerId| census.cgroups.iter().find(|g| &g.container == id);
    let live = |c: &Container| {
        c.is_running() || c.state.monitor_alive() || (others && cgroup_of(c.id()).is_some())
    };

    for c in known.containers.values() {
        if c.is_running() && !c.state.monitor_alive() {
            out.push(Problem::Unmonitored {
                container: container_ref(c),
                init: c.state.pid,
                monitor: c.state.monitor_pid,
            });
        }
    }
    for p in &census.processes {
        match &p.role {
            ProcessRole::Detached if p.age > Duration::from_secs(10) => {
                out.push(Problem::UnrecordedProcess {
                    pid: p.pid,
                    command: p.command.clone(),
                })
            }
            ProcessRole::DnsResponder(net) if !known.networks.iter().any(|n| &n.id == net) => out
                .push(Problem::OrphanDns {
                    pid: p.pid,
                    network: net.clone(),
                }),
            _ => {}
        }
    }
    for g in &census.cgroups {
        let Some(c) = known.container(g.container.as_str()) else {
            continue;
        };
        if live(c) {
            continue;
        }
        if g.pids.is_empty() {
            out.push(Problem::EmptyCgroup {
                container: container_ref(c),
                dirs: g.dirs.clone(),
            });
        } else {
            out.push(Problem::StrayProcesses {
                container: container_ref(c),
                pids: g.pids.clone(),
                cgroup: true,
            });
        }
    }
    for n in &census.namespaced {
        let Some(c) = known.container(n.container.as_str()) else {
            continue;
        };
        // (Recorded only by a run's monitor, with the run: a start of it
        // meanwhile makes a namespace of its own.)
        if n.pids.is_empty() || c.is_running() || c.state.monitor_alive() {
            continue;
        }
        out.push(Problem::StrayProcesses {
            container: container_ref(c),
            pids: n.pids.clone(),
            cgroup: false,
        });
    }
    for m in &census.mounts {
        if m.owner == MountOwner::Nothing {
            out.push(Problem::StrayMount {
                path: m.path.clone(),
                fstype: m.fstype.clone(),
            });
        }
    }
    for l in &census.links {
        match l {
            HostLink::Veth {
                name,
                network,
                container: None,
            } => {
                // A container whose start is in progress has its veth first.
                let cid = &name[2..8];
                let starting = known
                    .containers
                    .values()
                    .any(|c| c.id().as_str().starts_with(cid) && live(c));
                if !starting {
                    out.push(Problem::StrayVeth {
                        name: name.clone(),
                        network: known
                            .networks
                            .iter()
                            .find(|n| &n.id == network)
                            .map_or_else(|| network.clone(), |n| n.name.clone()),
                    });
                }
            }
            HostLink::Bridge {
                name,
                network: None,
            } => out.push(Problem::StrayBridge { name: name.clone() }),
            _ => {}
        }
    }
    for r in &census.rules {
        let Some(owner) = &r.owner else {
            continue;
        };
        if let RuleOwner::Stopped(c) = owner {
            if known.container(c.id.as_str()).is_some_and(live) {
                continue;
            }
        }
        out.push(Problem::StaleRule {
            rule: r.rule.clone(),
            owner: owner.clone(),
        });
    }
    for l in &census.leases {
        let (Some(c), Some(n)) = (
            known.container(&l.container),
            known.networks.iter().find(|n| n.id == l.network),
        ) else {
            // A lease of no container or network: the store's audit.
            continue;
        };
        if !live(c) {
            out.push(Problem::StaleLease {
                lease: l.clone(),
                container: container_ref(c),
                network: n.name.clone(),
            });
        }
    }
    let pids_alive = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
    for f in &census.run_files {
        let stale = match f {
            RunFile::AttachSocket { container, .. } => {
                !known.container(container).is_some_and(live)
            }
            RunFile::DnsLock { network, .. } => {
                !known.networks.iter().any(|n| &n.id == network)
                    // A responder still holding it is reported itself.
                    && !census.processes.iter().any(|p| p.role == ProcessRole::DnsResponder(network.clone()))
            }
            RunFile::DockerPath { network, .. } => !known.networks.iter().any(|n| &n.id == network),
            // Read by the process that forked it once the fork exits.
            RunFile::ForkReport { pid, path } => !pids_alive(*pid) && older_than(path, 60),
        };
        if stale {
            out.push(Problem::StaleRunFile {
                path: f.path().to_path_buf(),
            });
        }
    }
    out
}

/// Was `path` last modified more than `secs` ago?
fn older_than(path: &Path, secs: u64) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > secs)
}

/// The problems by area, in report order.
pub fn by_area(problems: &[Problem]) -> BTreeMap<Area, Vec<&Problem>> {
    let mut out: BTreeMap<Area, Vec<&Problem>> = BTreeMap::new();
    for p in problems {
        out.entry(p.area()).or_default().push(p);
    }
    out
}
