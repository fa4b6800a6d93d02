//! A pod spec (a Pod's, or a Deployment's, Job's or DaemonSet's
//! template) into a plan: the pod to create, its containers' create
//! requests, the files its ConfigMap and Secret volumes hold, the dirs of
//! its emptyDirs and the volumes it claims. Pure: nothing is made here, so
//! a bad file fails before anything exists.
use std::collections::BTreeMap;
use std::path::PathBuf;

use engine::config::PortMapping;
use engine::container::create::{CreateRequest, PodMembership};
use engine::health::{HealthConfig, OnFailure};
use engine::restart::RestartPolicy;

use super::catalog::{port_number, protocol, Catalog};
use super::fields::Obj;
use crate::Error;

/// A file a ConfigMap or Secret volume holds (under the pod's dir).
#[derive(Debug, Clone)]
pub(crate) struct PlannedFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// A host path a `hostPath` of type `…OrCreate` makes.
#[derive(Debug, Clone)]
pub(crate) struct HostCreate {
    pub path: PathBuf,
    pub dir: bool,
}

/// A container to create: its request and its name in the YAML.
#[derive(Debug, Clone)]
pub(crate) struct PlannedContainer {
    pub yaml_name: String,
    pub req: CreateRequest,
    pub image_policy: PullPolicy,
    /// A named container port (for a Service's `targetPort: NAME`).
    pub named_ports: BTreeMap<String, (u16, String)>,
}

/// `imagePullPolicy` (podman's default when unset: missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// One pod to make.
#[derive(Debug, Clone)]
pub(crate) struct PodPlan {
    /// `Pod web`, `Deployment web` (for messages).
    pub what: String,
    pub name: String,
    pub hostname: Option<String>,
    pub share_pid: bool,
    pub network: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `hostAliases`: in the pod's /etc/hosts (its infra's).
    pub extra_hosts: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub init: Vec<PlannedContainer>,
    pub containers: Vec<PlannedContainer>,
    pub dir: PathBuf,
    pub files: Vec<PlannedFile>,
    pub empty_dirs: Vec<PathBuf>,
    pub claims: Vec<String>,
    pub host_creates: Vec<HostCreate>,
}

/// What the volumes of the spec become in a container.
enum Source {
    /// A named volume (claim).
    Claim(String, bool),
    /// A host dir or file (hostPath, emptyDir, ConfigMap, Secret).
    Bind(PathBuf, bool),
    /// A tmpfs per container (emptyDir medium Memory).
    Tmpfs(Option<u64>),
    /// Not supported (warned about where it is declared).
    Unsupported,
}

/// Context of the planning of one pod.
pub(crate) struct PodContext<'c> {
    pub catalog: &'c Catalog,
    /// `Pod web` etc.
    pub what: String,
    /// The pod's name.
    pub name: String,
    /// Where its files go (`<root>/kube/pod/<name>`).
    pub dir: PathBuf,
    /// `--network`.
    pub network: Option<String>,
    /// Job: restartPolicy must be Never or OnFailure.
    pub job: bool,
}

