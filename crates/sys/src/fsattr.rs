//! Inode flags (`chattr`): the ext4 "top of directory hierarchy" hint.
use std::fs::File;
use std::os::fd::AsRawFd;

const FS_TOPDIR_FL: libc::c_long = 0x0002_0000;

nix::ioctl_read!(fs_ioc_getflags, b'f', 1, libc::c_long);
nix::ioctl_write_ptr!(fs_ioc_setflags, b'f', 2, libc::c_long);

/// Mark `dir` as the top of a directory hierarchy (`chattr +T`): ext4's
/// Orlov allocator then spreads its subdirectories over block groups
/// instead of packing them beside it. Errors where the filesystem has no
/// such flag (tmpfs, overlayfs, xfs).
pub fn set_topdir(dir: &File) -> std::io::Result<()> {
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes the flags (an int, within our long)
    // to the pointer, which is valid for the call.
    unsafe { fs_ioc_getflags(dir.as_raw_fd(), &mut flags) }?;
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads the flags from the pointer, valid
    // for the call.
    unsafe { fs_ioc_setflags(dir.as_raw_fd(), &flags) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topdir_flag_is_set_where_supported() {
        let d = tempfile::tempdir_in("/var/tmp").unwrap();
        let f = File::open(d.path()).unwrap();
        match set_topdir(&f) {
            Ok(()) => {
                let mut flags: libc::c_long = 0;
                // SAFETY: as in set_topdir.
                unsafe { fs_ioc_getflags(f.as_raw_fd(), &mut flags) }.unwrap();
                assert_ne!(flags & FS_TOPDIR_FL, 0);
                // Idempotent.
                set_topdir(&f).unwrap();
            }
            // Not ext-like here (tmpfs, overlayfs): nothing to check.
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)
                ),
                "{e}"
            ),
        }
    }
}
