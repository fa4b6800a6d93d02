//! `COPY` and `ADD`: the sources (from the build context or another
//! stage's root) become one layer, written as a tar stream with Docker's
//! destination rules. Every source path is resolved inside its root with
//! `openat2(RESOLVE_IN_ROOT)` and every entry below it is reached by fd
//! without following symlinks, so a hostile context (a symlink to `/etc`)
//! or a hostile base image cannot make the build read host files.
//!
//! Entries are written in sorted order with mtimes clamped (to
//! `SOURCE_DATE_EPOCH`, or 0), owner 0:0 unless `--chown`: the same
//! sources give the same layer bytes on every build.
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode};
use sha2::{Digest as _, Sha256};
use store::fsops::{self, Kind};

use super::ignore::{clean, Ignore};

/// `--chmod`: octal, or symbolic clauses (`u+x,go-w`, `a=rX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// `0755`.
    Octal(u32),
    /// (who mask, op, permission bits, X: execute if a dir or already
    /// executable by someone).
    Symbolic(Vec<(u32, char, u32, bool)>),
}

impl Chmod {
    /// Parse a `--chmod` value.
    pub fn parse(s: &str) -> Result<Chmod, String> {
        if let Ok(m) = u32::from_str_radix(s, 8) {
            if m > 0o7777 {
                return Err(format!("{s:?}: mode out of range"));
            }
            return Ok(Chmod::Octal(m));
        }
        let bad = || format!("{s:?}: use an octal mode (0755) or symbolic clauses (u+x,go-w)");
        let mut clauses = Vec::new();
        for clause in s.split(',') {
            let op_at = clause.find(['+', '-', '=']).ok_or_else(bad)?;
            let (who, rest) = clause.split_at(op_at);
            let mut mask = 0;
            for c in who.chars() {
                mask |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(bad()),
                };
            }
            if who.is_empty() {
                mask = 0o7777;
            }
            let op = rest.chars().next().ok_or_else(bad)?;
            let mut bits = 0;
            let mut cap_x = false;
            for c in rest[1..].chars() {
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' => {
                        cap_x = true;
                        0
                    }
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => return Err(bad()),
                };
            }
            clauses.push((mask, op, bits, cap_x));
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The new mode of an entry whose mode is `mode`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut m = mode;
                for (mask, op, bits, cap_x) in clauses {
                    let mut b = *bits;
                    if *cap_x && (is_dir || m & 0o111 != 0) {
                        b |= 0o111;
                    }
                    let b = b & mask;
                    m = match op {
                        '+' => m | b,
                        '-' => m & !b,
                        _ => (m & !(mask & 0o777)) | b,
                    };
                }
                m
            }
        }
    }
}

/// One source of a COPY/ADD.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path in the source root (cleaned, relative).
    Path(String),
    /// A heredoc's content or a download, written as a file.
    Inline {
        /// File name.
        name: String,
        /// Content.
        data: Vec<u8>,
        /// Its mode (0644 for heredocs, 0600 for downloads).
        mode: u32,
    },
}

/// How the entries are written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The sources, globs expanded.
    pub sources: Vec<Source>,
    /// Absolute destination (no trailing slash).
    pub dest: String,
    /// The destination is a directory the sources go into.
    pub dest_is_dir: bool,
    /// `--chown` (uid, gid); 0:0 otherwise.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<Chmod>,
    /// mtime clamp.
    pub mtime: u64,
    /// `.dockerignore` (context sources only).
    pub ignore: Ignore,
    /// `--exclude` patterns.
    pub exclude: Ignore,
    /// `ADD`: local tar archives are extracted.
    pub extract: bool,
    /// Parent directories of `dest` that do not exist yet (created 0755).
    pub missing_parents: Vec<String>,
    /// Directories on the way to (and including) `dest` that exist below:
    /// written with their own owner and mode, since the layer's entry for a
    /// directory is what the merged view shows (a `COPY x /tmp/` must not
    /// turn `/tmp` into 0755).
    pub existing_dirs: Vec<(String, DirAttrs)>,
    /// The destination directory exists already (its owner and mode stay).
    pub dest_exists: bool,
    /// `COPY --parents`: each source keeps its path under the destination.
    pub parents: bool,
    /// How far an `ADD`ed compressed archive may expand (the store's).
    pub limits: store::layer::Limits,
}

