//! User namespaces for the built-in start path (rootful berth): the
//! container's root is an unprivileged id of the host.
//!
//! The container process is cloned into a new user namespace together
//! with its other namespaces, so all of them belong to it (a root in the
//! container may bind port 80 in its network namespace, mount proc for its
//! pid namespace). Its parent writes `uid_map`/`gid_map` before releasing
//! it; the child then becomes the namespace's root and sets itself up.
//!
//! What the child cannot do from inside the namespace, the parent does
//! first, as host root, and hands over as detached mounts (fds the child
//! inherits and attaches with `move_mount`):
//! - the root filesystem: each image layer as an idmapped mount (a file
//!   owned by host uid 0 appears owned by the mapped root, i.e. by root
//!   inside), the container's dir (upper and work) likewise, and the
//!   overlay superblock made over them with `fsopen`/`fsconfig`. overlayfs
//!   makes its layer operations with the credentials of whoever created
//!   the superblock: the parent switches its filesystem ids to the mapped
//!   root (keeping its capabilities) for that call, so those ids map
//!   through the idmapped layers. The upper dir thus keeps the image's
//!   own ids on disk (a file made by root inside is owned by 0 there, as
//!   without a user namespace), and `commit`, `diff`, `cp` and `export`
//!   read it as always; overlayfs reads the `trusted.overlay.*` xattrs of
//!   berth's layers as before, which an overlay mounted inside the
//!   namespace could not.
//! - bind mounts: captured by the parent (the namespace's root could not
//!   reach paths host root may); idmapped when the spec asks (`idmap`
//!   option: berth's own files and volumes), else they show the host's
//!   ids, so a root inside is nobody to a host directory.
//! - device nodes: `mknod` is refused in a user namespace; the host's
//!   nodes are bound instead (as runc and crun do).
//!
//! A container may also join an existing user namespace (podman's
//! `--userns=container:` and `ns:PATH`): the spec names its path and its
//! maps, which [`maps_of`] checks against the namespace's own. The
//! parent prepares the same detached mounts, idmapped through that
//! namespace, and an intermediate process joins it (after the other
//! namespaces to join, while it still has host root's powers over them)
//! and clones the child with the new namespaces there, so they belong to
//! it as they would to a namespace of the container's own.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use crate::plan::{ChildPlan, IdMaps, IdRange, MountKind};
use crate::{Overlay, RuntimeError};

/// What the parent made for a container in a user namespace, inherited by
/// the child.
pub(crate) struct Prepared {
    /// The overlay root, detached.
    pub root: OwnedFd,
    /// One detached tree per bind mount of the plan, in order, with
    /// whether its source is a directory.
    pub binds: Vec<(OwnedFd, bool)>,
    /// One detached tree per device of the plan, in order.
    pub devices: Vec<OwnedFd>,
}

/// The text of a `uid_map`/`gid_map` file.
pub fn map_text(ranges: &[crate::plan::IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
        .collect()
}

/// Parse a `uid_map`/`gid_map` file's text.
pub fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let n: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            match n.as_slice() {
                [c, h, k] => Some(IdRange {
                    container: *c,
                    host: *h,
                    size: *k,
                }),
                _ => None,
            }
        })
        .collect()
}

/// Open the user namespace at `path` and read its maps ([`maps_of`]).
pub fn open_at(path: &Path) -> Result<(OwnedFd, IdMaps), RuntimeError> {
    let not = |reason: String| RuntimeError::UserNamespace {
        path: path.to_path_buf(),
        reason,
    };
    let fd = match open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        // podman's words.
        Err(nix::errno::Errno::ENOENT) => {
            return Err(not(format!(
                "cannot find specified user namespace path: stat {}: no such file or directory",
                path.display()
            )))
        }
        Err(e) => return Err(not(format!("cannot be opened: {e}"))),
    };
    let maps = maps_of(fd.as_fd(), path)?;
    Ok((fd, maps))
}

