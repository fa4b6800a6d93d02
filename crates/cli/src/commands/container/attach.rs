//! `attach`.

use std::io::Write;
use std::os::fd::AsFd;

use clap::Args;
use engine::Engine;

use crate::Failure;

/// `attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Do not forward signals to the container.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Container.
    pub(crate) container: String,
}

/// `attach`: connect to the container's monitor; output from now on goes
/// to stdout/stderr, stdin to the container (unless --no-stdin), signals are
/// forwarded; exits with the container's code.
pub fn attach(engine: &Engine, a: AttachArgs) -> Result<(), Failure> {
    let c = engine.container(&a.container)?;
    if !c.is_running() {
        return Err(Failure::msg(
            125,
            format!(
                "you cannot attach to a stopped container {}: start it first",
                c.name()
            ),
        ));
    }
    let want_stdin = !a.no_stdin && c.config.open_stdin;
    let stdin_fd = std::io::stdin();
    let terminal = (c.config.tty && crate::terminal::stdin_is_tty()).then(|| stdin_fd.as_fd());
    let mut sock = engine
        .attach_connect(&c, want_stdin, terminal)
        .map_err(|e| Failure::msg(125, e.to_string()))?;
    let _raw = (want_stdin && c.config.tty && crate::terminal::stdin_is_tty())
        .then(crate::terminal::RawMode::enable);
    let set = {
        let mut set = nix::sys::signal::SigSet::empty();
        if a.sig_proxy {
            for s in [
                nix::sys::signal::Signal::SIGINT,
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::Signal::SIGHUP,
                nix::sys::signal::Signal::SIGQUIT,
                nix::sys::signal::Signal::SIGUSR1,
                nix::sys::signal::Signal::SIGUSR2,
            ] {
                set.add(s);
            }
        }
        if c.config.tty {
            set.add(nix::sys::signal::Signal::SIGWINCH);
        }
        set
    };
    let _ = set.thread_block();
    let sfd = nix::sys::signalfd::SignalFd::new(&set).ok();
    let stdin = std::io::stdin();
    let mut stdin_open = want_stdin;
    let mut inbuf = [0u8; 16384];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let r: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if r[0] {
            let n = std::io::Read::read(&mut sock, &mut inbuf)?;
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&inbuf[..n]);
            while pending.len() >= 5 {
                let len =
                    u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                if pending.len() < 5 + len {
                    break;
                }
                let kind = pending[0];
                let data: Vec<u8> = pending[5..5 + len].to_vec();
                pending.drain(..5 + len);
                match kind {
                    1 => {
                        let _ = std::io::stdout().write_all(&data);
                        let _ = std::io::stdout().flush();
                    }
                    2 => {
                        let _ = std::io::stderr().write_all(&data);
                    }
                    _ => {
                        let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(Failure::silent(code))
                        };
                    }
                }
            }
        }
        if sfd.is_some() && r.get(1).copied().unwrap_or(false) {
            if let Some(Ok(Some(info))) = sfd.as_ref().map(|s| s.read_signal()) {
                if info.ssi_signo as i32 == libc::SIGWINCH {
                    engine.resize(&c);
                } else {
                    let _ = engine.kill(c.id().as_str(), model::Signal(info.ssi_signo as i32));
                }
            }
        }
        let stdin_idx = if sfd.is_some() { 2 } else { 1 };
        if stdin_open && r.get(stdin_idx).copied().unwrap_or(false) {
            match nix::unistd::read(stdin.as_fd(), &mut inbuf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = sock.shutdown(std::net::Shutdown::Write);
                }
                Ok(n) => sock.write_all(&inbuf[..n])?,
            }
        }
    }
    let code = engine
        .container(c.id().as_str())
        .map(|c| c.state.exit_code)
        .unwrap_or(0);
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}
