//! Reading, copying and chowning trees a container may be changing at the
//! same time (a volume, a container's root) through file descriptors only.
//!
//! Every entry is reached with `openat(O_NOFOLLOW)` from the fd of its
//! parent, and its metadata is changed through its own fd (or with
//! `AT_SYMLINK_NOFOLLOW`): a process swapping a directory for a symlink to
//! `/` mid-walk makes the walk fail or copy the symlink itself, never reach
//! the host's files (CVE-2018-15664). Paths inside a root are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a container's symlinks resolve as they do
//! in the container.
use std::collections::HashMap;
use std::ffi::{CStr, OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

/// Trees nested deeper than this are refused (each level holds two fds).
pub const MAX_DEPTH: usize = 400;

fn err(what: impl std::fmt::Display, e: Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {}", e.desc()))
}

/// The kind of a stat'ed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink.
    Symlink,
    /// A fifo.
    Fifo,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A socket (never copied).
    Socket,
}

/// The kind of `st`.
pub fn kind_of(st: &FileStat) -> Kind {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        SFlag::S_IFIFO => Kind::Fifo,
        SFlag::S_IFCHR => Kind::Char,
        SFlag::S_IFBLK => Kind::Block,
        SFlag::S_IFSOCK => Kind::Socket,
        _ => Kind::File,
    }
}

/// Open a trusted directory path (the host's own) as an `O_PATH` fd.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(path.display(), e))
}

/// Resolve the directory `path` inside `root` as if `root` were `/`.
pub fn dir_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    crate::layer::resolve::in_root(root, path).map_err(|e| err(path.display(), e))
}

/// Split a path inside a root into its parent and last component
/// (`None` for the root itself). `..` and `.` are resolved lexically
/// first, as `docker cp` does.
pub fn split_in_root(path: &Path) -> (PathBuf, Option<OsString>) {
    let mut comps: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => comps.push(n),
            Component::ParentDir => {
                comps.pop();
            }
            _ => {}
        }
    }
    let last = comps.pop().map(OsStr::to_os_string);
    let parent: PathBuf = std::iter::once(OsStr::new("/")).chain(comps).collect();
    (parent, last)
}

