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

/// What the census knows of this root's records.
struct Known {
    containers: BTreeMap<String, Container>,
    networks: Vec<store::NetworkRecord>,
    /// Networks this root had: its run root still names them (a DNS
    /// responder's lock, a `docker-path` mark), its store no longer.
    removed_networks: Vec<String>,
}

impl Known {
    fn container(&self, id: &str) -> Option<&Container> {
        self.containers.get(id)
    }

    fn network_by_prefix(&self, prefix: &str) -> Option<&store::NetworkRecord> {
        let mut it = self.networks.iter().filter(|n| n.id.starts_with(prefix));
        let first = it.next();
        if it.next().is_some() {
            return None;
        }
        first
    }

    fn subnets(&self) -> Vec<network::Subnet> {
        self.networks
            .iter()
            .filter_map(|n| n.subnet.parse().ok())
            .collect()
    }
}

fn container_ref(c: &Container) -> ContainerRef {
    ContainerRef {
        id: c.id().clone(),
        name: c.name().to_string(),
    }
}

/// IPv4 addresses written in a rule's text.
fn addresses(text: &str) -> Vec<std::net::Ipv4Addr> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Does `text` name the interface `name` (not as a prefix of another)?
fn names_interface(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().last();
        let after = text[at + name.len()..].chars().next();
        let edge = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        edge(before) && edge(after)
    })
}

impl Engine {
    fn known(&self) -> Result<Known> {
        let networks = self.store().networks()?;
        let mut removed_networks: Vec<String> = self
            .run_files()
            .into_iter()
            .filter_map(|f| match f {
                RunFile::DnsLock { network, .. } | RunFile::DockerPath { network, .. } => {
                    Some(network)
                }
                _ => None,
            })
            .filter(|id| !networks.iter().any(|n| &n.id == id))
            .collect();
        removed_networks.sort();
        removed_networks.dedup();
        Ok(Known {
            containers: self
                .containers()?
                .into_iter()
                .map(|c| (c.id().as_str().to_string(), c))
                .collect(),
            networks,
            removed_networks,
        })
    }

    /// Everything of this state root's on the host (see the module).
    pub fn census(&self) -> Result<Census> {
        let known = self.known()?;
        Ok(self.census_of(&known))
    }

    fn census_of(&self, known: &Known) -> Census {
        let root = host::canonical(&self.paths().root);
        let runroot = host::canonical(&self.paths().runroot);
        let mut census = Census::default();

        // Processes: monitors by their record, the rest by command line.
        let monitors: BTreeMap<i32, &ContainerId> = known
            .containers
            .values()
            .filter(|c| c.state.monitor_alive())
            .map(|c| (c.state.monitor_pid, c.id()))
            .collect();
        let me = std::process::id() as i32;
        for p in host::berth_processes(Path::new("/proc"), &root, me) {
            let role = match (monitors.get(&p.pid), host::subcommand(&p.args)) {
                (Some(id), _) => ProcessRole::Monitor((*id).clone()),
                (None, Some("dns-serve")) => {
                    let net = p.args.last().cloned().unwrap_or_default();
                    ProcessRole::DnsResponder(net)
                }
                (None, Some("serve")) => ProcessRole::Server,
                _ if p.session == p.pid => ProcessRole::Detached,
                _ => ProcessRole::Command,
            };
            census.processes.push(BerthProcess {
                pid: p.pid,
                command: p.args.join(" "),
                role,
                age: host::age(p.start),
            });
        }

        // Cgroups named after this root's containers.
        if let Ok(h) = runtime::cgroup::Hierarchy::detect() {
            for (name, dirs) in host::berth_cgroups(&h) {
                let Some(c) = known.container(&name) else {
                    continue;
                };
                census.cgroups.push(CgroupDirs {
                    container: c.id().clone(),
                    pids: host::cgroup_pids(&dirs),
                    dirs,
                });
            }
        }

        // Mounts under the state and run roots (not the roots themselves).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for m in host::parse_mountinfo(&mountinfo) {
            let under = |r: &Path| m.path.starts_with(r) && m.path != r;
            if !under(&root) && !under(&runroot) {
                continue;
            }
            let owner = self.mount_owner(known, &root, &m.path);
            census.mounts.push(MountEntry {
                path: m.path,
                fstype: m.fstype,
                source: m.source,
                owner,
            });
        }

