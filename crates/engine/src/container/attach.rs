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
        let sock = UnixStream::connect(self.attach_socket(c.id()))
            .map_err(|e| EngineError::io(format!("attaching to {}", c.name()), e))?;
        sys::socket::send_with_fd(sock.as_fd(), &[u8::from(stdin)], terminal)
            .map_err(|e| EngineError::io(format!("attaching to {}", c.name()), e))?;
        Ok(sock)
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
