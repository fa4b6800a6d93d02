//! `berth start` (and the second half of `run`): build the spec, prepare
//! stdio, fork the container's monitor, and wait until the container's
//! command has been exec'd (or failed to be).
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::config::{ContainerState, Status};
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::monitor::{MonitorArgs, Output};
use crate::Engine;

/// How the caller stays connected to the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Nothing: the CLI returns once the container runs.
    Detached,
    /// The monitor copies output to the caller's stdout/stderr (fds 1, 2)
    /// and, with `stdin`, the caller's fd 0 to the container.
    Foreground {
        /// Forward fd 0 to the container's stdin.
        stdin: bool,
    },
    /// Detached, but the container's output waits (in its pipes) until
    /// `clients` attach clients have connected to the monitor, or a few
    /// seconds have passed: an API client that attached before the start
    /// (as `docker run` does) sees all of it.
    Held {
        /// How many clients to wait for.
        clients: u32,
    },
}

/// A started container, seen from the process that started it.
pub struct Launched {
    /// The container (as recorded after the start).
    pub container: Container,
    /// Its init's host pid.
    pub init_pid: i32,
    /// The monitor's pid.
    pub monitor_pid: i32,
    status: BufReader<std::fs::File>,
}

impl Launched {
    /// Block until the monitor reports the container's exit code. Returns
    /// `None` if the monitor went away without reporting.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut line = String::new();
        loop {
            line.clear();
            match self.status.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {
                    if let Some(code) = line.trim().strip_prefix("exit ") {
                        return code.parse().ok();
                    }
                }
            }
        }
    }

    /// The status pipe, to poll alongside signals.
    pub fn status_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.status.get_ref().as_fd()
    }
}

fn devnull() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| EngineError::io("opening /dev/null", e))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| EngineError::io("creating a pipe", e))
}

impl Engine {
    /// Start a created or stopped container. Must be called while the
    /// process is single-threaded (it forks the monitor).
    pub fn start(&self, name_or_id: &str, mode: AttachMode) -> Result<Launched> {
        self.start_early(name_or_id, mode, None)
    }

    /// `start` of a container made by [`Engine::create_early`], whose
    /// network may be running already.
    pub fn start_early(
        &self,
        name_or_id: &str,
        mode: AttachMode,
        early: Option<crate::usernet::EarlyNet>,
    ) -> Result<Launched> {
        let result = self.start_as(name_or_id, mode, false, early);
        // A `--rm` container that could not start is removed, with its
        // anonymous volumes, as Docker removes it.
        if result.is_err() {
            if let Ok(c) = self.container(name_or_id) {
                if c.config.auto_remove && !c.is_running() {
                    let _ = self.remove(c.id().as_str(), true, true);
                }
            }
        }
        result
    }

    /// The restart policy's start, from the monitor of the run that just
    /// ended (counted in `RestartCount`).
    pub(crate) fn start_restarted(&self, name_or_id: &str) -> Result<Launched> {
        self.start_as(name_or_id, AttachMode::Detached, true, None)
    }

