//! `pod inspect` (podman's document) and `pod ps` (its rows).
use chrono::SecondsFormat;
use serde_json::{json, Value};

use super::{Pod, PodStatus};
use crate::config::NetworkMode;
use crate::container::Container;
use crate::error::Result;
use crate::Engine;

/// A pod with its containers, as `pod ps` lists it.
#[derive(Debug, Clone)]
pub struct PodSummary {
    /// The pod.
    pub pod: Pod,
    /// Its state.
    pub status: PodStatus,
    /// Its containers, the infra first.
    pub containers: Vec<Container>,
}

impl Engine {
    /// Every pod with its containers, newest first (as `pod ps`).
    pub fn pod_list(&self) -> Result<Vec<PodSummary>> {
        let all = self.containers()?;
        let mut out: Vec<PodSummary> = self
            .pods()?
            .into_iter()
            .map(|pod| {
                let mut containers: Vec<Container> = all
                    .iter()
                    .filter(|c| c.config.pod == pod.id)
                    .cloned()
                    .collect();
                containers.sort_by_key(|c| (!c.config.pod_infra, c.record.created));
                PodSummary {
                    status: self.pod_status(&containers),
                    pod,
                    containers,
                }
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.pod.config.created));
        Ok(out)
    }

    /// `pod inspect`: podman's document (the pod has no cgroup of its
    /// own in berth, so podman's `CgroupParent`/`CgroupPath` are left out).
    pub fn pod_inspect(&self, name_or_id: &str) -> Result<Value> {
        let pod = self.pod(name_or_id)?;
        let containers = self.pod_containers(&pod)?;
        let status = self.pod_status(&containers);
        let infra = containers.iter().find(|c| c.config.pod_infra);
        let (port_bindings, host_network, networks) = match infra {
            Some(i) => (
                i.port_bindings(),
                i.config.network_mode == NetworkMode::Host,
                if i.config.networks.is_empty() {
                    Value::Null
                } else {
                    json!(i.config.networks)
                },
            ),
            None => (json!({}), false, Value::Null),
        };
        let mut doc = json!({
            "Id": pod.id,
            "Name": pod.name,
            "Created": pod.config.created.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "CreateCommand": pod.config.create_command,
            "ExitPolicy": "continue",
            "State": status.as_str(),
            "Hostname": pod.config.hostname,
            "CreateInfra": true,
            "InfraContainerID": pod.config.infra_id,
            "InfraConfig": {
                "PortBindings": port_bindings,
                "HostNetwork": host_network,
                "StaticIP": "",
                "StaticMAC": "",
                "NoManageResolvConf": false,
                "DNSServer": null,
                "DNSSearch": null,
                "DNSOption": null,
                "NoManageHosts": false,
                "HostAdd": null,
                "Networks": networks,
                "NetworkOptions": null,
                "pid_ns": "private",
                "userns": "host",
                "uts_ns": "private",
            },
            "SharedNamespaces": pod.config.shared.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "NumContainers": containers.len(),
            "Containers": containers.iter().map(|c| json!({
                "Id": c.id().as_str(),
                "Name": c.name(),
                "State": c.state.status.as_str(),
            })).collect::<Vec<_>>(),
        });
        if !pod.config.labels.is_empty() {
            doc["Labels"] = json!(pod.config.labels);
        }
        Ok(doc)
    }
}
