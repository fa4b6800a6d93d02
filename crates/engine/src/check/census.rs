//! Gathering the census: this root's records, then what of them the host
//! holds (see the module above for what counts as this root's).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::host;
use super::{
    BerthProcess, Census, CgroupDirs, ContainerRef, HostLink, MountEntry, MountOwner,
    NamespaceProcs, PodCgroupDirs, ProcessRole, RuleEntry, RuleOwner, RuleTag, RunFile,
};
use model::ContainerId;

use crate::container::Container;
use crate::{Engine, Result};

/// What the census knows of this root's records.
pub(super) struct Known {
    pub(super) containers: BTreeMap<String, Container>,
    pub(super) networks: Vec<store::NetworkRecord>,
    /// Networks this root had: its run root still names them (a DNS
    /// responder's lock, a `docker-path` mark), its store no longer.
    pub(super) removed_networks: Vec<String>,
}

impl Known {
    pub(super) fn container(&self, id: &str) -> Option<&Container> {
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

pub(super) fn container_ref(c: &Container) -> ContainerRef {
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
    pub(super) fn known(&self) -> Result<Known> {
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

    pub(super) fn census_of(&self, known: &Known) -> Census {
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

        // Cgroups named after this root's containers: `/berth/<id>`, and
        // those below a pod's cgroup or another `--cgroup-parent`; the
        // cgroups of its pods, by their marks in the run root.
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
            for c in known.containers.values() {
                if c.config.cgroup_parent.is_empty() {
                    continue;
                }
                let dirs =
                    runtime::cgroup::Cgroup::open(&h, &c.config.cgroup_path(c.id().as_str()))
                        .existing_dirs();
                if !dirs.is_empty() {
                    census.cgroups.push(CgroupDirs {
                        container: c.id().clone(),
                        pids: host::cgroup_pids(&dirs),
                        dirs,
                    });
                }
            }
            census.pod_cgroups = self.pod_cgroups_of(&h);
        }

        // Without a cgroup (rootless on v1): the processes of a `--pid
        // host` container's mount namespace, which outlive its init.
        for c in known.containers.values() {
            if let Some(ns) = c.state.stray_ns {
                census.namespaced.push(NamespaceProcs {
                    container: c.id().clone(),
                    pids: crate::container::procs::berths_in_mount_namespace(ns),
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

    pub(super) fn mount_owner(&self, known: &Known, root: &Path, path: &Path) -> MountOwner {
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
            [c, id, s] if c == "containers" && s == "shm" => match known.container(id) {
                Some(c) if c.is_running() || c.state.monitor_alive() => {
                    MountOwner::Shm(c.id().clone())
                }
                _ => MountOwner::Nothing,
            },
            [c, id, r] if c == "containers" && r == "rootfs" => match known.container(id) {
                Some(c) if c.is_running() || c.state.monitor_alive() => {
                    MountOwner::RootFs(c.id().clone())
                }
                _ => MountOwner::Nothing,
            },
            _ => MountOwner::Nothing,
        }
    }

    pub(super) fn links_of(&self, known: &Known) -> Vec<HostLink> {
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

    /// The pods' cgroups this root marked (`pod-cgroups/<pod id>` in its
    /// run root, naming the path), with what of them the host holds.
    fn pod_cgroups_of(&self, h: &runtime::cgroup::Hierarchy) -> Vec<PodCgroupDirs> {
        let dir = self.paths().runroot.join("pod-cgroups");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<PodCgroupDirs> = rd
            .flatten()
            .filter_map(|e| {
                let pod = e.file_name().to_string_lossy().into_owned();
                let path = std::fs::read_to_string(e.path()).ok()?.trim().to_string();
                let cg = runtime::cgroup::Cgroup::open(h, &path);
                Some(PodCgroupDirs {
                    pod,
                    dirs: cg.existing_dirs(),
                    pids: cg.tree_pids(),
                    path,
                })
            })
            .collect();
        out.sort_by(|a, b| a.pod.cmp(&b.pod));
        out
    }

    pub(super) fn run_files(&self) -> Vec<RunFile> {
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
