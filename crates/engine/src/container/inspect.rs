//! `berth inspect` for containers: the fields of Docker's
//! `ContainerInspect` that berth has, with Docker's names.
use chrono::SecondsFormat;
use serde_json::{json, Value};

use crate::container::Container;
use crate::Engine;

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
}

impl Engine {
    /// Docker-shaped JSON for one container.
    pub fn inspect_container(&self, c: &Container) -> Value {
        let dir = self.store().container_dir(c.id());
        let cfg = &c.config;
        let blkio = cfg.blkio.host_config();
        let st = &c.state;
        let args = c.args();
        let lower = self
            .lower_dirs(c)
            .unwrap_or_default()
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mounts = self.inspect_mounts(c);
        let binds: Vec<&str> = cfg
            .mounts
            .iter()
            .filter(|m| !m.bind_spec.is_empty() && !m.anonymous)
            .map(|m| m.bind_spec.as_str())
            .collect();
        let host_mounts: Vec<Value> = cfg
            .mounts
            .iter()
            .filter(|m| m.bind_spec.is_empty() && !(m.anonymous && m.kind == crate::config::MountType::Volume))
            .map(|m| {
                let mut v = json!({"Type": m.kind.as_str(), "Source": m.source, "Target": m.target, "ReadOnly": m.readonly});
                if !m.subpath.is_empty() {
                    v["VolumeOptions"] = json!({"Subpath": m.subpath});
                }
                v
            })
            .collect();
        let image_volumes: serde_json::Map<String, Value> = cfg
            .mounts
            .iter()
            .filter(|m| m.anonymous)
            .map(|m| (m.target.clone(), json!({})))
            .collect();
        let caps = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
        let mut doc = json!({
            "Id": c.id().as_str(),
            "Created": c.record.created.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "Path": args.first().cloned().unwrap_or_default(),
            "Args": args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": st.status.as_str(),
                "Running": c.is_running(),
                "Paused": st.status == crate::config::Status::Paused,
                "Restarting": st.status == crate::config::Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": st.status == crate::config::Status::Dead,
                "Pid": if c.is_running() { st.pid } else { 0 },
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": time(st.started_at),
                "FinishedAt": time(st.finished_at),
            },
            "Image": c.record.image_id.to_string(),
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": self.log_path(&dir),
            "Name": format!("/{}", c.name()),
            "RestartCount": st.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "HostConfig": {
                "NetworkMode": cfg.docker_network_mode(),
                "PortBindings": c.port_bindings(),
                "PublishAllPorts": cfg.publish_all,
                "RestartPolicy": {"Name": cfg.restart_policy.name(), "MaximumRetryCount": cfg.restart_policy.max_retries()},
                "LogConfig": {"Type": cfg.log_config.driver(), "Config": cfg.log_config.config},
                "AutoRemove": cfg.auto_remove,
                "ContainerIDFile": "",
                "VolumeDriver": cfg.volume_driver,
                "VolumesFrom": if cfg.volumes_from.is_empty() { Value::Null } else { json!(cfg.volumes_from) },
                "CgroupnsMode": "private",
                "Dns": cfg.dns,
                "DnsOptions": cfg.dns_options,
                "DnsSearch": cfg.dns_search,
                "ExtraHosts": if cfg.extra_hosts.is_empty() { Value::Null } else { json!(cfg.extra_hosts) },
                "GroupAdd": if cfg.group_add.is_empty() { Value::Null } else { json!(cfg.group_add) },
                "IpcMode": if c.config.ipc_mode.is_empty() { "private" } else { c.config.ipc_mode.as_str() },
                "Cgroup": "",
                "Links": self.inspect_links(c),
                "OomScoreAdj": 0,
                "PidMode": c.config.pid_mode,
                "UTSMode": cfg.uts_mode,
                "UsernsMode": c.config.userns.mode,
                "ShmSize": if c.config.shm_size > 0 { c.config.shm_size } else { 67108864 },
                "ConsoleSize": [0, 0],
                "Isolation": cfg.isolation,
                "CgroupParent": cfg.cgroup_parent,
                "BlkioWeight": blkio["BlkioWeight"],
                "BlkioWeightDevice": blkio["BlkioWeightDevice"],
                "BlkioDeviceReadBps": blkio["BlkioDeviceReadBps"],
                "BlkioDeviceWriteBps": blkio["BlkioDeviceWriteBps"],
                "BlkioDeviceReadIOps": blkio["BlkioDeviceReadIOps"],
                "BlkioDeviceWriteIOps": blkio["BlkioDeviceWriteIOps"],
                "CpuPeriod": 0,
                "CpuQuota": 0,
                "CpuRealtimePeriod": 0,
                "CpuRealtimeRuntime": 0,
                "CpusetCpus": cfg.cpuset_cpus,
                "CpusetMems": cfg.cpuset_mems,
                "Devices": cfg.devices,
                "DeviceCgroupRules": if cfg.device_cgroup_rules.is_empty() { Value::Null } else { json!(cfg.device_cgroup_rules) },
                "DeviceRequests": Value::Null,
                "KernelMemory": 0,
                "KernelMemoryTCP": 0,
                "MemoryReservation": c.config.memory_reservation,
                "MemorySwappiness": Value::Null,
                "OomKillDisable": false,
                "CpuCount": 0,
                "CpuPercent": 0,
                "IOMaximumIOps": 0,
                "IOMaximumBandwidth": 0,
                "Privileged": cfg.privileged,
                "ReadonlyRootfs": cfg.read_only,
                "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
                "Memory": cfg.memory,
                "MemorySwap": cfg.memory_swap,
                "NanoCpus": cfg.nano_cpus,
                "CpuShares": cfg.cpu_shares,
                "PidsLimit": if cfg.pids_limit == 0 { Value::Null } else { json!(cfg.pids_limit) },
                "Ulimits": if cfg.ulimits.is_empty() { Value::Null } else {
                    json!(cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>())
                },
                "CapAdd": caps(&cfg.cap_add),
                "CapDrop": caps(&cfg.cap_drop),
                "SecurityOpt": caps(&cfg.security_opt),
                "Runtime": if cfg.runtime.is_empty() { "berth" } else { cfg.runtime.as_str() },
                "MaskedPaths": crate::spec::MASKED_PATHS,
                "ReadonlyPaths": crate::spec::READONLY_PATHS,
            },
            "GraphDriver": if dir.join(crate::container::copyroot::DIR).is_dir() {
                // podman's vfs: the copy is the container's whole root.
                json!({"Name": "vfs", "Data": {"Dir": dir.join(crate::container::copyroot::DIR)}})
            } else {
                json!({
                    "Name": "overlay2",
                    "Data": {
                        "LowerDir": lower,
                        "UpperDir": dir.join("upper"),
                        "WorkDir": dir.join("work"),
                        "MergedDir": dir.join("rootfs"),
                    },
                })
            },
            "Mounts": mounts,
            "Config": {
                "Volumes": if image_volumes.is_empty() { Value::Null } else { json!(image_volumes) },
                "Hostname": cfg.hostname,
                "Domainname": cfg.domainname,
                "User": cfg.user,
                "AttachStdin": false,
                "AttachStdout": false,
                "AttachStderr": false,
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "StdinOnce": false,
                "Env": if cfg.env.is_empty() { Value::Null } else { json!(cfg.env) },
                "Cmd": cfg.cmd,
                "Image": cfg.image,
                "WorkingDir": cfg.working_dir,
                "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
                "OnBuild": Value::Null,
                "Labels": cfg.labels,
            },
            "NetworkSettings": self.network_settings(c),
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": Value::Null,
        });
        // Docker leaves these out when unset (`omitempty`).
        let host = &mut doc["HostConfig"];
        if cfg.init {
            host["Init"] = json!(true);
        }
        if !cfg.tmpfs.is_empty() {
            host["Tmpfs"] = json!(cfg.tmpfs);
        }
        // podman's key for the maps of a user namespace (auto's range too).
        if c.config.userns.is_private() {
            let lines = |m: &[crate::config::IdMapping]| -> Vec<String> {
                m.iter()
                    .map(|r| format!("{}:{}:{}", r.container_id, r.host_id, r.size))
                    .collect()
            };
            host["IDMappings"] = json!({
                "UidMap": lines(&c.config.userns.uid_map),
                "GidMap": lines(&c.config.userns.gid_map),
            });
        }
        if !cfg.sysctls.is_empty() {
            host["Sysctls"] = json!(cfg.sysctls);
        }
        if !host_mounts.is_empty() {
            host["Mounts"] = json!(host_mounts);
        }
        if cfg.health_on_failure != crate::health::OnFailure::default() {
            // Podman's option; Docker has none.
            host["HealthOnFailure"] = json!(cfg.health_on_failure.as_str());
        }
        let config = &mut doc["Config"];
        if !cfg.exposed_ports.is_empty() {
            config["ExposedPorts"] = Value::Object(
                cfg.exposed_ports
                    .iter()
                    .map(|p| (p.clone(), json!({})))
                    .collect(),
            );
        }
        if let Some(h) = &cfg.healthcheck {
            config["Healthcheck"] = json!(h);
        }
        if cfg.stop_signal != "SIGTERM" && !cfg.stop_signal.is_empty() {
            config["StopSignal"] = json!(cfg.stop_signal);
        }
        if let Some(t) = cfg.stop_timeout {
            config["StopTimeout"] = json!(t);
        }
        if let Some(h) = &st.health {
            doc["State"]["Health"] = json!(h);
        }
        doc
    }

    /// Docker's `NetworkSettings`: the published ports, and per network the
    /// container's endpoint (address, gateway, MAC, aliases) while it runs —
    /// only the network's id when it does not; the top-level address fields
    /// are the default bridge's, as in Docker.
    /// `Mounts` of inspect and of the API's container list.
    pub(crate) fn inspect_mounts(&self, c: &Container) -> Vec<Value> {
        c.config
            .mounts
            .iter()
            .map(|m| {
                let source = match m.kind {
                    crate::config::MountType::Volume => self.store().volume_data(&m.source),
                    _ => std::path::PathBuf::from(&m.source),
                };
                crate::volumes::inspect_mount(m, &source)
            })
            .collect()
    }

    /// Docker's `HostConfig.Links`: `/target:/container/alias` for each
    /// legacy link, the target by its current name.
    fn inspect_links(&self, c: &Container) -> Value {
        if c.config.links.is_empty() {
            return Value::Null;
        }
        let list: Vec<String> = c
            .config
            .links
            .iter()
            .map(|l| {
                let target = self
                    .store()
                    .container(&l.target)
                    .map(|r| r.name.trim_start_matches('/').to_string())
                    .unwrap_or_else(|_| l.name.clone());
                format!("/{target}:/{}/{}", c.name(), l.alias)
            })
            .collect();
        json!(list)
    }

    fn network_settings(&self, c: &Container) -> Value {
        self.network_settings_in(c, &NetLookup::load(self))
    }

    /// `NetworkSettings` of `c`, its networks and addresses looked up in
    /// `lookup` (loaded once for a whole listing).
    pub(crate) fn network_settings_in(&self, c: &Container, lookup: &NetLookup) -> Value {
        let cfg = &c.config;
        let running = c.is_running();
        let leases: Vec<&store::Lease> = if running {
            lookup.leases_of(c.id().as_str()).collect()
        } else {
            Vec::new()
        };
        let mut top = json!({
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
        });
        let mut networks = serde_json::Map::new();
        let names: Vec<String> = match &cfg.network_mode {
            crate::config::NetworkMode::None if cfg.network_none() => vec!["none".into()],
            crate::config::NetworkMode::None => cfg.networks.clone(),
            crate::config::NetworkMode::Host => vec!["host".into()],
            crate::config::NetworkMode::Container(_) => Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            let rec = match lookup.networks.get(name) {
                Some(n) => Some(n.clone()),
                // Not stored: `host` and `none`.
                None => self.network(name).ok(),
            };
            let lease = rec
                .as_ref()
                .and_then(|n| leases.iter().find(|l| l.network == n.id && !l.is_v6()));
            let lease6 = rec
                .as_ref()
                .and_then(|n| leases.iter().find(|l| l.network == n.id && l.is_v6()));
            let mut ep = json!({
                "IPAMConfig": Value::Null, "Links": Value::Null, "Aliases": Value::Null,
                "NetworkID": rec.as_ref().map(|n| n.id.clone()).unwrap_or_default(),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": "", "DriverOpts": Value::Null,
            });
            // What `network connect` asked for on this network, else
            // `--ip` on the first.
            let requested = cfg
                .connect_ips
                .get(name)
                .cloned()
                .or_else(|| (i == 0).then(|| cfg.ip.clone()).flatten());
            let extra = cfg.endpoint_extras.get(name).cloned().unwrap_or_default();
            let mut ipam = serde_json::Map::new();
            if let Some(ip) = requested {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip6) = &extra.ip6 {
                ipam.insert("IPv6Address".into(), json!(ip6));
            }
            if !extra.link_local_ips.is_empty() {
                ipam.insert("LinkLocalIPs".into(), json!(extra.link_local_ips));
            }
            if !ipam.is_empty() {
                ep["IPAMConfig"] = Value::Object(ipam);
            }
            if let Some(o) = &extra.driver_opts {
                ep["DriverOpts"] = json!(o);
            }
            if let Some(links) = cfg.network_links.get(name) {
                ep["Links"] = json!(links);
            }
            // The address `network connect` asked for is shown until the
            // endpoint exists (Docker shows the endpoint's configuration
            // then); `--mac-address` is the first network's.
            let endpoint_mac = cfg.connect_macs.get(name);
            if let (Some(m), None) = (endpoint_mac, lease) {
                ep["MacAddress"] = json!(m.to_ascii_lowercase());
            }
            let asked_mac = endpoint_mac
                .cloned()
                .or_else(|| (i == 0).then(|| cfg.mac_address.clone()).flatten());
            let default_bridge = rec.as_ref().is_some_and(crate::networks::is_default);
            let builtin = rec.as_ref().is_some_and(crate::networks::is_builtin);
            if let (Some(n), true) = (&rec, builtin && running) {
                // An endpoint without addresses while it runs.
                ep["EndpointID"] = json!(model::Digest::of(
                    format!("{}/{}", c.id().as_str(), n.id).as_bytes()
                )
                .hex());
            }
            if let (Some(n), false) = (&rec, default_bridge || builtin) {
                // On user networks Docker 20.10 lists the short id, then
                // the aliases given.
                let mut aliases = vec![c.id().short().to_string()];
                if i == 0 {
                    aliases.extend(cfg.network_aliases.iter().cloned());
                }
                aliases.extend(
                    cfg.connect_aliases
                        .get(&n.name)
                        .cloned()
                        .unwrap_or_default(),
                );
                if running || !aliases.is_empty() {
                    ep["Aliases"] = json!(aliases);
                }
            }
            if let (Some(n), Some(l)) = (&rec, lease) {
                let prefix: u32 = n
                    .subnet
                    .split_once('/')
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(0);
                let mac = match asked_mac.as_deref() {
                    Some(m) => m.to_ascii_lowercase(),
                    None => {
                        l.ip.parse::<std::net::Ipv4Addr>()
                            .map(|a| {
                                let o = a.octets();
                                format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
                            })
                            .unwrap_or_default()
                    }
                };
                let endpoint =
                    model::Digest::of(format!("{}/{}", c.id().as_str(), n.id).as_bytes())
                        .hex()
                        .to_string();
                let (ip6, prefix6, gw6) = match lease6 {
                    Some(l6) => (
                        l6.ip.clone(),
                        n.subnet6
                            .as_deref()
                            .and_then(|s| s.split_once('/'))
                            .and_then(|(_, p)| p.parse::<u32>().ok())
                            .unwrap_or(0),
                        n.ipv6_gateway().unwrap_or_default(),
                    ),
                    None => (String::new(), 0, String::new()),
                };
                for (k, v) in [
                    ("EndpointID", json!(endpoint)),
                    ("Gateway", json!(n.gateway)),
                    ("IPAddress", json!(l.ip)),
                    ("IPPrefixLen", json!(prefix)),
                    ("MacAddress", json!(mac)),
                    ("GlobalIPv6Address", json!(ip6)),
                    ("GlobalIPv6PrefixLen", json!(prefix6)),
                    ("IPv6Gateway", json!(gw6)),
                ] {
                    ep[k] = v.clone();
                    if default_bridge {
                        top[k] = v;
                    }
                }
            }
            networks.insert(name.clone(), ep);
        }
        let pid = if running { c.state.pid } else { 0 };
        let mut out = json!({
            "Bridge": "",
            "SandboxID": if running { c.id().as_str().to_string() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": c.network_settings_ports(),
            "SandboxKey": if running { format!("/proc/{pid}/ns/net") } else { String::new() },
            "SecondaryIPAddresses": Value::Null,
            "SecondaryIPv6Addresses": Value::Null,
            "Networks": networks,
        });
        if let (Value::Object(o), Value::Object(t)) = (&mut out, top) {
            o.extend(t);
        }
        out
    }
}

/// Every network and address lease, read once for a listing.
#[derive(Default)]
pub(crate) struct NetLookup {
    /// Leases by container id.
    leases: std::collections::HashMap<String, Vec<store::Lease>>,
    /// Networks by name.
    pub(crate) networks: std::collections::HashMap<String, store::NetworkRecord>,
}

impl NetLookup {
    /// Read them.
    pub(crate) fn load(engine: &Engine) -> NetLookup {
        let store = engine.store();
        let mut leases: std::collections::HashMap<String, Vec<store::Lease>> =
            std::collections::HashMap::new();
        for l in store.leases(None).unwrap_or_default() {
            leases.entry(l.container.clone()).or_default().push(l);
        }
        NetLookup {
            leases,
            networks: store
                .networks()
                .unwrap_or_default()
                .into_iter()
                .map(|n| (n.name.clone(), n))
                .collect(),
        }
    }

    /// The leases of container `id`, by address.
    pub(crate) fn leases_of(&self, id: &str) -> impl Iterator<Item = &store::Lease> {
        self.leases.get(id).into_iter().flatten()
    }
}
