//! `image inspect` and `network inspect` documents with Docker's keys,
//! types and nesting (recorded from dockerd 20.10); container inspect is
//! `container::inspect`, volumes `volumes::inspect_volume`.
use serde_json::{json, Value};

use crate::error::Result;
use crate::Engine;

/// Docker's empty `ContainerConfig` (what an image built by BuildKit or
/// imported carries).
fn empty_container_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": Value::Null,
        "Cmd": Value::Null, "Image": "", "Volumes": Value::Null, "WorkingDir": "",
        "Entrypoint": Value::Null, "OnBuild": Value::Null, "Labels": Value::Null,
    })
}

impl Engine {
    /// Docker-shaped JSON for one image (by name, id or digest).
    pub fn inspect_image(&self, name: &str) -> Result<Value> {
        let img = self.store().resolve_image(name)?;
        let raw = self.store().image_config_raw(&img.id)?;
        let cfg: Value = serde_json::from_slice(&raw).unwrap_or_default();
        let c = cfg.get("config").cloned().unwrap_or_default();
        let pick = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
        let string = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut config = empty_container_config();
        for k in ["Env", "Cmd", "Volumes", "Entrypoint", "OnBuild", "Labels"] {
            config[k] = pick(k);
        }
        for k in ["Hostname", "Domainname", "User", "WorkingDir", "Image"] {
            config[k] = json!(string(k));
        }
        // Left out when unset, as Docker's `omitempty`.
        for k in [
            "ExposedPorts",
            "Healthcheck",
            "StopSignal",
            "Shell",
            "ArgsEscaped",
        ] {
            if let Some(v) = c.get(k).filter(|v| !v.is_null()) {
                config[k] = v.clone();
            }
        }
        let layers = self.store().layer_dirs(&img.id).unwrap_or_default();
        let mut graph = serde_json::Map::new();
        if let Some((top, lower)) = layers.split_last() {
            graph.insert("MergedDir".into(), json!(top.join("merged")));
            graph.insert("UpperDir".into(), json!(top));
            graph.insert("WorkDir".into(), json!(top.join("work")));
            if !lower.is_empty() {
                let l: Vec<String> = lower
                    .iter()
                    .rev()
                    .map(|p| p.display().to_string())
                    .collect();
                graph.insert("LowerDir".into(), json!(l.join(":")));
            }
        }
        let mut out = json!({
            "Id": img.id.to_string(),
            "RepoTags": img.repo_tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "RepoDigests": img.repo_digests,
            "Parent": self.store().image_parent(&img.id).ok().flatten()
                .map(|p| p.to_string()).unwrap_or_default(),
            "Comment": cfg.get("history").and_then(|h| h.as_array()).and_then(|h| h.last())
                .and_then(|h| h.get("comment")).cloned().unwrap_or(json!("")),
            "Created": cfg.get("created").cloned().unwrap_or(Value::Null),
            "Container": "",
            "ContainerConfig": empty_container_config(),
            "DockerVersion": "",
            "Author": cfg.get("author").cloned().unwrap_or(json!("")),
            "Config": config,
            "Architecture": cfg.get("architecture").cloned().unwrap_or(Value::Null),
            "Os": cfg.get("os").cloned().unwrap_or(Value::Null),
            "Size": img.size,
            "VirtualSize": img.size,
            "GraphDriver": {"Data": graph, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": img.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        });
        // Docker shows the variant only when the image has one.
        if let Some(v) = cfg.get("variant").filter(|v| v.is_string()) {
            out["Variant"] = v.clone();
        }
        Ok(out)
    }

    /// Docker-shaped JSON for one network: its containers are the running
    /// ones with an address on it.
    pub fn inspect_network(&self, n: &store::NetworkRecord) -> Value {
        if crate::networks::is_builtin(n) {
            return self.inspect_builtin_network(n);
        }
        let store = self.store();
        let prefix = n.subnet.split('/').nth(1).unwrap_or("");
        let prefix6 = n
            .subnet6
            .as_deref()
            .and_then(|s| s.split('/').nth(1))
            .unwrap_or("");
        let mut containers = serde_json::Map::new();
        let leases = store.leases(Some(&n.id)).unwrap_or_default();
        for l in leases.iter().filter(|l| !l.is_v6()) {
            let name = store
                .container(&l.container)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let o: Vec<u8> =
                l.ip.parse::<std::net::Ipv4Addr>()
                    .map(|a| a.octets().to_vec())
                    .unwrap_or_default();
            let mac = if o.len() == 4 {
                format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
            } else {
                String::new()
            };
            let endpoint = model::Digest::of(format!("{}/{}", l.container, n.id).as_bytes())
                .hex()
                .to_string();
            let v6 = leases
                .iter()
                .find(|x| x.is_v6() && x.container == l.container)
                .map(|x| format!("{}/{prefix6}", x.ip))
                .unwrap_or_default();
            containers.insert(
                l.container.clone(),
                json!({"Name": name, "EndpointID": endpoint, "MacAddress": mac,
                       "IPv4Address": format!("{}/{prefix}", l.ip), "IPv6Address": v6}),
            );
        }
        let default = crate::networks::is_default(n);
        // Docker lists each pool as given: the gateway only when given
        // (or picked with the subnet), aux addresses by family.
        let aux = |v6: bool| -> serde_json::Map<String, Value> {
            n.aux_addresses
                .iter()
                .filter(|(_, a)| a.contains(':') == v6)
                .map(|(k, a)| (k.clone(), json!(a)))
                .collect()
        };
        let mut ipam = json!({"Subnet": n.subnet});
        if let Some(r) = &n.ip_range {
            ipam["IPRange"] = json!(r);
        }
        if !n.gateway_picked {
            ipam["Gateway"] = json!(n.gateway);
        }
        let a4 = aux(false);
        if !a4.is_empty() {
            ipam["AuxiliaryAddresses"] = Value::Object(a4);
        }
        let mut pools = vec![ipam];
        if let Some(s6) = &n.subnet6 {
            let mut p = json!({"Subnet": s6});
            if let Some(r) = &n.ip_range6 {
                p["IPRange"] = json!(r);
            }
            if let Some(g) = &n.gateway6 {
                p["Gateway"] = json!(g);
            }
            let a6 = aux(true);
            if !a6.is_empty() {
                p["AuxiliaryAddresses"] = Value::Object(a6);
            }
            pools.push(p);
        }
        let mut options = json!(n.options);
        if default {
            for (k, v) in [
                ("com.docker.network.bridge.enable_icc", "true"),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                ("com.docker.network.bridge.name", n.bridge.as_str()),
            ] {
                options[k] = json!(v);
            }
        }
        json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": n.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": if default { Value::Null } else { json!(n.ipam_options) }, "Config": pools},
            "Internal": n.internal,
            "Attachable": n.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": n.labels,
        })
    }

    /// `host` or `none` as dockerd shows them: no pools, no options; its
    /// containers are the running ones in that mode, without addresses.
    fn inspect_builtin_network(&self, n: &store::NetworkRecord) -> Value {
        let mut containers = serde_json::Map::new();
        for c in self.containers().unwrap_or_default() {
            let on_it = match n.name.as_str() {
                "host" => c.config.network_mode == crate::config::NetworkMode::Host,
                _ => c.config.network_none(),
            };
            if !on_it || !c.is_running() {
                continue;
            }
            let endpoint = model::Digest::of(format!("{}/{}", c.id().as_str(), n.id).as_bytes())
                .hex()
                .to_string();
            containers.insert(
                c.id().as_str().to_string(),
                json!({"Name": c.name(), "EndpointID": endpoint, "MacAddress": "",
                       "IPv4Address": "", "IPv6Address": ""}),
            );
        }
        json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": Value::Null, "Config": []},
            "Internal": false,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": {},
            "Labels": {},
        })
    }
}
