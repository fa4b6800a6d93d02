//! Unpacking one layer tarball into a directory, in overlayfs format, so
//! that a hostile layer can never write (or read) outside that directory.
//!
//! Own entry loop over the `tar` crate's entries (never `Archive::unpack`):
//! every path is checked (no `..`, leading `/` stripped) and every parent
//! directory is opened with `openat2(RESOLVE_IN_ROOT)`, so symlinks created
//! by the layer resolve as if the layer dir were `/`; the last component is
//! created relative to that parent fd without following symlinks.
//! Whiteouts become overlayfs whiteouts (0:0 char devices), opaque markers
//! the `trusted.overlay.opaque` xattr.
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use model::digest::Hasher;
use model::Digest;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmodat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream (the OCI diff-id).
    pub diff_id: Digest,
    /// Sum of the regular file sizes written.
    pub size: u64,
    /// Entries skipped (device nodes without `allow_devices`).
    pub skipped: u64,
}

/// Options for [`unpack_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Create block and character device nodes (default: skip them).
    pub allow_devices: bool,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the stream or writing the tree failed.
    #[error("layer i/o error at {path}: {source}")]
    Io {
        /// The path inside the layer (or the destination) involved.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry tries to leave the layer directory.
    #[error("layer entry {path:?} is unsafe: {reason}")]
    Unsafe {
        /// The entry's path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Layer compression, from the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Detect the compression of a stream from its first bytes.
pub fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
        }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The digest of everything read.
    pub fn finish(self) -> Digest {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A decompressing reader for any supported compression (detected).
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(128 * 1024, reader);
    let kind = detect(buffered.fill_buf()?);
    Ok(match kind {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
    })
}

/// Unpack a layer (gzip, zstd or plain tar) into `dest`, an existing empty
/// directory.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<Unpacked, LayerError> {
    unpack_with(reader, dest, &UnpackOptions::default())
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn nix_err(path: &Path) -> impl FnOnce(Errno) -> LayerError + '_ {
    move |e| LayerError::Io {
        path: path.display().to_string(),
        source: io::Error::from(e),
    }
}

/// A path inside the layer, checked: relative, no `..`, no empty names.
fn clean(path: &Path) -> Result<PathBuf, LayerError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(LayerError::Unsafe {
                    path: path.display().to_string(),
                    reason: "it contains \"..\"",
                })
            }
            Component::Prefix(_) => {
                return Err(LayerError::Unsafe {
                    path: path.display().to_string(),
                    reason: "unsupported path prefix",
                })
            }
        }
    }
    Ok(out)
}

struct Tree {
    root: OwnedFd,
    dest: PathBuf,
}

impl Tree {
    fn in_root(&self, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let p: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        openat2(self.root.as_fd(), p, how)
    }

    /// Open (creating missing levels, 0755) the directory `rel`, resolving
    /// symlinks inside the layer root.
    fn dir(&self, rel: &Path) -> Result<OwnedFd, LayerError> {
        match self.in_root(rel, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(nix_err(rel)(e)),
        }
        let mut cur = self
            .in_root(Path::new(""), OFlag::O_PATH | OFlag::O_DIRECTORY)
            .map_err(nix_err(rel))?;
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            match self.in_root(&prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                Ok(fd) => cur = fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(cur.as_fd(), c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(nix_err(&prefix)(e)),
                    }
                    cur = self
                        .in_root(&prefix, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(nix_err(&prefix))?;
                }
                Err(e) => return Err(nix_err(&prefix)(e)),
            }
        }
        Ok(cur)
    }

    /// Remove whatever `name` is in `parent` (recursively for directories).
    fn remove(&self, parent: &OwnedFd, name: &OsStr) -> Result<(), LayerError> {
        match unlinkat(parent.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) | Err(Errno::EPERM) => {
                let dir = openat(
                    parent.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(nix_err(Path::new(name)))?;
                let path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                let entries: Vec<_> = std::fs::read_dir(&path)
                    .map_err(io_err(Path::new(name)))?
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                for e in entries {
                    self.remove(&dir, &e)?;
                }
                drop(dir);
                match unlinkat(parent.as_fd(), name, UnlinkatFlags::RemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => Ok(()),
                    Err(e) => Err(nix_err(Path::new(name))(e)),
                }
            }
            Err(e) => Err(nix_err(Path::new(name))(e)),
        }
    }

    fn is_dir(&self, parent: &OwnedFd, name: &OsStr) -> bool {
        nix::sys::stat::fstatat(
            parent.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .unwrap_or(false)
    }
}

