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

    /// `pod inspect`: podman's document, its cgroup and limits as podman
    /// 4.3 prints them (`CreateCgroup`, `CgroupParent`, `CgroupPath` when
    /// it has one; `cpu_period`, `cpu_quota`, `cpuset_cpus` in
    /// `InfraConfig` too; `memory_limit`, `memory_swap`, `blkio_weight`
    /// only when set — podman 4.3 leaves the memory ones out unless a CPU
    /// limit is set too, which berth does not copy).
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
        // With a user namespace podman lists "user" too, and the list
        // sorted (recorded from podman 4.3: ipc, net, user, uts).
        let mut shared: Vec<&str> = pod.config.shared.iter().map(|s| s.as_str()).collect();
        if pod.config.userns != super::PodUserns::Host {
            shared.push("user");
            shared.sort_unstable();
        }
        let mut doc = json!({
            "Id": pod.id,
            "Name": pod.name,
            "Created": pod.config.created.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "CreateCommand": pod.config.create_command,
            "ExitPolicy": "continue",
            "State": status.as_str(),
            // podman 4.3: the given one, else "" (the members' is the
            // pod's name all the same). A record from before
            // `hostname_set` shows one that is not the name.
            "Hostname": if pod.config.hostname_set || pod.config.hostname != pod.name {
                pod.config.hostname.as_str()
            } else {
                ""
            },
            "CreateCgroup": pod.config.share_parent,
            "CgroupParent": pod.config.cgroup_parent,
            "CgroupPath": pod.config.cgroup_path,
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
                // podman 4.3's: "private" for maps, "host" even for
                // `--userns=auto` (recorded; the infra's own inspect
                // shows the namespace).
                "userns": if pod.config.userns == super::PodUserns::Maps { "private" } else { "host" },
                "uts_ns": "private",
            },
            "SharedNamespaces": shared,
            "NumContainers": containers.len(),
            "Containers": containers.iter().map(|c| json!({
                "Id": c.id().as_str(),
                "Name": c.name(),
                "State": c.state.status.as_str(),
            })).collect::<Vec<_>>(),
        });
        if pod.config.cgroup_path.is_empty() {
            doc.as_object_mut().map(|d| d.remove("CgroupPath"));
        }
        if !pod.config.labels.is_empty() {
            doc["Labels"] = json!(pod.config.labels);
        }
        let l = &pod.config.limits;
        let mut cpu = serde_json::Map::new();
        if l.cpu_quota > 0 {
            cpu.insert("cpu_period".into(), json!(l.cpu_period));
            cpu.insert("cpu_quota".into(), json!(l.cpu_quota));
        }
        if !l.cpuset_cpus.is_empty() {
            cpu.insert("cpuset_cpus".into(), json!(l.cpuset_cpus));
        }
        // In InfraConfig before its namespace keys, as podman orders them.
        if let Some(infra) = doc["InfraConfig"].as_object_mut() {
            let tail: Vec<(String, Value)> = ["pid_ns", "userns", "uts_ns"]
                .iter()
                .filter_map(|k| infra.remove(*k).map(|v| (k.to_string(), v)))
                .collect();
            infra.extend(cpu.clone());
            infra.extend(tail);
        }
        let d = doc.as_object_mut().expect("an object");
        d.extend(cpu);
        if !l.cpuset_mems.is_empty() {
            d.insert("cpuset_mems".into(), json!(l.cpuset_mems));
        }
        if l.memory_limit > 0 {
            d.insert("memory_limit".into(), json!(l.memory_limit));
            if l.memory_swap > 0 {
                d.insert("memory_swap".into(), json!(l.memory_swap));
            }
        }
        if l.blkio_weight > 0 {
            d.insert("blkio_weight".into(), json!(l.blkio_weight));
        }
        Ok(doc)
    }
}
