//! The parts of a service that are objects of their own: `build`,
//! `healthcheck`, `deploy`, `logging`, `develop`, `ulimits`, `networks`,
//! `depends_on`, `secrets`/`configs`, `extra_hosts`, `devices`.
use std::collections::{BTreeMap, BTreeSet};

use super::service::inconsistent;
use super::typed::{Cx, Obj, Result};
use super::yaml::{KeyPath, Node, Pos, Value};
use crate::model::{
    BlkioConfig, BlkioRate, BlkioWeightDevice, Build, Dependency, Deploy, Develop, FileReference,
    Healthcheck, Limits, Logging, Resources, RestartPolicy, ServiceNetwork, Ulimit, WatchRule,
};

const BUILD_KEYS: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "no_cache_filter",
    "additional_contexts",
    "network",
    "provenance",
    "sbom",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];
const IGNORED_BUILD_KEYS: &[&str] = &[
    "ssh",
    "cache_to",
    "no_cache_filter",
    "additional_contexts",
    "provenance",
    "sbom",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "ulimits",
    "platforms",
];

/// A build context that is not a local directory.
fn is_remote_context(c: &str) -> bool {
    [
        "http://",
        "https://",
        "git://",
        "git@",
        "github.com/",
        "ssh://",
    ]
    .iter()
    .any(|p| c.starts_with(p))
}