/// A directory fd (`O_PATH` or not) opened again for reading its entries.
pub fn reopen_dir(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// An entry of a directory, not followed.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<FileStat, Errno> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Open the directory `name` of `dir` for reading, refusing a symlink.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Names in a directory, `.` and `..` left out, sorted (archives and
/// copies come out the same every time).
pub fn list(dir: BorrowedFd<'_>) -> Result<Vec<OsString>, Errno> {
    let mut d = Dir::from_fd(reopen_dir(dir)?)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n: &CStr = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(OsStr::from_bytes(n.to_bytes()).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// The extended attributes of an open file or directory that are content
/// (overlayfs' own and SELinux labels are not).
pub(crate) fn xattrs_of(fd: BorrowedFd<'_>) -> Vec<(OsString, Vec<u8>)> {
    use xattr::FileExt;
    let Ok(dup) = nix::unistd::dup(fd) else {
        return Vec::new();
    };
    let f = File::from(dup);
    let Ok(names) = f.list_xattr() else {
        return Vec::new();
    };
    // Sorted by name: a layer written twice is the same bytes.
    let mut attrs: Vec<(OsString, Vec<u8>)> = names
        .filter(|n| {
            let b = n.as_bytes();
            !b.starts_with(b"trusted.overlay.")
                && !b.starts_with(b"user.overlay.")
                && b != b"security.selinux"
        })
        .filter_map(|n| f.get_xattr(&n).ok().flatten().map(|v| (n, v)))
        .collect();
    attrs.sort();
    attrs
}

/// Copy content xattrs from one open file to another (best effort: the
/// destination's filesystem may not take them).
fn copy_xattrs(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    use xattr::FileExt;
    let attrs = xattrs_of(from);
    if attrs.is_empty() {
        return;
    }
    let Ok(dup) = nix::unistd::dup(to) else {
        return;
    };
    let f = File::from(dup);
    for (n, v) in attrs {
        let _ = f.set_xattr(&n, &v);
    }
}

/// A PAX extended header carrying `xattrs` (`SCHILY.xattr.*`, as Docker
/// and Go's archive/tar write them) for the entry that follows.
pub(crate) fn append_xattrs<W: Write>(
    b: &mut tar::Builder<W>,
    as_name: &Path,
    xattrs: &[(OsString, Vec<u8>)],
) -> io::Result<()> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = xattrs
        .iter()
        .map(|(k, _)| [b"SCHILY.xattr.", k.as_bytes()].concat())
        .collect();
    let records: Vec<(&[u8], &[u8])> = keys
        .iter()
        .zip(xattrs)
        .map(|(k, (_, v))| (&k[..], &v[..]))
        .collect();
    append_pax(b, as_name, &records)
}

/// Append a PAX extended header (`x`) holding `records` (key, value) for
/// the entry that follows it.
pub fn append_pax<W: Write>(
    b: &mut tar::Builder<W>,
    as_name: &Path,
    records: &[(&[u8], &[u8])],
) -> io::Result<()> {
    let mut data = Vec::new();
    for (k, v) in records {
        let rest = [b" ", *k, b"=", *v, b"\n"].concat();
        // The length counts its own digits.
        let mut len = rest.len() + 1;
        while len.to_string().len() + rest.len() != len {
            len = len.to_string().len() + rest.len();
        }
        data.extend_from_slice(len.to_string().as_bytes());
        data.extend_from_slice(&rest);
    }
    let mut h = tar::Header::new_ustar();
    let name = format!(
        "PaxHeaders.0/{}",
        as_name
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(80).collect::<String>())
            .unwrap_or_default()
    );
    h.set_path(&name)?;
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

/// Give an open file or directory `st`'s owner, mode and times.
fn apply_meta(fd: BorrowedFd<'_>, st: &FileStat, owner: Option<(u32, u32)>) -> Result<(), Errno> {
    let (uid, gid) = owner.unwrap_or((st.st_uid, st.st_gid));
    fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
    // After the chown: it clears set-id bits.
    fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    let (a, m) = times(st);
    futimens(fd, &a, &m)
}

/// Owners seen through a nested user namespace's id maps (rootless
/// `--userns=keep-id`, `--uidmap`/`--gidmap`, `auto`, `nomap`): in the
/// container's namespace its id `c` of a range `(c0, o0, n)` is the outer
/// `o0 + (c - c0)` (an id of rootless berth's namespace). A copied root
/// stores a file the image gives `c` as that outer id, for the container
/// to see `c` ([`IdShift::to_outer`]); a layer made from the copy says
/// what the container sees, the outer id mapped back
/// ([`IdShift::to_container`]). An id with no mapping either way is the
/// kernel's overflow id, as containers/storage's `ToHostOverflow` stores
/// it and as the kernel shows it: nobody. keep-id is one such map (the
/// user's id inside is the outer 0, the ids below it are the outer ones
/// above them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdShift {
    /// `(container, outer, size)` ranges of uids.
    pub uids: Vec<(u32, u32, u32)>,
    /// `(container, outer, size)` ranges of gids.
    pub gids: Vec<(u32, u32, u32)>,
    /// The `(uid, gid)` an unmapped id is on either side.
    pub overflow: (u32, u32),
}

impl IdShift {
    fn out(ranges: &[(u32, u32, u32)], id: u32) -> Option<u32> {
        ranges
            .iter()
            .find(|(c, _, n)| id >= *c && id - c < *n)
            .and_then(|(c, o, _)| o.checked_add(id - c))
    }

    fn back(ranges: &[(u32, u32, u32)], id: u32) -> Option<u32> {
        ranges
            .iter()
            .find(|(_, o, n)| id >= *o && id - o < *n)
            .and_then(|(c, o, _)| c.checked_add(id - o))
    }

    /// The outer owner a file of the container's (the image's) `uid`/`gid`
    /// is stored as.
    pub fn to_outer(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            Self::out(&self.uids, uid).unwrap_or(self.overflow.0),
            Self::out(&self.gids, gid).unwrap_or(self.overflow.1),
        )
    }

    /// The owner the container sees (`ls -ln` inside) of a file stored
    /// with the outer `uid`/`gid`.
    pub fn to_container(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            Self::back(&self.uids, uid).unwrap_or(self.overflow.0),
            Self::back(&self.gids, gid).unwrap_or(self.overflow.1),
        )
    }

    /// The same maps the other way: its [`IdShift::to_outer`] is this
    /// one's [`IdShift::to_container`] (a copy out of the container that
    /// keeps the owners it sees).
    pub fn inverse(&self) -> IdShift {
        let swap = |r: &[(u32, u32, u32)]| r.iter().map(|&(c, o, n)| (o, c, n)).collect();
        IdShift {
            uids: swap(&self.uids),
            gids: swap(&self.gids),
            overflow: self.overflow,
        }
    }
}

/// How [`copy_into`] treats what it copies.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Give every copied entry this owner instead of the source's.
    pub owner: Option<(u32, u32)>,
    /// Store every copied entry's owner as the outer id a nested user
    /// namespace's maps give it (when `owner` is not given).
    pub shift: Option<IdShift>,
    /// Replace entries that exist in the destination (a file over a file,
    /// a directory merged into a directory); otherwise EEXIST.
    pub overwrite: bool,
}

fn owner_for(st: &FileStat, opts: &CopyOptions) -> (u32, u32) {
    match (opts.owner, &opts.shift) {
        (Some(o), _) => o,
        (None, Some(m)) => m.to_outer(st.st_uid, st.st_gid),
        (None, None) => (st.st_uid, st.st_gid),
    }
}

