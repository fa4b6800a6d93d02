//! A service, as the engine's create request for one of its containers.
use std::collections::BTreeMap;

use engine::config::{NetworkMode, PortMapping};
use engine::container::create::CreateRequest;
use engine::restart::RestartPolicy;

use crate::model::{Port, Project, Service, ServiceVolume};
use crate::{Error, Result};

/// The bits of a create request that depend on the engine's state: the
/// container a `network_mode: service:X` joins.
#[derive(Debug, Default)]
pub struct Context {
    /// `service:X` → the name of X's first container.
    pub joined: BTreeMap<String, String>,
    /// (`secret`|`config`, key) → the host file mounted for it.
    pub files: BTreeMap<(&'static str, String), std::path::PathBuf>,
}

fn invalid(service: &Service, what: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("service {:?}: {what}: {why}", service.name))
}

/// An external network that is the engine's `host` or `none`: the network
/// mode it stands for.
pub fn special_network(net: &crate::model::Network) -> Option<NetworkMode> {
    match (net.external, net.name.as_str()) {
        (true, "host") => Some(NetworkMode::Host),
        (true, "none") => Some(NetworkMode::None),
        _ => None,
    }
}

/// The service's networks, first the one the container is created on:
/// highest `priority` first, then by key.
pub fn ordered_networks(service: &Service) -> Vec<String> {
    let mut v: Vec<(&String, i64)> = service
        .networks
        .iter()
        .map(|(k, n)| (k, n.priority.unwrap_or(0)))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(k, _)| k.clone()).collect()
}

/// `[host_ip:][published:]target/protocol` for the engine's parser.
fn port_spec(p: &Port) -> String {
    let mut s = String::new();
    if let Some(ip) = &p.host_ip {
        if ip.contains(':') && !ip.starts_with('[') {
            s.push_str(&format!("[{ip}]:"));
        } else {
            s.push_str(&format!("{ip}:"));
        }
        s.push_str(p.published.as_deref().unwrap_or(""));
        s.push(':');
    } else if let Some(pubd) = &p.published {
        s.push_str(pubd);
        s.push(':');
    }
    s.push_str(&format!("{}/{}", p.target, p.protocol));
    s
}

/// The `--mount` value of a service volume (named volumes by their engine
/// name).
fn mount_spec(project: &Project, service: &Service, v: &ServiceVolume) -> Result<String> {
    let mut parts = vec![format!("type={}", v.kind)];
    match v.kind.as_str() {
        "volume" => {
            if let Some(src) = &v.source {
                let vol = project.volumes.get(src).ok_or_else(|| {
                    invalid(service, "volumes", format!("undefined volume {src:?}"))
                })?;
                parts.push(format!("source={}", vol.name));
            }
            if v.volume.as_ref().is_some_and(|o| o.nocopy) {
                parts.push("volume-nocopy=true".into());
            }
            if let Some(sub) = v.volume.as_ref().and_then(|o| o.subpath.as_ref()) {
                if sub.contains(',') {
                    return Err(invalid(
                        service,
                        "volumes",
                        format!("volume subpath {sub:?}: a ',' cannot be passed on"),
                    ));
                }
                parts.push(format!("volume-subpath={sub}"));
            }
        }
        "bind" => {
            let src = v
                .source
                .as_ref()
                .ok_or_else(|| invalid(service, "volumes", "a bind mount needs a source"))?;
            parts.push(format!("source={src}"));
            if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.as_ref()) {
                parts.push(format!("bind-propagation={p}"));
            }
        }
        "tmpfs" => {
            if let Some(t) = &v.tmpfs {
                if let Some(size) = t.size {
                    parts.push(format!("tmpfs-size={size}"));
                }
                if let Some(mode) = t.mode {
                    parts.push(format!("tmpfs-mode={mode:o}"));
                }
            }
        }
        other => {
            return Err(invalid(
                service,
                "volumes",
                format!("volume type {other:?} is not supported by berth (volume, bind, tmpfs)"),
            ))
        }
    }
    parts.push(format!("target={}", v.target));
    if v.read_only {
        parts.push("readonly".into());
    }
    Ok(parts.join(","))
}