fn ctx(what: impl std::fmt::Display) -> impl Fn(nix::errno::Errno) -> io::Error {
    move |e| io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expand a source pattern in `root` (globs in any component, matched
/// with Go's `filepath.Match` rules). A plain path is returned as is.
pub fn expand_source(root: BorrowedFd<'_>, pattern: &str) -> io::Result<Vec<String>> {
    let p = clean(pattern);
    if !has_glob(&p) {
        return Ok(vec![p]);
    }
    let mut found = vec![String::new()];
    for comp in p.split('/') {
        let mut next = Vec::new();
        for base in &found {
            if !has_glob(comp) {
                next.push(join(base, comp));
                continue;
            }
            let Ok(dir) = fsops::dir_in_root(root, Path::new(&format!("/{base}"))) else {
                continue;
            };
            for n in fsops::list(dir.as_fd()).map_err(ctx(base))? {
                let name = n.to_string_lossy();
                if dockerfile::expand::glob_match(comp, &name) {
                    next.push(join(base, &name));
                }
            }
        }
        found = next;
    }
    Ok(found)
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Open a source's parent dir and stat its last component (following a
/// symlink there, as Docker does for a named source, but only inside
/// `root`). Returns (parent fd, name, stat).
fn open_source(
    root: BorrowedFd<'_>,
    rel: &str,
) -> io::Result<(OwnedFd, std::ffi::OsString, FileStat)> {
    if rel.is_empty() {
        let dir = fsops::dir_in_root(root, Path::new("/"))?;
        let st = fstat(dir.as_fd()).map_err(ctx("/"))?;
        return Ok((dir, ".".into(), st));
    }
    let path = Path::new("/").join(rel);
    let (parent, name) = fsops::split_in_root(&path);
    let name = name.unwrap_or_else(|| ".".into());
    let mut dir = fsops::dir_in_root(root, &parent)?;
    let mut name = name;
    // Follow a symlinked source a few times, always inside the root.
    for _ in 0..40 {
        let st = fsops::stat_at(dir.as_fd(), &name).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{rel}: not found in the build context or source stage"),
            )
        })?;
        if fsops::kind_of(&st) != Kind::Symlink {
            return Ok((dir, name, st));
        }
        let target = readlinkat(dir.as_fd(), name.as_os_str()).map_err(ctx(rel))?;
        let base = fsops::split_in_root(&path).0;
        let t = Path::new(&target);
        let resolved = if t.is_absolute() {
            t.to_path_buf()
        } else {
            base.join(t)
        };
        let (p, n) = fsops::split_in_root(&resolved);
        dir = fsops::dir_in_root(root, &p)?;
        name = n.unwrap_or_else(|| ".".into());
    }
    Err(io::Error::other(format!(
        "{rel}: too many levels of symlinks"
    )))
}

/// Content hashes of context files, reused while a file's size, mtime,
/// ctime and inode stay the same: a no-op rebuild stats the context but
/// does not read it. Kept per context in the state root.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StatCache {
    entries: std::collections::HashMap<String, (u64, i64, i64, u64, String)>,
    #[serde(skip)]
    dirty: bool,
}

impl StatCache {
    /// Load (an unreadable or missing file is an empty cache).
    pub fn load(path: &Path) -> StatCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Save if anything changed, merged with what another build saved
    /// meanwhile (temp file + rename).
    pub fn save(&mut self, path: &Path) {
        if !self.dirty {
            return;
        }
        let mut on_disk = StatCache::load(path);
        on_disk.entries.extend(self.entries.drain());
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Ok(bytes) = serde_json::to_vec(&on_disk) {
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, path);
            }
        }
        self.entries = on_disk.entries;
        self.dirty = false;
    }

    fn stamp(st: &FileStat) -> (u64, i64, i64, u64) {
        (
            st.st_size as u64,
            st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
            st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
            st.st_ino,
        )
    }

    fn get(&self, rel: &str, st: &FileStat) -> Option<&str> {
        let (size, m, c, ino) = StatCache::stamp(st);
        match self.entries.get(rel) {
            Some((s2, m2, c2, i2, h)) if (*s2, *m2, *c2, *i2) == (size, m, c, ino) => Some(h),
            _ => None,
        }
    }

    fn put(&mut self, rel: &str, st: &FileStat, hash: String) {
        let (size, m, c, ino) = StatCache::stamp(st);
        // A file changed just now could change again with the same
        // timestamps (file times come from a coarse clock, a few ms a
        // tick): not remembered. 100 ms is many ticks.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        if now - m.max(c) < 100_000_000 {
            return;
        }
        self.entries
            .insert(rel.to_string(), (size, m, c, ino, hash));
        self.dirty = true;
    }
}

