//! The layer directory, reached only through file descriptors.
//!
//! A parent directory is found by walking its components one at a time
//! with `openat(O_NOFOLLOW)` from the fd of the previous one; when a
//! component is a symlink, the whole prefix is resolved again from the
//! layer root ([`super::resolve`]: `openat2(RESOLVE_IN_ROOT)`), so a symlink
//! made by the layer resolves as if the layer directory were `/` (as Docker
//! and containerd resolve them). The last component of an entry is always
//! created or changed relative to its parent's fd, without following it.
//!
//! The fds of the last parent's ancestors are kept: a tar lists a
//! directory's entries together, so most entries need no lookup at all.
//! The cache is dropped whenever a directory or symlink is removed or a
//! symlink is made, the only changes that can alter how a path that once
//! resolved resolves now.
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmodat, fstatat, mkdirat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::resolve::{in_root, open_plain_dir};

/// Ancestors deeper than this are opened per entry instead of kept open
/// (a hostile layer may nest thousands of directories; fds are limited).
const MAX_CACHED_DEPTH: usize = 64;

/// How [`Tree::enter`] walks to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Walk {
    /// Resolve symlinks inside the layer and create missing directories
    /// (0755, owned by the caller), as `mkdir -p` does in a chroot.
    MkdirAll,
    /// Only through existing directories named as written: no symlinks
    /// followed, nothing created (ELOOP, ENOENT).
    Literal,
}

/// What [`remove`] found and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removed {
    /// Nothing was there.
    Nothing,
    /// A file, fifo or device node: no path resolves through it.
    Leaf,
    /// A directory or symlink: paths that resolved through it may now
    /// resolve differently.
    DirOrSymlink,
}

/// The layer directory being written.
pub(super) struct Tree {
    root: OwnedFd,
    /// `chain[i]` is the directory that the first `i + 1` components of the
    /// last parent resolve to.
    chain: Vec<(OsString, OwnedFd)>,
    /// The last parent when it is deeper than [`MAX_CACHED_DEPTH`].
    deep: Option<OwnedFd>,
    /// How `chain` was walked: a change of walk starts afresh.
    walk: Walk,
}

impl Tree {
    /// Open the layer directory `dest` (a trusted path).
    pub fn open(dest: &Path) -> Result<Tree, Errno> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dest,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree {
            root,
            chain: Vec::new(),
            deep: None,
            walk: Walk::MkdirAll,
        })
    }

    /// The directory the last [`Tree::enter`] reached.
    pub fn cwd(&self) -> BorrowedFd<'_> {
        match (&self.deep, self.chain.last()) {
            (Some(fd), _) | (None, Some((_, fd))) => fd.as_fd(),
            (None, None) => self.root.as_fd(),
        }
    }

    /// Drop every cached directory fd (after a change that may make a
    /// path resolve differently).
    pub fn forget(&mut self) {
        self.chain.clear();
        self.deep = None;
    }

    /// Make the directory that `comps` resolve to (inside the layer) the
    /// one [`Tree::cwd`] returns.
    pub fn enter(&mut self, comps: &[&OsStr], walk: Walk) -> Result<(), Errno> {
        if walk != self.walk {
            self.forget();
            self.walk = walk;
        }
        let mut same = 0;
        while same < comps.len()
            && same < self.chain.len()
            && self.chain[same].0.as_os_str() == comps[same]
        {
            same += 1;
        }
        self.chain.truncate(same);
        self.deep = None;
        for i in same..comps.len() {
            let fd = self.step(self.cwd(), comps, i, walk)?;
            if i < MAX_CACHED_DEPTH {
                self.chain.push((comps[i].to_os_string(), fd));
            } else {
                self.deep = Some(fd);
            }
        }
        Ok(())
    }

    /// Open component `i` of `comps` below `cur` (the directory of the
    /// components before it).
    fn step(
        &self,
        cur: BorrowedFd<'_>,
        comps: &[&OsStr],
        i: usize,
        walk: Walk,
    ) -> Result<OwnedFd, Errno> {
        let name = comps[i];
        let opened = match open_plain_dir(cur, name) {
            Err(Errno::ENOENT) if walk == Walk::MkdirAll => {
                match mkdirat(cur, name, Mode::from_bits_truncate(0o755)) {
                    // mkdir applied the umask.
                    Ok(()) => fchmodat(
                        cur,
                        name,
                        Mode::from_bits_truncate(0o755),
                        FchmodatFlags::FollowSymlink,
                    )?,
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                open_plain_dir(cur, name)
            }
            r => r,
        };
        match opened {
            Err(Errno::ELOOP) if walk == Walk::MkdirAll => self.resolve(&comps[..=i]),
            r => r,
        }
    }

    /// The directory `comps` resolve to, with symlinks resolved as if the
    /// layer directory were `/`. Creates nothing and caches nothing.
    pub fn resolve(&self, comps: &[&OsStr]) -> Result<OwnedFd, Errno> {
        if comps.is_empty() {
            return in_root(self.root.as_fd(), Path::new("."));
        }
        let path: PathBuf = comps.iter().collect();
        in_root(self.root.as_fd(), &path)
    }
}

fn file_type(dir: BorrowedFd<'_>, name: &OsStr) -> Result<SFlag, Errno> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Whether `name` in `dir` is a directory (not a symlink to one).
pub(super) fn is_dir(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    file_type(dir, name) == Ok(SFlag::S_IFDIR)
}

/// Whether `name` in `dir` is an overlayfs whiteout (a 0:0 char device).
pub(super) fn is_whiteout(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR && st.st_rdev == 0
    })
}

/// Remove whatever `name` in `dir` is, recursively for a directory, never
/// following symlinks.
pub(super) fn remove(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Removed, Errno> {
    match file_type(dir, name) {
        Err(Errno::ENOENT) => Ok(Removed::Nothing),
        Err(e) => Err(e),
        Ok(SFlag::S_IFDIR) => {
            remove_dir_all(dir, name)?;
            Ok(Removed::DirOrSymlink)
        }
        Ok(kind) => {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
            Ok(if kind == SFlag::S_IFLNK {
                Removed::DirOrSymlink
            } else {
                Removed::Leaf
            })
        }
    }
}

fn remove_dir_all(parent: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let mut dir = Dir::openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in dir.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from(OsStr::from_bytes(n)));
        }
    }
    for n in &names {
        match unlinkat(dir.as_fd(), n.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => remove_dir_all(dir.as_fd(), n)?,
            Err(e) => return Err(e),
        }
    }
    drop(dir);
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

/// `lsetxattr` on `name` in `dir`, for entries that cannot be opened for
/// `fsetxattr` (symlinks, fifos, devices). Goes through the `/proc/self/fd`
/// link of `dir`, which names exactly that directory; `name` is not
/// followed.
pub(super) fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    key: &str,
    value: &[u8],
) -> std::io::Result<()> {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    path.push(name);
    xattr::set(path, key, value)
}