/// `build:` (a string is the context).
pub(crate) fn build(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Build> {
    if !matches!(n.value, Value::Map(_)) {
        let context = cx.string(n, path)?;
        return Ok(Build {
            context: context_path(cx, n.pos, &context),
            dockerfile: Some("Dockerfile".into()),
            ..Build::default()
        });
    }
    let o = cx.obj(n, path, BUILD_KEYS)?;
    for k in IGNORED_BUILD_KEYS {
        if o.has(k) {
            cx.warn(format!(
                "{path}: `{k}` is not supported by berth and is ignored"
            ));
        }
    }
    let (ctx_pos, context) = match o.get("context") {
        Some((c, cp)) => (c.pos, cx.string(c, &cp)?),
        None => (n.pos, ".".to_string()),
    };
    let dockerfile = o.string(cx, "dockerfile")?;
    let dockerfile_inline = o.string(cx, "dockerfile_inline")?;
    if dockerfile.is_some() && dockerfile_inline.is_some() {
        return Err(inconsistent(
            cx,
            n.pos,
            path,
            "dockerfile and dockerfile_inline are mutually exclusive".into(),
        ));
    }
    let mut args = BTreeMap::new();
    if let Some((a, ap)) = o.get("args") {
        for (k, v, _) in cx.dict(a, &ap)? {
            if let Some(v) = v.or_else(|| cx.env.get(&k).cloned()) {
                args.insert(k, v);
            }
        }
    }
    Ok(Build {
        context: context_path(cx, ctx_pos, &context),
        dockerfile: dockerfile.or_else(|| dockerfile_inline.is_none().then(|| "Dockerfile".into())),
        dockerfile_inline,
        args,
        target: o.string(cx, "target")?,
        cache_from: o.strings(cx, "cache_from")?,
        labels: o.labels(cx, "labels")?,
        secrets: refs(cx, &o, "secrets")?,
        network: o.string(cx, "network")?,
        entitlements: o.strings(cx, "entitlements")?,
        tags: o.strings(cx, "tags")?,
        no_cache: o.flag(cx, "no_cache")?,
        pull: o.flag(cx, "pull")?,
    })
}

fn context_path(cx: &Cx, pos: Pos, context: &str) -> String {
    if is_remote_context(context) {
        context.to_string()
    } else {
        cx.resolve_path(pos, context)
    }
}

/// `healthcheck:`; a string test is `CMD-SHELL`.
pub(crate) fn healthcheck(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Healthcheck> {
    let o = cx.obj(
        n,
        path,
        &[
            "disable",
            "interval",
            "retries",
            "test",
            "timeout",
            "start_period",
            "start_interval",
        ],
    )?;
    let test = match o.get("test") {
        None => Vec::new(),
        Some((t, tp)) => match &t.value {
            Value::Seq(_) => {
                let test = cx.strings(t, &tp)?;
                if let Some(first) = test.first() {
                    if !matches!(first.as_str(), "CMD" | "CMD-SHELL" | "NONE") {
                        return Err(cx.invalid(
                            t.pos,
                            &tp,
                            "healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\"",
                        ));
                    }
                }
                test
            }
            _ => vec!["CMD-SHELL".into(), cx.string(t, &tp)?],
        },
    };
    Ok(Healthcheck {
        test,
        interval: o.duration(cx, "interval")?,
        timeout: o.duration(cx, "timeout")?,
        start_period: o.duration(cx, "start_period")?,
        start_interval: o.duration(cx, "start_interval")?,
        retries: o.opt("retries", |n, p| cx.int_in(n, p))?,
        disable: o.flag(cx, "disable")?,
    })
}

/// `deploy:`; the swarm-only keys are accepted and left out.
pub(crate) fn deploy(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Deploy> {
    let o = cx.obj(
        n,
        path,
        &[
            "mode",
            "endpoint_mode",
            "replicas",
            "labels",
            "rollback_config",
            "update_config",
            "resources",
            "restart_policy",
            "placement",
        ],
    )?;
    let resources = o.opt("resources", |n, p| {
        let r = cx.obj(n, p, &["limits", "reservations"])?;
        Ok(Resources {
            limits: r.opt("limits", |n, p| {
                limits(cx, n, p, &["cpus", "memory", "pids"])
            })?,
            reservations: r.opt("reservations", |n, p| {
                limits(
                    cx,
                    n,
                    p,
                    &["cpus", "memory", "pids", "generic_resources", "devices"],
                )
            })?,
        })
    })?;
    let restart_policy = o.opt("restart_policy", |n, p| {
        let r = cx.obj(n, p, &["condition", "delay", "max_attempts", "window"])?;
        let condition = r.string(cx, "condition")?;
        if let Some(c) = &condition {
            if !matches!(c.as_str(), "none" | "on-failure" | "any") {
                let (cn, cp) = r.get("condition").unwrap_or((n, p.clone()));
                return Err(cx.invalid(
                    cn.pos,
                    &cp,
                    format!("invalid condition {c:?}: must be none, on-failure or any"),
                ));
            }
        }
        Ok(RestartPolicy {
            condition,
            delay: r.duration(cx, "delay")?,
            max_attempts: r.opt("max_attempts", |n, p| cx.int_in(n, p))?,
            window: r.duration(cx, "window")?,
        })
    })?;
    Ok(Deploy {
        replicas: o.opt("replicas", |n, p| cx.int_in(n, p))?,
        resources,
        restart_policy,
        labels: o.labels(cx, "labels")?,
    })
}

fn limits(cx: &Cx, n: &Node, path: &KeyPath, allowed: &[&str]) -> Result<Limits> {
    let o = cx.obj(n, path, allowed)?;
    Ok(Limits {
        cpus: o.opt("cpus", |n, p| cx.float(n, p))?,
        memory: o.opt("memory", |n, p| cx.bytes(n, p))?,
        pids: o.opt("pids", |n, p| cx.int(n, p))?,
    })
}

/// `ulimits:` (`nofile: 1024` sets both limits).
pub(crate) fn ulimits(cx: &Cx, n: &Node, path: &KeyPath) -> Result<BTreeMap<String, Ulimit>> {
    let mut out = BTreeMap::new();
    for e in &cx.map(n, path)?.entries {
        let p = path.key(&e.key);
        let limit = match &e.value.value {
            Value::Map(_) => {
                let l = cx.obj(&e.value, &p, &["soft", "hard"])?;
                let get = |k: &str| {
                    l.opt(k, |n, p| cx.int(n, p))?
                        .ok_or_else(|| cx.invalid(e.value.pos, &p, format!("{k} is required")))
                };
                Ulimit {
                    soft: get("soft")?,
                    hard: get("hard")?,
                }
            }
            _ => {
                let v = cx.int(&e.value, &p)?;
                Ulimit { soft: v, hard: v }
            }
        };
        out.insert(e.key.clone(), limit);
    }
    Ok(out)
}

/// `blkio_config:` with its weight, weights per device and throttles per
/// device (`{path, rate}`: a size for the bps ones, a number for iops).
pub(crate) fn blkio_config(cx: &Cx, n: &Node, path: &KeyPath) -> Result<BlkioConfig> {
    let keys = [
        "weight",
        "weight_device",
        "device_read_bps",
        "device_write_bps",
        "device_read_iops",
        "device_write_iops",
    ];
    let o = cx.obj(n, path, &keys)?;
    let devices = |key: &str, value: &str| -> Result<Vec<(String, Node, KeyPath)>> {
        let Some((list, lp)) = o.get(key) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
            let ip = lp.index(i);
            let d = cx.obj(item, &ip, &["path", value])?;
            let p = d
                .string(cx, "path")?
                .ok_or_else(|| cx.invalid(item.pos, &ip, "path is required"))?;
            let (v, vp) = d
                .get(value)
                .ok_or_else(|| cx.invalid(item.pos, &ip, format!("{value} is required")))?;
            out.push((p, v.clone(), vp));
        }
        Ok(out)
    };
    let rates = |key: &str| -> Result<Vec<BlkioRate>> {
        devices(key, "rate")?
            .into_iter()
            .map(|(path, n, p)| {
                Ok(BlkioRate {
                    path,
                    rate: cx.bytes(&n, &p)?,
                })
            })
            .collect()
    };
    Ok(BlkioConfig {
        weight: o.opt("weight", |n, p| cx.int_in::<u16>(n, p))?,
        weight_device: devices("weight_device", "weight")?
            .into_iter()
            .map(|(path, n, p)| {
                Ok(BlkioWeightDevice {
                    path,
                    weight: cx.int_in::<u16>(&n, &p)?,
                })
            })
            .collect::<Result<_>>()?,
        device_read_bps: rates("device_read_bps")?,
        device_write_bps: rates("device_write_bps")?,
        device_read_iops: rates("device_read_iops")?,
        device_write_iops: rates("device_write_iops")?,
    })
}

/// `extra_hosts:` as `host:ip` (`host=ip` and the map form accepted).
pub(crate) fn extra_hosts(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match &n.value {
        Value::Map(m) => {
            for e in &m.entries {
                let p = path.key(&e.key);
                for ip in cx.string_or_list(&e.value, &p)? {
                    out.push(format!("{}:{ip}", e.key));
                }
            }
        }
        _ => {
            for (i, h) in cx.strings(n, path)?.into_iter().enumerate() {
                let entry = match h.split_once('=') {
                    Some((host, ip)) => format!("{host}:{ip}"),
                    None if h.contains(':') => h,
                    None => {
                        let item = cx.list(n, path)?.get(i).unwrap_or(n);
                        return Err(cx.invalid(
                            item.pos,
                            &path.index(i),
                            format!("invalid extra host {h:?}: expected host:ip"),
                        ));
                    }
                };
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    Ok(out)
}

/// `logging:`.
pub(crate) fn logging(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Logging> {
    let o = cx.obj(n, path, &["driver", "options"])?;
    let mut options = BTreeMap::new();
    if let Some((opts, op)) = o.get("options") {
        for (k, v, _) in cx.dict(opts, &op)? {
            if let Some(v) = v {
                options.insert(k, v);
            }
        }
    }
    Ok(Logging {
        driver: o.string(cx, "driver")?,
        options,
    })
}

/// `develop:` (`watch` rules, paths made absolute).
pub(crate) fn develop(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Develop> {
    let o = cx.obj(n, path, &["watch"])?;
    let mut watch = Vec::new();
    if let Some((list, lp)) = o.get("watch") {
        for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
            let ip = lp.index(i);
            let w = cx.obj(
                item,
                &ip,
                &[
                    "ignore",
                    "include",
                    "path",
                    "action",
                    "target",
                    "exec",
                    "initial_sync",
                ],
            )?;
            for k in ["include", "exec", "initial_sync"] {
                if w.has(k) {
                    cx.warn(format!(
                        "{ip}: `{k}` is not supported by berth and is ignored"
                    ));
                }
            }
            let action = w
                .string(cx, "action")?
                .ok_or_else(|| cx.invalid(item.pos, &ip, "action is required"))?;
            if !matches!(
                action.as_str(),
                "rebuild" | "sync" | "sync+restart" | "restart" | "sync+exec"
            ) {
                let (an, ap) = w.get("action").unwrap_or((item, ip.clone()));
                return Err(cx.invalid(an.pos, &ap, format!("invalid watch action {action:?}")));
            }
            let (pn, pp) = w
                .get("path")
                .ok_or_else(|| cx.invalid(item.pos, &ip, "path is required"))?;
            let target = w.string(cx, "target")?;
            if target.is_none() && action != "rebuild" && action != "restart" {
                return Err(inconsistent(
                    cx,
                    item.pos,
                    &ip,
                    "target is required for non-rebuild actions".into(),
                ));
            }
            watch.push(WatchRule {
                path: cx.resolve_path(pn.pos, &cx.string(pn, &pp)?),
                action,
                target,
                ignore: w.string_or_list(cx, "ignore")?,
            });
        }
    }
    Ok(Develop { watch })
}

/// `devices:` as `host[:container[:permissions]]`.
pub(crate) fn devices(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, item) in cx.list(n, path)?.iter().enumerate() {
        let ip = path.index(i);
        let d = match &item.value {
            Value::Map(_) => {
                let o = cx.obj(item, &ip, &["source", "target", "permissions"])?;
                let source = o
                    .string(cx, "source")?
                    .ok_or_else(|| cx.invalid(item.pos, &ip, "source is required"))?;
                let target = o.string(cx, "target")?.unwrap_or_else(|| source.clone());
                match o.string(cx, "permissions")? {
                    Some(perm) => format!("{source}:{target}:{perm}"),
                    None => format!("{source}:{target}"),
                }
            }
            _ => cx.string(item, &ip)?,
        };
        out.push(d);
    }
    Ok(out)
}

fn file_ref(cx: &Cx, item: &Node, ip: &KeyPath) -> Result<FileReference> {
    match &item.value {
        Value::Map(_) => {
            let o = cx.obj(item, ip, &["source", "target", "uid", "gid", "mode"])?;
            Ok(FileReference {
                source: o
                    .string(cx, "source")?
                    .ok_or_else(|| cx.invalid(item.pos, ip, "source is required"))?,
                target: o.string(cx, "target")?,
                uid: o.string(cx, "uid")?,
                gid: o.string(cx, "gid")?,
                mode: o.opt("mode", |n, p| super::volumes::file_mode(cx, n, p))?,
            })
        }
        _ => Ok(FileReference {
            source: cx.string(item, ip)?,
            ..FileReference::default()
        }),
    }
}

fn refs(cx: &Cx, o: &Obj, key: &str) -> Result<Vec<FileReference>> {
    let Some((list, lp)) = o.get(key) else {
        return Ok(Vec::new());
    };
    cx.list(list, &lp)?
        .iter()
        .enumerate()
        .map(|(i, item)| file_ref(cx, item, &lp.index(i)))
        .collect()
}

/// A service's `secrets`/`configs`; with `defined`, each source must be
/// one of them.
pub(crate) fn file_refs(
    cx: &Cx,
    o: &Obj,
    key: &str,
    service: &str,
    defined: Option<&BTreeSet<String>>,
) -> Result<Vec<FileReference>> {
    let Some((list, lp)) = o.get(key) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
        let ip = lp.index(i);
        let r = file_ref(cx, item, &ip)?;
        if let Some(defined) = defined {
            if !defined.contains(&r.source) {
                let kind = key.trim_end_matches('s');
                return Err(inconsistent(
                    cx,
                    item.pos,
                    &ip,
                    format!(
                        "service {service:?} refers to undefined {kind} {}",
                        r.source
                    ),
                ));
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// A service's `networks` (list or map), with where each is written.
pub(crate) fn service_networks(
    cx: &Cx,
    n: &Node,
    path: &KeyPath,
) -> Result<Vec<(String, Pos, ServiceNetwork)>> {
    match &n.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                Ok((
                    cx.string(it, &path.index(i))?,
                    it.pos,
                    ServiceNetwork::default(),
                ))
            })
            .collect(),
        Value::Map(m) => m
            .entries
            .iter()
            .map(|e| {
                let p = path.key(&e.key);
                let cfg = if e.value.is_null() {
                    ServiceNetwork::default()
                } else {
                    let o = cx.obj(
                        &e.value,
                        &p,
                        &[
                            "aliases",
                            "interface_name",
                            "ipv4_address",
                            "ipv6_address",
                            "link_local_ips",
                            "mac_address",
                            "driver_opts",
                            "priority",
                            "gw_priority",
                        ],
                    )?;
                    ServiceNetwork {
                        aliases: o.strings(cx, "aliases")?,
                        ipv4_address: o.string(cx, "ipv4_address")?,
                        ipv6_address: o.string(cx, "ipv6_address")?,
                        priority: o.opt("priority", |n, p| cx.int(n, p))?,
                    }
                };
                Ok((e.key.clone(), e.key_pos, cfg))
            })
            .collect(),
        _ => Err(cx.invalid(
            n.pos,
            path,
            format!("expected a list or a mapping, got {}", n.kind()),
        )),
    }
}

/// `depends_on:` (a list means `service_started`, required).
pub(crate) fn depends_on(cx: &Cx, o: &Obj) -> Result<BTreeMap<String, Dependency>> {
    let mut out = BTreeMap::new();
    let Some((n, path)) = o.get("depends_on") else {
        return Ok(out);
    };
    match &n.value {
        Value::Map(m) => {
            for e in &m.entries {
                let p = path.key(&e.key);
                let mut d = Dependency::default();
                if !e.value.is_null() {
                    let dep = cx.obj(&e.value, &p, &["condition", "restart", "required"])?;
                    if let Some(c) = dep.string(cx, "condition")? {
                        if !matches!(
                            c.as_str(),
                            "service_started"
                                | "service_healthy"
                                | "service_completed_successfully"
                        ) {
                            let (cn, cp) = dep.get("condition").unwrap_or((&e.value, p.clone()));
                            return Err(cx.invalid(
                                cn.pos,
                                &cp,
                                format!("invalid condition {c:?}: must be service_started, service_healthy or service_completed_successfully"),
                            ));
                        }
                        d.condition = c;
                    }
                    d.restart = dep.flag(cx, "restart")?;
                    d.required = dep.boolean(cx, "required")?.unwrap_or(true);
                }
                out.insert(e.key.clone(), d);
            }
        }
        _ => {
            for name in cx.strings(n, &path)? {
                out.insert(name, Dependency::default());
            }
        }
    }
    Ok(out)
}
