//! A pod spec (a Pod's, or a Deployment's, Job's or DaemonSet's
//! template) into a plan: the pod to create, its containers' create
//! requests, the files its ConfigMap and Secret volumes hold, the dirs of
//! its emptyDirs and the volumes it claims. Pure: nothing is made here, so
//! a bad file fails before anything exists.
use std::collections::BTreeMap;
use std::path::PathBuf;

use engine::config::PortMapping;
use engine::container::create::CreateRequest;
use engine::restart::RestartPolicy;

use super::catalog::Catalog;
use super::container::plan_container;
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
    /// The pod's user namespace (`pod create --userns`), which its
    /// containers share: `hostUsers: false` is `auto`; `kube play
    /// --userns` sets every pod's.
    pub userns: Option<String>,
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
pub(crate) enum Source {
    /// A named volume (claim), read-only.
    Claim(String, bool),
    /// A host dir or file (hostPath, emptyDir, ConfigMap, Secret).
    Bind(PathBuf, bool),
    /// A dir the pod's containers share and write (emptyDir).
    EmptyDir(PathBuf),
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
    /// `kube down`: only the names matter; a ConfigMap, Secret or host
    /// path that is gone since the play is no error.
    pub lenient: bool,
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
        userns: (spec.bool("hostUsers")? == Some(false)).then(|| "auto".to_string()),
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
        // It names a dir under the pod's: a DNS-1123 label, as Kubernetes.
        if !dns_label_ok(&vname) {
            return Err(v.invalid(
                "name",
                format!("{vname:?}: not a DNS-1123 label (lower case letters, digits and -)"),
            ));
        }
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
pub(crate) struct PodSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub groups: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub seccomp_unconfined: bool,
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
pub(crate) fn seccomp(sc: &Obj<'_>) -> Result<bool, Error> {
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
        if !dns_subdomain_ok(&claim) {
            return Err(pvc.invalid("claimName", format!("{claim:?}: not a DNS-1123 name")));
        }
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
            if ok || ctx.lenient {
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
                Ok(Source::EmptyDir(dir))
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
            if optional || ctx.lenient {
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

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub(crate) fn dns_label_ok(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A DNS-1123 subdomain (object names): labels joined by dots, at most
/// 253. Never `.`/`..` or a slash, so safe as a path component.
pub(crate) fn dns_subdomain_ok(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label_ok)
}

/// A ConfigMap or Secret key (a file name in its volume):
/// `[-._a-zA-Z0-9]+`, not `.` or `..`.
pub(crate) fn key_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

pub(crate) fn missing_object(path: String, kind: &str, name: &str) -> Error {
    let word = if kind == "configMap" {
        "ConfigMap"
    } else {
        "Secret"
    };
    Error::Invalid(format!(
        "{path}: {word} {name:?} is not in the file; add it as a document of the same file (---) or mark the reference optional: true"
    ))
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
}
