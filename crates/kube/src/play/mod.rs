//! `berth kube play` and `berth kube down` (podman's): Kubernetes YAML in.
//! A Pod becomes a berth pod whose containers are named
//! `PODNAME-CONTAINERNAME`; a Deployment `replicas` pods (`NAME-pod-0`,
//! `NAME-pod-1`…, podman 4.3's names), a DaemonSet one, a Job one whose
//! containers run to completion. Init containers run one after the
//! other, each to a zero exit, before the others start, and are removed
//! once they succeeded (podman's `once` init containers). ConfigMaps, Secrets, PersistentVolumeClaims and Services of
//! the same file are what the pods refer to: variables and files, named
//! volumes, ports published on the host. The file is read whole and
//! planned before anything is made ([`spec::plan_pod`]); every field berth
//! does not apply is a warning naming its path ([`fields::Obj`]).
//!
//! What a play made is recorded under `<root>/kube/`: `pod/<name>/`
//! (its record and the files of its ConfigMap, Secret and emptyDir
//! volumes) and `volume/<name>` (a volume it created), so `kube down`
//! removes exactly that and leaves volumes that were there before.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::container::start::AttachMode;
use engine::pod::create::PodCreateRequest;
use engine::Engine;
use serde_json::{json, Value};

use crate::Error;

mod catalog;
mod container;
mod fields;
mod spec;

use catalog::{Catalog, Target};
use fields::{Obj, Warnings};
use spec::{plan_pod, PodContext, PodPlan, PullPolicy};

/// `kube play` flags.
#[derive(Debug, Clone, Default)]
pub struct PlayOptions {
    /// `--replace`: pods of the same names (made by an earlier play) are
    /// taken down first.
    pub replace: bool,
    /// `--start` (default true): start the pods; false creates them only.
    pub start: bool,
    /// `--network`: the pods' network (default: the default bridge).
    pub network: Option<String>,
    /// `--configmap FILE`: ConfigMaps from other files (their text, and
    /// the file's name for messages).
    pub configmaps: Vec<(String, String)>,
    /// `--userns`: every pod's user namespace (podman's flag), over the
    /// YAML's `hostUsers`.
    pub userns: Option<String>,
}

/// A pod a play made.
#[derive(Debug, Clone)]
pub struct PlayedPod {
    /// The pod's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its init containers' ids, in order (removed once they ran).
    pub init_containers: Vec<String>,
    /// Its other containers' ids.
    pub containers: Vec<String>,
}

/// What `kube play` did.
#[derive(Debug, Default)]
pub struct Played {
    /// The volumes it created (PersistentVolumeClaims that were missing).
    pub volumes: Vec<String>,
    /// The pods, in file order.
    pub pods: Vec<PlayedPod>,
    /// Fields not applied.
    pub warnings: Vec<String>,
    /// What it made of Services (ports published).
    pub notes: Vec<String>,
}

/// What `kube down` did.
#[derive(Debug, Default)]
pub struct Downed {
    /// Pods stopped (ids).
    pub stopped: Vec<String>,
    /// Pods removed (ids).
    pub removed: Vec<String>,
    /// Volumes removed (those the play created).
    pub volumes: Vec<String>,
    /// What it left alone and why.
    pub warnings: Vec<String>,
}

/// A bind source under a played pod's dir: what it was in the YAML.
#[derive(Debug, Clone)]
pub(crate) struct PlayedSource {
    /// `configmap`, `secret` or `emptydir`.
    pub kind: String,
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The volume's dir.
    pub dir: PathBuf,
    /// The path under it that was mounted (a `subPath`), if any.
    pub sub: Option<String>,
}

/// Is `source` (a bind's host path) one of the dirs a play made for a
/// pod's ConfigMap, Secret or emptyDir volume?
pub(crate) fn played_source(engine: &Engine, source: &str) -> Option<PlayedSource> {
    let base = kube_dir(engine).join("pod");
    let rest = Path::new(source).strip_prefix(&base).ok()?;
    let parts: Vec<&str> = rest.iter().filter_map(|p| p.to_str()).collect();
    let [_pod, kind, volume, sub @ ..] = parts.as_slice() else {
        return None;
    };
    if !matches!(*kind, "configmap" | "secret" | "emptydir") {
        return None;
    }
    Some(PlayedSource {
        kind: kind.to_string(),
        volume: volume.to_string(),
        dir: base.join(parts[0]).join(kind).join(volume),
        sub: (!sub.is_empty()).then(|| sub.join("/")),
    })
}