/// Plan the pod of `spec` (with `labels` from the pod's metadata).
pub(crate) fn plan_pod(
    ctx: &PodContext<'_>,
    spec: &Obj<'_>,
    labels: BTreeMap<String, String>,
) -> Result<PodPlan, Error> {
    let mut plan = PodPlan {
        what: ctx.what.clone(),
        name: ctx.name.clone(),
        hostname: spec.str("hostname")?,
        share_pid: spec.bool("shareProcessNamespace")?.unwrap_or(false),
        network: ctx.network.clone(),
        labels,
        extra_hosts: Vec::new(),
        ports: Vec::new(),
        init: Vec::new(),
        containers: Vec::new(),
        dir: ctx.dir.clone(),
        files: Vec::new(),
        empty_dirs: Vec::new(),
        claims: Vec::new(),
        host_creates: Vec::new(),
    };
    if spec.bool("hostNetwork")? == Some(true) {
        if ctx.network.is_some() {
            return Err(spec.invalid("hostNetwork", "true, and --network was given: drop one"));
        }
        plan.network = Some("host".into());
    }
    for (key, why) in [
        ("hostPID", "a berth pod has a pid namespace of its own"),
        ("hostIPC", "a berth pod has an IPC namespace of its own"),
        ("subdomain", "berth has no cluster DNS"),
        ("nodeName", "one host"),
        ("nodeSelector", "one host"),
        ("affinity", "one host"),
        ("tolerations", "one host"),
        ("topologySpreadConstraints", "one host"),
        ("priorityClassName", "no scheduler"),
        ("priority", "no scheduler"),
        ("schedulerName", "no scheduler"),
        ("serviceAccountName", "no API server"),
        ("serviceAccount", "no API server"),
        (
            "imagePullSecrets",
            "berth pulls with berth login's credentials",
        ),
        ("dnsConfig", "the pod's members use the infra's resolv.conf"),
        ("runtimeClassName", "berth's own runtime"),
        ("activeDeadlineSeconds", "no controller"),
        ("readinessGates", "no controller"),
        ("overhead", "no pod cgroup"),
        ("preemptionPolicy", "no scheduler"),
        (
            "enableServiceLinks",
            "berth has no Service environment variables",
        ),
    ] {
        spec.unapplied(key, why);
    }
    // Defaults a cluster writes back: no effect on one host.
    spec.quiet("automountServiceAccountToken");
    spec.quiet("securityContext");
    match spec.str("dnsPolicy")?.as_deref() {
        None | Some("ClusterFirst" | "Default") => {}
        Some(p) => spec.warn(format!(
            "{}: {p}: the pod resolves names as its network does; not applied",
            spec.at("dnsPolicy")
        )),
    }
    let restart = match spec.str("restartPolicy")?.as_deref() {
        None if ctx.job => {
            return Err(spec.invalid(
                "restartPolicy",
                "missing: a Job's pod needs Never or OnFailure",
            ))
        }
        None | Some("Always") if !ctx.job => RestartPolicy::Always,
        Some("Always") => {
            return Err(spec.invalid(
                "restartPolicy",
                "Always: a Job's pod needs Never or OnFailure",
            ))
        }
        Some("OnFailure") => RestartPolicy::OnFailure { max: 0 },
        Some("Never") => RestartPolicy::No,
        Some(p) => {
            return Err(spec.invalid(
                "restartPolicy",
                format!("{p}: expected Always, OnFailure or Never"),
            ))
        }
        None => unreachable!("handled above"),
    };
    let grace = spec.int("terminationGracePeriodSeconds")?;
    let mut extra_hosts = Vec::new();
    for a in spec.list("hostAliases")? {
        let ip = a.str("ip")?.ok_or_else(|| a.invalid("ip", "missing"))?;
        for h in a.strings("hostnames")? {
            extra_hosts.push(format!("{h}:{ip}"));
        }
    }
    plan.extra_hosts = extra_hosts;
    let pod_sc = spec_security(spec)?;
    // Volumes.
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for v in spec.list("volumes")? {
        let vname = v
            .str("name")?
            .ok_or_else(|| v.invalid("name", "missing: every volume needs a name"))?;
        let source = volume_source(ctx, &v, &vname, &mut plan)?;
        sources.insert(vname, source);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, init) in [("initContainers", true), ("containers", false)] {
        for c in spec.list(key)? {
            let planned = plan_container(ctx, &c, init, &sources, &pod_sc, &mut plan.ports)?;
            if !seen.insert(planned.yaml_name.clone()) {
                return Err(c.invalid(
                    "name",
                    format!(
                        "{}: two containers of the pod have this name",
                        planned.yaml_name
                    ),
                ));
            }
            let mut planned = planned;
            planned.req.restart = if init { RestartPolicy::No } else { restart };
            planned.req.stop_timeout = grace;
            if init {
                plan.init.push(planned);
            } else {
                plan.containers.push(planned);
            }
        }
    }
    if plan.containers.is_empty() {
        return Err(spec.invalid("containers", "missing: a pod needs a container"));
    }
    Ok(plan)
}

/// The pod-level securityContext fields every container inherits.
#[derive(Debug, Default, Clone)]
struct PodSecurity {
    run_as_user: Option<i64>,
    run_as_group: Option<i64>,
    run_as_non_root: Option<bool>,
    groups: Vec<String>,
    sysctls: BTreeMap<String, String>,
    seccomp_unconfined: bool,
}

