//! A service's `volumes:` entries, short syntax
//! (`[SOURCE:]TARGET[:OPTIONS]`, parsed as compose-go's `ParseVolume`) and
//! long syntax, into [`ServiceVolume`]. A short source that starts with
//! `.`, `/` or `~` is a bind mount (created when missing); any other
//! source names a volume.
use super::typed::{Cx, Result};
use super::yaml::{KeyPath, Node, Value};
use crate::model::{BindOptions, ServiceVolume, TmpfsOptions, VolumeOptions};

/// The fields of a short-syntax volume.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ShortVolume {
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    pub nocopy: bool,
    pub propagation: Option<String>,
    pub selinux: Option<String>,
}

const PROPAGATIONS: &[&str] = &[
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// Split `spec`; unknown options are ignored, as docker compose does.
pub(crate) fn parse_short(spec: &str) -> Result<ShortVolume, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".into());
    }
    if spec.len() <= 2 {
        return Ok(ShortVolume {
            target: spec.to_string(),
            ..ShortVolume::default()
        });
    }
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "invalid spec: {spec}: empty section between colons"
        ));
    }
    let mut v = ShortVolume::default();
    match parts.as_slice() {
        [target] => v.target = target.to_string(),
        [source, target] => {
            v.source = Some(source.to_string());
            v.target = target.to_string();
        }
        [source, target, options] => {
            v.source = Some(source.to_string());
            v.target = target.to_string();
            for option in options.split(',') {
                match option {
                    "ro" => v.read_only = true,
                    "rw" => v.read_only = false,
                    "nocopy" => v.nocopy = true,
                    "z" | "Z" => v.selinux = Some(option.to_string()),
                    p if PROPAGATIONS.contains(&p) => v.propagation = Some(p.to_string()),
                    _ => {}
                }
            }
        }
        _ => return Err(format!("invalid spec: {spec}: too many colons")),
    }
    Ok(v)
}

/// Whether a short-syntax source is a host path rather than a volume name.
pub(crate) fn is_path(source: &str) -> bool {
    source.starts_with(['.', '/', '~'])
}

/// One `volumes:` entry.
pub(crate) fn service_volume(cx: &Cx, n: &Node, path: &KeyPath) -> Result<ServiceVolume> {
    match &n.value {
        Value::Map(_) => long(cx, n, path),
        _ => {
            let spec = cx.string(n, path)?;
            let v = parse_short(&spec).map_err(|e| cx.invalid(n.pos, path, e))?;
            let target = clean_target(&v.target);
            Ok(match v.source {
                Some(src) if is_path(&src) => ServiceVolume {
                    kind: "bind".into(),
                    source: Some(cx.resolve_path(n.pos, &src)),
                    target,
                    read_only: v.read_only,
                    bind: Some(BindOptions {
                        propagation: v.propagation,
                        create_host_path: true,
                        selinux: v.selinux,
                    }),
                    ..ServiceVolume::default()
                },
                source => ServiceVolume {
                    kind: "volume".into(),
                    source,
                    target,
                    read_only: v.read_only,
                    volume: Some(VolumeOptions {
                        nocopy: v.nocopy,
                        subpath: None,
                    }),
                    ..ServiceVolume::default()
                },
            })
        }
    }
}

fn clean_target(t: &str) -> String {
    super::typed::clean(std::path::Path::new(t))
        .to_string_lossy()
        .into_owned()
}