/// Copy the union of overlayfs layer dirs (base first) into the directory
/// `dst` as overlayfs shows them — a whiteout removes, an opaque directory
/// replaces, other directories merge, anything else replaces — with
/// `opts`' owners: the root filesystem of the `vfs` storage driver, made
/// where overlayfs cannot be mounted (or asked for, or for `keep-id`).
pub fn flatten(layers: &[&Path], dst: BorrowedFd<'_>, opts: &CopyOptions) -> io::Result<()> {
    let dst = reopen_dir(dst).map_err(|e| err("opening the copy's directory", e))?;
    let dst = dst.as_fd();
    for l in layers {
        let src = open_dir(l)?;
        let src = reopen_dir(src.as_fd()).map_err(|e| err(l.display(), e))?;
        let mut links = HashMap::new();
        apply_layer(src.as_fd(), dst, opts, 0, &mut links)?;
        let st = fstat(src.as_fd()).map_err(|e| err(l.display(), e))?;
        apply_meta(dst, &st, Some(owner_for(&st, opts))).map_err(|e| err(l.display(), e))?;
    }
    Ok(())
}

fn apply_layer(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    opts: &CopyOptions,
    depth: usize,
    links: &mut Links,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "nested deeper than {MAX_DEPTH} directories"
        )));
    }
    for n in list(src).map_err(|e| err("listing a layer directory", e))? {
        let shown = || Path::new(&n).display().to_string();
        let st = stat_at(src, &n).map_err(|e| err(shown(), e))?;
        let old = stat_at(dst, &n).ok();
        if is_whiteout(&st) {
            if old.is_some() {
                remove_entry(dst, &n).map_err(|e| err(shown(), e))?;
            }
            continue;
        }
        if kind_of(&st) == Kind::Dir {
            let from = open_subdir(src, &n).map_err(|e| err(shown(), e))?;
            let merge =
                old.as_ref().is_some_and(|o| kind_of(o) == Kind::Dir) && !is_opaque(from.as_fd());
            if !merge {
                if old.is_some() {
                    remove_entry(dst, &n).map_err(|e| err(shown(), e))?;
                }
                mkdirat(dst, n.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| err(shown(), e))?;
            }
            let to = open_subdir(dst, &n).map_err(|e| err(shown(), e))?;
            apply_layer(from.as_fd(), to.as_fd(), opts, depth + 1, links)?;
            apply_meta(to.as_fd(), &st, Some(owner_for(&st, opts))).map_err(|e| err(shown(), e))?;
            copy_xattrs(from.as_fd(), to.as_fd());
            // overlayfs' own marks mean nothing in a copy.
            if let Ok(d) = nix::unistd::dup(to.as_fd()) {
                use xattr::FileExt;
                let f = File::from(d);
                for a in ["trusted.overlay.opaque", "user.overlay.opaque"] {
                    let _ = f.remove_xattr(a);
                }
            }
        } else {
            if old.is_some() {
                remove_entry(dst, &n).map_err(|e| err(shown(), e))?;
            }
            copy_rec(src, &n, dst, &n, opts, depth + 1, links)?;
        }
    }
    Ok(())
}

/// Copy the entry `name` of `src` (not followed) to `dst_name` in `dst`.
pub fn copy_entry(
    src: BorrowedFd<'_>,
    name: &OsStr,
    dst: BorrowedFd<'_>,
    dst_name: &OsStr,
    opts: &CopyOptions,
) -> io::Result<()> {
    copy_rec(src, name, dst, dst_name, opts, 0, &mut HashMap::new())
}

/// Copy the contents of directory `src` into directory `dst`.
pub fn copy_contents(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    opts: &CopyOptions,
) -> io::Result<()> {
    let src = reopen_dir(src).map_err(|e| err("opening the source directory", e))?;
    let mut links = HashMap::new();
    for n in list(src.as_fd()).map_err(|e| err("listing the source directory", e))? {
        copy_rec(src.as_fd(), &n, dst, &n, opts, 1, &mut links)?;
    }
    Ok(())
}

/// Make `dst_name` in `dst` a directory we can write (reusing an
/// existing directory when overwriting).
fn make_dir(dst: BorrowedFd<'_>, name: &OsStr, overwrite: bool) -> Result<OwnedFd, Errno> {
    match mkdirat(dst, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) if overwrite => {
            if let Ok(fd) = open_subdir(dst, name) {
                return Ok(fd);
            }
            remove_entry(dst, name)?;
            mkdirat(dst, name, Mode::from_bits_truncate(0o700))?;
        }
        Err(e) => return Err(e),
    }
    open_subdir(dst, name)
}

/// Remove the entry `name` of `dir` (a directory recursively), never
/// following symlinks.
pub fn remove_entry(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    remove_rec(dir, name, 0)
}

fn remove_rec(dir: BorrowedFd<'_>, name: &OsStr, depth: usize) -> Result<(), Errno> {
    use nix::unistd::{unlinkat, UnlinkatFlags};
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {}
        r => return r,
    }
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let sub = open_subdir(dir, name)?;
    for n in list(sub.as_fd())? {
        remove_rec(sub.as_fd(), &n, depth + 1)?;
    }
    drop(sub);
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

