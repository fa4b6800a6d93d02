//! `stop`, `kill`, `wait`, `rm`, `rename`, `top`: operations on existing
//! containers from any CLI process (the monitor is not our child: we use
//! pidfds to wait for it).
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use model::Signal;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::config::Status;
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

/// Wait up to `timeout` (None: forever) for `pid` to exit. True if it did.
pub(crate) fn wait_pid_exit(pid: i32, timeout: Option<Duration>) -> bool {
    if pid <= 0 {
        return true;
    }
    let Ok(fd) = sys::process::pidfd_open(pid) else {
        return true; // already gone
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let remaining = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return false;
                }
                PollTimeout::try_from(d - now).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, remaining) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

fn parse_signal(name: &str) -> Result<Signal> {
    name.parse::<Signal>()
        .map_err(|e| EngineError::invalid("signal", e.to_string()))
}

impl Engine {
    fn signal_init(&self, c: &Container, sig: Signal) -> Result<()> {
        // Never signal a pid that may have been reused by another process.
        if !c.state.is_alive() {
            return Ok(());
        }
        kill(
            Pid::from_raw(c.state.pid),
            nix::sys::signal::Signal::try_from(sig.number()).ok(),
        )
        .map_err(|e| EngineError::io(format!("sending {sig} to container {}", c.name()), e))
    }

    /// Wait until the container's monitor has recorded its exit.
    fn wait_monitor(&self, c: &Container, timeout: Option<Duration>) -> bool {
        let monitor_gone = !c.state.monitor_alive() || wait_pid_exit(c.state.monitor_pid, timeout);
        monitor_gone && wait_pid_exit(c.state.pid, Some(Duration::from_millis(100)))
    }

    /// If the monitor died without recording the exit, record it now.
    fn settle(&self, c: &Container) -> Result<()> {
        if let Ok(fresh) = self.container(c.id().as_str()) {
            if matches!(
                fresh.record.state.get("status").and_then(|s| s.as_str()),
                Some("running" | "paused")
            ) {
                let code = fresh.state.exit_code;
                self.set_state(c.id(), |st| {
                    st.status = Status::Exited;
                    st.pid = 0;
                    st.monitor_pid = 0;
                    st.exit_code = if code == 0 { 137 } else { code };
                    st.finished_at = Some(chrono::Utc::now());
                })?;
            }
        }
        Ok(())
    }

    /// The hierarchy a container's cgroup is in: rootless berth's
    /// delegated subtree where it has one (else the host's, where a
    /// rootless container has no cgroup: reads find nothing).
    pub(crate) fn container_hierarchy() -> Result<runtime::cgroup::Hierarchy> {
        match crate::rootless::cgroup_hierarchy()? {
            Some(h) => Ok(h),
            None => Ok(runtime::cgroup::Hierarchy::detect()?),
        }
    }

    pub(crate) fn cgroup_of(&self, c: &Container) -> Result<runtime::cgroup::Cgroup> {
        let h = Self::container_hierarchy()?;
        Ok(runtime::cgroup::Cgroup::open(
            &h,
            &c.config.cgroup_path(c.id().as_str()),
        ))
    }

    /// A signal sent to a paused container is delivered once it thaws: as
    /// Docker, stop/kill/rm -f thaw it after signalling.
    fn thaw_if_paused(&self, c: &Container) {
        if c.state.status == Status::Paused {
            if let Ok(cg) = self.cgroup_of(c) {
                let _ = cg.thaw();
            }
            let _ = self.set_state(c.id(), |st| {
                if st.status == Status::Paused {
                    st.status = Status::Running;
                }
            });
        }
    }

