//! Resolving a directory path inside the layer as if the layer dir were
//! `/`: symlinks are followed, an absolute target starts again at the
//! layer root, `..` never climbs above it (`RESOLVE_IN_ROOT` semantics,
//! which Docker and containerd emulate for layers too).
//!
//! The kernel does it in one `openat2(2)` call (Linux 5.6). Where that is
//! missing (older kernels, or a seccomp profile that does not know it) the
//! same walk is done here one component at a time with `openat(O_NOFOLLOW)`
//! and `readlinkat`. The walk is race-free only because nothing else
//! changes the layer dir while it is unpacked; it is not a general
//! replacement for `openat2` (it does not guard against concurrent renames).
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// `RESOLVE_IN_ROOT` lookups fail with EAGAIN when a rename happened
/// anywhere on the system during a `..` walk; they are retried.
const MAX_EAGAIN_RETRIES: usize = 128;

/// As the kernel's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// Set once `openat2` answered ENOSYS: every later lookup walks.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Open the directory `path` below `root` (an `O_PATH` fd), resolving
/// symlinks and `..` as if `root` were `/`.
pub(crate) fn in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_in_root(root, path) {
            Err(Errno::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // What a seccomp profile that predates openat2 may answer.
            Err(Errno::EPERM) => {}
            r => return r,
        }
    }
    walk_in_root(root, path)
}

fn openat2_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut tries = 0;
    loop {
        match openat2(root, path, how) {
            Err(Errno::EAGAIN) if tries < MAX_EAGAIN_RETRIES => tries += 1,
            r => return r,
        }
    }
}

/// Open `name` in `dir` if it is a directory, without following it:
/// ELOOP if it is a symlink, ENOTDIR if it is something else.
pub(crate) fn open_plain_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    match openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Err(Errno::ENOTDIR) if is_symlink(dir, name) => Err(Errno::ELOOP),
        r => r,
    }
}

fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

/// [`in_root`] without `openat2`.
fn walk_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path.as_os_str().as_bytes());
    // The directories walked so far below the root.
    let mut walked: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                walked.pop();
                continue;
            }
            _ => {}
        }
        let cur = walked.last().map_or(root, |fd| fd.as_fd());
        match open_plain_dir(cur, &c) {
            Ok(fd) => walked.push(fd),
            Err(Errno::ELOOP) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = readlinkat(cur, c.as_os_str())?;
                if target.as_bytes().starts_with(b"/") {
                    walked.clear();
                }
                push_components(&mut pending, target.as_bytes());
            }
            Err(e) => return Err(e),
        }
    }
    match walked.pop() {
        Some(fd) => Ok(fd),
        None => root
            .try_clone_to_owned()
            .map_err(|e| e.raw_os_error().map_or(Errno::EBADF, Errno::from_raw)),
    }
}

/// Put the components of `path` on `pending` so that the first is popped
/// first.
fn push_components(pending: &mut Vec<OsString>, path: &[u8]) {
    for c in path.split(|b| *b == b'/').rev() {
        if !c.is_empty() {
            pending.push(OsStr::from_bytes(c).to_os_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn id(fd: &OwnedFd) -> (u64, u64) {
        let st = nix::sys::stat::fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    }

    /// The walk gives what openat2(RESOLVE_IN_ROOT) gives, dir for dir and
    /// errno for errno.
    #[test]
    fn the_walk_resolves_as_the_kernel_does() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir_all(r.join("a/b/c")).unwrap();
        std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
        std::fs::write(r.join("f"), b"").unwrap();
        for (name, target) in [
            ("l1", "a"),
            ("l2", "/a/b"),
            ("l3", "../../../a"),
            ("l4", "l4"),
            ("l5", "missing"),
            ("l6", "f"),
            ("l7", "a/../a/b/../.."),
            ("l8", "/"),
            ("a/up", "../.."),
            ("a/b/abs", "/a/b/c"),
            ("host", tmp.path().join("outside").to_str().unwrap()),
            ("chain1", "chain2/.."),
            ("chain2", "l2/c"),
        ] {
            symlink(target, r.join(name)).unwrap();
        }
        let root = openat(
            nix::fcntl::AT_FDCWD,
            &r,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        for p in [
            ".",
            "a",
            "a/b/c",
            "/a/b",
            "..",
            "../../a",
            "l1",
            "l1/b",
            "l2",
            "l2/c",
            "l3",
            "l3/b",
            "l4",
            "l5",
            "l6",
            "f",
            "f/x",
            "l7",
            "l8",
            "l8/l8/a",
            "a/up",
            "a/up/a/b",
            "a/b/abs",
            "a/b/abs/..",
            "host",
            "chain1",
            "chain2",
            "a/b/../../..",
            "missing/..",
            "l2/../../..",
        ] {
            let kernel = openat2_in_root(root.as_fd(), Path::new(p));
            let walk = walk_in_root(root.as_fd(), Path::new(p));
            match (&kernel, &walk) {
                (Ok(k), Ok(w)) => assert_eq!(id(k), id(w), "{p}"),
                (Err(k), Err(w)) => assert_eq!(k, w, "{p}"),
                _ => panic!("{p}: kernel {kernel:?}, walk {walk:?}"),
            }
        }
    }
}
