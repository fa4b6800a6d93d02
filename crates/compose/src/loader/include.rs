//! Top-level `include:`: other Compose projects loaded on their own (their
//! own project directory and `.env`) and their services, networks,
//! volumes, secrets and configs imported. A service defined on both sides
//! is an error; another resource must then be defined identically.
use std::path::{Path, PathBuf};

use super::files::{Env, Reader};
use super::typed::{invalid, Result};
use super::yaml::{KeyPath, Map, Node, Value};

struct Include {
    paths: Vec<PathBuf>,
    project_directory: Option<PathBuf>,
    env_files: Vec<PathBuf>,
}

/// Resolve `top`'s `include` and import what it brings into `top`.
/// `chain` holds the files being included, to refuse cycles.
pub(crate) fn apply(
    r: &mut Reader,
    top: &mut Map,
    env: &Env,
    chain: &mut Vec<PathBuf>,
) -> Result<()> {
    let Some(entry) = top.remove("include") else {
        return Ok(());
    };
    let path = KeyPath::of(&["include"]);
    let items = match &entry.value.value {
        Value::Seq(items) => items,
        Value::Null => return Ok(()),
        _ => {
            return Err(invalid(
                &r.sources,
                entry.value.pos,
                &path,
                format!("expected a list, got {}", entry.value.kind()),
            ))
        }
    };
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let inc = parse_entry(r, item, &ip)?;
        let Some(first) = inc.paths.first() else {
            return Err(invalid(&r.sources, item.pos, &ip, "path is required"));
        };
        let project_dir = inc.project_directory.clone().unwrap_or_else(|| {
            first
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"))
        });
        if chain.contains(first) {
            let mut names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            names.push(first.display().to_string());
            return Err(invalid(
                &r.sources,
                item.pos,
                &ip,
                format!("include cycle detected: {}", names.join(" -> ")),
            ));
        }
        let mut inc_env = env.clone();
        let env_files = if inc.env_files.is_empty() {
            let dotenv = project_dir.join(".env");
            if dotenv.is_file() {
                vec![dotenv]
            } else {
                Vec::new()
            }
        } else {
            inc.env_files.clone()
        };
        r.read_env_files(&env_files, &mut inc_env)?;

        let mut parsed = Vec::new();
        for p in &inc.paths {
            parsed.push(r.parse_file(p, &project_dir)?);
        }
        let imported = r.merge_files(parsed, &inc_env, chain)?;
        import(r, top, imported, item, &ip)?;
    }
    Ok(())
}

/// A remote resource (`oci://…`, a git URL, `https://…`): docker compose
/// fetches those; berth reads local files only.
pub(super) fn is_remote(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@")
}

/// Why a remote resource is refused, and what to do.
pub(super) fn remote_refused(s: &str) -> String {
    format!("{s:?} is a remote resource: berth reads local files only; download it and name it by its path")
}

fn parse_entry(r: &Reader, item: &Node, path: &KeyPath) -> Result<Include> {
    let base = r.sources.get(item.pos.source).base_dir.clone();
    let strings = |n: &Node, p: &KeyPath| -> Result<Vec<String>> {
        let v: Vec<String> = match &n.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.scalar_text().ok_or_else(|| {
                        invalid(
                            &r.sources,
                            s.pos,
                            &p.index(i),
                            format!("expected a string, got {}", s.kind()),
                        )
                    })
                })
                .collect::<Result<_>>()?,
            _ => n.scalar_text().map(|s| vec![s]).ok_or_else(|| {
                invalid(
                    &r.sources,
                    n.pos,
                    p,
                    format!("expected a string or a list, got {}", n.kind()),
                )
            })?,
        };
        if let Some(remote) = v.iter().find(|s| is_remote(s)) {
            return Err(invalid(&r.sources, n.pos, p, remote_refused(remote)));
        }
        Ok(v)
    };
    let resolve =
        |v: Vec<String>| -> Vec<PathBuf> { v.iter().map(|s| r.resolve(&base, s)).collect() };
    match &item.value {
        Value::Map(m) => {
            for e in &m.entries {
                if !["path", "project_directory", "env_file"].contains(&e.key.as_str())
                    && !e.key.starts_with("x-")
                {
                    return Err(invalid(
                        &r.sources,
                        e.key_pos,
                        path,
                        format!("additional property {} is not allowed", e.key),
                    ));
                }
            }
            let get = |k: &str| m.get(k).filter(|n| !n.is_null());
            let paths = match get("path") {
                Some(n) => resolve(strings(n, &path.key("path"))?),
                None => Vec::new(),
            };
            let project_directory = match get("project_directory") {
                Some(n) => {
                    let v = strings(n, &path.key("project_directory"))?;
                    resolve(v).into_iter().next()
                }
                None => None,
            };
            let env_files = match get("env_file") {
                Some(n) => resolve(strings(n, &path.key("env_file"))?),
                None => Vec::new(),
            };
            Ok(Include {
                paths,
                project_directory,
                env_files,
            })
        }
        _ => Ok(Include {
            paths: resolve(strings(item, path)?),
            project_directory: None,
            env_files: Vec::new(),
        }),
    }
}

fn import(r: &Reader, top: &mut Map, imported: Node, item: &Node, path: &KeyPath) -> Result<()> {
    let Value::Map(mut imported) = imported.value else {
        return Ok(());
    };
    for kind in ["services", "networks", "volumes", "secrets", "configs"] {
        let Some(from) = imported.remove(kind) else {
            continue;
        };
        let Value::Map(from) = from.value.value else {
            continue;
        };
        if top.get(kind).is_none_or(Node::is_null) {
            top.insert(
                kind.into(),
                item.pos,
                Node::new(Value::Map(Map::default()), item.pos),
            );
        }
        let Some(to) = top.get_mut(kind).and_then(Node::as_map_mut) else {
            // The including file's own value is of the wrong kind; the
            // typed stage reports it.
            continue;
        };
        for e in from.entries {
            match to.get(&e.key) {
                Some(existing) if kind == "services" || !existing.same(&e.value) => {
                    return Err(invalid(
                        &r.sources,
                        item.pos,
                        path,
                        format!("{kind}.{} conflicts with imported resource", e.key),
                    ));
                }
                Some(_) => {}
                None => to.insert(e.key, e.key_pos, e.value),
            }
        }
    }
    Ok(())
}