/// The cache-key hash of the sources: names, kinds, modes, sizes,
/// symlink targets and file contents (not times, not owners). With a
/// `cache`, unchanged files (same size, times, inode) are not read again.
pub fn hash_sources(
    root: BorrowedFd<'_>,
    sources: &[Source],
    ignore: &Ignore,
    exclude: &Ignore,
    mut cache: Option<&mut StatCache>,
) -> io::Result<String> {
    let mut h = Sha256::new();
    // How COPY lays out directories is part of what a cached step holds:
    // bump on a change (2: created dirs 0755, existing dirs kept).
    h.update(b"copy-layout-2\0");
    for s in sources {
        match s {
            Source::Inline { name, data, mode } => {
                h.update(b"inline\0");
                h.update(format!("{mode:o}\0").as_bytes());
                h.update(name.as_bytes());
                h.update(b"\0");
                h.update(Sha256::digest(data));
            }
            Source::Path(rel) => {
                h.update(b"path\0");
                h.update(rel.as_bytes());
                h.update(b"\0");
                let (dir, name, st) = open_source(root, rel)?;
                hash_entry(
                    &mut h,
                    dir.as_fd(),
                    &name,
                    &st,
                    rel,
                    ignore,
                    exclude,
                    cache.as_deref_mut(),
                )?;
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[allow(clippy::too_many_arguments)]
fn hash_entry(
    h: &mut Sha256,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    rel: &str,
    ignore: &Ignore,
    exclude: &Ignore,
    mut cache: Option<&mut StatCache>,
) -> io::Result<()> {
    let kind = fsops::kind_of(st);
    h.update(format!("{rel}\0{:?}\0{:o}\0", kind, st.st_mode & 0o7777).as_bytes());
    match kind {
        Kind::Dir => {
            let sub = if name == "." {
                fsops::reopen_dir(dir).map_err(ctx(rel))?
            } else {
                fsops::open_subdir(dir, name).map_err(ctx(rel))?
            };
            for n in fsops::list(sub.as_fd()).map_err(ctx(rel))? {
                let child = join(rel, &n.to_string_lossy());
                if skipped(&child, ignore, exclude) {
                    continue;
                }
                let cst = fsops::stat_at(sub.as_fd(), &n).map_err(ctx(&child))?;
                hash_entry(
                    h,
                    sub.as_fd(),
                    &n,
                    &cst,
                    &child,
                    ignore,
                    exclude,
                    cache.as_deref_mut(),
                )?;
            }
        }
        Kind::File => {
            if let Some(known) = cache.as_deref().and_then(|c| c.get(rel, st)) {
                h.update(known.as_bytes());
            } else {
                let fd = open_file(dir, name, rel)?;
                let now = fstat(fd.as_fd()).map_err(ctx(rel))?;
                let mut f = std::fs::File::from(fd);
                let mut fh = Sha256::new();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    fh.update(&buf[..n]);
                }
                let hex = hex::encode(fh.finalize());
                h.update(hex.as_bytes());
                if let Some(c) = cache {
                    c.put(rel, &now, hex);
                }
            }
        }
        Kind::Symlink => {
            let t = readlinkat(dir, name).map_err(ctx(rel))?;
            h.update(t.as_bytes());
        }
        _ => {}
    }
    h.update(b"\n");
    Ok(())
}

fn skipped(rel: &str, ignore: &Ignore, exclude: &Ignore) -> bool {
    (!ignore.is_empty() && ignore.excluded(rel)) || (!exclude.is_empty() && exclude.excluded(rel))
}

fn open_file(dir: BorrowedFd<'_>, name: &OsStr, rel: &str) -> io::Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(ctx(rel))?;
    Ok(fd)
}

/// Context files whose data the unpacker copies itself (in the kernel,
/// `copy_file_range`) instead of reading it from the tar stream: the
/// writer thread puts each opened file here, numbered, and writes an entry
/// with a [`store::layer::DATA_REF`] record naming it.
#[derive(Default)]
pub struct Direct {
    state: std::sync::Mutex<DirectState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct DirectState {
    files: std::collections::HashMap<u64, (std::fs::File, u64)>,
    next: u64,
    /// The unpacker is done: nothing more is taken.
    closed: bool,
}

/// Files at least this large go by [`Direct`]; smaller ones are cheaper
/// inline.
const DIRECT_MIN: u64 = 64 << 10;
/// Open files waiting for the unpacker, at most.
const DIRECT_MAX_OPEN: usize = 64;

impl Direct {
    fn put(&self, file: std::fs::File, size: u64) -> io::Result<u64> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.files.len() >= DIRECT_MAX_OPEN && !st.closed {
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the layer is no longer being unpacked",
            ));
        }
        let n = st.next;
        st.next += 1;
        st.files.insert(n, (file, size));
        Ok(n)
    }

    /// Write file `reference` into `dst`: its size as the writer saw it,
    /// cut or padded with zeros if it changed meanwhile.
    pub fn copy_into(&self, reference: &[u8], dst: &std::fs::File) -> io::Result<u64> {
        let n: u64 = std::str::from_utf8(reference)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other("a bad file reference in the layer stream"))?;
        let (src, size) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let taken = st.files.remove(&n);
            self.changed.notify_all();
            taken
                .ok_or_else(|| io::Error::other("an unknown file reference in the layer stream"))?
        };
        let copied = io::copy(&mut (&src).take(size), &mut &*dst)?;
        if copied < size {
            dst.set_len(size)?;
        }
        Ok(size)
    }

    /// The unpacker is done (or failed): the writer stops waiting.
    pub fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        st.files.clear();
        self.changed.notify_all();
    }
}

