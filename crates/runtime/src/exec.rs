//! Running a new process inside a running container (`berth exec`).
//!
//! The calling process (single-threaded) makes itself non-dumpable, moves
//! its *children* into the container's pid namespace (`setns` on a pid
//! namespace only affects children), and forks. The child joins the
//! container's other namespaces (mount last) and runs the same final steps
//! as a container's init: credentials, capabilities, seccomp, exec.
//!
//! Non-dumpable (CVE-2019-5736): from the fork until `execve`, the process
//! running berth's code is visible inside the container; with
//! `PR_SET_DUMPABLE=0` no container process can open its `/proc/PID/exe`
//! (the host's berth binary) or its memory. `execve` of the container's
//! binary resets the flag.
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{setns, CloneFlags};
use nix::unistd::pipe2;

use crate::builtin::child::{die, finish, Failure};
use crate::plan::ChildPlan;
use crate::RuntimeError;

/// What `exec` needs.
pub struct ExecRequest<'a> {
    /// The container's init pid (host pid namespace).
    pub init_pid: i32,
    /// The container's spec with `process` replaced by the exec'd process.
    pub spec: &'a oci_spec::runtime::Spec,
    /// stdin, stdout, stderr of the new process.
    pub stdio: [OwnedFd; 3],
    /// Compiled seccomp filter (the container's).
    pub seccomp_bpf: Option<&'a [u8]>,
    /// Called with the new process's pid before it proceeds (cgroup join).
    pub before_release: &'a dyn Fn(i32) -> Result<(), RuntimeError>,
}

/// The user namespace first: the others belong to it, and joining it gives
/// the capabilities over them (host root has none there once it joined).
const JOIN_ORDER: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Start the process; returns its pid (a child of the caller) once it has
/// exec'd, or the reason it could not (126/127 as Docker).
pub fn spawn(req: ExecRequest<'_>) -> Result<i32, RuntimeError> {
    let plan = ChildPlan::from_spec(req.spec)?;
    let ns_dir = format!("/proc/{}/ns", req.init_pid);
    let not_running = |e: std::io::Error| RuntimeError::Start {
        code: 125,
        message: format!(
            "the container is not running (pid {} is gone: {e})",
            req.init_pid
        ),
    };
    let pid_ns = std::fs::File::open(format!("{ns_dir}/pid")).map_err(not_running)?;
    let mut join = Vec::new();
    // Rootless, a container's nested user namespace is joined last: its
    // network namespace (pasta's) belongs to berth's, over which a member
    // of the nested one has no power; berth's root, which made the nested
    // one, has every power over the container's other namespaces.
    let mut order = JOIN_ORDER.to_vec();
    if sys::process::in_user_namespace() {
        order.rotate_left(1);
    }
    for (name, flag) in order {
        let path = format!("{ns_dir}/{name}");
        let mine = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        let theirs = std::fs::read_link(&path).map_err(not_running)?;
        if mine.as_ref() != Some(&theirs) || flag == CloneFlags::CLONE_NEWNS {
            join.push((
                OwnedFd::from(std::fs::File::open(&path).map_err(not_running)?),
                flag,
            ));
        }
    }
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| RuntimeError::sys("making berth non-dumpable", e))?;
    // The caller's own pid namespace, to return to once the exec process
    // is forked: a process whose children's pid namespace is not its own
    // cannot create threads (EINVAL), and a long-running caller (compose
    // watch) starts builds after an exec.
    let own_pid_ns = std::fs::File::open("/proc/self/ns/pid")
        .map_err(|e| RuntimeError::sys("opening our pid namespace", e))?;
    let (release_r, release_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("creating a pipe", e))?;
    let (err_r, err_w) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("creating a pipe", e))?;
    // In rootless berth's user namespace the host's pid namespace, ours,
    // is out of reach once left: an intermediate process enters the
    // container's instead and forks the exec process for us.
    let forked = if sys::process::in_user_namespace() {
        sys::process::fork_in_pid_ns(pid_ns.as_fd(), 0)
    } else {
        setns(&pid_ns, CloneFlags::CLONE_NEWPID)
            .map_err(|e| RuntimeError::sys("joining the pid namespace", e))?;
        let forked = sys::process::fork();
        if !matches!(forked, Ok(sys::process::Forked::Child)) {
            setns(&own_pid_ns, CloneFlags::CLONE_NEWPID)
                .map_err(|e| RuntimeError::sys("returning to our pid namespace", e))?;
        }
        forked
    };
    match forked.map_err(|e| RuntimeError::sys("creating the exec process", e))? {
        sys::process::Forked::Child => {
            drop(release_w);
            drop(err_r);
            let report = err_w.try_clone().ok();
            let result = (|| -> Result<std::convert::Infallible, Failure> {
                let mut byte = [0u8; 1];
                match nix::unistd::read(release_r.as_fd(), &mut byte) {
                    Ok(1) => {}
                    _ => sys::process::exit_now(125),
                }
                for (fd, flag) in &join {
                    setns(fd, *flag).map_err(|e| Failure {
                        code: 125,
                        message: format!("joining the container's {flag:?} namespace: {e}"),
                    })?;
                }
                nix::unistd::setsid().map_err(|e| Failure {
                    code: 125,
                    message: format!("setsid: {e}"),
                })?;
                if plan.terminal {
                    sys::tty::set_controlling_tty(req.stdio[0].as_fd()).map_err(|e| Failure {
                        code: 125,
                        message: format!("setting the controlling terminal: {e}"),
                    })?;
                }
                finish(&plan, req.stdio, req.seccomp_bpf)
            })();
            die(report, result)
        }
        sys::process::Forked::Parent(pid) => {
            drop(release_r);
            drop(err_w);
            drop(req.stdio);
            crate::builtin::release_and_check(pid, release_w, err_r, req.before_release, "exec")?;
            Ok(pid)
        }
    }
}
