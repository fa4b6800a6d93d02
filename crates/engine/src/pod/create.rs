//! `pod create`, and what `run --pod` changes in a container's request.
use std::collections::BTreeMap;

use chrono::Utc;

use super::cgroup::PodResources;
use super::{Pod, PodConfig, PodUserns, SharedNamespace};
use crate::config::{NetworkMode, PortMapping};
use crate::container::create::{CreateRequest, PodMembership};
use crate::error::{EngineError, Result};
use crate::Engine;

/// `pod create`'s options (podman's names).
#[derive(Debug, Clone, Default)]
pub struct PodCreateRequest {
    /// `--name` (a generated one when absent).
    pub name: Option<String>,
    /// `--hostname` (the pod's name when absent).
    pub hostname: Option<String>,
    /// `--share` as given (podman's default `ipc,net,uts` when absent).
    pub share: Option<String>,
    /// `--network`: `bridge` (default), `none`, `host` or a network's name.
    pub network: Option<String>,
    /// `-p`.
    pub ports: Vec<PortMapping>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--add-host host:ip`: in the /etc/hosts every member shares.
    pub extra_hosts: Vec<String>,
    /// The command line, for `CreateCommand`.
    pub create_command: Vec<String>,
    /// `--shm-size`: of the infra's `/dev/shm`, which the members share
    /// (with `ipc`).
    pub shm_size: Option<u64>,
    /// `--cgroup-parent` (`/berth` when absent).
    pub cgroup_parent: Option<String>,
    /// `--share-parent` (true when absent: the containers' cgroups are
    /// made below the pod's; false: the pod has no cgroup, as podman).
    pub share_parent: Option<bool>,
    /// `--cpus`, `--cpuset-cpus`, `--cpuset-mems`, `-m`, `--memory-swap`,
    /// `--blkio-weight`.
    pub resources: PodResources,
    /// `--userns` (as `run`'s): the infra container's user namespace,
    /// which every member joins (podman's).
    pub userns: Option<String>,
    /// `--uidmap`.
    pub uidmap: Vec<String>,
    /// `--gidmap`.
    pub gidmap: Vec<String>,
    /// `--device`: the infra's, and every member's that brings none of
    /// its own (podman's).
    pub devices: Vec<crate::config::DeviceMapping>,
}

/// podman's words for a member with `--userns`.
const USERNS_SHARED: &str = "--userns and --pod cannot be set together";

/// podman's words for a member with `--uidmap`/`--gidmap`.
const MAPS_SHARED: &str = "cannot specify a new uid/gid map when entering a pod with an infra container: invalid argument";

/// podman's words for a member that brings its own network.
const NETWORK_SHARED: &str = "invalid config provided: published or exposed ports must be defined when the pod is created: network cannot be configured when it is shared with a pod";

impl Engine {
    /// `pod create`: the pod's row, then its infra container (created, not
    /// started: `pod start` or its first member's start starts it).
    pub fn pod_create(&self, req: &PodCreateRequest) -> Result<Pod> {
        let shared = match &req.share {
            Some(s) => SharedNamespace::parse_list(s)?,
            None => SharedNamespace::defaults(),
        };
        let net = shared.contains(&SharedNamespace::Net);
        if !net && (!req.ports.is_empty() || req.network.is_some()) {
            return Err(EngineError::invalid(
                "-p/--network",
                "the pod does not share its network (--share without net): publish ports and pick networks per container",
            ));
        }
        if req.network.as_deref() == Some("none") && !req.ports.is_empty() {
            // podman's words.
            return Err(EngineError::Refused(
                "PortMappings can only be used with Bridge or slirp4netns networking".into(),
            ));
        }
        if req.hostname.is_some() && !shared.contains(&SharedNamespace::Uts) {
            return Err(EngineError::invalid(
                "--hostname",
                "the pod does not share its UTS namespace (--share without uts): set hostnames per container",
            ));
        }
        // The user namespace's flags, checked before anything is made.
        crate::userns::parse(
            req.userns.as_deref(),
            &req.uidmap,
            &req.gidmap,
            crate::rootless::active(),
        )?;
        // podman's words for a device that is not there.
        for d in &req.devices {
            if let Err(e) = std::fs::metadata(&d.path_on_host) {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file or directory".to_string()
                } else {
                    e.to_string()
                };
                return Err(EngineError::Refused(format!(
                    "stat {}: {why}",
                    d.path_on_host
                )));
            }
            d.resolve().map_err(EngineError::Refused)?;
        }
        let limits = req.resources.limits()?;
        if let Some(p) = &req.cgroup_parent {
            crate::config::check_cgroup_parent(p)?;
        }
        let share_parent = req.share_parent.unwrap_or(true);
        let cgroup_parent = req
            .cgroup_parent
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| crate::config::DEFAULT_CGROUP_PARENT.to_string());
        // Rootless without a cgroup of the user's (cgroup v1): none, and
        // the limits are ignored (the front end warns, as podman).
        let has_cgroups = crate::rootless::cgroup_hierarchy()?.is_some();
        let id = model::ContainerId::random().as_str().to_string();
        let cgroup_path = if share_parent && has_cgroups {
            crate::config::cgroup_path(&cgroup_parent, &id)
        } else {
            String::new()
        };
        let name = match &req.name {
            Some(n) if !model::id::valid_container_name(n) => {
                return Err(EngineError::Refused(format!(
                    "Invalid pod name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )))
            }
            Some(n) => n.clone(),
            None => self.random_pod_name()?,
        };
        let image = self.pause_image()?;
        let config = PodConfig {
            created: Utc::now(),
            hostname: req.hostname.clone().unwrap_or_else(|| name.clone()),
            hostname_set: req.hostname.is_some(),
            infra_id: String::new(),
            shared: shared.clone(),
            network: req.network.clone().unwrap_or_default(),
            ports: req.ports.clone(),
            labels: req.labels.clone(),
            create_command: req.create_command.clone(),
            cgroup_parent,
            cgroup_path: cgroup_path.clone(),
            share_parent,
            limits: limits.clone(),
            userns: PodUserns::of(req),
            devices: req.devices.clone(),
        };
        let doc = |c: &PodConfig| {
            serde_json::to_value(c)
                .map_err(|e| EngineError::io("encoding a pod", std::io::Error::other(e)))
        };
        // The row first: it holds the name (a second create of the same
        // name stops here, before any container exists).
        self.store().create_pod(&store::PodRecord {
            id: id.clone(),
            name: name.clone(),
            config: doc(&config)?,
        })?;
        crate::faults::point("pod-create.row-written");
        let pod = Pod {
            id: id.clone(),
            name: name.clone(),
            config: config.clone(),
        };
        if let Err(e) = self.pod_cgroup_ensure(&pod) {
            let _ = self.pod_cgroup_remove(&id, &cgroup_path);
            let _ = self.store().remove_pod(&id);
            return Err(e);
        }
        // Without a pod cgroup (`--share-parent=false`) the limits are the
        // infra container's own, as podman's.
        let own = |on: bool| on && cgroup_path.is_empty() && has_cgroups;
        let l = &limits;
        let (network, networks) = if !net {
            (NetworkMode::None, Vec::new())
        } else {
            match req.network.as_deref() {
                None | Some("bridge" | "default" | "") => {
                    (NetworkMode::None, vec!["bridge".to_string()])
                }
                Some("none") => (NetworkMode::None, Vec::new()),
                Some("host") => (NetworkMode::Host, Vec::new()),
                Some(n) => (NetworkMode::None, vec![n.to_string()]),
            }
        };
        let infra = CreateRequest {
            name: Some(format!("{}-infra", &id[..12])),
            image,
            hostname: shared
                .contains(&SharedNamespace::Uts)
                .then(|| config.hostname.clone()),
            network,
            networks,
            ports: req.ports.clone(),
            ipc_mode: shared
                .contains(&SharedNamespace::Ipc)
                .then(|| "shareable".to_string()),
            labels: req.labels.clone(),
            extra_hosts: req.extra_hosts.clone(),
            pod: PodMembership::Infra(id.clone()),
            shm_size: req.shm_size,
            cgroup_parent: (!cgroup_path.is_empty()).then(|| cgroup_path.clone()),
            memory: own(l.memory_limit > 0).then_some(l.memory_limit),
            memory_swap: own(l.memory_limit > 0).then_some(l.memory_swap),
            cpus: own(l.cpu_quota > 0).then(|| l.cpu_quota as f64 / l.cpu_period as f64),
            cpuset_cpus: own(!l.cpuset_cpus.is_empty()).then(|| l.cpuset_cpus.clone()),
            cpuset_mems: own(!l.cpuset_mems.is_empty()).then(|| l.cpuset_mems.clone()),
            userns: req.userns.clone(),
            uidmap: req.uidmap.clone(),
            gidmap: req.gidmap.clone(),
            devices: req.devices.clone(),
            ..Default::default()
        };
        let created = match self.create(&infra) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.pod_cgroup_remove(&id, &cgroup_path);
                let _ = self.store().remove_pod(&id);
                return Err(e);
            }
        };
        let infra_id = created.id().as_str().to_string();
        let mut config = config;
        config.infra_id = infra_id.clone();
        let recorded = doc(&config).and_then(|d| {
            self.store()
                .update_pod(&id, |old| *old = d)
                .map_err(EngineError::from)
        });
        if let Err(e) = recorded {
            let _ = self.remove_container(created, true, true);
            let _ = self.pod_cgroup_remove(&id, &cgroup_path);
            let _ = self.store().remove_pod(&id);
            return Err(e);
        }
        self.emit("pod", "create", &id, &[("name", name.as_str())]);
        Ok(Pod { id, name, config })
    }

    /// `run|create --pod POD`: the request with the pod's shared
    /// namespaces joined through its infra container; its own network,
    /// ports or hostname are refused where the pod shares them.
    pub(crate) fn pod_member_request(
        &self,
        req: &CreateRequest,
        pod: &str,
    ) -> Result<CreateRequest> {
        let pod = self.pod(pod)?;
        let infra = format!("container:{}", pod.config.infra_id);
        // The user namespace is the pod's (podman's words, exit 125).
        if req.userns.is_some() {
            return Err(EngineError::Refused(USERNS_SHARED.into()));
        }
        if !req.uidmap.is_empty() || !req.gidmap.is_empty() {
            return Err(EngineError::Refused(MAPS_SHARED.into()));
        }
        let mut out = req.clone();
        out.pod = PodMembership::Member(pod.id.clone());
        // A pod with a user namespace: every member is in the infra's
        // (with its maps), whose namespaces it then may join.
        if pod.config.userns != PodUserns::Host {
            out.userns = Some(infra.clone());
        }
        // The pod's devices, unless the member brings its own (podman 4.3
        // shows a member with `--device` only its own).
        if out.devices.is_empty() {
            out.devices = pod.config.devices.clone();
        }
        // Below the pod's cgroup, unless it has none or the member names
        // its own parent (podman 4.3 takes `--cgroup-parent` of a member
        // and places it there, outside the pod's limits).
        if out.cgroup_parent.is_none() && !pod.config.cgroup_path.is_empty() {
            out.cgroup_parent = Some(pod.config.cgroup_path.clone());
        }
        if pod.shares(SharedNamespace::Net) {
            // `default`: no --network given (the CLI's word for it).
            let own_network = req.network_mode_name.as_deref() != Some("default");
            if !req.ports.is_empty() || req.publish_all || own_network {
                return Err(EngineError::Refused(NETWORK_SHARED.into()));
            }
            out.network = NetworkMode::Container(pod.config.infra_id.clone());
            out.networks = Vec::new();
            out.network_mode_name = None;
        }
        if pod.shares(SharedNamespace::Uts) {
            if req.hostname.is_some() {
                return Err(EngineError::Refused(
                    "invalid config provided: cannot set hostname when joining the pod UTS namespace".into(),
                ));
            }
            out.uts_mode = Some(infra.clone());
        }
        if pod.shares(SharedNamespace::Ipc) {
            if req.ipc_mode.as_deref().is_some_and(|m| !m.is_empty()) {
                return Err(EngineError::Refused(
                    "invalid config provided: cannot set ipc when joining the pod IPC namespace"
                        .into(),
                ));
            }
            out.ipc_mode = Some(infra.clone());
        }
        if pod.shares(SharedNamespace::Pid) {
            if req.pid_mode.as_deref().is_some_and(|m| !m.is_empty()) {
                return Err(EngineError::Refused(
                    "invalid config provided: cannot set pid when joining the pod PID namespace"
                        .into(),
                ));
            }
            out.pid_mode = Some(infra);
        }
        Ok(out)
    }

    /// A generated pod name, free among pods.
    fn random_pod_name(&self) -> Result<String> {
        for _ in 0..16 {
            let n = self.random_name()?;
            if self.store().pod(&n).is_err() {
                return Ok(n);
            }
        }
        Ok(format!(
            "pod_{}",
            &model::ContainerId::random().as_str()[..12]
        ))
    }
}