/// Writes the layer.
struct Writer<'a, W: Write> {
    b: tar::Builder<W>,
    plan: &'a Plan,
    direct: Option<&'a Direct>,
}

impl<W: Write> Writer<'_, W> {
    fn header(&self, kind: Kind, mode: u32) -> tar::Header {
        let mut hd = tar::Header::new_gnu();
        let mode = match (&self.plan.chmod, kind) {
            (Some(m), Kind::File | Kind::Dir) => m.apply(mode & 0o7777, kind == Kind::Dir),
            _ => mode & 0o7777,
        };
        hd.set_mode(mode);
        let (uid, gid) = self.plan.owner.unwrap_or((0, 0));
        hd.set_uid(uid as u64);
        hd.set_gid(gid as u64);
        hd.set_mtime(self.plan.mtime);
        hd.set_size(0);
        hd.set_entry_type(match kind {
            Kind::Dir => tar::EntryType::Directory,
            Kind::Symlink => tar::EntryType::Symlink,
            Kind::Fifo => tar::EntryType::Fifo,
            _ => tar::EntryType::Regular,
        });
        hd
    }

    fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        let mut h = self.header(Kind::Dir, mode);
        self.b.append_data(&mut h, format!("{path}/"), io::empty())
    }

    /// A directory the copy creates (the destination, as BuildKit's
    /// `MkdirAll`): 0755, owned as `--chown` says, `--chmod` not applied.
    fn created_dir(&mut self, path: &str) -> io::Result<()> {
        let mut h = self.header(Kind::Dir, 0o755);
        h.set_mode(0o755);
        self.b.append_data(&mut h, format!("{path}/"), io::empty())
    }

    /// A regular file of the context: by reference (see [`Direct`]) when
    /// large, else inline.
    fn context_file(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        file: std::fs::File,
    ) -> io::Result<()> {
        let Some(direct) = self.direct.filter(|_| size >= DIRECT_MIN) else {
            return self.file(path, mode, size, file);
        };
        let n = direct.put(file, size)?;
        fsops::append_pax(
            &mut self.b,
            Path::new(path),
            &[(store::layer::DATA_REF.as_bytes(), n.to_string().as_bytes())],
        )?;
        let mut h = self.header(Kind::File, mode);
        h.set_size(0);
        self.b.append_data(&mut h, path, io::empty())
    }

    fn file(&mut self, path: &str, mode: u32, size: u64, data: impl Read) -> io::Result<()> {
        let mut h = self.header(Kind::File, mode);
        h.set_size(size);
        // A file that changes size while read is cut or padded.
        let reader = data.chain(io::repeat(0)).take(size);
        self.b.append_data(&mut h, path, reader)
    }

    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        st: &FileStat,
        rel: &str,
        out: &str,
    ) -> io::Result<()> {
        let kind = fsops::kind_of(st);
        match kind {
            Kind::Dir => {
                // The destination itself was written first (created, or
                // as it exists): a copied directory's contents go into it.
                let dest = self.plan.dest.trim_start_matches('/');
                if !out.is_empty() && out != dest {
                    self.dir(out, st.st_mode)?;
                }
                let sub = if name == "." {
                    fsops::reopen_dir(dir).map_err(ctx(rel))?
                } else {
                    fsops::open_subdir(dir, name).map_err(ctx(rel))?
                };
                for n in fsops::list(sub.as_fd()).map_err(ctx(rel))? {
                    let s = n.to_string_lossy();
                    let child = join(rel, &s);
                    if skipped(&child, &self.plan.ignore, &self.plan.exclude) {
                        continue;
                    }
                    let cst = fsops::stat_at(sub.as_fd(), &n).map_err(ctx(&child))?;
                    self.entry(sub.as_fd(), &n, &cst, &child, &join(out, &s))?;
                }
                Ok(())
            }
            Kind::File => {
                let fd = open_file(dir, name, rel)?;
                let now = fstat(fd.as_fd()).map_err(ctx(rel))?;
                if self.plan.extract && is_archive(fd.as_fd())? {
                    return self.extract(fd, rel, out);
                }
                self.context_file(
                    out,
                    now.st_mode,
                    now.st_size as u64,
                    std::fs::File::from(fd),
                )
            }
            Kind::Symlink => {
                let t = readlinkat(dir, name).map_err(ctx(rel))?;
                let mut h = self.header(Kind::Symlink, 0o777);
                self.b.append_link(&mut h, out, Path::new(&t))
            }
            Kind::Fifo => {
                let mut h = self.header(Kind::Fifo, st.st_mode);
                self.b.append_data(&mut h, out, io::empty())
            }
            // Devices and sockets are not copied from a context.
            _ => Ok(()),
        }
    }

    /// `ADD archive.tar.gz /dest/`: the archive's entries under dest,
    /// each path cleaned (no `..` escapes the destination).
    fn extract(&mut self, fd: OwnedFd, rel: &str, out_file: &str) -> io::Result<()> {
        // The archive is unpacked into the destination directory.
        let dest = if self.plan.dest_is_dir {
            self.plan.dest.trim_start_matches('/').to_string()
        } else {
            out_file.to_string()
        };
        let f = std::fs::File::from(fd);
        let reader = archive_reader(f, self.plan.limits)
            .map_err(|e| io::Error::other(format!("{rel}: {e}")))?;
        let mut a = tar::Archive::new(reader);
        for e in a.entries()? {
            let mut e = e?;
            let path = e.path()?.to_string_lossy().into_owned();
            let c = clean(&path);
            if c.is_empty() {
                continue;
            }
            let target = join(&dest, &c);
            let mut h = e.header().clone();
            if let Some((uid, gid)) = self.plan.owner {
                h.set_uid(uid as u64);
                h.set_gid(gid as u64);
            }
            let et = h.entry_type();
            if et.is_symlink() || et.is_hard_link() {
                let link = e.link_name()?.map(|l| l.into_owned()).unwrap_or_default();
                let link = if et.is_hard_link() {
                    PathBuf::from(join(&dest, &clean(&link.to_string_lossy())))
                } else {
                    link
                };
                self.b.append_link(&mut h, &target, &link)?;
            } else if et.is_dir() {
                self.b
                    .append_data(&mut h, format!("{target}/"), io::empty())?;
            } else if et.is_file() {
                let size = h.size()?;
                self.b.append_data(&mut h, &target, (&mut e).take(size))?;
            }
        }
        Ok(())
    }
}