/// The label on volumes a play created.
pub const VOLUME_LABEL: &str = "io.berth.kube.play";

/// The file read and planned.
struct Planned {
    catalog: Catalog,
    pods: Vec<PodPlan>,
    warnings: Warnings,
    notes: Vec<String>,
}

fn kube_dir(engine: &Engine) -> PathBuf {
    engine.paths().root.join("kube")
}

fn pod_dir(engine: &Engine, pod: &str) -> PathBuf {
    kube_dir(engine).join("pod").join(pod)
}

fn volume_marker(engine: &Engine, volume: &str) -> PathBuf {
    kube_dir(engine).join("volume").join(volume)
}

/// Read every document and plan every pod.
fn plan(
    engine: &Engine,
    text: &str,
    network: Option<&str>,
    configmaps: &[(String, String)],
    lenient: bool,
) -> Result<Planned, Error> {
    let docs = documents(text, "the file")?;
    if docs.is_empty() {
        return Err(Error::Invalid(
            "the file holds no Kubernetes objects".into(),
        ));
    }
    let warnings: Warnings = Default::default();
    let mut heads = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let what = format!("document {}", i + 1);
        let o = Obj::new(format!("{what}: "), d, warnings.clone())?;
        let kind = o
            .str("kind")?
            .ok_or_else(|| o.invalid("kind", "missing: every object needs its kind"))?;
        o.quiet("apiVersion");
        let name = match o.get("metadata").map(|m| m.get("name")) {
            Some(Some(Value::String(n))) if !n.is_empty() => n.clone(),
            _ => {
                return Err(o.invalid("metadata.name", format!("missing: the {kind} needs a name")))
            }
        };
        // Names become berth's names and paths under the state root.
        if !spec::dns_subdomain_ok(&name) {
            return Err(o.invalid(
                "metadata.name",
                format!("{name:?}: not a DNS-1123 name (lower case letters, digits, - and .)"),
            ));
        }
        o.quiet("kind");
        o.quiet("metadata");
        o.quiet("spec");
        o.quiet("data");
        o.quiet("binaryData");
        o.quiet("stringData");
        o.quiet("type");
        o.quiet("immutable");
        o.quiet("status");
        o.quiet("apiVersion");
        match kind.as_str() {
            "Pod" | "Deployment" | "DaemonSet" | "Job" | "Service" | "ConfigMap" | "Secret"
            | "PersistentVolumeClaim" => {}
            other => {
                return Err(Error::Invalid(format!(
                    "{what}: kind {other} ({name}) is not supported by berth kube play; it plays Pod, Deployment, DaemonSet, Job, Service, ConfigMap, Secret and PersistentVolumeClaim"
                )))
            }
        }
        heads.push((d, kind, name));
    }
    // The objects pods refer to, then the pods.
    let mut catalog = Catalog::default();
    for (d, kind, name) in &heads {
        let o = Obj::new(format!("{kind} {name}: "), d, warnings.clone())?;
        o.quiet("apiVersion");
        o.quiet("kind");
        o.quiet("status");
        if !matches!(
            kind.as_str(),
            "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "Service"
        ) {
            // A workload: read in the next pass.
            o.quiet("metadata");
            o.quiet("spec");
            continue;
        }
        let labels = metadata(&o)?;
        match kind.as_str() {
            "ConfigMap" => catalog.config_map(name, &o)?,
            "Secret" => catalog.secret(name, &o)?,
            "PersistentVolumeClaim" => catalog.claim(name, labels, o.obj("spec")?)?,
            "Service" => {
                let spec = o.obj("spec")?.ok_or_else(|| o.invalid("spec", "missing"))?;
                catalog.service(name, &spec)?;
            }
            _ => {}
        }
    }
    for (file, text) in configmaps {
        for (i, d) in documents(text, file)?.iter().enumerate() {
            let what = format!("{file}: document {}", i + 1);
            let o = Obj::new(format!("{what}: "), d, warnings.clone())?;
            o.quiet("apiVersion");
            if o.str("kind")?.as_deref() != Some("ConfigMap") {
                return Err(Error::Invalid(format!(
                    "{what}: not a ConfigMap (--configmap takes ConfigMaps only)"
                )));
            }
            let name = match d.get("metadata").and_then(|m| m.get("name")) {
                Some(Value::String(n)) if !n.is_empty() => n.clone(),
                _ => return Err(o.invalid("metadata.name", "missing: the ConfigMap needs a name")),
            };
            let o = Obj::new(format!("ConfigMap {name} ({file}): "), d, warnings.clone())?;
            for k in ["apiVersion", "kind", "status"] {
                o.quiet(k);
            }
            metadata(&o)?;
            catalog.config_map(&name, &o)?;
        }
    }
    let mut pods: Vec<PodPlan> = Vec::new();
    let mut first_of_workload = Vec::new();
    for (d, kind, name) in &heads {
        if !matches!(kind.as_str(), "Pod" | "Deployment" | "DaemonSet" | "Job") {
            continue;
        }
        let o = Obj::new(format!("{kind} {name}: "), d, warnings.clone())?;
        o.quiet("apiVersion");
        o.quiet("kind");
        o.quiet("status");
        let labels = metadata(&o)?;
        let spec = o.obj("spec")?.ok_or_else(|| o.invalid("spec", "missing"))?;
        let ctx = |pod: String| PodContext {
            catalog: &catalog,
            what: format!("{kind} {name}"),
            dir: pod_dir(engine, &pod),
            name: pod,
            network: network.map(str::to_string),
            job: kind == "Job",
            lenient,
        };
        if kind == "Pod" {
            first_of_workload.push(pods.len());
            pods.push(plan_pod(&ctx(name.clone()), &spec, labels)?);
            continue;
        }
        let mut replicas = 1;
        match kind.as_str() {
            "Deployment" => {
                replicas = spec.int("replicas")?.unwrap_or(1);
                if replicas < 0 {
                    return Err(spec.invalid("replicas", "must not be negative"));
                }
                for k in [
                    "strategy",
                    "minReadySeconds",
                    "revisionHistoryLimit",
                    "progressDeadlineSeconds",
                    "paused",
                ] {
                    spec.unapplied(k, "berth runs no Deployment controller");
                }
            }
            "DaemonSet" => {
                for k in ["updateStrategy", "minReadySeconds", "revisionHistoryLimit"] {
                    spec.unapplied(k, "berth runs no DaemonSet controller");
                }
            }
            _ => {
                for k in ["completions", "parallelism"] {
                    if spec.int(k)?.is_some_and(|n| n != 1) {
                        spec.warn(format!(
                            "{}: berth runs the Job's pod once; not applied",
                            spec.at(k)
                        ));
                    }
                }
                for k in [
                    "backoffLimit",
                    "activeDeadlineSeconds",
                    "ttlSecondsAfterFinished",
                    "completionMode",
                    "suspend",
                    "podFailurePolicy",
                    "backoffLimitPerIndex",
                    "maxFailedIndexes",
                    "successPolicy",
                    "podReplacementPolicy",
                    "manualSelector",
                ] {
                    spec.unapplied(
                        k,
                        "berth runs no Job controller (the restartPolicy applies)",
                    );
                }
            }
        }
        let template = spec
            .obj("template")?
            .ok_or_else(|| spec.invalid("template", "missing: the pod to run"))?;
        let tlabels = metadata(&template)?;
        if let Some(sel) = spec.obj("selector")? {
            for (k, v) in sel.string_map("matchLabels")? {
                if tlabels.get(&k) != Some(&v) {
                    return Err(sel.invalid(
                        "matchLabels",
                        format!("{k}={v} is not a label of the template: the {kind} would select none of its pods"),
                    ));
                }
            }
            sel.unapplied("matchExpressions", "berth selects by matchLabels only");
        }
        let tspec = template
            .obj("spec")?
            .ok_or_else(|| template.invalid("spec", "missing"))?;
        if replicas > 1 {
            spec.warn(format!(
                "{}: {replicas} pods; only the first publishes hostPorts and Service ports (the host has each port once)",
                spec.at("replicas")
            ));
        }
        if replicas == 0 {
            spec.warn(format!("{}: 0: no pod made", spec.at("replicas")));
        }
        for r in 0..replicas {
            // podman 4.3's names.
            let pod_name = format!("{name}-pod-{r}");
            if r == 0 {
                first_of_workload.push(pods.len());
                pods.push(plan_pod(&ctx(pod_name), &tspec, tlabels.clone())?);
            } else {
                // The same spec again: its warnings once.
                let quiet: Warnings = Default::default();
                let again = Obj::new(tspec.at(""), d_template(d), quiet)?;
                let mut p = plan_pod(&ctx(pod_name), &again, tlabels.clone())?;
                p.ports.clear();
                pods.push(p);
            }
        }
    }
    let mut notes = Vec::new();
    for svc in &catalog.services {
        let mut selected = false;
        for &i in &first_of_workload {
            let p = &mut pods[i];
            if svc.selector.is_empty()
                || !svc.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            {
                continue;
            }
            selected = true;
            for sp in &svc.ports {
                let (cport, proto) = match &sp.target {
                    Target::Number(n) => (*n, sp.proto.clone()),
                    Target::Name(n) => p
                        .containers
                        .iter()
                        .find_map(|c| c.named_ports.get(n).cloned())
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "Service {}: targetPort {n:?} names no container port of pod {}",
                                svc.name, p.name
                            ))
                        })?,
                };
                let host = sp.node_port.unwrap_or(sp.port);
                if let Some(other) = p
                    .ports
                    .iter()
                    .find(|m| m.host_port == host && m.proto == proto)
                {
                    if other.container_port != cport {
                        return Err(Error::Invalid(format!(
                            "Service {}: host port {host}/{proto} is already published to port {} of pod {}",
                            svc.name, other.container_port, p.name
                        )));
                    }
                } else {
                    p.ports.push(engine::config::PortMapping {
                        host_ip: String::new(),
                        host_port: host,
                        container_port: cport,
                        proto: proto.clone(),
                        picked: false,
                    });
                }
                notes.push(format!(
                    "Service {}: port {}/{proto} is published on the host's port {host} ({}) to port {cport} of pod {}",
                    svc.name,
                    sp.port,
                    if sp.node_port.is_some() { "its nodePort" } else { "its port" },
                    p.name
                ));
            }
        }
        if !selected {
            warnings.borrow_mut().push(format!(
                "Service {}: its selector matches no pod of the file; not applied",
                svc.name
            ));
        }
    }
    Ok(Planned {
        catalog,
        pods,
        warnings,
        notes,
    })
}

