//! Unpacking one layer tarball into a directory, in overlayfs format, so
//! that a hostile layer can never write (or read) outside that directory.
//!
//! Our own loop over the `tar` crate's entries (never `Archive::unpack`):
//! - names are checked (`..` is refused, a leading `/` dropped) and split
//!   into parent and last component (`name.rs`);
//! - the parent is opened through file descriptors only, symlinks made by
//!   the layer resolving as if the layer dir were `/` (`tree.rs`, `resolve.rs`:
//!   `openat2(RESOLVE_IN_ROOT)`), and the last component is created
//!   relative to that fd without following it (`O_NOFOLLOW`, `mkdirat`,
//!   `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`, `mknodat`); a
//!   hardlink's target must be an earlier entry of the layer;
//! - a later entry replaces an earlier one of the same path (a directory
//!   over a directory merges);
//! - owner, then mode, xattrs (`meta.rs`: an allow-list) and times are set
//!   on the fd where there is one, and never through a symlink;
//! - whiteouts become overlayfs whiteouts (0:0 char devices), opaque
//!   markers the `trusted.overlay.opaque` xattr, since the directory becomes
//!   an overlay lower dir. See the OCI image spec's layer changesets:
//!   <https://github.com/opencontainers/image-spec/blob/main/layer.md>;
//! - resources are bounded: 4 MiB of headers per entry held in memory,
//!   64 GiB of sparse holes per layer, and optionally the layer's size.
//!
//! On error the destination holds part of the layer: the caller removes
//! it. Hostile inputs are tested in tests/layer_hostile.rs, containerd's
//! `TestBreakouts` among them. There is no race to win: nothing else
//! writes the layer dir while we unpack it, so every check holds until the
//! operation it guards.
mod guard;
mod meta;
mod name;
pub(crate) mod resolve;
mod stream;
mod tree;

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use model::Digest;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode,
    SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat};
use tar::EntryType;

pub use guard::Counting;
pub use guard::{Limits, Refusal, Reserve, DEFAULT_EXPANSION_FLOOR, DEFAULT_EXPANSION_RATIO};
use meta::{set_xattrs, Meta, XattrTarget};
use name::Role;
pub use stream::{bounded, decompress, decompress_bounded, detect, Compression, HashingReader};
use stream::{Budget, MAX_HEADER_BYTES};
use tree::{Removed, Tree, Walk};

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream (the OCI diff-id), trailing
    /// padding included.
    pub diff_id: Digest,
    /// Sum of the sizes of the regular files written.
    pub size: u64,
    /// Entries not created: device nodes without
    /// [`UnpackOptions::allow_devices`], aufs metadata (`.wh..wh.*`),
    /// non-directory entries naming the root, and unknown entry types.
    pub skipped: u64,
    /// Entries read from the tar (extension headers not counted).
    pub entries: u64,
}

