//! `attach`: the client side of a monitor's attach socket, and terminal
//! sizes for `-t` containers.
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

impl Engine {
    /// Connect to `c`'s monitor as an attach client: output frames come
    /// back; with `stdin` what is written after the hello is the
    /// container's input. `terminal` (the client's tty) lets the monitor
    /// size the container's pty from it.
    pub fn attach_connect(
        &self,
        c: &Container,
        stdin: bool,
        terminal: Option<BorrowedFd<'_>>,
    ) -> Result<UnixStream> {
        let sock = sys::socket::connect_unix(&self.attach_socket(c.id()))
            .map_err(|e| EngineError::io(format!("attaching to {}", c.name()), e))?;
        match sys::socket::send_with_fd(sock.as_fd(), &[u8::from(stdin)], terminal) {
            Ok(()) => Ok(sock),
            // The monitor took us and has already finished (a short-lived
            // container): what it sent, up to the exit, is still ours to
            // read.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) => Ok(sock),
            Err(e) => Err(EngineError::io(format!("attaching to {}", c.name()), e)),
        }
    }

    /// The terminal attached to `-t` container `c` changed size: its
    /// monitor copies the new size onto the container's pty.
    pub fn resize(&self, c: &Container) {
        // As recorded now: a restart may have brought another monitor.
        let Ok(c) = self.container(c.id().as_str()) else {
            return;
        };
        if c.state.monitor_alive() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.state.monitor_pid),
                nix::sys::signal::Signal::SIGWINCH,
            );
        }
    }
}

/// Set the window size of the terminal process `pid` has as its stdin (a
/// `-t` container's init, an `exec -t` process): what the API's `resize`
/// calls do. Only a pty slave is touched: whatever else a process made
/// its stdin is left alone.
pub fn resize_process_tty(pid: i32, rows: u16, cols: u16) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let path = format!("/proc/{pid}/fd/0");
    let not_tty = || EngineError::invalid("resize", "the process has no terminal");
    let meta = std::fs::metadata(&path).map_err(|_| not_tty())?;
    // Unix98 pty slaves: majors 136–143.
    let major = nix::sys::stat::major(meta.rdev());
    if !meta.file_type().is_char_device() || !(136..=143).contains(&major) {
        return Err(not_tty());
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| EngineError::io("opening the container's terminal", e))?;
    sys::tty::set_winsize(f.as_fd(), sys::tty::WinSize { rows, cols })
        .map_err(|e| EngineError::io("resizing the container's terminal", e))
}

impl Engine {
    /// `resize` of a `-t` container: its terminal gets `rows`×`cols`.
    pub fn resize_container(&self, name_or_id: &str, rows: u16, cols: u16) -> Result<()> {
        let c = self.container(name_or_id)?;
        if !c.is_running() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not running".into(),
            });
        }
        if !c.config.tty {
            return Ok(());
        }
        resize_process_tty(c.state.pid, rows, cols)
    }
}
