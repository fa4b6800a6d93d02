//! `-v`/`--volume` and `--mount` flags, and the local driver's options, with Docker's rules.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::config::{MountSpec, MountType};
use crate::error::Result;

use super::{bad, valid_volume_name};

/// Check a mount point: absolute, no `..`, not `/`.
fn check_target(flag: &str, spec: &str, target: &str) -> Result<String> {
    if !target.starts_with('/') {
        return Err(bad(
            flag,
            format!("{spec:?}: the mount point {target:?} must be an absolute path"),
        ));
    }
    if Path::new(target)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(bad(
            flag,
            format!("{spec:?}: the mount point {target:?} must not contain \"..\""),
        ));
    }
    let clean: PathBuf = Path::new(target).components().collect();
    if clean == Path::new("/") {
        return Err(bad(
            flag,
            format!("{spec:?}: invalid mount point \"/\": the root cannot be a mount"),
        ));
    }
    if let Some(why) = over_kernel_fs(&clean) {
        return Err(bad(
            flag,
            format!("{spec:?}: the mount point {target:?} is not allowed: {why}"),
        ));
    }
    Ok(clean.display().to_string())
}

/// The `/proc` files a mount may cover (as runc allows: what lxcfs
/// provides); nothing else under `/proc`, nor `/proc` or `/sys` themselves:
/// a volume there would hide the kernel's files behind the container's own
/// (and with them the masks over `/proc/kcore`, `/proc/sysrq-trigger`, …).
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

fn over_kernel_fs(target: &Path) -> Option<&'static str> {
    if target == Path::new("/proc") || target == Path::new("/sys") {
        return Some("it would replace the kernel's filesystem there");
    }
    if target.starts_with("/proc") && !PROC_ALLOWED.iter().any(|a| target == Path::new(a)) {
        return Some("it is inside /proc");
    }
    None
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Parse one `-v`/`--volume`: `[source:]target[:options]`.
pub fn parse_volume_flag(spec: &str) -> Result<MountSpec> {
    let flag = "-v";
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => {
            return Err(bad(
                flag,
                format!(
                    "invalid volume specification {spec:?}: expected [source:]target[:options]"
                ),
            ))
        }
    };
    if parts.len() > 1 && source.is_empty() {
        return Err(bad(
            flag,
            format!("invalid volume specification {spec:?}: empty source"),
        ));
    }
    let target = check_target(flag, spec, target)?;
    let mut m = MountSpec {
        target,
        bind_spec: spec.to_string(),
        ..Default::default()
    };
    if source.is_empty() {
        m.kind = MountType::Volume;
        m.anonymous = true;
    } else if source.starts_with('/') {
        m.kind = MountType::Bind;
        m.source = Path::new(source)
            .components()
            .collect::<PathBuf>()
            .display()
            .to_string();
    } else if valid_volume_name(source) {
        m.kind = MountType::Volume;
        m.source = source.to_string();
    } else {
        return Err(bad(
            flag,
            format!("{source:?} includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed; if you intended to pass a host directory, use an absolute path"),
        ));
    }
    let mut mode_seen = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if !mode_seen => {
                mode_seen = true;
                m.readonly = o == "ro";
            }
            // SELinux relabeling: no SELinux here, accepted as Docker does
            // on hosts without it.
            "z" | "Z" => {}
            "nocopy" if m.kind == MountType::Volume => m.nocopy = true,
            "copy" if m.kind == MountType::Volume => m.nocopy = false,
            "U" => m.chown = true,
            // podman's: shown with the container's id mapping.
            "idmap" => m.idmap = true,
            p if PROPAGATIONS.contains(&p) && m.propagation.is_empty() => {
                m.propagation = p.to_string()
            }
            other => {
                return Err(bad(
                    flag,
                    format!("invalid mode {other:?} in {spec:?}: use ro, rw, z, Z, U, idmap, nocopy (volumes) or a propagation (rprivate, rshared, rslave, ...)"),
                ))
            }
        }
    }
    Ok(m)
}

/// What `--mount` asks of a volume it creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewVolume {
    /// `volume-label`.
    pub labels: BTreeMap<String, String>,
    /// `volume-opt`.
    pub options: BTreeMap<String, String>,
}

fn parse_bool(flag: &str, key: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(bad(
            flag,
            format!("invalid value {v:?} for {key}: use true or false"),
        )),
    }
}