/// The id maps of the user namespace `ns` (an open namespace file) as
/// its members read them: ids of its parent namespace. The namespace
/// file shows none, so a helper process joins it and reads its own
/// `uid_map`/`gid_map`. Says clearly when `path` is no namespace, another
/// kind of namespace, or one out of reach.
pub fn maps_of(ns: BorrowedFd<'_>, path: &Path) -> Result<IdMaps, RuntimeError> {
    use std::io::{Read, Write};
    let not = |reason: String| RuntimeError::UserNamespace {
        path: path.to_path_buf(),
        reason,
    };
    let fs = nix::sys::statfs::fstatfs(ns)
        .map_err(|e| RuntimeError::sys(format!("statfs {}", path.display()), e))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(not(
            "is not a user namespace (not a namespace file at all: give /proc/PID/ns/user of a process in it, or a bind mount of one)".into(),
        ));
    }
    let own = |file: &str| {
        std::fs::read_to_string(file)
            .map(|t| parse_map(&t))
            .map_err(|e| RuntimeError::sys(format!("reading {file}"), e))
    };
    // Our own namespace cannot be joined again (EINVAL): read ours.
    let st = nix::sys::stat::fstat(ns)
        .map_err(|e| RuntimeError::sys(format!("stat {}", path.display()), e))?;
    if let Ok(mine) = nix::sys::stat::stat("/proc/self/ns/user") {
        if (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino) {
            return Ok(IdMaps {
                uid: own("/proc/self/uid_map")?,
                gid: own("/proc/self/gid_map")?,
            });
        }
    }
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("creating a pipe", e))?;
    match sys::process::fork().map_err(|e| RuntimeError::sys("forking a helper", e))? {
        sys::process::Forked::Child => {
            drop(r);
            let mut w = std::fs::File::from(w);
            if let Err(e) = nix::sched::setns(ns, CloneFlags::CLONE_NEWUSER) {
                let _ = write!(w, "e{}", e as i32);
                sys::process::exit_now(1);
            }
            let u = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
            let g = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
            let _ = write!(w, "m{u}\0{g}");
            sys::process::exit_now(0)
        }
        sys::process::Forked::Parent(pid) => {
            drop(w);
            let mut answer = String::new();
            let read = std::fs::File::from(r).read_to_string(&mut answer);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            read.map_err(|e| RuntimeError::sys("reading the helper's answer", e))?;
            if let Some(errno) = answer.strip_prefix('e').and_then(|n| n.parse().ok()) {
                return Err(match nix::errno::Errno::from_raw(errno) {
                    nix::errno::Errno::EINVAL => not(
                        "is not a user namespace (a namespace of another kind: give /proc/PID/ns/user)".into(),
                    ),
                    e => not(format!("cannot be joined: {e}")),
                });
            }
            match answer.strip_prefix('m').and_then(|t| t.split_once('\0')) {
                Some((u, g)) if !u.trim().is_empty() => Ok(IdMaps {
                    uid: parse_map(u),
                    gid: parse_map(g),
                }),
                _ => Err(not("its id maps could not be read".into())),
            }
        }
    }
}

