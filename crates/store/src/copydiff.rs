//! What a copied root (the `vfs` storage driver) changed in its image, and
//! those changes as a layer tar: `diff`, `commit` and a build's RUN steps
//! on such a container.
//!
//! A copy keeps no record of its changes, so — as containers/storage's
//! vfs driver and moby's `archive.ChangesDirs` do — the copy is walked
//! beside the image's tree and each entry's stat is compared. The image's
//! tree is read straight from its layer dirs with overlayfs' rules (the
//! top-most entry wins, a whiteout hides, an opaque or replacing directory
//! hides what is below it): nothing is mounted, so it works where
//! overlayfs cannot be mounted at all.
//!
//! An entry is changed when its type, mode, owner or device number
//! differ, or — not for directories — its size or mtime (nanoseconds):
//! `statDifferent` of ChangesDirs. A directory is also reported changed
//! when something below it changed (Docker's `C` for parents). Those
//! fields can be put back after an edit (`touch -r` on a file of the same
//! size), so where the copy's finishing time is known, an entry whose
//! ctime (set by the kernel, not choosable by a process) is not before it
//! is compared by content too: bytes, link target, xattrs. An untouched
//! entry costs one stat on each side.
use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{FileStat, Mode};

use crate::fsops::{
    is_opaque, is_whiteout, kind_of, list, open_subdir, reopen_dir, stat_at, ChangeKind, IdShift,
    Kind, LayerOpts, MAX_DEPTH,
};

fn err(what: impl std::fmt::Display, e: Errno) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {}", e.desc()))
}

/// How a copy is compared with its image.
#[derive(Debug, Clone, Default)]
pub struct CopyDiffOpts {
    /// The copy's owners are stored shifted through a nested user
    /// namespace's maps (rootless keep-id, `--uidmap`, `auto`, `nomap`):
    /// owners are compared as the container sees them.
    pub shift: Option<IdShift>,
    /// When the copy was finished (seconds, nanoseconds; the mtime of a
    /// file written right after it): entries whose ctime is not before
    /// are compared by content too. `None`: by stat only.
    pub made: Option<(i64, i64)>,
}

/// A directory of the image as its layers show it: the layer dirs that
/// make it, top first (opened for reading).
struct ImageDir {
    dirs: Vec<OwnedFd>,
}

/// One entry of the image: its stat, the layer dir holding it, and for a
/// directory the layer dirs that make it.
struct ImageEntry {
    st: FileStat,
    holder: usize,
    sub: Option<ImageDir>,
}

impl ImageDir {
    /// Every name any of its layer dirs has (whiteouts and hidden ones
    /// too: [`ImageDir::lookup`] decides).
    fn names(&self) -> io::Result<BTreeSet<OsString>> {
        let mut out = BTreeSet::new();
        for d in &self.dirs {
            out.extend(list(d.as_fd()).map_err(|e| err("listing a layer directory", e))?);
        }
        Ok(out)
    }

    /// `name` as overlayfs would show it in this directory.
    fn lookup(&self, name: &OsStr) -> io::Result<Option<ImageEntry>> {
        let shown = || Path::new(name).display().to_string();
        for (i, d) in self.dirs.iter().enumerate() {
            let st = match stat_at(d.as_fd(), name) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(err(shown(), e)),
            };
            if is_whiteout(&st) {
                return Ok(None);
            }
            if kind_of(&st) != Kind::Dir {
                return Ok(Some(ImageEntry {
                    st,
                    holder: i,
                    sub: None,
                }));
            }
            let top = open_subdir(d.as_fd(), name).map_err(|e| err(shown(), e))?;
            let mut opaque = is_opaque(top.as_fd());
            let mut dirs = vec![top];
            for lower in &self.dirs[i + 1..] {
                if opaque {
                    break;
                }
                match stat_at(lower.as_fd(), name) {
                    Ok(l) if kind_of(&l) == Kind::Dir => {
                        let sub = open_subdir(lower.as_fd(), name).map_err(|e| err(shown(), e))?;
                        opaque = is_opaque(sub.as_fd());
                        dirs.push(sub);
                    }
                    // A whiteout or a non-directory below ends the merge.
                    Ok(_) => break,
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(err(shown(), e)),
                }
            }
            return Ok(Some(ImageEntry {
                st,
                holder: i,
                sub: Some(ImageDir { dirs }),
            }));
        }
        Ok(None)
    }
}