/// The documents of a YAML text (`what` names it in messages); go-yaml's
/// octal `0755`, as Kubernetes' reader.
fn documents(text: &str, what: &str) -> Result<Vec<Value>, Error> {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(text, options)
        .map_err(|e| Error::Invalid(format!("{what} is not valid YAML: {e}")))
}

/// The template spec of a workload document (for its replicas).
fn d_template(d: &Value) -> &Value {
    &d["spec"]["template"]["spec"]
}

/// `metadata`: its labels; server-set fields are quiet, a namespace warned.
fn metadata(o: &Obj<'_>) -> Result<BTreeMap<String, String>, Error> {
    let Some(m) = o.obj("metadata")? else {
        return Ok(BTreeMap::new());
    };
    m.quiet("name");
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
        "annotations",
        "generateName",
    ] {
        m.quiet(k);
    }
    match m.str("namespace")?.as_deref() {
        None | Some("default") => {}
        Some(ns) => m.warn(format!(
            "{}: {ns}: berth has no namespaces; not applied",
            m.at("namespace")
        )),
    }
    m.unapplied("ownerReferences", "no controller");
    m.unapplied("finalizers", "no controller");
    Ok(m.string_map("labels")?.into_iter().collect())
}

/// `kube play`: plan the file, make what it names, start the pods.
pub fn play(engine: &Engine, text: &str, opts: &PlayOptions) -> Result<Played, Error> {
    let mut planned = plan(
        engine,
        text,
        opts.network.as_deref(),
        &opts.configmaps,
        false,
    )?;
    if let Some(u) = &opts.userns {
        for p in &mut planned.pods {
            p.userns = Some(u.clone());
        }
    }
    let mut out = Played {
        warnings: planned.warnings.borrow().clone(),
        notes: planned.notes.clone(),
        ..Default::default()
    };
    // Names free (or replaced), images there, before anything is made.
    for p in &planned.pods {
        let pod_there = engine.pod(&p.name).is_ok();
        if !pod_there && pod_dir(engine, &p.name).exists() {
            // The record of a pod that is gone (system reset, pod rm):
            // its files and the empty host paths it made go now.
            let mut d = Downed::default();
            down_pod(engine, &p.name, &mut d)?;
        }
        if pod_there {
            if !opts.replace {
                return Err(Error::Invalid(format!(
                    "pod {} already exists: take it down with berth kube down FILE, or play with --replace",
                    p.name
                )));
            }
            let mut d = Downed::default();
            down_pod(engine, &p.name, &mut d)?;
            out.warnings.extend(d.warnings);
        }
        for c in p.init.iter().chain(&p.containers) {
            let name = c.req.name.clone().unwrap_or_default();
            if engine.container(&name).is_ok() {
                return Err(Error::Invalid(format!(
                    "container {name} already exists (not in a pod of this file): remove it or rename the {}'s container",
                    p.what
                )));
            }
        }
    }
    let mut pulled = std::collections::BTreeSet::new();
    for p in &planned.pods {
        for c in p.init.iter().chain(&p.containers) {
            let image = &c.req.image;
            if !pulled.insert(image.clone()) {
                continue;
            }
            let what = format!("image {image} (container {} of {})", c.yaml_name, p.what);
            match c.image_policy {
                PullPolicy::Never => {
                    if engine.image_id(image).is_none() {
                        return Err(Error::Invalid(format!(
                            "{what}: not in the store, and imagePullPolicy is Never: load, build or pull it first"
                        )));
                    }
                }
                PullPolicy::IfNotPresent | PullPolicy::Always => {
                    let always = c.image_policy == PullPolicy::Always;
                    engine.ensure_image(image, always).map_err(|e| {
                        Error::Invalid(format!(
                            "{what}: {} and pulling it failed: {e}",
                            if always {
                                "imagePullPolicy is Always,"
                            } else {
                                "not in the store,"
                            }
                        ))
                    })?;
                }
            }
        }
    }
    // Make it all; on a failure take back what this play made.
    let made = make(engine, &planned, &mut out);
    if let Err(e) = made {
        let mut d = Downed::default();
        for p in &out.pods {
            let _ = down_pod(engine, &p.name, &mut d);
        }
        for p in &planned.pods {
            if !out.pods.iter().any(|m| m.name == p.name) {
                let _ = down_pod(engine, &p.name, &mut d);
            }
        }
        for v in &out.volumes {
            let _ = remove_created_volume(engine, v, &mut d);
        }
        tidy(engine);
        return Err(e);
    }
    if opts.start {
        for (p, made) in planned.pods.iter().zip(&out.pods) {
            start_pod(engine, p, made)?;
        }
    }
    Ok(out)
}

