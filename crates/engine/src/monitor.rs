//! The per-container monitor (DESIGN.md): a small synchronous process,
//! forked from the CLI and detached with `setsid`, that is the parent of
//! the container's init. It holds the stdio pipes or pty master, writes the
//! log file, reaps the init and records its exit status, then cleans up
//! (cgroup, `--rm`). The CLI may exit at any time; the monitor lives on.
//!
//! It reports to the starting CLI through a status pipe, one line each:
//! `started <pid>`, `error <code> <message>`, `exit <code>`.
//!
//! It also runs the healthcheck probes (`supervise`), and when the init
//! exits applies the restart policy: it records `restarting`, waits the
//! back-off (a `stop` cuts it short with SIGTERM), and starts the container
//! again through the ordinary start path, which forks the next monitor;
//! this one then exits.
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use chrono::Utc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::config::Status;
use crate::container::start::set_state;
use crate::logs::Stream;
use crate::Paths;

/// Where the container's output comes from.
pub enum Output {
    /// Separate stdout and stderr pipes.
    Pipes {
        /// Read end of stdout.
        stdout: OwnedFd,
        /// Read end of stderr.
        stderr: OwnedFd,
    },
    /// A pty master (both streams merged, as Docker with `-t`).
    Pty(OwnedFd),
    /// The pty the runtime makes for `-t` (its master comes back with the
    /// spawned container).
    Console,
}

/// Everything the monitor needs, prepared by `start` before the fork.
pub struct MonitorArgs {
    pub(crate) paths: Paths,
    pub(crate) id: model::ContainerId,
    pub(crate) auto_remove: bool,
    /// Anonymous volumes to remove with a `--rm` container.
    pub(crate) anonymous_volumes: Vec<crate::config::MountSpec>,
    pub(crate) spec: oci_spec::runtime::Spec,
    pub(crate) overlay: runtime::Overlay,
    pub(crate) bundle: PathBuf,
    pub(crate) rootfs: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) seccomp_bpf: Option<Vec<u8>>,
    pub(crate) runtime: Box<dyn runtime::Runtime>,
    pub(crate) hierarchy: Option<runtime::cgroup::Hierarchy>,
    pub(crate) container_stdio: [OwnedFd; 3],
    pub(crate) output: Output,
    pub(crate) stdin_w: Option<OwnedFd>,
    pub(crate) forward_stdin: bool,
    pub(crate) forward_output: bool,
    pub(crate) status_w: OwnedFd,
    pub(crate) attach_socket: PathBuf,
    /// User-defined networks to attach the container to.
    pub(crate) networks: Vec<store::NetworkRecord>,
    /// Ports to publish on the first network (or through `user_net`).
    pub(crate) ports: Vec<crate::config::PortMapping>,
    /// Rootless: the user-mode network tool that gives the container its
    /// way out and publishes its ports.
    pub(crate) user_net: Option<crate::usernet::Tool>,
    /// `user_net` started already, by `berth run` before the create
    /// (`usernet::EarlyNet`).
    pub(crate) early_net: Option<crate::usernet::Launched>,
    /// Started by the restart policy (counted), not by a user (resets it).
    pub(crate) restarting: bool,
    /// `--restart`.
    pub(crate) restart_policy: crate::restart::RestartPolicy,
    /// The healthcheck, if any.
    pub(crate) healthcheck: Option<crate::health::HealthConfig>,
    /// `--health-on-failure`.
    pub(crate) on_failure: crate::health::OnFailure,
    /// The stop signal and timeout (for health actions).
    pub(crate) stop_signal: i32,
    /// See `stop_signal`.
    pub(crate) stop_timeout: std::time::Duration,
    /// The log driver's settings.
    pub(crate) log: crate::logs::Effective,
    /// `--log-opt labels=/env=` attributes.
    pub(crate) log_attrs: std::collections::BTreeMap<String, String>,
    /// `--ipc shareable`: the size of the host-side `/dev/shm` to mount
    /// for it ([`crate::shm`]) before it starts.
    pub(crate) shm_size: Option<u64>,
    /// Attach clients to wait for before any output is read (see
    /// `AttachMode::Held`).
    pub(crate) hold_clients: u32,
    /// `-i`: attach clients may write to the container's stdin (with a
    /// pty there is no stdin pipe to tell).
    pub(crate) open_stdin: bool,
}

/// A container as its events show it: name, image and labels (dockerd puts
/// the labels among the attributes, so `events --filter label=…` finds
/// them), read from the store (a rename shows), `fallback` once the record
/// is gone (`--rm`).
#[derive(Debug, Clone, Default)]
pub(crate) struct EventNames {
    name: String,
    image: String,
    labels: std::collections::BTreeMap<String, String>,
}

