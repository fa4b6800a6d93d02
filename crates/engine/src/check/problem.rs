//! What `system check` reports: each problem says what is wrong, and
//! either what `--repair` does about it or what the user should do.
use std::fmt;
use std::path::PathBuf;

use model::ContainerId;
use store::{BlobRole, Finding, ImageUse, Lease};

use super::TaggedRule;

/// A container as a problem names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// Its id.
    pub id: ContainerId,
    /// Its name.
    pub name: String,
}

impl fmt::Display for ContainerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "container {} ({})", self.name, self.id.short())
    }
}

/// Whose a stale rule is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOwner {
    /// A container of this root that is not running.
    Stopped(ContainerRef),
    /// A container removed from this root (its address is on one of its
    /// networks).
    RemovedContainer(String),
    /// A network removed from this root (known by its run files, or its
    /// default bridge).
    RemovedNetwork {
        /// The network id of the tag.
        id: String,
        /// Its bridge.
        bridge: String,
    },
}

/// One problem found by [`crate::Engine::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A running container whose monitor is gone (killed, crashed): its
    /// output is not logged, its exit not recorded, its policy not applied.
    Unmonitored {
        /// The container.
        container: ContainerRef,
        /// Its init.
        init: i32,
        /// The monitor it had.
        monitor: i32,
    },
    /// Processes in the cgroups of a container that is not running.
    StrayProcesses {
        /// The container.
        container: ContainerRef,
        /// The processes.
        pids: Vec<i32>,
        /// Found in its cgroup (else, without one, in the mount namespace
        /// its run recorded: rootless on v1).
        cgroup: bool,
    },
    /// A detached berth process of this root that no container records as
    /// its monitor.
    UnrecordedProcess {
        /// The process.
        pid: i32,
        /// Its command line.
        command: String,
    },
    /// The DNS responder of a network that no longer exists.
    OrphanDns {
        /// The process.
        pid: i32,
        /// The network id.
        network: String,
    },
    /// Cgroup dirs, without processes, of a container that is not running.
    EmptyCgroup {
        /// The container.
        container: ContainerRef,
        /// The dirs.
        dirs: Vec<PathBuf>,
    },
    /// The cgroup of a pod that is no longer recorded (its removal was
    /// cut short), with whatever is left below it.
    OrphanPodCgroup {
        /// The pod's id.
        pod: String,
        /// Its cgroup path.
        path: String,
        /// Its dirs (none: only its mark in the run root is left).
        dirs: Vec<PathBuf>,
        /// Processes still in it.
        pids: Vec<i32>,
    },
    /// A mount under the state or run root that nothing of berth's uses.
    StrayMount {
        /// The mount point.
        path: PathBuf,
        /// Its filesystem type.
        fstype: String,
    },
    /// A host-side veth on one of this root's networks whose container is
    /// not running.
    StrayVeth {
        /// The interface.
        name: String,
        /// The network's name.
        network: String,
    },
    /// The bridge of a network this root no longer has.
    StrayBridge {
        /// The interface.
        name: String,
    },
    /// A firewall rule of a container that is not running, or of a
    /// removed container or network.
    StaleRule {
        /// The rule.
        rule: TaggedRule,
        /// Whose it is.
        owner: RuleOwner,
    },
    /// An address leased to a container that is not running.
    StaleLease {
        /// The lease.
        lease: Lease,
        /// The container.
        container: ContainerRef,
        /// The network's name.
        network: String,
    },
    /// A file in the run root of something that is gone (an attach
    /// socket, a DNS lock, a mark).
    StaleRunFile {
        /// The file.
        path: PathBuf,
    },
    /// A pod whose infra container is gone (a `pod create` or `pod rm`
    /// cut short): its containers cannot start.
    PodWithoutInfra {
        /// The pod's name.
        name: String,
        /// Its id.
        id: String,
    },
    /// A container that names a pod the store no longer has.
    ContainerWithoutPod {
        /// The container.
        container: ContainerRef,
        /// The pod's id.
        pod: String,
        /// It is that pod's infra container (berth's alone).
        infra: bool,
    },
    /// An inconsistency of the store.
    Store(Finding),
}

/// The kinds of things problems are about, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Processes.
    Processes,
    /// Cgroups.
    Cgroups,
    /// Mounts.
    Mounts,
    /// Interfaces and firewall rules.
    Network,
    /// Address leases.
    Leases,
    /// Files under the run root.
    RunFiles,
    /// Work dirs under `tmp/`.
    Tmp,
    /// Pods.
    Pods,
    /// Container records and dirs.
    Containers,
    /// Volume records and dirs.
    Volumes,
    /// Image records and tags.
    Images,
    /// Unpacked layers.
    Layers,
    /// Blobs.
    Blobs,
    /// The build cache.
    BuildCache,
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Area::Processes => "processes",
            Area::Cgroups => "cgroups",
            Area::Mounts => "mounts",
            Area::Network => "network",
            Area::Leases => "leases",
            Area::RunFiles => "run files",
            Area::Tmp => "tmp",
            Area::Pods => "pods",
            Area::Containers => "containers",
            Area::Volumes => "volumes",
            Area::Images => "images",
            Area::Layers => "layers",
            Area::Blobs => "blobs",
            Area::BuildCache => "build cache",
        })
    }
}