type Links = HashMap<(u64, u64), (OwnedFd, OsString)>;

fn copy_rec(
    src: BorrowedFd<'_>,
    name: &OsStr,
    dst: BorrowedFd<'_>,
    dst_name: &OsStr,
    opts: &CopyOptions,
    depth: usize,
    links: &mut Links,
) -> io::Result<()> {
    let shown = || Path::new(name).display().to_string();
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{}: nested deeper than {MAX_DEPTH} directories",
            shown()
        )));
    }
    let st = stat_at(src, name).map_err(|e| err(shown(), e))?;
    let kind = kind_of(&st);
    let ctx = |e: Errno| err(shown(), e);
    if opts.overwrite && kind != Kind::Dir {
        match stat_at(dst, dst_name) {
            Ok(old) if kind_of(&old) == Kind::Dir => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "cannot overwrite directory {} with a non-directory",
                        shown()
                    ),
                ))
            }
            Ok(_) => remove_entry(dst, dst_name).map_err(ctx)?,
            Err(_) => {}
        }
    }
    match kind {
        Kind::Dir => {
            let from = open_subdir(src, name).map_err(ctx)?;
            let to = make_dir(dst, dst_name, opts.overwrite).map_err(ctx)?;
            for n in list(from.as_fd()).map_err(ctx)? {
                copy_rec(from.as_fd(), &n, to.as_fd(), &n, opts, depth + 1, links)?;
            }
            apply_meta(to.as_fd(), &st, Some(owner_for(&st, opts))).map_err(ctx)?;
            copy_xattrs(from.as_fd(), to.as_fd());
        }
        Kind::File => {
            if st.st_nlink > 1 {
                if let Some((dir, first)) = links.get(&(st.st_dev, st.st_ino)) {
                    // Another name of a file already copied.
                    if nix::unistd::linkat(
                        dir.as_fd(),
                        first.as_os_str(),
                        dst,
                        dst_name,
                        AtFlags::empty(),
                    )
                    .is_ok()
                    {
                        return Ok(());
                    }
                }
            }
            let from = openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
                Mode::empty(),
            )
            .map_err(ctx)?;
            // Opened, then checked: a fifo swapped in would have blocked the
            // open without O_NONBLOCK, so only regular files get here.
            let now = fstat(from.as_fd()).map_err(ctx)?;
            if kind_of(&now) != Kind::File {
                return Err(io::Error::other(format!(
                    "{}: changed while copied",
                    shown()
                )));
            }
            let to = openat(
                dst,
                dst_name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(ctx)?;
            let mut from = File::from(from);
            let mut to = File::from(to);
            io::copy(&mut from, &mut to)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shown())))?;
            apply_meta(to.as_fd(), &now, Some(owner_for(&now, opts))).map_err(ctx)?;
            // After the chown, which drops security.capability.
            copy_xattrs(from.as_fd(), to.as_fd());
            if st.st_nlink > 1 {
                if let Ok(d) = nix::unistd::dup(dst) {
                    links.insert((st.st_dev, st.st_ino), (d, dst_name.to_os_string()));
                }
            }
        }
        Kind::Symlink => {
            let target = readlinkat(src, name).map_err(ctx)?;
            symlinkat(target.as_os_str(), dst, dst_name).map_err(ctx)?;
            let (uid, gid) = owner_for(&st, opts);
            fchownat(
                dst,
                dst_name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(ctx)?;
            let (a, m) = times(&st);
            utimensat(dst, dst_name, &a, &m, UtimensatFlags::NoFollowSymlink).map_err(ctx)?;
        }
        Kind::Fifo | Kind::Char | Kind::Block => {
            let sflag = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            mknodat(
                dst,
                dst_name,
                sflag,
                Mode::from_bits_truncate(0o600),
                st.st_rdev,
            )
            .map_err(ctx)?;
            let (uid, gid) = owner_for(&st, opts);
            fchownat(
                dst,
                dst_name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(ctx)?;
            // A node cannot be opened to fchmod it safely (a device
            // open has side effects); fchmodat does not follow the last
            // component, which we just made and which is not a symlink
            // unless swapped, and then the kernel refuses (no follow).
            nix::sys::stat::fchmodat(
                dst,
                dst_name,
                Mode::from_bits_truncate(st.st_mode & 0o7777),
                nix::sys::stat::FchmodatFlags::NoFollowSymlink,
            )
            .or_else(|e| {
                if e == Errno::EOPNOTSUPP {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(ctx)?;
            // Its times too, as for the other kinds: a copied root is
            // compared with its image by them.
            let (a, m) = times(&st);
            utimensat(dst, dst_name, &a, &m, UtimensatFlags::NoFollowSymlink).map_err(ctx)?;
        }
        Kind::Socket => {}
    }
    Ok(())
}

/// Give every entry of the tree at `dir` (the directory included) the
/// owner `uid:gid`, never following symlinks (`:U` volumes).
pub fn chown_tree(dir: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let fd = reopen_dir(dir).map_err(|e| err("opening the volume", e))?;
    chown_rec(fd.as_fd(), uid, gid, 0)
}

fn chown_rec(dir: BorrowedFd<'_>, uid: u32, gid: u32, depth: usize) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "nested deeper than {MAX_DEPTH} directories"
        )));
    }
    let st = fstat(dir).map_err(|e| err("stat", e))?;
    if st.st_uid != uid || st.st_gid != gid {
        let mode = st.st_mode & 0o7777;
        fchown(dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .map_err(|e| err("chown", e))?;
        let _ = fchmod(dir, Mode::from_bits_truncate(mode));
    }
    for n in list(dir).map_err(|e| err("listing a directory", e))? {
        let Ok(st) = stat_at(dir, &n) else { continue };
        if kind_of(&st) == Kind::Dir {
            if let Ok(sub) = open_subdir(dir, &n) {
                chown_rec(sub.as_fd(), uid, gid, depth + 1)?;
            }
        } else if st.st_uid != uid || st.st_gid != gid {
            fchownat(
                dir,
                n.as_os_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err(Path::new(&n).display(), e))?;
        }
    }
    Ok(())
}

