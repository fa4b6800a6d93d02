//! `/dev/shm` of a container whose IPC others may join (`--ipc shareable`,
//! and a pod's infra), as dockerd makes it: a tmpfs on the host at
//! `<container dir>/shm`, bound at the container's `/dev/shm`, which a
//! container joining its IPC namespace (`--ipc container:`, a pod's
//! members) binds as well — so POSIX shared memory is shared with the
//! SysV objects. (A mount in the donor's own namespace cannot be bound
//! into another: the kernel clones only mounts of the caller's
//! namespace.) Mounted by the monitor before the container starts,
//! unmounted when it ends or is removed; a crash's leftover is a stray
//! mount for `system check --repair`.
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where the shareable `/dev/shm` of the container whose dir is `dir` is.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("shm")
}

/// Docker's default `--shm-size`: 64 MiB.
pub(crate) const DEFAULT_SIZE: u64 = 64 << 20;

/// Mount it (a fresh tmpfs of `size` bytes, mode 1777); one already there
/// (left by a crash) is replaced.
pub(crate) fn mount_for(dir: &Path, size: u64) -> std::io::Result<PathBuf> {
    let p = path(dir);
    unmount(dir);
    match std::fs::create_dir(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    mount(
        Some("shm"),
        &p,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={size}").as_str()),
    )?;
    Ok(p)
}

/// Whether a tmpfs is mounted at the container's shm path.
pub(crate) fn is_mounted(dir: &Path) -> bool {
    let p = path(dir);
    match (
        nix::sys::statfs::statfs(&p),
        nix::sys::stat::stat(&p),
        nix::sys::stat::stat(dir),
    ) {
        (Ok(fs), Ok(a), Ok(b)) => {
            fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC && a.st_dev != b.st_dev
        }
        _ => false,
    }
}

/// Unmount it (every layer, detached: a joiner still running keeps its
/// own bind) and remove the dir; nothing there is fine.
pub(crate) fn unmount(dir: &Path) {
    let p = path(dir);
    while is_mounted(dir) {
        if umount2(&p, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    let _ = std::fs::remove_dir(&p);
}
