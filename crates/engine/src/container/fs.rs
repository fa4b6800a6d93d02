//! The container filesystem from the host: `diff`, `export`, `commit`,
//! `cp`. Paths inside the container resolve inside its root
//! (`openat2(RESOLVE_IN_ROOT)`) and every entry is then reached through
//! file descriptors, never by a host path a container process could
//! redirect with a symlink (CVE-2018-15664); nothing of the container is
//! ever executed or loaded (CVE-2019-14271).
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use store::fsops;

use crate::config::MountType;
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::rootfs::View;

/// `commit` options: the new image's tag, `--change`s, message, author.
pub use store::CommitOptions;

/// One end of a `cp`.
#[derive(Debug, Clone)]
pub enum CpEnd {
    /// A path on the host (`-`: a tar stream on stdin/stdout).
    Host(PathBuf),
    /// A path in a container.
    Container(String, PathBuf),
}

impl CpEnd {
    /// Parse `docker cp`'s `CONTAINER:PATH` or a host path (a path
    /// with a `/` before any `:` is a host path: `./a:b`).
    pub fn parse(s: &str) -> CpEnd {
        if s.starts_with('/') || s.starts_with('.') {
            return CpEnd::Host(PathBuf::from(s));
        }
        match s.split_once(':') {
            Some((c, p)) if !c.is_empty() && !c.contains('/') => CpEnd::Container(
                c.to_string(),
                PathBuf::from(if p.is_empty() { "/" } else { p }),
            ),
            _ => CpEnd::Host(PathBuf::from(s)),
        }
    }
}

/// `cp` options.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-a`: keep uid/gid.
    pub archive: bool,
    /// `-L`: follow a symlink at the source.
    pub follow: bool,
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |e| EngineError::io(what.to_string(), e)
}

fn errno(e: nix::errno::Errno) -> std::io::Error {
    e.into()
}

/// Where a `cp` lands: the directory and the name in it.
struct Landing {
    dir: OwnedFd,
    name: OsString,
}

/// Docker's rules for the target of a copy of `src_name` (a directory if
/// `src_is_dir`) to `dest` (resolved under `root` for a container; a host
/// path otherwise): into `dest` if it is a directory, else as `dest`.
fn landing(
    root: Option<BorrowedFd<'_>>,
    dest: &Path,
    src_name: &OsStr,
    src_is_dir: bool,
) -> std::io::Result<Landing> {
    let trailing = dest.as_os_str().as_encoded_bytes().ends_with(b"/");
    let open_dir = |p: &Path| -> std::io::Result<OwnedFd> {
        match root {
            Some(r) => fsops::dir_in_root(r, p),
            None => fsops::open_dir(p),
        }
    };
    let (parent, last) = match root {
        Some(_) => fsops::split_in_root(dest),
        None => {
            let abs = std::path::absolute(dest)?;
            (
                abs.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| "/".into()),
                abs.file_name().map(OsStr::to_os_string),
            )
        }
    };
    let Some(last) = last else {
        // The root itself.
        return Ok(Landing {
            dir: open_dir(Path::new("/"))?,
            name: src_name.to_os_string(),
        });
    };
    let pdir = open_dir(&parent).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("destination directory {} : {e}", parent.display()),
        )
    })?;
    match fsops::stat_at(pdir.as_fd(), &last) {
        Ok(st) if fsops::kind_of(&st) == fsops::Kind::Dir => Ok(Landing {
            dir: fsops::open_subdir(pdir.as_fd(), &last).map_err(errno)?,
            name: src_name.to_os_string(),
        }),
        Ok(_) if src_is_dir => Err(std::io::Error::other(format!(
            "cannot copy a directory to the file {}",
            dest.display()
        ))),
        Ok(_) => Ok(Landing {
            dir: pdir,
            name: last,
        }),
        Err(_) if trailing && !src_is_dir => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("destination directory {} does not exist", dest.display()),
        )),
        Err(_) => Ok(Landing {
            dir: pdir,
            name: last,
        }),
    }
}

