//! How a project's objects are named and labelled, as docker compose v2
//! names and labels them, so that `up` finds what an earlier `up` made (and
//! docker's own tools see berth's projects as theirs).
use std::collections::BTreeMap;

use engine::container::list::ListRequest;
use engine::container::Container;
use engine::filters::Filters;
use engine::Engine;

use crate::model::{Project, Service};
use crate::{Error, Result};

/// `com.docker.compose.project`.
pub const PROJECT: &str = "com.docker.compose.project";
/// `com.docker.compose.service`.
pub const SERVICE: &str = "com.docker.compose.service";
/// `com.docker.compose.container-number`.
pub const NUMBER: &str = "com.docker.compose.container-number";
/// `com.docker.compose.oneoff` (`True` for `compose run` containers).
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// `com.docker.compose.config-hash`.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `com.docker.compose.project.working_dir`.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// `com.docker.compose.project.config_files`.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// `com.docker.compose.depends_on`.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// `com.docker.compose.image` (the image id the container was made from).
pub const IMAGE: &str = "com.docker.compose.image";
/// `com.docker.compose.version`.
pub const VERSION: &str = "com.docker.compose.version";
/// `com.docker.compose.network` (the network's key in the file).
pub const NETWORK: &str = "com.docker.compose.network";
/// `com.docker.compose.volume` (the volume's key in the file).
pub const VOLUME: &str = "com.docker.compose.volume";
/// The Compose version berth's labels claim.
pub const COMPOSE_VERSION: &str = "2.24.0";

/// A project's container, with what its labels say.
#[derive(Debug, Clone)]
pub struct Member {
    /// The container.
    pub container: Container,
    /// Its service.
    pub service: String,
    /// Its number within the service (1-based).
    pub number: u32,
    /// Made by `compose run`.
    pub oneoff: bool,
}

impl Member {
    /// A label of the container.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.container.config.labels.get(key).map(String::as_str)
    }
}

/// The name of container `number` of `service`: `container_name:`, else
/// `<project>-<service>-<number>`.
pub fn container_name(project: &Project, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(n) => n.clone(),
        None => format!("{}-{}-{number}", project.name, service.name),
    }
}

/// The image a service runs: `image:`, else the one `build` makes,
/// `<project>-<service>`.
pub fn image_name(project: &Project, service: &Service) -> String {
    match &service.image {
        Some(i) => i.clone(),
        None => format!("{}-{}", project.name, service.name),
    }
}

/// Every container labelled as part of project `name` (running or not),
/// ordered by service then number.
pub fn members(engine: &Engine, name: &str) -> Result<Vec<Member>> {
    let req = ListRequest {
        all: true,
        limit: None,
        filters: Filters::parse(&[format!("label={PROJECT}={name}")], &["label"])
            .map_err(Error::Engine)?,
    };
    let mut out: Vec<Member> = engine
        .list_containers(&req)?
        .into_iter()
        .map(|c| {
            let l = &c.config.labels;
            Member {
                service: l.get(SERVICE).cloned().unwrap_or_default(),
                number: l.get(NUMBER).and_then(|n| n.parse().ok()).unwrap_or(0),
                oneoff: l
                    .get(ONEOFF)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                container: c,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.service.as_str(), a.oneoff, a.number).cmp(&(b.service.as_str(), b.oneoff, b.number))
    });
    Ok(out)
}

/// The projects that have containers here: name → (running, total, config files).
pub fn projects(engine: &Engine) -> Result<BTreeMap<String, (usize, usize, String)>> {
    let req = ListRequest {
        all: true,
        limit: None,
        filters: Filters::parse(&[format!("label={PROJECT}")], &["label"])
            .map_err(Error::Engine)?,
    };
    let mut out: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    for c in engine.list_containers(&req)? {
        let l = &c.config.labels;
        let Some(p) = l.get(PROJECT) else { continue };
        let e = out.entry(p.clone()).or_default();
        e.1 += 1;
        if c.is_running() {
            e.0 += 1;
        }
        if e.2.is_empty() {
            e.2 = l.get(CONFIG_FILES).cloned().unwrap_or_default();
        }
    }
    Ok(out)
}

