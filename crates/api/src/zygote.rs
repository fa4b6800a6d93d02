//! The fork server ("zygote"): a single-threaded copy of `berth serve`
//! forked at start, before the runtime starts any thread, that forks one
//! process per engine call that must not run on the server's threads
//! (`ops.rs`). A fresh `berth __api-op` costs an exec of the whole binary
//! (loading, relocating, ~580 page faults: about 2.5 ms a call here); a
//! fork of this small process costs a fraction of that. The forked child
//! runs the same `op_main` as `berth __api-op OP`, with the same stdin and
//! stdout protocol, on a socket the server passes with the request.
//!
//! The zygote keeps nothing of the server's but stderr and its end of the
//! request socket (a `SOCK_SEQPACKET` pair: one message per request, the
//! operation's name with the child's socket attached), leads a session of
//! its own (a terminal's ctrl-C reaches the server, which stops in order,
//! not the calls under way), reaps its children through a signalfd, and
//! ends with the server: when the request socket reaches end of file, and
//! at once by `PR_SET_PDEATHSIG` if the server is killed. While no call
//! runs it keeps a spare child forked, its engine already open, for the
//! next request.
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use engine::term::{close_all_but, exit_now, fork, recv_with_fd, send_with_fd, Forked};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The server's end of the zygote.
pub(crate) struct Zygote {
    sock: OwnedFd,
}

impl Zygote {
    /// Fork the zygote. Only while the process is single-threaded (the
    /// fork refuses otherwise); `None` when it could not be started (the
    /// server then execs `berth __api-op` for each call, as before).
    pub(crate) fn start(paths: &engine::Paths) -> Option<Zygote> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .ok()?;
        let server = nix::unistd::getpid();
        match fork() {
            Ok(Forked::Child) => {
                // Closed below with every other fd but the zygote's.
                std::mem::forget(ours);
                serve_forks(theirs, paths.clone(), server)
            }
            Ok(Forked::Parent(_)) => Some(Zygote { sock: ours }),
            Err(e) => {
                eprintln!("berth serve: no fork server ({e}): each call will exec berth");
                None
            }
        }
    }

    /// A new process running `op`: the connection to it, its stdin and
    /// stdout. Fails when the zygote is gone or cannot take the request
    /// at once.
    pub(crate) fn spawn(&self, op: &str) -> std::io::Result<UnixStream> {
        let (ours, theirs) = UnixStream::pair()?;
        send_with_fd(self.sock.as_fd(), op.as_bytes(), Some(theirs.as_fd()))?;
        Ok(ours)
    }
}