/// Resolve a source path under `root` to its parent dir and name; with
/// `follow`, a symlink at the end is followed (inside the root).
pub(crate) fn source_in_root(
    root: BorrowedFd<'_>,
    path: &Path,
    follow: bool,
) -> std::io::Result<(OwnedFd, Option<OsString>)> {
    let mut path = path.to_path_buf();
    for _ in 0..40 {
        let (parent, name) = fsops::split_in_root(&path);
        let pdir = fsops::dir_in_root(root, &parent)?;
        let Some(name) = name else {
            return Ok((pdir, None));
        };
        let st = fsops::stat_at(pdir.as_fd(), &name).map_err(|e| {
            std::io::Error::new(
                std::io::Error::from(e).kind(),
                format!("could not find the file {} in container", path.display()),
            )
        })?;
        if follow && fsops::kind_of(&st) == fsops::Kind::Symlink {
            let target = nix::fcntl::readlinkat(pdir.as_fd(), name.as_os_str()).map_err(errno)?;
            path = if Path::new(&target).is_absolute() {
                PathBuf::from(target)
            } else {
                parent.join(target)
            };
            continue;
        }
        return Ok((pdir, Some(name)));
    }
    Err(std::io::Error::other(format!(
        "{}: too many levels of symbolic links",
        path.display()
    )))
}

