//! The new mount API: bind mounts whose source is captured before
//! `pivot_root` and attached after it, when the host's tree is no longer
//! reachable by path (`open_tree`, `move_mount`); idmapped mounts
//! (`mount_setattr`) and superblocks made by one process for another to
//! attach (`fsopen`, `fsconfig`, `fsmount`), for user namespaces.
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

const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

/// `struct mount_attr` (linux/mount.h), version 0 (32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Change a detached tree from [`clone_tree`] with `mount_setattr(2)`:
/// make it (and, with `recursive`, every mount below) private, so that a
/// clone of a shared host mount does not join its peer group, and with
/// `idmap` give it the id mapping of that user namespace (an idmapped
/// mount: a file owned by host uid `h` appears owned by the id that the
/// namespace maps to `h`'s position, see `mount_setattr(2)`). The tree
/// must not have been attached yet, and its filesystem must allow
/// idmapped mounts (ext4, xfs, btrfs, tmpfs; the caller needs
/// `CAP_SYS_ADMIN` over the filesystem's user namespace).
pub fn set_tree_attrs(
    tree: BorrowedFd<'_>,
    recursive: bool,
    idmap: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: if idmap.is_some() { MOUNT_ATTR_IDMAP } else { 0 },
        attr_clr: 0,
        propagation: libc::MS_PRIVATE,
        userns_fd: idmap.map(|f| f.as_raw_fd() as u64).unwrap_or(0),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: `attr` is a live, properly laid out `struct mount_attr`
    // whose size is passed with it; the kernel only reads it and the
    // empty NUL-terminated path.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A filesystem context of the new mount API (`fsopen(2)`): options set
/// one by one with [`FsContext::set`], then [`FsContext::mount`] makes
/// the superblock and a detached mount of it. Unlike `mount(2)`'s one
/// page of options, each option is its own string, and the filesystem's
/// own words for a refusal can be read back ([`FsContext::messages`]).
pub struct FsContext {
    fd: OwnedFd,
}

impl FsContext {
    /// `fsopen(fstype, FSOPEN_CLOEXEC)`.
    pub fn open(fstype: &str) -> io::Result<FsContext> {
        let name =
            CString::new(fstype).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a valid NUL-terminated string the kernel only reads; on
        // success the result is a new fd owned by nobody else.
        let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ret is a freshly created descriptor.
        Ok(FsContext {
            fd: unsafe { OwnedFd::from_raw_fd(ret as i32) },
        })
    }

    /// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
    pub fn set(&self, key: &str, value: &str) -> io::Result<()> {
        let k = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let v = CString::new(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: both are valid NUL-terminated strings the kernel only
        // reads; the last argument must be 0 for SET_STRING.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)` then `fsmount(2)`: the detached
    /// mount (attach it with [`attach_tree`]). The superblock is made with
    /// the caller's credentials as they are now.
    pub fn mount(&self) -> io::Result<OwnedFd> {
        // SAFETY: null key and value with CMD_CREATE, as documented.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: integer arguments only; on success a new fd owned by
        // nobody else.
        let ret =
            unsafe { libc::syscall(libc::SYS_fsmount, self.fd.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: ret is a freshly created descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
    }

    /// The messages the filesystem logged on this context (why it refused
    /// an option or the mount), one per line, without their `e ` prefix.
    pub fn messages(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let line = String::from_utf8_lossy(&buf[..n]);
                    out.push(
                        line.strip_prefix("e ")
                            .or_else(|| line.strip_prefix("w "))
                            .unwrap_or(&line)
                            .trim_end()
                            .to_string(),
                    );
                }
            }
        }
        out.join("; ")
    }
}

/// Attach a detached mount tree at the directory `dest` refers to (an fd,
/// not a path: the caller may not be able to reach it by name).
pub fn attach_tree_at(tree: BorrowedFd<'_>, dest: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: empty NUL-terminated paths the kernel only reads; both fds
    // are live for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            dest.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