fn long(cx: &Cx, n: &Node, path: &KeyPath) -> Result<ServiceVolume> {
    let o = cx.obj(
        n,
        path,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "consistency",
            "bind",
            "volume",
            "tmpfs",
            "image",
        ],
    )?;
    let Some(kind) = o.string(cx, "type")? else {
        return Err(cx.invalid(n.pos, path, "type is required"));
    };
    let target = o
        .string(cx, "target")?
        .ok_or_else(|| cx.invalid(n.pos, path, "target is required"))?;
    let mut v = ServiceVolume {
        kind: kind.clone(),
        source: o.string(cx, "source")?,
        target: clean_target(&target),
        read_only: o.flag(cx, "read_only")?,
        ..ServiceVolume::default()
    };
    match kind.as_str() {
        "bind" => {
            let Some((src_node, _)) = o.get("source") else {
                return Err(cx.invalid(
                    n.pos,
                    path,
                    "invalid mount config for type \"bind\": field Source must not be empty",
                ));
            };
            v.source = v.source.map(|s| cx.resolve_path(src_node.pos, &s));
            let mut bind = BindOptions::default();
            if let Some((b, bp)) = o.get("bind") {
                let b = cx.obj(
                    b,
                    &bp,
                    &["propagation", "create_host_path", "recursive", "selinux"],
                )?;
                bind.propagation = b.string(cx, "propagation")?;
                if let Some(p) = &bind.propagation {
                    if !PROPAGATIONS.contains(&p.as_str()) {
                        let (pn, pp) = b.get("propagation").unwrap_or((n, bp.clone()));
                        return Err(cx.invalid(pn.pos, &pp, format!("invalid propagation {p:?}")));
                    }
                }
                bind.create_host_path = b.flag(cx, "create_host_path")?;
                bind.selinux = b.string(cx, "selinux")?;
                if let Some((sn, sp)) = b.get("selinux") {
                    if !matches!(bind.selinux.as_deref(), Some("z" | "Z")) {
                        return Err(cx.invalid(sn.pos, &sp, "must be one of \"z\", \"Z\""));
                    }
                }
            }
            v.bind = Some(bind);
        }
        "volume" => {
            let mut opts = VolumeOptions::default();
            if let Some((vo, vp)) = o.get("volume") {
                let vo = cx.obj(vo, &vp, &["labels", "nocopy", "subpath"])?;
                opts.nocopy = vo.flag(cx, "nocopy")?;
                opts.subpath = vo.string(cx, "subpath")?;
            }
            v.volume = Some(opts);
        }
        "tmpfs" => {
            if let Some((src, sp)) = o.get("source") {
                return Err(cx.invalid(src.pos, &sp, "a tmpfs mount has no source"));
            }
            let mut opts = TmpfsOptions::default();
            if let Some((t, tp)) = o.get("tmpfs") {
                let t = cx.obj(t, &tp, &["size", "mode"])?;
                opts.size = t.opt("size", |n, p| cx.bytes(n, p))?;
                opts.mode = t.opt("mode", |n, p| file_mode(cx, n, p))?;
            }
            v.tmpfs = Some(opts);
        }
        other => {
            let (tn, tp) = o.get("type").unwrap_or((n, path.clone()));
            return Err(cx.invalid(
                tn.pos,
                &tp,
                format!("volume type {other:?} is not supported (bind, volume or tmpfs)"),
            ));
        }
    }
    Ok(v)
}

/// A file mode: a YAML number (`0755` is octal there) or an octal string.
pub(crate) fn file_mode(cx: &Cx, n: &Node, path: &KeyPath) -> Result<u32> {
    match &n.value {
        Value::Str(s) => u32::from_str_radix(s.trim(), 8)
            .map_err(|_| cx.invalid(n.pos, path, format!("invalid file mode {s:?}"))),
        _ => cx.int_in(n, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_specs() {
        let v = parse_short("data:/var/lib/data:ro,nocopy").unwrap();
        assert_eq!(v.source.as_deref(), Some("data"));
        assert_eq!(v.target, "/var/lib/data");
        assert!(v.read_only && v.nocopy);
        let v = parse_short("/tmp/cache").unwrap();
        assert_eq!((v.source, v.target.as_str()), (None, "/tmp/cache"));
        let v = parse_short("./src:/app:z,rshared").unwrap();
        assert_eq!(v.selinux.as_deref(), Some("z"));
        assert_eq!(v.propagation.as_deref(), Some("rshared"));
        assert!(!v.read_only);
        assert!(parse_short("a::b").unwrap_err().contains("empty section"));
        assert!(parse_short("a:b:c:d")
            .unwrap_err()
            .contains("too many colons"));
        assert!(parse_short("").is_err());
        assert!(is_path("./x") && is_path("../x") && is_path("/x") && is_path("~/x"));
        assert!(!is_path("named"));
    }
}