pub(crate) fn event_names(
    store: &store::Store,
    id: &model::ContainerId,
    fallback: Option<&EventNames>,
) -> EventNames {
    store
        .container(id.as_str())
        .map(|r| EventNames {
            name: r.name.trim_start_matches('/').to_string(),
            labels: serde_json::from_value(r.config["labels"].clone()).unwrap_or_default(),
            image: r.image_ref,
        })
        .ok()
        .or_else(|| fallback.cloned())
        .unwrap_or_default()
}

/// dockerd's `network connect` / `disconnect` events of a container's
/// start and end, one per bridge network (id, name) it is on.
fn emit_network(paths: &Paths, id: &model::ContainerId, on: &[(String, String)], action: &str) {
    for (net, name) in on {
        crate::events::emit(
            &paths.root,
            &crate::events::Event::new(
                "network",
                action,
                net,
                &[
                    ("container", id.as_str()),
                    ("name", name),
                    ("type", "bridge"),
                ],
            ),
        );
    }
}

/// The bridge networks (id, name) container `id` is on, as recorded.
fn networks_now(store: &store::Store, id: &model::ContainerId) -> Vec<(String, String)> {
    store
        .container(id.as_str())
        .ok()
        .and_then(|r| serde_json::from_value::<crate::config::ContainerConfig>(r.config).ok())
        .map(|c| {
            c.networks
                .iter()
                .filter_map(|n| store.network(n).ok())
                .map(|n| (n.id, n.name))
                .collect()
        })
        .unwrap_or_default()
}

/// Record a container event with its name and image as attributes.
pub(crate) fn emit_container(
    paths: &Paths,
    store: &store::Store,
    id: &model::ContainerId,
    action: &str,
    extra: &[(&str, &str)],
) {
    emit_named(paths, id, &event_names(store, id, None), action, extra);
}

fn emit_named(
    paths: &Paths,
    id: &model::ContainerId,
    names: &EventNames,
    action: &str,
    extra: &[(&str, &str)],
) {
    crate::events::emit(
        &paths.root,
        &crate::events::Event::new(
            "container",
            action,
            id.as_str(),
            &container_attributes(&names.name, &names.image, &names.labels, extra),
        ),
    );
}

/// A container event's attributes: its labels, then name and image, then
/// what the event adds (dockerd's order of precedence).
pub(crate) fn container_attributes<'a>(
    name: &'a str,
    image: &'a str,
    labels: &'a std::collections::BTreeMap<String, String>,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut attrs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    attrs.push(("name", name));
    attrs.push(("image", image));
    attrs.extend_from_slice(extra);
    attrs
}

fn report(fd: &OwnedFd, line: &str) {
    let _ =
        std::fs::File::from(fd.try_clone().expect("dup status pipe")).write_all(line.as_bytes());
}

pub(crate) fn devnull_onto(targets: &[i32]) {
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for t in targets {
            let r = match t {
                0 => nix::unistd::dup2_stdin(&f),
                1 => nix::unistd::dup2_stdout(&f),
                _ => nix::unistd::dup2_stderr(&f),
            };
            let _ = r;
        }
    }
}

/// Write all of `data` to a raw fd; false if the reader is gone.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return false,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// The monitor's whole life. Never returns.
pub fn run(args: MonitorArgs) -> ! {
    let _ = nix::unistd::setsid();
    // A monitor started by a restart inherits the previous one's mask.
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    if !args.forward_stdin {
        devnull_onto(&[0]);
    }
    if !args.forward_output {
        devnull_onto(&[1, 2]);
    }
    let code = match supervise(args) {
        Ok(()) => 0,
        Err(()) => 1,
    };
    sys::process::exit_now(code)
}

