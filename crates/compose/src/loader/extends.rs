//! `extends:` (`extends: base` or `extends: {service, file}`): a service
//! built on another one of the same file or of another file, with the
//! merge rules of [`merge`](super::merge). Resolved within each file after
//! its `include`, recursively, refusing cycles. The other file's relative
//! paths stay relative to its own directory.
use std::path::{Path, PathBuf};

use super::files::{Env, Reader};
use super::merge;
use super::typed::{invalid, Result};
use super::yaml::{KeyPath, Map, Node, Value};

/// Resolve the `extends` of every service of `top`.
pub(crate) fn apply(r: &mut Reader, top: &mut Map, env: &Env) -> Result<()> {
    let Some(services) = top.get("services").and_then(Node::as_map) else {
        return Ok(());
    };
    let original = services.clone();
    let mut resolved = Vec::new();
    for e in &original.entries {
        if e.value.as_map().is_some_and(|m| m.get("extends").is_some()) {
            let node = resolve(r, &original, &e.key, env, &mut Vec::new())?;
            resolved.push((e.key.clone(), node));
        }
    }
    if let Some(services) = top.get_mut("services").and_then(Node::as_map_mut) {
        for (name, node) in resolved {
            if let Some(slot) = services.get_mut(&name) {
                *slot = node;
            }
        }
    }
    Ok(())
}

/// Service `name` of `services` with its `extends` applied. `chain` holds
/// the `(file, service, file as displayed)` being resolved.
fn resolve(
    r: &mut Reader,
    services: &Map,
    name: &str,
    env: &Env,
    chain: &mut Vec<(PathBuf, String, String)>,
) -> Result<Node> {
    let Some(node) = services.get(name) else {
        return Ok(Node::new(Value::Null, Default::default()));
    };
    let Some(svc) = node.as_map() else {
        return Ok(node.clone());
    };
    let Some(ext) = svc.get("extends").filter(|n| !n.is_null()) else {
        return Ok(node.clone());
    };
    let path = KeyPath::of(&["services", name, "extends"]);
    let (base_name, file) = target(r, ext, &path)?;
    let here = r.sources.get(ext.pos.source).clone();
    let key = (here.path.clone(), name.to_string(), here.display.clone());
    if chain.iter().any(|(f, s, _)| *f == key.0 && *s == key.1) {
        let mut steps: Vec<String> = chain
            .iter()
            .map(|(_, s, f)| format!("{s} in {f}"))
            .collect();
        steps.push(format!("{name} in {}", here.display));
        return Err(invalid(
            &r.sources,
            ext.pos,
            &path,
            format!("circular reference: {}", steps.join(" extends ")),
        ));
    }
    chain.push(key);
    let base = match file {
        Some(file) => {
            let other = r.resolve(&here.base_dir, &file);
            let dir = other
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            let (id, mut doc) = r.parse_file(&other, &dir)?;
            r.interpolate(&mut doc, &KeyPath::root(), env)?;
            let other_display = r.sources.get(id).display.clone();
            let Some(other_services) = doc
                .as_map()
                .and_then(|m| m.get("services"))
                .and_then(Node::as_map)
            else {
                return Err(invalid(
                    &r.sources,
                    ext.pos,
                    &path,
                    format!(
                        "cannot extend service {name:?} in {}: no services section in {other_display}",
                        here.display
                    ),
                ));
            };
            if other_services.get(&base_name).is_none() {
                return Err(invalid(
                    &r.sources,
                    ext.pos,
                    &path,
                    format!(
                        "cannot extend service {name:?} in {}: service {base_name:?} not found in {other_display}",
                        here.display
                    ),
                ));
            }
            let other_services = other_services.clone();
            resolve(r, &other_services, &base_name, env, chain)?
        }
        None => {
            if services.get(&base_name).is_none() {
                return Err(invalid(
                    &r.sources,
                    ext.pos,
                    &path,
                    format!(
                        "cannot extend service {name:?} in {}: service {base_name:?} not found",
                        here.display
                    ),
                ));
            }
            resolve(r, services, &base_name, env, chain)?
        }
    };
    chain.pop();
    let mut own = node.clone();
    if let Some(m) = own.as_map_mut() {
        m.remove("extends");
    }
    if base.is_null() {
        merge::drop_resets(&mut own);
        return Ok(own);
    }
    let mut base = base;
    if let Some(m) = base.as_map_mut() {
        m.remove("extends");
    }
    merge::merge(&r.sources, base, own, &KeyPath::of(&["services", name]))
}

/// `(service, file)` of an `extends` value.
fn target(r: &Reader, ext: &Node, path: &KeyPath) -> Result<(String, Option<String>)> {
    match &ext.value {
        Value::Map(m) => {
            for e in &m.entries {
                if e.key != "service" && e.key != "file" {
                    return Err(invalid(
                        &r.sources,
                        e.key_pos,
                        path,
                        format!("additional property {} is not allowed", e.key),
                    ));
                }
            }
            let service = m
                .get("service")
                .and_then(Node::scalar_text)
                .ok_or_else(|| invalid(&r.sources, ext.pos, path, "service is required"))?;
            let file = m.get("file").and_then(Node::scalar_text);
            if let Some(f) = file.as_deref().filter(|f| super::include::is_remote(f)) {
                return Err(invalid(
                    &r.sources,
                    ext.pos,
                    &path.key("file"),
                    super::include::remote_refused(f),
                ));
            }
            Ok((service, file))
        }
        _ => ext.scalar_text().map(|s| (s, None)).ok_or_else(|| {
            invalid(
                &r.sources,
                ext.pos,
                path,
                format!("expected a string or a mapping, got {}", ext.kind()),
            )
        }),
    }
}