/// The changes the copy `copy` makes to the image made of the layer dirs
/// `layers` (base first), sorted by path, as `docker diff` lists them.
pub fn copy_changes(
    copy: BorrowedFd<'_>,
    layers: &[&Path],
    opts: &CopyDiffOpts,
) -> io::Result<Vec<(PathBuf, ChangeKind)>> {
    let mut dirs = Vec::new();
    for l in layers.iter().rev() {
        let fd = crate::fsops::open_dir(l)?;
        dirs.push(reopen_dir(fd.as_fd()).map_err(|e| err(l.display(), e))?);
    }
    let image = ImageDir { dirs };
    let copy = reopen_dir(copy).map_err(|e| err("opening the copy", e))?;
    let mut out = Vec::new();
    let mut walk = Walk {
        opts,
        out: &mut out,
    };
    walk.dir(copy.as_fd(), Some(&image), &mut PathBuf::from("/"), 0)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

struct Walk<'a> {
    opts: &'a CopyDiffOpts,
    out: &'a mut Vec<(PathBuf, ChangeKind)>,
}

impl Walk<'_> {
    fn dir(
        &mut self,
        copy: BorrowedFd<'_>,
        image: Option<&ImageDir>,
        path: &mut PathBuf,
        depth: usize,
    ) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(io::Error::other(format!(
                "nested deeper than {MAX_DEPTH} directories"
            )));
        }
        let mut names: BTreeSet<OsString> = list(copy)
            .map_err(|e| err(path.display(), e))?
            .into_iter()
            .collect();
        if let Some(img) = image {
            names.extend(img.names()?);
        }
        for n in names {
            path.push(&n);
            let new = match stat_at(copy, &n) {
                Ok(st) => Some(st),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(err(path.display(), e)),
            };
            let old = match image {
                Some(img) => img.lookup(&n)?,
                None => None,
            };
            match (new, old) {
                (None, None) => {}
                (None, Some(_)) => self.out.push((path.clone(), ChangeKind::Deleted)),
                (Some(st), None) => {
                    self.out.push((path.clone(), ChangeKind::Added));
                    if kind_of(&st) == Kind::Dir {
                        let sub = open_subdir(copy, &n).map_err(|e| err(path.display(), e))?;
                        self.dir(sub.as_fd(), None, path, depth + 1)?;
                    }
                }
                (Some(st), Some(old)) => {
                    let img = image.map(|i| i.dirs[old.holder].as_fd());
                    let changed = self.stat_differs(&st, &old.st)
                        || (self.touched(&st)
                            && content_differs(copy, img.unwrap_or(copy), &n, &st)?);
                    let before = self.out.len();
                    if kind_of(&st) == Kind::Dir {
                        let sub = open_subdir(copy, &n).map_err(|e| err(path.display(), e))?;
                        // A directory over a non-directory: all of it is new.
                        self.dir(sub.as_fd(), old.sub.as_ref(), path, depth + 1)?;
                    }
                    if changed || self.out.len() > before {
                        self.out.push((path.clone(), ChangeKind::Changed));
                    }
                }
            }
            path.pop();
        }
        Ok(())
    }

    /// ChangesDirs' `statDifferent`, owners as the container sees them.
    fn stat_differs(&self, new: &FileStat, old: &FileStat) -> bool {
        let (new_owner, old_owner) = match &self.opts.shift {
            // The copy's owner mapped back, the image's as the copy
            // stored it, mapped back: an image id the maps leave out is
            // nobody on both sides.
            Some(m) => {
                let (u, g) = m.to_outer(old.st_uid, old.st_gid);
                (m.to_container(new.st_uid, new.st_gid), m.to_container(u, g))
            }
            None => ((new.st_uid, new.st_gid), (old.st_uid, old.st_gid)),
        };
        new.st_mode != old.st_mode
            || new_owner != old_owner
            || new.st_rdev != old.st_rdev
            || (kind_of(new) != Kind::Dir
                && ((new.st_mtime, new.st_mtime_nsec) != (old.st_mtime, old.st_mtime_nsec)
                    || new.st_size != old.st_size))
    }

    /// Was the entry changed (ctime) since the copy was made?
    fn touched(&self, st: &FileStat) -> bool {
        self.opts
            .made
            .is_some_and(|made| (st.st_ctime, st.st_ctime_nsec) >= made)
    }
}