fn make(engine: &Engine, planned: &Planned, out: &mut Played) -> Result<(), Error> {
    let mut claims: Vec<String> = planned.catalog.claims.keys().cloned().collect();
    for p in &planned.pods {
        for c in &p.claims {
            if !claims.contains(c) {
                out.warnings.push(format!(
                    "{}: claims {c}, which is not a PersistentVolumeClaim of the file: volume {c} is used, or made",
                    p.what
                ));
                claims.push(c.clone());
            }
        }
    }
    for c in &claims {
        if engine.volume(c).is_ok() {
            continue;
        }
        let mut labels = planned.catalog.claims.get(c).cloned().unwrap_or_default();
        labels.insert(VOLUME_LABEL.into(), "true".into());
        // The marker first (a play cut short is still taken down), then
        // the volume, then the marker names that volume by its creation
        // time: a volume of the same name made later is not this one.
        let marker = volume_marker(engine, c);
        write_file(&marker, MARKER_PENDING.as_bytes(), 0o600)?;
        let made = match engine.volume_create(Some(c), None, labels, BTreeMap::new()) {
            Ok(v) => v,
            Err(e) => {
                let _ = std::fs::remove_file(&marker);
                return Err(e.into());
            }
        };
        out.volumes.push(c.clone());
        write_file(&marker, made.created.to_rfc3339().as_bytes(), 0o600)?;
    }
    for p in &planned.pods {
        // The record first: a play cut short is still taken down.
        let mut record = json!({"pod": p.name, "pod_id": "", "host_created": []});
        save_record(&p.dir, &record)?;
        let mut created = Vec::new();
        for h in &p.host_creates {
            let r = if h.dir {
                std::fs::create_dir_all(&h.path)
            } else {
                if let Some(parent) = h.path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_err(&h.path, e))?;
                }
                std::fs::File::create(&h.path).map(|_| ())
            };
            r.map_err(|e| io_err(&h.path, e))?;
            created.push(json!(h.path));
            record["host_created"] = json!(created);
            save_record(&p.dir, &record)?;
        }
        for d in &p.empty_dirs {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
        }
        for f in &p.files {
            write_file(&f.path, &f.content, f.mode)?;
        }
        let pod = engine.pod_create(&PodCreateRequest {
            name: Some(p.name.clone()),
            hostname: p.hostname.clone(),
            share: p.share_pid.then(|| "+pid".to_string()),
            network: p.network.clone(),
            ports: p.ports.clone(),
            labels: p.labels.clone(),
            extra_hosts: p.extra_hosts.clone(),
            create_command: vec!["berth".into(), "kube".into(), "play".into()],
            userns: p.userns.clone(),
            ..Default::default()
        })?;
        record["pod_id"] = json!(pod.id);
        save_record(&p.dir, &record)?;
        let mut made = PlayedPod {
            id: pod.id.clone(),
            name: pod.name.clone(),
            init_containers: Vec::new(),
            containers: Vec::new(),
        };
        for (list, ids) in [
            (&p.init, &mut made.init_containers),
            (&p.containers, &mut made.containers),
        ] {
            for c in list {
                let created = engine.create(&c.req).map_err(|e| {
                    Error::Invalid(format!("{}: container {}: {e}", p.what, c.yaml_name))
                })?;
                ids.push(created.id().as_str().to_string());
            }
        }
        out.pods.push(made);
    }
    Ok(())
}