/// The labels of container `number` of `service`.
pub fn container_labels(
    project: &Project,
    service: &Service,
    number: u32,
    oneoff: bool,
    hash: &str,
    image_id: &str,
) -> BTreeMap<String, String> {
    let mut l = service.labels.clone();
    l.insert(PROJECT.into(), project.name.clone());
    l.insert(SERVICE.into(), service.name.clone());
    l.insert(NUMBER.into(), number.to_string());
    l.insert(
        ONEOFF.into(),
        if oneoff { "True" } else { "False" }.to_string(),
    );
    l.insert(CONFIG_HASH.into(), hash.to_string());
    l.insert(
        WORKING_DIR.into(),
        project.working_dir.display().to_string(),
    );
    l.insert(
        CONFIG_FILES.into(),
        project
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(
        DEPENDS_ON.into(),
        service
            .depends_on
            .iter()
            .map(|(name, d)| format!("{name}:{}:{}", d.condition, d.restart))
            .collect::<Vec<_>>()
            .join(","),
    );
    l.insert(IMAGE.into(), image_id.to_string());
    l.insert(VERSION.into(), COMPOSE_VERSION.into());
    l
}

/// The labels of a network or volume the project makes.
pub fn object_labels(
    project: &Project,
    kind_label: &str,
    key: &str,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = own.clone();
    l.insert(PROJECT.into(), project.name.clone());
    l.insert(kind_label.into(), key.to_string());
    l.insert(VERSION.into(), COMPOSE_VERSION.into());
    l
}

/// The services in the order they start: every service after the ones it
/// depends on (ties by name). The loader refused cycles already.
pub fn start_order(project: &Project) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    fn visit(p: &Project, name: &str, done: &mut Vec<String>, path: &mut Vec<String>) {
        if done.iter().any(|d| d == name) || path.iter().any(|d| d == name) {
            return;
        }
        let Some(s) = p.services.get(name) else {
            return;
        };
        path.push(name.to_string());
        for dep in s.depends_on.keys() {
            visit(p, dep, done, path);
        }
        path.pop();
        done.push(name.to_string());
    }
    for name in project.services.keys() {
        visit(project, name, &mut done, &mut Vec::new());
    }
    done
}

/// `names` and, unless `no_deps`, every service they depend on, directly
/// or not; every service when `names` is empty. An optional dependency
/// (`required: false`) on a service the profiles leave out is skipped.
pub fn selection(project: &Project, names: &[String], no_deps: bool) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if out.contains(&n) {
            continue;
        }
        let Some(s) = project.services.get(&n) else {
            return Err(Error::NoSuchService(n));
        };
        if !no_deps {
            todo.extend(
                s.depends_on
                    .iter()
                    .filter(|(dep, d)| d.required || project.services.contains_key(*dep))
                    .map(|(dep, _)| dep.clone()),
            );
        }
        out.push(n);
    }
    Ok(out)
}

/// The `config-hash` label: a digest of the service's normalized config
/// (its scale left out: scaling does not recreate containers).
pub fn config_hash(service: &Service) -> String {
    use sha2::{Digest, Sha256};
    let mut s = service.clone();
    s.scale = None;
    // `x-` keys mean nothing to the container.
    s.extensions.clear();
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    let json = serde_json::to_vec(&s).unwrap_or_default();
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dependency;

    #[test]
    fn selection_follows_dependencies_but_skips_optional_disabled_ones() {
        let dep = |required: bool| Dependency {
            required,
            ..Dependency::default()
        };
        let mut p = Project::default();
        let mut job = Service {
            name: "job".into(),
            ..Service::default()
        };
        job.depends_on.insert("db".into(), dep(true));
        job.depends_on.insert("metrics".into(), dep(false));
        p.services.insert("job".into(), job);
        p.services.insert(
            "db".into(),
            Service {
                name: "db".into(),
                ..Service::default()
            },
        );
        // `metrics` is left out by its profiles.
        let mut got = selection(&p, &["job".into()], false).unwrap();
        got.sort();
        assert_eq!(got, ["db", "job"]);
        assert_eq!(selection(&p, &["job".into()], true).unwrap(), ["job"]);
        // A required dependency that is not there is still an error.
        p.services
            .get_mut("job")
            .unwrap()
            .depends_on
            .insert("gone".into(), dep(true));
        assert!(matches!(
            selection(&p, &["job".into()], false),
            Err(Error::NoSuchService(n)) if n == "gone"
        ));
    }
}
