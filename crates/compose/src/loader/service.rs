//! One entry of `services:` into a [`Service`]: every key of the Compose
//! Specification accepted (a few that berth has no use for are ignored
//! with a warning), short syntax turned into long syntax, relative paths
//! made absolute, references to top-level objects and other services
//! checked for the services the active profiles enable.
use std::collections::{BTreeMap, BTreeSet};

use super::service_fields as fields;
use super::typed::{Cx, Obj, Result};
use super::yaml::{KeyPath, Node, Pos};
use super::LoadError;
use super::{ports, volumes, words};
use crate::envfile;
use crate::model::{Dependency, Port, Service};

/// The service keys of the Compose Specification.
const SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "label_file",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "post_start",
    "pre_start",
    "pre_stop",
    "privileged",
    "profiles",
    "provider",
    "pull_policy",
    "pull_refresh_after",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Keys accepted but without effect on berth.
const IGNORED_KEYS: &[&str] = &[
    "attach",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "credential_spec",
    "device_cgroup_rules",
    "gpus",
    "isolation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "post_start",
    "pre_start",
    "pre_stop",
    "provider",
    "pull_refresh_after",
    "storage_opt",
    "use_api_socket",
];

/// What a service may refer to.
pub(crate) struct Scope<'a> {
    /// Whether the active profiles enable this service: references are
    /// only checked then (as docker compose does).
    pub enabled: bool,
    pub enabled_services: &'a BTreeSet<String>,
    pub all_services: &'a BTreeSet<String>,
    pub volumes: &'a BTreeSet<String>,
    pub networks: &'a BTreeSet<String>,
    pub secrets: &'a BTreeSet<String>,
    pub configs: &'a BTreeSet<String>,
}

/// `: invalid compose project`, docker compose's suffix for inconsistencies.
pub(crate) fn inconsistent(cx: &Cx, pos: Pos, path: &KeyPath, what: String) -> LoadError {
    cx.invalid(pos, path, format!("{what}: invalid compose project"))
}

