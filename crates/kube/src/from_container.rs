//! Containers to one Pod (or Deployment), as podman's `kube generate`.
use std::collections::BTreeMap;

use engine::config::{MountType, NetworkMode};
use engine::container::Container;
use engine::pod::{Pod, SharedNamespace};
use engine::restart::RestartPolicy;
use engine::Engine;
use serde_json::{json, Map, Value};

use crate::{
    bytes_quantity, capabilities, cpu_quantity, dns_label, exec_probe, labels_and_annotations, pvc,
    run_as, service, workload, Error, Generated, Kind, Options,
};

/// The PATH berth (and Docker) give a container whose image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What `kube generate` was given, resolved: each pod named becomes a
/// Pod of its own (its members, its hostname, ports and shared pids), the
/// loose containers one more (named after the first, podman's `NAME-pod`).
pub fn generate_containers(
    engine: &Engine,
    names: &[String],
    opts: Options,
) -> Result<Generated, Error> {
    if names.is_empty() {
        return Err(Error::Invalid(
            "kube generate needs at least one container or pod".into(),
        ));
    }
    let mut loose: Vec<Container> = Vec::new();
    let mut pods: Vec<(Pod, Vec<Container>)> = Vec::new();
    for name in names {
        match engine.container(name) {
            Ok(c) if c.config.pod_infra => {
                let pod = engine.pod(&c.config.pod)?;
                return Err(Error::Invalid(format!(
                    "{name} is the infra container of pod {}; name the pod instead",
                    pod.name
                )));
            }
            Ok(c) => loose.push(c),
            Err(not_container) => match engine.pod(name) {
                Ok(pod) => {
                    let members: Vec<Container> = engine
                        .pod_containers(&pod)?
                        .into_iter()
                        .filter(|c| !c.config.pod_infra)
                        .collect();
                    if members.is_empty() {
                        return Err(Error::Invalid(format!(
                            "pod {} has no containers besides its infra: nothing to generate; add one with berth run --pod {}",
                            pod.name, pod.name
                        )));
                    }
                    if !pods.iter().any(|(p, _)| p.id == pod.id) {
                        pods.push((pod, members));
                    }
                }
                // Neither: the container's message (podman's).
                Err(_) => return Err(not_container.into()),
            },
        }
    }
    let kind = opts.kind.unwrap_or(Kind::Pod);
    let mut out = Generated::default();
    for (pod, members) in &pods {
        pod_document(engine, members, Some(pod), kind, opts, &mut out)?;
    }
    if !loose.is_empty() {
        pod_document(engine, &loose, None, kind, opts, &mut out)?;
    }
    Ok(out)
}