/// Make the missing host directories of the service's bind mounts that
/// ask for it (`create_host_path: true`; always so in short syntax), as
/// docker compose has the engine do: a `--mount` bind with a missing
/// source is refused.
pub fn create_bind_sources(service: &Service) -> Result<()> {
    for v in &service.volumes {
        let wanted = v.kind == "bind" && v.bind.as_ref().is_some_and(|b| b.create_host_path);
        let Some(src) = v.source.as_ref().filter(|_| wanted) else {
            continue;
        };
        let path = std::path::Path::new(src);
        if std::fs::symlink_metadata(path).is_ok() {
            continue;
        }
        std::fs::create_dir_all(path).map_err(|e| {
            Error::Failed(format!(
                "service {:?}: creating bind source {src}: {e}",
                service.name
            ))
        })?;
    }
    Ok(())
}

/// `restart:` or `deploy.restart_policy`.
fn restart_policy(service: &Service) -> Result<RestartPolicy> {
    if let Some(r) = &service.restart {
        return RestartPolicy::parse(r).map_err(|e| invalid(service, "restart", e));
    }
    let Some(rp) = service
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
    else {
        return Ok(RestartPolicy::No);
    };
    Ok(match rp.condition.as_deref() {
        None | Some("any") => RestartPolicy::Always,
        Some("on-failure") => RestartPolicy::OnFailure {
            max: rp.max_attempts.unwrap_or(0),
        },
        Some("none") => RestartPolicy::No,
        Some(other) => {
            return Err(invalid(
                service,
                "deploy.restart_policy.condition",
                format!("{other:?}: use none, on-failure or any"),
            ))
        }
    })
}

/// `pid:` / `ipc:`: `service:X` is X's first container.
fn namespace_mode(
    service: &Service,
    what: &str,
    mode: Option<&str>,
    ctx: &Context,
) -> Result<Option<String>> {
    match mode.and_then(|m| m.strip_prefix("service:")) {
        Some(target) => match ctx.joined.get(target) {
            Some(c) => Ok(Some(format!("container:{c}"))),
            None => Err(invalid(
                service,
                what,
                format!("service:{target}: that service has no container"),
            )),
        },
        None => Ok(mode.map(str::to_string)),
    }
}