    /// `pause`: freeze every process of the container (cgroup freezer).
    pub fn pause(&self, name_or_id: &str) -> Result<Container> {
        let c = self.container(name_or_id)?;
        match c.state.status {
            Status::Running if c.state.is_alive() => {}
            Status::Paused => {
                return Err(EngineError::State {
                    name: c.id().as_str().to_string(),
                    problem: "is already paused".into(),
                })
            }
            _ => {
                return Err(EngineError::State {
                    name: c.id().as_str().to_string(),
                    problem: "is not running".into(),
                })
            }
        }
        if crate::rootless::active() && crate::rootless::cgroup_hierarchy()?.is_none() {
            return Err(EngineError::invalid(
                "pause",
                "rootless containers have no cgroup of their own here (cgroup v1, or no delegated cgroup v2 subtree; the freezer is one): they cannot be paused",
            ));
        }
        let cg = self.cgroup_of(&c)?;
        if cg.frozen().is_none() {
            return Err(EngineError::invalid(
                "pause",
                "this host has no cgroup freezer: containers cannot be paused",
            ));
        }
        cg.freeze()?;
        // v1's freezer goes FREEZING then FROZEN.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while cg.frozen() != Some(true) {
            if std::time::Instant::now() > deadline {
                let _ = cg.thaw();
                return Err(EngineError::io(
                    format!("pausing {}", c.name()),
                    std::io::Error::other("the freezer did not freeze every process within 5 s"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.set_state(c.id(), |st| {
            if st.status == Status::Running {
                st.status = Status::Paused;
            }
        })?;
        self.emit_container(&c, "pause", &[]);
        self.container(c.id().as_str())
    }

    /// `unpause`: thaw a paused container.
    pub fn unpause(&self, name_or_id: &str) -> Result<Container> {
        let c = self.container(name_or_id)?;
        if c.state.status != Status::Paused {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not paused".into(),
            });
        }
        self.cgroup_of(&c)?.thaw()?;
        self.set_state(c.id(), |st| {
            if st.status == Status::Paused {
                st.status = Status::Running;
            }
        })?;
        self.emit_container(&c, "unpause", &[]);
        self.container(c.id().as_str())
    }

    /// A user stops the container: the restart policy must not bring it
    /// back (Docker's `HasBeenManuallyStopped`). If it is waiting out its
    /// restart back-off, end that (SIGTERM to its monitor) and wait; if the
    /// monitor started it again meanwhile, the caller stops that run.
    fn stop_restarts(&self, c: Container) -> Result<Container> {
        self.set_state(c.id(), |st| st.manually_stopped = true)?;
        let mut c = self.container(c.id().as_str())?;
        for _ in 0..5 {
            if c.state.status != Status::Restarting {
                break;
            }
            if c.state.monitor_alive() {
                let _ = kill(
                    Pid::from_raw(c.state.monitor_pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                wait_pid_exit(c.state.monitor_pid, Some(Duration::from_secs(10)));
            }
            c = self.container(c.id().as_str())?;
        }
        Ok(c)
    }

    /// Bring every run of the container to an end, whatever its restart
    /// policy is doing: the user's stop is recorded first (the monitors read
    /// it before any restart, and a run a monitor had already begun kills
    /// itself when it finds it), then each run is sent `sig`, given `grace`
    /// (None: none) and killed, and its monitor waited for — until no live
    /// monitor is recorded. A monitor records the run it starts before it
    /// exits, so no run can slip between two reads.
    fn halt(&self, c: &Container, sig: Signal, grace: Option<Duration>) -> Result<()> {
        self.set_state(c.id(), |st| st.manually_stopped = true)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut signalled = 0;
        loop {
            let now = match self.container(c.id().as_str()) {
                Ok(now) => now,
                Err(EngineError::Store(store::StoreError::NotFound { .. })) => return Ok(()),
                Err(e) => return Err(e),
            };
            let st = &now.state;
            if !st.monitor_alive() && now.is_running() {
                // Its monitor was killed: the init runs on unwatched.
                // Recorded before it is sent, so it comes before the `die`.
                self.emit_container(&now, "kill", &[("signal", &sig.number().to_string())]);
                let _ = self.signal_init(&now, sig);
                self.thaw_if_paused(&now);
                if sig.number() != libc::SIGKILL {
                    if let Some(g) = grace {
                        wait_pid_exit(st.pid, Some(g));
                    }
                }
                return self.stop_unmonitored(&now);
            }
            if !st.monitor_alive() || Instant::now() > deadline {
                self.settle(&now)?;
                return Ok(());
            }
            if st.status == Status::Restarting {
                // Waiting out its back-off: SIGTERM ends it.
                let _ = kill(
                    Pid::from_raw(st.monitor_pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                wait_pid_exit(st.monitor_pid, Some(Duration::from_secs(10)));
                continue;
            }
            if st.is_alive() && signalled != st.pid {
                signalled = st.pid;
                // dockerd records each signal a stop sends as a `kill` event;
                // each is recorded before it is sent, so the monitor's `die`
                // cannot come first.
                self.emit_container(&now, "kill", &[("signal", &sig.number().to_string())]);
                let _ = self.signal_init(&now, sig);
                self.thaw_if_paused(&now);
                let graceful = sig.number() != libc::SIGKILL
                    && grace.is_some_and(|g| self.wait_monitor(&now, Some(g)));
                if !graceful {
                    if sig.number() != libc::SIGKILL {
                        self.emit_container(&now, "kill", &[("signal", "9")]);
                    }
                    self.kill_all(&now);
                }
            }
            wait_pid_exit(st.monitor_pid, Some(Duration::from_secs(10)));
        }
    }

    /// SIGKILL every process in the container's cgroups (its init first).
    /// Without a cgroup (rootless on v1), the processes of its pid
    /// namespace die with its init; those of a `--pid host` container are
    /// found by its mount namespace (see `procs`).
    fn kill_all(&self, c: &Container) {
        let cgroup = self.cgroup_of(c).ok();
        let strays = if c.state.is_alive() && cgroup.as_ref().is_none_or(|g| g.pids().is_err()) {
            super::procs::shared_pid_mount_ns(std::path::Path::new("/proc"), c.state.pid)
        } else {
            None
        }
        // Its init gone with its monitor: what it left is known by the
        // namespace the run recorded.
        .or(c.state.stray_ns);
        let _ = self.signal_init(c, Signal(libc::SIGKILL));
        if let Some(ns) = strays {
            super::procs::kill_mount_namespace(ns);
        }
        if let Some(cg) = cgroup {
            cg.signal_all(nix::sys::signal::Signal::SIGKILL);
            // A frozen process dies only once thawed.
            if cg.frozen() == Some(true) {
                let _ = cg.thaw();
            }
        }
    }

    /// End a container whose monitor is gone (killed, crashed) as its
    /// monitor would have: whatever is left in its cgroups is killed, the
    /// exit recorded (137 when it was running), its ports, leases and veths
    /// released, its cgroups and attach socket removed. Its init is not our
    /// child: it is waited for through its pid.
    pub(crate) fn stop_unmonitored(&self, c: &Container) -> Result<()> {
        if c.state.monitor_alive() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "has a live monitor: stop it with berth stop".into(),
            });
        }
        let was_running = c.is_running();
        let cg = self.cgroup_of(c).ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.kill_all(c);
            if cg.as_ref().is_none_or(|g| g.is_empty()) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if c.state.is_alive() {
            wait_pid_exit(c.state.pid, Some(Duration::from_secs(5)));
        }
        if c.state.stray_ns.is_some() {
            self.set_state(c.id(), |st| st.stray_ns = None)?;
        }
        if was_running {
            // Killed here, by SIGKILL: Docker's 137.
            self.set_state(c.id(), |st| {
                if matches!(st.status, Status::Running | Status::Paused) {
                    st.status = Status::Exited;
                    st.exit_code = 137;
                    st.pid = 0;
                    st.monitor_pid = 0;
                    st.finished_at = Some(chrono::Utc::now());
                }
            })?;
        }
        if !c.config.networks.is_empty() || crate::rootless::active() {
            crate::networks::detach(
                self.paths(),
                &self.store(),
                c.id().as_str(),
                !c.config.ports.is_empty(),
            );
        }
        if let Some(cg) = cg {
            cg.destroy()?;
        }
        crate::shm::unmount(&self.store().container_dir(c.id()));
        let _ = std::fs::remove_file(self.attach_socket(c.id()));
        if was_running {
            self.emit_container(c, "die", &[("exitCode", "137")]);
        }
        Ok(())
    }

    /// `stop`: the stop signal, then SIGKILL after the timeout.
    pub fn stop(&self, name_or_id: &str, timeout: Option<i64>) -> Result<Container> {
        let c = self.container(name_or_id)?;
        let sig = parse_signal(&c.config.stop_signal).unwrap_or(Signal(libc::SIGTERM));
        let secs = timeout.or(c.config.stop_timeout).unwrap_or(10);
        let grace = u64::try_from(secs).ok().map(Duration::from_secs);
        let was_running = c.is_running();
        self.halt(&c, sig, grace)?;
        if was_running {
            self.emit_container(&c, "stop", &[]);
        }
        self.container(c.id().as_str())
    }

    /// Record a container event (name and image as attributes).
    pub(crate) fn emit_container(&self, c: &Container, action: &str, extra: &[(&str, &str)]) {
        let attrs = crate::monitor::container_attributes(
            c.name(),
            &c.record.image_ref,
            &c.config.labels,
            extra,
        );
        self.emit("container", action, c.id().as_str(), &attrs);
    }

    /// `kill`: send a signal (default SIGKILL); does not wait. SIGKILL or
    /// the stop signal count as a user's stop for the restart policy.
    pub fn kill(&self, name_or_id: &str, sig: Signal) -> Result<Container> {
        let mut c = self.container(name_or_id)?;
        let stop_signal = parse_signal(&c.config.stop_signal).unwrap_or(Signal(libc::SIGTERM));
        if sig.number() == libc::SIGKILL || sig == stop_signal {
            c = self.stop_restarts(c)?;
        }
        if !c.is_running() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not running".into(),
            });
        }
        // Recorded before it is sent, so it comes before the `die` it may cause.
        self.emit_container(&c, "kill", &[("signal", &sig.number().to_string())]);
        self.signal_init(&c, sig)?;
        self.thaw_if_paused(&c);
        Ok(c)
    }

