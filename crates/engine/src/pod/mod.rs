//! Pods (podman's): containers sharing network, IPC and UTS namespaces
//! (and pid with `--share pid`) through a tiny infra container that holds
//! them. The infra container is an ordinary container of the store (its
//! monitor, cgroups, published ports and network are the usual ones, so
//! `system check` and `rm -f` already know them), marked `pod_infra`; the
//! pod is a store row naming it. A member is created with `--network`,
//! `--ipc` and `--uts` `container:<infra>`, and starting it starts the
//! infra first. One file per operation.

/// The pod's cgroup and its limits.
pub mod cgroup;
/// `pod create`.
pub mod create;
/// `pod inspect` and the rows of `pod ps`.
pub mod inspect;
/// `pod start`, `pod stop`, `pod rm`.
pub mod lifecycle;
/// `pod logs`, `pod top`, `pod stats`.
pub mod observe;
/// The infra container's image: a static pause binary.
pub mod pause;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{PortMapping, Status};
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

/// A namespace a pod's members share (podman's `--share` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedNamespace {
    /// The network: one loopback, one address, the pod's published ports.
    Net,
    /// System V IPC and POSIX message queues.
    Ipc,
    /// The host and domain name.
    Uts,
    /// Processes: members see each other's (and the infra is pid 1).
    Pid,
}

impl SharedNamespace {
    /// podman's word.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedNamespace::Net => "net",
            SharedNamespace::Ipc => "ipc",
            SharedNamespace::Uts => "uts",
            SharedNamespace::Pid => "pid",
        }
    }

    /// podman's default (Kubernetes'): ipc, net, uts.
    pub fn defaults() -> Vec<SharedNamespace> {
        vec![
            SharedNamespace::Ipc,
            SharedNamespace::Net,
            SharedNamespace::Uts,
        ]
    }

    /// `--share`: a comma-separated list that replaces the default, or
    /// with a leading `+` adds to it; `none` (or nothing) shares nothing.
    pub fn parse_list(value: &str) -> Result<Vec<SharedNamespace>> {
        let (mut out, list) = match value.strip_prefix('+') {
            Some(rest) => (SharedNamespace::defaults(), rest),
            None => (Vec::new(), value),
        };
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let ns = match word {
                "net" => SharedNamespace::Net,
                "ipc" => SharedNamespace::Ipc,
                "uts" => SharedNamespace::Uts,
                "pid" => SharedNamespace::Pid,
                "none" => continue,
                "cgroup" => {
                    return Err(EngineError::invalid(
                        "--share",
                        "cgroup: berth gives each container its own cgroup namespace; share ipc, net, pid or uts",
                    ))
                }
                other => {
                    // podman's words.
                    return Err(EngineError::Refused(format!(
                        "invalid kernel namespace to share: {other}. Options are: cgroup, ipc, net, pid, uts or none"
                    )));
                }
            };
            if !out.contains(&ns) {
                out.push(ns);
            }
        }
        Ok(out)
    }
}

/// What berth keeps about a pod (the store row's document).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodConfig {
    /// When it was made.
    pub created: DateTime<Utc>,
    /// The host name its members share (`--hostname`; the pod's name by
    /// default, as podman).
    pub hostname: String,
    /// `--hostname` was given (`pod inspect` shows it only then, as
    /// podman: `""` for the default).
    pub hostname_set: bool,
    /// The infra container's id.
    pub infra_id: String,
    /// What the members share, in the order given.
    pub shared: Vec<SharedNamespace>,
    /// `--network` as given (empty: the default bridge).
    pub network: String,
    /// `-p`: published on the pod's network namespace.
    pub ports: Vec<PortMapping>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// The command line that made it (podman's `CreateCommand`).
    pub create_command: Vec<String>,
    /// `--cgroup-parent` (`/berth` when not given).
    pub cgroup_parent: String,
    /// Its cgroup (`<parent>/<id>`); empty when it has none
    /// (`--share-parent=false`, rootless without a delegated cgroup, a pod
    /// made by a berth before pods had cgroups).
    pub cgroup_path: String,
    /// `--share-parent`: its containers' cgroups are made below its own.
    #[serde(default = "share_parent_default")]
    pub share_parent: bool,
    /// Its limits (`--cpus`, `-m`…), written in its cgroup.
    pub limits: cgroup::PodLimits,
    /// Its user namespace (`--userns`, `--uidmap`/`--gidmap`).
    #[serde(default)]
    pub userns: PodUserns,
    /// `--device`: made in the infra and in members without their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<crate::config::DeviceMapping>,
}

/// What a pod's user namespace was made from: the members share it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodUserns {
    /// None of its own (the host's, or rootless berth's).
    #[default]
    Host,
    /// `--uidmap`/`--gidmap`.
    Maps,
    /// `--userns=` a mode (`auto`, `keep-id`, `nomap`, `container:`…).
    Mode,
}

impl PodUserns {
    /// From `pod create`'s flags.
    pub fn of(req: &create::PodCreateRequest) -> PodUserns {
        if !req.uidmap.is_empty() || !req.gidmap.is_empty() {
            PodUserns::Maps
        } else if req
            .userns
            .as_deref()
            .is_none_or(|m| m.is_empty() || m == "host")
        {
            PodUserns::Host
        } else {
            PodUserns::Mode
        }
    }
}

fn share_parent_default() -> bool {
    true
}

/// A pod with its document decoded.
#[derive(Debug, Clone)]
pub struct Pod {
    /// 64 hex digits.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its document.
    pub config: PodConfig,
}