/// Init containers one after the other, each to a zero exit, then the rest.
fn start_pod(engine: &Engine, p: &PodPlan, made: &PlayedPod) -> Result<(), Error> {
    // The infra first: members started at once would each start it.
    engine.pod_start_infra(&made.id)?;
    for (c, id) in p.init.iter().zip(&made.init_containers) {
        engine.start(id, AttachMode::Detached)?;
        let code = engine.wait(id)?;
        if code != 0 {
            return Err(Error::Invalid(format!(
                "{}: init container {} exited with {code}, so the pod's containers were not started: see berth logs {}; berth kube down FILE removes the pod",
                p.what,
                c.yaml_name,
                c.req.name.as_deref().unwrap_or_default()
            )));
        }
        // As podman's `once` init containers: gone once they succeeded.
        engine.remove(id, true, true)?;
    }
    let names: Vec<String> = made.containers.clone();
    for ((_, r), c) in engine.start_many(&names).into_iter().zip(&p.containers) {
        r.map_err(|e| {
            Error::Invalid(format!(
                "{}: starting container {}: {e}",
                p.what, c.yaml_name
            ))
        })?;
    }
    Ok(())
}

/// `kube down`: the pods of the file that a play made, their files, and
/// the volumes that play created (those that were there before stay).
pub fn down(engine: &Engine, text: &str) -> Result<Downed, Error> {
    let planned = plan(engine, text, None, &[], true)?;
    let mut out = Downed::default();
    for p in &planned.pods {
        down_pod(engine, &p.name, &mut out)?;
    }
    let mut claims: Vec<String> = planned.catalog.claims.keys().cloned().collect();
    for p in &planned.pods {
        for c in &p.claims {
            if !claims.contains(c) {
                claims.push(c.clone());
            }
        }
    }
    for c in &claims {
        remove_created_volume(engine, c, &mut out)?;
    }
    tidy(engine);
    Ok(out)
}