/// What is to be done about a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// `--repair` does it.
    Repair {
        /// What it does ("removes it").
        does: String,
        /// What it did ("removed it").
        done: String,
    },
    /// Only the user can decide: what to do.
    Manual(String),
}

fn role(r: BlobRole) -> &'static str {
    match r {
        BlobRole::Config => "config",
        BlobRole::Layer => "layer",
        BlobRole::Manifest => "manifest",
        BlobRole::Referrer => "referrer",
    }
}

/// "remove the image (berth rmi X) and pull, load or import it again",
/// its containers first.
fn replace_images(images: &[&ImageUse]) -> String {
    let containers: Vec<&str> = images
        .iter()
        .flat_map(|i| i.containers.iter().map(String::as_str))
        .collect();
    let names: Vec<String> = images.iter().map(|i| i.name()).collect();
    let mut s = String::new();
    if !containers.is_empty() {
        s.push_str(&format!(
            "remove the containers made from it (berth rm -f {}), then ",
            containers.join(" ")
        ));
    }
    s.push_str(&format!(
        "remove the image (berth rmi {}) and pull, load or import it again",
        names.join(" ")
    ));
    s
}

impl Problem {
    /// What the problem is about.
    pub fn area(&self) -> Area {
        match self {
            Problem::Unmonitored { .. }
            | Problem::StrayProcesses { .. }
            | Problem::UnrecordedProcess { .. }
            | Problem::OrphanDns { .. } => Area::Processes,
            Problem::EmptyCgroup { .. } | Problem::OrphanPodCgroup { .. } => Area::Cgroups,
            Problem::StrayMount { .. } => Area::Mounts,
            Problem::StrayVeth { .. } | Problem::StrayBridge { .. } | Problem::StaleRule { .. } => {
                Area::Network
            }
            Problem::StaleLease { .. } => Area::Leases,
            Problem::StaleRunFile { .. } => Area::RunFiles,
            Problem::PodWithoutInfra { .. } | Problem::ContainerWithoutPod { .. } => Area::Pods,
            Problem::Store(f) => match f {
                Finding::CorruptBlob { .. }
                | Finding::MissingBlob { .. }
                | Finding::UnreferencedBlob { .. } => Area::Blobs,
                Finding::MissingLayer { .. } | Finding::UnreferencedLayer { .. } => Area::Layers,
                Finding::DanglingTag { .. } => Area::Images,
                Finding::ContainerWithoutImage { .. }
                | Finding::ContainerWithoutVolume { .. }
                | Finding::MissingContainerDir { .. }
                | Finding::OrphanContainerDir { .. } => Area::Containers,
                Finding::MissingVolumeDir { .. } | Finding::OrphanVolumeDir { .. } => Area::Volumes,
                Finding::LeaseWithoutContainer { .. } | Finding::LeaseWithoutNetwork { .. } => {
                    Area::Leases
                }
                Finding::StrayTmp { .. } => Area::Tmp,
                Finding::DanglingCacheEntry { .. } => Area::BuildCache,
            },
        }
    }