/// Parse one `--mount type=...,source=...,target=...`.
pub fn parse_mount_flag(spec: &str) -> Result<(MountSpec, NewVolume)> {
    let flag = "--mount";
    let mut m = MountSpec::default();
    let mut nv = NewVolume::default();
    let mut kind = None;
    let mut target = None;
    let mut source = None;
    let mut keys_for: Vec<(&str, MountType)> = Vec::new();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (field.trim(), None),
        };
        let value = |v: Option<&str>| {
            v.map(str::to_string)
                .ok_or_else(|| bad(flag, format!("invalid field {field:?}: {k} needs a value")))
        };
        match k {
            "type" => {
                kind = Some(match v {
                    Some("volume") => MountType::Volume,
                    Some("bind") => MountType::Bind,
                    Some("tmpfs") => MountType::Tmpfs,
                    _ => {
                        return Err(bad(
                            flag,
                            format!("invalid type in {spec:?}: use volume, bind or tmpfs"),
                        ))
                    }
                })
            }
            "source" | "src" => source = Some(value(v)?),
            "target" | "destination" | "dst" => target = Some(value(v)?),
            "readonly" | "ro" => m.readonly = parse_bool(flag, k, v)?,
            "volume-nocopy" => {
                m.nocopy = parse_bool(flag, k, v)?;
                keys_for.push((k, MountType::Volume));
            }
            "volume-subpath" => {
                let sub = value(v)?;
                let p = Path::new(&sub);
                if sub.is_empty()
                    || p.is_absolute()
                    || p.components().any(|c| !matches!(c, Component::Normal(_)))
                {
                    return Err(bad(
                        flag,
                        format!("invalid volume-subpath {sub:?}: a relative path inside the volume, without '..'"),
                    ));
                }
                m.subpath = sub;
                keys_for.push((k, MountType::Volume));
            }
            "volume-driver" => {
                if v != Some("local") {
                    return Err(bad(
                        flag,
                        format!(
                            "volume driver {:?} is not available: berth has the local driver",
                            v.unwrap_or("")
                        ),
                    ));
                }
                keys_for.push((k, MountType::Volume));
            }
            "volume-label" | "volume-opt" => {
                let kv = value(v)?;
                let (lk, lv) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
                if k == "volume-label" {
                    nv.labels.insert(lk.to_string(), lv.to_string());
                } else {
                    nv.options.insert(lk.to_string(), lv.to_string());
                }
                keys_for.push((k, MountType::Volume));
            }
            "bind-propagation" => {
                let p = value(v)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    return Err(bad(
                        flag,
                        format!("invalid bind-propagation {p:?}: use rprivate, private, rshared, shared, rslave or slave"),
                    ));
                }
                m.propagation = p;
                keys_for.push((k, MountType::Bind));
            }
            "tmpfs-size" => {
                let s = value(v)?;
                m.tmpfs_size = Some(
                    model::size::parse_bytes(&s)
                        .map_err(|e| bad(flag, format!("invalid tmpfs-size {s:?}: {e}")))?,
                );
                keys_for.push((k, MountType::Tmpfs));
            }
            "tmpfs-mode" => {
                let s = value(v)?;
                m.tmpfs_mode = Some(
                    u32::from_str_radix(&s, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            bad(
                                flag,
                                format!("invalid tmpfs-mode {s:?}: an octal mode such as 1777"),
                            )
                        })?,
                );
                keys_for.push((k, MountType::Tmpfs));
            }
            "consistency" => {}
            _ => return Err(bad(flag, format!("unexpected key {k:?} in {field:?}"))),
        }
    }
    m.kind = kind.unwrap_or(MountType::Volume);
    for (k, t) in keys_for {
        if t != m.kind {
            return Err(bad(
                flag,
                format!(
                    "{k} is for type={} mounts, not type={}",
                    t.as_str(),
                    m.kind.as_str()
                ),
            ));
        }
    }
    let target = target.ok_or_else(|| bad(flag, format!("{spec:?}: target is required")))?;
    m.target = check_target(flag, spec, &target)?;
    match (m.kind, source) {
        (MountType::Tmpfs, Some(_)) => {
            return Err(bad(flag, "a tmpfs mount takes no source"));
        }
        (MountType::Tmpfs, None) => {}
        (MountType::Bind, None) => {
            return Err(bad(
                flag,
                format!("{spec:?}: source is required for a bind mount"),
            ));
        }
        (MountType::Bind, Some(s)) => {
            if !s.starts_with('/') {
                return Err(bad(
                    flag,
                    format!("invalid bind source {s:?}: it must be an absolute path"),
                ));
            }
            let clean: PathBuf = Path::new(&s).components().collect();
            // Docker: a missing source is an error for --mount.
            if std::fs::symlink_metadata(&clean).is_err() {
                return Err(bad(
                    flag,
                    format!("bind source path does not exist: {}", clean.display()),
                ));
            }
            m.source = clean.display().to_string();
        }
        (MountType::Volume, None) => m.anonymous = true,
        (MountType::Volume, Some(s)) => {
            if !valid_volume_name(&s) {
                return Err(bad(
                    flag,
                    format!("{s:?} is not a valid volume name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
                ));
            }
            m.source = s;
        }
    }
    Ok((m, nv))
}