pub(crate) fn service(
    cx: &Cx,
    n: &Node,
    path: &KeyPath,
    name: &str,
    scope: &Scope,
) -> Result<Service> {
    let o = cx.obj(n, path, SERVICE_KEYS)?;
    for k in IGNORED_KEYS {
        if o.has(k) {
            cx.warn(format!(
                "services.{name}: `{k}` is not supported by berth and is ignored"
            ));
        }
    }
    let mut s = Service {
        name: name.to_string(),
        image: o.string(cx, "image")?,
        build: o.opt("build", |n, p| fields::build(cx, n, p))?,
        command: o.opt("command", |n, p| command(cx, n, p))?,
        entrypoint: o.opt("entrypoint", |n, p| command(cx, n, p))?,
        environment: environment(cx, &o)?,
        expose: o
            .opt("expose", |n, p| cx.strings(n, p))?
            .unwrap_or_default(),
        network_mode: o.string(cx, "network_mode")?,
        healthcheck: o.opt("healthcheck", |n, p| fields::healthcheck(cx, n, p))?,
        restart: o.opt("restart", |n, p| restart(cx, n, p))?,
        deploy: o.opt("deploy", |n, p| fields::deploy(cx, n, p))?,
        scale: o.opt("scale", |n, p| cx.int_in(n, p))?,
        user: o.string(cx, "user")?,
        working_dir: o.string(cx, "working_dir")?,
        hostname: o.string(cx, "hostname")?,
        domainname: o.string(cx, "domainname")?,
        container_name: o.string(cx, "container_name")?,
        labels: labels(cx, &o)?,
        read_only: o.flag(cx, "read_only")?,
        privileged: o.flag(cx, "privileged")?,
        tty: o.flag(cx, "tty")?,
        stdin_open: o.flag(cx, "stdin_open")?,
        cap_add: o.strings(cx, "cap_add")?,
        cap_drop: o.strings(cx, "cap_drop")?,
        security_opt: o.strings(cx, "security_opt")?,
        tmpfs: o.string_or_list(cx, "tmpfs")?,
        ulimits: o
            .opt("ulimits", |n, p| fields::ulimits(cx, n, p))?
            .unwrap_or_default(),
        init: o.boolean(cx, "init")?,
        stop_signal: o.string(cx, "stop_signal")?,
        stop_grace_period: o.duration(cx, "stop_grace_period")?,
        extra_hosts: o
            .opt("extra_hosts", |n, p| fields::extra_hosts(cx, n, p))?
            .unwrap_or_default(),
        dns: o.string_or_list(cx, "dns")?,
        dns_search: o.string_or_list(cx, "dns_search")?,
        dns_opt: o.strings(cx, "dns_opt")?,
        logging: o.opt("logging", |n, p| fields::logging(cx, n, p))?,
        pid: o.string(cx, "pid")?,
        ipc: o.string(cx, "ipc")?,
        mem_limit: o.opt("mem_limit", |n, p| cx.bytes(n, p))?,
        cpus: o.opt("cpus", |n, p| cx.float(n, p))?,
        pids_limit: o.opt("pids_limit", |n, p| cx.int(n, p))?,
        shm_size: o.opt("shm_size", |n, p| cx.bytes(n, p))?,
        sysctls: o.labels(cx, "sysctls")?,
        platform: o.string(cx, "platform")?,
        pull_policy: o.string(cx, "pull_policy")?.map(|p| {
            if p == "if_not_present" {
                "missing".to_string()
            } else {
                p
            }
        }),
        profiles: o.strings(cx, "profiles")?,
        develop: o.opt("develop", |n, p| fields::develop(cx, n, p))?,
        links: o.strings(cx, "links")?,
        external_links: o.strings(cx, "external_links")?,
        devices: o
            .opt("devices", |n, p| fields::devices(cx, n, p))?
            .unwrap_or_default(),
        group_add: o.strings(cx, "group_add")?,
        volumes_from: o.strings(cx, "volumes_from")?,
        annotations: o.labels(cx, "annotations")?,
        cgroup: o.string(cx, "cgroup")?,
        cgroup_parent: o.string(cx, "cgroup_parent")?,
        mac_address: o.string(cx, "mac_address")?,
        oom_score_adj: o.opt("oom_score_adj", |n, p| cx.int(n, p))?,
        runtime: o.string(cx, "runtime")?,
        userns_mode: o.string(cx, "userns_mode")?,
        uts: o.string(cx, "uts")?,
        mem_reservation: o.opt("mem_reservation", |n, p| cx.bytes(n, p))?,
        cpu_shares: o.opt("cpu_shares", |n, p| cx.int(n, p))?,
        cpuset: o.string(cx, "cpuset")?,
        blkio_config: o.opt("blkio_config", |n, p| fields::blkio_config(cx, n, p))?,
        extensions: o.extensions(),
        ..Service::default()
    };
    if let Some((list, lp)) = o.get("ports") {
        for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
            for port in ports::ports(cx, item, &lp.index(i))? {
                add_port(&mut s.ports, port);
            }
        }
    }
    if let Some((list, lp)) = o.get("volumes") {
        for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
            let ip = lp.index(i);
            let v = volumes::service_volume(cx, item, &ip)?;
            if scope.enabled && v.kind == "volume" {
                if let Some(src) = &v.source {
                    if !scope.volumes.contains(src) {
                        return Err(inconsistent(
                            cx,
                            item.pos,
                            &ip,
                            format!("service {name:?} refers to undefined volume {src}"),
                        ));
                    }
                }
            }
            s.volumes.push(v);
        }
    }
    s.secrets = fields::file_refs(
        cx,
        &o,
        "secrets",
        name,
        scope.enabled.then_some(scope.secrets),
    )?;
    s.configs = fields::file_refs(
        cx,
        &o,
        "configs",
        name,
        scope.enabled.then_some(scope.configs),
    )?;
    networks(cx, &o, &mut s, scope)?;
    s.depends_on = fields::depends_on(cx, &o)?;
    implicit_dependencies(&mut s);
    fold_scale(cx, &o, &mut s)?;
    if scope.enabled {
        check(cx, &o, &s, scope)?;
    }
    Ok(s)
}

/// Keep one port per `(host_ip, published, target, protocol)`, the later
/// taking the earlier's place.
fn add_port(ports: &mut Vec<Port>, port: Port) {
    let key = |p: &Port| {
        (
            p.host_ip.clone(),
            p.published.clone(),
            p.target,
            p.protocol.clone(),
        )
    };
    match ports.iter_mut().find(|p| key(p) == key(&port)) {
        Some(existing) => *existing = port,
        None => ports.push(port),
    }
}

