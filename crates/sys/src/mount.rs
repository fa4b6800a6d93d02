//! The new mount API (`open_tree`, `move_mount`): bind mounts whose source
//! is captured before `pivot_root` and attached after it, when the host's
//! tree is no longer reachable by path.
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A detached copy of the mount at (and below, with `recursive`) the file
/// `fd` refers to: `open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH)`.
pub fn clone_tree(fd: BorrowedFd<'_>, recursive: bool) -> io::Result<OwnedFd> {
    let mut flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: the path is a valid NUL-terminated empty string; the kernel
    // only reads it. On success the result is a new fd owned by nobody else.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ret is a freshly created descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Attach a detached mount tree (from [`clone_tree`]) at `dest`.
pub fn attach_tree(tree: BorrowedFd<'_>, dest: &Path) -> io::Result<()> {
    let dest = CString::new(dest.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are valid NUL-terminated C strings the kernel
    // only reads; no memory is written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dest.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