    fn start_as(
        &self,
        name_or_id: &str,
        mode: AttachMode,
        restarting: bool,
        mut early: Option<crate::usernet::EarlyNet>,
    ) -> Result<Launched> {
        let c = self.container(name_or_id)?;
        // A pod's member needs the pod's infra container (its namespaces):
        // started first, as podman starts a container's dependencies.
        if !c.config.pod.is_empty() && !c.config.pod_infra && !c.is_running() {
            self.ensure_pod_infra(&c.config.pod)?;
        }
        if c.is_running() {
            return Err(EngineError::State {
                name: c.name().to_string(),
                problem: "is already running".into(),
            });
        }
        if c.state.status == crate::config::Status::Restarting && !restarting {
            return Err(EngineError::State {
                name: c.name().to_string(),
                problem: "is restarting (its restart policy): wait for it, or stop it first".into(),
            });
        }
        let log = c
            .config
            .log_config
            .effective()
            .map_err(|e| EngineError::invalid("--log-opt", e))?;
        let log_attrs = crate::logs::attrs_for(&log, &c.config.labels, &c.config.env);
        let id = c.id().clone();
        let dir = self.store().container_dir(&id);
        // `create` makes the rootfs dir last: without it the create was
        // cut short (killed) and the container cannot run.
        if !dir.join("rootfs").is_dir() {
            return Err(EngineError::State {
                name: c.name().to_string(),
                problem: format!(
                    "was not completely created (its create was interrupted): remove it with \"berth rm {}\" and create it again",
                    c.name()
                ),
            });
        }
        let mut layers = self.lower_dirs(&c)?;
        // An image of no layers (`FROM scratch` with nothing added yet, as
        // a build's first RUN sees it): overlayfs needs a lower dir.
        if layers.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty)
                .map_err(|e| EngineError::io(format!("creating {}", empty.display()), e))?;
            layers.push(empty);
        }
        let copy = self.copied_root(&id);
        let overlay = runtime::Overlay {
            lower: layers.clone(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            copy: copy.clone(),
        };
        let search: Vec<PathBuf> = match copy {
            Some(c) => vec![c],
            None => std::iter::once(overlay.upper.clone())
                .chain(layers.iter().rev().cloned())
                .collect(),
        };
        let mut user = crate::spec::resolve_user(&c.config.user, &search)?;
        crate::spec::add_groups(&mut user, &c.config.group_add, &search)?;
        // Legacy links: their variables before the container's own, their
        // names in /etc/hosts (rewritten: the targets' addresses may have
        // changed since the last start).
        let links = self.link_setup(&c)?;
        let with_links;
        let config = if links.env.is_empty() {
            &c.config
        } else {
            let mut cfg = c.config.clone();
            cfg.env = crate::container::links::replace_or_append(links.env, &c.config.env);
            with_links = cfg;
            &with_links
        };
        if !links.hosts.is_empty() {
            let path = self.store().container_dir(c.id()).join("hosts");
            let text = crate::container::create::hosts_file(&c.config, &links.hosts);
            crate::networks::overwrite_in_place(&path, text.as_bytes())
                .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        }
        let init_binary = if c.config.init {
            Some(crate::container::create::find_init_binary()?)
        } else {
            None
        };
        let rootfs = dir.join("rootfs");
        let args = c.args();
        // --network container:ID joins that container's namespace.
        let joined = match &c.config.network_mode {
            crate::config::NetworkMode::Container(target) => {
                let t = self.container(target).map_err(|_| {
                    EngineError::invalid(
                        "--network",
                        format!("container:{target}: that container no longer exists"),
                    )
                })?;
                if !t.state.is_alive() {
                    return Err(EngineError::invalid(
                        "--network",
                        format!(
                            "cannot join the network of container {}: it is not running",
                            t.name()
                        ),
                    ));
                }
                Some((
                    self.store().container_dir(t.id()),
                    PathBuf::from(format!("/proc/{}/ns/net", t.state.pid)),
                ))
            }
            _ => None,
        };
        let pid_ns = self.donor_namespace(&c.config.pid_mode, "pid")?;
        let ipc_ns = self.donor_namespace(&c.config.ipc_mode, "ipc")?;
        let uts_ns = self.donor_namespace(&c.config.uts_mode, "uts")?;
        // `--userns=container:`: the donor's user namespace (whose maps the
        // config copied); `ns:PATH`: that one.
        let user_ns = match c.config.userns.mode.split_once(':') {
            Some(("container", _)) if c.config.userns.is_private() => {
                self.donor_namespace(&c.config.userns.mode, "user")?
            }
            Some(("ns", path)) if c.config.userns.is_private() => Some(PathBuf::from(path)),
            _ => None,
        };
        // /dev/shm: a shareable container's own host-side tmpfs (the
        // monitor mounts it), or the one of the donor whose IPC it joins.
        let shm = if c.config.ipc_mode == "shareable" {
            Some(crate::shm::path(&dir))
        } else if let Some(donor) = c.config.ipc_mode.strip_prefix("container:") {
            let d = self.store().container_dir(self.container(donor)?.id());
            crate::shm::is_mounted(&d).then(|| crate::shm::path(&d))
        } else {
            None
        };
        let mut mounts = Vec::new();
        let userns = &c.config.userns;
        for m in &c.config.mounts {
            // In a user namespace a volume (and a bind asked with `idmap`)
            // is shown with the container's mapping, so its files keep the
            // container's own ids on disk; another bind shows the host's
            // ids, and `:U` gives it to the user's host ids.
            // Rootless (keep-id) nothing can be idmapped: the host's
            // filesystems belong to the host's user namespace.
            let idmapped = userns.is_private()
                && !crate::rootless::active()
                && (m.kind == crate::config::MountType::Volume || m.idmap);
            let (uid, gid) = if idmapped {
                (user.uid, user.gid)
            } else {
                userns.host_ids(user.uid, user.gid)
            };
            let source = self.mount_source(m, uid, gid)?;
            // Rootless with a nested user namespace a volume cannot be
            // idmapped: a fresh one is given to the container's user, as
            // podman chowns a new volume to it.
            if userns.is_private()
                && crate::rootless::active()
                && m.kind == crate::config::MountType::Volume
                && m.subpath.is_empty()
            {
                give_fresh_volume(&source, uid, gid)?;
            }
            let mut mount = crate::volumes::oci_mount(m, &source);
            if idmapped && m.kind != crate::config::MountType::Tmpfs {
                if let Some(opts) = mount["options"].as_array_mut() {
                    opts.push(serde_json::json!("idmap"));
                }
            }
            mounts.push(mount);
        }
        // A dual-stack network keeps IPv6 on in the container's namespace.
        let ipv6 = c.config.networks.iter().any(|name| {
            self.store()
                .network(name)
                .is_ok_and(|n| n.enable_ipv6 && n.subnet6.is_some())
        });
        let mut spec = crate::spec::build(&crate::spec::SpecInputs {
            id: id.as_str(),
            config,
            rootfs: &rootfs,
            container_dir: &dir,
            joined: joined.as_ref().map(|(d, n)| (d.as_path(), n.as_path())),
            pid_ns: pid_ns.as_deref(),
            ipc_ns: ipc_ns.as_deref(),
            shm: shm.as_deref(),
            uts_ns: uts_ns.as_deref(),
            user_ns: user_ns.as_deref(),
            user: &user,
            init_binary: init_binary.as_deref(),
            args: &args,
            mounts: &mounts,
            ipv6,
        })?;
        // A foreground -t container starts with the caller's window size
        // (set on its pty before its command runs, as Docker's consoleSize).
        if c.config.tty && matches!(mode, AttachMode::Foreground { .. }) {
            let size = sys::tty::get_winsize(std::io::stdin().as_fd())
                .or_else(|_| sys::tty::get_winsize(std::io::stdout().as_fd()));
            if let (Ok(size), Some(p)) = (size, spec.process_mut().as_mut()) {
                if size.rows > 0 && size.cols > 0 {
                    let mut b = oci_spec::runtime::BoxBuilder::default();
                    b = b.height(u64::from(size.rows)).width(u64::from(size.cols));
                    if let Ok(bx) = b.build() {
                        p.set_console_size(Some(bx));
                    }
                }
            }
        }
        let seccomp_bpf = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => {
                Some(runtime::seccomp::BpfCache::new(self.seccomp_cache()).get_or_compile(s)?)
            }
            None => None,
        };
        let rt = runtime::by_name(&c.config.runtime, &self.runtime_state())?;
        // Rootless without a delegated cgroup v2 subtree there is no
        // cgroup of the user's to put a container in (limits were warned
        // about at create).
        let hierarchy = if rt.name() == "berth" {
            crate::rootless::cgroup_hierarchy()?
        } else {
            None
        };

        // stdio: with -t the runtime makes the pty in the container's own
        // devpts and hands the master to the monitor; else pipes (stdin
        // only with -i).
        let (container_stdio, output, stdin_w) = if c.config.tty {
            ([devnull()?, devnull()?, devnull()?], Output::Console, None)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let (stdin_r, stdin_w) = if c.config.open_stdin {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                (devnull()?, None)
            };
            (
                [stdin_r, out_w, err_w],
                Output::Pipes {
                    stdout: out_r,
                    stderr: err_r,
                },
                stdin_w,
            )
        };
        let (status_r, status_w) = pipe()?;
        let log_path = self.log_path(&dir);
        let mut networks = Vec::new();
        for n in &c.config.networks {
            networks.push(self.store().network(n)?);
        }
        let user_net = crate::usernet::Tool::from_name(&c.config.network_mode_name);
        let early_net = early.as_mut().and_then(|e| e.take_for(&id, user_net));
        let args = MonitorArgs {
            paths: self.paths().clone(),
            id: id.clone(),
            auto_remove: c.config.auto_remove,
            anonymous_volumes: c
                .config
                .mounts
                .iter()
                .filter(|m| m.anonymous)
                .cloned()
                .collect(),
            spec,
            overlay,
            bundle: dir.clone(),
            rootfs,
            log_path,
            seccomp_bpf,
            runtime: rt,
            hierarchy,
            container_stdio,
            output,
            stdin_w,
            forward_stdin: matches!(mode, AttachMode::Foreground { stdin: true }),
            forward_output: matches!(mode, AttachMode::Foreground { .. }),
            status_w,
            attach_socket: self.attach_socket(&id),
            networks,
            ports: c.config.ports.clone(),
            user_net,
            early_net,
            restarting,
            restart_policy: c.config.restart_policy,
            healthcheck: c.config.healthcheck.clone(),
            on_failure: c.config.health_on_failure,
            stop_signal: model::Signal::from_str(&c.config.stop_signal)
                .map(|s| s.number())
                .unwrap_or(libc::SIGTERM),
            stop_timeout: std::time::Duration::from_secs(
                c.config.stop_timeout.unwrap_or(10).max(0) as u64,
            ),
            log,
            log_attrs,
            open_stdin: c.config.open_stdin,
            shm_size: (c.config.ipc_mode == "shareable").then_some(if c.config.shm_size > 0 {
                c.config.shm_size
            } else {
                crate::shm::DEFAULT_SIZE
            }),
            hold_clients: match mode {
                AttachMode::Held { clients } => clients,
                _ => 0,
            },
        };

        self.close_store_for_fork();
        match sys::process::fork()
            .map_err(|e| EngineError::io("forking the container monitor", e))?
        {
            sys::process::Forked::Child => {
                drop(status_r);
                crate::monitor::run(args)
            }
            sys::process::Forked::Parent(monitor_pid) => {
                drop(args);
                if let Some(e) = early.as_mut() {
                    e.disarm();
                }
                crate::faults::point("start.monitor-forked");
                let mut status = BufReader::new(std::fs::File::from(status_r));
                let mut line = String::new();
                let _ = status.read_line(&mut line);
                let line = line.trim_end().to_string();
                if let Some(pid) = line.strip_prefix("started ") {
                    let init_pid = pid.parse().unwrap_or(0);
                    // Not re-read from the store: a short-lived --rm container
                    // may already be gone.
                    let mut container = c;
                    container.state.status = crate::config::Status::Running;
                    container.state.pid = init_pid;
                    container.state.monitor_pid = monitor_pid;
                    return Ok(Launched {
                        container,
                        init_pid,
                        monitor_pid,
                        status,
                    });
                }
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(monitor_pid), None);
                if let Some(rest) = line.strip_prefix("error ") {
                    let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
                    return Err(EngineError::Runtime(runtime::RuntimeError::Start {
                        code: code.parse().unwrap_or(125),
                        message: message.replace("\\n", "\n"),
                    }));
                }
                Err(EngineError::io(
                    "starting the container",
                    std::io::Error::other("the monitor exited without reporting"),
                ))
            }
        }
    }

    /// Record a state change in one transaction.
    pub(crate) fn set_state(
        &self,
        id: &model::ContainerId,
        f: impl FnOnce(&mut ContainerState),
    ) -> Result<()> {
        set_state(&self.store(), id, f)
    }
}