fn supervise(args: MonitorArgs) -> Result<(), ()> {
    let MonitorArgs {
        paths,
        id,
        auto_remove,
        anonymous_volumes,
        spec,
        overlay,
        bundle,
        rootfs,
        log_path,
        seccomp_bpf,
        runtime: rt,
        hierarchy,
        container_stdio,
        output,
        stdin_w,
        forward_stdin,
        forward_output,
        status_w,
        attach_socket,
        networks,
        ports,
        user_net,
        early_net,
        restarting,
        restart_policy,
        healthcheck,
        on_failure,
        stop_signal,
        stop_timeout,
        log,
        log_attrs,
        hold_clients,
        open_stdin,
        shm_size,
    } = args;
    crate::faults::point("monitor.started");
    // Rootless: the network tool first, on a namespace made for it, so its
    // start (tens of ms of pasta's own) overlaps everything below; the
    // init joins that namespace and execs its command once it is ready.
    let launched = match early_net {
        Some(l) => Some(Ok(l)),
        None => {
            user_net.map(|tool| crate::usernet::launch(tool, &paths.runroot, id.as_str(), &ports))
        }
    };
    // A fresh connection: the CLI's was inherited through fork and stays untouched.
    let store = match store::Store::open(&paths.root) {
        Ok(s) => s,
        Err(e) => {
            report(&status_w, &format!("error 125 opening the store: {e}\n"));
            return Err(());
        }
    };
    let fail_start = |code: i32, message: String| {
        let _ = set_state(&store, &id, |st| {
            st.status = Status::Created;
            st.exit_code = code;
            st.error = message.clone();
            st.pid = 0;
        });
        if auto_remove {
            let _ = store.remove_container(&id);
            crate::volumes::remove_anonymous(&store, &anonymous_volumes);
        }
        report(
            &status_w,
            &format!("error {code} {}\n", message.replace('\n', "\\n")),
        );
    };
    let launched = match launched {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            crate::networks::detach(&paths, &store, id.as_str(), !ports.is_empty());
            fail_start(125, e);
            return Err(());
        }
        None => None,
    };
    let mut spec = spec;
    if let Some(l) = &launched {
        let netns = l.netns().to_path_buf();
        if let Some(ns) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
        {
            for n in ns.iter_mut() {
                if n.typ() == oci_spec::runtime::LinuxNamespaceType::Network {
                    n.set_path(Some(netns.clone()));
                }
            }
        }
    }
    let launched = std::cell::RefCell::new(launched);
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    // The spec names it: `/berth/<id>`, or below its pod's cgroup or
    // `--cgroup-parent`.
    let cgroup_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| crate::config::cgroup_path("", id.as_str()));
    let cgroup = match &hierarchy {
        Some(h) => match runtime::cgroup::Cgroup::create(h, &cgroup_path, &resources) {
            Ok(cg) => Some(cg),
            Err(e) => {
                fail_start(125, format!("creating the cgroup: {e}"));
                return Err(());
            }
        },
        None => None,
    };
    crate::faults::point("monitor.cgroup-made");
    // On v1 the built-in runtime's child joins its cgroups itself (cheaper).
    let child_joins = matches!(hierarchy, Some(runtime::cgroup::Hierarchy::V1 { .. }));
    // `--network none`: a namespace of its own with nothing attached; its
    // loopback comes up as in Docker.
    let loopback_only = networks.is_empty()
        && spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter().any(|n| {
                    n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none()
                })
            });
    // Without a cgroup (rootless on v1) a `--pid host` container's
    // processes are known by its mount namespace: read here, while the
    // init waits to be released (an init that ends at once is gone, with
    // its /proc/PID/ns, by the time the spawn returns).
    let stray_ns: std::cell::Cell<Option<crate::container::procs::Ns>> = std::cell::Cell::new(None);
    let add_to_cgroup = |pid: i32| -> Result<(), runtime::RuntimeError> {
        if cgroup.is_none() {
            stray_ns.set(crate::container::procs::shared_pid_mount_ns(
                std::path::Path::new("/proc"),
                pid,
            ));
        }
        if !child_joins {
            if let Some(cg) = &cgroup {
                cg.add_pid(pid)
                    .map_err(|e| runtime::RuntimeError::Hook(e.to_string()))?;
            }
        }
        if loopback_only {
            crate::networks::loopback_up(pid).map_err(runtime::RuntimeError::Hook)?;
        }
        crate::networks::attach(&paths, &store, id.as_str(), &networks, &ports, pid)
            .map_err(runtime::RuntimeError::Hook)?;
        if let Some(l) = launched.borrow_mut().as_mut() {
            l.finish(&paths, id.as_str(), &ports)
                .map_err(runtime::RuntimeError::Hook)?;
        }
        // The init exists in its namespaces, attached, not yet released.
        crate::faults::point("monitor.before-init");
        Ok(())
    };
    // Published host ports are held for the run: taken by another
    // container or a host process, the start fails as Docker's does.
    // (A user-mode network tool, or rootless berth's port proxy, binds
    // them itself.)
    let reservation = if ports.is_empty() || user_net.is_some() || crate::rootless::active() {
        None
    } else {
        let name = store
            .container(id.as_str())
            .map(|r| r.name)
            .unwrap_or_default();
        match crate::ports::reserve(&store, id.as_str(), &name, &ports) {
            Ok(r) => Some(r),
            Err(e) => {
                if let Some(cg) = &cgroup {
                    let _ = cg.destroy();
                }
                fail_start(125, e);
                return Err(());
            }
        }
    };
    if let Some(size) = shm_size {
        if let Err(e) = crate::shm::mount_for(&bundle, size) {
            if let Some(cg) = &cgroup {
                let _ = cg.destroy();
            }
            crate::networks::detach(&paths, &store, id.as_str(), !ports.is_empty());
            fail_start(125, format!("mounting the container's /dev/shm: {e}"));
            return Err(());
        }
    }
    let exec_gate = launched.borrow_mut().as_mut().and_then(|l| l.gate());
    let spawned = rt.spawn(runtime::SpawnRequest {
        id: id.as_str(),
        spec: &spec,
        bundle: &bundle,
        overlay: &overlay,
        stdio: container_stdio,
        seccomp_bpf: seccomp_bpf.as_deref(),
        before_release: &add_to_cgroup,
        exec_gate,
    });
    // The network tool's own words, when it is why the start failed.
    let tool_failure = match (&spawned, launched.borrow_mut().as_mut()) {
        (Err(e), Some(l)) if e.to_string().contains(runtime::EXEC_GATE_CLOSED) => Some(l.failure()),
        _ => None,
    };
    if let (Ok(_), Some(l)) = (&spawned, launched.into_inner()) {
        l.release();
    }
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => {
            if let Some(cg) = &cgroup {
                let _ = cg.destroy();
            }
            crate::networks::detach(&paths, &store, id.as_str(), !ports.is_empty());
            let _ = rt.cleanup(id.as_str(), &rootfs);
            if shm_size.is_some() {
                crate::shm::unmount(&bundle);
            }
            fail_start(e.exit_code(), tool_failure.unwrap_or_else(|| e.to_string()));
            return Err(());
        }
    };
    // Those its init leaves behind are ended with it, as runc ends such a
    // container's cgroup.
    let strays = match &cgroup {
        None => stray_ns.get().or_else(|| {
            crate::container::procs::shared_pid_mount_ns(
                std::path::Path::new("/proc"),
                spawned.init_pid,
            )
        }),
        Some(_) => None,
    };
    let pid_start = crate::config::process_start_time(spawned.init_pid).unwrap_or(0);
    let me = std::process::id() as i32;
    let runtime_name = rt.name().to_string();
    let mut supervisor = crate::supervise::Supervisor::new(
        paths.clone(),
        id.clone(),
        healthcheck,
        on_failure,
        stop_timeout,
    );
    // The attach socket exists before anyone can see the container
    // running: a client held for (`AttachMode::Held`), or one that saw
    // the new state, connects at once.
    let _ = std::fs::remove_file(&attach_socket);
    let listener = sys::socket::bind_unix(&attach_socket).ok();
    if let Some(l) = &listener {
        let _ = l.set_nonblocking(true);
    }
    // The log file exists before anyone can see the container running: a
    // `logs --follow` opened then holds it, and reads what was written
    // even when the container is removed before it looks again
    // (docker-py's `containers.run(remove=True)` reads its logs after the
    // removal).
    let mut log_writer = crate::logs::Writer::open(&log_path, &log, log_attrs)
        .ok()
        .flatten();
    let started = std::time::Instant::now();
    // A user's stop, kill or rm that came after this restart was decided:
    // it wins, this run ends at once.
    let mut overruled = false;
    let recorded = set_state(&store, &id, |st| {
        overruled = restarting && st.manually_stopped;
        if restarting {
            st.restart_count += 1;
        } else {
            st.restart_count = 0;
            st.manually_stopped = false;
            st.restart_delay_ms = 0;
        }
        st.health = supervisor.initial_health();
        st.status = Status::Running;
        st.pid = spawned.init_pid;
        st.pid_start = pid_start;
        st.monitor_pid = me;
        st.monitor_start = crate::config::process_start_time(me).unwrap_or(0);
        st.exit_code = 0;
        st.oom_killed = false;
        st.error.clear();
        st.started_at = Some(Utc::now());
        st.finished_at = None;
        st.runtime = runtime_name.clone();
        st.stray_ns = strays;
    });
    if recorded.is_err() || overruled {
        // Removed or stopped while starting (a racing rm -f, stop or kill):
        // stop what we started.
        let _ = rt.signal(id.as_str(), spawned.init_pid, libc::SIGKILL);
    }
    crate::faults::point("monitor.running-recorded");
    report(&status_w, &format!("started {}\n", spawned.init_pid));
    let names = event_names(&store, &id, None);
    let on: Vec<(String, String)> = networks
        .iter()
        .map(|n| (n.id.clone(), n.name.clone()))
        .collect();
    emit_network(&paths, &id, &on, "connect");
    emit_named(&paths, &id, &names, "start", &[]);
    let held = match &listener {
        Some(l) if hold_clients > 0 => accept_held(l, hold_clients),
        _ => Vec::new(),
    };
    // An external runtime made its own pty: read the container from it.
    let output = match spawned.console {
        Some(master) => Output::Pty(master),
        None => output,
    };
    // What the CLI and the start path allocated is no longer needed: the
    // monitor stays resident for the container's life.
    sys::process::trim_heap();
    let init_pid = spawned.init_pid;
    let signal_init = |sig: i32| {
        let _ = rt.signal(id.as_str(), init_pid, sig);
    };
    let code = pump(
        Pump {
            listener: listener.as_ref(),
            log: &mut log_writer,
            stdin_w,
            forward_stdin,
            forward_output,
            wait_pid: spawned.wait_pid,
            supervisor: &mut supervisor,
            store: &store,
            signal_init: &signal_init,
            stop_signal,
            clients: held,
            open_stdin,
        },
        output,
    );
    if let Some(ns) = strays {
        crate::container::procs::kill_mount_namespace(ns);
    }
    drop(log_writer);
    drop(reservation);
    // The networks it is on now (`network connect` and `disconnect` may
    // have changed them), read before a --rm container is forgotten.
    let on = networks_now(&store, &id);

    let oom = match &cgroup {
        Some(cg) => cg.oom_killed(),
        None => crate::Engine::container_hierarchy()
            .map(|h| runtime::cgroup::Cgroup::open(&h, &cgroup_path).oom_killed())
            .unwrap_or(false),
    };
    // A --rm container can never start again, so its cgroup can go after
    // the caller has its exit code; a kept one must lose it first, or a
    // quick `start` could race with the removal.
    if !auto_remove {
        if let Some(cg) = &cgroup {
            let _ = cg.destroy();
        }
    }
    let _ = rt.cleanup(id.as_str(), &rootfs);
    if shm_size.is_some() {
        crate::shm::unmount(&bundle);
    }
    crate::networks::detach(&paths, &store, id.as_str(), !ports.is_empty());
    let _ = std::fs::remove_file(&attach_socket);
    let mut trash = None;
    let mut restart_after = None;
    if oom {
        emit_container(&paths, &store, &id, "oom", &[]);
    }
    if auto_remove {
        trash = store.forget_container(&id).ok().flatten();
        crate::volumes::remove_anonymous(&store, &anonymous_volumes);
    } else {
        // From here a `stop` that finds us `restarting` sends SIGTERM to
        // end the back-off: take it through a signalfd, not as death.
        let signals = block_sigterm();
        let ran_for = started.elapsed();
        let force = supervisor.force_restart;
        // The policy as it is now: `update --restart` may have changed it.
        let restart_policy = store
            .container(id.as_str())
            .ok()
            .and_then(|r| serde_json::from_value::<crate::config::ContainerConfig>(r.config).ok())
            .map(|c| c.restart_policy)
            .unwrap_or(restart_policy);
        let _ = set_state(&store, &id, |st| {
            let d = crate::restart::decide(
                restart_policy,
                code,
                st.manually_stopped,
                st.restart_count,
                st.restart_delay_ms,
                ran_for,
            );
            let restart = d.restart || (force && !st.manually_stopped);
            st.restart_delay_ms = d.delay_ms;
            st.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            st.exit_code = code;
            st.oom_killed = oom;
            st.pid = 0;
            st.pid_start = 0;
            st.stray_ns = None;
            if !restart {
                st.monitor_pid = 0;
            }
            st.finished_at = Some(Utc::now());
            if restart {
                restart_after = Some((std::time::Duration::from_millis(d.delay_ms), signals));
            }
        });
    }
    // Let go of the caller's stdout/stderr before reporting, so a reader
    // waiting for EOF on them is not held up by us.
    devnull_onto(&[0, 1, 2]);
    report(&status_w, &format!("exit {code}\n"));
    let names = event_names(&store, &id, Some(&names));
    emit_named(
        &paths,
        &id,
        &names,
        "die",
        &[("exitCode", &code.to_string())],
    );
    emit_network(&paths, &id, &on, "disconnect");
    if auto_remove {
        emit_named(&paths, &id, &names, "destroy", &[]);
    }
    // The container is already gone from the store; its files go last.
    if auto_remove {
        if let Some(cg) = &cgroup {
            let _ = cg.destroy();
        }
    }
    // Deleted with its work dir's lock held: a `system check` meanwhile
    // sees work in progress, not a leftover.
    drop(trash);
    if let Some((delay, signals)) = restart_after {
        // The next monitor is forked from this one: it must not inherit
        // the old status pipe (the caller's), attach socket or database.
        drop(status_w);
        drop(listener);
        drop(store);
        restart(&paths, &id, delay, signals);
    }
    Ok(())
}