    /// What `--repair` does about it, or what the user should do.
    pub fn remedy(&self) -> Remedy {
        let repair = |does: &str, done: &str| Remedy::Repair {
            does: does.to_string(),
            done: done.to_string(),
        };
        match self {
            Problem::Unmonitored { container, .. } => Remedy::Repair {
                does: "stops it (kills its processes, records exit 137)".into(),
                done: format!(
                    "stopped it; start it again with berth start {}",
                    container.name
                ),
            },
            Problem::StrayProcesses { cgroup: true, .. } => repair("kills them and removes the cgroup", "killed them and removed the cgroup"),
            Problem::StrayProcesses { cgroup: false, .. } => repair("kills them", "killed them"),
            Problem::UnrecordedProcess { pid, .. } => Remedy::Manual(format!(
                "if it is not a command you started, end it (kill {pid})"
            )),
            Problem::OrphanDns { .. } => repair("stops it", "stopped it"),
            Problem::EmptyCgroup { .. } => repair("removes it", "removed it"),
            Problem::OrphanPodCgroup { .. } => repair(
                "kills what is left in it and removes it",
                "removed it",
            ),
            Problem::StrayMount { .. } => repair("unmounts it", "unmounted it"),
            Problem::StrayVeth { .. } | Problem::StrayBridge { .. } => repair("deletes it", "deleted it"),
            Problem::StaleRule { .. } => repair("removes it", "removed it"),
            Problem::StaleLease { .. } => repair("releases it", "released it"),
            Problem::StaleRunFile { .. } => repair("removes it", "removed it"),
            Problem::PodWithoutInfra { name, .. } => Remedy::Manual(format!(
                "remove the pod with its containers (berth pod rm -f {name}) and create it again"
            )),
            Problem::ContainerWithoutPod { infra: true, .. } => {
                repair("removes it (kills it first)", "removed it")
            }
            Problem::ContainerWithoutPod { container, .. } => Remedy::Manual(format!(
                "remove the container (berth rm -f {}): it cannot start without its pod",
                container.name
            )),
            Problem::Store(f) => match f {
                Finding::CorruptBlob {
                    cache_only: true, ..
                } => repair("removes it (the next push compresses the layer again)", "removed it"),
                Finding::CorruptBlob { users, .. } => {
                    let images: Vec<&ImageUse> = users.iter().map(|(i, _)| i).collect();
                    Remedy::Manual(replace_images(&images))
                }
                Finding::MissingBlob { image, .. } => Remedy::Manual(replace_images(&[image])),
                Finding::MissingLayer { images, .. } => {
                    Remedy::Manual(replace_images(&images.iter().collect::<Vec<_>>()))
                }
                Finding::UnreferencedLayer { .. }
                | Finding::UnreferencedBlob { .. }
                | Finding::OrphanContainerDir { .. }
                | Finding::StrayTmp { .. }
                | Finding::DanglingCacheEntry { .. } => repair("removes it", "removed it"),
                Finding::DanglingTag { .. } => repair("removes the tag", "removed the tag"),
                Finding::ContainerWithoutImage { name, .. } => {
                    Remedy::Manual(format!("remove the container (berth rm -f {name})"))
                }
                Finding::ContainerWithoutVolume { .. } => {
                    repair("makes the volume again, empty (as its next start would)", "made the volume again, empty")
                }
                Finding::MissingContainerDir { .. } => {
                    repair("removes the container (it cannot start again)", "removed the container")
                }
                Finding::MissingVolumeDir { .. } => repair("makes it again, empty", "made it again, empty"),
                Finding::OrphanVolumeDir { name, .. } => Remedy::Manual(format!(
                    "berth volume create {name} takes it back as a volume; delete it if its data is not needed"
                )),
                Finding::LeaseWithoutContainer { .. } | Finding::LeaseWithoutNetwork { .. } => {
                    repair("releases it", "released it")
                }
            },
        }
    }