/// The create request of container `number` of `service`, with `labels`.
pub fn create_request(
    project: &Project,
    service: &Service,
    name: &str,
    image: &str,
    labels: BTreeMap<String, String>,
    ctx: &Context,
) -> Result<CreateRequest> {
    let mut req = CreateRequest {
        name: Some(name.to_string()),
        image: image.to_string(),
        cmd: service.command.clone().unwrap_or_default(),
        entrypoint: service.entrypoint.clone(),
        env: service
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        user: service.user.clone(),
        workdir: service.working_dir.clone(),
        hostname: service.hostname.clone(),
        labels,
        tty: service.tty,
        interactive: service.stdin_open,
        read_only: service.read_only,
        shm_size: service.shm_size,
        pid_mode: namespace_mode(service, "pid", service.pid.as_deref(), ctx)?,
        domainname: service.domainname.clone(),
        ipc_mode: namespace_mode(service, "ipc", service.ipc.as_deref(), ctx)?,
        sysctls: service.sysctls.clone(),
        privileged: service.privileged,
        init: service.init.unwrap_or(false),
        security_opt: service.security_opt.clone(),
        dns: service.dns.clone(),
        dns_search: service.dns_search.clone(),
        dns_options: service.dns_opt.clone(),
        extra_hosts: service.extra_hosts.clone(),
        expose: service.expose.clone(),
        restart: restart_policy(service)?,
        group_add: service.group_add.clone(),
        uts_mode: service.uts.clone(),
        userns: service.userns_mode.clone(),
        cpuset_cpus: service.cpuset.clone(),
        devices: service
            .devices
            .iter()
            .map(|d| {
                engine::config::DeviceMapping::parse(d).map_err(|e| invalid(service, "devices", &e))
            })
            .collect::<Result<_>>()?,
        blkio: service
            .blkio_config
            .as_ref()
            .map(blkio_limits)
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(s) = &service.stop_signal {
        req.stop_signal = Some(
            s.parse::<model::Signal>()
                .map_err(|_| invalid(service, "stop_signal", format!("{s:?} is not a signal")))?,
        );
    }
    if let Some(g) = &service.stop_grace_period {
        req.stop_timeout = Some(g.0.as_secs() as i64);
    }
    // Networking.
    match service.network_mode.as_deref() {
        Some("host") => req.network = NetworkMode::Host,
        Some("none") => req.network = NetworkMode::None,
        Some("bridge") => req.networks = vec!["bridge".into()],
        Some(m) if m.starts_with("service:") => {
            let target = ctx.joined.get(&m["service:".len()..]).ok_or_else(|| {
                invalid(
                    service,
                    "network_mode",
                    format!("{m}: that service has no container"),
                )
            })?;
            req.network = NetworkMode::Container(target.clone());
        }
        Some(m) if m.starts_with("container:") => {
            req.network = NetworkMode::Container(m["container:".len()..].to_string());
        }
        Some(m) => {
            return Err(invalid(
                service,
                "network_mode",
                format!("{m:?}: use host, none, bridge, service:NAME or container:NAME"),
            ))
        }
        None => {
            if let Some(first) = ordered_networks(service).first() {
                let net = project.networks.get(first).ok_or_else(|| {
                    invalid(service, "networks", format!("undefined network {first:?}"))
                })?;
                // docker compose: the engine's own `host` and `none`
                // networks, declared external, are network modes.
                if let Some(mode) = special_network(net) {
                    if service.networks.len() > 1 {
                        return Err(invalid(
                            service,
                            "networks",
                            format!("network {:?} cannot be combined with others", net.name),
                        ));
                    }
                    req.network = mode;
                } else {
                    req.networks = vec![net.name.clone()];
                    let sn = &service.networks[first];
                    req.network_aliases = aliases(service, sn);
                    req.ip = sn.ipv4_address.clone();
                }
            }
        }
    }
    let publishes = matches!(req.network, NetworkMode::None) && !req.networks.is_empty();
    if publishes {
        for p in &service.ports {
            req.ports.extend(
                PortMapping::parse(&port_spec(p)).map_err(|e| invalid(service, "ports", e))?,
            );
        }
    }
    // Storage.
    for v in &service.volumes {
        req.mounts.push(mount_spec(project, service, v)?);
    }
    for t in &service.tmpfs {
        let (d, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
        req.tmpfs.push((d.to_string(), o.to_string()));
    }
    for (list, kind) in [(&service.secrets, "secret"), (&service.configs, "config")] {
        for r in list {
            let source = ctx.files.get(&(kind, r.source.clone())).ok_or_else(|| {
                invalid(
                    service,
                    &format!("{kind}s"),
                    format!("undefined {kind} {:?}", r.source),
                )
            })?;
            let target = match (&r.target, kind) {
                (Some(t), _) if t.starts_with('/') => t.clone(),
                (Some(t), "secret") => format!("/run/secrets/{t}"),
                (Some(t), _) => format!("/{t}"),
                (None, "secret") => format!("/run/secrets/{}", r.source),
                (None, _) => format!("/{}", r.source),
            };
            req.mounts.push(format!(
                "type=bind,source={},target={target},readonly",
                source.display()
            ));
        }
    }
    // Resources.
    let limits = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    req.memory = limits.and_then(|l| l.memory).or(service.mem_limit);
    req.cpus = limits.and_then(|l| l.cpus).or(service.cpus);
    req.pids_limit = limits.and_then(|l| l.pids).or(service.pids_limit);
    req.cgroup_parent = service.cgroup_parent.clone().filter(|p| !p.is_empty());
    req.memory_reservation = service
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref())
        .and_then(|l| l.memory)
        .or(service.mem_reservation);
    for (name, u) in &service.ulimits {
        req.ulimits.push(
            engine::container::create::parse_ulimit(&format!("{name}={}:{}", u.soft, u.hard))
                .map_err(|e| invalid(service, "ulimits", e))?,
        );
    }
    for (list, key, out) in [
        (&service.cap_add, "cap_add", &mut req.cap_add),
        (&service.cap_drop, "cap_drop", &mut req.cap_drop),
    ] {
        for c in list {
            let arg = model::capability::parse(c)
                .map_err(|_| invalid(service, key, format!("unknown capability {c:?}")))?;
            out.push((arg, c.clone()));
        }
    }
    // Supervision.
    if let Some(h) = &service.healthcheck {
        if h.disable || h.test.first().is_some_and(|t| t == "NONE") {
            req.no_healthcheck = true;
        } else {
            req.health = engine::health::HealthConfig {
                test: h.test.clone(),
                interval: h.interval.map(|d| d.nanos()).unwrap_or(0),
                timeout: h.timeout.map(|d| d.nanos()).unwrap_or(0),
                start_period: h.start_period.map(|d| d.nanos()).unwrap_or(0),
                start_interval: h.start_interval.map(|d| d.nanos()).unwrap_or(0),
                retries: h.retries.map(i64::from).unwrap_or(0),
            };
        }
    }
    if let Some(l) = &service.logging {
        req.log_config = engine::logs::LogConfig {
            driver: l.driver.clone().unwrap_or_default(),
            config: l.options.clone(),
        };
    }
    Ok(req)
}

/// A service's aliases on one network: its name, then the file's.
pub fn aliases(service: &Service, sn: &crate::model::ServiceNetwork) -> Vec<String> {
    let mut a = vec![service.name.clone()];
    for x in &sn.aliases {
        if !a.contains(x) {
            a.push(x.clone());
        }
    }
    a
}

/// `blkio_config:` as the engine's block-I/O limits (checked there, as
/// dockerd checks what Compose sends).
fn blkio_limits(b: &crate::model::BlkioConfig) -> engine::blkio::BlkioLimits {
    use model::blkio::{ThrottleDevice, WeightDevice};
    let rates = |l: &[crate::model::BlkioRate]| {
        l.iter()
            .map(|r| ThrottleDevice {
                path: r.path.clone(),
                rate: r.rate,
            })
            .collect()
    };
    engine::blkio::BlkioLimits {
        weight: b.weight.unwrap_or(0),
        weight_device: b
            .weight_device
            .iter()
            .map(|w| WeightDevice {
                path: w.path.clone(),
                weight: w.weight,
            })
            .collect(),
        read_bps: rates(&b.device_read_bps),
        write_bps: rates(&b.device_write_bps),
        read_iops: rates(&b.device_read_iops),
        write_iops: rates(&b.device_write_iops),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_are_made_only_when_asked() {
        use crate::model::BindOptions;
        let dir = tempfile::tempdir().unwrap();
        let bind = |src: &str, create: bool| ServiceVolume {
            kind: "bind".into(),
            source: Some(dir.path().join(src).display().to_string()),
            target: format!("/{src}"),
            bind: Some(BindOptions {
                create_host_path: create,
                ..BindOptions::default()
            }),
            ..ServiceVolume::default()
        };
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let service = Service {
            name: "web".into(),
            volumes: vec![
                bind("made/deep", true),
                bind("left", false),
                bind("file", true),
            ],
            ..Service::default()
        };
        create_bind_sources(&service).unwrap();
        assert!(dir.path().join("made/deep").is_dir());
        assert!(!dir.path().join("left").exists());
        assert!(dir.path().join("file").is_file());
    }

    #[test]
    fn port_specs_for_the_engine() {
        let p = |target, published: Option<&str>, host_ip: Option<&str>, proto: &str| Port {
            target,
            published: published.map(String::from),
            host_ip: host_ip.map(String::from),
            protocol: proto.into(),
            mode: "ingress".into(),
        };
        assert_eq!(port_spec(&p(80, None, None, "tcp")), "80/tcp");
        assert_eq!(port_spec(&p(80, Some("8080"), None, "tcp")), "8080:80/tcp");
        assert_eq!(
            port_spec(&p(53, Some("5353"), Some("127.0.0.1"), "udp")),
            "127.0.0.1:5353:53/udp"
        );
        assert_eq!(
            port_spec(&p(80, None, Some("127.0.0.1"), "tcp")),
            "127.0.0.1::80/tcp"
        );
        assert_eq!(
            port_spec(&p(80, Some("8080"), Some("::1"), "tcp")),
            "[::1]:8080:80/tcp"
        );
    }
}