/// Write the entry `name` of `dir` (not followed; a directory with its
/// whole tree) to `out` as a tar stream whose entries are named below
/// `as_name` (`.` for the contents of a directory only).
/// Owners stored shifted through `shift` (a rootless container's copied
/// root) are written as the container sees them.
pub fn tar_entry(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    as_name: &Path,
    shift: Option<&IdShift>,
    out: impl Write,
) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let mut links = HashMap::new();
    tar_rec_as(
        &mut b,
        dir,
        name,
        as_name,
        0,
        &mut links,
        TarAs::Tree(shift),
    )?;
    b.into_inner()?.flush()
}

/// Write the contents of the directory `dir` to `out` as a tar stream
/// (entries named `./x`, Docker's `volume`/`export` convention is
/// relative names). Owners stored shifted through `shift` (a rootless
/// container's copied root) are written as the container sees them, as
/// podman's `export` and `cp` map them back.
pub fn tar_contents(
    dir: BorrowedFd<'_>,
    shift: Option<&IdShift>,
    out: impl Write,
) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let fd = reopen_dir(dir).map_err(|e| err("opening the directory", e))?;
    let mut links = HashMap::new();
    for n in list(fd.as_fd()).map_err(|e| err("listing the directory", e))? {
        let how = TarAs::Tree(shift);
        tar_rec_as(&mut b, fd.as_fd(), &n, Path::new(&n), 1, &mut links, how)?;
    }
    b.into_inner()?.flush()
}

fn header_for(st: &FileStat, kind: Kind) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h.set_entry_type(match kind {
        Kind::Dir => tar::EntryType::Directory,
        Kind::File => tar::EntryType::Regular,
        Kind::Symlink => tar::EntryType::Symlink,
        Kind::Fifo => tar::EntryType::Fifo,
        Kind::Char => tar::EntryType::Char,
        Kind::Block => tar::EntryType::Block,
        Kind::Socket => tar::EntryType::Regular,
    });
    if matches!(kind, Kind::Char | Kind::Block) {
        let _ = h.set_device_major(libc::major(st.st_rdev));
        let _ = h.set_device_minor(libc::minor(st.st_rdev));
    }
    h
}

/// Is this an overlayfs whiteout (a 0:0 character device)?
pub fn is_whiteout(st: &FileStat) -> bool {
    kind_of(st) == Kind::Char && st.st_rdev == 0
}

/// Is the directory (an fd opened for reading) marked opaque by overlayfs?
pub fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    use xattr::FileExt;
    let Ok(fd) = nix::unistd::dup(dir) else {
        return false;
    };
    let f = File::from(fd);
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(f.get_xattr(name), Ok(Some(v)) if v == b"y"))
}

/// The xattr that marks a directory opaque for overlayfs here: in a user
/// namespace (rootless berth) `trusted.*` cannot be set and overlayfs is
/// mounted with `userxattr`, which reads `user.overlay.opaque`.
pub fn opaque_xattr() -> &'static str {
    if sys::process::in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Write a container's overlayfs upper dir as an OCI layer: whiteouts
/// become `.wh.<name>` entries, opaque directories get `.wh..wh..opq`.
/// Entries named in `skip` (relative paths, e.g. `etc/hosts`) are left
/// out.
pub fn tar_layer(upper: BorrowedFd<'_>, skip: &[PathBuf], out: impl Write) -> io::Result<()> {
    tar_layer_with(
        upper,
        &LayerOpts {
            skip: skip.to_vec(),
            ..Default::default()
        },
        out,
    )
}