impl Pod {
    fn from_record(r: store::PodRecord) -> Result<Pod> {
        let config = serde_json::from_value(r.config)
            .map_err(|e| EngineError::io("decoding a pod's record", std::io::Error::other(e)))?;
        Ok(Pod {
            id: r.id,
            name: r.name,
            config,
        })
    }

    /// The first 12 digits of its id.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// Does it share `ns`?
    pub fn shares(&self, ns: SharedNamespace) -> bool {
        self.config.shared.contains(&ns)
    }
}

/// podman's pod states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStatus {
    /// No container has run yet.
    Created,
    /// Every container runs.
    Running,
    /// Some run, some do not.
    Degraded,
    /// Every container is paused.
    Paused,
    /// Every container has exited.
    Exited,
    /// Some have exited, none runs.
    Stopped,
    /// A container is in a state that fits none of these (removing, dead).
    Error,
}

impl PodStatus {
    /// podman's word (`pod ps`, `pod inspect`'s `State`).
    pub fn as_str(self) -> &'static str {
        match self {
            PodStatus::Created => "Created",
            PodStatus::Running => "Running",
            PodStatus::Degraded => "Degraded",
            PodStatus::Paused => "Paused",
            PodStatus::Exited => "Exited",
            PodStatus::Stopped => "Stopped",
            PodStatus::Error => "Error",
        }
    }

    /// podman's rule over its containers' states (libpod's
    /// `createPodStatusResults`).
    pub fn of(statuses: &[Status]) -> PodStatus {
        let n = statuses.len();
        if n == 0 {
            return PodStatus::Created;
        }
        let count = |f: &dyn Fn(Status) -> bool| statuses.iter().filter(|s| f(**s)).count();
        let running = count(&|s| matches!(s, Status::Running | Status::Restarting));
        let paused = count(&|s| s == Status::Paused);
        let stopped = count(&|s| matches!(s, Status::Exited));
        let created = count(&|s| s == Status::Created);
        let errored = n - running - paused - stopped - created;
        match () {
            _ if running > 0 && (paused > 0 || stopped > 0 || created > 0) => PodStatus::Degraded,
            _ if running == n => PodStatus::Running,
            _ if paused == n => PodStatus::Paused,
            _ if stopped == n => PodStatus::Exited,
            _ if stopped > 0 => PodStatus::Stopped,
            _ if errored > 0 => PodStatus::Error,
            _ => PodStatus::Created,
        }
    }
}

impl Engine {
    /// A pod by name, id or unique id prefix; podman's words when there is
    /// none.
    pub fn pod(&self, name_or_id: &str) -> Result<Pod> {
        match self.store().pod(name_or_id) {
            Ok(r) => Pod::from_record(r),
            Err(store::StoreError::NotFound { .. }) => {
                Err(EngineError::NoSuchPod(name_or_id.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every pod, oldest first.
    pub fn pods(&self) -> Result<Vec<Pod>> {
        self.store()
            .pods()?
            .into_iter()
            .map(Pod::from_record)
            .collect()
    }

    /// A pod's containers, its infra first, then the others by creation.
    pub fn pod_containers(&self, pod: &Pod) -> Result<Vec<Container>> {
        let mut v: Vec<Container> = self
            .containers()?
            .into_iter()
            .filter(|c| c.config.pod == pod.id)
            .collect();
        v.sort_by_key(|c| (!c.config.pod_infra, c.record.created));
        Ok(v)
    }

    /// Its state from its containers'.
    pub fn pod_status(&self, containers: &[Container]) -> PodStatus {
        let statuses: Vec<Status> = containers.iter().map(|c| c.state.status).collect();
        PodStatus::of(&statuses)
    }

    /// Start the pod's infra container unless it runs (before a member
    /// starts: the member joins its namespaces).
    pub(crate) fn ensure_pod_infra(&self, pod_id: &str) -> Result<()> {
        let pod = self.pod(pod_id)?;
        // Its cgroup first (gone after a reboot): the infra and the
        // members are made below it.
        self.pod_cgroup_ensure(&pod)?;
        let infra = self.container(&pod.config.infra_id).map_err(|_| {
            EngineError::Conflict(format!(
                "the infra container of pod {} is gone: remove the pod with berth pod rm -f {} and create it again",
                pod.name, pod.name
            ))
        })?;
        if infra.is_running() {
            return Ok(());
        }
        self.start(
            infra.id().as_str(),
            crate::container::start::AttachMode::Detached,
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_lists_replace_or_add_to_the_default() {
        use SharedNamespace::*;
        assert_eq!(SharedNamespace::parse_list("pid").unwrap(), vec![Pid]);
        assert_eq!(
            SharedNamespace::parse_list("+pid").unwrap(),
            vec![Ipc, Net, Uts, Pid]
        );
        assert!(SharedNamespace::parse_list("none").unwrap().is_empty());
        let e = SharedNamespace::parse_list("pid,foo").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid kernel namespace to share: foo. Options are: cgroup, ipc, net, pid, uts or none"
        );
    }

    #[test]
    fn pod_states_follow_podman() {
        use Status::*;
        assert_eq!(PodStatus::of(&[Created, Created]), PodStatus::Created);
        assert_eq!(PodStatus::of(&[Running, Running]), PodStatus::Running);
        assert_eq!(PodStatus::of(&[Running, Exited]), PodStatus::Degraded);
        assert_eq!(PodStatus::of(&[Running, Created]), PodStatus::Degraded);
        assert_eq!(PodStatus::of(&[Exited, Exited]), PodStatus::Exited);
        assert_eq!(PodStatus::of(&[Exited, Created]), PodStatus::Stopped);
        assert_eq!(PodStatus::of(&[]), PodStatus::Created);
    }
}