/// Read-modify-write a container's state in one store transaction.
pub(crate) fn set_state(
    store: &store::Store,
    id: &model::ContainerId,
    f: impl FnOnce(&mut ContainerState),
) -> Result<()> {
    store.update_container(id, |rec| {
        let mut st: ContainerState = serde_json::from_value(rec.state.clone()).unwrap_or_default();
        f(&mut st);
        rec.state = serde_json::to_value(&st).unwrap_or_default();
        Ok(())
    })?;
    Ok(())
}

/// Is the state one a start can proceed from?
pub fn startable(status: Status) -> bool {
    !matches!(status, Status::Running | Status::Paused | Status::Removing)
}

impl Engine {
    /// Start several created or stopped containers at once, detached: each
    /// in a forked copy of this process (a start mostly waits: for the
    /// monitor's fork, the namespaces, the network, the exec). Returns each
    /// name with its outcome, in the order given. Must be called while the
    /// process is single-threaded.
    pub fn start_many(&self, names: &[String]) -> Vec<(String, Result<()>)> {
        self.each_forked(names, &|e, n| e.start(n, AttachMode::Detached).map(|_| ()))
    }

    /// Stop several containers at once (each within `timeout` seconds, or
    /// its own stop timeout), each from a forked copy of this process.
    pub fn stop_many(&self, names: &[String], timeout: Option<i64>) -> Vec<(String, Result<()>)> {
        self.each_forked(names, &|e, n| e.stop(n, timeout).map(|_| ()))
    }