/// How a layer tar is written.
#[derive(Debug, Clone, Default)]
pub struct LayerOpts {
    /// Paths (relative) left out.
    pub skip: Vec<PathBuf>,
    /// File times later than this (seconds) are written as this: the same
    /// changes give the same layer bytes (a build's RUN steps).
    pub mtime_clamp: Option<u64>,
    /// The tree's owners are stored shifted through a nested user
    /// namespace's maps (a rootless keep-id, `--uidmap` or `auto`
    /// container's copied root): written as the container sees them.
    pub shift: Option<IdShift>,
}

/// How a tree is written as tar.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TarAs<'a> {
    /// As it is (`export`, `cp`, volumes), owners mapped back through a
    /// shift when given.
    Tree(Option<&'a IdShift>),
    /// As a layer: overlay's whiteouts and opaque dirs as `.wh.` entries,
    /// with the options' skips, clamp and owners.
    Layer(&'a LayerOpts),
}

impl<'a> TarAs<'a> {
    fn layer(self) -> Option<&'a LayerOpts> {
        match self {
            TarAs::Layer(l) => Some(l),
            TarAs::Tree(_) => None,
        }
    }

    fn shift(self) -> Option<&'a IdShift> {
        match self {
            TarAs::Layer(l) => l.shift.as_ref(),
            TarAs::Tree(s) => s,
        }
    }
}

/// The tar header of an entry with a layer's clamp and the owners as the
/// container sees them.
pub(crate) fn layer_header(st: &FileStat, kind: Kind, how: TarAs<'_>) -> tar::Header {
    let mut h = header_for(st, kind);
    if let Some(c) = how.layer().and_then(|l| l.mtime_clamp) {
        if h.mtime().unwrap_or(0) > c {
            h.set_mtime(c);
        }
    }
    if let Some(m) = how.shift() {
        let (uid, gid) = m.to_container(st.st_uid, st.st_gid);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
    }
    h
}

/// A directory's own entry (its xattrs and header, not its contents):
/// `sub` is the directory opened for reading, `st` its stat.
pub(crate) fn tar_dir_header<W: Write>(
    b: &mut tar::Builder<W>,
    sub: BorrowedFd<'_>,
    st: &FileStat,
    as_name: &Path,
    how: TarAs<'_>,
) -> io::Result<()> {
    append_xattrs(b, as_name, &xattrs_of(sub))?;
    let mut h = layer_header(st, Kind::Dir, how);
    let mut dname = as_name.as_os_str().to_os_string();
    if !dname.as_bytes().ends_with(b"/") {
        dname.push("/");
    }
    b.append_data(&mut h, Path::new(&dname), io::empty())
}

/// [`tar_layer`] with options.
pub fn tar_layer_with(upper: BorrowedFd<'_>, opts: &LayerOpts, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let fd = reopen_dir(upper).map_err(|e| err("opening the upper directory", e))?;
    let mut links = HashMap::new();
    for n in list(fd.as_fd()).map_err(|e| err("listing the upper directory", e))? {
        tar_rec_as(
            &mut b,
            fd.as_fd(),
            &n,
            Path::new(&n),
            1,
            &mut links,
            TarAs::Layer(opts),
        )?;
    }
    b.into_inner()?.flush()
}

