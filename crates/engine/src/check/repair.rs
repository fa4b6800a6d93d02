//! `system check --repair`: each problem that is berth's alone is fixed
//! after checking again that it still is what was found (a command may
//! have run meanwhile); the rest are left to the user.
use std::collections::BTreeMap;

use store::Finding;

use super::{MountOwner, Problem, RuleOwner, RuleTag};
use crate::{Engine, EngineError, Result};

/// What `--repair` did about one problem.
#[derive(Debug)]
pub struct Repaired {
    /// The problem.
    pub problem: Problem,
    /// Done, or why not.
    pub result: std::result::Result<(), String>,
}

impl Engine {
    /// Repair the repairable `problems` (see [`Problem::remedy`]), in the
    /// order given (processes first: stopping a container whose monitor is
    /// gone releases its leases, rules and cgroups too). Problems that
    /// need the user are left out of the result.
    pub fn repair(&self, problems: &[Problem]) -> Vec<Repaired> {
        let mut out = Vec::new();
        let mut collected = false;
        for p in problems.iter().filter(|p| p.repairable()) {
            let result = match p {
                Problem::Store(
                    Finding::UnreferencedLayer { .. } | Finding::UnreferencedBlob { .. },
                ) if collected => Ok(()),
                Problem::Store(
                    Finding::UnreferencedLayer { .. } | Finding::UnreferencedBlob { .. },
                ) => {
                    collected = true;
                    self.store()
                        .collect_garbage()
                        .map(|_| ())
                        .map_err(EngineError::from)
                }
                _ => self.repair_one(p),
            };
            out.push(Repaired {
                problem: p.clone(),
                result: result.map_err(|e| e.to_string()),
            });
        }
        out
    }

    fn repair_one(&self, p: &Problem) -> Result<()> {
        let gone = |what: &str| EngineError::invalid("repair", format!("{what}: nothing to do"));
        match p {
            Problem::Unmonitored { container, .. } => {
                let c = self.container(container.id.as_str())?;
                if !c.is_running() || c.state.monitor_alive() {
                    return Err(gone("it is no longer running without a monitor"));
                }
                self.stop_unmonitored(&c)?;
                if c.config.auto_remove {
                    // Its monitor would have removed it (`--rm`).
                    self.remove(c.id().as_str(), true, true)?;
                }
                Ok(())
            }
            Problem::StrayProcesses { container, .. } => {
                let c = self.container(container.id.as_str())?;
                if c.is_running() || c.state.monitor_alive() {
                    return Err(gone("it runs again"));
                }
                self.stop_unmonitored(&c)
            }
            Problem::OrphanDns { network, .. } => {
                if self.store().network(network).is_ok() {
                    return Err(gone("the network exists again"));
                }
                crate::networks::stop_dns(self.paths(), network);
                Ok(())
            }
            Problem::EmptyCgroup { container, .. } => {
                let c = self.container(container.id.as_str())?;
                if c.is_running() || c.state.monitor_alive() {
                    return Err(gone("it runs again"));
                }
                Ok(self.cgroup_of(&c)?.destroy()?)
            }
            Problem::OrphanPodCgroup { pod, path, .. } => {
                if self.store().pods()?.iter().any(|p| &p.id == pod) {
                    return Err(gone("the pod is recorded again"));
                }
                self.pod_cgroup_remove(pod, path)
            }
            Problem::StrayMount { path, .. } => {
                let known = self.known()?;
                let root = super::host::canonical(&self.paths().root);
                if self.mount_owner(&known, &root, path) != MountOwner::Nothing {
                    return Err(gone("it is in use again"));
                }
                nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
                    .map_err(|e| EngineError::io(format!("unmounting {}", path.display()), e))
            }
            Problem::StrayVeth { name, .. } | Problem::StrayBridge { name } => {
                let mut nl =
                    network::Netlink::open().map_err(|e| EngineError::io("opening netlink", e))?;
                nl.delete_link(name)
                    .map_err(|e| EngineError::io(format!("deleting {name}"), e))
            }
            Problem::StaleRule { rule, owner } => {
                let fw = crate::settings::Settings::load(&self.paths().config)?.firewall()?;
                let done = match (&rule.tag, owner) {
                    (RuleTag::Container(id), _) => {
                        if let RuleOwner::Stopped(c) = owner {
                            let c = self.container(c.id.as_str())?;
                            if c.is_running() || c.state.monitor_alive() {
                                return Err(gone("its container runs again"));
                            }
                        }
                        fw.unpublish(id)
                    }
                    (RuleTag::Network(id), RuleOwner::RemovedNetwork { bridge, .. }) => {
                        fw.network_down(id, bridge)
                    }
                    (RuleTag::Network(_), _) => return Err(gone("not a removed network's")),
                };
                done.map_err(|e| EngineError::io("removing the rule", e))
            }
            Problem::StaleLease {
                lease, container, ..
            } => {
                let c = self.container(container.id.as_str())?;
                if c.is_running() || c.state.monitor_alive() {
                    return Err(gone("its container runs again"));
                }
                Ok(self
                    .store()
                    .release_lease(&lease.container, &lease.network)?)
            }
            Problem::StaleRunFile { path } => std::fs::remove_file(path)
                .map_err(|e| EngineError::io(format!("removing {}", path.display()), e)),
            Problem::UnrecordedProcess { .. }
            | Problem::PodWithoutInfra { .. }
            | Problem::ContainerWithoutPod { infra: false, .. } => Err(gone("left to the user")),
            Problem::ContainerWithoutPod {
                container,
                pod,
                infra: true,
            } => {
                let c = self.container(container.id.as_str())?;
                if self.store().pod(pod).is_ok() {
                    return Err(gone("its pod exists again"));
                }
                self.remove_container(c, true, true).map(|_| ())
            }
            Problem::Store(f) => self.repair_finding(f),
        }
    }

