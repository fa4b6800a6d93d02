//! Our own start path (DESIGN.md, "The container contract").
//!
//! The parent (the container's monitor, single-threaded) clones a child
//! into new pid/mount/uts/ipc/net namespaces; the child blocks on a pipe
//! until the parent has put it into its cgroups, then builds its root
//! filesystem, pivots into it, drops privileges and execs. A close-on-exec
//! error pipe tells the parent whether the exec happened (EOF) or why not.
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe2, Pid};

use crate::plan::{ChildPlan, IdMaps, MountKind};
use crate::{Runtime, RuntimeError, SpawnRequest, Spawned};

pub(crate) mod child;

/// How the host's cgroup filesystems are laid out, so the container's
/// /sys/fs/cgroup can mirror it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Pure cgroup v2: one cgroup2 mount.
    V2,
    /// cgroup v1 (or hybrid): one mount per hierarchy, named by its
    /// controllers (`cpu,cpuacct`), plus symlinks (`cpu -> cpu,cpuacct`).
    V1 {
        /// Hierarchy dir names under /sys/fs/cgroup.
        hierarchies: Vec<String>,
        /// (link name, target) pairs.
        links: Vec<(String, String)>,
    },
}

impl CgroupLayout {
    /// Read the host's layout from /sys/fs/cgroup (one statfs, one readdir).
    pub fn detect(root: &Path) -> Result<CgroupLayout, RuntimeError> {
        let st = nix::sys::statfs::statfs(root)
            .map_err(|e| RuntimeError::sys(format!("statfs {}", root.display()), e))?;
        if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            return Ok(CgroupLayout::V2);
        }
        let mut hierarchies = Vec::new();
        let mut links = Vec::new();
        let entries = std::fs::read_dir(root)
            .map_err(|e| RuntimeError::sys(format!("reading {}", root.display()), e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                if let Ok(t) = std::fs::read_link(e.path()) {
                    links.push((name, t.to_string_lossy().into_owned()));
                }
            } else if ft.is_dir() && name != "unified" && name != "systemd" {
                let st = nix::sys::statfs::statfs(&e.path());
                if matches!(st, Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP_SUPER_MAGIC)
                {
                    hierarchies.push(name);
                }
            }
        }
        hierarchies.sort();
        links.retain(|(_, t)| hierarchies.contains(t));
        links.sort();
        Ok(CgroupLayout::V1 { hierarchies, links })
    }
}

/// The parent's side of the start handshake, shared with `exec`: run the
/// pre-release hook, release the child, then read its report pipe until
/// EOF (exec happened) or an error (the child exits; it is reaped here).
/// On any failure the child is killed and reaped.
pub(crate) fn release_and_check(
    pid: i32,
    release_w: OwnedFd,
    err_r: OwnedFd,
    before_release: &dyn Fn(i32) -> Result<(), RuntimeError>,
    what: &str,
) -> Result<(), RuntimeError> {
    let abort = |e: RuntimeError| {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        e
    };
    before_release(pid).map_err(abort)?;
    nix::unistd::write(release_w.as_fd(), &[1]).map_err(|e| {
        abort(RuntimeError::sys(
            format!("releasing the {what} process"),
            e,
        ))
    })?;
    drop(release_w);
    let mut report = Vec::new();
    std::fs::File::from(err_r)
        .read_to_end(&mut report)
        .map_err(|e| {
            abort(RuntimeError::sys(
                format!("reading the {what} start report"),
                e,
            ))
        })?;
    if !report.is_empty() {
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err(decode_report(&report));
    }
    Ok(())
}

