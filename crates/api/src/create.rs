//! `POST /containers/create`'s body (docker's `Config` with `HostConfig` and
//! `NetworkingConfig`) as the engine's `CreateRequest`: the same request
//! the CLI builds from flags. Fields berth does not know are ignored, as
//! dockerd ignores unknown fields.
use std::collections::BTreeMap;

use engine::config::{NetworkMode, PortMapping};
use engine::container::create::CreateRequest;
use serde::Deserialize;

use crate::ApiError;

/// A string or a list of strings (docker's `StrSlice`).
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub(crate) enum StrSlice {
    One(String),
    Many(Vec<String>),
}

impl StrSlice {
    fn into_vec(self) -> Vec<String> {
        match self {
            StrSlice::One(s) => vec![s],
            StrSlice::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Body {
    hostname: String,
    domainname: String,
    user: String,
    env: Option<Vec<String>>,
    cmd: Option<StrSlice>,
    entrypoint: Option<StrSlice>,
    image: String,
    labels: Option<BTreeMap<String, String>>,
    working_dir: String,
    tty: bool,
    open_stdin: bool,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    stop_signal: String,
    stop_timeout: Option<i64>,
    /// The container's MAC address (before API 1.44: the endpoint's since).
    mac_address: String,
    /// Not Docker's (dockerd ignores it here): docker-py sends
    /// `create_container(runtime=)` at this level; taken as
    /// `HostConfig.Runtime` when that is not given.
    runtime: String,
    healthcheck: Option<Health>,
    /// `Config.Volumes`: mount points, each an anonymous volume unless a
    /// bind or mount covers it (docker-py's `create_container(volumes=)`,
    /// an image's `VOLUME` as the CLI passes it).
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    host_config: Option<HostConfig>,
    networking_config: Option<NetworkingConfig>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Health {
    test: Vec<String>,
    interval: i64,
    timeout: i64,
    start_period: i64,
    start_interval: i64,
    retries: i64,
}

/// `HostConfig.Devices[]`.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ApiDevice {
    path_on_host: String,
    path_in_container: String,
    cgroup_permissions: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PortBinding {
    host_ip: String,
    host_port: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Restart {
    name: String,
    maximum_retry_count: i64,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Mount {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Ulimit {
    name: String,
    soft: i64,
    hard: i64,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LogConfig {
    #[serde(rename = "Type")]
    kind: String,
    config: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    binds: Option<Vec<String>>,
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    restart_policy: Option<Restart>,
    auto_remove: bool,
    network_mode: String,
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    privileged: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    security_opt: Option<Vec<String>>,
    tmpfs: Option<BTreeMap<String, String>>,
    readonly_rootfs: bool,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_options: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
    mounts: Option<Vec<Mount>>,
    shm_size: i64,
    sysctls: Option<BTreeMap<String, String>>,
    init: Option<bool>,
    log_config: Option<LogConfig>,
    ulimits: Option<Vec<Ulimit>>,
    publish_all_ports: bool,
    volumes_from: Option<Vec<String>>,
    pid_mode: String,
    ipc_mode: String,
    runtime: String,
    /// Numbers or names (dockerd takes strings; numbers are read too).
    group_add: Option<Vec<serde_json::Value>>,
    #[serde(rename = "UTSMode")]
    uts_mode: String,
    /// Docker's `host` or nothing.
    userns_mode: String,
    device_cgroup_rules: Option<Vec<String>>,
    devices: Option<Vec<ApiDevice>>,
    isolation: String,
    cpuset_cpus: String,
    cpuset_mems: String,
    cgroup_parent: String,
    blkio_weight: u16,
    blkio_weight_device: Option<Vec<model::blkio::WeightDevice>>,
    blkio_device_read_bps: Option<Vec<model::blkio::ThrottleDevice>>,
    blkio_device_write_bps: Option<Vec<model::blkio::ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    blkio_device_read_iops: Option<Vec<model::blkio::ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    blkio_device_write_iops: Option<Vec<model::blkio::ThrottleDevice>>,
    links: Option<Vec<String>>,
    volume_driver: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Endpoint {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<Ipam>,
    driver_opts: Option<BTreeMap<String, String>>,
    mac_address: String,
    links: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Ipam {
    #[serde(rename = "IPv4Address")]
    ipv4: String,
    #[serde(rename = "IPv6Address")]
    ipv6: String,
    #[serde(rename = "LinkLocalIPs")]
    link_local_ips: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "PascalCase", default)]
struct NetworkingConfig {
    endpoints_config: Option<BTreeMap<String, Option<Endpoint>>>,
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn bad(what: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid {what}: {why}"))
}

impl Body {
    /// The engine's request for a container called `name`.
    pub(crate) fn into_request(self, name: Option<String>) -> Result<CreateRequest, ApiError> {
        if self.image.is_empty() {
            return Err(ApiError::bad_request(
                "config cannot be empty in order to create a container",
            ));
        }
        let hc = self.host_config.unwrap_or_default();
        let mut req = CreateRequest {
            name,
            image: self.image,
            cmd: self.cmd.map(StrSlice::into_vec).unwrap_or_default(),
            entrypoint: self.entrypoint.map(StrSlice::into_vec),
            env: self.env.unwrap_or_default(),
            user: some(self.user),
            workdir: some(self.working_dir),
            hostname: some(self.hostname),
            domainname: some(self.domainname),
            labels: self.labels.unwrap_or_default(),
            tty: self.tty,
            interactive: self.open_stdin,
            stop_timeout: self.stop_timeout,
            auto_remove: hc.auto_remove,
            expose: self
                .exposed_ports
                .map(|m| m.into_keys().collect())
                .unwrap_or_default(),
            read_only: hc.readonly_rootfs,
            dns: hc.dns.unwrap_or_default(),
            dns_search: hc.dns_search.unwrap_or_default(),
            dns_options: hc.dns_options.unwrap_or_default(),
            extra_hosts: hc.extra_hosts.unwrap_or_default(),
            shm_size: (hc.shm_size > 0).then_some(hc.shm_size as u64),
            pid_mode: some(hc.pid_mode),
            ipc_mode: some(hc.ipc_mode),
            sysctls: hc.sysctls.unwrap_or_default(),
            tmpfs: hc.tmpfs.unwrap_or_default().into_iter().collect(),
            volumes: hc.binds.unwrap_or_default(),
            volumes_from: hc.volumes_from.unwrap_or_default(),
            memory: (hc.memory > 0).then_some(hc.memory as u64),
            memory_swap: (hc.memory_swap != 0).then_some(hc.memory_swap),
            memory_reservation: (hc.memory_reservation > 0).then_some(hc.memory_reservation as u64),
            cpus: (hc.nano_cpus > 0).then_some(hc.nano_cpus as f64 / 1e9),
            cpu_shares: (hc.cpu_shares > 0).then_some(hc.cpu_shares as u64),
            pids_limit: hc.pids_limit.filter(|p| *p > 0),
            security_opt: hc.security_opt.unwrap_or_default(),
            privileged: hc.privileged,
            init: hc.init.unwrap_or(false),
            runtime: some(hc.runtime).or(some(self.runtime)),
            publish_all: hc.publish_all_ports,
            uts_mode: some(hc.uts_mode),
            userns: some(hc.userns_mode),
            isolation: some(hc.isolation),
            cpuset_cpus: some(hc.cpuset_cpus),
            cpuset_mems: some(hc.cpuset_mems),
            cgroup_parent: some(hc.cgroup_parent),
            blkio: engine::blkio::BlkioLimits {
                weight: hc.blkio_weight,
                weight_device: hc.blkio_weight_device.unwrap_or_default(),
                read_bps: hc.blkio_device_read_bps.unwrap_or_default(),
                write_bps: hc.blkio_device_write_bps.unwrap_or_default(),
                read_iops: hc.blkio_device_read_iops.unwrap_or_default(),
                write_iops: hc.blkio_device_write_iops.unwrap_or_default(),
            },
            volume_driver: some(hc.volume_driver),
            links: hc.links.unwrap_or_default(),
            ..Default::default()
        };
        for g in hc.group_add.unwrap_or_default() {
            req.group_add.push(match g {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                other => return Err(bad("GroupAdd", format!("{other} is not a group"))),
            });
        }
        for d in hc.devices.unwrap_or_default() {
            // dockerd's defaults: the container path is the host's, the
            // permissions rwm.
            let path_in_container = if d.path_in_container.is_empty() {
                d.path_on_host.clone()
            } else {
                d.path_in_container
            };
            let cgroup_permissions = if d.cgroup_permissions.is_empty() {
                "rwm".to_string()
            } else {
                d.cgroup_permissions
            };
            let spec = format!(
                "{}:{path_in_container}:{cgroup_permissions}",
                d.path_on_host
            );
            req.devices
                .push(engine::config::DeviceMapping::parse(&spec).map_err(ApiError::bad_request)?);
        }
        for r in hc.device_cgroup_rules.unwrap_or_default() {
            // dockerd's words (it refuses the rule at start).
            req.device_cgroup_rules.push(r.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid device cgroup rule format: '{r}'"))
            })?);
        }
        if !self.stop_signal.is_empty() {
            req.stop_signal = Some(self.stop_signal.parse().map_err(|_| {
                bad(
                    "StopSignal",
                    format!("{:?} is not a signal", self.stop_signal),
                )
            })?);
        }
        if let Some(h) = self.healthcheck {
            if h.test.first().map(String::as_str) == Some("NONE") {
                req.no_healthcheck = true;
            } else {
                req.health = engine::health::HealthConfig {
                    test: h.test,
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                };
            }
        }
        for (list, out) in [
            (hc.cap_add, &mut req.cap_add),
            (hc.cap_drop, &mut req.cap_drop),
        ] {
            for c in list.unwrap_or_default() {
                let arg = model::capability::parse(&c)
                    .map_err(|_| bad("capability", format!("unknown capability {c:?}")))?;
                out.push((arg, c));
            }
        }
        for u in hc.ulimits.unwrap_or_default() {
            req.ulimits.push(
                engine::container::create::parse_ulimit(&format!(
                    "{}={}:{}",
                    u.name, u.soft, u.hard
                ))
                .map_err(ApiError::from)?,
            );
        }
        if let Some(r) = hc
            .restart_policy
            .filter(|r| !r.name.is_empty() && r.name != "no")
        {
            let spec = if r.name == "on-failure" && r.maximum_retry_count > 0 {
                format!("on-failure:{}", r.maximum_retry_count)
            } else {
                r.name.clone()
            };
            req.restart = engine::restart::RestartPolicy::parse(&spec)
                .map_err(|e| bad("RestartPolicy", e))?;
        }
        // No type with options: the default driver's options (dockerd).
        if let Some(l) = hc
            .log_config
            .filter(|l| !l.kind.is_empty() || l.config.as_ref().is_some_and(|c| !c.is_empty()))
        {
            if !["", "json-file", "local", "none"].contains(&l.kind.as_str()) {
                // dockerd's words (berth's own CLI says which it has).
                return Err(ApiError::bad_request(format!(
                    "logger: no log driver named '{}' is registered",
                    l.kind
                )));
            }
            req.log_config = engine::logs::LogConfig {
                driver: if l.kind.is_empty() {
                    "json-file".into()
                } else {
                    l.kind
                },
                config: l.config.unwrap_or_default(),
            };
        }
        for m in hc.mounts.unwrap_or_default() {
            let mut spec = format!("type={},target={}", m.kind, m.target);
            if !m.source.is_empty() {
                spec.push_str(&format!(",source={}", m.source));
            }
            if m.read_only {
                spec.push_str(",readonly");
            }
            req.mounts.push(spec);
        }
        // Mount points of Config.Volumes that nothing else covers become
        // anonymous volumes, as `-v /path`.
        let covered: Vec<String> = req
            .volumes
            .iter()
            .filter_map(|b| {
                b.split(':')
                    .nth(1)
                    .map(|t| t.trim_end_matches('/').to_string())
            })
            .chain(req.mounts.iter().filter_map(|m| {
                m.split(',').find_map(|kv| {
                    kv.strip_prefix("target=")
                        .or_else(|| kv.strip_prefix("dst="))
                        .or_else(|| kv.strip_prefix("destination="))
                        .map(|t| t.trim_end_matches('/').to_string())
                })
            }))
            .collect();
        for path in self.volumes.unwrap_or_default().into_keys() {
            let target = path.trim_end_matches('/');
            if !target.is_empty() && !covered.iter().any(|c| c == target) {
                req.volumes.push(path);
            }
        }
        for (port, bindings) in hc.port_bindings.unwrap_or_default() {
            for b in bindings.unwrap_or_default() {
                let spec = match (b.host_ip.as_str(), b.host_port.as_str()) {
                    ("", "") => port.clone(),
                    ("", hp) => format!("{hp}:{port}"),
                    (ip, hp) => format!("{ip}:{hp}:{port}"),
                };
                req.ports
                    .extend(PortMapping::parse(&spec).map_err(|e| bad("PortBindings", e))?);
            }
        }
        // The network: `NetworkMode`, then the endpoint settings of the one
        // it names (docker run sends both).
        let mode = hc.network_mode;
        // dockerd keeps a mode given as `default` or not at all as `default`.
        if matches!(mode.as_str(), "" | "default") {
            req.network_mode_name = Some("default".into());
        }
        req.network = match mode.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            "" | "default" | "bridge" => {
                req.networks.push("bridge".into());
                NetworkMode::None
            }
            m if m.starts_with("container:") => {
                NetworkMode::Container(m["container:".len()..].to_string())
            }
            name => {
                req.networks.push(name.to_string());
                NetworkMode::None
            }
        };
        if let Some(eps) = self.networking_config.and_then(|n| n.endpoints_config) {
            let first = req.networks.first().cloned();
            for (net, ep) in eps {
                let ours = first.as_ref().is_some_and(|n| {
                    *n == net || (n == "bridge" && (net == "default" || net == "bridge"))
                });
                if !ours {
                    // Another network (API 1.44: several endpoints at
                    // create): connected too, with its aliases and address;
                    // one that does not exist fails the create (404).
                    if first.is_some() {
                        let ep = ep.unwrap_or_default();
                        if let Some(a) = ep.aliases.filter(|a| !a.is_empty()) {
                            req.connect_aliases.insert(net.clone(), a);
                        }
                        if let Some(ip) = ep.ipam_config.and_then(|i| some(i.ipv4)) {
                            req.connect_ips.insert(net.clone(), ip);
                        }
                        req.networks.push(net);
                    }
                    continue;
                }
                let Some(ep) = ep else { continue };
                req.network_aliases = ep.aliases.unwrap_or_default();
                let ipam = ep.ipam_config.unwrap_or_default();
                req.ip = some(ipam.ipv4);
                req.endpoint = engine::config::EndpointExtra {
                    ip6: some(ipam.ipv6),
                    link_local_ips: ipam.link_local_ips.unwrap_or_default(),
                    driver_opts: ep.driver_opts,
                };
                req.mac_address = some(ep.mac_address);
                req.endpoint_links = ep.links.unwrap_or_default();
            }
        }
        if req.mac_address.is_none() {
            req.mac_address = some(self.mac_address);
        }
        Ok(req)
    }
}