/// An xz archive is decompressed in memory (lzma-rs has no reader): at
/// most this much.
const MAX_XZ: usize = 1 << 30;

/// A reader of the tar inside `f` (plain, gzip, zstd, bzip2 or xz),
/// bounded by `limits` (a small archive must not expand without end).
fn archive_reader(f: std::fs::File, limits: store::layer::Limits) -> io::Result<Box<dyn Read>> {
    let size = f.metadata()?.len();
    let mut head = [0u8; 6];
    let n = nix::sys::uio::pread(&f, &mut head, 0).map_err(io::Error::from)?;
    let h = &head[..n];
    if h.starts_with(b"BZh") {
        return store::layer::bounded(io::BufReader::new(f), limits, Some(size), |r| {
            Box::new(bzip2::read::MultiBzDecoder::new(r))
        });
    }
    if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let mut out = Vec::new();
        let mut input = io::BufReader::new(f);
        lzma_rs::xz_decompress(&mut input, &mut LimitedVec(&mut out))
            .map_err(|e| io::Error::other(format!("xz: {e}")))?;
        return Ok(Box::new(io::Cursor::new(out)));
    }
    store::layer::decompress_bounded(io::BufReader::new(f), limits, Some(size))
}

/// A `Vec` that refuses to grow past [`MAX_XZ`].
struct LimitedVec<'a>(&'a mut Vec<u8>);