        census.links = self.links_of(known);
        census.rules = self.rules_of(known);
        census.leases = self.store().leases(None).unwrap_or_default();

        let tmp = self.paths().root.join("tmp");
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            let mut dirs: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.to_string_lossy();
                    !n.ends_with(".lock") && !n.ends_with(".lock.new")
                })
                .collect();
            dirs.sort();
            census.work_dirs = dirs;
        }
        census.run_files = self.run_files();
        census
    }

    fn mount_owner(&self, known: &Known, root: &Path, path: &Path) -> MountOwner {
        let Ok(rel) = path.strip_prefix(root) else {
            return MountOwner::Nothing;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        match parts.as_slice() {
            [v, name, data] if v == "volumes" && data == "_data" => {
                match self.store().volume(name) {
                    Ok(rec) if rec.options.contains_key("type") => MountOwner::Volume(name.clone()),
                    _ => MountOwner::Nothing,
                }
            }
            [c, id, r] if c == "containers" && r == "rootfs" => match known.container(id) {
                Some(c) if c.is_running() || c.state.monitor_alive() => {
                    MountOwner::RootFs(c.id().clone())
                }
                _ => MountOwner::Nothing,
            },
            _ => MountOwner::Nothing,
        }
    }

    fn links_of(&self, known: &Known) -> Vec<HostLink> {
        let Ok(links) = network::Netlink::open().and_then(|mut nl| nl.links()) else {
            return Vec::new();
        };
        let index_of = |name: &str| links.iter().find(|l| l.name == name).map(|l| l.index);
        let mut out = Vec::new();
        for n in &known.networks {
            if index_of(&n.bridge).is_some() {
                out.push(HostLink::Bridge {
                    name: n.bridge.clone(),
                    network: Some(n.id.clone()),
                });
            }
        }
        // Bridges of networks this root had: its default one (a name of
        // its own) and those its run root still names.
        let default = crate::networks::default_bridge_name(&self.paths().root);
        let has_default = known.networks.iter().any(crate::networks::is_default);
        let mut gone: Vec<String> = known
            .removed_networks
            .iter()
            .map(|id| format!("br-{}", &id[..12]))
            .collect();
        if !has_default {
            gone.push(default);
        }
        for name in gone {
            if index_of(&name).is_some() {
                out.push(HostLink::Bridge {
                    name,
                    network: None,
                });
            }
        }
        for l in &links {
            if l.name.len() != 15 || !l.name.starts_with("vb") || !l.name.is_ascii() {
                continue;
            }
            let (cid, nid) = (&l.name[2..8], &l.name[8..15]);
            let Some(n) = known.network_by_prefix(nid) else {
                continue;
            };
            // A port of another bridge is not ours.
            if let (Some(m), Some(br)) = (l.master, index_of(&n.bridge)) {
                if m != br {
                    continue;
                }
            }
            let container = known
                .containers
                .values()
                .find(|c| {
                    c.id().as_str().starts_with(cid) && (c.is_running() || c.state.monitor_alive())
                })
                .map(|c| c.id().clone());
            out.push(HostLink::Veth {
                name: l.name.clone(),
                network: n.id.clone(),
                container,
            });
        }
        out
    }

    fn rules_of(&self, known: &Known) -> Vec<RuleEntry> {
        let Ok(fw) =
            crate::settings::Settings::load(&self.paths().config).and_then(|s| s.firewall())
        else {
            return Vec::new();
        };
        let Ok(rules) = fw.tagged_rules() else {
            return Vec::new();
        };
        let subnets = known.subnets();
        let default = crate::networks::default_bridge_name(&self.paths().root);
        let mut out = Vec::new();
        for rule in rules {
            let entry = match &rule.tag {
                RuleTag::Container(id) => match known.container(id) {
                    Some(c) => {
                        let live = c.is_running() || c.state.monitor_alive();
                        RuleEntry {
                            owner: (!live).then(|| RuleOwner::Stopped(container_ref(c))),
                            live,
                            rule,
                        }
                    }
                    None => {
                        let ours = addresses(&rule.text)
                            .iter()
                            .any(|a| subnets.iter().any(|s| s.contains(*a)));
                        if !ours {
                            continue;
                        }
                        RuleEntry {
                            owner: Some(RuleOwner::RemovedContainer(id.clone())),
                            live: false,
                            rule,
                        }
                    }
                },
                RuleTag::Network(id) => {
                    if known.networks.iter().any(|n| &n.id == id) {
                        RuleEntry {
                            live: true,
                            owner: None,
                            rule,
                        }
                    } else if known.removed_networks.contains(id) {
                        RuleEntry {
                            owner: Some(RuleOwner::RemovedNetwork {
                                id: id.clone(),
                                bridge: format!("br-{}", &id[..12.min(id.len())]),
                            }),
                            live: false,
                            rule,
                        }
                    } else if names_interface(&rule.text, &default) {
                        RuleEntry {
                            owner: Some(RuleOwner::RemovedNetwork {
                                id: id.clone(),
                                bridge: default.clone(),
                            }),
                            live: false,
                            rule,
                        }
                    } else {
                        continue;
                    }
                }
            };
            out.push(entry);
        }
        out
    }

    fn run_files(&self) -> Vec<RunFile> {
        let run = &self.paths().runroot;
        let mut out = Vec::new();
        let names = |d: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        for n in names(run) {
            if let Some(id) = n.strip_suffix(".sock").filter(|id| hex64(id)) {
                out.push(RunFile::AttachSocket {
                    path: run.join(&n),
                    container: id.to_string(),
                });
            } else if let Some(pid) = n
                .strip_prefix("forked-")
                .and_then(|r| r.strip_suffix(".err"))
                .and_then(|p| p.parse().ok())
            {
                out.push(RunFile::ForkReport {
                    path: run.join(&n),
                    pid,
                });
            }
        }
        for n in names(&run.join("dns")) {
            if let Some(id) = n.strip_suffix(".lock").filter(|id| hex64(id)) {
                out.push(RunFile::DnsLock {
                    path: run.join("dns").join(&n),
                    network: id.to_string(),
                });
            }
        }
        for n in names(&run.join("docker-path")) {
            if hex64(&n) {
                out.push(RunFile::DockerPath {
                    path: run.join("docker-path").join(&n),
                    network: n,
                });
            }
        }
        out
    }

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
        problems.extend(audit.findings.into_iter().map(Problem::Store));
        problems.sort_by_key(Problem::area);
        Ok(CheckReport {
            store: audit.counts,
            census,
            problems,
        })
    }
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
            });
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_addresses_and_interface_names() {
        assert_eq!(
            addresses("tcp dport 8080 dnat to 10.1.0.2:80 comment \"berth:ab\""),
            vec!["10.1.0.2".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(
            addresses("-s 127.0.0.0/8 -d 172.18.0.2/32 -j MASQUERADE").len(),
            2
        );
        assert!(names_interface(
            "iifname \"berth1a2b3c4d\" oifname != \"berth1a2b3c4d\" drop",
            "berth1a2b3c4d"
        ));
        assert!(!names_interface("-o berth+ -j DROP", "berth1a2b3c4d"));
        assert!(!names_interface(
            "-i berth1a2b3c4de -j DROP",
            "berth1a2b3c4d"
        ));
    }
}