/// `mkdir -p` inside `root`: each component resolved inside it.
fn mkdir_in_root(root: BorrowedFd<'_>, path: &Path) -> std::io::Result<OwnedFd> {
    let mut prefix = PathBuf::from("/");
    let mut cur = fsops::dir_in_root(root, &prefix)?;
    for comp in path.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        prefix.push(name);
        cur = match fsops::dir_in_root(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match nix::sys::stat::mkdirat(
                    cur.as_fd(),
                    name,
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                fsops::dir_in_root(root, &prefix)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// The paths berth creates in a container's root at start: its /etc files
/// and mount points.
fn runtime_made(c: &Container) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
        .iter()
        .map(PathBuf::from)
        .collect();
    v.extend(c.config.mounts.iter().map(|m| PathBuf::from(&m.target)));
    v.extend(c.config.tmpfs.keys().map(PathBuf::from));
    v
}

impl crate::Engine {
    /// The layer dirs of a container's image, base first, then its upper
    /// (an overlay container's; a copied root has none of its own).
    fn container_layers(&self, c: &Container) -> Result<(Vec<PathBuf>, PathBuf, PathBuf)> {
        let dir = self.store().container_dir(c.id());
        let lower = self.lower_dirs(c)?;
        Ok((lower, dir.join("upper"), dir.join("work")))
    }

    /// Run `work` on the container's root as its processes see it (with
    /// its volumes and binds): the live root of a running container, or
    /// its layers mounted in a helper (writable with `writable`).
    pub(crate) fn with_container_root(
        &self,
        c: &Container,
        writable: bool,
        work: impl FnOnce(BorrowedFd<'_>) -> std::io::Result<()>,
    ) -> Result<()> {
        if c.is_running() {
            let root = fsops::open_dir(Path::new(&format!("/proc/{}/root", c.state.pid)))
                .map_err(io_err("opening the container's root"))?;
            // The pid was the container's when we opened its root.
            if !self.container(c.id().as_str())?.state.is_alive() {
                return Err(EngineError::State {
                    name: c.name().to_string(),
                    problem: "stopped meanwhile: try again".into(),
                });
            }
            return work(root.as_fd()).map_err(io_err("copying"));
        }
        let copy = self.copied_root(c.id());
        let (lower, upper_rw) = match &copy {
            Some(_) => (Vec::new(), None),
            None => {
                let (mut lower, upper, workdir) = self.container_layers(c)?;
                if writable {
                    (lower, Some((upper, workdir)))
                } else {
                    lower.push(upper);
                    (lower, None)
                }
            }
        };
        // Volumes and binds, as at start (tmpfs mounts have no content
        // while stopped).
        let mut binds = Vec::new();
        for m in c
            .config
            .mounts
            .iter()
            .filter(|m| m.kind != MountType::Tmpfs)
        {
            let src = match m.kind {
                MountType::Volume => match self.store().volume(&m.source) {
                    Ok(rec) => self.volume_path(&rec)?,
                    Err(_) => continue,
                },
                _ => PathBuf::from(&m.source),
            };
            binds.push((m.target.clone(), src, m.readonly));
        }
        let view = View {
            lower,
            upper: upper_rw,
            copy,
        };
        self.in_rootfs(&view, |root| {
            for (target, src, ro) in &binds {
                // A container that never ran has no mount points yet.
                let at = match fsops::dir_in_root(root, Path::new(target)) {
                    Ok(fd) => fd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && writable => {
                        mkdir_in_root(root, Path::new(target))?
                    }
                    Err(_) => continue,
                };
                let at_path = PathBuf::from(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(&at)
                ));
                use nix::mount::{mount, MsFlags};
                mount(
                    Some(src.as_path()),
                    &at_path,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )?;
                if *ro {
                    let again = fsops::dir_in_root(root, Path::new(target))?;
                    let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&again));
                    mount(
                        None::<&str>,
                        p.as_str(),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        None::<&str>,
                    )?;
                }
            }
            work(root)
        })
    }

    /// `diff`: what the container changed in its image's filesystem
    /// (not counting the mount points and /etc files berth made for it).
    pub fn diff(&self, name_or_id: &str) -> Result<Vec<(PathBuf, fsops::ChangeKind)>> {
        let c = self.container(name_or_id)?;
        let made = runtime_made(&c);
        let raw = self.raw_diff(&c)?;
        let hidden: Vec<&PathBuf> = raw
            .iter()
            .filter(|(p, k)| *k == fsops::ChangeKind::Added && made.contains(p))
            .map(|(p, _)| p)
            .collect();
        let kept: Vec<(PathBuf, fsops::ChangeKind)> = raw
            .iter()
            .filter(|(p, _)| !hidden.contains(&p))
            .cloned()
            .collect();
        // A directory copied up only to hold what berth made (`/etc` for
        // its hosts files, the parent of a mount point) is no change of
        // the container's: dockerd keeps those in an init layer.
        Ok(kept
            .iter()
            .filter(|(p, k)| {
                *k != fsops::ChangeKind::Changed
                    || !hidden.iter().any(|h| h.starts_with(p))
                    || kept.iter().any(|(q, _)| q != p && q.starts_with(p))
            })
            .cloned()
            .collect())
    }

    fn raw_diff(&self, c: &Container) -> Result<Vec<(PathBuf, fsops::ChangeKind)>> {
        if let Some(copy) = self.copied_root(c.id()) {
            return self.copy_changes(c, &copy);
        }
        let (lower, upper, _) = self.container_layers(c)?;
        let lower_fds = lower
            .iter()
            .map(|l| fsops::open_dir(l))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(io_err("opening the image's layers"))?;
        let up = fsops::open_dir(&upper).map_err(io_err("opening the container's upper dir"))?;
        fsops::upper_changes(up.as_fd(), &lower_fds).map_err(io_err("reading the changes"))
    }

    /// `export`: the container's filesystem (image plus changes, no
    /// volumes) as a tar stream on `out`.
    pub fn export(&self, name_or_id: &str, out: OwnedFd) -> Result<()> {
        let c = self.container(name_or_id)?;
        let shift = self.copy_shift(&c);
        let view = match self.copied_root(c.id()) {
            Some(copy) => View {
                lower: Vec::new(),
                upper: None,
                copy: Some(copy),
            },
            None => {
                let (mut lower, upper, _) = self.container_layers(&c)?;
                lower.push(upper);
                View {
                    lower,
                    upper: None,
                    copy: None,
                }
            }
        };
        self.in_rootfs(&view, |root| {
            let mut w = std::io::BufWriter::new(std::fs::File::from(out));
            fsops::tar_contents(root, shift.as_ref(), &mut w)?;
            w.flush()
        })
    }

    /// What berth made in a container's upper dir at start (mount points,
    /// /etc files): not the container's content.
    fn runtime_made_paths(&self, c: &Container) -> Result<Vec<PathBuf>> {
        let made = runtime_made(c);
        Ok(self
            .raw_diff(c)?
            .into_iter()
            .filter(|(p, k)| *k == fsops::ChangeKind::Added && made.contains(p))
            .filter_map(|(p, _)| p.strip_prefix("/").ok().map(Path::to_path_buf))
            .collect())
    }

    /// A stopped container's changes as a layer tar at `path` (a build's
    /// RUN step), file times clamped to `mtime_clamp`.
    pub(crate) fn changes_tar(
        &self,
        name_or_id: &str,
        path: &Path,
        mtime_clamp: u64,
    ) -> Result<()> {
        let c = self.container(name_or_id)?;
        if let Some(copy) = self.copied_root(c.id()) {
            return self.write_copy_changes(&c, &copy, &runtime_made(&c), Some(mtime_clamp), path);
        }
        let (_, upper, _) = self.container_layers(&c)?;
        let opts = fsops::LayerOpts {
            skip: self.runtime_made_paths(&c)?,
            mtime_clamp: Some(mtime_clamp),
            ..Default::default()
        };
        (|| -> std::io::Result<()> {
            let f = std::fs::File::create(path)?;
            let mut w = std::io::BufWriter::new(f);
            let up = fsops::open_dir(&upper)?;
            fsops::tar_layer_with(up.as_fd(), &opts, &mut w)?;
            w.flush()
        })()
        .map_err(io_err("writing the container's changes"))
    }

    /// `commit`: a new image from the container's changes.
    pub fn commit(
        &self,
        name_or_id: &str,
        pause: bool,
        opts: &CommitOptions,
    ) -> Result<store::ImageRecord> {
        let c = self.container(name_or_id)?;
        let copy = self.copied_root(c.id());
        // Made before the container is frozen: nothing between the freeze
        // and the thaw returns early.
        let tmp = self.store().tmp_dir("commit-layer")?;
        let layer_path = tmp.path().join("layer.tar");
        let cgroup = if pause && c.is_running() {
            let h = Self::container_hierarchy()?;
            let cg = runtime::cgroup::Cgroup::open(&h, &c.config.cgroup_path(c.id().as_str()));
            match cg.freeze() {
                Ok(()) => Some(cg),
                // It ended since it was read (its cgroup went with it,
                // maybe before its monitor recorded the end): nothing left
                // to pause.
                Err(_) if cg.is_empty() || !self.container(c.id().as_str())?.is_running() => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let written = match &copy {
            Some(copy) => self.write_copy_changes(&c, copy, &runtime_made(&c), None, &layer_path),
            None => self.runtime_made_paths(&c).and_then(|skip| {
                let (_, upper, _) = self.container_layers(&c)?;
                write_changes(&upper, &skip, &layer_path)
                    .map_err(io_err("writing the container's changes"))
            }),
        };
        if let Some(cg) = &cgroup {
            let _ = cg.thaw();
        }
        written?;
        crate::faults::point("commit.layer-written");
        let raw: serde_json::Value =
            serde_json::from_slice(&self.store().image_config_raw(&c.record.image_id)?)
                .unwrap_or_default();
        let mut config = raw["config"].clone();
        if !config.is_object() {
            config = serde_json::json!({});
        }
        let cfg = &c.config;
        config["Cmd"] = serde_json::json!(cfg.cmd);
        config["Entrypoint"] = if cfg.entrypoint.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(cfg.entrypoint)
        };
        config["Env"] = serde_json::json!(cfg.env);
        config["WorkingDir"] = serde_json::json!(cfg.working_dir);
        config["User"] = serde_json::json!(cfg.user);
        config["Labels"] = serde_json::json!(cfg.labels);
        config["StopSignal"] = serde_json::json!(cfg.stop_signal);
        if let Some(given) = opts.config.as_ref().filter(|c| c.is_object()) {
            config = merge_commit_config(given, &config);
        }
        let f = std::fs::File::open(&layer_path).map_err(io_err("reading the layer"))?;
        let mut o = opts.clone();
        if o.created_by.is_empty() {
            o.created_by = c.args().join(" ");
        }
        let img = self.store().commit_image(
            &c.record.image_id,
            std::io::BufReader::new(f),
            config,
            &o,
        )?;
        drop(tmp);
        // dockerd's `commit` event of the container.
        let image_ref = o
            .reference
            .as_ref()
            .map(|r| r.familiar())
            .unwrap_or_default();
        let id = img.id.to_string();
        self.emit_container(
            &c,
            "commit",
            &[
                ("comment", o.message.as_deref().unwrap_or_default()),
                ("imageID", &id),
                ("imageRef", &image_ref),
            ],
        );
        Ok(img)
    }

    /// `cp`: copy between a container and the host (or a tar stream on
    /// stdin/stdout for `-`).
    pub fn copy(&self, src: &CpEnd, dst: &CpEnd, opts: CpOptions) -> Result<()> {
        match (src, dst) {
            (CpEnd::Container(name, path), CpEnd::Host(host)) => {
                let c = self.container(name)?;
                let owner = (!opts.archive).then(|| {
                    (
                        nix::unistd::getuid().as_raw(),
                        nix::unistd::getgid().as_raw(),
                    )
                });
                let to_stdout = host.as_os_str() == "-";
                let shift = self.copy_shift(&c);
                let host = host.clone();
                let path = path.clone();
                let asked = path.clone();
                self.with_container_root(&c, false, move |root| {
                    let (pdir, name) = source_in_root(root, &path, opts.follow)?;
                    // Only the source is "not found" (a 404): what the host
                    // side lacks is an error of another kind.
                    let host_side = |e: std::io::Error| match e.kind() {
                        std::io::ErrorKind::NotFound => std::io::Error::other(e.to_string()),
                        _ => e,
                    };
                    (move || {
                        let (sdir, sname): (OwnedFd, OsString) = match name {
                            Some(n) => (pdir, n),
                            // The container's root: its contents.
                            None => (pdir, OsString::from(".")),
                        };
                        let st = fsops::stat_at(sdir.as_fd(), &sname).map_err(errno)?;
                        let is_dir = fsops::kind_of(&st) == fsops::Kind::Dir;
                        let contents_only = path.as_os_str().as_encoded_bytes().ends_with(b"/.");
                        if to_stdout {
                            let out = std::io::stdout();
                            let mut w = std::io::BufWriter::new(out.lock());
                            let base = if sname == "." {
                                OsString::from("/")
                            } else {
                                sname.clone()
                            };
                            if contents_only && is_dir {
                                let d = fsops::open_subdir(sdir.as_fd(), &sname).map_err(errno)?;
                                fsops::tar_contents(d.as_fd(), shift.as_ref(), &mut w)?;
                            } else {
                                fsops::tar_entry(
                                    sdir.as_fd(),
                                    &sname,
                                    Path::new(&base),
                                    shift.as_ref(),
                                    &mut w,
                                )?;
                            }
                            return w.flush();
                        }
                        // `-a` keeps the owners the container sees.
                        let copts = fsops::CopyOptions {
                            owner,
                            overwrite: true,
                            shift: shift.as_ref().map(fsops::IdShift::inverse),
                        };
                        if contents_only && is_dir {
                            let d = fsops::open_subdir(sdir.as_fd(), &sname).map_err(errno)?;
                            let target = std::path::absolute(&host)?;
                            if !target.is_dir() {
                                std::fs::create_dir_all(&target)?;
                            }
                            let t = fsops::open_dir(&target)?;
                            return fsops::copy_contents(d.as_fd(), t.as_fd(), &copts);
                        }
                        let shown_name = if sname == "." {
                            OsString::from("rootfs")
                        } else {
                            sname.clone()
                        };
                        let land = landing(None, &host, &shown_name, is_dir)?;
                        fsops::copy_entry(
                            sdir.as_fd(),
                            &sname,
                            land.dir.as_fd(),
                            &land.name,
                            &copts,
                        )
                    })()
                    .map_err(host_side)
                })
                .map_err(|e| match e {
                    EngineError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        EngineError::PathNotFound {
                            path: asked.display().to_string(),
                            container: name.clone(),
                        }
                    }
                    e => e,
                })
            }
            (CpEnd::Host(host), CpEnd::Container(name, path)) => {
                let c = self.container(name)?;
                // The container's root: rootless with a nested namespace
                // (a copied root whose owners are the namespace's ids),
                // the id its map gives root.
                let root_ids = if crate::rootless::active() && c.config.userns.is_private() {
                    c.config.userns.host_ids(0, 0)
                } else {
                    (0, 0)
                };
                let owner = (!opts.archive).then_some(root_ids);
                let from_stdin = host.as_os_str() == "-";
                let path = path.clone();
                // The host side is opened here, before any helper forks.
                let src = if from_stdin {
                    None
                } else {
                    // The host side is the user's own: -L resolves it here.
                    let abs = if opts.follow {
                        std::fs::canonicalize(host)
                    } else {
                        std::path::absolute(host)
                    }
                    .map_err(|e| {
                        EngineError::invalid(
                            "cp",
                            format!("could not find the file {}: {e}", host.display()),
                        )
                    })?;
                    let contents_only = host.as_os_str().as_encoded_bytes().ends_with(b"/.");
                    let (parent, name) = match (abs.parent(), abs.file_name()) {
                        (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
                        _ => (PathBuf::from("/"), OsString::from(".")),
                    };
                    let pdir = fsops::open_dir(&parent).map_err(io_err("opening the source"))?;
                    fsops::stat_at(pdir.as_fd(), &name).map_err(|e| {
                        EngineError::invalid(
                            "cp",
                            format!("could not find the file {}: {}", host.display(), e.desc()),
                        )
                    })?;
                    Some((pdir, name, contents_only))
                };
                // A --read-only root stays read-only (its volumes do not).
                let writable = !c.config.read_only;
                self.with_container_root(&c, writable, move |root| {
                    let copts = fsops::CopyOptions {
                        owner,
                        overwrite: true,
                        shift: None,
                    };
                    match &src {
                        None => {
                            // A tar stream into a directory.
                            let dir = fsops::dir_in_root(root, &path).map_err(|e| {
                                std::io::Error::new(
                                    e.kind(),
                                    format!("destination directory {} does not exist or is not a directory: {e}", path.display()),
                                )
                            })?;
                            let at = PathBuf::from(format!(
                                "/proc/self/fd/{}",
                                std::os::fd::AsRawFd::as_raw_fd(&dir)
                            ));
                            store::layer::unpack_with(
                                std::io::stdin().lock(),
                                &at,
                                &store::layer::UnpackOptions {
                                    plain_names: true,
                                    ..Default::default()
                                },
                            )
                            .map(|_| ())
                            .map_err(std::io::Error::other)
                        }
                        Some((pdir, name, contents_only)) => {
                            let st = fsops::stat_at(pdir.as_fd(), name).map_err(errno)?;
                            let is_dir = fsops::kind_of(&st) == fsops::Kind::Dir;
                            if *contents_only && is_dir {
                                let d = fsops::open_subdir(pdir.as_fd(), name).map_err(errno)?;
                                let t = fsops::dir_in_root(root, &path)?;
                                return fsops::copy_contents(d.as_fd(), t.as_fd(), &copts);
                            }
                            let land = landing(Some(root), &path, name, is_dir)?;
                            fsops::copy_entry(
                                pdir.as_fd(),
                                name,
                                land.dir.as_fd(),
                                &land.name,
                                &copts,
                            )
                        }
                    }
                })
            }
            (CpEnd::Container(..), CpEnd::Container(..)) => Err(EngineError::invalid(
                "cp",
                "copying between containers is not supported: copy to the host first",
            )),
            (CpEnd::Host(..), CpEnd::Host(..)) => Err(EngineError::invalid(
                "cp",
                "must specify at least one container source (CONTAINER:PATH)",
            )),
        }
    }
}

/// The upper dir of a container as a layer tar at `path`, without `skip`.
fn write_changes(upper: &Path, skip: &[PathBuf], path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::new(f);
    let up = fsops::open_dir(upper)?;
    fsops::tar_layer(up.as_fd(), skip, &mut w)?;
    w.flush()
}

/// The `Config` given with `POST /commit` over the container's, as dockerd
/// merges them (`daemon/commit.go`): what the request sets wins; `User`,
/// `WorkingDir`, `StopSignal` and, without an `Entrypoint`, `Cmd` and
/// `Entrypoint` come from the container when left empty; `Env` keeps the
/// container's variables the request does not name; `ExposedPorts`,
/// `Volumes` and `Labels` are unions.
pub fn merge_commit_config(
    given: &serde_json::Value,
    container: &serde_json::Value,
) -> serde_json::Value {
    use serde_json::Value;
    let mut out = container.clone();
    let empty = |v: &Value| match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    let g = |k: &str| given.get(k).filter(|v| !empty(v));
    for k in [
        "User",
        "WorkingDir",
        "StopSignal",
        "Healthcheck",
        "Shell",
        "OnBuild",
    ] {
        if let Some(v) = g(k) {
            out[k] = v.clone();
        }
    }
    if let Some(ep) = g("Entrypoint") {
        out["Entrypoint"] = ep.clone();
        out["Cmd"] = given.get("Cmd").cloned().unwrap_or(Value::Null);
    } else if let Some(cmd) = g("Cmd") {
        out["Cmd"] = cmd.clone();
    }
    if let Some(Value::Array(env)) = g("Env") {
        let key = |e: &Value| {
            e.as_str()
                .map(|s| s.split('=').next().unwrap_or_default().to_string())
                .unwrap_or_default()
        };
        let mut merged = env.clone();
        for e in container["Env"].as_array().into_iter().flatten() {
            if !env.iter().any(|u| key(u) == key(e)) {
                merged.push(e.clone());
            }
        }
        out["Env"] = Value::Array(merged);
    }
    for k in ["ExposedPorts", "Volumes", "Labels"] {
        if let Some(Value::Object(m)) = g(k) {
            let mut union = out[k].as_object().cloned().unwrap_or_default();
            for (name, v) in m {
                union.insert(name.clone(), v.clone());
            }
            out[k] = Value::Object(union);
        }
    }
    out
}
