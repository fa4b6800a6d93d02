//! What the monitor does besides copying output: healthcheck probes on
//! their schedule, `--health-on-failure` actions, and the stop-then-kill
//! deadline those actions start. Driven by the monitor's poll loop through
//! [`Supervisor::fds`], [`Supervisor::timeout`] and [`Supervisor::service`].
//!
//! A probe runs in a helper process forked from the monitor: joining the
//! container (`exec`) changes the joining process's pid namespace for its
//! children and makes it non-dumpable, and the monitor must keep forking
//! into the host's namespaces (restarts). The helper execs the probe in the
//! container's namespaces and cgroup, kills it at its timeout, and reports
//! one line on a pipe: `exit N`, `timeout` or `error MESSAGE`.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::health::{HealthConfig, HealthState, HealthStatus, OnFailure, ProbeKind, ProbeResult};
use crate::Paths;

/// A probe in flight.
struct Probe {
    helper: i32,
    output: Option<OwnedFd>,
    report: Option<OwnedFd>,
    out: Vec<u8>,
    status: Vec<u8>,
    start: DateTime<Utc>,
    /// The helper kills the probe at its timeout; this is the monitor's
    /// backstop if the helper itself hangs.
    deadline: Instant,
}

/// What the container's init should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Nothing.
    None,
    /// SIGKILL now.
    Kill,
    /// The stop signal now, SIGKILL at the deadline.
    Stop,
}

/// Probes, their results and the actions they cause.
pub struct Supervisor {
    paths: Paths,
    id: model::ContainerId,
    check: Option<(HealthConfig, ProbeKind)>,
    on_failure: OnFailure,
    started: Instant,
    next_probe: Instant,
    probe: Option<Probe>,
    health: HealthState,
    /// SIGKILL the init at this time (a stop in progress).
    pub kill_at: Option<Instant>,
    /// The exit should restart the container whatever the policy says
    /// (`--health-on-failure=restart`).
    pub force_restart: bool,
    stop_timeout: Duration,
}

impl Supervisor {
    /// A supervisor for a container just started.
    pub fn new(
        paths: Paths,
        id: model::ContainerId,
        check: Option<HealthConfig>,
        on_failure: OnFailure,
        stop_timeout: Duration,
    ) -> Supervisor {
        let now = Instant::now();
        let check = check.and_then(|c| c.probe().map(|p| (c, p)));
        let first = check
            .as_ref()
            .map(|(c, _)| c.next_delay(Duration::ZERO, true))
            .unwrap_or_default();
        Supervisor {
            paths,
            id,
            check,
            on_failure,
            started: now,
            next_probe: now + first,
            probe: None,
            health: HealthState::default(),
            kill_at: None,
            force_restart: false,
            stop_timeout,
        }
    }

    /// Does this container have a healthcheck?
    pub fn has_check(&self) -> bool {
        self.check.is_some()
    }

    /// The initial health state to record at start.
    pub fn initial_health(&self) -> Option<HealthState> {
        self.check.as_ref().map(|_| HealthState::default())
    }