impl Write for LimitedVec<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_XZ {
            return Err(io::Error::other(
                "the archive is larger than 1 GiB unpacked",
            ));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Is the file a tar archive (plain, gzip, zstd, bzip2 or xz)? A
/// compressed file that is not a tar inside is copied as a file, as
/// Docker does.
fn is_archive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut head = [0u8; 512];
    let n = nix::sys::uio::pread(fd, &mut head, 0).map_err(io::Error::from)?;
    let h = &head[..n];
    if n >= 262 && &h[257..262] == b"ustar" {
        return Ok(true);
    }
    if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(true); // xz: checked when extracted
    }
    let compressed = h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || h.starts_with(b"BZh");
    if !compressed {
        return Ok(false);
    }
    // Look at the first block once decompressed.
    let dup = fd.try_clone_to_owned()?;
    let Ok(mut r) = archive_reader(std::fs::File::from(dup), store::layer::Limits::default())
    else {
        return Ok(false);
    };
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(_) => break,
        }
    }
    drop(r);
    // The dup shares the file offset: back to the start for the copy.
    nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekSet).map_err(io::Error::from)?;
    Ok(got >= 262 && &block[257..262] == b"ustar")
}

/// Counts what goes through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write the layer of a COPY/ADD as a tar stream to `out`; returns the
/// bytes written (1024, the end marker alone, when there were no entries).
pub fn write_layer(root: BorrowedFd<'_>, plan: &Plan, out: impl Write) -> io::Result<u64> {
    write_layer_with(root, plan, out, None)
}

/// [`write_layer`], large files by reference through `direct` (for an
/// unpacker in this process).
pub fn write_layer_with(
    root: BorrowedFd<'_>,
    plan: &Plan,
    out: impl Write,
    direct: Option<&Direct>,
) -> io::Result<u64> {
    let mut w = Writer {
        b: tar::Builder::new(Counting {
            inner: out,
            bytes: 0,
        }),
        plan,
        direct,
    };
    w.b.mode(tar::HeaderMode::Deterministic);
    for (p, a) in &plan.existing_dirs {
        let mut h = w.header(Kind::Dir, a.mode);
        h.set_mode(a.mode);
        h.set_uid(a.uid as u64);
        h.set_gid(a.gid as u64);
        w.b.append_data(&mut h, format!("{p}/"), io::empty())?;
    }
    for p in &plan.missing_parents {
        let mut h = w.header(Kind::Dir, 0o755);
        // Created parents belong to root, whatever --chown says.
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o755);
        w.b.append_data(&mut h, format!("{p}/"), io::empty())?;
    }
    let dest = plan.dest.trim_start_matches('/').to_string();
    let dir_source = plan.sources.iter().any(|s| match s {
        Source::Path(rel) => open_source(root, rel)
            .map(|(_, _, st)| fsops::kind_of(&st) == Kind::Dir)
            .unwrap_or(false),
        Source::Inline { .. } => false,
    });
    if (plan.dest_is_dir || dir_source) && !dest.is_empty() && !plan.dest_exists {
        w.created_dir(&dest)?;
    }
    for s in &plan.sources {
        match s {
            Source::Inline { name, data, mode } => {
                let out = if plan.dest_is_dir {
                    join(&dest, name)
                } else {
                    dest.clone()
                };
                w.file(&out, *mode, data.len() as u64, &data[..])?;
            }
            Source::Path(rel) => {
                let (dir, name, st) = open_source(root, rel)?;
                let kind = fsops::kind_of(&st);
                let base = Path::new(rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let out = match kind {
                    // --parents: the source's own path, under the destination.
                    _ if plan.parents => {
                        let mut prefix = String::new();
                        // Its parent dirs, as directories of the layer.
                        if let Some(parent) = Path::new(rel).parent() {
                            for c in parent.components() {
                                prefix = join(&prefix, &c.as_os_str().to_string_lossy());
                                w.dir(&join(&dest, &prefix), 0o755)?;
                            }
                        }
                        join(&dest, rel)
                    }
                    // A directory's contents go into the destination.
                    Kind::Dir => dest.clone(),
                    _ if plan.dest_is_dir => join(&dest, &base),
                    _ => dest.clone(),
                };
                if kind == Kind::Dir && out.is_empty() {
                    // Into the root: its entries, not the root itself.
                    w.entry(dir.as_fd(), &name, &st, rel, "")?;
                } else {
                    w.entry(dir.as_fd(), &name, &st, rel, &out)?;
                }
            }
        }
    }
    let mut c = w.b.into_inner()?;
    c.flush()?;
    Ok(c.bytes)
}