/// Check `-o` options of the local driver: `type`, `device`, `o`.
pub fn check_driver_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !["type", "device", "o"].contains(&k.as_str()) {
            return Err(bad(
                "--opt",
                format!("invalid option key {k:?}: the local driver takes type, device and o"),
            ));
        }
    }
    match (opts.get("type"), opts.get("device")) {
        (None, None) if opts.contains_key("o") => Err(bad(
            "--opt",
            "o= needs type= and device= (e.g. type=tmpfs,device=tmpfs,o=size=100m)",
        )),
        (Some(_), None) => Err(bad("--opt", "missing required option: device")),
        (None, Some(_)) => Err(bad("--opt", "missing required option: type")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags() {
        let m = parse_volume_flag("data:/var/lib/data:ro").unwrap();
        assert_eq!(
            (m.kind, m.source.as_str(), m.target.as_str(), m.readonly),
            (MountType::Volume, "data", "/var/lib/data", true)
        );
        let m = parse_volume_flag("/srv/x/:/x").unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountType::Bind, "/srv/x"));
        let m = parse_volume_flag("/cache").unwrap();
        assert!(m.anonymous && m.kind == MountType::Volume && m.source.is_empty());
        let m = parse_volume_flag("v1:/d:nocopy,U,rw").unwrap();
        assert!(m.nocopy && m.chown && !m.readonly);
        let m = parse_volume_flag("/h:/d:rshared,z").unwrap();
        assert_eq!(m.propagation, "rshared");
        for b in [
            "relative/path:/d",
            "./x:/d",
            "v:d",
            "v:/",
            "v:/a/../b",
            ":/d",
            "v:/d:bogus",
            "v:/d:ro,rw",
            "/h:/d:nocopy",
            "a:b:c:d",
        ] {
            assert!(parse_volume_flag(b).is_err(), "{b}");
        }
    }

    #[test]
    fn mount_flags() {
        let (m, nv) = parse_mount_flag(
            "type=volume,source=v,target=/d,readonly,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs",
        )
        .unwrap();
        assert!(m.readonly && m.nocopy && m.kind == MountType::Volume);
        assert_eq!(nv.labels["a"], "b");
        assert_eq!(nv.options["type"], "tmpfs");
        let (m, _) = parse_mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!((m.tmpfs_size, m.tmpfs_mode), (Some(1 << 20), Some(0o1770)));
        let (m, _) = parse_mount_flag("type=bind,src=/tmp,dst=/t,bind-propagation=rslave").unwrap();
        assert_eq!(
            (m.source.as_str(), m.propagation.as_str()),
            ("/tmp", "rslave")
        );
        let (m, _) = parse_mount_flag("target=/anon").unwrap();
        assert!(m.anonymous);
        for b in [
            "type=bind,src=/definitely/not/here,dst=/x",
            "type=bind,dst=/x",
            "type=tmpfs,src=x,dst=/x",
            "type=volume,src=v",
            "type=nfs,dst=/x",
            "type=volume,src=v,dst=/x,tmpfs-size=1m",
            "type=tmpfs,dst=/x,tmpfs-mode=999",
            "type=volume,src=v,dst=/x,bogus=1",
            "type=volume,src=v,dst=/x,readonly=maybe",
        ] {
            assert!(parse_mount_flag(b).is_err(), "{b}");
        }
    }

    #[test]
    fn driver_options() {
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(check_driver_options(&o(&[])).is_ok());
        assert!(check_driver_options(&o(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert!(check_driver_options(&o(&[("type", "tmpfs")])).is_err());
        assert!(check_driver_options(&o(&[("o", "size=1m")])).is_err());
        assert!(check_driver_options(&o(&[("size", "1m")])).is_err());
    }
}