fn spec_security(spec: &Obj<'_>) -> Result<PodSecurity, Error> {
    let mut out = PodSecurity::default();
    let Some(sc) = spec.obj("securityContext")? else {
        return Ok(out);
    };
    out.run_as_user = sc.int("runAsUser")?;
    out.run_as_group = sc.int("runAsGroup")?;
    out.run_as_non_root = sc.bool("runAsNonRoot")?;
    out.groups = match sc.get("supplementalGroups") {
        Some(serde_json::Value::Array(a)) => a.iter().map(|g| g.to_string()).collect(),
        Some(_) => return Err(sc.invalid("supplementalGroups", "expected a list of gids")),
        None => Vec::new(),
    };
    for s in sc.list("sysctls")? {
        let n = s.str("name")?.ok_or_else(|| s.invalid("name", "missing"))?;
        let v = s.str("value")?.unwrap_or_default();
        out.sysctls.insert(n, v);
    }
    out.seccomp_unconfined = seccomp(&sc)?;
    sc.unapplied("fsGroup", "berth does not chown volumes to a group");
    sc.unapplied(
        "fsGroupChangePolicy",
        "berth does not chown volumes to a group",
    );
    sc.unapplied("seLinuxOptions", "berth sets no SELinux labels");
    sc.unapplied("appArmorProfile", "berth loads no AppArmor profiles");
    sc.unapplied("windowsOptions", "Linux only");
    sc.unapplied("supplementalGroupsPolicy", "berth adds the groups given");
    Ok(out)
}

/// `seccompProfile`: Unconfined is true; RuntimeDefault berth's default.
fn seccomp(sc: &Obj<'_>) -> Result<bool, Error> {
    let Some(p) = sc.obj("seccompProfile")? else {
        return Ok(false);
    };
    match p.str("type")?.as_deref() {
        Some("Unconfined") => Ok(true),
        Some("RuntimeDefault") | None => Ok(false),
        Some(t) => {
            p.warn(format!(
                "{}: {t}: berth loads its default profile instead; not applied",
                p.at("type")
            ));
            p.quiet("localhostProfile");
            Ok(false)
        }
    }
}