    /// Pipes to poll (probe output and report).
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = Vec::new();
        if let Some(p) = &self.probe {
            if let Some(o) = &p.output {
                v.push(o.as_fd());
            }
            if let Some(r) = &p.report {
                v.push(r.as_fd());
            }
        }
        v
    }

    /// How long the poll may sleep.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        let mut t: Option<Instant> = self.kill_at;
        let mut consider = |i: Instant| t = Some(t.map_or(i, |x| x.min(i)));
        if self.check.is_some() {
            match &self.probe {
                Some(p) => consider(p.deadline),
                None => consider(self.next_probe),
            }
        }
        t.map(|i| i.saturating_duration_since(now))
    }

    /// Do what is due. Returns what the init should get.
    pub fn service(&mut self, store: &store::Store, now: Instant) -> Act {
        if self.kill_at.is_some_and(|k| now >= k) {
            self.kill_at = None;
            return Act::Kill;
        }
        if self.check.is_none() {
            return Act::None;
        }
        if self.probe.is_some() {
            return match self.collect(now) {
                Some(result) => self.record(store, result),
                None => Act::None,
            };
        }
        if now >= self.next_probe {
            // A frozen container cannot answer: no probe while paused.
            let paused = store
                .container(self.id.as_str())
                .ok()
                .and_then(|r| {
                    r.state
                        .get("status")
                        .and_then(|s| s.as_str())
                        .map(|s| s == "paused")
                })
                .unwrap_or(false);
            if paused {
                self.schedule_next();
                return Act::None;
            }
            match self.launch() {
                Ok(p) => self.probe = Some(p),
                Err(message) => {
                    let t = Utc::now();
                    let result = ProbeResult {
                        start: t,
                        end: t,
                        exit_code: -1,
                        output: message,
                    };
                    return self.record(store, result);
                }
            }
        }
        Act::None
    }

    fn schedule_next(&mut self) {
        if let Some((c, _)) = &self.check {
            let now = Instant::now();
            let starting = self.health.status == HealthStatus::Starting;
            self.next_probe = now + c.next_delay(now - self.started, starting);
        }
    }

    fn in_start_period(&self) -> bool {
        self.check
            .as_ref()
            .is_some_and(|(c, _)| self.started.elapsed() < c.start_period())
    }

    fn record(&mut self, store: &store::Store, result: ProbeResult) -> Act {
        let retries = self.check.as_ref().map(|(c, _)| c.retries()).unwrap_or(3);
        let changed = self.health.record(result, self.in_start_period(), retries);
        self.schedule_next();
        let health = self.health.clone();
        let unhealthy = changed == Some(HealthStatus::Unhealthy);
        let on_failure = self.on_failure;
        let _ = crate::container::start::set_state(store, &self.id, |st| {
            st.health = Some(health);
            if unhealthy && on_failure == OnFailure::Stop {
                st.manually_stopped = true;
            }
        });
        if let Some(s) = changed {
            crate::monitor::emit_container(
                &self.paths,
                store,
                &self.id,
                &format!("health_status: {}", s.as_str()),
                &[],
            );
        }
        if !unhealthy {
            return Act::None;
        }
        match self.on_failure {
            OnFailure::None => Act::None,
            OnFailure::Kill => Act::Kill,
            OnFailure::Stop => {
                self.kill_at = Some(Instant::now() + self.stop_timeout);
                Act::Stop
            }
            OnFailure::Restart => {
                self.force_restart = true;
                self.kill_at = Some(Instant::now() + self.stop_timeout);
                Act::Stop
            }
        }
    }

    /// Read what the probe wrote; its result once the helper reported.
    fn collect(&mut self, now: Instant) -> Option<ProbeResult> {
        let p = self.probe.as_mut()?;
        let mut buf = [0u8; 4096];
        for (fd, sink) in [(&mut p.output, &mut p.out), (&mut p.report, &mut p.status)] {
            if let Some(f) = fd {
                loop {
                    match nix::unistd::read(f.as_fd(), &mut buf) {
                        Ok(0) => {
                            *fd = None;
                            break;
                        }
                        Ok(n) => {
                            if sink.len() < crate::health::MAX_OUTPUT * 2 {
                                sink.extend_from_slice(&buf[..n]);
                            }
                        }
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(nix::errno::Errno::EAGAIN) => break,
                        Err(_) => {
                            *fd = None;
                            break;
                        }
                    }
                }
            }
        }
        let reported = p.report.is_none();
        let overdue = now >= p.deadline;
        if !reported && !overdue {
            return None;
        }
        if overdue && !reported {
            let _ = nix::sys::signal::kill(Pid::from_raw(p.helper), nix::sys::signal::SIGKILL);
        }
        let _ = waitpid(Pid::from_raw(p.helper), None);
        let p = self.probe.take()?;
        let status = String::from_utf8_lossy(&p.status).trim().to_string();
        let timeout = self
            .check
            .as_ref()
            .map(|(c, _)| c.timeout())
            .unwrap_or_default();
        let (exit_code, output) = if let Some(code) = status.strip_prefix("exit ") {
            (
                code.parse().unwrap_or(-1),
                crate::health::clip_output(&p.out),
            )
        } else if let Some(msg) = status.strip_prefix("error ") {
            (-1, msg.to_string())
        } else {
            (
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    humantime_secs(timeout)
                ),
            )
        };
        Some(ProbeResult {
            start: p.start,
            end: Utc::now(),
            exit_code,
            output,
        })
    }

    fn launch(&mut self) -> Result<Probe, String> {
        let (cfg, probe) = self.check.clone().ok_or("no healthcheck")?;
        let pipe = || {
            nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
                .map_err(|e| format!("creating a pipe: {e}"))
        };
        let (out_r, out_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        let start = Utc::now();
        match sys::process::fork().map_err(|e| format!("forking the probe: {e}"))? {
            sys::process::Forked::Child => {
                drop(out_r);
                drop(rep_r);
                let line = match probe {
                    ProbeKind::Exec(cmd) => {
                        run_probe(&self.paths, &self.id, cmd, cfg.timeout(), out_w)
                    }
                    net => net_probe(&self.paths, &self.id, &net, cfg.timeout(), out_w),
                };
                let _ = nix::unistd::write(&rep_w, line.as_bytes());
                sys::process::exit_now(0)
            }
            sys::process::Forked::Parent(helper) => {
                crate::faults::point("monitor.probe-running");
                Ok(Probe {
                    helper,
                    output: Some(out_r),
                    report: Some(rep_r),
                    out: Vec::new(),
                    status: Vec::new(),
                    start,
                    deadline: Instant::now() + cfg.timeout() + Duration::from_secs(5),
                })
            }
        }
    }
}