/// One Pod (or Deployment) of `members`; with `pod`, that pod's name,
/// hostname, published ports (on its first container) and shared pids.
fn pod_document(
    engine: &Engine,
    members: &[Container],
    berth_pod: Option<&Pod>,
    kind: Kind,
    opts: Options,
    out: &mut Generated,
) -> Result<(), Error> {
    let pod_name = match berth_pod {
        Some(p) => {
            let n = dns_label(&p.name);
            if n != p.name {
                out.warn(format!(
                    "pod {}: named {n:?} in Kubernetes (DNS-1123 label)",
                    p.name
                ));
            }
            n
        }
        None => dns_label(&format!("{}-pod", members[0].name())),
    };
    let mut containers = Vec::new();
    let mut volumes: BTreeMap<String, Value> = BTreeMap::new();
    let mut claims: Vec<String> = Vec::new();
    // ConfigMaps and Secrets of played pods' volumes.
    let mut objects: Vec<Value> = Vec::new();
    let mut service_ports: Vec<(String, u16, String)> = Vec::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut restart: Option<&'static str> = None;
    let mut grace: Option<i64> = None;
    let mut pod = Map::new();
    let mut seen_ports = std::collections::BTreeSet::new();
    if let Some(p) = berth_pod {
        pod.insert("hostname".into(), json!(p.config.hostname));
        if p.shares(SharedNamespace::Pid) {
            pod.insert("shareProcessNamespace".into(), json!(true));
        }
        for ns in [
            SharedNamespace::Ipc,
            SharedNamespace::Net,
            SharedNamespace::Uts,
        ] {
            if !p.shares(ns) {
                out.warn(format!(
                    "pod {}: its containers do not share the {} namespace; a Kubernetes pod always shares it",
                    p.name,
                    ns.as_str()
                ));
            }
        }
        // A pod with a user namespace of its own (`pod create --userns`):
        // Kubernetes' `hostUsers: false` (the cluster picks the ids).
        if p.config.userns != engine::pod::PodUserns::Host {
            pod.insert("hostUsers".into(), json!(false));
        }
        match p.config.network.as_str() {
            "" | "bridge" | "default" => {}
            "host" => {
                pod.insert("hostNetwork".into(), json!(true));
            }
            n => out.warn(format!(
                "pod {}: network {n:?}: a cluster has one flat network; left out",
                p.name
            )),
        }
        let (l, a) = labels_and_annotations(&p.config.labels, out, &format!("pod {}", p.name));
        labels.extend(l);
        annotations.extend(a);
    }
    for (index, c) in members.iter().enumerate() {
        let cname = c.record.name.trim_start_matches('/').to_string();
        let what = format!("container {cname}");
        let cfg = &c.config;
        let image = engine
            .inspect_image(&c.record.image_id.to_string())
            .unwrap_or_default();
        let icfg = &image["Config"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let img_env = strings(&icfg["Env"]);
        let img_cmd = strings(&icfg["Cmd"]);
        let img_ep = strings(&icfg["Entrypoint"]);
        let mut k = Map::new();
        // `kube play` names a pod's containers `POD-NAME`: the YAML's name
        // is NAME again, so a played pod generates the file it came from.
        let short = berth_pod
            .and_then(|p| cname.strip_prefix(&format!("{}-", p.name)))
            .filter(|s| !s.is_empty())
            .unwrap_or(&cname);
        let kname = dns_label(short);
        if kname != short {
            out.warn(format!(
                "{what}: named {kname:?} in Kubernetes (DNS-1123 label)"
            ));
        }
        k.insert("name".into(), json!(kname));
        k.insert("image".into(), json!(cfg.image));
        // Kubernetes' command replaces ENTRYPOINT and args CMD; a new
        // entrypoint drops the image's CMD, so args go with it.
        if cfg.entrypoint != img_ep {
            k.insert("command".into(), json!(cfg.entrypoint));
            if !cfg.cmd.is_empty() {
                k.insert("args".into(), json!(cfg.cmd));
            }
        } else if cfg.cmd != img_cmd {
            k.insert("args".into(), json!(cfg.cmd));
        }
        let env: Vec<Value> = cfg
            .env
            .iter()
            .filter(|e| !(img_env.contains(e) || img_env.is_empty() && e.as_str() == DEFAULT_PATH))
            .filter_map(|e| e.split_once('='))
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        if !env.is_empty() {
            k.insert("env".into(), json!(env));
        }
        if !cfg.working_dir.is_empty() && icfg["WorkingDir"].as_str() != Some(&cfg.working_dir) {
            k.insert("workingDir".into(), json!(cfg.working_dir));
        }
        // Ports.
        let mut ports = Vec::new();
        let pod_ports = match berth_pod {
            Some(p) if index == 0 => p.config.ports.as_slice(),
            _ => &[],
        };
        for p in cfg.ports.iter().chain(pod_ports) {
            let proto = p.proto.to_ascii_uppercase();
            if !seen_ports.insert((p.container_port, proto.clone())) {
                out.warn(format!(
                    "{what}: port {}/{} is published by another container of the pod; left out",
                    p.container_port, p.proto
                ));
                continue;
            }
            let mut kp = Map::new();
            kp.insert("containerPort".into(), json!(p.container_port));
            if p.host_port != 0 && !p.picked {
                kp.insert("hostPort".into(), json!(p.host_port));
            }
            if !p.host_ip.is_empty() {
                kp.insert("hostIP".into(), json!(p.host_ip));
            }
            kp.insert("protocol".into(), json!(proto));
            ports.push(Value::Object(kp));
            service_ports.push((
                format!("{}-{}", p.proto.to_ascii_lowercase(), p.container_port),
                p.container_port,
                proto,
            ));
        }
        if !ports.is_empty() {
            k.insert("ports".into(), json!(ports));
        }
        // Resources.
        let mut limits = Map::new();
        let mut requests = Map::new();
        if cfg.memory > 0 {
            limits.insert("memory".into(), json!(bytes_quantity(cfg.memory as u64)));
        }
        if cfg.nano_cpus > 0 {
            if cfg.nano_cpus % 1_000_000 != 0 {
                out.warn(format!("{what}: --cpus rounded up to whole millicores"));
            }
            limits.insert("cpu".into(), json!(cpu_quantity(cfg.nano_cpus)));
        }
        if cfg.memory_reservation > 0 {
            requests.insert(
                "memory".into(),
                json!(bytes_quantity(cfg.memory_reservation as u64)),
            );
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
        run_as(&cfg.user, &mut sc, out, &what);
        if cfg.read_only {
            sc.insert("readOnlyRootFilesystem".into(), json!(true));
        }
        if cfg.privileged {
            sc.insert("privileged".into(), json!(true));
        }
        if cfg.no_new_privileges {
            sc.insert("allowPrivilegeEscalation".into(), json!(false));
        }
        if let Some(caps) = capabilities(&cfg.cap_add, &cfg.cap_drop) {
            sc.insert("capabilities".into(), caps);
        }
        for o in &cfg.security_opt {
            match o.as_str() {
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {}
                "seccomp=unconfined" | "seccomp:unconfined" => {
                    sc.insert("seccompProfile".into(), json!({"type": "Unconfined"}));
                }
                _ => out.warn(format!(
                    "{what}: --security-opt {o} has no Kubernetes equivalent here; left out"
                )),
            }
        }
        if !sc.is_empty() {
            k.insert("securityContext".into(), Value::Object(sc));
        }
        // Healthcheck.
        if let Some(h) = &cfg.healthcheck {
            use engine::health::ProbeKind;
            let action = match h.probe() {
                Some(ProbeKind::Exec(cmd)) => Some((cmd, None)),
                // berth's own network probes (from kube play).
                Some(ProbeKind::Tcp { port }) => {
                    Some((Vec::new(), Some(("tcpSocket", json!({"port": port})))))
                }
                Some(ProbeKind::HttpGet { port, path }) => Some((
                    Vec::new(),
                    Some(("httpGet", json!({"path": path, "port": port}))),
                )),
                None => None,
            };
            if let Some((cmd, net)) = action {
                let mut probe = exec_probe(
                    cmd,
                    h.interval(),
                    h.timeout(),
                    h.start_period(),
                    h.retries,
                    out,
                    &what,
                );
                if let (Some((key, value)), Some(p)) = (net, probe.as_object_mut()) {
                    p.remove("exec");
                    p.insert(key.into(), value);
                }
                k.insert("livenessProbe".into(), probe);
            }
        }
        // Mounts.
        let mut mounts = Vec::new();
        for m in &cfg.mounts {
            let mut bind_sub: Option<String> = None;
            let (vname, source) = match m.kind {
                MountType::Volume if m.anonymous => (
                    dns_label(&format!("{kname}-anon-{}", mounts.len())),
                    json!({"emptyDir": {}}),
                ),
                MountType::Volume => {
                    let claim = dns_label(&m.source);
                    if claim != m.source {
                        out.warn(format!(
                            "{what}: volume {:?} claimed as {claim:?} (DNS-1123 label)",
                            m.source
                        ));
                    }
                    if !claims.contains(&claim) {
                        claims.push(claim.clone());
                    }
                    (
                        format!("{claim}-pvc"),
                        json!({"persistentVolumeClaim": {"claimName": claim}}),
                    )
                }
                MountType::Bind if crate::play::played_source(engine, &m.source).is_some() => {
                    let played = crate::play::played_source(engine, &m.source)
                        .expect("checked by the guard");
                    bind_sub = played.sub.clone();
                    let source = played_volume(&played, &mut objects, out, &what)?;
                    (played.volume.clone(), source)
                }
                MountType::Bind => {
                    let ty = match std::fs::metadata(&m.source) {
                        Ok(md) if md.is_dir() => "Directory",
                        Ok(_) => "File",
                        Err(_) => "DirectoryOrCreate",
                    };
                    (
                        // podman's names: the path's slashes as hyphens, `/` as `root`.
                        dns_label(&format!(
                            "{}-host",
                            match m.source.trim_matches('/') {
                                "" => "root",
                                p => p,
                            }
                        )),
                        json!({"hostPath": {"path": m.source, "type": ty}}),
                    )
                }
                MountType::Tmpfs => (
                    dns_label(&format!("{kname}-tmpfs-{}", mounts.len())),
                    tmpfs_source(m.tmpfs_size),
                ),
            };
            let mut vm = Map::new();
            vm.insert("name".into(), json!(vname));
            vm.insert("mountPath".into(), json!(m.target));
            if m.readonly {
                vm.insert("readOnly".into(), json!(true));
            }
            if !m.subpath.is_empty() {
                vm.insert("subPath".into(), json!(m.subpath));
            }
            if let Some(sub) = bind_sub.take() {
                vm.insert("subPath".into(), json!(sub));
            }
            match m.propagation.as_str() {
                "" | "rprivate" | "private" => {}
                "rslave" | "slave" => {
                    vm.insert("mountPropagation".into(), json!("HostToContainer"));
                }
                "rshared" | "shared" => {
                    vm.insert("mountPropagation".into(), json!("Bidirectional"));
                }
                p => out.warn(format!(
                    "{what}: mount propagation {p} of {}; left out",
                    m.target
                )),
            }
            if m.chown {
                out.warn(format!(
                    "{what}: :U on {} has no Kubernetes equivalent (use fsGroup); left out",
                    m.target
                ));
            }
            mounts.push(Value::Object(vm));
            if let Some(old) = volumes.insert(vname.clone(), source.clone()) {
                if old != source {
                    return Err(Error::Invalid(format!(
                        "two different mounts are both named {vname:?} in the pod; rename one"
                    )));
                }
            }
        }
        for (target, options) in &cfg.tmpfs {
            let size = options
                .split(',')
                .find_map(|o| o.strip_prefix("size="))
                .and_then(parse_size);
            let vname = dns_label(&format!("{kname}-tmpfs-{}", mounts.len()));
            mounts.push(json!({"name": vname, "mountPath": target}));
            volumes.insert(vname, tmpfs_source(size));
        }
        if !mounts.is_empty() {
            k.insert("volumeMounts".into(), json!(mounts));
        }
        if cfg.tty {
            k.insert("tty".into(), json!(true));
        }
        if cfg.open_stdin {
            k.insert("stdin".into(), json!(true));
        }
        // Pod-wide settings, from the first container that has them.
        let r = match cfg.restart_policy {
            RestartPolicy::No => "Never",
            RestartPolicy::Always | RestartPolicy::UnlessStopped => "Always",
            RestartPolicy::OnFailure { max } => {
                if max > 0 {
                    out.warn(format!(
                        "{what}: on-failure:{max}: Kubernetes retries without a limit"
                    ));
                }
                "OnFailure"
            }
        };
        if matches!(cfg.restart_policy, RestartPolicy::UnlessStopped) {
            out.warn(format!("{what}: unless-stopped is Always in Kubernetes"));
        }
        match restart {
            None => restart = Some(r),
            Some(prev) if prev != r => out.warn(format!(
                "{what}: restart policy {r} differs from the pod's {prev}; the pod has one"
            )),
            _ => {}
        }
        if let Some(t) = cfg.stop_timeout {
            grace.get_or_insert(t);
        }
        // A container of its own user namespace (not a pod's member, whose
        // pod said so above): `hostUsers: false`.
        if c.config.pod.is_empty() && cfg.userns.is_private() {
            pod.insert("hostUsers".into(), json!(false));
        }
        match cfg.network_mode {
            NetworkMode::Host => {
                pod.insert("hostNetwork".into(), json!(true));
            }
            NetworkMode::Container(_) if !c.config.pod.is_empty() => {}
            NetworkMode::Container(_) => out.warn(format!(
                "{what}: --network container: the pod's containers share one network anyway"
            )),
            _ => {}
        }
        if c.config.pod.is_empty()
            && (cfg.networks.len() > 1 || cfg.networks.iter().any(|n| n != "bridge"))
        {
            out.warn(format!(
                "{what}: networks {:?}: a cluster has one flat network; reach other pods through Services",
                cfg.networks
            ));
        }
        if cfg.pid_mode == "host" {
            pod.insert("hostPID".into(), json!(true));
        }
        if cfg.ipc_mode == "host" {
            pod.insert("hostIPC".into(), json!(true));
        }
        if !cfg.sysctls.is_empty() {
            let s: Vec<Value> = cfg
                .sysctls
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect();
            pod.insert("securityContext".into(), json!({"sysctls": s}));
        }
        let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for h in &cfg.extra_hosts {
            if let Some((host, ip)) = h.split_once(':') {
                aliases
                    .entry(ip.to_string())
                    .or_default()
                    .push(host.to_string());
            }
        }
        if !aliases.is_empty() {
            let a: Vec<Value> = aliases
                .into_iter()
                .map(|(ip, h)| json!({"ip": ip, "hostnames": h}))
                .collect();
            pod.insert("hostAliases".into(), json!(a));
        }
        // The rest, named when set.
        let unsupported: [(&str, bool); 14] = [
            (
                "--dns/--dns-search/--dns-option",
                !cfg.dns.is_empty() || !cfg.dns_search.is_empty() || !cfg.dns_options.is_empty(),
            ),
            ("--pids-limit", cfg.pids_limit > 0),
            ("--ulimit", !cfg.ulimits.is_empty()),
            ("--cpu-shares", cfg.cpu_shares > 0),
            ("--memory-swap", cfg.memory_swap != 0),
            (
                "--cpuset-cpus/--cpuset-mems",
                !cfg.cpuset_cpus.is_empty() || !cfg.cpuset_mems.is_empty(),
            ),
            ("--init", cfg.init),
            ("--device-cgroup-rule", !cfg.device_cgroup_rules.is_empty()),
            (
                "--blkio-weight/--blkio-weight-device/--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops",
                cfg.blkio.any(),
            ),
            ("--link", !cfg.links.is_empty()),
            ("--group-add", !cfg.group_add.is_empty()),
            (
                "--stop-signal",
                !cfg.stop_signal.is_empty()
                    && cfg.stop_signal != "SIGTERM"
                    && cfg.stop_signal != "15",
            ),
            (
                "--mac-address/--ip",
                cfg.mac_address.is_some() || cfg.ip.is_some(),
            ),
            (
                "--shm-size (an emptyDir of medium Memory at /dev/shm can stand in)",
                cfg.shm_size != 0 && cfg.shm_size != 64 << 20,
            ),
        ];
        for (flag, set) in unsupported {
            if set {
                out.warn(format!(
                    "{what}: {flag} has no Kubernetes equivalent in a pod spec; left out"
                ));
            }
        }
        if !matches!(cfg.log_config.driver.as_str(), "" | "json-file") {
            out.warn(format!(
                "{what}: log driver {}: the cluster's node keeps logs; left out",
                cfg.log_config.driver
            ));
        }
        let img_labels = icfg["Labels"].as_object().cloned().unwrap_or_default();
        let own: BTreeMap<String, String> = cfg
            .labels
            .iter()
            .filter(|(k, v)| img_labels.get(*k).and_then(Value::as_str) != Some(v.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (l, a) = labels_and_annotations(&own, out, &what);
        labels.extend(l);
        annotations.extend(a);
        containers.push(Value::Object(k));
    }
    labels.insert("app".into(), json!(pod_name.clone()));
    let mut spec = Map::new();
    spec.insert("containers".into(), json!(containers));
    let mut restart = restart.unwrap_or("Always");
    if kind == Kind::Deployment && restart != "Always" {
        out.warn(format!(
            "restart policy {restart}: a Deployment's pods restart Always"
        ));
        restart = "Always";
    }
    spec.insert("restartPolicy".into(), json!(restart));
    if let Some(g) = grace {
        spec.insert("terminationGracePeriodSeconds".into(), json!(g));
    }
    spec.extend(pod);
    if !volumes.is_empty() {
        let v: Vec<Value> = volumes
            .into_iter()
            .map(|(n, s)| {
                let mut m = s.as_object().cloned().unwrap_or_default();
                m.insert("name".into(), json!(n));
                Value::Object(m)
            })
            .collect();
        spec.insert("volumes".into(), json!(v));
    }
    for o in objects {
        if !out
            .documents
            .iter()
            .any(|d| d["kind"] == o["kind"] && d["metadata"]["name"] == o["metadata"]["name"])
        {
            out.documents.push(o);
        }
    }
    for c in &claims {
        if !out
            .documents
            .iter()
            .any(|d| d["kind"] == "PersistentVolumeClaim" && d["metadata"]["name"] == c.as_str())
        {
            out.documents.push(pvc(c, Map::new()));
        }
    }
    out.documents.push(workload(
        kind,
        &pod_name,
        labels,
        annotations,
        Value::Object(spec),
        1,
    ));
    if opts.service {
        if service_ports.is_empty() {
            out.warn("--service: no published ports; no Service generated");
        } else {
            out.documents
                .push(service(&pod_name, &pod_name, &service_ports));
        }
    }
    Ok(())
}

/// A ConfigMap, Secret or emptyDir volume `kube play` made, as the YAML
/// had it: the volume, and (for ConfigMaps and Secrets) an object named
/// as the volume holding its files, with `items` where a file is nested
/// or its mode is not 0644.
fn played_volume(
    played: &crate::play::PlayedSource,
    objects: &mut Vec<Value>,
    out: &mut Generated,
    what: &str,
) -> Result<Value, Error> {
    use std::os::unix::fs::PermissionsExt;
    if played.kind == "emptydir" {
        return Ok(json!({"emptyDir": {}}));
    }
    let mut files = Vec::new();
    let mut stack = vec![played.dir.clone()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::Invalid(format!("reading {}: {e}", dir.display())))?;
        for e in entries.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() && files.len() < 1000 {
                let rel = p
                    .strip_prefix(&played.dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::read(&p)
                    .map_err(|e| Error::Invalid(format!("reading {}: {e}", p.display())))?;
                files.push((rel, bytes, md.permissions().mode() & 0o777));
            }
        }
    }
    files.sort();
    let secret = played.kind == "secret";
    let mut data = Map::new();
    let mut binary = Map::new();
    let mut items = Vec::new();
    let plain = files
        .iter()
        .all(|(rel, _, mode)| !rel.contains('/') && *mode == 0o644);
    for (rel, bytes, mode) in &files {
        let key = rel.replace('/', ".");
        match (secret, String::from_utf8(bytes.clone())) {
            (true, _) => {
                data.insert(key.clone(), json!(crate::base64(bytes)));
            }
            (false, Ok(text)) => {
                data.insert(key.clone(), json!(text));
            }
            (false, Err(_)) => {
                binary.insert(key.clone(), json!(crate::base64(bytes)));
            }
        }
        if !plain {
            let mut it = Map::new();
            it.insert("key".into(), json!(key));
            it.insert("path".into(), json!(rel));
            if *mode != 0o644 {
                it.insert("mode".into(), json!(mode));
            }
            items.push(Value::Object(it));
        }
    }
    let name = &played.volume;
    let kind = if secret { "Secret" } else { "ConfigMap" };
    let mut object = Map::new();
    object.insert("apiVersion".into(), json!("v1"));
    object.insert("kind".into(), json!(kind));
    object.insert("metadata".into(), json!({"name": name}));
    if secret {
        object.insert("type".into(), json!("Opaque"));
    }
    object.insert("data".into(), Value::Object(data));
    if !binary.is_empty() {
        object.insert("binaryData".into(), Value::Object(binary));
    }
    let object = Value::Object(object);
    let same_name = objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name.as_str());
    // The pod's volume mounted in two containers is one object; only two
    // volumes of one name with different files are a conflict.
    if let Some(other) = same_name {
        if *other != object {
            out.warn(format!(
                "{what}: two {kind} volumes are named {name}; the first one's files are kept"
            ));
        }
    } else {
        objects.push(object);
    }
    let mut v = Map::new();
    v.insert(
        if secret { "secretName" } else { "name" }.into(),
        json!(name),
    );
    if !items.is_empty() {
        v.insert("items".into(), json!(items));
    }
    let key = if secret { "secret" } else { "configMap" };
    let mut source = Map::new();
    source.insert(key.into(), Value::Object(v));
    Ok(Value::Object(source))
}

fn tmpfs_source(size: Option<u64>) -> Value {
    let mut e = Map::new();
    e.insert("medium".into(), json!("Memory"));
    if let Some(s) = size {
        e.insert("sizeLimit".into(), json!(bytes_quantity(s)));
    }
    json!({"emptyDir": e})
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()?.to_ascii_lowercase() {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}