/// Owner and mode of a directory found in the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirAttrs {
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The attributes of `path` (absolute) in the union of `layers` (top
/// first) when it is a directory there (the topmost copy decides, as in the
/// merged view).
pub fn lookup_dir(layers_top_first: &[PathBuf], path: &str) -> Option<DirAttrs> {
    use std::os::unix::fs::MetadataExt;
    if lookup(layers_top_first, path) != Some(true) {
        return None;
    }
    let rel = clean(path);
    layers_top_first.iter().find_map(|l| {
        let m = std::fs::symlink_metadata(l.join(&rel)).ok()?;
        m.is_dir().then(|| DirAttrs {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })
    })
}

/// Is `path` (absolute) present in the union of `layers` (top first),
/// and is it a directory? Whiteouts and opaque directories are honoured.
/// Each component is looked at without following it: a symlink on the way
/// (whatever it points at) counts as "there, not a directory", so nothing
/// on the host is ever looked at through one.
pub fn lookup(layers_top_first: &[PathBuf], path: &str) -> Option<bool> {
    use std::os::unix::fs::FileTypeExt;
    let rel = clean(path);
    if rel.is_empty() {
        return Some(true);
    }
    let comps: Vec<&str> = rel.split('/').collect();
    for layer in layers_top_first {
        let mut cur = layer.clone();
        let mut opaque_above = false;
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            let Ok(m) = std::fs::symlink_metadata(&cur) else {
                if opaque_above {
                    // An opaque dir hides what the lower layers have.
                    return None;
                }
                break;
            };
            if m.file_type().is_char_device() && std::os::unix::fs::MetadataExt::rdev(&m) == 0 {
                return None; // a whiteout
            }
            if i + 1 == comps.len() {
                return Some(m.is_dir());
            }
            if !m.is_dir() {
                // A file or a symlink in the way.
                return Some(false);
            }
            if xattr_opaque(&cur) {
                opaque_above = true;
            }
        }
    }
    None
}

fn xattr_opaque(p: &Path) -> bool {
    std::fs::File::open(p)
        .ok()
        .map(|f| store::fsops::is_opaque(f.as_fd()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::Chmod;

    #[test]
    fn chmod_forms() {
        let c = |s: &str| Chmod::parse(s).unwrap();
        assert_eq!(c("0640").apply(0o777, false), 0o640);
        assert_eq!(c("u+x,go-w").apply(0o666, false), 0o744);
        assert_eq!(c("a=r").apply(0o755, false), 0o444);
        assert_eq!(c("a+X").apply(0o644, true), 0o755);
        assert_eq!(c("a+X").apply(0o644, false), 0o644);
        assert_eq!(c("a+X").apply(0o744, false), 0o755);
        assert_eq!(c("+x").apply(0o600, false), 0o711);
        for bad in ["9999", "u*x", "q+r", "u+z", "77777"] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
    }
}