/// Do the entry `name` of the copy's `copy` and of the layer dir `image`
/// (same stat) differ in content: bytes, link target, xattrs?
fn content_differs(
    copy: BorrowedFd<'_>,
    image: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
) -> io::Result<bool> {
    let shown = || Path::new(name).display().to_string();
    let open = |dir: BorrowedFd<'_>, flags: OFlag| {
        openat(
            dir,
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(shown(), e))
    };
    match kind_of(st) {
        Kind::Symlink => Ok(readlinkat(copy, name).map_err(|e| err(shown(), e))?
            != readlinkat(image, name).map_err(|e| err(shown(), e))?),
        Kind::File => {
            let a = open(copy, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            let b = open(image, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            if crate::fsops::xattrs_of(a.as_fd()) != crate::fsops::xattrs_of(b.as_fd()) {
                return Ok(true);
            }
            same_bytes(File::from(a), File::from(b)).map(|same| !same)
        }
        Kind::Dir => {
            let a = open(copy, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
            let b = open(image, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
            Ok(crate::fsops::xattrs_of(a.as_fd()) != crate::fsops::xattrs_of(b.as_fd()))
        }
        // Nodes have no content beyond their stat.
        _ => Ok(false),
    }
}

fn same_bytes(mut a: File, mut b: File) -> io::Result<bool> {
    let mut x = vec![0u8; 1 << 16];
    let mut y = vec![0u8; 1 << 16];
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Write `changes` of the copy `copy` (from [`copy_changes`]) as an OCI
/// layer: added and changed entries as they are in the copy (a changed
/// directory without its contents, an added one with all of it), deleted
/// ones as `.wh.<name>` entries; `opts`' skipped paths (and what is below
/// them) left out, times clamped, shifted owners written as the container
/// sees them.
pub fn tar_copy_changes(
    copy: BorrowedFd<'_>,
    changes: &[(PathBuf, ChangeKind)],
    opts: &LayerOpts,
    out: impl Write,
) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let root = reopen_dir(copy).map_err(|e| err("opening the copy", e))?;
    let mut links = HashMap::new();
    let mut written_tree: Option<PathBuf> = None;
    for (path, kind) in changes {
        let rel = path.strip_prefix("/").unwrap_or(path);
        if rel.as_os_str().is_empty()
            || opts.skip.iter().any(|s| rel.starts_with(s))
            || written_tree.as_ref().is_some_and(|t| rel.starts_with(t))
        {
            continue;
        }
        let Some(name) = rel.file_name() else {
            continue;
        };
        if *kind == ChangeKind::Deleted {
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_size(0);
            h.set_mtime(opts.mtime_clamp.unwrap_or(0));
            b.append_data(&mut h, rel.with_file_name(wh), io::empty())?;
            continue;
        }
        let parent = open_parent(root.as_fd(), rel)?;
        let st = stat_at(parent.as_fd(), name).map_err(|e| err(rel.display(), e))?;
        match (kind_of(&st), kind) {
            (Kind::Dir, ChangeKind::Changed) => {
                let sub = open_subdir(parent.as_fd(), name).map_err(|e| err(rel.display(), e))?;
                let how = crate::fsops::TarAs::Layer(opts);
                crate::fsops::tar_dir_header(&mut b, sub.as_fd(), &st, rel, how)?;
            }
            (k, _) => {
                crate::fsops::tar_rec_as(
                    &mut b,
                    parent.as_fd(),
                    name,
                    rel,
                    1,
                    &mut links,
                    crate::fsops::TarAs::Layer(opts),
                )?;
                if k == Kind::Dir {
                    written_tree = Some(rel.to_path_buf());
                }
            }
        }
    }
    b.into_inner()?.flush()
}

/// The directory holding `rel` in the copy, each component opened without
/// following symlinks.
fn open_parent(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    let mut cur = reopen_dir(root).map_err(|e| err("opening the copy", e))?;
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur = open_subdir(cur.as_fd(), c.as_os_str()).map_err(|e| err(parent.display(), e))?;
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsops::{flatten, open_dir, CopyOptions};

    fn made_now() -> (i64, i64) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        // The kernel's file times run on a coarse clock, behind this one.
        (t.as_secs() as i64 - 1, 0)
    }

    /// Two layers (one with a whiteout made as overlayfs' 0:0 device needs
    /// root, so a layer here has none), flattened, then changed: an added
    /// file and dir, a changed file, a deleted file and dir, a file edited
    /// with its size and mtime put back.
    #[test]
    fn a_copy_is_compared_with_its_layers() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, out) = (t.path().join("a"), t.path().join("b"), t.path().join("out"));
        for d in [&a, &b, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(a.join("etc/sub")).unwrap();
        std::fs::write(a.join("etc/keep"), "a").unwrap();
        std::fs::write(a.join("etc/over"), "a").unwrap();
        std::fs::write(a.join("etc/sub/x"), "a").unwrap();
        std::fs::write(a.join("gone"), "a").unwrap();
        std::fs::write(a.join("same"), "abc").unwrap();
        std::os::unix::fs::symlink("etc", a.join("link")).unwrap();
        std::fs::create_dir_all(b.join("etc")).unwrap();
        std::fs::write(b.join("etc/over"), "bb").unwrap();
        let fd = open_dir(&out).unwrap();
        flatten(&[&a, &b], fd.as_fd(), &CopyOptions::default()).unwrap();
        let opts = CopyDiffOpts {
            shift: None,
            made: Some(made_now()),
        };
        let layers = [a.as_path(), b.as_path()];
        assert!(copy_changes(fd.as_fd(), &layers, &opts).unwrap().is_empty());

        std::fs::write(out.join("etc/new"), "n").unwrap();
        std::fs::write(out.join("etc/over"), "ccc").unwrap();
        std::fs::remove_file(out.join("gone")).unwrap();
        std::fs::remove_dir_all(out.join("etc/sub")).unwrap();
        std::fs::create_dir_all(out.join("d/e")).unwrap();
        let before = std::fs::metadata(out.join("same")).unwrap();
        std::fs::write(out.join("same"), "xyz").unwrap();
        std::fs::File::options()
            .write(true)
            .open(out.join("same"))
            .unwrap()
            .set_modified(before.modified().unwrap())
            .unwrap();
        let got: Vec<String> = copy_changes(fd.as_fd(), &layers, &opts)
            .unwrap()
            .iter()
            .map(|(p, k)| format!("{} {}", k.letter(), p.display()))
            .collect();
        assert_eq!(
            got,
            [
                "A /d",
                "A /d/e",
                "C /etc",
                "A /etc/new",
                "C /etc/over",
                "D /etc/sub",
                "D /gone",
                "C /same"
            ]
        );
        // By stat alone the put-back edit is not seen (ChangesDirs').
        let stat_only = CopyDiffOpts::default();
        let changes = copy_changes(fd.as_fd(), &layers, &stat_only).unwrap();
        assert!(!changes.iter().any(|(p, _)| p == Path::new("/same")));

        let changes = copy_changes(fd.as_fd(), &layers, &opts).unwrap();
        let mut tar = Vec::new();
        tar_copy_changes(fd.as_fd(), &changes, &LayerOpts::default(), &mut tar).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".wh.gone",
                "d/",
                "d/e/",
                "etc/",
                "etc/.wh.sub",
                "etc/new",
                "etc/over",
                "same"
            ]
        );
    }

    /// A shifted copy's owners are compared and written as the container
    /// sees them (its outer ids mapped back); ids a map leaves out are
    /// nobody on either side.
    #[test]
    fn owners_are_compared_and_written_as_the_container_sees_them() {
        let t = tempfile::tempdir().unwrap();
        let (a, out) = (t.path().join("a"), t.path().join("out"));
        for d in [&a, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(a.join("f"), "a").unwrap();
        let fd = open_dir(&out).unwrap();
        flatten(&[&a], fd.as_fd(), &CopyOptions::default()).unwrap();
        std::fs::write(out.join("new"), "n").unwrap();
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        // A map that leaves our ids out: the image's `f` and the copy's
        // are both nobody, the same.
        let away = (u32::MAX - 10, u32::MAX - 10);
        assert!(uid < away.0 && gid < away.1);
        let leaves_out = IdShift {
            uids: vec![(away.0, away.0, 10)],
            gids: vec![(away.1, away.1, 10)],
            overflow: (65534, 65534),
        };
        // Our ids are the container's 7 and 8.
        let ours = IdShift {
            uids: vec![(7, uid, 1)],
            gids: vec![(8, gid, 1)],
            overflow: (65534, 65534),
        };
        let layers = [a.as_path()];
        let opts = CopyDiffOpts {
            shift: Some(leaves_out.clone()),
            made: Some(made_now()),
        };
        let changes = copy_changes(fd.as_fd(), &layers, &opts).unwrap();
        let got: Vec<String> = changes
            .iter()
            .map(|(p, k)| format!("{} {}", k.letter(), p.display()))
            .collect();
        assert_eq!(got, ["A /new"]);
        let owners = |m: &IdShift| {
            let mut tar = Vec::new();
            let lopts = LayerOpts {
                shift: Some(m.clone()),
                ..Default::default()
            };
            tar_copy_changes(fd.as_fd(), &changes, &lopts, &mut tar).unwrap();
            let mut a = tar::Archive::new(&tar[..]);
            let e = a.entries().unwrap().next().unwrap().unwrap();
            (e.header().uid().unwrap(), e.header().gid().unwrap())
        };
        assert_eq!(owners(&ours), (7, 8));
        assert_eq!(owners(&leaves_out), (65534, 65534));
    }

    #[test]
    fn whiteouts_and_opaque_dirs_of_the_layers_are_honoured() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, out) = (t.path().join("a"), t.path().join("b"), t.path().join("out"));
        for d in [&a, &b, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::create_dir_all(a.join("opq/old")).unwrap();
        std::fs::write(a.join("opq/old/f"), "a").unwrap();
        std::fs::write(a.join("file"), "a").unwrap();
        std::fs::create_dir(b.join("opq")).unwrap();
        std::fs::write(b.join("opq/new"), "b").unwrap();
        xattr::set(b.join("opq"), "user.overlay.opaque", b"y").unwrap();
        // A directory over a file: the file is hidden.
        std::fs::create_dir(b.join("file")).unwrap();
        std::fs::write(b.join("file/in"), "b").unwrap();
        let fd = open_dir(&out).unwrap();
        flatten(&[&a, &b], fd.as_fd(), &CopyOptions::default()).unwrap();
        let layers = [a.as_path(), b.as_path()];
        let opts = CopyDiffOpts::default();
        let changes = copy_changes(fd.as_fd(), &layers, &opts).unwrap();
        assert!(changes.is_empty(), "{changes:?}");
    }
}