fn humantime_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{s}s")
    }
}

/// In the helper: a TCP or HTTP probe from inside the container's network
/// namespace (the helper joins it; it is a throwaway process), to
/// 127.0.0.1:port, within the timeout. What it found goes to the probe's
/// output, as a command's would.
fn net_probe(
    paths: &Paths,
    id: &model::ContainerId,
    probe: &ProbeKind,
    timeout: Duration,
    out_w: OwnedFd,
) -> String {
    use std::io::{Read, Write};
    let _ = nix::fcntl::fcntl(&out_w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
    let mut out = std::fs::File::from(out_w);
    let engine = match crate::Engine::open(paths.clone()) {
        Ok(e) => e,
        Err(e) => return format!("error {e}"),
    };
    let pid = match engine.container(id.as_str()) {
        Ok(c) if c.state.pid > 0 => c.state.pid,
        Ok(_) => return "error the container is not running".into(),
        Err(e) => return format!("error {e}"),
    };
    let joined = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| e.to_string())
        .and_then(|ns| {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = joined {
        return format!("error joining the container's network namespace: {e}");
    }
    let port = match probe {
        ProbeKind::Tcp { port } | ProbeKind::HttpGet { port, .. } => *port,
        ProbeKind::Exec(_) => return "error not a network probe".into(),
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = timeout.max(Duration::from_millis(1));
    let mut stream = match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            let _ = write!(out, "dial tcp {addr}: {e}");
            return "exit 1".into();
        }
    };
    let ProbeKind::HttpGet { path, .. } = probe else {
        let _ = write!(out, "connected to {addr}");
        return "exit 0".into();
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: berth-probe\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        let _ = write!(out, "GET http://{addr}{path}: {e}");
        return "exit 1".into();
    }
    // The status line is all the probe needs.
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = write!(out, "GET http://{addr}{path}: {e}");
                return "exit 1".into();
            }
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let status = line
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok());
    match status {
        Some(code) => {
            let _ = write!(out, "GET http://{addr}{path}: HTTP {code}");
            if (200..400).contains(&code) {
                "exit 0".into()
            } else {
                "exit 1".into()
            }
        }
        None => {
            let _ = write!(out, "GET http://{addr}{path}: not an HTTP answer: {line:?}");
            "exit 1".into()
        }
    }
}

/// In the helper: exec the probe in the container, wait for it (SIGKILL at
/// the timeout), and say how it ended.
fn run_probe(
    paths: &Paths,
    id: &model::ContainerId,
    cmd: Vec<String>,
    timeout: Duration,
    out_w: OwnedFd,
) -> String {
    // Blocking writes for the probe (the monitor reads non-blocking).
    let _ = nix::fcntl::fcntl(&out_w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
    let engine = match crate::Engine::open(paths.clone()) {
        Ok(e) => e,
        Err(e) => return format!("error {e}"),
    };
    let devnull = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => return format!("error opening /dev/null: {e}"),
    };
    let err_w = match out_w.try_clone() {
        Ok(f) => f,
        Err(e) => return format!("error {e}"),
    };
    let req = crate::container::exec::ExecRequest {
        cmd,
        ..Default::default()
    };
    let pid = match engine.exec(id.as_str(), &req, [devnull, out_w, err_w]) {
        Ok(pid) => pid,
        Err(e) => return format!("error {}", e.to_string().replace('\n', " ")),
    };
    let exited = match sys::process::pidfd_open(pid) {
        Ok(fd) => {
            let mut fds = [nix::poll::PollFd::new(
                fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let t =
                nix::poll::PollTimeout::try_from(timeout).unwrap_or(nix::poll::PollTimeout::MAX);
            loop {
                match nix::poll::poll(&mut fds, t) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(0) => break false,
                    _ => break true,
                }
            }
        }
        Err(_) => true,
    };
    if !exited {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return "timeout".into();
    }
    match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, c)) => format!("exit {c}"),
        Ok(WaitStatus::Signaled(_, s, _)) => format!("exit {}", 128 + s as i32),
        Ok(other) => format!("error the probe ended oddly: {other:?}"),
        Err(e) => format!("error waiting for the probe: {e}"),
    }
}
