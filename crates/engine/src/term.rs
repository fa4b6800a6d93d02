//! Terminal and process helpers a front end needs around the engine's
//! operations: the window size of a terminal (to copy onto a container's
//! pty), a plain fork (for a progress renderer drawing in its own process,
//! or the API server's fork server) and passing fds over Unix sockets.
//! Front ends take them from here rather than from `sys`.

pub use sys::process::{
    close_all_but, exit_now, fork, limit_malloc_arenas, trim_heap, unmap_own_code, Forked,
};
pub use sys::socket::{recv_with_fd, send_with_fd, unread_bytes};
pub use sys::tty::{get_winsize, set_winsize, WinSize};

use std::os::fd::{AsFd, OwnedFd};

/// Wait for child `pid`; its exit code as a shell gives it (128 + signal).
pub fn wait_child(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 125,
        }
    }
}

/// Put /dev/null on fds 0, 1 and 2 (our copies of pipes a child also
/// holds go, so their readers see the child's EOF).
pub fn close_stdio() {
    crate::monitor::devnull_onto(&[0, 1, 2]);
}

/// Copy our stdin (with `stdin`) to a pty master and the master to our
/// stdout until the pty's other side is closed by everyone (EIO). With
/// `follow_winch`, each SIGWINCH copies our terminal's size onto the pty.
pub fn pump_pty(master: OwnedFd, stdin: bool, follow_winch: bool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let input = std::io::stdin();
    let output = std::io::stdout();
    let mut buf = [0u8; 16384];
    let mut stdin_open = stdin;
    let sfd = follow_winch.then(|| {
        let mut winch = nix::sys::signal::SigSet::empty();
        winch.add(nix::sys::signal::Signal::SIGWINCH);
        winch
            .thread_block()
            .ok()
            .and_then(|_| nix::sys::signalfd::SignalFd::new(&winch).ok())
    });
    let sfd = sfd.flatten();
    let sync = |m: &OwnedFd| {
        if let Ok(ws) = get_winsize(input.as_fd()) {
            let _ = set_winsize(m.as_fd(), ws);
        }
    };
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let m = ready[0];
        let w = sfd.is_some() && ready[1];
        let i = stdin_open
            && ready
                .get(1 + usize::from(sfd.is_some()))
                .copied()
                .unwrap_or(false);
        if w {
            if let Some(s) = &sfd {
                let _ = s.read_signal();
            }
            sync(&master);
        }
        if m {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let _ = nix::unistd::write(output.as_fd(), &buf[..n]);
                }
            }
        }
        if i {
            match nix::unistd::read(input.as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = nix::unistd::write(master.as_fd(), &buf[..n]);
                }
            }
        }
    }
}