/// The zygote's life: fork a child per request until the server goes.
fn serve_forks(sock: OwnedFd, paths: engine::Paths, server: nix::unistd::Pid) -> ! {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != server {
        exit_now(0);
    }
    // Listening sockets, systemd's fds: nothing of the server's but
    // stdio and the request socket may live on in the calls (or in the
    // container monitors they fork).
    if close_all_but(&[sock.as_raw_fd()]).is_err() {
        exit_now(1);
    }
    // Nor its stdin and stdout (a reader of the server's output sees its
    // end when the server ends); stderr stays, for the calls' errors.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    // Blocking requests: only this process waits on the socket.
    let _ = nix::fcntl::fcntl(
        &sock,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let _ = chld.thread_block();
    let reaper = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut buf = [0u8; 64];
    // The children running a call, and the spare waiting for one.
    let mut busy: Vec<Pid> = Vec::new();
    let mut spare: Option<Spare> = None;
    loop {
        for pid in reap() {
            busy.retain(|p| *p != pid);
            if spare.as_ref().is_some_and(|s| s.pid == pid) {
                spare = None;
            }
        }
        // A new spare once no call runs: its start would slow the one
        // under way (two cores).
        if spare.is_none() && busy.is_empty() {
            spare = Spare::fork(&paths);
        }
        let sock_ready = {
            let mut fds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
            if let Some(r) = &reaper {
                fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => exit_now(1),
            }
            fds[0].revents().is_some_and(|r| !r.is_empty())
        };
        if let Some(r) = &reaper {
            while let Ok(Some(_)) = r.read_signal() {}
        }
        if !sock_ready {
            continue;
        }
        let (n, conn) = match recv_with_fd(sock.as_fd(), &mut buf) {
            // The server closed its end: it is gone.
            Ok((0, _)) => exit_now(0),
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(_) => exit_now(1),
        };
        let Some(conn) = conn else { continue };
        // The spare takes it, else a child forked now.
        if let Some(s) = spare.take() {
            if send_with_fd(s.sock.as_fd(), &buf[..n], Some(conn.as_fd())).is_ok() {
                busy.push(s.pid);
                continue;
            }
        }
        let op = String::from_utf8_lossy(&buf[..n]).into_owned();
        match fork() {
            Ok(Forked::Child) => {
                // A child of ours as `berth __api-op OP` would be: the
                // default signal mask, the socket as stdin and stdout,
                // stderr, and nothing else.
                let _ = SigSet::empty().thread_set_mask();
                let ok = nix::unistd::dup2_stdin(&conn).is_ok()
                    && nix::unistd::dup2_stdout(&conn).is_ok()
                    && close_all_but(&[]).is_ok();
                // Closed just above.
                std::mem::forget(conn);
                std::mem::forget(sock);
                std::mem::forget(reaper);
                std::mem::forget(spare);
                if !ok {
                    exit_now(125);
                }
                let code = crate::ops::op_main(paths, &op);
                let _ = std::io::stdout().flush();
                exit_now(code)
            }
            Ok(Forked::Parent(pid)) => busy.push(Pid::from_raw(pid)),
            // The server sees the connection end without an answer.
            Err(_) => {}
        }
        drop(conn);
    }
}

/// A child forked ahead of the next call, with its engine open and its
/// store's schema read (what a call's process otherwise does first, most
/// of it faulting in SQLite's code): the zygote hands it the next
/// request.
struct Spare {
    pid: Pid,
    /// The zygote's end of the spare's socket.
    sock: OwnedFd,
}

impl Spare {
    /// Fork a spare (in the child, this never returns).
    fn fork(paths: &engine::Paths) -> Option<Spare> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ok()?;
        match fork() {
            Ok(Forked::Child) => {
                // Closed below with every other fd but the spare's.
                std::mem::forget(ours);
                spare_main(theirs, paths.clone())
            }
            Ok(Forked::Parent(pid)) => Some(Spare {
                pid: Pid::from_raw(pid),
                sock: ours,
            }),
            Err(_) => None,
        }
    }
}

/// The spare's life: open the engine, wait for the call, run it.
fn spare_main(sock: OwnedFd, paths: engine::Paths) -> ! {
    let _ = SigSet::empty().thread_set_mask();
    if close_all_but(&[sock.as_raw_fd()]).is_err() {
        exit_now(1);
    }
    let engine = engine::Engine::open(paths);
    if let Ok(e) = &engine {
        let _ = e.warm();
    }
    let mut buf = [0u8; 64];
    let (n, conn) = loop {
        match recv_with_fd(sock.as_fd(), &mut buf) {
            Ok((n, Some(conn))) if n > 0 => break (n, conn),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The zygote is gone (end of file).
            _ => exit_now(0),
        }
    };
    drop(sock);
    let op = String::from_utf8_lossy(&buf[..n]).into_owned();
    if nix::unistd::dup2_stdin(&conn).is_err() || nix::unistd::dup2_stdout(&conn).is_err() {
        exit_now(125);
    }
    drop(conn);
    let code = crate::ops::answer_op(engine, &op);
    let _ = std::io::stdout().flush();
    exit_now(code)
}

/// Collect the children that have ended; their pids.
fn reap() -> Vec<Pid> {
    let mut gone = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return gone,
            Ok(s) => gone.extend(s.pid()),
        }
    }
}