fn split(rel: &Path) -> Result<(&Path, &OsStr), LayerError> {
    match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(LayerError::Unsafe {
            path: rel.display().to_string(),
            reason: "it has no file name",
        }),
    }
}

/// [`unpack`] with options.
pub fn unpack_with(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(nix_err(dest))?;
    let tree = Tree {
        root,
        dest: dest.to_path_buf(),
    };
    let stream = decompress(reader).map_err(io_err(dest))?;
    let mut hashing = HashingReader::new(stream);
    let mut size = 0u64;
    let mut skipped = 0u64;
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(io_err(dest))?;
        for entry in entries {
            let mut entry = entry.map_err(io_err(dest))?;
            let raw_path = entry.path().map_err(io_err(dest))?.into_owned();
            let rel = clean(&raw_path)?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            let (parent_rel, name) = split(&rel)?;
            let name_bytes = name.as_bytes();
            // Whiteouts.
            if name_bytes == b".wh..wh..opq" {
                let parent = tree.dir(parent_rel)?;
                let dir = openat(
                    parent.as_fd(),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(nix_err(&rel))?;
                xattr::FileExt::set_xattr(
                    &std::fs::File::from(dir),
                    "trusted.overlay.opaque",
                    b"y",
                )
                .map_err(io_err(&rel))?;
                continue;
            }
            if let Some(hidden) = name_bytes.strip_prefix(b".wh.") {
                if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/')
                {
                    return Err(LayerError::Unsafe {
                        path: raw_path.display().to_string(),
                        reason: "malformed whiteout name",
                    });
                }
                let parent = tree.dir(parent_rel)?;
                let hidden = OsStr::from_bytes(hidden);
                tree.remove(&parent, hidden)?;
                mknodat(parent.as_fd(), hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                    .map_err(nix_err(&rel))?;
                continue;
            }
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let uid = header.uid().unwrap_or(0) as u32;
            let gid = header.gid().unwrap_or(0) as u32;
            let mtime = header.mtime().unwrap_or(0) as i64;
            let parent = tree.dir(parent_rel)?;
            match kind {
                tar::EntryType::Directory => {
                    if !tree.is_dir(&parent, name) {
                        tree.remove(&parent, name)?;
                        match mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                            Ok(()) | Err(Errno::EEXIST) => {}
                            Err(e) => return Err(nix_err(&rel)(e)),
                        }
                    }
                    dir_times.push((rel.clone(), mtime));
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    tree.remove(&parent, name)?;
                    let fd = openat(
                        parent.as_fd(),
                        name,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(nix_err(&rel))?;
                    let mut f = std::fs::File::from(fd);
                    size += io::copy(&mut entry, &mut f).map_err(io_err(&rel))?;
                    f.flush().map_err(io_err(&rel))?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(io_err(&rel))?
                        .ok_or_else(|| LayerError::Unsafe {
                            path: rel.display().to_string(),
                            reason: "symlink without a target",
                        })?
                        .into_owned();
                    tree.remove(&parent, name)?;
                    symlinkat(target.as_path(), parent.as_fd(), name).map_err(nix_err(&rel))?;
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name()
                        .map_err(io_err(&rel))?
                        .ok_or_else(|| LayerError::Unsafe {
                            path: rel.display().to_string(),
                            reason: "hardlink without a target",
                        })?
                        .into_owned();
                    let target = clean(&target)?;
                    let (tparent_rel, tname) = split(&target)?;
                    // The target's parent resolves inside the root; the link is
                    // made to the entry itself (a symlink stays a symlink).
                    let tparent = tree
                        .in_root(tparent_rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
                        .map_err(|_| LayerError::Unsafe {
                            path: rel.display().to_string(),
                            reason: "hardlink target is not inside the layer",
                        })?;
                    tree.remove(&parent, name)?;
                    linkat(
                        tparent.as_fd(),
                        tname,
                        parent.as_fd(),
                        name,
                        nix::fcntl::AtFlags::empty(),
                    )
                    .map_err(|_| LayerError::Unsafe {
                        path: rel.display().to_string(),
                        reason: "hardlink target is not an earlier entry of the layer",
                    })?;
                    continue;
                }
                tar::EntryType::Fifo => {
                    tree.remove(&parent, name)?;
                    mknodat(
                        parent.as_fd(),
                        name,
                        SFlag::S_IFIFO,
                        Mode::from_bits_truncate(mode as _),
                        0,
                    )
                    .map_err(nix_err(&rel))?;
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    if !opts.allow_devices {
                        skipped += 1;
                        continue;
                    }
                    let major = header.device_major().ok().flatten().unwrap_or(0) as u64;
                    let minor = header.device_minor().ok().flatten().unwrap_or(0) as u64;
                    let k = if kind == tar::EntryType::Char {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    tree.remove(&parent, name)?;
                    mknodat(
                        parent.as_fd(),
                        name,
                        k,
                        Mode::from_bits_truncate(mode as _),
                        nix::sys::stat::makedev(major, minor),
                    )
                    .map_err(nix_err(&rel))?;
                }
                _ => {
                    skipped += 1;
                    continue;
                }
            }
            // Ownership, then mode (chown clears setuid bits), xattrs, mtime.
            fchownat(
                parent.as_fd(),
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(nix_err(&rel))?;
            if kind != tar::EntryType::Symlink {
                fchmodat(
                    parent.as_fd(),
                    name,
                    Mode::from_bits_truncate(mode as _),
                    FchmodatFlags::FollowSymlink,
                )
                .map_err(nix_err(&rel))?;
            }
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    let Ok(key) = ext.key() else { continue };
                    let Some(attr) = key.strip_prefix("SCHILY.xattr.") else {
                        continue;
                    };
                    if attr.starts_with("trusted.overlay.") || attr.starts_with("security.selinux")
                    {
                        continue;
                    }
                    let p =
                        PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(name);
                    let _ = xattr::set(&p, attr, ext.value_bytes());
                }
            }
            if kind != tar::EntryType::Directory {
                let t = TimeSpec::new(mtime, 0);
                let _ = utimensat(
                    parent.as_fd(),
                    name,
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                );
            }
        }
        // Directory mtimes last: creating their content changed them.
        for (rel, mtime) in dir_times.iter().rev() {
            if let Ok((p, n)) = split(rel) {
                if let Ok(parent) = tree.dir(p) {
                    let t = TimeSpec::new(*mtime, 0);
                    let _ = utimensat(parent.as_fd(), n, &t, &t, UtimensatFlags::NoFollowSymlink);
                }
            }
        }
    }
    // The diff-id covers the whole stream, trailing padding included.
    io::copy(&mut hashing, &mut io::sink()).map_err(io_err(&tree.dest))?;
    Ok(Unpacked {
        diff_id: hashing.finish(),
        size,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_compression() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(b"ustar"), Compression::None);
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(
            clean(Path::new("/etc/passwd")).unwrap(),
            PathBuf::from("etc/passwd")
        );
        assert_eq!(clean(Path::new("./a/./b")).unwrap(), PathBuf::from("a/b"));
        assert!(clean(Path::new("a/../../b")).is_err());
    }
}