/// SIGWINCH, blocked and read from a signalfd: the CLI attached to a `-t`
/// container sends it when its terminal's size changes.
fn winch_signals() -> Option<nix::sys::signalfd::SignalFd> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::SIGWINCH);
    set.thread_block().ok()?;
    nix::sys::signalfd::SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .ok()
}

/// Copy a terminal's size onto the container's pty: from `from` (an
/// attach client's terminal), else from the caller's (our fd 0 or 1 while
/// a foreground `run -t` is attached).
fn sync_size(master: Option<&OwnedFd>, from: Option<&OwnedFd>) {
    let Some(master) = master else { return };
    let size = match from {
        Some(f) => sys::tty::get_winsize(f.as_fd()).ok(),
        None => sys::tty::get_winsize(std::io::stdin().as_fd())
            .or_else(|_| sys::tty::get_winsize(std::io::stdout().as_fd()))
            .ok(),
    };
    if let Some(size) = size.filter(|s| s.rows > 0 && s.cols > 0) {
        let _ = sys::tty::set_winsize(master.as_fd(), size);
    }
}

/// Block SIGTERM and read it from a signalfd instead.
fn block_sigterm() -> Option<nix::sys::signalfd::SignalFd> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::SIGTERM);
    set.thread_block().ok()?;
    nix::sys::signalfd::SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .ok()
}

