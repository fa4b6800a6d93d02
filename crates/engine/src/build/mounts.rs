//! `RUN --mount=…`: cache directories that persist across builds, secrets
//! that never reach a layer, the cache key or the history, bind mounts of
//! the context or another stage, and tmpfs. Each becomes an ordinary
//! container mount of the RUN step's container.
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{invalid, Builder, StageState};
use crate::error::{EngineError, Result};

/// One parsed `--mount`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMount {
    /// cache, secret, bind, tmpfs (ssh is refused).
    pub kind: String,
    /// Where it appears.
    pub target: String,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `from=` (a stage or image; bind and cache).
    pub from: Option<String>,
    /// `id=`.
    pub id: Option<String>,
    /// `sharing=shared|private|locked` (cache).
    pub sharing: String,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `rw`/`readwrite` (bind), `ro`/`readonly` (cache).
    pub rw: Option<bool>,
    /// `required=` (secret).
    pub required: bool,
    /// `env=` (secret as an environment variable).
    pub env: Option<String>,
    /// `size=` (tmpfs).
    pub size: Option<u64>,
}

/// Parse one (expanded) `--mount` value.
pub fn parse(spec: &str) -> Result<RunMount> {
    let bad = |why: String| invalid("RUN --mount", format!("{spec:?}: {why}"));
    let mut m = RunMount {
        kind: "bind".into(),
        sharing: "shared".into(),
        ..Default::default()
    };
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (part.trim().to_ascii_lowercase(), None),
        };
        let val = || v.clone().ok_or_else(|| bad(format!("{k} needs a value")));
        let num = |s: String| -> Result<u32> {
            s.parse().map_err(|_| bad(format!("{k}={s}: not a number")))
        };
        match k.as_str() {
            "type" => m.kind = val()?,
            "target" | "dst" | "destination" => m.target = val()?,
            "source" | "src" => m.source = Some(val()?),
            "from" => m.from = Some(val()?),
            "id" => m.id = Some(val()?),
            "sharing" => m.sharing = val()?,
            "mode" => {
                let s = val()?;
                m.mode = Some(
                    u32::from_str_radix(&s, 8)
                        .map_err(|_| bad(format!("mode={s}: use an octal mode")))?,
                );
            }
            "uid" => m.uid = Some(num(val()?)?),
            "gid" => m.gid = Some(num(val()?)?),
            "rw" | "readwrite" => m.rw = Some(v.as_deref() != Some("false")),
            "ro" | "readonly" => m.rw = Some(v.as_deref() == Some("false")),
            "required" => m.required = v.as_deref() != Some("false"),
            "env" => m.env = Some(val()?),
            "size" => {
                let s = val()?;
                m.size = Some(
                    model::size::parse_bytes(&s)
                        .map_err(|_| bad(format!("size={s}: use a size like 64m")))?,
                );
            }
            other => return Err(bad(format!("unknown option {other:?}"))),
        }
    }
    match m.kind.as_str() {
        "cache" | "bind" | "tmpfs" => {
            if m.target.is_empty() {
                return Err(bad("target= is required".into()));
            }
        }
        "secret" => {
            if m.id.is_none() && m.target.is_empty() && m.env.is_none() {
                return Err(bad("a secret needs id= (or target=)".into()));
            }
        }
        "ssh" => {
            return Err(bad(
                "type=ssh is not supported by berth (use a secret or a bind mount)".into(),
            ))
        }
        other => {
            return Err(bad(format!(
                "type={other}: use cache, secret, bind or tmpfs"
            )))
        }
    }
    if !matches!(m.sharing.as_str(), "shared" | "private" | "locked") {
        return Err(bad(format!(
            "sharing={}: use shared, private or locked",
            m.sharing
        )));
    }
    Ok(m)
}

/// What a RUN step's mounts need while its container runs.
#[derive(Default)]
pub struct Prepared {
    /// `--mount` strings for the container.
    pub mounts: Vec<String>,
    /// Extra environment (secrets with `env=`): not in the key.
    pub env: Vec<String>,
    /// What goes into the cache key.
    pub key: String,
    /// Locks (sharing=locked) and temporary dirs, released after the step.
    pub keep: Vec<Keep>,
}