    /// `wait`: block until the container stops (a restart policy's exit
    /// included); its exit code.
    pub fn wait(&self, name_or_id: &str) -> Result<i32> {
        let c = self.container(name_or_id)?;
        if c.is_running() {
            // The monitor outlives an exit the restart policy acts on:
            // watch the state too.
            loop {
                if self.wait_monitor(&c, Some(Duration::from_millis(200))) {
                    self.settle(&c)?;
                    break;
                }
                match self.container(c.id().as_str()) {
                    Ok(now) if now.is_running() => continue,
                    _ => break,
                }
            }
        }
        Ok(self
            .container(c.id().as_str())
            .map(|c| c.state.exit_code)
            .unwrap_or(c.state.exit_code))
    }

    /// `rm`: remove a stopped container, or with `force` kill it first;
    /// with `volumes` its anonymous volumes too (`rm -v`). A forced removal
    /// wins over the restart policy and leaves no process in the
    /// container's cgroups, no monitor, no mount, veth, rule or lease.
    pub fn remove(&self, name_or_id: &str, force: bool, volumes: bool) -> Result<Container> {
        let c = self.container(name_or_id)?;
        // A pod's infra container goes with its pod (podman's words).
        if c.config.pod_infra && self.store().pod(&c.config.pod).is_ok() {
            return Err(EngineError::Conflict(format!(
                "container {} is the infra container of pod {} and cannot be removed without removing the pod: remove the pod with berth pod rm",
                c.id().as_str(),
                c.config.pod
            )));
        }
        self.remove_container(c, force, volumes)
    }

