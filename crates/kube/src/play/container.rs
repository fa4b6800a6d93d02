//! One container of a pod spec into its create request: command, args
//! and `$(VAR)`s, environment from values, ConfigMaps, Secrets and the
//! pod's fields, ports, resources, security settings, probes and mounts.
use std::collections::BTreeMap;

use engine::config::PortMapping;
use engine::container::create::{CreateRequest, PodMembership};
use engine::health::{HealthConfig, OnFailure};

use super::catalog::{port_number, protocol};
use super::fields::Obj;
use super::spec::{
    cpu_quantity, memory_quantity, missing_object, seccomp, PlannedContainer, PodContext,
    PodSecurity, PullPolicy, Source,
};
use crate::Error;

#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_container(
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
    if !super::spec::dns_label_ok(&yaml_name) {
        return Err(c.invalid(
            "name",
            format!("{yaml_name:?}: not a DNS-1123 label (lower case letters, digits and -)"),
        ));
    }
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
                None if optional || ctx.lenient => {}
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
                if sub.is_some() && !*always_ro {
                    // A hostPath the containers may write: the same
                    // symlink swap as for an emptyDir.
                    return Err(m.invalid(
                        "subPath",
                        "berth does not mount sub paths of a hostPath (a container could swap one for a symlink); make the sub path the hostPath's path",
                    ));
                }
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
            Source::EmptyDir(path) => {
                if sub.is_some() {
                    // A container could make the sub path a symlink to
                    // any host path before another mounts it
                    // (CVE-2017-1002101).
                    return Err(m.invalid(
                        "subPath",
                        "berth does not mount sub paths of an emptyDir (a container could swap one for a symlink); mount the emptyDir whole",
                    ));
                }
                let mut spec = format!("type=bind,src={},dst={target}", path.display());
                if ro {
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
            _ if optional || ctx.lenient => Ok(None),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_as_kubernetes_does() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &env), "1-$(B)-$(A)-$");
    }
}
