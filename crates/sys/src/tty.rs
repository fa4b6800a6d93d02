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