fn volume_source(
    ctx: &PodContext<'_>,
    v: &Obj<'_>,
    vname: &str,
    plan: &mut PodPlan,
) -> Result<Source, Error> {
    if let Some(pvc) = v.obj("persistentVolumeClaim")? {
        let claim = pvc
            .str("claimName")?
            .ok_or_else(|| pvc.invalid("claimName", "missing"))?;
        let ro = pvc.bool("readOnly")?.unwrap_or(false);
        if !plan.claims.contains(&claim) {
            plan.claims.push(claim.clone());
        }
        return Ok(Source::Claim(claim, ro));
    }
    if let Some(hp) = v.obj("hostPath")? {
        let path = PathBuf::from(
            hp.str("path")?
                .ok_or_else(|| hp.invalid("path", "missing"))?,
        );
        if !path.is_absolute() {
            return Err(hp.invalid("path", "must be absolute"));
        }
        let ty = hp.str("type")?.unwrap_or_default();
        let md = std::fs::metadata(&path).ok();
        let exists = |want: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(hp.invalid(
                    "type",
                    format!("{ty}: {} is not {want} on this host", path.display()),
                ))
            }
        };
        match ty.as_str() {
            "" => {}
            "DirectoryOrCreate" | "FileOrCreate" if md.is_none() => {
                plan.host_creates.push(HostCreate {
                    path: path.clone(),
                    dir: ty == "DirectoryOrCreate",
                })
            }
            "DirectoryOrCreate" | "Directory" => {
                exists("a directory", md.is_some_and(|m| m.is_dir()))?
            }
            "FileOrCreate" | "File" => exists("a file", md.is_some_and(|m| m.is_file()))?,
            "Socket" | "CharDevice" | "BlockDevice" => {
                use std::os::unix::fs::FileTypeExt;
                let ft = md.map(|m| m.file_type());
                let ok = match ty.as_str() {
                    "Socket" => ft.is_some_and(|f| f.is_socket()),
                    "CharDevice" => ft.is_some_and(|f| f.is_char_device()),
                    _ => ft.is_some_and(|f| f.is_block_device()),
                };
                exists(&format!("a {}", ty.to_ascii_lowercase()), ok)?;
            }
            other => return Err(hp.invalid("type", format!("{other}: not a hostPath type"))),
        }
        return Ok(Source::Bind(path, false));
    }
    if let Some(ed) = v.obj("emptyDir")? {
        let size = match ed.str("sizeLimit")? {
            Some(q) => Some(
                memory_quantity(&q)
                    .ok_or_else(|| ed.invalid("sizeLimit", format!("{q}: not a quantity")))?,
            ),
            None => None,
        };
        return match ed.str("medium")?.as_deref() {
            Some("Memory") => Ok(Source::Tmpfs(size)),
            None | Some("") => {
                if size.is_some() {
                    ed.warn(format!(
                        "{}: a dir on the host's disk has no size limit; not applied",
                        ed.at("sizeLimit")
                    ));
                }
                let dir = ctx.dir.join("emptydir").join(vname);
                plan.empty_dirs.push(dir.clone());
                Ok(Source::Bind(dir, false))
            }
            Some(m) => Err(ed.invalid("medium", format!("{m}: expected Memory or nothing"))),
        };
    }
    for (key, kind, name_key) in [
        ("configMap", "configmap", "name"),
        ("secret", "secret", "secretName"),
    ] {
        let Some(o) = v.obj(key)? else { continue };
        let name = o
            .str(name_key)?
            .ok_or_else(|| o.invalid(name_key, "missing"))?;
        let optional = o.bool("optional")?.unwrap_or(false);
        let table = if kind == "configmap" {
            &ctx.catalog.config_maps
        } else {
            &ctx.catalog.secrets
        };
        let default_mode = match o.int("defaultMode")? {
            Some(m) if (0..=0o777).contains(&m) => m as u32,
            Some(m) => return Err(o.invalid("defaultMode", format!("{m}: not a file mode"))),
            None => 0o644,
        };
        let dir = ctx.dir.join(kind).join(vname);
        plan.empty_dirs.push(dir.clone());
        let Some(data) = table.get(&name) else {
            if optional {
                return Ok(Source::Bind(dir, true));
            }
            return Err(missing_object(o.at(name_key), key, &name));
        };
        let items = o.list("items")?;
        if items.is_empty() {
            for (k, content) in data {
                plan.files.push(PlannedFile {
                    path: dir.join(k),
                    content: content.clone(),
                    mode: default_mode,
                });
            }
        }
        for it in items {
            let k = it.str("key")?.ok_or_else(|| it.invalid("key", "missing"))?;
            let p = it
                .str("path")?
                .ok_or_else(|| it.invalid("path", "missing"))?;
            if p.starts_with('/') || p.split('/').any(|s| s == "..") {
                return Err(it.invalid("path", format!("{p}: must be relative, without ..")));
            }
            let mode = match it.int("mode")? {
                Some(m) if (0..=0o777).contains(&m) => m as u32,
                Some(m) => return Err(it.invalid("mode", format!("{m}: not a file mode"))),
                None => default_mode,
            };
            let Some(content) = data.get(&k) else {
                return Err(it.invalid("key", format!("{k}: {name} has no such key")));
            };
            plan.files.push(PlannedFile {
                path: dir.join(&p),
                content: content.clone(),
                mode,
            });
        }
        return Ok(Source::Bind(dir, true));
    }
    v.warn(format!(
        "{}: this kind of volume is not supported by berth (persistentVolumeClaim, hostPath, emptyDir, configMap and secret are); not applied, nor are its mounts",
        v.at("")
    ));
    Ok(Source::Unsupported)
}

fn missing_object(path: String, kind: &str, name: &str) -> Error {
    let word = if kind == "configMap" {
        "ConfigMap"
    } else {
        "Secret"
    };
    Error::Invalid(format!(
        "{path}: {word} {name:?} is not in the file; add it as a document of the same file (---) or mark the reference optional: true"
    ))
}

