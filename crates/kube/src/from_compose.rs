//! A compose project to Deployments (one per service, `deploy.replicas`),
//! Services for published or exposed ports, PersistentVolumeClaims for
//! named volumes, ConfigMaps for `configs` and Secrets for `secrets`.
use std::collections::BTreeMap;
use std::path::Path;

use compose::model::{FileObject, Project, Service};
use serde_json::{json, Map, Value};

use crate::{
    base64, bytes_quantity, capabilities, cpu_quantity, dns_label, exec_probe,
    labels_and_annotations, pvc, run_as, service, workload, Error, Generated, Kind, Options,
};

/// Manifests for `services` of `project` (all when empty).
pub fn generate_compose(
    project: &Project,
    services: &[String],
    opts: Options,
) -> Result<Generated, Error> {
    let kind = opts.kind.unwrap_or(Kind::Deployment);
    let mut out = Generated::default();
    for s in services {
        if !project.services.contains_key(s) {
            return Err(Error::Invalid(format!("no such service: {s}")));
        }
    }
    let chosen: Vec<&Service> = project
        .services
        .values()
        .filter(|s| services.is_empty() || services.contains(&s.name))
        .collect();
    let part_of = json!(dns_label(&project.name));
    let base_labels = |app: &str| -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("app".into(), json!(app));
        m.insert("app.kubernetes.io/part-of".into(), part_of.clone());
        m
    };
    let mut claims: Vec<String> = Vec::new();
    let mut configs: BTreeMap<String, String> = BTreeMap::new();
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    let mut workloads = Vec::new();
    let mut services_out = Vec::new();
    for s in chosen {
        let what = format!("service {}", s.name);
        let app = dns_label(&s.name);
        if app != s.name {
            out.warn(format!(
                "{what}: named {app:?} in Kubernetes (DNS-1123 label)"
            ));
        }
        let mut k = Map::new();
        k.insert("name".into(), json!(app));
        let image = match (&s.image, &s.build) {
            (Some(i), _) => i.clone(),
            (None, _) => {
                let i = compose::project::image_name(project, s);
                out.warn(format!(
                    "{what}: built, not pulled: the cluster needs image {i} pushed to a registry it can reach (berth compose build, then push)"
                ));
                i
            }
        };
        k.insert("image".into(), json!(image));
        if let Some(e) = &s.entrypoint {
            k.insert("command".into(), json!(e));
        }
        if let Some(c) = &s.command {
            k.insert("args".into(), json!(c));
        }
        if !s.environment.is_empty() {
            let env: Vec<Value> = s
                .environment
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect();
            k.insert("env".into(), json!(env));
        }
        if let Some(w) = &s.working_dir {
            k.insert("workingDir".into(), json!(w));
        }
        // Ports: each container port once; the Service publishes them (a
        // Service per service with ports, --service or not: that is how
        // the other services reach it by name).
        let mut ports: Vec<(u16, String)> = Vec::new();
        for p in &s.ports {
            let proto = p.protocol.to_ascii_uppercase();
            let proto = if proto.is_empty() {
                "TCP".into()
            } else {
                proto
            };
            if !ports.contains(&(p.target, proto.clone())) {
                ports.push((p.target, proto));
            }
        }
        for e in &s.expose {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            let Ok(n) = port.parse::<u16>() else {
                out.warn(format!("{what}: expose {e}: a range is not carried over"));
                continue;
            };
            let proto = proto.to_ascii_uppercase();
            if !ports.contains(&(n, proto.clone())) {
                ports.push((n, proto));
            }
        }
        if !ports.is_empty() {
            let kp: Vec<Value> = ports
                .iter()
                .map(|(p, proto)| json!({"containerPort": p, "protocol": proto}))
                .collect();
            k.insert("ports".into(), json!(kp));
            let sp: Vec<(String, u16, String)> = ports
                .iter()
                .map(|(p, proto)| {
                    (
                        format!("{}-{p}", proto.to_ascii_lowercase()),
                        *p,
                        proto.clone(),
                    )
                })
                .collect();
            services_out.push(service(&app, &app, &sp));
        }
        // Resources: deploy.resources wins over mem_limit/cpus.
        let lim = s.deploy.as_ref().and_then(|d| d.resources.as_ref());
        let mem = lim
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.memory)
            .or(s.mem_limit);
        let cpus = lim
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.cpus)
            .or(s.cpus);
        let req_mem = lim
            .and_then(|r| r.reservations.as_ref())
            .and_then(|l| l.memory)
            .or(s.mem_reservation);
        let req_cpu = lim
            .and_then(|r| r.reservations.as_ref())
            .and_then(|l| l.cpus);
        let mut limits = Map::new();
        let mut requests = Map::new();
        if let Some(m) = mem {
            limits.insert("memory".into(), json!(bytes_quantity(m)));
        }
        if let Some(c) = cpus {
            limits.insert("cpu".into(), json!(cpu_quantity((c * 1e9) as i64)));
        }
        if let Some(m) = req_mem {
            requests.insert("memory".into(), json!(bytes_quantity(m)));
        }
        if let Some(c) = req_cpu {
            requests.insert("cpu".into(), json!(cpu_quantity((c * 1e9) as i64)));
        }
        if !limits.is_empty() || !requests.is_empty() {
            let mut r = Map::new();
            if !limits.is_empty() {
                r.insert("limits".into(), Value::Object(limits));
            }
            if !requests.is_empty() {
                r.insert("requests".into(), Value::Object(requests));
            }
            k.insert("resources".into(), Value::Object(r));
        }
        // Security context.
        let mut sc = Map::new();
        if let Some(u) = &s.user {
            run_as(u, &mut sc, &mut out, &what);
        }
        if s.read_only {
            sc.insert("readOnlyRootFilesystem".into(), json!(true));
        }
        if s.privileged {
            sc.insert("privileged".into(), json!(true));
        }
        if let Some(caps) = capabilities(&s.cap_add, &s.cap_drop) {
            sc.insert("capabilities".into(), caps);
        }
        for o in &s.security_opt {
            match o.as_str() {
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                    sc.insert("allowPrivilegeEscalation".into(), json!(false));
                }
                _ => out.warn(format!("{what}: security_opt {o} left out")),
            }
        }
        if !sc.is_empty() {
            k.insert("securityContext".into(), Value::Object(sc));
        }
        // Healthcheck.
        if let Some(h) = s.healthcheck.as_ref().filter(|h| !h.disable) {
            let cmd = match h.test.first().map(String::as_str) {
                Some("CMD") => Some(h.test[1..].to_vec()),
                Some("CMD-SHELL") => {
                    Some(vec!["/bin/sh".into(), "-c".into(), h.test[1..].join(" ")])
                }
                _ => None,
            };
            if let Some(cmd) = cmd.filter(|c| !c.is_empty()) {
                let d = |g: &Option<compose::model::GoDuration>, def: u64| {
                    g.as_ref()
                        .map(|g| g.0)
                        .unwrap_or(std::time::Duration::from_secs(def))
                };
                let probe = exec_probe(
                    cmd,
                    d(&h.interval, 30),
                    d(&h.timeout, 30),
                    d(&h.start_period, 0),
                    i64::from(h.retries.unwrap_or(3)),
                    &mut out,
                    &what,
                );
                k.insert("livenessProbe".into(), probe);
            }
        }
        // Volumes.
        let mut mounts = Vec::new();
        let mut vols = Vec::new();
        for (i, v) in s.volumes.iter().enumerate() {
            let vname;
            let source = match v.kind.as_str() {
                "volume" => match &v.source {
                    Some(src) => {
                        let claim = dns_label(src);
                        if !claims.contains(&claim) {
                            claims.push(claim.clone());
                        }
                        vname = format!("{claim}-pvc");
                        json!({"persistentVolumeClaim": {"claimName": claim}})
                    }
                    None => {
                        vname = format!("anon-{i}");
                        json!({"emptyDir": {}})
                    }
                },
                "bind" => {
                    let src = v.source.clone().unwrap_or_default();
                    let ty = match std::fs::metadata(&src) {
                        Ok(md) if md.is_dir() => "Directory",
                        Ok(_) => "File",
                        Err(_) => "DirectoryOrCreate",
                    };
                    out.warn(format!(
                        "{what}: bind mount {src} is a hostPath: the path must exist on the node the pod runs on"
                    ));
                    vname = format!("host-{i}");
                    json!({"hostPath": {"path": src, "type": ty}})
                }
                "tmpfs" => {
                    vname = format!("tmpfs-{i}");
                    let mut e = Map::new();
                    e.insert("medium".into(), json!("Memory"));
                    if let Some(sz) = v.tmpfs.as_ref().and_then(|t| t.size) {
                        e.insert("sizeLimit".into(), json!(bytes_quantity(sz)));
                    }
                    json!({"emptyDir": e})
                }
                other => {
                    out.warn(format!(
                        "{what}: volume of type {other} at {} left out",
                        v.target
                    ));
                    continue;
                }
            };
            let mut vm = Map::new();
            vm.insert("name".into(), json!(vname));
            vm.insert("mountPath".into(), json!(v.target));
            if v.read_only {
                vm.insert("readOnly".into(), json!(true));
            }
            if let Some(sp) = v.volume.as_ref().and_then(|o| o.subpath.as_ref()) {
                vm.insert("subPath".into(), json!(sp));
            }
            mounts.push(Value::Object(vm));
            let mut src = source.as_object().cloned().unwrap_or_default();
            src.insert("name".into(), json!(vname));
            vols.push(Value::Object(src));
        }
        for (i, t) in s.tmpfs.iter().enumerate() {
            let vname = format!("tmpfs-opt-{i}");
            mounts.push(json!({"name": vname, "mountPath": t.split(':').next().unwrap_or(t)}));
            vols.push(json!({"name": vname, "emptyDir": {"medium": "Memory"}}));
        }
        // Configs and secrets: each file one key, mounted by subPath.
        for (refs, defs, kindname, store, default_dir) in [
            (&s.configs, &project.configs, "config", &mut configs, "/"),
            (
                &s.secrets,
                &project.secrets,
                "secret",
                &mut secrets,
                "/run/secrets/",
            ),
        ] {
            for r in refs {
                let Some(def) = defs.get(&r.source) else {
                    out.warn(format!(
                        "{what}: {kindname} {} is not defined; left out",
                        r.source
                    ));
                    continue;
                };
                let obj = dns_label(&r.source);
                match object_content(project, def) {
                    Ok(Some(c)) => {
                        store.insert(obj.clone(), c);
                    }
                    Ok(None) => {
                        out.warn(format!("{what}: {kindname} {} is external: create the {} {obj} in the cluster yourself", r.source, if kindname == "config" { "ConfigMap" } else { "Secret" }));
                    }
                    Err(e) => return Err(Error::Invalid(format!("{kindname} {}: {e}", r.source))),
                }
                if r.uid.is_some() || r.gid.is_some() {
                    out.warn(format!(
                        "{what}: {kindname} {} uid/gid left out (use fsGroup)",
                        r.source
                    ));
                }
                let target = r
                    .target
                    .clone()
                    .unwrap_or_else(|| format!("{default_dir}{}", r.source));
                let target = if target.starts_with('/') {
                    target
                } else {
                    format!("{default_dir}{target}")
                };
                let vname = format!("{kindname}-{obj}");
                mounts.push(json!({"name": vname, "mountPath": target, "subPath": "content", "readOnly": true}));
                let mut item = json!({"key": "content", "path": "content"});
                if let Some(m) = r.mode {
                    item["mode"] = json!(m);
                }
                let src = if kindname == "config" {
                    json!({"name": vname, "configMap": {"name": obj, "items": [item]}})
                } else {
                    json!({"name": vname, "secret": {"secretName": obj, "items": [item]}})
                };
                if !vols.contains(&src) {
                    vols.push(src);
                }
            }
        }
        if !mounts.is_empty() {
            k.insert("volumeMounts".into(), json!(mounts));
        }
        if s.tty {
            k.insert("tty".into(), json!(true));
        }
        if s.stdin_open {
            k.insert("stdin".into(), json!(true));
        }
        // Restart: a Deployment's pods restart Always.
        let restart = s
            .deploy
            .as_ref()
            .and_then(|d| d.restart_policy.as_ref())
            .and_then(|r| r.condition.clone())
            .map(|c| match c.as_str() {
                "none" => "no".to_string(),
                "on-failure" => "on-failure".into(),
                _ => "always".into(),
            })
            .or_else(|| s.restart.clone())
            .unwrap_or_else(|| "no".into());
        let policy = match restart.split(':').next().unwrap_or("") {
            "always" | "unless-stopped" => "Always",
            "on-failure" => "OnFailure",
            _ => "Never",
        };
        // Compose's default `no` is not warned about: a Deployment of a
        // service that sets no policy is what anyone converting it expects.
        let explicit = s.restart.is_some()
            || s.deploy
                .as_ref()
                .is_some_and(|d| d.restart_policy.is_some());
        let policy = if kind == Kind::Deployment && policy != "Always" {
            if explicit {
                out.warn(format!(
                    "{what}: restart {restart}: a Deployment's pods restart Always"
                ));
            }
            "Always"
        } else {
            policy
        };
        if !s.depends_on.is_empty() {
            out.warn(format!(
                "{what}: depends_on {:?} dropped: Kubernetes starts pods independently (use readiness probes or init containers)",
                s.depends_on.keys().collect::<Vec<_>>()
            ));
        }
        let mut spec = Map::new();
        spec.insert("containers".into(), json!([Value::Object(k)]));
        spec.insert("restartPolicy".into(), json!(policy));
        if let Some(g) = &s.stop_grace_period {
            spec.insert("terminationGracePeriodSeconds".into(), json!(g.0.as_secs()));
        }
        if let Some(h) = &s.hostname {
            spec.insert("hostname".into(), json!(dns_label(h)));
        }
        if !s.extra_hosts.is_empty() {
            let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for h in &s.extra_hosts {
                let (host, ip) = h
                    .split_once('=')
                    .or_else(|| h.split_once(':'))
                    .unwrap_or((h, ""));
                aliases
                    .entry(ip.to_string())
                    .or_default()
                    .push(host.to_string());
            }
            let a: Vec<Value> = aliases
                .into_iter()
                .map(|(ip, h)| json!({"ip": ip, "hostnames": h}))
                .collect();
            spec.insert("hostAliases".into(), json!(a));
        }
        if s.network_mode.as_deref() == Some("host") {
            spec.insert("hostNetwork".into(), json!(true));
        }
        if s.pid.as_deref() == Some("host") {
            spec.insert("hostPID".into(), json!(true));
        }
        if s.ipc.as_deref() == Some("host") {
            spec.insert("hostIPC".into(), json!(true));
        }
        if !s.sysctls.is_empty() {
            let v: Vec<Value> = s
                .sysctls
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect();
            spec.insert("securityContext".into(), json!({"sysctls": v}));
        }
        if !vols.is_empty() {
            spec.insert("volumes".into(), json!(vols));
        }
        let unsupported: [(&str, bool); 15] = [
            (
                "networks (one flat network in a cluster; Services give the names)",
                s.networks.keys().any(|n| n != "default"),
            ),
            (
                "dns/dns_search/dns_opt",
                !s.dns.is_empty() || !s.dns_search.is_empty() || !s.dns_opt.is_empty(),
            ),
            ("ulimits", !s.ulimits.is_empty()),
            ("blkio_config", s.blkio_config.is_some()),
            (
                "pids_limit",
                s.pids_limit.is_some()
                    || lim
                        .and_then(|r| r.limits.as_ref())
                        .and_then(|l| l.pids)
                        .is_some(),
            ),
            ("devices", !s.devices.is_empty()),
            (
                "links/external_links",
                !s.links.is_empty() || !s.external_links.is_empty(),
            ),
            ("volumes_from", !s.volumes_from.is_empty()),
            ("init", s.init == Some(true)),
            (
                "cpu_shares/cpuset",
                s.cpu_shares.is_some() || s.cpuset.is_some(),
            ),
            ("stop_signal", s.stop_signal.is_some()),
            ("logging", s.logging.is_some()),
            ("shm_size", s.shm_size.is_some()),
            ("group_add", !s.group_add.is_empty()),
            ("develop (watch)", s.develop.is_some()),
        ];
        for (key, set) in unsupported {
            if set {
                out.warn(format!(
                    "{what}: {key} has no Kubernetes equivalent here; left out"
                ));
            }
        }
        if s.network_mode.as_deref().is_some_and(|m| m != "host") {
            out.warn(format!(
                "{what}: network_mode {} left out",
                s.network_mode.as_deref().unwrap_or("")
            ));
        }
        let mut labels = BTreeMap::new();
        labels.extend(s.labels.clone());
        if let Some(d) = &s.deploy {
            labels.extend(d.labels.clone());
        }
        let (l, mut a) = labels_and_annotations(&labels, &mut out, &what);
        for (ak, av) in &s.annotations {
            a.insert(ak.clone(), json!(av));
        }
        let mut all = base_labels(&app);
        all.extend(l);
        let replicas = s
            .deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(s.scale)
            .unwrap_or(1);
        if kind == Kind::Pod && replicas != 1 {
            out.warn(format!(
                "{what}: {replicas} replicas: a bare Pod is one; use --type deployment"
            ));
        }
        workloads.push(workload(kind, &app, all, a, Value::Object(spec), replicas));
    }
    for c in &claims {
        let mut l = Map::new();
        l.insert("app.kubernetes.io/part-of".into(), part_of.clone());
        out.documents.push(pvc(c, l));
    }
    for (n, content) in &configs {
        out.documents.push(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": n, "labels": {"app.kubernetes.io/part-of": part_of}},
            "data": {"content": content}
        }));
    }
    for (n, content) in &secrets {
        out.documents.push(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": n, "labels": {"app.kubernetes.io/part-of": part_of}},
            "data": {"content": base64(content.as_bytes())}
        }));
    }
    out.documents.extend(workloads);
    out.documents.extend(services_out);
    Ok(out)
}

/// A config's or secret's content: its file, its environment variable or
/// its inline content; `None` for an external one.
fn object_content(project: &Project, def: &FileObject) -> Result<Option<String>, String> {
    if def.external {
        return Ok(None);
    }
    if let Some(c) = &def.content {
        return Ok(Some(c.clone()));
    }
    if let Some(e) = &def.environment {
        return project
            .environment
            .get(e)
            .cloned()
            .map(Some)
            .ok_or_else(|| format!("environment variable {e} is not set"));
    }
    if let Some(f) = &def.file {
        let p = Path::new(f);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            project.working_dir.join(p)
        };
        return std::fs::read(&p)
            .map_err(|e| format!("reading {}: {e}", p.display()))
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| format!("{} is not UTF-8 text", p.display()))
            })
            .map(Some);
    }
    Err("neither file, environment nor content".into())
}