/// The restart policy's second half: wait the back-off (a SIGTERM from
/// `stop` ends it), then start the container again unless a user stopped
/// it meanwhile. The start forks the next monitor; this one then exits.
fn restart(
    paths: &Paths,
    id: &model::ContainerId,
    delay: std::time::Duration,
    signals: Option<nix::sys::signalfd::SignalFd>,
) {
    let mut cancelled = false;
    crate::faults::point("monitor.restart-backoff");
    match &signals {
        Some(sfd) => {
            let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            let t = PollTimeout::try_from(delay).unwrap_or(PollTimeout::MAX);
            loop {
                match poll(&mut fds, t) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(n) => {
                        cancelled = n > 0;
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        None => std::thread::sleep(delay),
    }
    let Ok(engine) = crate::Engine::open(paths.clone()) else {
        return;
    };
    // A user's stop (or rm) decides; otherwise start.
    let mut go = false;
    let _ = engine.set_state(id, |st| {
        if st.status == Status::Restarting && !st.manually_stopped && !cancelled {
            go = true;
        } else if st.status == Status::Restarting {
            st.status = Status::Exited;
            st.monitor_pid = 0;
        }
    });
    if !go {
        return;
    }
    if let Err(e) = engine.start_restarted(id.as_str()) {
        let message = e.to_string();
        let _ = engine.set_state(id, |st| {
            if st.status == Status::Restarting {
                st.status = Status::Exited;
                st.monitor_pid = 0;
                st.error = message.clone();
            }
        });
    }
}

/// Copy output to the log (and the caller), input to the container, until
/// the init has exited and its output is drained. Returns the exit code.
/// A connected `berth attach` client.
struct Client {
    sock: std::os::unix::net::UnixStream,
    /// It sends stdin for the container.
    stdin: bool,
    /// It has sent its one-byte hello.
    greeted: bool,
    /// It may still send input (false after its EOF; output still flows).
    input_open: bool,
    /// Writing to it failed: drop it.
    dead: bool,
}

/// Frame output for attach clients: `[stream][len u32 BE][data]`; stream 1
/// stdout, 2 stderr, 3 exit (data = the exit code, i32 BE).
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + data.len());
    f.push(stream);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// The poll loop's inputs besides the container's output.
struct Pump<'a> {
    listener: Option<&'a std::os::unix::net::UnixListener>,
    log: &'a mut Option<crate::logs::Writer>,
    stdin_w: Option<OwnedFd>,
    forward_stdin: bool,
    forward_output: bool,
    wait_pid: i32,
    supervisor: &'a mut crate::supervise::Supervisor,
    store: &'a store::Store,
    signal_init: &'a dyn Fn(i32),
    stop_signal: i32,
    /// Clients connected before the pump started (held for).
    clients: Vec<Client>,
    /// See `MonitorArgs::open_stdin`.
    open_stdin: bool,
}

impl Client {
    fn new(sock: std::os::unix::net::UnixStream) -> Client {
        let _ = sock.set_nonblocking(false);
        // A client that stops reading is dropped rather than stalling the
        // monitor (and its probes).
        let _ = sock.set_write_timeout(Some(std::time::Duration::from_secs(5)));
        Client {
            sock,
            stdin: false,
            greeted: false,
            input_open: true,
            dead: false,
        }
    }
}

/// Wait up to 10 s for `n` attach clients (see `AttachMode::Held`); the
/// container's output waits in its pipe meanwhile.
fn accept_held(listener: &std::os::unix::net::UnixListener, n: u32) -> Vec<Client> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut clients = Vec::new();
    while clients.len() < n as usize {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => break,
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
        if let Ok((sock, _)) = listener.accept() {
            clients.push(Client::new(sock));
        }
    }
    clients
}

