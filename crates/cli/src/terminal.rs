//! The CLI side of an attached container: raw terminal mode, signal
//! forwarding (Docker's sig-proxy), window-size propagation.
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Puts a terminal into raw mode and restores it when dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw mode on stdin if it is a terminal (no-op otherwise).
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, orig);
        }
    }
}

/// Ask for a secret on the controlling terminal (`/dev/tty`) with echo
/// off, as cosign asks for a key's password; the prompt goes to stderr.
pub fn read_secret(prompt: &str) -> std::io::Result<String> {
    use nix::sys::termios::LocalFlags;
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(tty.as_fd()).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(tty.as_fd(), SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(tty.as_fd(), SetArg::TCSANOW, &saved);
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Is fd 0 a terminal?
pub fn stdin_is_tty() -> bool {
    tcgetattr(std::io::stdin().as_fd()).is_ok()
}

/// Copy the terminal size of stdin onto a pty master (`exec -t`, whose
/// pty the CLI holds).
pub fn sync_winsize(master: BorrowedFd<'_>) {
    if let Ok(ws) = engine::term::get_winsize(std::io::stdin().as_fd()) {
        let _ = engine::term::set_winsize(master, ws);
    }
}

/// Signals forwarded to the container while attached.
fn proxied() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    set
}

/// Wait until `done` is readable, forwarding signals to `pid` meanwhile;
/// a window size change calls `resized` (the container's monitor resizes
/// its pty).
pub fn proxy_until(done: BorrowedFd<'_>, pid: i32, resized: &dyn Fn()) {
    let set = proxied();
    if set.thread_block().is_err() {
        return;
    }
    let sfd = SignalFd::new(&set).ok();
    loop {
        let mut fds = vec![PollFd::new(done, PollFlags::POLLIN)];
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let done_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let sig_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if sig_ready {
            if let Some(Ok(Some(info))) = sfd.as_ref().map(|s| s.read_signal()) {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGWINCH {
                    resized();
                } else if let Ok(sig) = Signal::try_from(signo) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                }
            }
        }
        if done_ready {
            break;
        }
    }
    let _ = set.thread_unblock();
}

/// SIGINT/SIGTERM, read from a signalfd while they are blocked.
pub struct Interrupts {
    fd: Option<SignalFd>,
    set: SigSet,
}

impl Interrupts {
    pub fn catch() -> Interrupts {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        let fd = set
            .thread_block()
            .ok()
            .and_then(|_| SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK).ok());
        Interrupts { fd, set }
    }

    /// Wait up to `timeout` for a signal; whether one came.
    pub fn wait(&self, timeout: Duration) -> bool {
        let Some(fd) = &self.fd else {
            std::thread::sleep(timeout);
            return false;
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0 {
            return matches!(fd.read_signal(), Ok(Some(_)));
        }
        false
    }

    pub fn pending(&self) -> bool {
        self.fd
            .as_ref()
            .is_some_and(|fd| matches!(fd.read_signal(), Ok(Some(_))))
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let _ = self.set.thread_unblock();
    }
}