    /// Run `op` on each of `names` at once, each in a forked copy of this
    /// process; the outcomes in the order given. Single-threaded callers only.
    fn each_forked(
        &self,
        names: &[String],
        op: &dyn Fn(&Engine, &str) -> Result<()>,
    ) -> Vec<(String, Result<()>)> {
        if names.len() < 2 {
            return names.iter().map(|n| (n.clone(), op(self, n))).collect();
        }
        // A failure comes back in a file named after the forked process
        // (a pipe would be inherited by the monitor a start forks).
        let report = |pid: i32| self.paths.runroot.join(format!("forked-{pid}.err"));
        let mut children: Vec<(String, Result<i32>)> = Vec::new();
        for name in names {
            self.close_store_for_fork();
            match sys::process::fork() {
                Ok(sys::process::Forked::Child) => {
                    let code = match op(self, name) {
                        Ok(()) => 0,
                        Err(e) => {
                            let _ =
                                std::fs::write(report(std::process::id() as i32), e.to_string());
                            1
                        }
                    };
                    sys::process::exit_now(code)
                }
                Ok(sys::process::Forked::Parent(pid)) => children.push((name.clone(), Ok(pid))),
                Err(e) => children.push((
                    name.clone(),
                    Err(EngineError::io("forking a container operation", e)),
                )),
            }
        }
        children
            .into_iter()
            .map(|(name, child)| {
                let outcome = child.and_then(|pid| {
                    let status = loop {
                        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
                            Err(nix::errno::Errno::EINTR) => continue,
                            other => break other,
                        }
                    };
                    let file = report(pid);
                    let message = std::fs::read_to_string(&file).ok();
                    let _ = std::fs::remove_file(&file);
                    match (status, message) {
                        (Ok(nix::sys::wait::WaitStatus::Exited(_, 0)), _) => Ok(()),
                        (_, Some(m)) => Err(EngineError::Forked(m)),
                        (s, None) => Err(EngineError::Forked(format!(
                            "{name}: the forked process ended without a word ({s:?})"
                        ))),
                    }
                });
                (name, outcome)
            })
            .collect()
    }
}