fn pump(p: Pump<'_>, output: Output) -> i32 {
    let Pump {
        listener,
        log,
        stdin_w,
        forward_stdin,
        forward_output,
        wait_pid,
        supervisor,
        store,
        signal_init,
        stop_signal,
        clients,
        open_stdin,
    } = p;
    let pidfd = sys::process::pidfd_open(wait_pid).ok();
    let (out_fd, err_fd, pty) = match output {
        Output::Pipes { stdout, stderr } => (Some(stdout), Some(stderr), false),
        Output::Pty(master) => (Some(master), None, true),
        Output::Console => (None, None, true),
    };
    let mut out_fd = out_fd;
    let mut err_fd = err_fd;
    // Container stdin: the pipe's write end, or (with a pty) the master.
    let mut stdin_target: Option<OwnedFd> = if pty {
        out_fd
            .as_ref()
            .and_then(|m| m.try_clone().ok())
            .filter(|_| forward_stdin || open_stdin)
    } else {
        stdin_w
    };
    let mut forward_stdin = forward_stdin && stdin_target.is_some();
    let mut forward_output = forward_output;
    let mut exit_code: Option<i32> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut clients = clients;
    // Window sizes: from the caller's terminal (a foreground `run -t`) or
    // the terminal an `attach` client handed over, on each SIGWINCH the
    // CLI sends us.
    let winch = if pty { winch_signals() } else { None };
    let mut size_from: Option<OwnedFd> = None;
    if pty {
        sync_size(out_fd.as_ref(), size_from.as_ref());
    }

    loop {
        if exit_code.is_some() && out_fd.is_none() && err_fd.is_none() {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
        let mut kinds: Vec<u8> = Vec::with_capacity(4);
        if let Some(fd) = &out_fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            kinds.push(b'o');
        }
        if let Some(fd) = &err_fd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            kinds.push(b'e');
        }
        if forward_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            kinds.push(b'i');
        }
        if let Some(l) = listener {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            kinds.push(b'l');
        }
        if let Some(w) = &winch {
            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            kinds.push(b'w');
        }
        let mut polled_clients: Vec<usize> = Vec::new();
        for (i, c) in clients.iter().enumerate().filter(|(_, c)| c.input_open) {
            fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
            kinds.push(b'c');
            polled_clients.push(i);
        }
        if exit_code.is_none() {
            if let Some(p) = &pidfd {
                fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                kinds.push(b'p');
            }
        }
        let supervising = exit_code.is_none();
        if supervising {
            for fd in supervisor.fds() {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                kinds.push(b'h');
            }
        }
        // After the init is gone, give stragglers holding the pipes a grace period.
        let mut timeout = if exit_code.is_some() {
            PollTimeout::from(2000u16)
        } else if pidfd.is_none() {
            PollTimeout::from(200u16)
        } else {
            PollTimeout::NONE
        };
        if supervising {
            if let Some(t) = supervisor.timeout(std::time::Instant::now()) {
                // Round up: waking a hair early would spin.
                let ms = t.as_millis().saturating_add(1).min(60_000) as u16;
                if timeout == PollTimeout::NONE || PollTimeout::from(ms) < timeout {
                    timeout = PollTimeout::from(ms);
                }
            }
        }
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => 0,
        };
        if n == 0 && exit_code.is_some() {
            break;
        }

        let mut client_index = 0usize;
        let ready: Vec<(u8, PollFlags, usize)> = fds
            .iter()
            .zip(&kinds)
            .map(|(f, k)| {
                let mut i = 0;
                if *k == b'c' {
                    i = polled_clients[client_index];
                    client_index += 1;
                }
                (*k, f.revents().unwrap_or(PollFlags::empty()), i)
            })
            .collect();
        drop(fds);
        if exit_code.is_none() {
            match supervisor.service(store, std::time::Instant::now()) {
                crate::supervise::Act::None => {}
                crate::supervise::Act::Kill => signal_init(libc::SIGKILL),
                crate::supervise::Act::Stop => signal_init(stop_signal),
            }
        }
        if pidfd.is_none() && exit_code.is_none() {
            if let Ok(st) = waitpid(
                Pid::from_raw(wait_pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            ) {
                if let Some(c) = status_code(st) {
                    exit_code = Some(c);
                }
            }
        }
        for (kind, rev, ci) in ready {
            if rev.is_empty() {
                continue;
            }
            match kind {
                b'o' | b'e' => {
                    let fd = if kind == b'o' {
                        &mut out_fd
                    } else {
                        &mut err_fd
                    };
                    let Some(f) = fd.as_ref() else { continue };
                    match nix::unistd::read(f.as_fd(), &mut buf) {
                        Ok(0) | Err(nix::errno::Errno::EIO) => *fd = None,
                        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                        Err(_) => *fd = None,
                        Ok(n) => {
                            let data = &buf[..n];
                            let stream = if kind == b'o' {
                                Stream::Stdout
                            } else {
                                Stream::Stderr
                            };
                            if let Some(l) = log.as_mut() {
                                l.write(stream, Utc::now(), data);
                            }
                            let f = frame(if kind == b'o' { 1 } else { 2 }, data);
                            for c in clients.iter_mut() {
                                if std::io::Write::write_all(&mut c.sock, &f).is_err() {
                                    let _ = c.sock.shutdown(std::net::Shutdown::Both);
                                    c.input_open = false;
                                    c.dead = true;
                                }
                            }
                            if forward_output {
                                let target = if kind == b'o' {
                                    stdout.as_fd()
                                } else {
                                    stderr.as_fd()
                                };
                                if !write_all(target, data) {
                                    forward_output = false;
                                }
                            }
                        }
                    }
                }
                b'i' => match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        forward_stdin = false;
                        if !pty {
                            stdin_target = None;
                        }
                    }
                    Ok(n) => {
                        if let Some(t) = &stdin_target {
                            if !write_all(t.as_fd(), &buf[..n]) {
                                forward_stdin = false;
                                stdin_target = None;
                            }
                        }
                    }
                },
                b'l' => {
                    if let Some(l) = listener {
                        if let Ok((sock, _)) = l.accept() {
                            clients.push(Client::new(sock));
                        }
                    }
                }
                b'c' => {
                    let Some(c) = clients.get_mut(ci) else {
                        continue;
                    };
                    // The hello may carry the client's terminal (for sizes).
                    let read = if c.greeted {
                        std::io::Read::read(&mut c.sock, &mut buf)
                    } else {
                        sys::socket::recv_with_fd(c.sock.as_fd(), &mut buf).map(|(n, fd)| {
                            if let Some(fd) = fd.filter(|_| pty) {
                                size_from = Some(fd);
                                sync_size(out_fd.as_ref(), size_from.as_ref());
                            }
                            n
                        })
                    };
                    match read {
                        Ok(0) | Err(_) => {
                            // A client that attached stdin and hit EOF closes the
                            // container's stdin, as `docker attach` does; it keeps
                            // receiving output until the container exits.
                            if c.stdin && !pty {
                                stdin_target = None;
                            }
                            c.input_open = false;
                        }
                        Ok(n) => {
                            let mut data = &buf[..n];
                            if !c.greeted {
                                c.greeted = true;
                                c.stdin = data[0] & 1 == 1;
                                data = &data[1..];
                            }
                            if c.stdin && !data.is_empty() {
                                if let Some(t) = &stdin_target {
                                    let _ = write_all(t.as_fd(), data);
                                }
                            }
                        }
                    }
                }
                b'w' => {
                    if let Some(w) = &winch {
                        let _ = w.read_signal();
                    }
                    sync_size(out_fd.as_ref(), size_from.as_ref());
                }
                b'p' => {
                    if let Ok(st) = waitpid(Pid::from_raw(wait_pid), None) {
                        exit_code = status_code(st).or(Some(255));
                    }
                }
                _ => {}
            }
        }
        clients.retain(|c| !c.dead);
    }
    drop(stdin_target);
    let code = exit_code.unwrap_or_else(|| {
        waitpid(Pid::from_raw(wait_pid), None)
            .ok()
            .and_then(status_code)
            .unwrap_or(255)
    });
    for mut c in clients {
        let _ = std::io::Write::write_all(&mut c.sock, &frame(3, &code.to_be_bytes()));
    }
    code
}

fn status_code(st: WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