    /// `rm` of a decoded container, its pod membership not checked (the
    /// pod's own removal, and `remove`).
    pub(crate) fn remove_container(
        &self,
        c: Container,
        force: bool,
        volumes: bool,
    ) -> Result<Container> {
        if !force {
            let state = match c.state.status {
                Status::Restarting => Some("restarting"),
                _ if c.is_running() => Some("running"),
                _ => None,
            };
            if let Some(state) = state {
                return Err(EngineError::CannotRemove {
                    state,
                    id: c.id().as_str().to_string(),
                });
            }
        } else {
            self.halt(&c, Signal(libc::SIGKILL), None)?;
        }
        crate::faults::point("rm.stopped");
        // The monitors are gone; kill what may be left in the cgroups (a
        // monitor killed with -9 leaves its container running).
        if let Ok(cg) = self.cgroup_of(&c) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !cg.is_empty() && Instant::now() < deadline {
                if !force {
                    return Err(EngineError::State {
                        name: c.id().as_str().to_string(),
                        problem: "still has processes: force remove (-f)".into(),
                    });
                }
                self.kill_all(&c);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if !c.config.networks.is_empty() || crate::rootless::active() {
            crate::networks::detach(
                self.paths(),
                &self.store(),
                c.id().as_str(),
                !c.config.ports.is_empty(),
            );
        }
        crate::shm::unmount(&self.store().container_dir(c.id()));
        crate::faults::point("rm.detached");
        match self.store().remove_container(c.id()) {
            Ok(()) => {}
            Err(store::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        crate::faults::point("rm.record-removed");
        // A monitor that was killed never removed its attach socket.
        let _ = std::fs::remove_file(self.attach_socket(c.id()));
        if volumes {
            self.remove_anonymous_volumes(&c.config.mounts);
        }
        // A monitor that was killed (kill -9, a crash) never removed the
        // container's cgroups: they go with the container (a no-op when
        // the monitor did it).
        if let Ok(cg) = self.cgroup_of(&c) {
            let _ = cg.destroy();
        }
        self.emit_container(&c, "destroy", &[]);
        Ok(c)
    }

    /// `rename`.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if !model::id::valid_container_name(new_name) {
            return Err(EngineError::invalid(
                "container name",
                format!("{new_name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ));
        }
        let c = self.container(name_or_id)?;
        self.store()
            .rename_container(c.id(), new_name)
            .map_err(|e| match e {
                store::StoreError::NameInUse { .. } => {
                    EngineError::Conflict(format!("Error when allocating new name: {e}"))
                }
                e => e.into(),
            })?;
        let old = format!("/{}", c.name());
        self.emit(
            "container",
            "rename",
            c.id().as_str(),
            &[
                ("name", new_name),
                ("oldName", &old),
                ("image", &c.record.image_ref),
            ],
        );
        Ok(())
    }

    /// The host pids of a running container's processes.
    pub fn container_pids(&self, c: &Container) -> Result<Vec<i32>> {
        if !c.is_running() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not running".into(),
            });
        }
        let h = Self::container_hierarchy()?;
        let cg = runtime::cgroup::Cgroup::open(&h, &c.config.cgroup_path(c.id().as_str()));
        let mut pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            // No cgroup of its own (rootless on v1): its pid namespace.
            pids = super::procs::without_cgroup(std::path::Path::new("/proc"), c.state.pid);
        }
        if pids.is_empty() {
            pids.push(c.state.pid);
        }
        pids.sort_unstable();
        Ok(pids)
    }
}