/// `command`/`entrypoint`: a list as is, a string split like a shell.
fn command(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Vec<String>> {
    match &n.value {
        super::yaml::Value::Seq(_) => cx.strings(n, path),
        _ => {
            let s = cx.string(n, path)?;
            words::split(&s)
                .ok_or_else(|| cx.invalid(n.pos, path, format!("unterminated quote in {s:?}")))
        }
    }
}

/// `no`, `always`, `on-failure[:n]`, `unless-stopped`.
fn restart(cx: &Cx, n: &Node, path: &KeyPath) -> Result<String> {
    let r = cx.string(n, path)?;
    let ok = match r.split_once(':') {
        Some(("on-failure", count)) => count.parse::<u32>().is_ok(),
        Some(_) => false,
        None => matches!(
            r.as_str(),
            "no" | "always" | "on-failure" | "unless-stopped"
        ),
    };
    if !ok {
        return Err(cx.invalid(
            n.pos,
            path,
            format!(
                "invalid restart policy {r:?}: must be one of no, always, on-failure[:max-retries], unless-stopped"
            ),
        ));
    }
    Ok(r)
}

/// Read an env file (docker compose's rules, variables from the project's
/// environment); `None` when optional and missing.
fn read_env_file(
    cx: &Cx,
    pos: Pos,
    path: &KeyPath,
    file: &str,
    required: bool,
) -> Result<Option<Vec<(String, String)>>> {
    let abs = cx.resolve_path(pos, file);
    let text = match std::fs::read_to_string(&abs) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(cx.invalid(pos, path, format!("env file {abs} not found: {e}")));
        }
    };
    envfile::parse(&text, &|k| cx.env.get(k).cloned())
        .map(Some)
        .map_err(|source| LoadError::EnvFile {
            path: abs.into(),
            source,
        })
}

/// `env_file`/`label_file` entries: `file`, `[file]` or `[{path, required}]`.
fn files_vars(cx: &Cx, o: &Obj, key: &str) -> Result<Vec<(String, String)>> {
    let Some((n, p)) = o.get(key) else {
        return Ok(Vec::new());
    };
    let entries: Vec<(&Node, KeyPath)> = match &n.value {
        super::yaml::Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| (it, p.index(i)))
            .collect(),
        _ => vec![(n, p)],
    };
    let mut vars = Vec::new();
    for (item, ip) in entries {
        let (file, required, pos) = match &item.value {
            super::yaml::Value::Map(_) => {
                let f = cx.obj(item, &ip, &["path", "required", "format"])?;
                let (pn, pp) = f
                    .get("path")
                    .ok_or_else(|| cx.invalid(item.pos, &ip, "path is required"))?;
                (
                    cx.string(pn, &pp)?,
                    f.boolean(cx, "required")?.unwrap_or(true),
                    pn.pos,
                )
            }
            _ => (cx.string(item, &ip)?, true, item.pos),
        };
        if let Some(v) = read_env_file(cx, pos, &ip, &file, required)? {
            vars.extend(v);
        }
    }
    Ok(vars)
}

/// `env_file` then `environment`; a name without a value takes the
/// project environment's (and is dropped when unset there).
fn environment(cx: &Cx, o: &Obj) -> Result<BTreeMap<String, String>> {
    let mut env: BTreeMap<String, String> = files_vars(cx, o, "env_file")?.into_iter().collect();
    if let Some((n, p)) = o.get("environment") {
        for (k, v, _) in cx.dict(n, &p)? {
            match v.or_else(|| cx.env.get(&k).cloned()) {
                Some(v) => {
                    env.insert(k, v);
                }
                None => {
                    env.remove(&k);
                }
            }
        }
    }
    Ok(env)
}

/// `label_file` then `labels`.
fn labels(cx: &Cx, o: &Obj) -> Result<BTreeMap<String, String>> {
    let mut labels: BTreeMap<String, String> =
        files_vars(cx, o, "label_file")?.into_iter().collect();
    labels.extend(o.labels(cx, "labels")?);
    Ok(labels)
}

/// `networks` (list or map), or `{default}` when neither it nor
/// `network_mode` is set.
fn networks(cx: &Cx, o: &Obj, s: &mut Service, scope: &Scope) -> Result<()> {
    if let Some((n, p)) = o.get("networks") {
        if s.network_mode.is_some() {
            return Err(inconsistent(
                cx,
                n.pos,
                &p,
                format!(
                    "service {} declares mutually exclusive `network_mode` and `networks`",
                    s.name
                ),
            ));
        }
        for (net, pos, cfg) in fields::service_networks(cx, n, &p)? {
            if scope.enabled && net != "default" && !scope.networks.contains(&net) {
                return Err(inconsistent(
                    cx,
                    pos,
                    &p.key(&net),
                    format!("service {:?} refers to undefined network {net}", s.name),
                ));
            }
            s.networks.insert(net, cfg);
        }
    }
    if s.networks.is_empty() && s.network_mode.is_none() {
        s.networks.insert("default".into(), Default::default());
    }
    Ok(())
}