/// The `tasks` file of each cgroup v1 hierarchy's dir of the container,
/// opened for writing by the parent: the child writes `0` to join (moving
/// only itself lets the kernel skip the global threadgroup lock, whose RCU
/// grace period made a `cgroup.procs` write from the parent cost ~8 ms
/// here). The kernel checks the opener's credentials, so this works from
/// inside a user namespace, whose root is nobody to those files.
fn open_cgroup_tasks(
    layout: Option<&CgroupLayout>,
    rel: Option<&Path>,
) -> Result<Vec<(PathBuf, OwnedFd)>, RuntimeError> {
    let (Some(CgroupLayout::V1 { hierarchies, .. }), Some(rel)) = (layout, rel) else {
        return Ok(Vec::new());
    };
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let mut out = Vec::new();
    for h in hierarchies {
        let tasks = Path::new("/sys/fs/cgroup").join(h).join(rel).join("tasks");
        match std::fs::OpenOptions::new().write(true).open(&tasks) {
            Ok(f) => out.push((tasks, OwnedFd::from(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RuntimeError::sys(
                    format!("opening cgroup {}", tasks.display()),
                    e,
                ))
            }
        }
    }
    Ok(out)
}

/// The built-in runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

/// Decode the child's error report: `<code>\n<message>`.
pub(crate) fn decode_report(buf: &[u8]) -> RuntimeError {
    let text = String::from_utf8_lossy(buf);
    let (code, message) = text.split_once('\n').unwrap_or(("125", &text));
    RuntimeError::Start {
        code: code.trim().parse().unwrap_or(125),
        message: message.trim().to_string(),
    }
}

impl Runtime for Builtin {
    fn name(&self) -> &str {
        "berth"
    }

    fn spawn(&self, req: SpawnRequest<'_>) -> Result<Spawned, RuntimeError> {
        let plan = ChildPlan::from_spec(req.spec)?;
        let cgroup_layout = if plan.mounts.iter().any(|m| m.kind == MountKind::Cgroup) {
            Some(CgroupLayout::detect(Path::new("/sys/fs/cgroup"))?)
        } else {
            None
        };
        let mut join = Vec::with_capacity(plan.join.len());
        for (path, flag) in &plan.join {
            let fd = std::fs::File::open(path).map_err(|e| {
                RuntimeError::sys(format!("opening namespace {}", path.display()), e)
            })?;
            join.push((OwnedFd::from(fd), *flag));
        }
        let (release_r, release_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("creating a pipe", e))?;
        let (err_r, err_w) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("creating a pipe", e))?;
        // With a terminal the child makes the pty in the container's devpts
        // and sends the master back on this pair.
        let console = if plan.terminal {
            Some(
                nix::sys::socket::socketpair(
                    nix::sys::socket::AddressFamily::Unix,
                    nix::sys::socket::SockType::Stream,
                    None,
                    nix::sys::socket::SockFlag::SOCK_CLOEXEC,
                )
                .map_err(|e| RuntimeError::sys("creating the console socket", e))?,
            )
        } else {
            None
        };
        let (console_parent, console_child) = match console {
            Some((p, c)) => (Some(p), Some(c)),
            None => (None, None),
        };

        // `--pid container:`: fork inside the donor's pid namespace, then
        // come back (a process whose children's pid namespace is not its
        // own cannot create threads). In rootless berth's user namespace
        // there is no coming back to the host's: an intermediate process
        // enters it and forks the child for us (`fork_in_pid_ns`).
        // Joining a user namespace, the intermediate process enters the
        // pid namespace too (before the user namespace, while it has the
        // power to).
        let mut pid_target = None;
        let pid_ns = match &plan.pid_join {
            Some(path) => {
                let target = std::fs::File::open(path).map_err(|e| {
                    RuntimeError::sys(format!("opening namespace {}", path.display()), e)
                })?;
                if sys::process::in_user_namespace() || plan.userns_join.is_some() {
                    pid_target = Some(target);
                    None
                } else {
                    let own = std::fs::File::open("/proc/self/ns/pid")
                        .map_err(|e| RuntimeError::sys("opening our pid namespace", e))?;
                    nix::sched::setns(&target, CloneFlags::CLONE_NEWPID)
                        .map_err(|e| RuntimeError::sys("joining the pid namespace", e))?;
                    Some(own)
                }
            }
            None => None,
        };
        // A user namespace: the parent makes the root filesystem, bind
        // mounts and device nodes first (the child could not, see
        // `userns`).
        // An existing one to join must have the maps the spec says (the
        // engine made the root's owners and the container's files for
        // them).
        let joined_userns = match (&plan.userns_join, &plan.userns) {
            (Some(path), Some(maps)) => {
                let (fd, has) = crate::userns::open_at(path)?;
                if has != *maps {
                    let text =
                        |m: &IdMaps| crate::userns::map_text(&m.uid).trim().replace('\n', ", ");
                    return Err(RuntimeError::UserNamespace {
                        path: path.clone(),
                        reason: format!(
                            "its uid map is now {} where the container was made for {}: recreate the container",
                            text(&has),
                            text(maps)
                        ),
                    });
                }
                Some(fd)
            }
            _ => None,
        };
        let prepared = match &plan.userns {
            Some(maps) => Some(crate::userns::prepare(
                &plan,
                req.overlay,
                maps,
                joined_userns.as_ref().map(|f| f.as_fd()),
            )?),
            None => None,
        };
        let cgroup_tasks = open_cgroup_tasks(cgroup_layout.as_ref(), plan.cgroups_path.as_deref())?;
        let mut flags = plan.clone_flags;
        if plan.userns.is_some() && joined_userns.is_none() {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        // Rootless with a nested user namespace: the namespaces to join
        // (the network namespace pasta serves) belong to berth's user
        // namespace, which the child leaves when it is cloned into its
        // own; an intermediate process joins them and clones it there.
        // Joining a user namespace, the intermediate process joins every
        // namespace, that one last.
        let early = if plan.userns.is_some()
            && (sys::process::in_user_namespace() || joined_userns.is_some())
        {
            std::mem::take(&mut join)
        } else {
            Vec::new()
        };
        // Only rootless: the network namespace is of berth's user
        // namespace, not of the container's (as root, one joined with the
        // container's user namespace belongs to it).
        let joins_net = early.iter().any(|(_, f)| *f == CloneFlags::CLONE_NEWNET)
            && sys::process::in_user_namespace();
        let through_intermediate =
            joined_userns.is_some() || (pid_target.is_none() && !early.is_empty());
        let forked = match &pid_target {
            Some(target) if !through_intermediate => {
                sys::process::fork_in_pid_ns(target.as_fd(), flags.bits())
            }
            _ if through_intermediate => {
                let mut joins: Vec<_> = early.iter().map(|(fd, f)| (fd.as_fd(), *f)).collect();
                if let Some(t) = &pid_target {
                    joins.push((t.as_fd(), CloneFlags::CLONE_NEWPID));
                }
                // A joined network namespace's sysctls too: the child's
                // root has no power over it.
                // Its root may bind ports below 1024 there, as in a
                // network namespace of its own, unless a sysctl says else.
                let low_ports = "net.ipv4.ip_unprivileged_port_start";
                let net_sysctls = || -> std::io::Result<()> {
                    if !joins_net {
                        return Ok(());
                    }
                    let mut net: Vec<(&str, &str)> = plan
                        .sysctls
                        .iter()
                        .filter(|(k, _)| k.starts_with("net."))
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    if !net.iter().any(|(k, _)| *k == low_ports) {
                        net.push((low_ports, "0"));
                    }
                    for (k, v) in net {
                        std::fs::write(format!("/proc/sys/{}", k.replace('.', "/")), v)?;
                    }
                    Ok(())
                };
                let mut inside = || -> std::io::Result<()> {
                    net_sysctls()?;
                    match &joined_userns {
                        Some(u) => nix::sched::setns(u, CloneFlags::CLONE_NEWUSER)
                            .map_err(std::io::Error::from),
                        None => Ok(()),
                    }
                };
                sys::process::fork_in_namespaces(&joins, &mut inside, flags.bits())
            }
            _ => sys::process::clone_fork(flags.bits()),
        };
        let net_sysctls_done = joins_net && through_intermediate;
        drop(early);
        drop(pid_target);
        if let (Some(own), Ok(sys::process::Forked::Parent(_)) | Err(_)) = (&pid_ns, &forked) {
            nix::sched::setns(own, CloneFlags::CLONE_NEWPID)
                .map_err(|e| RuntimeError::sys("returning to our pid namespace", e))?;
        }
        drop(pid_ns);
        match forked.map_err(|e| RuntimeError::sys("creating the container process", e))? {
            sys::process::Forked::Child => {
                drop(release_w);
                drop(err_r);
                drop(console_parent);
                child::run(child::ChildArgs {
                    plan: &plan,
                    overlay: req.overlay,
                    cgroup_layout: cgroup_layout.as_ref(),
                    stdio: req.stdio,
                    join,
                    release: release_r,
                    report: err_w,
                    seccomp_bpf: req.seccomp_bpf,
                    console: console_child,
                    cgroup_tasks,
                    prepared,
                    exec_gate: req.exec_gate,
                    net_sysctls_done,
                })
            }
            sys::process::Forked::Parent(pid) => {
                drop(release_r);
                drop(err_w);
                drop(req.stdio);
                drop(req.exec_gate);
                drop(join);
                drop(console_child);
                drop(cgroup_tasks);
                drop(prepared);
                // The maps before anything else: the child waits for them
                // to become its namespace's root.
                let hook = |pid: i32| -> Result<(), RuntimeError> {
                    if let (Some(maps), None) = (&plan.userns, &plan.userns_join) {
                        crate::userns::write_maps(pid, maps)?;
                    }
                    (req.before_release)(pid)
                };
                release_and_check(pid, release_w, err_r, &hook, "container")?;
                // The child sent the master before it exec'd.
                let console = match console_parent {
                    Some(sock) => {
                        let mut byte = [0u8; 1];
                        match sys::socket::recv_with_fd(sock.as_fd(), &mut byte) {
                            Ok((_, Some(master))) => Some(master),
                            Ok((_, None)) | Err(_) => {
                                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                                let _ = waitpid(Pid::from_raw(pid), None);
                                return Err(RuntimeError::Start {
                                    code: 125,
                                    message: "the container did not hand over its terminal".into(),
                                });
                            }
                        }
                    }
                    None => None,
                };
                Ok(Spawned {
                    wait_pid: pid,
                    init_pid: pid,
                    console,
                })
            }
        }
    }

    fn signal(&self, _id: &str, init_pid: i32, signal: i32) -> Result<(), RuntimeError> {
        let sig = Signal::try_from(signal)
            .map_err(|e| RuntimeError::sys(format!("signal {signal}"), e))?;
        kill(Pid::from_raw(init_pid), sig)
            .map_err(|e| RuntimeError::sys(format!("sending {sig} to pid {init_pid}"), e))
    }

    fn cleanup(&self, _id: &str, _rootfs: &Path) -> Result<(), RuntimeError> {
        // The rootfs and every other mount lived in the container's own
        // mount namespace and went away with it.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_reports() {
        match decode_report(b"127\nexec: \"nope\": executable file not found in $PATH") {
            RuntimeError::Start { code, message } => {
                assert_eq!(code, 127);
                assert!(message.contains("nope"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn detects_this_hosts_cgroups() {
        let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup")).unwrap();
        if let CgroupLayout::V1 { hierarchies, .. } = layout {
            assert!(hierarchies.iter().all(|h| h != "unified"));
        }
    }
}
