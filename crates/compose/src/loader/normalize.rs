//! The merged tree into a [`Project`]: top-level keys checked, top-level
//! objects and services typed, services split by the active profiles,
//! the implicit `default` network added, dependency cycles refused.
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::files::{Env, Reader};
use super::resources;
use super::service::{self, inconsistent, Scope};
use super::typed::{Cx, Result};
use super::yaml::{KeyPath, Node, Pos, Value};
use crate::model::{Network, Project, Service};

/// What the project is loaded with besides the tree.
pub(crate) struct Settings<'a> {
    pub name: String,
    pub env: &'a Env,
    pub profiles: &'a [String],
}

const TOP_KEYS: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs", "models",
];

/// Whether a service with `profiles` is enabled by the `active` ones.
fn enabled_by(profiles: &[String], active: &[String]) -> bool {
    profiles.is_empty() || active.iter().any(|a| a == "*" || profiles.contains(a))
}

fn names<T>(m: &BTreeMap<String, T>) -> BTreeSet<String> {
    m.keys().cloned().collect()
}

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(crate) fn project(r: &mut Reader, model: &Node, settings: Settings) -> Result<Project> {
    let cx = Cx {
        sources: &r.sources,
        env: settings.env,
        home: r.home.clone(),
        warnings: RefCell::new(Vec::new()),
    };
    let name = settings.name;
    let top = cx.obj(model, &KeyPath::root(), TOP_KEYS)?;
    if top.has("models") {
        cx.warn("`models` is not supported by berth and is ignored".into());
    }
    let mut networks = top
        .opt("networks", |n, p| resources::networks(&cx, n, p, &name))?
        .unwrap_or_default();
    let volumes = top
        .opt("volumes", |n, p| resources::volumes(&cx, n, p, &name))?
        .unwrap_or_default();
    let secrets = top
        .opt("secrets", |n, p| resources::file_objects(&cx, n, p, false))?
        .unwrap_or_default();
    let configs = top
        .opt("configs", |n, p| resources::file_objects(&cx, n, p, true))?
        .unwrap_or_default();

    let entries = match top.get("services") {
        None => Vec::new(),
        Some((n, p)) => match &n.value {
            Value::Map(m) => m.entries.iter().map(|e| (e, p.key(&e.key))).collect(),
            _ => {
                return Err(cx.invalid(n.pos, &p, format!("expected a mapping, got {}", n.kind())))
            }
        },
    };
    let mut all = BTreeSet::new();
    let mut enabled = BTreeSet::new();
    for (e, p) in &entries {
        if !valid_service_name(&e.key) {
            return Err(cx.invalid(
                e.key_pos,
                p,
                "invalid service name: use only letters, digits, '.', '_' and '-'",
            ));
        }
        all.insert(e.key.clone());
        let profiles = match e.value.as_map().and_then(|m| m.get("profiles")) {
            Some(n) if !n.is_null() => cx.strings(n, &p.key("profiles"))?,
            _ => Vec::new(),
        };
        if enabled_by(&profiles, settings.profiles) {
            enabled.insert(e.key.clone());
        }
    }
    let (volume_names, network_names) = (names(&volumes), names(&networks));
    let (secret_names, config_names) = (names(&secrets), names(&configs));
    let mut services = BTreeMap::new();
    let mut disabled = BTreeMap::new();
    for (e, p) in &entries {
        let scope = Scope {
            enabled: enabled.contains(&e.key),
            enabled_services: &enabled,
            all_services: &all,
            volumes: &volume_names,
            networks: &network_names,
            secrets: &secret_names,
            configs: &config_names,
        };
        let s = service::service(&cx, &e.value, p, &e.key, &scope)?;
        if scope.enabled {
            services.insert(e.key.clone(), s);
        } else {
            disabled.insert(e.key.clone(), s);
        }
    }

    let uses_default = services
        .values()
        .chain(disabled.values())
        .any(|s: &Service| s.networks.contains_key("default"));
    if uses_default && !networks.contains_key("default") {
        networks.insert(
            "default".into(),
            Network {
                name: format!("{name}_default"),
                ..Network::default()
            },
        );
    }

    if let Some(cycle) = dependency_cycle(&services) {
        let first = &cycle[0];
        let (pos, path) = entries
            .iter()
            .find(|(e, _)| e.key == *first)
            .map(
                |(e, p)| match e.value.as_map().and_then(|m| m.entry("depends_on")) {
                    Some(d) => (d.key_pos, p.key("depends_on")),
                    None => (e.key_pos, p.clone()),
                },
            )
            .unwrap_or((Pos::default(), KeyPath::root()));
        return Err(inconsistent(
            &cx,
            pos,
            &path,
            format!("dependency cycle detected: {}", cycle.join(" -> ")),
        ));
    }

    let warnings = cx.warnings.into_inner();
    for w in warnings {
        r.warn(w);
    }
    Ok(Project {
        name,
        services,
        disabled,
        networks,
        volumes,
        secrets,
        configs,
        extensions: top.extensions(),
        ..Project::default()
    })
}

/// A cycle among the enabled services' dependencies, as `[a, b, a]`.
fn dependency_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        services: &'a BTreeMap<String, Service>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(name).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks.insert(name, Mark::Open);
        stack.push(name);
        if let Some(s) = services.get(name) {
            for dep in s.depends_on.keys() {
                if services.contains_key(dep) {
                    if let Some(c) = visit(dep, services, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in services.keys() {
        if let Some(c) = visit(name, services, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}
