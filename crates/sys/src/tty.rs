//! Terminal ioctls for containers started with `-t`.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Make `fd` (a pty slave) the controlling terminal of the calling session
/// leader (`TIOCSCTTY`).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument and touches no memory.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Read the window size of a terminal (`TIOCGWINSZ`).
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<WinSize> {
    // SAFETY: `ws` is a valid, writable winsize for the kernel to fill.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(WinSize {
            rows: ws.ws_row,
            cols: ws.ws_col,
        })
    }
}

/// Set the window size of a terminal (`TIOCSWINSZ`), which sends SIGWINCH
/// to its foreground process group.
pub fn set_winsize(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize that the kernel only reads.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Allocate a pty from the devpts instance of another mount tree (a
/// container's, through `/proc/PID/root`): `dev/pts/ptmx` is resolved with
/// `RESOLVE_IN_ROOT`, so the container's symlinks cannot point it at host
/// files. Returns (master, slave).
pub fn open_pty_in(
    root: BorrowedFd<'_>,
) -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::FromRawFd;
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let master = openat2(root, "dev/pts/ptmx", how).map_err(io::Error::from)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCGPTPEER takes open flags as its argument and returns a new
    // fd for the slave side, which we then own.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `slave` is a fresh descriptor returned by the kernel.
    Ok((master, unsafe { std::os::fd::OwnedFd::from_raw_fd(slave) }))
}

/// The number N of a pty master's slave, `/dev/pts/N` (`TIOCGPTN`).
pub fn pty_number(master: BorrowedFd<'_>) -> io::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}