pub(crate) fn tar_rec_as<W: Write>(
    b: &mut tar::Builder<W>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    as_name: &Path,
    depth: usize,
    links: &mut HashMap<(u64, u64), PathBuf>,
    how: TarAs<'_>,
) -> io::Result<()> {
    let shown = || as_name.display().to_string();
    let header_for = |st: &FileStat, kind: Kind| layer_header(st, kind, how);
    let layer = how.layer();
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{}: nested deeper than {MAX_DEPTH} directories",
            shown()
        )));
    }
    let st = stat_at(dir, name).map_err(|e| err(shown(), e))?;
    let kind = kind_of(&st);
    let ctx = |e: Errno| err(shown(), e);
    if layer.is_some_and(|l| l.skip.iter().any(|p| p == as_name)) {
        return Ok(());
    }
    if layer.is_some() && is_whiteout(&st) {
        let mut wh = OsString::from(".wh.");
        wh.push(name);
        let path = as_name.with_file_name(wh);
        let mut h = header_for(&st, Kind::File);
        h.set_mode(0o600);
        return b.append_data(&mut h, path, io::empty());
    }
    match kind {
        Kind::Socket => Ok(()),
        Kind::Dir => {
            let sub = open_subdir(dir, name).map_err(ctx)?;
            tar_dir_header(b, sub.as_fd(), &st, as_name, how)?;
            if layer.is_some() && is_opaque(sub.as_fd()) {
                let mut h = header_for(&st, Kind::File);
                h.set_mode(0o600);
                b.append_data(&mut h, as_name.join(".wh..wh..opq"), io::empty())?;
            }
            for n in list(sub.as_fd()).map_err(ctx)? {
                tar_rec_as(b, sub.as_fd(), &n, &as_name.join(&n), depth + 1, links, how)?;
            }
            Ok(())
        }
        Kind::File => {
            if st.st_nlink > 1 {
                if let Some(first) = links.get(&(st.st_dev, st.st_ino)) {
                    let mut h = header_for(&st, kind);
                    h.set_entry_type(tar::EntryType::Link);
                    return b.append_link(&mut h, as_name, first);
                }
            }
            let fd = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
                Mode::empty(),
            )
            .map_err(ctx)?;
            let now = fstat(fd.as_fd()).map_err(ctx)?;
            if kind_of(&now) != Kind::File {
                return Err(io::Error::other(format!("{}: changed while read", shown())));
            }
            append_xattrs(b, as_name, &xattrs_of(fd.as_fd()))?;
            let mut h = header_for(&now, Kind::File);
            h.set_size(now.st_size as u64);
            // The size is in the header already: a file that grows or
            // shrinks meanwhile is cut or padded to it.
            let file = File::from(fd);
            let reader = io::Read::chain(io::Read::take(file, now.st_size as u64), io::repeat(0));
            b.append_data(&mut h, as_name, io::Read::take(reader, now.st_size as u64))?;
            if now.st_nlink > 1 {
                links.insert((now.st_dev, now.st_ino), as_name.to_path_buf());
            }
            Ok(())
        }
        Kind::Symlink => {
            let target = readlinkat(dir, name).map_err(ctx)?;
            let mut h = header_for(&st, kind);
            b.append_link(&mut h, as_name, Path::new(&target))
        }
        Kind::Fifo | Kind::Char | Kind::Block => {
            let mut h = header_for(&st, kind);
            b.append_data(&mut h, as_name, io::empty())
        }
    }
}

/// Is the directory empty?
pub fn is_empty_dir(dir: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(list(dir)
        .map_err(|e| err("listing a directory", e))?
        .is_empty())
}

/// Bytes used (allocated blocks) by the tree at `dir`, not following
/// symlinks or crossing into other filesystems.
pub fn disk_usage(dir: BorrowedFd<'_>) -> u64 {
    fn rec(dir: BorrowedFd<'_>, dev: u64, depth: usize) -> u64 {
        if depth > MAX_DEPTH {
            return 0;
        }
        let Ok(names) = list(dir) else { return 0 };
        let mut total = 0;
        for n in names {
            let Ok(st) = stat_at(dir, &n) else { continue };
            total += st.st_blocks as u64 * 512;
            if kind_of(&st) == Kind::Dir && st.st_dev == dev {
                if let Ok(sub) = open_subdir(dir, &n) {
                    total += rec(sub.as_fd(), dev, depth + 1);
                }
            }
        }
        total
    }
    match fstat(dir) {
        Ok(st) => rec(dir, st.st_dev, 0),
        Err(_) => 0,
    }
}

/// What `diff` reports for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `A`: not in the image.
    Added,
    /// `C`: in the image, changed (or a directory with changes below).
    Changed,
    /// `D`: deleted.
    Deleted,
}