/// One row of `top`, read from /proc.
#[derive(Debug, Clone)]
pub struct ProcessRow {
    /// Real uid (name resolution is left to the caller).
    pub uid: u32,
    /// pid.
    pub pid: i32,
    /// Parent pid.
    pub ppid: i32,
    /// Start time, HH:MM.
    pub stime: String,
    /// Controlling tty, `?` if none.
    pub tty: String,
    /// CPU time, HH:MM:SS.
    pub time: String,
    /// Command line.
    pub cmd: String,
}

/// Read a process's `top` row from /proc.
pub fn process_row(pid: i32) -> Option<ProcessRow> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    let comm = stat[stat.find('(')? + 1..close].to_string();
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ppid: i32 = f.get(1)?.parse().ok()?;
    let tty_nr: u32 = f.get(4)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime_ticks: u64 = f.get(12)?.parse().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmd = if cmdline.is_empty() {
        format!("[{comm}]")
    } else {
        String::from_utf8_lossy(&cmdline)
            .trim_end_matches('\0')
            .replace('\0', " ")
    };
    let hz = sys::process::clock_ticks();
    let cpu = (utime + stime_ticks) / hz;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<i64>().ok())
        })
        .unwrap_or(0);
    let started = chrono::DateTime::from_timestamp(boot + (start / hz) as i64, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default();
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        let major = (tty_nr >> 8) & 0xfff;
        let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
        if major == 136 {
            format!("pts/{minor}")
        } else {
            format!("{major}:{minor}")
        }
    };
    Some(ProcessRow {
        uid,
        pid,
        ppid,
        stime: started,
        tty,
        time: format!("{:02}:{:02}:{:02}", cpu / 3600, (cpu / 60) % 60, cpu % 60),
        cmd,
    })
}