#[allow(clippy::too_many_arguments)]
fn plan_container(
    ctx: &PodContext<'_>,
    c: &Obj<'_>,
    init: bool,
    sources: &BTreeMap<String, Source>,
    pod_sc: &PodSecurity,
    pod_ports: &mut Vec<PortMapping>,
) -> Result<PlannedContainer, Error> {
    let yaml_name = c
        .str("name")?
        .ok_or_else(|| c.invalid("name", "missing: every container needs a name"))?;
    let image = c
        .str("image")?
        .ok_or_else(|| c.invalid("image", "missing: every container needs an image"))?;
    let mut req = CreateRequest {
        name: Some(format!("{}-{}", ctx.name, yaml_name)),
        image: image.clone(),
        pod: PodMembership::Member(ctx.name.clone()),
        network_mode_name: Some("default".into()),
        sysctls: pod_sc.sysctls.clone(),
        group_add: pod_sc.groups.clone(),
        ..Default::default()
    };
    // Environment first: $(VAR) in command and args refers to it.
    let mut env: Vec<(String, String)> = Vec::new();
    for from in c.list("envFrom")? {
        let prefix = from.str("prefix")?.unwrap_or_default();
        for (key, table, word) in [
            ("configMapRef", &ctx.catalog.config_maps, "configMap"),
            ("secretRef", &ctx.catalog.secrets, "secret"),
        ] {
            let Some(r) = from.obj(key)? else { continue };
            let name = r.str("name")?.ok_or_else(|| r.invalid("name", "missing"))?;
            let optional = r.bool("optional")?.unwrap_or(false);
            match table.get(&name) {
                Some(data) => {
                    for (k, v) in data {
                        set_env(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(v).into(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(missing_object(r.at("name"), word, &name)),
            }
        }
    }
    for e in c.list("env")? {
        let name = e.str("name")?.ok_or_else(|| e.invalid("name", "missing"))?;
        let value = if let Some(v) = e.str("value")? {
            Some(expand(&v, &env))
        } else if let Some(vf) = e.obj("valueFrom")? {
            value_from(ctx, &vf)?
        } else {
            Some(String::new())
        };
        if let Some(v) = value {
            set_env(&mut env, name, v);
        }
    }
    req.env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(cmd) = c.get("command").map(|_| c.strings("command")).transpose()? {
        req.entrypoint = Some(cmd.iter().map(|s| expand(s, &env)).collect());
    }
    req.cmd = c.strings("args")?.iter().map(|s| expand(s, &env)).collect();
    req.workdir = c.str("workingDir")?;
    req.tty = c.bool("tty")?.unwrap_or(false);
    req.interactive = c.bool("stdin")?.unwrap_or(false);
    if c.bool("stdinOnce")? == Some(true) {
        c.warn(format!(
            "{}: berth keeps stdin open; not applied",
            c.at("stdinOnce")
        ));
    }
    let image_policy = match c.str("imagePullPolicy")?.as_deref() {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        None | Some("IfNotPresent") => PullPolicy::IfNotPresent,
        Some(p) => {
            return Err(c.invalid(
                "imagePullPolicy",
                format!("{p}: expected Always, IfNotPresent or Never"),
            ))
        }
    };
    // Ports: a hostPort is published on the pod.
    let mut named_ports = BTreeMap::new();
    for p in c.list("ports")? {
        let cport = port_number(&p, "containerPort")?
            .ok_or_else(|| p.invalid("containerPort", "missing"))?;
        let proto = protocol(&p)?;
        if let Some(n) = p.str("name")? {
            named_ports.insert(n, (cport, proto.clone()));
        }
        if let Some(h) = port_number(&p, "hostPort")? {
            let m = PortMapping {
                host_ip: p.str("hostIP")?.unwrap_or_default(),
                host_port: h,
                container_port: cport,
                proto,
                picked: false,
            };
            if !pod_ports.contains(&m) {
                pod_ports.push(m);
            }
        } else {
            p.unapplied("hostIP", "no hostPort to publish on it");
        }
    }
    // Resources.
    if let Some(r) = c.obj("resources")? {
        if let Some(l) = r.obj("limits")? {
            if let Some(q) = l.str("memory")? {
                req.memory = Some(
                    memory_quantity(&q)
                        .ok_or_else(|| l.invalid("memory", format!("{q}: not a quantity")))?,
                );
            }
            if let Some(q) = l.str("cpu")? {
                req.cpus = Some(
                    cpu_quantity(&q)
                        .ok_or_else(|| l.invalid("cpu", format!("{q}: not a quantity")))?,
                );
            }
        }
        if let Some(rq) = r.obj("requests")? {
            if let Some(q) = rq.str("memory")? {
                req.memory_reservation = Some(
                    memory_quantity(&q)
                        .ok_or_else(|| rq.invalid("memory", format!("{q}: not a quantity")))?,
                );
            }
            if let Some(q) = rq.str("cpu")? {
                // As the kubelet: CPU shares of 1024 per CPU requested.
                let cpus = cpu_quantity(&q)
                    .ok_or_else(|| rq.invalid("cpu", format!("{q}: not a quantity")))?;
                req.cpu_shares = Some(((cpus * 1024.0).round() as u64).max(2));
            }
        }
    }
    // Security.
    let sc = c.obj("securityContext")?;
    let mut user = pod_sc.run_as_user;
    let mut group = pod_sc.run_as_group;
    let mut non_root = pod_sc.run_as_non_root;
    let mut unconfined = pod_sc.seccomp_unconfined;
    if let Some(sc) = &sc {
        user = sc.int("runAsUser")?.or(user);
        group = sc.int("runAsGroup")?.or(group);
        non_root = sc.bool("runAsNonRoot")?.or(non_root);
        req.read_only = sc.bool("readOnlyRootFilesystem")?.unwrap_or(false);
        req.privileged = sc.bool("privileged")?.unwrap_or(false);
        if sc.bool("allowPrivilegeEscalation")? == Some(false) {
            req.security_opt.push("no-new-privileges".into());
        }
        if let Some(caps) = sc.obj("capabilities")? {
            for (key, out) in [("add", &mut req.cap_add), ("drop", &mut req.cap_drop)] {
                for cap in caps.strings(key)? {
                    let arg = model::capability::parse(&cap).map_err(|_| {
                        caps.invalid(
                            key,
                            format!("{cap}: not a capability (see capabilities(7))"),
                        )
                    })?;
                    out.push((arg, cap));
                }
            }
        }
        if seccomp(sc)? {
            unconfined = true;
        }
        sc.unapplied("seLinuxOptions", "berth sets no SELinux labels");
        sc.unapplied("appArmorProfile", "berth loads no AppArmor profiles");
        sc.unapplied("procMount", "berth masks /proc as Docker does");
        sc.unapplied("windowsOptions", "Linux only");
    }
    if unconfined {
        req.security_opt.push("seccomp=unconfined".into());
    }
    match (user, group) {
        (Some(u), Some(g)) => req.user = Some(format!("{u}:{g}")),
        (Some(u), None) => req.user = Some(u.to_string()),
        (None, Some(_)) => c.warn(format!(
            "{}: runAsGroup without runAsUser: berth takes a group with a user only; not applied",
            c.at("securityContext")
        )),
        (None, None) => {}
    }
    if non_root == Some(true) {
        match user {
            Some(0) => {
                return Err(c.invalid(
                    "securityContext.runAsNonRoot",
                    "true, and runAsUser is 0: the container would run as root",
                ))
            }
            Some(_) => {}
            None => c.warn(format!(
                "{}: berth does not check the image's user; set runAsUser",
                c.at("securityContext.runAsNonRoot")
            )),
        }
    }
    // Probes.
    let liveness = probe(c, "livenessProbe", &named_ports)?;
    let readiness = probe(c, "readinessProbe", &named_ports)?;
    match (liveness, readiness) {
        (Some(h), other) => {
            if other.is_some() {
                c.warn(format!(
                    "{}: berth has one healthcheck per container, the livenessProbe's; not applied",
                    c.at("readinessProbe")
                ));
            }
            req.health = h;
            // Kubernetes restarts a container whose liveness probe fails.
            req.health_on_failure = OnFailure::Restart;
        }
        (None, Some(h)) => req.health = h,
        (None, None) => {}
    }
    c.unapplied(
        "startupProbe",
        "berth has one healthcheck per container (use startPeriod through initialDelaySeconds)",
    );
    c.unapplied("lifecycle", "berth runs no postStart/preStop hooks");
    c.unapplied("volumeDevices", "berth's volumes are filesystems only");
    c.unapplied("resizePolicy", "no in-place resize");
    if init {
        c.unapplied(
            "restartPolicy",
            "berth runs init containers to completion (no sidecars)",
        );
    }
    // The API server's defaults, written back by kubectl get -o yaml.
    c.quiet("terminationMessagePath");
    c.quiet("terminationMessagePolicy");
    // Mounts.
    for m in c.list("volumeMounts")? {
        let vname = m.str("name")?.ok_or_else(|| m.invalid("name", "missing"))?;
        let target = m
            .str("mountPath")?
            .ok_or_else(|| m.invalid("mountPath", "missing"))?;
        let ro = m.bool("readOnly")?.unwrap_or(false);
        let sub = m.str("subPath")?;
        m.unapplied("subPathExpr", "berth expands no subPathExpr");
        match m.str("mountPropagation")?.as_deref() {
            None | Some("None") => {}
            Some(p) => m.warn(format!(
                "{}: {p}: berth's mounts here are private; not applied",
                m.at("mountPropagation")
            )),
        }
        if let Some(s) = &sub {
            if s.starts_with('/') || s.split('/').any(|p| p == "..") {
                return Err(m.invalid("subPath", format!("{s}: must be relative, without ..")));
            }
        }
        let Some(source) = sources.get(&vname) else {
            return Err(m.invalid(
                "name",
                format!("{vname}: no volume of the pod has this name (spec.volumes)"),
            ));
        };
        match source {
            Source::Claim(claim, claim_ro) => {
                let mut spec = format!("type=volume,src={claim},dst={target}");
                if ro || *claim_ro {
                    spec.push_str(",readonly");
                }
                if let Some(s) = &sub {
                    spec.push_str(&format!(",volume-subpath={s}"));
                }
                req.mounts.push(spec);
            }
            Source::Bind(path, always_ro) => {
                let src = match &sub {
                    Some(s) => path.join(s),
                    None => path.clone(),
                };
                let mut spec = format!("type=bind,src={},dst={target}", src.display());
                if ro || *always_ro {
                    spec.push_str(",readonly");
                }
                req.mounts.push(spec);
            }
            Source::Tmpfs(size) => {
                if sub.is_some() {
                    m.warn(format!(
                        "{}: a tmpfs has no sub paths; not applied",
                        m.at("subPath")
                    ));
                }
                let mut spec = format!("type=tmpfs,dst={target}");
                if let Some(s) = size {
                    spec.push_str(&format!(",tmpfs-size={s}"));
                }
                if ro {
                    spec.push_str(",readonly");
                }
                req.mounts.push(spec);
            }
            Source::Unsupported => m.warn(format!(
                "{}: volume {vname} is not supported; not mounted",
                m.at("")
            )),
        }
    }
    Ok(PlannedContainer {
        yaml_name,
        req,
        image_policy,
        named_ports,
    })
}

fn set_env(env: &mut Vec<(String, String)>, k: String, v: String) {
    match env.iter_mut().find(|(n, _)| *n == k) {
        Some(e) => e.1 = v,
        None => env.push((k, v)),
    }
}

/// Kubernetes' `$(VAR)`: a variable set earlier, `$$` a `$`; others as written.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match env.iter().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `valueFrom`: a ConfigMap's or Secret's key, or the pod's name.
fn value_from(ctx: &PodContext<'_>, vf: &Obj<'_>) -> Result<Option<String>, Error> {
    for (key, table, word) in [
        ("configMapKeyRef", &ctx.catalog.config_maps, "configMap"),
        ("secretKeyRef", &ctx.catalog.secrets, "secret"),
    ] {
        let Some(r) = vf.obj(key)? else { continue };
        let name = r.str("name")?.ok_or_else(|| r.invalid("name", "missing"))?;
        let k = r.str("key")?.ok_or_else(|| r.invalid("key", "missing"))?;
        let optional = r.bool("optional")?.unwrap_or(false);
        return match table.get(&name).map(|d| d.get(&k)) {
            Some(Some(v)) => Ok(Some(String::from_utf8_lossy(v).into_owned())),
            _ if optional => Ok(None),
            Some(None) => Err(r.invalid("key", format!("{k}: {name} has no such key"))),
            None => Err(missing_object(r.at("name"), word, &name)),
        };
    }
    if let Some(f) = vf.obj("fieldRef")? {
        f.quiet("apiVersion");
        let path = f.str("fieldPath")?.unwrap_or_default();
        return match path.as_str() {
            "metadata.name" | "spec.hostname" => Ok(Some(ctx.name.clone())),
            "metadata.namespace" => Ok(Some("default".into())),
            "spec.nodeName" => Ok(Some(
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_default(),
            )),
            other => {
                f.warn(format!(
                    "{}: {other}: berth knows metadata.name, metadata.namespace and spec.nodeName; the variable is not set",
                    f.at("fieldPath")
                ));
                Ok(None)
            }
        };
    }
    if vf.has("resourceFieldRef") {
        vf.unapplied(
            "resourceFieldRef",
            "berth does not expose limits as variables; the variable is not set",
        );
        return Ok(None);
    }
    Err(vf.invalid("", "expected configMapKeyRef, secretKeyRef or fieldRef"))
}

/// A probe as berth's healthcheck on the probe's schedule: an exec probe
/// runs its command in the container; httpGet and tcpSocket are berth's
/// own network probes (`HTTP-GET PORT PATH`, `TCP PORT`), which the monitor
/// runs itself from inside the pod's network namespace, to 127.0.0.1
/// (the pod's address and localhost are the same pod). grpc is not
/// supported and named.
fn probe(
    c: &Obj<'_>,
    key: &str,
    named_ports: &BTreeMap<String, (u16, String)>,
) -> Result<Option<HealthConfig>, Error> {
    let Some(p) = c.obj(key)? else {
        return Ok(None);
    };
    let secs = |k: &str, default: i64| -> Result<i64, Error> {
        Ok(p.int(k)?.unwrap_or(default).max(0) * 1_000_000_000)
    };
    let interval = secs("periodSeconds", 10)?;
    let timeout = secs("timeoutSeconds", 1)?;
    let start = secs("initialDelaySeconds", 0)?;
    let retries = p.int("failureThreshold")?.unwrap_or(3);
    if p.int("successThreshold")?.is_some_and(|n| n != 1) {
        p.warn(format!(
            "{}: berth counts one success as healthy; not applied",
            p.at("successThreshold")
        ));
    }
    p.unapplied(
        "terminationGracePeriodSeconds",
        "the pod's grace period applies",
    );
    // A port by number or by the name of a container port.
    let port_of = |o: &Obj<'_>| -> Result<u16, Error> {
        match o.get("port") {
            Some(serde_json::Value::String(n)) if n.parse::<u16>().is_err() => named_ports
                .get(n)
                .map(|(p, _)| *p)
                .ok_or_else(|| o.invalid("port", format!("{n:?} names no port of the container"))),
            Some(_) => o.quiet_port(),
            None => Err(o.invalid("port", "missing")),
        }
    };
    let test = if let Some(exec) = p.obj("exec")? {
        let cmd = exec.strings("command")?;
        if cmd.is_empty() {
            return Err(exec.invalid("command", "missing: an exec probe needs a command"));
        }
        let mut test = vec!["CMD".to_string()];
        test.extend(cmd);
        test
    } else if let Some(h) = p.obj("httpGet")? {
        let port = port_of(&h)?;
        let path = h.str("path")?.unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            return Err(h.invalid("path", format!("{path}: must start with /")));
        }
        host_of(&h)?;
        match h.str("scheme")?.as_deref() {
            None | Some("HTTP") => {}
            Some(other) => {
                h.warn(format!(
                    "{}: {other}: berth's HTTP probe speaks plain HTTP; no healthcheck",
                    h.at("scheme")
                ));
                return Ok(None);
            }
        }
        h.unapplied("httpHeaders", "berth's HTTP probe sends no extra headers");
        vec!["HTTP-GET".to_string(), port.to_string(), path]
    } else if let Some(t) = p.obj("tcpSocket")? {
        let port = port_of(&t)?;
        host_of(&t)?;
        vec!["TCP".to_string(), port.to_string()]
    } else {
        p.unapplied("grpc", "berth has no gRPC health probe; no healthcheck");
        return Ok(None);
    };
    Ok(Some(HealthConfig {
        test,
        interval: interval.max(1_000_000_000),
        timeout: timeout.max(1_000_000_000),
        start_period: start,
        start_interval: 0,
        retries: retries.max(1),
    }))
}

/// A probe's `host`: only the pod itself (its address or localhost).
fn host_of(o: &Obj<'_>) -> Result<(), Error> {
    match o.str("host")?.as_deref() {
        None | Some("" | "127.0.0.1" | "localhost") => Ok(()),
        Some(h) => {
            o.warn(format!(
                "{}: {h}: berth probes the pod's own 127.0.0.1; not applied",
                o.at("host")
            ));
            Ok(())
        }
    }
}

/// A memory quantity (`64Mi`, `1G`, `1e3`, `128974848`) in bytes.
pub(crate) fn memory_quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "m" => 1e-3,
        u if u.starts_with(['e', 'E']) => 10f64.powi(u[1..].parse().ok()?),
        _ => return None,
    };
    Some((n * mult).ceil() as u64)
}

/// A CPU quantity (`500m`, `0.5`, `2`) in CPUs.
pub(crate) fn cpu_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let v = match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok()? / 1000.0,
        None => q.parse::<f64>().ok()?,
    };
    (v > 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(memory_quantity("64Mi"), Some(64 << 20));
        assert_eq!(memory_quantity("1G"), Some(1_000_000_000));
        assert_eq!(memory_quantity("128974848"), Some(128974848));
        assert_eq!(memory_quantity("129e6"), Some(129_000_000));
        assert_eq!(memory_quantity("12 parsecs"), None);
        assert_eq!(cpu_quantity("500m"), Some(0.5));
        assert_eq!(cpu_quantity("2"), Some(2.0));
        assert_eq!(cpu_quantity("x"), None);
    }

    #[test]
    fn variables_expand_as_kubernetes_does() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "1-$(B)-$(A)-$");
    }
}