/// `<root>/kube` and its folders go once empty.
fn tidy(engine: &Engine) {
    for d in [
        kube_dir(engine).join("pod"),
        kube_dir(engine).join("volume"),
        kube_dir(engine),
    ] {
        let _ = std::fs::remove_dir(d);
    }
}

/// What a volume's marker says before the volume exists.
const MARKER_PENDING: &str = "made by berth kube play\n";

fn remove_created_volume(engine: &Engine, name: &str, out: &mut Downed) -> Result<(), Error> {
    let marker = volume_marker(engine, name);
    let Ok(said) = std::fs::read_to_string(&marker) else {
        return Ok(());
    };
    let ours = match engine.volume(name) {
        Ok(v) => {
            said == v.created.to_rfc3339()
                || (said == MARKER_PENDING && v.labels.contains_key(VOLUME_LABEL))
        }
        Err(_) => false,
    };
    if !ours {
        // Gone, or another volume of the same name made since (after a
        // system reset): the marker is stale.
        return std::fs::remove_file(&marker).map_err(|e| io_err(&marker, e));
    }
    match engine.volume_remove(name) {
        Ok(_) => out.volumes.push(name.to_string()),
        Err(e) if e.kind() == engine::error::ErrorKind::NotFound => {}
        Err(e) => {
            out.warnings
                .push(format!("volume {name} (made by kube play) is kept: {e}"));
            return Ok(());
        }
    }
    std::fs::remove_file(&marker).map_err(|e| io_err(&marker, e))
}

