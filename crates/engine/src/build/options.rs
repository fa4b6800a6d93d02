//! `build` options given as strings: `--cache-from`/`--cache-to`,
//! `--build-context` and `-o`.

use std::path::PathBuf;

/// Parse a `--cache-from`/`--cache-to` value (`type=local,src|dest=DIR`).
pub fn parse_cache_spec(spec: &str, key: &str) -> std::result::Result<PathBuf, String> {
    let mut kind = "local".to_string();
    let mut dir = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = v.to_string(),
            Some((k, v)) if k == key => dir = Some(PathBuf::from(v)),
            Some(("mode", _)) | Some(("compression", _)) => {}
            _ => return Err(format!("{spec:?}: use type=local,{key}=DIR")),
        }
    }
    if kind != "local" {
        return Err(format!(
            "{spec:?}: type={kind} is not supported by berth (type=local; --cache-to type=inline and --cache-from REF for an inline cache)"
        ));
    }
    dir.ok_or_else(|| format!("{spec:?}: {key}= is required"))
}

/// A `--build-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory (for `COPY --from=name`).
    Dir(PathBuf),
    /// An image (for `FROM name` and `COPY --from=name`).
    Image(String),
}

impl NamedContext {
    /// Parse `name=value`.
    pub fn parse(spec: &str) -> std::result::Result<(String, NamedContext), String> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: use name=DIR or name=docker-image://REF"))?;
        if name.is_empty() {
            return Err(format!("{spec:?}: the name is empty"));
        }
        let ctx = if let Some(r) = value.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else if value.contains("://") {
            return Err(format!(
                "{value:?}: berth takes a directory or docker-image://REF"
            ));
        } else {
            NamedContext::Dir(PathBuf::from(value))
        };
        Ok((name.to_ascii_lowercase(), ctx))
    }
}

/// Where `-o` sends the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `type=local,dest=DIR`: the target stage's files.
    Local(PathBuf),
    /// `type=tar,dest=FILE|-`: the files as a tar.
    Tar(String),
    /// `type=docker|oci,dest=FILE|-`: an image archive for `load`, its
    /// layers compressed (`Some(false)` gzip, the default; `Some(true)`
    /// zstd; `None` as stored).
    Archive(store::ArchiveFormat, String, Option<bool>),
    /// `type=image[,name=REF][,push=true]`: the image in the store (the
    /// default), also named `names`, and pushed when `push` (its layers
    /// compressed with zstd when `zstd`, else gzip).
    Image {
        names: Vec<String>,
        push: bool,
        zstd: bool,
    },
}

impl Output {
    /// Parse a `-o` value: `type=…,dest=…`, or a plain path (local).
    pub fn parse(spec: &str) -> std::result::Result<Option<Output>, String> {
        if !spec.contains('=') {
            return Ok(Some(Output::Local(PathBuf::from(spec))));
        }
        let mut kind = String::new();
        let mut dest = None;
        let mut compression = Some(false);
        let mut names = Vec::new();
        let mut push = false;
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{spec:?}: use type=TYPE,dest=PATH"))?;
            match k.trim() {
                "type" => kind = v.trim().to_string(),
                "dest" => dest = Some(v.trim().to_string()),
                "compression" => {
                    compression = match v.trim() {
                        "gzip" => Some(false),
                        "zstd" => Some(true),
                        "uncompressed" => None,
                        other => {
                            return Err(format!(
                                "compression={other}: use gzip, zstd or uncompressed"
                            ))
                        }
                    }
                }
                "name" => names.push(v.trim().to_string()),
                "push" => {
                    push = match v.trim() {
                        "true" => true,
                        "false" => false,
                        other => return Err(format!("push={other}: use true or false")),
                    }
                }
                "oci-mediatypes" | "tar" | "compression-level" => {}
                other => return Err(format!("unknown output option {other:?}")),
            }
        }
        let need = || {
            dest.clone()
                .ok_or_else(|| format!("{spec:?}: dest= is required"))
        };
        Ok(match kind.as_str() {
            "image" | "" if names.is_empty() && !push => None,
            "image" | "" => Some(Output::Image {
                names,
                push,
                zstd: match compression {
                    Some(z) => z,
                    None if push => {
                        return Err("push=true: layers are pushed compressed (gzip or zstd)".into())
                    }
                    None => false,
                },
            }),
            "local" => Some(Output::Local(PathBuf::from(need()?))),
            "tar" => Some(Output::Tar(need()?)),
            "docker" => Some(Output::Archive(
                store::ArchiveFormat::Docker,
                need()?,
                compression,
            )),
            "oci" => Some(Output::Archive(
                store::ArchiveFormat::Oci,
                need()?,
                compression,
            )),
            other => {
                return Err(format!(
                    "output type {other:?}: use image, local, tar, docker or oci"
                ))
            }
        })
    }
}