impl ChangeKind {
    /// Docker's letter.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// Does `comps` name an entry in the layer `root`? Walked without
/// following symlinks (a layer's symlinks point into the container, not
/// the host).
fn in_layer(root: BorrowedFd<'_>, comps: &[&OsStr]) -> bool {
    let Some((last, parents)) = comps.split_last() else {
        return true;
    };
    let mut cur: Option<OwnedFd> = None;
    for c in parents {
        let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
        match crate::layer::resolve::open_plain_dir(at, c) {
            Ok(fd) => cur = Some(fd),
            Err(_) => return false,
        }
    }
    let at = cur.as_ref().map(|f| f.as_fd()).unwrap_or(root);
    stat_at(at, last).is_ok_and(|st| !is_whiteout(&st))
}

/// The changes a container's upper dir makes to its image's layers
/// (`lower`, any order), sorted by path, as `docker diff` lists them.
pub fn upper_changes(
    upper: BorrowedFd<'_>,
    lower: &[OwnedFd],
) -> io::Result<Vec<(PathBuf, ChangeKind)>> {
    let mut out = Vec::new();
    let fd = reopen_dir(upper).map_err(|e| err("opening the upper directory", e))?;
    changes_rec(fd.as_fd(), &mut Vec::new(), lower, false, &mut out, 0)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn changes_rec(
    dir: BorrowedFd<'_>,
    path: &mut Vec<OsString>,
    lower: &[OwnedFd],
    added_parent: bool,
    out: &mut Vec<(PathBuf, ChangeKind)>,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "nested deeper than {MAX_DEPTH} directories"
        )));
    }
    for n in list(dir).map_err(|e| err("listing the upper directory", e))? {
        let Ok(st) = stat_at(dir, &n) else { continue };
        path.push(n.clone());
        let shown: PathBuf = std::iter::once(OsStr::new("/"))
            .chain(path.iter().map(|p| p.as_os_str()))
            .collect();
        if is_whiteout(&st) {
            out.push((shown, ChangeKind::Deleted));
        } else {
            let comps: Vec<&OsStr> = path.iter().map(|p| p.as_os_str()).collect();
            let existed = !added_parent && lower.iter().any(|l| in_layer(l.as_fd(), &comps));
            out.push((
                shown,
                if existed {
                    ChangeKind::Changed
                } else {
                    ChangeKind::Added
                },
            ));
            if kind_of(&st) == Kind::Dir {
                if let Ok(sub) = open_subdir(dir, &n) {
                    let opaque = is_opaque(sub.as_fd());
                    changes_rec(sub.as_fd(), path, lower, !existed || opaque, out, depth + 1)?;
                }
            }
        }
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three layers: a merged dir, a replaced file, a dir made opaque
    /// (`user.overlay.opaque`, settable without root), a hard link.
    #[test]
    fn flatten_merges_replaces_and_honours_opaque_dirs() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, out) = (t.path().join("a"), t.path().join("b"), t.path().join("out"));
        for d in [&a, &b, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(a.join("etc")).unwrap();
        std::fs::write(a.join("etc/keep"), "a").unwrap();
        std::fs::write(a.join("etc/over"), "a").unwrap();
        std::fs::create_dir_all(a.join("opaque/old")).unwrap();
        std::fs::write(a.join("opaque/gone"), "a").unwrap();
        std::fs::write(a.join("f"), "linked").unwrap();
        std::fs::hard_link(a.join("f"), a.join("g")).unwrap();
        std::fs::create_dir_all(b.join("etc")).unwrap();
        std::fs::write(b.join("etc/over"), "b").unwrap();
        std::fs::create_dir(b.join("opaque")).unwrap();
        std::fs::write(b.join("opaque/new"), "b").unwrap();
        xattr::set(b.join("opaque"), "user.overlay.opaque", b"y").unwrap();
        let fd = open_dir(&out).unwrap();
        flatten(&[&a, &b], fd.as_fd(), &CopyOptions::default()).unwrap();
        let r = |p: &str| std::fs::read_to_string(out.join(p)).unwrap();
        assert_eq!(r("etc/keep"), "a");
        assert_eq!(r("etc/over"), "b");
        assert_eq!(r("opaque/new"), "b");
        assert!(!out.join("opaque/gone").exists() && !out.join("opaque/old").exists());
        // The mark means nothing in a copy and is not kept.
        assert_eq!(
            xattr::get(out.join("opaque"), "user.overlay.opaque").unwrap(),
            None
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(out.join("f")).unwrap().ino(),
            std::fs::metadata(out.join("g")).unwrap().ino()
        );
    }

    #[test]
    fn keep_ids_map_shifts_ids_below_the_users_up_by_one_and_back() {
        // podman's keep-id for uid 1000 in a namespace of 65537 ids.
        let r = vec![(0, 1, 1000), (1000, 0, 1), (1001, 1001, 64536)];
        let m = IdShift {
            uids: r.clone(),
            gids: r,
            overflow: (65534, 65534),
        };
        assert_eq!(m.to_outer(0, 0), (1, 1));
        assert_eq!(m.to_outer(999, 999), (1000, 1000));
        assert_eq!(m.to_outer(1000, 1000), (0, 0));
        assert_eq!(m.to_outer(1001, 1001), (1001, 1001));
        for id in [0, 1, 999, 1000, 1001, 65536] {
            assert_eq!(m.to_container(m.to_outer(id, id).0, 0).0, id);
        }
        // Past the namespace: the overflow id.
        assert_eq!(m.to_outer(70000, 0).0, 65534);
    }

    #[test]
    fn an_id_shift_maps_through_its_ranges_and_overflows_the_rest() {
        let m = IdShift {
            uids: vec![(0, 1, 1000), (1000, 5000, 10)],
            gids: vec![(0, 100, 1)],
            overflow: (65534, 65534),
        };
        assert_eq!(m.to_outer(0, 0), (1, 100));
        assert_eq!(m.to_outer(999, 1), (1000, 65534));
        assert_eq!(m.to_outer(1005, 0), (5005, 100));
        assert_eq!(m.to_outer(1010, 0), (65534, 100));
        assert_eq!(m.to_outer(u32::MAX, u32::MAX), (65534, 65534));
        // Back: what the container sees; an outer id it does not map is
        // nobody to it.
        assert_eq!(m.to_container(1, 100), (0, 0));
        assert_eq!(m.to_container(5009, 100), (1009, 0));
        assert_eq!(m.to_container(0, 0), (65534, 65534));
        assert_eq!(m.to_container(5010, 101), (65534, 65534));
        let inv = m.inverse();
        for (u, g) in [(1, 100), (5009, 100), (0, 0), (5010, 101)] {
            assert_eq!(inv.to_outer(u, g), m.to_container(u, g));
        }
    }
}
