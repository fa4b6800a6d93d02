//! systemd socket activation (`sd_listen_fds(3)`): the listening sockets a
//! service manager opened for us and passed as fds 3, 4, … with
//! `LISTEN_PID` (who they are for) and `LISTEN_FDS` (how many) in the
//! environment.
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The first passed fd (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Set once the passed fds have been taken: they have one owner.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Take the sockets passed to this process by socket activation, marked
/// close-on-exec so that no container or child inherits them, and remove
/// `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the environment (as
/// `sd_listen_fds(1)`), so children do not think the fds are theirs.
///
/// Empty when nothing was passed or the variables name another process
/// (`LISTEN_PID` is not ours: a parent's leftover). A second call returns
/// nothing: the fds were handed out by the first. Call it before starting
/// threads: it changes the environment.
pub fn listen_fds() -> io::Result<Vec<OwnedFd>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    let pid: u32 = pid
        .trim()
        .parse()
        .map_err(|_| io::Error::other(format!("LISTEN_PID={pid}: not a process id")))?;
    if pid != std::process::id() {
        return Ok(Vec::new());
    }
    let n: RawFd = count
        .trim()
        .parse()
        .ok()
        .filter(|n| (0..=4096).contains(n))
        .ok_or_else(|| io::Error::other(format!("LISTEN_FDS={count}: not a count of fds")))?;
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut fds = Vec::with_capacity(n as usize);
    for fd in LISTEN_FDS_START..LISTEN_FDS_START + n {
        // SAFETY: fcntl on an integer fd touches no memory; F_GETFD only
        // tells whether the fd is open (EBADF otherwise).
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(io::Error::other(format!(
                "LISTEN_FDS={n}: fd {fd} is not open: {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: as above, on an fd just seen open; only its flags change.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is open (checked above) and, by the socket activation
        // protocol, passed to this process (LISTEN_PID is ours) for its
        // listener; nothing else in berth refers to fds 3.. by number, and
        // TAKEN makes this the only place that ever wraps them, once: the
        // OwnedFd is the fd's single owner and closes it.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(fds)
}