/// One reading of a running container's resource use (`stats`).
#[derive(Debug, Clone, Default)]
pub struct StatsSample {
    /// CPU time used by the container, ns.
    pub cpu_ns: u64,
    /// CPU time of the whole host (all CPUs, /proc/stat), ns.
    pub system_ns: u64,
    /// CPUs online.
    pub online_cpus: u64,
    /// Memory in use, page cache that can be dropped left out (Docker's).
    pub mem_usage: u64,
    /// Memory limit (the host's memory when unlimited).
    pub mem_limit: u64,
    /// Bytes received on the container's interfaces (loopback left out).
    pub net_rx: u64,
    /// Bytes sent.
    pub net_tx: u64,
    /// Bytes read from block devices.
    pub blk_read: u64,
    /// Bytes written.
    pub blk_write: u64,
    /// Processes.
    pub pids: u64,
    /// Page cache that can be dropped (`inactive_file`), left out of
    /// `mem_usage`; the API reports the raw usage and this.
    pub mem_inactive_file: u64,
    /// Counters per interface of the container's network namespace
    /// (loopback left out), by interface name.
    pub networks: std::collections::BTreeMap<String, NetCounters>,
    /// The cgroup's counters in full (per-CPU time, user/kernel time,
    /// throttling, `memory.stat`, block I/O by device), for the API's
    /// document.
    pub cgroup: CgroupStats,
}

pub use runtime::cgroup::{BlkioEntry, BlkioStats, CgroupStats, Throttling};

/// One interface's counters (`/proc/net/dev`), as the API's `networks`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

impl StatsSample {
    /// Docker's CPU %: the container's share of the host's CPU time since
    /// `prev`, scaled to the number of CPUs (200% = two CPUs busy).
    pub fn cpu_percent(&self, prev: &StatsSample) -> f64 {
        let cpu = self.cpu_ns.saturating_sub(prev.cpu_ns) as f64;
        let sys = self.system_ns.saturating_sub(prev.system_ns) as f64;
        if sys <= 0.0 {
            return 0.0;
        }
        cpu / sys * self.online_cpus.max(1) as f64 * 100.0
    }
}