/// Write `pid`'s id maps (the parent's side; host root needs no
/// `newuidmap` nor `setgroups` deny).
pub(crate) fn write_maps(pid: i32, maps: &IdMaps) -> Result<(), RuntimeError> {
    for (file, ranges) in [("uid_map", &maps.uid), ("gid_map", &maps.gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map_text(ranges)).map_err(|e| {
            RuntimeError::sys(
                format!(
                    "writing {file} of the container's user namespace ({})",
                    map_text(ranges).trim().replace('\n', ", ")
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// A user namespace with `maps`, held by fd: a helper process is cloned
/// into a new one, its maps written, its namespace opened, and it exits.
/// Idmapped mounts take their mapping from it (its ids are the same as
/// the container's namespace, made later).
fn namespace_with(maps: &IdMaps) -> Result<OwnedFd, RuntimeError> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("creating a pipe", e))?;
    match sys::process::clone_fork(CloneFlags::CLONE_NEWUSER.bits())
        .map_err(|e| RuntimeError::sys("creating a user namespace", e))?
    {
        sys::process::Forked::Child => {
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(r.as_fd(), &mut b);
            sys::process::exit_now(0)
        }
        sys::process::Forked::Parent(pid) => {
            drop(r);
            let result = write_maps(pid, maps).and_then(|()| {
                std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map(OwnedFd::from)
                    .map_err(|e| RuntimeError::sys("opening the helper's user namespace", e))
            });
            drop(w);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            result
        }
    }
}

fn open_path(p: &Path, dir: bool) -> Result<OwnedFd, RuntimeError> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if dir {
        flags |= OFlag::O_DIRECTORY;
    }
    open(p, flags, Mode::empty())
        .map_err(|e| RuntimeError::sys(format!("opening {}", p.display()), e))
}

/// A private (and, with `userns`, idmapped) detached copy of the mount at `p`.
fn tree(
    p: &Path,
    recursive: bool,
    userns: Option<BorrowedFd<'_>>,
    dir: bool,
) -> Result<OwnedFd, RuntimeError> {
    let fd = open_path(p, dir)?;
    let t = sys::mount::clone_tree(fd.as_fd(), recursive)
        .map_err(|e| RuntimeError::sys(format!("capturing {}", p.display()), e))?;
    sys::mount::set_tree_attrs(t.as_fd(), recursive, userns).map_err(|e| {
        let what = if userns.is_some() {
            format!(
                "making an idmapped mount of {} (its filesystem must support idmapped mounts)",
                p.display()
            )
        } else {
            format!("making {} private", p.display())
        };
        RuntimeError::sys(what, e)
    })?;
    Ok(t)
}

/// Make everything the child needs from outside its namespace.
/// `joined`: the existing user namespace the container joins (its maps
/// are `maps`), through which the mounts are idmapped.
pub(crate) fn prepare(
    plan: &ChildPlan,
    overlay: &Overlay,
    maps: &IdMaps,
    joined: Option<BorrowedFd<'_>>,
) -> Result<Prepared, RuntimeError> {
    let made;
    let ns = match joined {
        Some(fd) => fd,
        None => {
            made = namespace_with(maps)?;
            made.as_fd()
        }
    };
    // A copied root (vfs): rootless (`keep-id`) its owners are already
    // the ones the container must see, and it is bound as it is; as host
    // root it is idmapped like the layers.
    let root = match &overlay.copy {
        Some(copy) => {
            let idmap = (!sys::process::in_user_namespace()).then_some(ns);
            tree(copy, false, idmap, true)?
        }
        None => idmapped_overlay(overlay, maps, ns)?,
    };
    let mut binds = Vec::new();
    for m in &plan.mounts {
        if let MountKind::Bind {
            source,
            recursive,
            idmap,
        } = &m.kind
        {
            let is_dir = std::fs::metadata(source).map(|m| m.is_dir()).map_err(|e| {
                RuntimeError::sys(format!("bind mount source {}", source.display()), e)
            })?;
            let t = tree(source, *recursive, idmap.then_some(ns), is_dir)?;
            binds.push((t, is_dir));
        }
    }
    let mut devices = Vec::new();
    for d in &plan.devices {
        // The host's node of the same path must be the same device.
        let st = nix::sys::stat::stat(&d.path)
            .map_err(|e| RuntimeError::sys(format!("device {}", d.path.display()), e))?;
        let kind = match d.kind {
            'b' => libc::S_IFBLK,
            'p' => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        let same = st.st_mode & libc::S_IFMT == kind
            && (d.kind == 'p' || st.st_rdev == nix::sys::stat::makedev(d.major, d.minor));
        if !same {
            return Err(RuntimeError::InvalidSpec {
                field: "linux.devices",
                reason: format!(
                    "{} ({}:{}) cannot be made in a user namespace and the host's {} is another device; bind the host's node instead",
                    d.path.display(),
                    d.major,
                    d.minor,
                    d.path.display()
                ),
            });
        }
        devices.push(tree(&d.path, false, None, false)?);
    }
    Ok(Prepared {
        root,
        binds,
        devices,
    })
}

/// The container's overlay over idmapped layers, made with the mapped
/// root's filesystem ids (see the module's notes).
fn idmapped_overlay(
    ov: &Overlay,
    maps: &IdMaps,
    ns: BorrowedFd<'_>,
) -> Result<OwnedFd, RuntimeError> {
    let dir = match (ov.upper.parent(), ov.work.parent()) {
        (Some(a), Some(b)) if a == b => a,
        _ => {
            return Err(RuntimeError::InvalidSpec {
                field: "root",
                reason: "the upper and work dirs must share a parent dir in a user namespace"
                    .into(),
            })
        }
    };
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let ctx = sys::mount::FsContext::open("overlay")
        .map_err(|e| RuntimeError::sys("opening an overlay filesystem context", e))?;
    let fail = |what: String, e: std::io::Error, ctx: &sys::mount::FsContext| {
        let said = ctx.messages();
        RuntimeError::sys(
            if said.is_empty() {
                what
            } else {
                format!("{what} (overlayfs: {said})")
            },
            e,
        )
    };
    let mut layers = Vec::with_capacity(ov.lower.len());
    for l in &ov.lower {
        layers.push(tree(l, false, Some(ns), true)?);
    }
    // `lowerdir+` appends below the ones given before: top layer first.
    for t in layers.iter().rev() {
        ctx.set("lowerdir+", &format!("/proc/self/fd/{}", t.as_raw_fd()))
            .map_err(|e| fail("adding an image layer to the overlay".into(), e, &ctx))?;
    }
    let own = tree(dir, false, Some(ns), true)?;
    let base = format!("/proc/self/fd/{}", own.as_raw_fd());
    ctx.set("upperdir", &format!("{base}/{}", name(&ov.upper)))
        .map_err(|e| fail("setting the overlay's upper dir".into(), e, &ctx))?;
    ctx.set("workdir", &format!("{base}/{}", name(&ov.work)))
        .map_err(|e| fail("setting the overlay's work dir".into(), e, &ctx))?;
    let (uid, gid) = (maps.host_root_uid(), maps.host_root_gid());
    let made = as_mapped_root(uid, gid, || ctx.mount());
    made.map_err(|e| {
        fail(
            "mounting the idmapped overlay root filesystem".into(),
            e,
            &ctx,
        )
    })
}

/// Run `f` with the filesystem ids `uid`/`gid` and every permitted
/// capability effective (changing fsuid from 0 clears the filesystem
/// capabilities from the effective set; they are raised again), then go
/// back to ids 0.
fn as_mapped_root<T>(
    uid: u32,
    gid: u32,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    use caps::CapSet;
    let effective = caps::read(None, CapSet::Effective).map_err(std::io::Error::other)?;
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
    let raised = caps::read(None, CapSet::Permitted)
        .and_then(|p| caps::set(None, CapSet::Effective, &p))
        .map_err(std::io::Error::other);
    let out = raised.and_then(|()| f());
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
    let _ = caps::set(None, CapSet::Effective, &effective);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::IdRange;

    #[test]
    fn map_files_have_one_range_a_line() {
        let r = [
            IdRange {
                container: 0,
                host: 100000,
                size: 65536,
            },
            IdRange {
                container: 65536,
                host: 300000,
                size: 10,
            },
        ];
        assert_eq!(map_text(&r), "0 100000 65536\n65536 300000 10\n");
        assert_eq!(
            parse_map("         0     100000      65536\n     65536     300000         10\n"),
            r
        );
    }

    #[test]
    fn a_path_that_is_no_user_namespace_is_refused_and_our_own_is_read() {
        let e = open_at(Path::new("/tmp")).unwrap_err().to_string();
        assert!(e.contains("is not a user namespace"), "{e}");
        let e = open_at(Path::new("/nonexistent/ns"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot find specified user namespace path"),
            "{e}"
        );
        // Our own namespace is not joined (EINVAL): its maps are ours.
        let (_, maps) = open_at(Path::new("/proc/self/ns/user")).unwrap();
        let ours = parse_map(&std::fs::read_to_string("/proc/self/uid_map").unwrap());
        assert_eq!(maps.uid, ours);
    }
}