    fn repair_finding(&self, f: &Finding) -> Result<()> {
        let store = self.store();
        match f {
            Finding::CorruptBlob {
                digest,
                cache_only: true,
                ..
            } => Ok(store.drop_cached_blob(digest)?),
            Finding::DanglingTag { tag, .. } => Ok(store.remove_dangling_tag(tag)?),
            Finding::DanglingCacheEntry { key, .. } => Ok(store.remove_dangling_cache_entry(key)?),
            Finding::OrphanContainerDir { path } => Ok(store.remove_orphan_container_dir(path)?),
            Finding::MissingVolumeDir { name, .. } => Ok(store.restore_volume_dir(name)?),
            Finding::LeaseWithoutContainer { lease } | Finding::LeaseWithoutNetwork { lease } => {
                Ok(store.release_orphan_lease(lease)?)
            }
            Finding::StrayTmp { path } => Ok(store.remove_stray_tmp(path)?),
            Finding::UnreferencedLayer { .. } | Finding::UnreferencedBlob { .. } => {
                store.collect_garbage()?;
                Ok(())
            }
            Finding::ContainerWithoutVolume { id, volume, .. } => {
                drop(store);
                let c = self.container(id.as_str())?;
                let anonymous = c
                    .config
                    .mounts
                    .iter()
                    .any(|m| m.source == *volume && m.anonymous);
                let rec =
                    crate::volumes::new_record(volume, BTreeMap::new(), BTreeMap::new(), anonymous);
                self.store().create_volumes(std::slice::from_ref(&rec))?;
                Ok(())
            }
            Finding::MissingContainerDir { id, name, .. } => {
                drop(store);
                let c = self.container(id.as_str())?;
                if c.is_running() || c.state.monitor_alive() {
                    return Err(EngineError::invalid(
                        "repair",
                        format!("container {name} is running: remove it with berth rm -f {name}"),
                    ));
                }
                self.remove(id.as_str(), false, false)?;
                Ok(())
            }
            Finding::CorruptBlob { .. }
            | Finding::MissingBlob { .. }
            | Finding::MissingLayer { .. }
            | Finding::ContainerWithoutImage { .. }
            | Finding::OrphanVolumeDir { .. } => Err(EngineError::invalid(
                "repair",
                "left to the user: see the message",
            )),
        }
    }
}