/// Held for the step's duration.
pub enum Keep {
    /// A flock on a cache dir.
    Lock(nix::fcntl::Flock<std::fs::File>),
    /// A temporary directory removed afterwards.
    Dir(PathBuf),
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for k in self.keep.drain(..) {
            if let Keep::Dir(d) = k {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
}

fn absolute(st: &StageState, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{}/{}", st.workdir().trim_end_matches('/'), target)
    }
}

fn make_dir(path: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)
        .map_err(|e| EngineError::io(format!("creating {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| EngineError::io(format!("chmod {}", path.display()), e))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| EngineError::io(format!("chown {}", path.display()), e))?;
    Ok(())
}

impl Builder<'_> {
    /// A new path under the run dir for something a step needs only
    /// while it runs (`<what>-<random>`).
    pub(super) fn run_dir(&self, what: &str) -> PathBuf {
        self.engine.paths().runroot.join(format!(
            "{what}-{}",
            &model::ContainerId::random().as_str()[..12]
        ))
    }

    /// Prepare the mounts of a RUN step.
    pub(super) fn prepare_mounts(&mut self, st: &StageState, specs: &[String]) -> Result<Prepared> {
        let mut p = Prepared::default();
        let mut key = Sha256::new();
        for raw in specs {
            let spec = self.expand(st, raw)?;
            let m = parse(&spec)?;
            let target = absolute(st, &m.target);
            match m.kind.as_str() {
                "cache" => {
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    key.update(format!("cache\0{id}\0{target}\0").as_bytes());
                    let dir = self
                        .engine
                        .paths()
                        .root
                        .join("cache")
                        .join("build-mounts")
                        .join(hex::encode(Sha256::digest(id.as_bytes())));
                    let make = |d: &Path| {
                        make_dir(
                            d,
                            m.mode.unwrap_or(0o755),
                            m.uid.unwrap_or(0),
                            m.gid.unwrap_or(0),
                        )
                    };
                    if !dir.exists() {
                        // A new cache starts empty, or (from=) with a copy
                        // of a stage's or image's files, put in place whole.
                        match &m.from {
                            None => make(&dir)?,
                            Some(from) => {
                                let id = self.source_image(st, from)?;
                                let seed =
                                    dir.with_extension(format!("seed{}", std::process::id()));
                                let _ = std::fs::remove_dir_all(&seed);
                                make(&seed)?;
                                let source = ignore_clean(m.source.as_deref().unwrap_or("/"));
                                let seeded = self.copy_out(Some(&id), &source, &seed);
                                if seeded.is_err() || std::fs::rename(&seed, &dir).is_err() {
                                    let _ = std::fs::remove_dir_all(&seed);
                                }
                                seeded?;
                            }
                        }
                    }
                    let mut source = dir.clone();
                    if m.sharing != "shared" {
                        let lock_path = dir.with_extension("lock");
                        let f = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .open(&lock_path)
                            .map_err(|e| EngineError::io("locking a cache mount", e))?;
                        let arg = if m.sharing == "locked" {
                            nix::fcntl::FlockArg::LockExclusive
                        } else {
                            nix::fcntl::FlockArg::LockExclusiveNonblock
                        };
                        match nix::fcntl::Flock::lock(f, arg) {
                            Ok(l) => p.keep.push(Keep::Lock(l)),
                            Err(_) => {
                                // private and in use: a fresh dir of its own.
                                let tmp = self.run_dir("build-cache");
                                make(&tmp)?;
                                p.keep.push(Keep::Dir(tmp.clone()));
                                source = tmp;
                            }
                        }
                    }
                    let ro = if m.rw == Some(false) { ",readonly" } else { "" };
                    p.mounts.push(format!(
                        "type=bind,source={},target={target}{ro}",
                        source.display()
                    ));
                }
                "tmpfs" => {
                    key.update(format!("tmpfs\0{target}\0{:?}\0", m.size).as_bytes());
                    let size = m
                        .size
                        .map(|s| format!(",tmpfs-size={s}"))
                        .unwrap_or_default();
                    p.mounts.push(format!("type=tmpfs,target={target}{size}"));
                }
                "secret" => {
                    let id =
                        m.id.clone()
                            .or_else(|| {
                                Path::new(&m.target)
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                            })
                            .unwrap_or_default();
                    // The secret's id and where it goes, never its value.
                    key.update(format!("secret\0{id}\0{}\0{:?}\0", m.target, m.env).as_bytes());
                    let Some(value) = self.req.secrets.get(&id) else {
                        if m.required {
                            return Err(invalid(
                                "RUN --mount=type=secret",
                                format!("secret {id:?} is required: pass it with --secret id={id},src=FILE"),
                            ));
                        }
                        continue;
                    };
                    if let Some(name) = &m.env {
                        p.env
                            .push(format!("{name}={}", String::from_utf8_lossy(value)));
                        if m.target.is_empty() {
                            continue;
                        }
                    }
                    let target = if m.target.is_empty() {
                        format!("/run/secrets/{id}")
                    } else {
                        target
                    };
                    let dir = self.run_dir("build-secret");
                    make_dir(&dir, 0o700, 0, 0)?;
                    p.keep.push(Keep::Dir(dir.clone()));
                    let file = dir.join("secret");
                    {
                        use std::io::Write;
                        use std::os::unix::fs::OpenOptionsExt;
                        let mut f = std::fs::OpenOptions::new()
                            .create_new(true)
                            .write(true)
                            .mode(m.mode.unwrap_or(0o400))
                            .open(&file)
                            .map_err(|e| EngineError::io("writing a secret", e))?;
                        f.write_all(value)
                            .map_err(|e| EngineError::io("writing a secret", e))?;
                    }
                    std::os::unix::fs::chown(
                        &file,
                        Some(m.uid.unwrap_or(0)),
                        Some(m.gid.unwrap_or(0)),
                    )
                    .map_err(|e| EngineError::io("chown of a secret", e))?;
                    p.mounts.push(format!(
                        "type=bind,source={},target={target},readonly",
                        file.display()
                    ));
                }
                _ => {
                    // bind: the context (default) or a stage/image, read-only
                    // unless rw (then a throwaway copy: writes never reach
                    // the context or the stage).
                    let source = ignore_clean(m.source.as_deref().unwrap_or("/"));
                    let rw = m.rw == Some(true);
                    let host = match &m.from {
                        None => {
                            let root = store::fsops::open_dir(&self.req.context)
                                .map_err(|e| EngineError::io("opening the build context", e))?;
                            let ignore = self.ignore.clone();
                            let hash = super::copy::hash_sources(
                                root.as_fd(),
                                &[super::copy::Source::Path(source.clone())],
                                &ignore,
                                &Default::default(),
                                Some(self.stat_cache()),
                            )
                            .map_err(|e| invalid("RUN --mount=type=bind", e.to_string()))?;
                            key.update(
                                format!("bind\0context\0{source}\0{target}\0{hash}\0{rw}\0")
                                    .as_bytes(),
                            );
                            self.materialize(None, &source, rw, &mut p)?
                        }
                        Some(from) => {
                            let id = self.source_image(st, from)?;
                            key.update(
                                format!("bind\0{id}\0{source}\0{target}\0{rw}\0").as_bytes(),
                            );
                            self.materialize(Some(&id), &source, true, &mut p)?
                        }
                    };
                    let ro = if rw { "" } else { ",readonly" };
                    p.mounts.push(format!(
                        "type=bind,source={},target={target}{ro}",
                        host.display()
                    ));
                }
            }
        }
        p.key = hex::encode(key.finalize());
        Ok(p)
    }

    /// A host path for a bind source: the context path itself (read-only,
    /// resolved inside the context), or a throwaway copy (rw, or from a
    /// stage or image).
    fn materialize(
        &mut self,
        image: Option<&model::Digest>,
        source: &str,
        copy: bool,
        p: &mut Prepared,
    ) -> Result<PathBuf> {
        if image.is_none() && !copy {
            let path = self.req.context.join(source);
            let real = path
                .canonicalize()
                .map_err(|e| invalid("RUN --mount=type=bind", format!("{source}: {e}")))?;
            if !real.starts_with(&self.req.context) {
                return Err(invalid(
                    "RUN --mount=type=bind",
                    format!("{source} leads outside the build context"),
                ));
            }
            return Ok(real);
        }
        let dest = self.run_dir("build-bind");
        std::fs::create_dir_all(&dest).map_err(|e| EngineError::io("creating a bind copy", e))?;
        p.keep.push(Keep::Dir(dest.clone()));
        self.copy_out(image, source, &dest)?;
        Ok(dest)
    }

    /// Copy `source` (a path in the context, or in a stage's or image's
    /// files) into the existing directory `dest`: a directory's contents,
    /// or the file itself.
    fn copy_out(&mut self, image: Option<&model::Digest>, source: &str, dest: &Path) -> Result<()> {
        let src_path = Path::new("/").join(source);
        let copy_into = |root: std::os::fd::BorrowedFd<'_>, dest: &Path| -> std::io::Result<()> {
            let dst = store::fsops::open_dir(dest)?;
            let (parent, name) = store::fsops::split_in_root(&src_path);
            let pdir = store::fsops::dir_in_root(root, &parent)?;
            let opts = store::fsops::CopyOptions {
                owner: None,
                overwrite: true,
                shift: None,
            };
            match name {
                None => store::fsops::copy_contents(pdir.as_fd(), dst.as_fd(), &opts),
                Some(n) => {
                    let sub = store::fsops::open_subdir(pdir.as_fd(), &n);
                    match sub {
                        Ok(d) => store::fsops::copy_contents(d.as_fd(), dst.as_fd(), &opts),
                        Err(_) => {
                            store::fsops::copy_entry(pdir.as_fd(), &n, dst.as_fd(), &n, &opts)
                        }
                    }
                }
            }
        };
        match image {
            None => {
                let root = store::fsops::open_dir(&self.req.context)
                    .map_err(|e| EngineError::io("opening the build context", e))?;
                copy_into(root.as_fd(), dest).map_err(|e| invalid("RUN --mount", e.to_string()))?;
            }
            Some(id) => {
                let view = crate::rootfs::View {
                    lower: self.engine.store().layer_dirs(id)?,
                    upper: None,
                    copy: None,
                };
                let d = dest.to_path_buf();
                self.engine
                    .in_rootfs(&view, move |root| copy_into(root, &d))?;
            }
        }
        Ok(())
    }

    /// A stage (built) or image (local or pulled) by name.
    pub(super) fn source_image(&mut self, _st: &StageState, from: &str) -> Result<model::Digest> {
        if let Some(s) = self.df.stage(from) {
            return self
                .built
                .get(&s.index)
                .map(|b| b.image.clone())
                .ok_or_else(|| invalid("from", format!("stage {from} was not built")));
        }
        let id = match self.engine.store().resolve_image(from) {
            Ok(i) => i.id,
            Err(store::StoreError::NotFound { .. }) => {
                let r: model::Reference = from
                    .parse()
                    .map_err(|e| invalid("from", format!("{from:?}: {e}")))?;
                self.engine.pull(&r, &Default::default(), &|_| {})?.id
            }
            Err(e) => return Err(e.into()),
        };
        self.bases.push(super::attest::BaseUse {
            name: from.to_string(),
            id: id.clone(),
        });
        Ok(id)
    }
}

fn ignore_clean(s: &str) -> String {
    super::ignore::clean(s)
}

/// Secrets given to `build --secret id=…,src=…|env=…`.
pub fn parse_secret(spec: &str) -> std::result::Result<(String, Vec<u8>), String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: use id=NAME,src=FILE or id=NAME,env=VAR"))?;
        fields.insert(k.trim().to_string(), v.trim().to_string());
    }
    let id = fields
        .get("id")
        .cloned()
        .ok_or_else(|| format!("{spec:?}: id= is required"))?;
    if let Some(src) = fields.get("src").or_else(|| fields.get("source")) {
        let data = std::fs::read(src).map_err(|e| format!("secret {id}: {src}: {e}"))?;
        return Ok((id, data));
    }
    let var = fields.get("env").cloned().unwrap_or_else(|| id.clone());
    match std::env::var_os(&var) {
        Some(v) => Ok((
            id,
            std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(),
        )),
        None => Err(format!(
            "secret {id}: neither src= nor the environment variable {var} is set"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_specs() {
        let m = parse("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000")
            .unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.target.as_str(),
                m.id.as_deref(),
                m.sharing.as_str(),
                m.mode,
                m.uid
            ),
            (
                "cache",
                "/root/.cache",
                Some("pip"),
                "locked",
                Some(0o700),
                Some(1000)
            )
        );
        let m = parse("type=secret,id=token,env=TOKEN,required").unwrap();
        assert!(m.required);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));
        let m = parse("target=/src,rw").unwrap();
        assert_eq!((m.kind.as_str(), m.rw), ("bind", Some(true)));
        for bad in [
            "type=ssh",
            "type=cache",
            "type=cache,target=/x,sharing=sometimes",
            "type=weird,target=/x",
            "type=cache,target=/x,mode=rwx",
            "type=bind,target=/x,colour=red",
            "type=secret",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