/// One pod a play made: the pod (containers, infra), its files and the
/// host paths it created (when still empty).
fn down_pod(engine: &Engine, name: &str, out: &mut Downed) -> Result<(), Error> {
    let dir = pod_dir(engine, name);
    let record: Option<Value> = std::fs::read(dir.join("record.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(record) = record else {
        if engine.pod(name).is_ok() {
            out.warnings.push(format!(
                "pod {name} was not made by berth kube play; left alone (berth pod rm -f {name} removes it)"
            ));
        }
        return Ok(());
    };
    let id = record["pod_id"].as_str().unwrap_or_default();
    let pod = match engine.pod(name) {
        Ok(p) if id.is_empty() || p.id == id => Some(p),
        Ok(_) => {
            out.warnings.push(format!(
                "pod {name} is not the one kube play made (it was replaced); left alone"
            ));
            None
        }
        Err(_) => None,
    };
    if let Some(pod) = pod {
        let running = engine.pod_containers(&pod)?.iter().any(|c| c.is_running());
        engine.pod_remove(&pod.id, true)?;
        if running {
            out.stopped.push(pod.id.clone());
        }
        out.removed.push(pod.id);
    }
    if let Some(paths) = record["host_created"].as_array() {
        for p in paths.iter().filter_map(Value::as_str).map(Path::new) {
            let empty = match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none()),
                Ok(m) => m.is_file() && m.len() == 0,
                Err(_) => continue,
            };
            if !empty {
                out.warnings.push(format!(
                    "{} (made by kube play for hostPath) is kept: it is not empty",
                    p.display()
                ));
                continue;
            }
            let _ = if p.is_dir() {
                std::fs::remove_dir(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
    std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))
}

fn save_record(dir: &Path, record: &Value) -> Result<(), Error> {
    let text = serde_json::to_vec_pretty(record).unwrap_or_default();
    write_file(&dir.join("record.json"), &text, 0o600)
}

/// Write a file (its parents made), then rename it into place.
fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.kube-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    f.write_all(content)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Invalid(format!("{}: {e}", path.display()))
}