/// Options for [`unpack_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Create block and character device nodes (default: skip them; a
    /// layer from a registry has no business creating `/dev/sda` in a
    /// container's rootfs, and the runtime makes `/dev` itself).
    pub allow_devices: bool,
    /// Refuse the layer once its regular files add up to more than this
    /// many bytes (apparent size), before writing the entry that would
    /// pass it: a small compressed layer can expand to terabytes.
    pub max_size: Option<u64>,
    /// A plain tar, not a layer: `.wh.` names are ordinary files (a
    /// volume import, a `cp` into a container).
    pub plain_names: bool,
    /// Do not hash the stream: [`Unpacked::diff_id`] is then the digest of
    /// nothing (a build's layers are digested from their directory).
    pub skip_digest: bool,
    /// Refuse to replace a directory with a non-directory or the reverse
    /// (Docker's `noOverwriteDirNonDir` of a copy into a container).
    pub no_overwrite_dir_non_dir: bool,
    /// Every entry owned by this uid and gid instead of the tar's (a copy
    /// into a container with Docker's `copyUIDGID` and a container user).
    pub owner: Option<(u32, u32)>,
    /// Bound the stream's expansion and keep free space on the
    /// destination's filesystem (`guard.rs`); `None`: unbounded.
    pub limits: Option<Limits>,
    /// The compressed stream's size, when known (a blob's descriptor):
    /// the expansion bound is computed from it.
    pub compressed_size: Option<u64>,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The destination directory could not be opened.
    #[error("cannot open the layer directory {path}: {source}")]
    Dest {
        /// The destination.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading or decompressing the stream failed, or it is not a tar.
    #[error("cannot read the layer stream: {source}")]
    Read {
        /// The underlying error.
        source: io::Error,
    },
    /// Writing an entry into the layer directory failed.
    #[error("layer i/o error at {path}: {}", crate::error::io_text(source))]
    Io {
        /// The entry's path in the tar.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry tries to leave the layer directory.
    #[error("layer entry {path:?} is unsafe: {reason}")]
    Unsafe {
        /// The entry's path in the tar.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The stream passed [`UnpackOptions::limits`]: a decompression bomb,
    /// or the filesystem is nearly full. Nothing of it is kept.
    #[error("the layer is refused: {reason}")]
    Refused {
        /// Which limit, and by how much.
        reason: Refusal,
    },
    /// An entry would take the layer past [`UnpackOptions::max_size`].
    #[error("layer entry {path:?} takes the layer past its size limit of {limit} bytes")]
    TooLarge {
        /// The entry's path in the tar.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// An entry would replace a directory with a non-directory or the
    /// reverse ([`UnpackOptions::no_overwrite_dir_non_dir`]).
    #[error("cannot overwrite {}", overwrite_text(.path, *.existing_dir))]
    Overwrite {
        /// The entry's path in the tar.
        path: String,
        /// What is there is a directory (the entry is not).
        existing_dir: bool,
    },
    /// An entry cannot be applied (a malformed header, or it needs
    /// something the layer does not have).
    #[error("layer entry {path:?} is invalid: {reason}")]
    Invalid {
        /// The entry's path in the tar.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// `directory "x" with non-directory` or the reverse.
fn overwrite_text(path: &str, existing_dir: bool) -> String {
    if existing_dir {
        format!("directory {path:?} with non-directory")
    } else {
        format!("non-directory {path:?} with directory")
    }
}

/// An entry's path for messages, cut short: a hostile name may be
/// megabytes long.
fn shown(raw: &[u8]) -> String {
    const MAX: usize = 256;
    if raw.len() <= MAX {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        format!(
            "{}...{}",
            String::from_utf8_lossy(&raw[..MAX / 2]),
            String::from_utf8_lossy(&raw[raw.len() - MAX / 2..])
        )
    }
}

fn read_err(source: io::Error) -> LayerError {
    LayerError::Read { source }
}

fn io_at(raw: &[u8]) -> impl FnOnce(io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: shown(raw),
        source,
    }
}

fn errno_at(raw: &[u8]) -> impl FnOnce(Errno) -> LayerError + '_ {
    move |e| LayerError::Io {
        path: shown(raw),
        source: e.into(),
    }
}

fn unsafe_at(raw: &[u8], reason: &'static str) -> LayerError {
    LayerError::Unsafe {
        path: shown(raw),
        reason,
    }
}

fn invalid_at(raw: &[u8], reason: &'static str) -> LayerError {
    LayerError::Invalid {
        path: shown(raw),
        reason,
    }
}

/// Why a parent directory could not be reached.
fn walk_err(raw: &[u8], e: Errno) -> LayerError {
    match e {
        Errno::ENOENT => invalid_at(
            raw,
            "a symlink in its parent path points to a missing directory",
        ),
        Errno::ENOTDIR => invalid_at(raw, "a component of its parent path is not a directory"),
        Errno::ELOOP => invalid_at(raw, "too many levels of symlinks in its parent path"),
        e => errno_at(raw)(e),
    }
}

/// Unpack a layer (gzip, zstd or plain tar) into `dest`, an existing
/// (normally empty) directory, skipping device nodes.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<Unpacked, LayerError> {
    unpack_with(reader, dest, &UnpackOptions::default())
}

/// The PAX key of a regular file whose data is not in the stream: its
/// value is handed to the [`DataSource`], which writes the file.
pub const DATA_REF: &str = "BERTH.data";

/// Writes the data of a file whose entry carries a [`DATA_REF`] record
/// (the record's value, the new file, opened for writing); returns the
/// bytes written. A builder's own stream uses it to copy context files in
/// the kernel instead of through the tar.
pub type DataSource<'a> = &'a mut dyn FnMut(&[u8], &File) -> io::Result<u64>;

/// [`unpack`] with options.
pub fn unpack_with(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    unpack_from(reader, dest, opts, None)
}

/// [`unpack_with`], with a [`DataSource`] for [`DATA_REF`] entries
/// (without one, those records are ignored: a stream cannot name files
/// outside itself unless the caller says how).
pub fn unpack_from(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
    source: Option<DataSource<'_>>,
) -> Result<Unpacked, LayerError> {
    let tree = Tree::open(dest).map_err(|e| LayerError::Dest {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let input = Rc::new(Cell::new(0u64));
    let counted = guard::Counting {
        inner: reader,
        count: input.clone(),
    };
    let (kind, decoded) = stream::decoder_of(counted).map_err(read_err)?;
    let limits = opts.limits.unwrap_or(Limits {
        expansion_ratio: u64::MAX,
        expansion_floor: u64::MAX,
        reserve: Reserve::Bytes(0),
    });
    let guarded = guard::Guard::new(
        decoded,
        (kind != Compression::None).then_some(input),
        opts.compressed_size,
        limits,
        opts.limits.is_some().then_some(dest),
    )
    .map_err(|e| LayerError::Dest {
        path: dest.to_path_buf(),
        source: e,
    })?;
    let refused = guarded.refused.clone();
    let res = unpack_decoded(guarded, tree, opts, source);
    let refusal = refused.borrow_mut().take();
    match refusal {
        Some(reason) if res.is_err() => Err(LayerError::Refused { reason }),
        _ => res,
    }
}

fn unpack_decoded(
    decoded: impl Read,
    tree: Tree,
    opts: &UnpackOptions,
    source: Option<DataSource<'_>>,
) -> Result<Unpacked, LayerError> {
    // Hashing below the buffer: the tar parser's small reads are served
    // from memory, the hasher sees large blocks.
    let hashing = if opts.skip_digest {
        HashingReader::counting(decoded)
    } else {
        HashingReader::new(decoded)
    };
    let mut input = BufReader::with_capacity(stream::BUF_SIZE, hashing);
    let mut unpacker = Unpacker {
        source,
        tree,
        opts: *opts,
        umask: process_umask(),
        sparse_left: MAX_SPARSE_HOLES,
        buf: vec![0; stream::BUF_SIZE],
        dirs: Vec::new(),
        size: 0,
        skipped: 0,
        entries: 0,
    };
    {
        let budget = Rc::new(Cell::new(MAX_HEADER_BYTES));
        let mut archive = tar::Archive::new(Budget {
            inner: &mut input,
            left: budget.clone(),
        });
        let mut entries = archive.entries().map_err(read_err)?;
        loop {
            budget.set(MAX_HEADER_BYTES);
            let Some(entry) = entries.next() else { break };
            let mut entry = entry.map_err(read_err)?;
            budget.set(u64::MAX);
            unpacker.entry(&mut entry)?;
            // Read what the entry did not, so that the next step of the
            // parser reads headers only.
            io::copy(&mut entry, &mut io::sink()).map_err(read_err)?;
        }
    }
    unpacker.restore_dir_times()?;
    // The diff-id covers the whole stream: the end-of-archive blocks and
    // whatever padding follows them.
    io::copy(&mut input, &mut io::sink()).map_err(read_err)?;
    Ok(Unpacked {
        diff_id: input.into_inner().finish(),
        size: unpacker.size,
        skipped: unpacker.skipped,
        entries: unpacker.entries,
    })
}

/// The holes that the GNU sparse entries of one layer may declare. The
/// `tar` crate hands out holes as zeros, which are read (and skipped over
/// on disk) at a few GB/s: a 2 KiB entry declaring exabytes of holes would
/// keep us busy for ever.
const MAX_SPARSE_HOLES: u64 = 64 << 30;
const SPARSE_TOO_LARGE: &str = "the sparse files of this layer declare more than 64 GiB of holes";

/// A directory's times, set once everything below it is written.
struct DirTimes {
    path: PathBuf,
    atime: TimeSpec,
    mtime: TimeSpec,
}

struct Unpacker<'s> {
    source: Option<DataSource<'s>>,
    tree: Tree,
    opts: UnpackOptions,
    /// The process umask, if known: files are created with their mode.
    umask: Option<u32>,
    /// What is left of [`MAX_SPARSE_HOLES`].
    sparse_left: u64,
    /// Copy buffer for file contents.
    buf: Vec<u8>,
    dirs: Vec<DirTimes>,
    size: u64,
    skipped: u64,
    entries: u64,
}

/// Run `make`; if the name is taken, remove what is there and run it again.
fn replacing<T>(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    stale: &mut bool,
    mut make: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    match make() {
        Err(Errno::EEXIST) => {
            if tree::remove(dir, name)? == Removed::DirOrSymlink {
                *stale = true;
            }
            make()
        }
        r => r,
    }
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        self.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let name = if self.opts.plain_names {
            name::parse_plain(&raw)
        } else {
            name::parse(&raw)
        }
        .map_err(|reason| unsafe_at(&raw, reason))?;
        match name.role {
            Role::Root => {
                // Docker ignores the metadata of "./" too: the layer root
                // is the store's directory.
                if !kind.is_dir() {
                    self.skipped += 1;
                }
                Ok(())
            }
            Role::Meta => {
                self.skipped += 1;
                Ok(())
            }
            Role::Opaque => self.opaque(&raw, &name.parent),
            Role::Whiteout(hidden) => self.whiteout(&raw, &name.parent, hidden, entry),
            Role::Plain(last) => {
                // Old tars mark directories by a trailing slash only.
                let dir = kind.is_dir() || (kind == EntryType::Regular && raw.ends_with(b"/"));
                self.plain(
                    &raw,
                    &name.parent,
                    last,
                    if dir { EntryType::Directory } else { kind },
                    entry,
                )
            }
        }
    }

    fn opaque(&mut self, raw: &[u8], parent: &[&OsStr]) -> Result<(), LayerError> {
        self.tree
            .enter(parent, Walk::MkdirAll)
            .map_err(|e| walk_err(raw, e))?;
        let dir = openat(
            self.tree.cwd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_at(raw))?;
        xattr::FileExt::set_xattr(&File::from(dir), crate::fsops::opaque_xattr(), b"y")
            .map_err(io_at(raw))
    }

    fn whiteout<R: Read>(
        &mut self,
        raw: &[u8],
        parent: &[&OsStr],
        hidden: &OsStr,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let meta = Meta::read(entry, raw)?;
        self.tree
            .enter(parent, Walk::MkdirAll)
            .map_err(|e| walk_err(raw, e))?;
        let dir = self.tree.cwd();
        let mut stale = false;
        replacing(dir, hidden, &mut stale, || {
            mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
        })
        .map_err(errno_at(raw))?;
        fchownat(
            dir,
            hidden,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno_at(raw))?;
        if stale {
            self.tree.forget();
        }
        Ok(())
    }

    fn plain<R: Read>(
        &mut self,
        raw: &[u8],
        parent: &[&OsStr],
        last: &OsStr,
        kind: EntryType,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        if matches!(kind, EntryType::Char | EntryType::Block) && !self.opts.allow_devices {
            self.skipped += 1;
            return Ok(());
        }
        let known = matches!(
            kind,
            EntryType::Regular
                | EntryType::Continuous
                | EntryType::GNUSparse
                | EntryType::Directory
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Fifo
                | EntryType::Char
                | EntryType::Block
        );
        if !known {
            tracing::debug!(entry = %shown(raw), kind = ?kind, "unknown tar entry type skipped");
            self.skipped += 1;
            return Ok(());
        }
        if kind == EntryType::Link {
            return self.hardlink(raw, parent, last, entry);
        }
        if matches!(
            kind,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        ) {
            self.admit(raw, kind, entry)?;
        }
        let mut meta = Meta::read(entry, raw)?;
        if let Some((uid, gid)) = self.opts.owner {
            meta.uid = nix::unistd::Uid::from_raw(uid);
            meta.gid = nix::unistd::Gid::from_raw(gid);
        }
        let link_target = match kind {
            EntryType::Symlink => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid_at(raw, "symlink without a target"))?
                    .into_owned();
                if t.is_empty() {
                    return Err(invalid_at(raw, "symlink without a target"));
                }
                t
            }
            _ => Vec::new(),
        };
        self.tree
            .enter(parent, Walk::MkdirAll)
            .map_err(|e| walk_err(raw, e))?;
        let dir = self.tree.cwd();
        if self.opts.no_overwrite_dir_non_dir {
            if let Ok(st) = fstatat(dir, last, AtFlags::AT_SYMLINK_NOFOLLOW) {
                let is_dir =
                    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
                if is_dir != (kind == EntryType::Directory) {
                    return Err(LayerError::Overwrite {
                        path: shown(raw),
                        existing_dir: is_dir,
                    });
                }
            }
        }
        let mut stale = false;
        match kind {
            EntryType::Directory => {
                // A directory replacing a whiteout of this layer is a new
                // directory: opaque, or the overlay would merge the lower
                // layers' directory of that name back into it.
                let made = match mkdirat(dir, last, Mode::from_bits_truncate(0o700)) {
                    Err(Errno::EEXIST) if tree::is_dir(dir, last) => Ok(false),
                    Err(Errno::EEXIST) => {
                        let hid = tree::is_whiteout(dir, last);
                        replacing(dir, last, &mut stale, || {
                            mkdirat(dir, last, Mode::from_bits_truncate(0o700))
                        })
                        .map(|()| hid)
                    }
                    r => r.map(|()| false),
                };
                let opaque = made.map_err(errno_at(raw))?;
                fchownat(
                    dir,
                    last,
                    Some(meta.uid),
                    Some(meta.gid),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(errno_at(raw))?;
                // A directory (just checked or made): nothing to follow.
                fchmodat(dir, last, meta.mode, FchmodatFlags::FollowSymlink)
                    .map_err(errno_at(raw))?;
                if opaque || !meta.xattrs.is_empty() {
                    let fd = openat(
                        dir,
                        last,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(errno_at(raw))?;
                    let fd = File::from(fd);
                    if opaque {
                        xattr::FileExt::set_xattr(&fd, crate::fsops::opaque_xattr(), b"y")
                            .map_err(io_at(raw))?;
                    }
                    set_xattrs(raw, XattrTarget::Open(&fd), &meta.xattrs)?;
                }
                self.dirs.push(DirTimes {
                    path: parent.iter().chain(std::iter::once(&last)).collect(),
                    atime: meta.atime,
                    mtime: meta.mtime,
                });
            }
            EntryType::Symlink => {
                let target = OsStr::from_bytes(&link_target);
                replacing(dir, last, &mut stale, || symlinkat(target, dir, last))
                    .map_err(errno_at(raw))?;
                stale = true;
                self.special_meta(raw, dir, last, &meta, false)?;
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let (sflag, dev) = match kind {
                    EntryType::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let h = entry.header();
                        let major = h.device_major().ok().flatten().unwrap_or(0);
                        let minor = h.device_minor().ok().flatten().unwrap_or(0);
                        let sflag = if kind == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (sflag, makedev(major.into(), minor.into()))
                    }
                };
                replacing(dir, last, &mut stale, || {
                    mknodat(dir, last, sflag, Mode::from_bits_truncate(0o600), dev)
                })
                .map_err(errno_at(raw))?;
                self.special_meta(raw, dir, last, &meta, true)?;
            }
            _ => {
                // Regular file, created with its permission bits: unless
                // the umask takes some away or there are setuid, setgid or
                // sticky bits (which chown clears), no chmod is needed.
                let perm = meta.mode.bits() & 0o777;
                let chmod = meta.mode.bits() != perm || self.umask.is_none_or(|u| perm & u != 0);
                let fd = replacing(dir, last, &mut stale, || {
                    openat(
                        dir,
                        last,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(perm),
                    )
                })
                .map_err(errno_at(raw))?;
                let mut file = File::from(fd);
                let holes = kind == EntryType::GNUSparse;
                self.size += match (&meta.data_ref, self.source.as_mut()) {
                    (Some(r), Some(source)) => source(r, &file).map_err(io_at(raw))?,
                    _ => copy(entry, &mut file, &mut self.buf, holes, raw)?,
                };
                // Owner before mode: chown clears setuid/setgid. Xattrs
                // after chown: it clears security.capability.
                fchown(&file, Some(meta.uid), Some(meta.gid)).map_err(errno_at(raw))?;
                if chmod {
                    fchmod(&file, meta.mode).map_err(errno_at(raw))?;
                }
                set_xattrs(raw, XattrTarget::Open(&file), &meta.xattrs)?;
                futimens(&file, &meta.atime, &meta.mtime).map_err(errno_at(raw))?;
            }
        }
        if stale {
            self.tree.forget();
        }
        Ok(())
    }

    /// Check a regular file's size against the limits before writing it.
    fn admit<R: Read>(
        &mut self,
        raw: &[u8],
        kind: EntryType,
        entry: &tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        // For a sparse entry, the size with its holes.
        let apparent = entry.size();
        if kind == EntryType::GNUSparse {
            let stored = entry
                .header()
                .entry_size()
                .map_err(|_| invalid_at(raw, "its size is unreadable"))?;
            let holes = apparent.saturating_sub(stored);
            self.sparse_left = self
                .sparse_left
                .checked_sub(holes)
                .ok_or_else(|| invalid_at(raw, SPARSE_TOO_LARGE))?;
        }
        if let Some(limit) = self.opts.max_size {
            if self.size.saturating_add(apparent) > limit {
                return Err(LayerError::TooLarge {
                    path: shown(raw),
                    limit,
                });
            }
        }
        Ok(())
    }

    /// Owner, mode (unless a symlink), xattrs and times of an entry that
    /// cannot be opened.
    fn special_meta(
        &self,
        raw: &[u8],
        dir: BorrowedFd<'_>,
        last: &OsStr,
        meta: &Meta,
        chmod: bool,
    ) -> Result<(), LayerError> {
        fchownat(
            dir,
            last,
            Some(meta.uid),
            Some(meta.gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno_at(raw))?;
        if chmod {
            // A fifo or device node we just made: nothing to follow.
            fchmodat(dir, last, meta.mode, FchmodatFlags::FollowSymlink).map_err(errno_at(raw))?;
        }
        set_xattrs(raw, XattrTarget::At(dir, last), &meta.xattrs)?;
        utimensat(
            dir,
            last,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(errno_at(raw))
    }

    /// A hardlink to an earlier entry of this layer. The target's parent
    /// resolves inside the layer; the target itself is not followed, so a
    /// link to a symlink is a second name of that symlink.
    fn hardlink<R: Read>(
        &mut self,
        raw: &[u8],
        parent: &[&OsStr],
        last: &OsStr,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let target_raw = entry
            .link_name_bytes()
            .ok_or_else(|| invalid_at(raw, "hardlink without a target"))?
            .into_owned();
        let (tparent, tname) =
            name::link_target(&target_raw).map_err(|reason| unsafe_at(raw, reason))?;
        if tparent == parent && tname == last {
            return Ok(());
        }
        let tdir = self.tree.resolve(&tparent).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP => invalid_at(
                raw,
                "its hardlink target is not an earlier entry of the layer",
            ),
            e => errno_at(raw)(e),
        })?;
        self.tree
            .enter(parent, Walk::MkdirAll)
            .map_err(|e| walk_err(raw, e))?;
        let dir = self.tree.cwd();
        let mut stale = false;
        replacing(dir, last, &mut stale, || {
            linkat(&tdir, tname, dir, last, AtFlags::empty())
        })
        .map_err(|e| match e {
            Errno::ENOENT => invalid_at(
                raw,
                "its hardlink target is not an earlier entry of the layer",
            ),
            Errno::EPERM => invalid_at(raw, "its hardlink target is a directory"),
            e => errno_at(raw)(e),
        })?;
        if stale {
            self.tree.forget();
        }
        Ok(())
    }

    /// Set directory times last: creating their content changed them.
    fn restore_dir_times(&mut self) -> Result<(), LayerError> {
        // Walk the names as written, so that a symlink made later cannot
        // lead to another directory of the same name.
        for d in std::mem::take(&mut self.dirs) {
            let comps: Vec<&OsStr> = d.path.iter().collect();
            let Some((last, parent)) = comps.split_last() else {
                continue;
            };
            // A later entry may have removed or replaced the directory.
            if self.tree.enter(parent, Walk::Literal).is_err() {
                continue;
            }
            let dir = self.tree.cwd();
            if tree::is_dir(dir, last) {
                utimensat(
                    dir,
                    *last,
                    &d.atime,
                    &d.mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(errno_at(d.path.as_os_str().as_bytes()))?;
            }
        }
        Ok(())
    }
}

/// Copy an entry's data into `file` through `buf`, writing only full
/// buffers (and the tail): the parser hands out what its buffer holds,
/// often a fraction of a small file. With `holes`, all-zero buffers are
/// skipped over instead of written, so a GNU sparse entry (which the
/// parser expands to zeros) stays sparse: a few KiB of layer cannot fill
/// the disk. Returns the file's size.
fn copy<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    file: &mut File,
    buf: &mut [u8],
    holes: bool,
    raw: &[u8],
) -> Result<u64, LayerError> {
    let mut total = 0u64;
    let mut skipped = false;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        if holes && is_zero(chunk) {
            file.seek(io::SeekFrom::Current(filled as i64))
                .map_err(io_at(raw))?;
            skipped = true;
        } else {
            file.write_all(chunk).map_err(io_at(raw))?;
        }
        total += filled as u64;
        if filled < buf.len() {
            break;
        }
    }
    if skipped {
        file.set_len(total).map_err(io_at(raw))?;
    }
    Ok(total)
}

fn is_zero(data: &[u8]) -> bool {
    // OR-folding fixed chunks vectorises; stop at the first non-zero one.
    data.chunks(4096)
        .all(|c| c.iter().fold(0u8, |acc, b| acc | b) == 0)
}

/// The process's umask, from /proc (reading it with umask(2) would change
/// it for every thread meanwhile).
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}