impl Engine {
    /// `--pid container:ID` / `--ipc container:ID`: the running donor's
    /// namespace, refused as Docker refuses it (a donor that is not running;
    /// an IPC donor that is not `shareable`).
    fn donor_namespace(&self, mode: &str, kind: &str) -> Result<Option<PathBuf>> {
        let Some(target) = mode.strip_prefix("container:") else {
            return Ok(None);
        };
        let t = self.container(target)?;
        let id = t.id().as_str().to_string();
        let not_running = || EngineError::Conflict(format!("container {id} is not running"));
        if kind == "ipc" {
            if !t.state.is_alive() {
                return Err(EngineError::Conflict(format!(
                    "can't join IPC of container {id}: {}",
                    not_running()
                )));
            }
            if t.config.ipc_mode != "shareable" {
                return Err(EngineError::Conflict(format!(
                    "can't join IPC of container {id}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                )));
            }
        } else if kind == "user" && !t.state.is_alive() {
            return Err(EngineError::Conflict(format!(
                "can't join the user namespace of container {id}: {}; start it first",
                not_running()
            )));
        } else if !t.state.is_alive() {
            return Err(not_running());
        }
        Ok(Some(PathBuf::from(format!(
            "/proc/{}/ns/{kind}",
            t.state.pid
        ))))
    }
}

/// A volume's data dir still as berth made it (empty, owned by berth's
/// 0: rootless, the user) becomes `uid:gid`'s.
fn give_fresh_volume(data: &std::path::Path, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(data)
        .map_err(|e| EngineError::io(format!("reading {}", data.display()), e))?;
    let empty = std::fs::read_dir(data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if meta.is_dir() && empty && (meta.uid(), meta.gid()) == (0, 0) && (uid, gid) != (0, 0) {
        std::os::unix::fs::lchown(data, Some(uid), Some(gid)).map_err(|e| {
            EngineError::io(
                format!("giving volume {} to the container's user", data.display()),
                e,
            )
        })?;
    }
    Ok(())
}
