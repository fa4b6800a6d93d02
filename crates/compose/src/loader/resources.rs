//! The top-level `networks`, `volumes`, `secrets` and `configs`. A network
//! or volume is named `name:` when given, its key when external, else
//! `<project>_<key>`.
use std::collections::BTreeMap;

use super::typed::{Cx, Obj, Result};
use super::yaml::{KeyPath, Node, Value};
use crate::model::{FileObject, Ipam, IpamPool, Network, Volume};

/// Each entry of a top-level mapping (null entries are defaults).
fn entries<'n, T>(
    cx: &Cx,
    n: &'n Node,
    path: &KeyPath,
    mut each: impl FnMut(&str, Option<(&'n Node, KeyPath)>) -> Result<T>,
) -> Result<BTreeMap<String, T>> {
    let Value::Map(m) = &n.value else {
        return Err(cx.invalid(n.pos, path, format!("expected a mapping, got {}", n.kind())));
    };
    let mut out = BTreeMap::new();
    for e in &m.entries {
        let p = path.key(&e.key);
        let v = (!e.value.is_null()).then_some((&e.value, p));
        out.insert(e.key.clone(), each(&e.key, v)?);
    }
    Ok(out)
}

/// `external: true`, or the legacy `external: {name: x}` (which also names it).
fn external(cx: &Cx, o: &Obj) -> Result<(bool, Option<String>)> {
    match o.get("external") {
        None => Ok((false, None)),
        Some((n, p)) => match &n.value {
            Value::Map(_) => {
                let e = cx.obj(n, &p, &["name"])?;
                cx.warn(format!(
                    "{p}: `external.name` is deprecated, use `name` instead"
                ));
                Ok((true, e.string(cx, "name")?))
            }
            _ => Ok((cx.boolean(n, &p)?, None)),
        },
    }
}

fn engine_name(project: &str, key: &str, name: Option<String>, external: bool) -> String {
    match name {
        Some(n) => n,
        None if external => key.to_string(),
        None => format!("{project}_{key}"),
    }
}

fn options(cx: &Cx, o: &Obj, key: &str) -> Result<BTreeMap<String, String>> {
    Ok(o.opt(key, |n, p| cx.dict(n, p))?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v, _)| v.map(|v| (k, v)))
        .collect())
}

pub(crate) fn networks(
    cx: &Cx,
    n: &Node,
    path: &KeyPath,
    project: &str,
) -> Result<BTreeMap<String, Network>> {
    entries(cx, n, path, |key, v| {
        let Some((n, p)) = v else {
            return Ok(Network {
                name: engine_name(project, key, None, false),
                ..Network::default()
            });
        };
        let o = cx.obj(
            n,
            &p,
            &[
                "name",
                "driver",
                "driver_opts",
                "ipam",
                "external",
                "internal",
                "enable_ipv4",
                "enable_ipv6",
                "attachable",
                "labels",
            ],
        )?;
        let (external, legacy_name) = external(cx, &o)?;
        let name = o.string(cx, "name")?.or(legacy_name);
        Ok(Network {
            name: engine_name(project, key, name, external),
            driver: o.string(cx, "driver")?,
            driver_opts: options(cx, &o, "driver_opts")?,
            ipam: o.opt("ipam", |n, p| ipam(cx, n, p))?,
            internal: o.flag(cx, "internal")?,
            external,
            attachable: o.flag(cx, "attachable")?,
            enable_ipv6: o.flag(cx, "enable_ipv6")?,
            labels: o.labels(cx, "labels")?,
            extensions: o.extensions(),
        })
    })
}

fn ipam(cx: &Cx, n: &Node, path: &KeyPath) -> Result<Ipam> {
    let o = cx.obj(n, path, &["driver", "config", "options"])?;
    let mut config = Vec::new();
    if let Some((list, lp)) = o.get("config") {
        for (i, item) in cx.list(list, &lp)?.iter().enumerate() {
            let c = cx.obj(
                item,
                &lp.index(i),
                &["subnet", "ip_range", "gateway", "aux_addresses"],
            )?;
            config.push(IpamPool {
                subnet: c.string(cx, "subnet")?,
                ip_range: c.string(cx, "ip_range")?,
                gateway: c.string(cx, "gateway")?,
            });
        }
    }
    Ok(Ipam {
        driver: o.string(cx, "driver")?,
        config,
    })
}

pub(crate) fn volumes(
    cx: &Cx,
    n: &Node,
    path: &KeyPath,
    project: &str,
) -> Result<BTreeMap<String, Volume>> {
    entries(cx, n, path, |key, v| {
        let Some((n, p)) = v else {
            return Ok(Volume {
                name: engine_name(project, key, None, false),
                ..Volume::default()
            });
        };
        let o = cx.obj(
            n,
            &p,
            &["name", "driver", "driver_opts", "external", "labels"],
        )?;
        let (external, legacy_name) = external(cx, &o)?;
        let name = o.string(cx, "name")?.or(legacy_name);
        Ok(Volume {
            name: engine_name(project, key, name, external),
            driver: o.string(cx, "driver")?,
            driver_opts: options(cx, &o, "driver_opts")?,
            external,
            labels: o.labels(cx, "labels")?,
            extensions: o.extensions(),
        })
    })
}

/// Top-level `secrets` (`configs` when `configs` is true: `content` allowed).
pub(crate) fn file_objects(
    cx: &Cx,
    n: &Node,
    path: &KeyPath,
    configs: bool,
) -> Result<BTreeMap<String, FileObject>> {
    let allowed: &[&str] = if configs {
        &[
            "name",
            "content",
            "environment",
            "file",
            "external",
            "labels",
            "template_driver",
        ]
    } else {
        &[
            "name",
            "environment",
            "file",
            "external",
            "labels",
            "driver",
            "driver_opts",
            "template_driver",
        ]
    };
    let kind = if configs { "config" } else { "secret" };
    entries(cx, n, path, |key, v| {
        let Some((n, p)) = v else {
            return Err(cx.invalid(
                n.pos,
                &path.key(key),
                format!("{kind} {key:?} has no definition"),
            ));
        };
        let o = cx.obj(n, &p, allowed)?;
        let (external, legacy_name) = external(cx, &o)?;
        let file = o.opt("file", |f, fp| {
            Ok(cx.resolve_path(f.pos, &cx.string(f, fp)?))
        })?;
        let obj = FileObject {
            file,
            environment: o.string(cx, "environment")?,
            content: o.string(cx, "content")?,
            external,
            name: o.string(cx, "name")?.or(legacy_name),
            extensions: o.extensions(),
        };
        if obj.file.is_none() && obj.environment.is_none() && obj.content.is_none() && !obj.external
        {
            let what = if configs {
                "`file`, `environment`, `content` or `external`"
            } else {
                "`file`, `environment` or `external`"
            };
            return Err(cx.invalid(
                n.pos,
                &p,
                format!("{kind} {key:?} must declare one of {what}"),
            ));
        }
        Ok(obj)
    })
}