/// The dependencies `links`, `volumes_from` and `service:` namespaces imply.
fn implicit_dependencies(s: &mut Service) {
    let mut add = |name: &str, restart: bool| {
        s.depends_on.entry(name.to_string()).or_insert(Dependency {
            condition: "service_started".into(),
            restart,
            required: true,
        });
    };
    for l in &s.links {
        add(l.split(':').next().unwrap_or(l), true);
    }
    for ns in [&s.network_mode, &s.ipc, &s.pid, &s.uts, &s.cgroup]
        .into_iter()
        .flatten()
    {
        if let Some(svc) = ns.strip_prefix("service:") {
            add(svc, true);
        }
    }
    for v in &s.volumes_from {
        if !v.starts_with("container:") {
            add(v.split(':').next().unwrap_or(v), false);
        }
    }
}

/// The checks docker compose makes of an enabled service.
fn check(cx: &Cx, o: &Obj, s: &Service, scope: &Scope) -> Result<()> {
    let name = &s.name;
    if s.image.is_none() && s.build.is_none() {
        return Err(inconsistent(
            cx,
            o.pos,
            &o.path,
            format!("service {name:?} has neither an image nor a build context specified"),
        ));
    }
    if let Some(target) = s
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        if !scope.all_services.contains(target) {
            let (pos, p) = at(o, "network_mode");
            return Err(cx.invalid(
                pos,
                &p,
                format!("service {target:?} not found for network_mode 'service:{target}'"),
            ));
        }
    }
    if s.container_name.is_some() && s.scale.is_some_and(|n| n > 1) {
        let attr = if o.has("scale") {
            "scale"
        } else {
            "deploy.replicas"
        };
        return Err(inconsistent(
            cx,
            o.pos,
            &o.path,
            format!("can't set container_name and {attr} as container name must be unique"),
        ));
    }
    for (dep, d) in &s.depends_on {
        let (pos, path) = dependency_at(o, dep);
        if scope.enabled_services.contains(dep) {
            continue;
        }
        if scope.all_services.contains(dep) {
            if d.required {
                return Err(inconsistent(
                    cx,
                    pos,
                    &path,
                    format!("service {name:?} depends on service {dep:?}, which is disabled by its profiles"),
                ));
            }
            continue;
        }
        return Err(inconsistent(
            cx,
            pos,
            &path,
            format!("service {name:?} depends on undefined service {dep:?}"),
        ));
    }
    Ok(())
}

/// Where field `key` is written, else where the service is.
fn at(o: &Obj, key: &str) -> (Pos, KeyPath) {
    o.get(key)
        .map(|(n, p)| (n.pos, p))
        .unwrap_or((o.pos, o.path.clone()))
}

/// Where the dependency on `dep` is written (an implicit one: where
/// `depends_on` or the service is).
fn dependency_at(o: &Obj, dep: &str) -> (Pos, KeyPath) {
    let Some((n, p)) = o.get("depends_on") else {
        return (o.pos, o.path.clone());
    };
    match &n.value {
        super::yaml::Value::Map(m) => match m.entry(dep) {
            Some(e) => (e.key_pos, p.key(dep)),
            None => (n.pos, p),
        },
        super::yaml::Value::Seq(items) => items
            .iter()
            .enumerate()
            .find(|(_, it)| it.scalar_text().as_deref() == Some(dep))
            .map(|(i, it)| (it.pos, p.index(i)))
            .unwrap_or((n.pos, p)),
        _ => (n.pos, p),
    }
}

/// `deploy.replicas` into `scale`, and the checks of docker compose on the
/// keys that have two spellings.
fn fold_scale(cx: &Cx, o: &Obj, s: &mut Service) -> Result<()> {
    let conflict = |what: &str| {
        inconsistent(
            cx,
            o.pos,
            &o.path,
            format!("can't set distinct values on {what}"),
        )
    };
    if let Some(d) = &s.deploy {
        match (s.scale, d.replicas) {
            (Some(a), Some(b)) if a != b => return Err(conflict("'scale' and 'deploy.replicas'")),
            (None, Some(r)) => s.scale = Some(r),
            _ => {}
        }
        let limits = d.resources.as_ref().and_then(|r| r.limits.as_ref());
        if let (Some(a), Some(b)) = (s.cpus, limits.and_then(|l| l.cpus)) {
            if a != b {
                return Err(conflict("'cpus' and 'deploy.resources.limits.cpus'"));
            }
        }
        if let (Some(a), Some(b)) = (s.mem_limit, limits.and_then(|l| l.memory)) {
            if a != b {
                return Err(conflict("'mem_limit' and 'deploy.resources.limits.memory'"));
            }
        }
        if let (Some(a), Some(b)) = (s.pids_limit, limits.and_then(|l| l.pids)) {
            if a != b {
                return Err(conflict("'pids_limit' and 'deploy.resources.limits.pids'"));
            }
        }
    }
    Ok(())
}