    /// Whether `--repair` deals with it.
    pub fn repairable(&self) -> bool {
        matches!(self.remedy(), Remedy::Repair { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unmonitored {
                container,
                init,
                monitor,
            } => write!(
                f,
                "{container} runs without its monitor (pid {monitor} is gone; its init is pid {init}): its output is not logged and its exit not recorded"
            ),
            Problem::StrayProcesses {
                container,
                pids,
                cgroup,
            } => write!(
                f,
                "{container} is not running but processes are left in its {}: {}",
                if *cgroup { "cgroup" } else { "mount namespace" },
                pids.iter().map(i32::to_string).collect::<Vec<_>>().join(", ")
            ),
            Problem::UnrecordedProcess { pid, command } => write!(
                f,
                "berth process {pid} ({command}) is detached but no container records it as its monitor"
            ),
            Problem::OrphanDns { pid, network } => write!(
                f,
                "DNS responder {pid} serves network {}, which no longer exists",
                &network[..12.min(network.len())]
            ),
            Problem::EmptyCgroup { container, dirs } => {
                write!(f, "{container} is not running but its cgroup is left")?;
                if let Some(first) = dirs.first() {
                    write!(f, ": {}", first.display())?;
                }
                match dirs.len() {
                    0 | 1 => Ok(()),
                    2 => write!(f, " (and 1 more hierarchy)"),
                    n => write!(f, " (and {} more hierarchies)", n - 1),
                }
            }
            Problem::OrphanPodCgroup {
                pod,
                path,
                dirs,
                pids,
            } => {
                let pod = &pod[..12.min(pod.len())];
                if dirs.is_empty() {
                    return write!(f, "pod {pod} is removed but the mark of its cgroup {path} is left");
                }
                write!(
                    f,
                    "pod {pod} is removed but its cgroup {path} is left in {} hierarchies",
                    dirs.len()
                )?;
                if !pids.is_empty() {
                    let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
                    write!(f, ", with processes {}", list.join(" "))?;
                }
                Ok(())
            }
            Problem::StrayMount { path, fstype } => write!(
                f,
                "{} ({fstype}) is mounted under berth's directories but nothing of berth's uses it",
                path.display()
            ),
            Problem::StrayVeth { name, network } => write!(
                f,
                "veth {name} on network {network} belongs to no running container"
            ),
            Problem::StrayBridge { name } => write!(
                f,
                "bridge {name} belongs to a network of this root that no longer exists"
            ),
            Problem::StaleRule { rule, owner } => {
                let whose = match owner {
                    RuleOwner::Stopped(c) => format!("of {c}, which is not running"),
                    RuleOwner::RemovedContainer(id) => format!(
                        "of container {}, which no longer exists",
                        &id[..12.min(id.len())]
                    ),
                    RuleOwner::RemovedNetwork { id, bridge } => format!(
                        "of network {} (bridge {bridge}), which no longer exists",
                        &id[..12.min(id.len())]
                    ),
                };
                write!(f, "rule in {} {whose}: {}", rule.place, rule.text)
            }
            Problem::StaleLease {
                lease,
                container,
                network,
            } => write!(
                f,
                "address {} on network {network} is leased to {container}, which is not running",
                lease.ip
            ),
            Problem::StaleRunFile { path } => {
                write!(f, "{} belongs to something that is gone", path.display())
            }
            Problem::PodWithoutInfra { name, id } => write!(
                f,
                "pod {name} ({}) has no infra container (its create or removal was cut short)",
                &id[..12.min(id.len())]
            ),
            Problem::ContainerWithoutPod {
                container,
                pod,
                infra,
            } => write!(
                f,
                "{container} is {} of pod {}, which no longer exists",
                if *infra {
                    "the infra container"
                } else {
                    "a member"
                },
                &pod[..12.min(pod.len())]
            ),
            Problem::Store(finding) => fmt_finding(finding, f),
        }
    }
}

fn fmt_finding(finding: &Finding, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match finding {
        Finding::CorruptBlob {
            digest,
            users,
            cache_only,
        } => {
            let whose = if *cache_only {
                "a cached compressed layer".to_string()
            } else {
                users
                    .iter()
                    .map(|(i, r)| format!("{} of image {}", role(*r), i.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            write!(
                f,
                "blob {digest} ({whose}) does not match its digest: its content is damaged"
            )
        }
        Finding::MissingBlob {
            digest,
            role: r,
            image,
        } => write!(
            f,
            "blob {digest} ({} of image {}) is missing",
            role(*r),
            image.name()
        ),
        Finding::MissingLayer { diff_id, images } => write!(
            f,
            "layer {diff_id} of image {} is not unpacked (its dir is missing)",
            images
                .iter()
                .map(ImageUse::name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Finding::UnreferencedLayer { path } => {
            write!(f, "layer dir {} belongs to no image", path.display())
        }
        Finding::UnreferencedBlob { path } => {
            write!(f, "blob {} belongs to no image", path.display())
        }
        Finding::DanglingTag { tag, image } => write!(
            f,
            "tag {tag} names image {image}, which does not exist"
        ),
        Finding::ContainerWithoutImage { id, name, image } => write!(
            f,
            "container {name} ({}) was created from image {}, which no longer exists",
            id.short(),
            image.short()
        ),
        Finding::ContainerWithoutVolume { id, name, volume } => write!(
            f,
            "container {name} ({}) mounts volume {volume}, which has no record",
            id.short()
        ),
        Finding::MissingContainerDir { id, name, path } => write!(
            f,
            "container {name} ({}): its dir {} is missing (its writable layer, /etc files and logs are gone)",
            id.short(),
            path.display()
        ),
        Finding::OrphanContainerDir { path } => {
            write!(f, "{} belongs to no container", path.display())
        }
        Finding::MissingVolumeDir { name, path } => write!(
            f,
            "volume {name}: its dir {} is missing (its data is gone)",
            path.display()
        ),
        Finding::OrphanVolumeDir { path, .. } => write!(
            f,
            "{} belongs to no volume (it may hold data)",
            path.display()
        ),
        Finding::LeaseWithoutContainer { lease } => write!(
            f,
            "address {} on network {} is leased to container {}, which does not exist",
            lease.ip,
            &lease.network[..12.min(lease.network.len())],
            &lease.container[..12.min(lease.container.len())]
        ),
        Finding::LeaseWithoutNetwork { lease } => write!(
            f,
            "address {} is leased on network {}, which does not exist",
            lease.ip,
            &lease.network[..12.min(lease.network.len())]
        ),
        Finding::StrayTmp { path } => write!(
            f,
            "{} is the work of no running command (left by a crash)",
            path.display()
        ),
        Finding::DanglingCacheEntry { key, image } => write!(
            f,
            "build cache entry {} names image {image}, which no longer exists",
            &key[..12.min(key.len())]
        ),
    }
}