/// Host CPU time in ns, and CPUs online, from /proc/stat.
fn host_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let tick = sys::process::clock_ticks().max(1);
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("cpu") => {
                total = f.take(8).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>()
                    * (1_000_000_000 / tick)
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl Engine {
    /// A reading of a running container's resource use.
    pub fn stats_sample(&self, c: &Container) -> Result<StatsSample> {
        let cg: CgroupStats = self.cgroup_of(c)?.stats()?;
        let (system_ns, online_cpus) = host_cpu();
        let host_mem = host_memory();
        let mem_limit = if cg.memory_limit == 0 || cg.memory_limit >= host_mem {
            host_mem
        } else {
            cg.memory_limit
        };
        let (mut net_rx, mut net_tx) = (0, 0);
        let mut networks = std::collections::BTreeMap::new();
        if c.state.is_alive() {
            // The container's network namespace, seen through its init.
            let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", c.state.pid))
                .unwrap_or_default();
            for l in dev.lines().skip(2) {
                let Some((name, rest)) = l.split_once(':') else {
                    continue;
                };
                if name.trim() == "lo" {
                    continue;
                }
                let f: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                if f.len() >= 12 {
                    net_rx += f[0];
                    net_tx += f[8];
                    networks.insert(
                        name.trim().to_string(),
                        NetCounters {
                            rx_bytes: f[0],
                            rx_packets: f[1],
                            rx_errors: f[2],
                            rx_dropped: f[3],
                            tx_bytes: f[8],
                            tx_packets: f[9],
                            tx_errors: f[10],
                            tx_dropped: f[11],
                        },
                    );
                }
            }
        }
        Ok(StatsSample {
            cpu_ns: cg.cpu_usage_ns,
            system_ns,
            online_cpus,
            mem_usage: cg.memory_usage.saturating_sub(cg.memory_inactive_file),
            mem_limit,
            net_rx,
            net_tx,
            blk_read: cg.blk_read,
            blk_write: cg.blk_write,
            pids: cg.pids,
            mem_inactive_file: cg.memory_inactive_file.min(cg.memory_usage),
            networks,
            cgroup: cg,
        })
    }
}

/// `update`: new limits (None: unchanged).
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// `--memory` bytes.
    pub memory: Option<u64>,
    /// `--memory-swap` bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit` (0 or -1: unlimited).
    pub pids_limit: Option<i64>,
    /// `--restart`.
    pub restart: Option<crate::restart::RestartPolicy>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--blkio-weight` (0: unchanged, as dockerd takes it).
    pub blkio_weight: Option<u16>,
}

impl UpdateRequest {
    /// dockerd's warnings for this update (a blkio weight on a kernel
    /// without weight files is discarded); `update` drops the same.
    pub fn warnings(&self) -> Result<Vec<String>> {
        self.blkio().warnings()
    }

    fn blkio(&self) -> crate::blkio::BlkioLimits {
        crate::blkio::BlkioLimits {
            weight: self.blkio_weight.unwrap_or(0),
            ..Default::default()
        }
    }
}

impl Engine {
    /// `update`: change a container's limits, live when it runs (its
    /// cgroup files) and for its next starts (its config).
    pub fn update(&self, name_or_id: &str, req: &UpdateRequest) -> Result<Container> {
        let c = self.container(name_or_id)?;
        crate::container::create::check_limits(req.memory, req.memory_swap, req.cpus)?;
        let mut cfg = c.config.clone();
        if let Some(m) = req.memory {
            cfg.memory = m as i64;
            // Docker: a new memory limit without --memory-swap keeps swap
            // at twice the memory.
            if req.memory_swap.is_none() && cfg.memory_swap > 0 && cfg.memory_swap < cfg.memory {
                cfg.memory_swap = 0;
            }
        }
        if let Some(s) = req.memory_swap {
            if cfg.memory == 0 && s > 0 {
                return Err(EngineError::invalid(
                    "--memory-swap",
                    "set a memory limit (--memory) together with --memory-swap",
                ));
            }
            if s >= 0 && s < cfg.memory {
                return Err(EngineError::invalid(
                    "--memory-swap",
                    "minimum memoryswap limit should be larger than memory limit, see usage",
                ));
            }
            cfg.memory_swap = s;
        }
        if let Some(cpus) = req.cpus {
            cfg.nano_cpus = (cpus * 1e9) as i64;
        }
        if let Some(s) = req.cpu_shares {
            cfg.cpu_shares = s;
        }
        if let Some(p) = req.pids_limit {
            cfg.pids_limit = if p < 0 { 0 } else { p };
        }
        if let Some(cpus) = req.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
            cfg.cpuset_cpus = crate::container::create::check_cpuset(
                Some(cpus),
                crate::container::create::Cpuset::Cpus,
            )?;
        }
        if let Some(mems) = req.cpuset_mems.as_deref().filter(|m| !m.is_empty()) {
            cfg.cpuset_mems = crate::container::create::check_cpuset(
                Some(mems),
                crate::container::create::Cpuset::Mems,
            )?;
        }
        // dockerd: a weight the kernel cannot take is dropped (with a
        // warning), then the range is checked; 0 leaves it as it is.
        let mut blkio = req.blkio();
        if blkio.any() {
            if let Some(h) = crate::rootless::cgroup_hierarchy()? {
                blkio.discard_unsupported(h.blkio_support());
            }
            blkio.check()?;
            if blkio.weight > 0 {
                cfg.blkio.weight = blkio.weight;
            }
        }
        if let Some(r) = req.restart {
            if cfg.auto_remove && r.is_set() {
                return Err(EngineError::invalid(
                    "--restart",
                    "conflicting options: --restart and --rm (a removed container cannot be restarted)",
                ));
            }
            cfg.restart_policy = r;
        }
        if c.is_running() {
            let mut limits = crate::spec::limits(&cfg)?;
            // An unlimited pids count is written as "max".
            if req.pids_limit.is_some() && cfg.pids_limit == 0 {
                limits["pids"] = serde_json::json!({"limit": -1});
            }
            if blkio.weight > 0 {
                limits["blockIO"] = serde_json::json!({"weight": blkio.weight});
            }
            let res: oci_spec::runtime::LinuxResources = serde_json::from_value(limits)
                .map_err(|e| EngineError::io("encoding limits", std::io::Error::other(e)))?;
            self.cgroup_of(&c)?.update(&res).map_err(|e| {
                EngineError::invalid(
                    "update",
                    format!("cannot apply the new limits to {}: {e}", c.name()),
                )
            })?;
        }
        let value = serde_json::to_value(&cfg)
            .map_err(|e| EngineError::io("encoding config", std::io::Error::other(e)))?;
        self.store().update_container(c.id(), |rec| {
            rec.config = value;
            Ok(())
        })?;
        self.emit_container(&c, "update", &[]);
        self.container(c.id().as_str())
    }

    /// `system boot`: after a reboot (or anything that killed the
    /// monitors), start the containers their restart policy says should
    /// run: `always` ones, `unless-stopped` ones a user did not stop, and
    /// `on-failure` ones that were running. Returns the started ones and
    /// the failures.
    pub fn boot(&self) -> Result<BootReport> {
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for c in self.containers()? {
            if c.is_running() || c.state.monitor_alive() {
                continue;
            }
            let recorded = c.record.state.get("status").and_then(|s| s.as_str());
            let was_running = matches!(recorded, Some("running" | "paused" | "restarting"));
            let ever_started = c.state.started_at.is_some();
            if !ever_started
                || !crate::restart::start_at_boot(
                    c.config.restart_policy,
                    c.state.manually_stopped,
                    was_running,
                )
            {
                continue;
            }
            if was_running {
                // Record how the last run ended (with the machine).
                self.settle(&c)?;
                self.set_state(c.id(), |st| {
                    if st.status == Status::Restarting {
                        st.status = Status::Exited;
                        st.monitor_pid = 0;
                    }
                })?;
            }
            match self.start(
                c.id().as_str(),
                crate::container::start::AttachMode::Detached,
            ) {
                Ok(l) => started.push(l.container),
                Err(e) => failed.push((c, e)),
            }
        }
        Ok(BootReport { started, failed })
    }
}

/// What `system boot` did.
pub struct BootReport {
    /// The containers started.
    pub started: Vec<Container>,
    /// The ones that could not start, and why.
    pub failed: Vec<(Container, EngineError)>,
}
