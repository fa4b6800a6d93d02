//! Rootless berth (podman's rootless mode): run by an unprivileged user,
//! berth works in a user namespace of that user's where it is root.
//!
//! The user's own uid is the namespace's 0 and the user's subordinate ids
//! (`/etc/subuid`, `/etc/subgid`) are 1..N, written by the setuid helpers
//! `newuidmap`/`newgidmap` (Debian's `uidmap`). The namespace, with a
//! mount namespace of its own, is held open by a **pause process**
//! (`berth-pause`, podman's `catatonit -P`): the first command makes it
//! and records its pid in `<runroot>/pause.pid`; every command joins its
//! namespaces (`setns`) before it does anything else, so containers,
//! monitors and later commands share one namespace and each command can
//! reach what the others made. `berth system reset` ends it.
//!
//! State lives under the user's directories (podman's places):
//! `$XDG_DATA_HOME/berth` (`~/.local/share/berth`), `$XDG_RUNTIME_DIR/berth`
//! (else `/tmp/berth-run-$UID`), `$XDG_CONFIG_HOME/berth`.
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

/// Set in the environment of a process that is in (or made) the rootless
/// namespace: the user's host uid. A command run inside (`berth unshare
/// berth ps`) knows from it that it is rootless berth already.
pub const ENV_UID: &str = "_BERTH_ROOTLESS_UID";

/// Why rootless berth cannot set itself up. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    /// A setuid helper is missing.
    #[error("rootless berth needs {tool} to map the user's subordinate ids, and it is not installed: install it (as root: apt-get install uidmap)")]
    NoHelper {
        /// `newuidmap` or `newgidmap`.
        tool: &'static str,
    },
    /// The user has no subordinate ids.
    #[error("no subordinate {kind}s for user {user:?} in {}: add a line such as \"{user}:100000:65536\" to it (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user})", file.display())]
    NoSubordinateIds {
        /// `uid` or `gid`.
        kind: &'static str,
        /// The user's name.
        user: String,
        /// `/etc/subuid` or `/etc/subgid`.
        file: PathBuf,
    },
    /// A helper refused the maps.
    #[error("{tool} failed ({status}): {stderr}")]
    Helper {
        /// `newuidmap` or `newgidmap`.
        tool: &'static str,
        /// Its exit status.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// The runtime dir is not the user's own.
    #[error("runtime directory {}: {reason}", path.display())]
    RunDir {
        /// The dir.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Making or joining the namespaces failed.
    #[error("{what}: {source}")]
    Namespace {
        /// What was being done.
        what: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// `berth unshare` as root.
    #[error("berth unshare is for rootless berth: run it as an unprivileged user (as root there is no namespace to enter)")]
    NotRootless,
}

fn ns_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RootlessError {
    let what = what.into();
    move |source| RootlessError::Namespace { what, source }
}

fn errno(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Is berth rootless: run by a user other than root, or inside the
/// namespace rootless berth made (then it is that namespace's root)?
pub fn wanted() -> bool {
    !nix::unistd::geteuid().is_root()
        || (std::env::var_os(ENV_UID).is_some() && sys::process::in_user_namespace())
}

/// Is this process in rootless berth's namespace (entered, or a monitor
/// forked there)? Where it is, cgroups are not berth's to make (cgroup v1
/// gives an unprivileged user none), devices are bound from the host,
/// overlayfs keeps its attributes in `user.overlay.*` (`userxattr`) and
/// networks are pasta's or slirp4netns' instead of bridges.
pub fn active() -> bool {
    sys::process::in_user_namespace()
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn home() -> PathBuf {
    env_dir("HOME").unwrap_or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.dir)
            .unwrap_or_else(|| PathBuf::from("/"))
    })
}

/// The host uid of the user berth runs for (the namespace's 0).
pub(crate) fn host_uid() -> u32 {
    std::env::var(ENV_UID)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| nix::unistd::getuid().as_raw())
}

/// The rootless `--root`: `$XDG_DATA_HOME/berth`, else
/// `~/.local/share/berth` (podman's `~/.local/share/containers/storage`).
pub fn default_root() -> PathBuf {
    env_dir("XDG_DATA_HOME")
        .unwrap_or_else(|| home().join(".local/share"))
        .join("berth")
}

/// The rootless `--runroot`: `$XDG_RUNTIME_DIR/berth`, else
/// `/tmp/berth-run-$UID` (podman's fallback `/tmp/podman-run-$UID`).
pub fn default_runroot() -> PathBuf {
    match env_dir("XDG_RUNTIME_DIR") {
        Some(d) => d.join("berth"),
        None => PathBuf::from(format!("/tmp/berth-run-{}", host_uid())),
    }
}

/// One `name:start:count` line's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First host id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// The ranges of the user (by name or by uid, as shadow's helpers match)
/// in a subordinate id file's text.
pub fn ranges(text: &str, user: &str, uid: u32) -> Vec<Range> {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            match f.as_slice() {
                [name, start, count] if *name == user || *name == uid => Some(Range {
                    start: start.trim().parse().ok()?,
                    count: count.trim().parse().ok().filter(|c| *c > 0)?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The arguments of `newuidmap PID …` after the pid: the user's own id
/// as 0, the subordinate ranges from 1 on.
pub fn map_args(own: u32, ranges: &[Range]) -> Vec<String> {
    let mut out = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut next: u64 = 1;
    for r in ranges {
        if next + u64::from(r.count) > u64::from(u32::MAX) {
            break;
        }
        out.extend([next.to_string(), r.start.to_string(), r.count.to_string()]);
        next += u64::from(r.count);
    }
    out
}

fn find_helper(tool: &'static str) -> Result<PathBuf, RootlessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(RootlessError::NoHelper { tool })
}

struct Plan {
    newuidmap: PathBuf,
    newgidmap: PathBuf,
    uid_args: Vec<String>,
    gid_args: Vec<String>,
}

fn plan() -> Result<Plan, RootlessError> {
    let newuidmap = find_helper("newuidmap")?;
    let newgidmap = find_helper("newgidmap")?;
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let read = |file: &Path, kind: &'static str| -> Result<Vec<Range>, RootlessError> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let found = ranges(&text, &user, uid);
        if found.is_empty() {
            return Err(RootlessError::NoSubordinateIds {
                kind,
                user: user.clone(),
                file: file.to_path_buf(),
            });
        }
        Ok(found)
    };
    let subuid = read(Path::new("/etc/subuid"), "uid")?;
    let subgid = read(Path::new("/etc/subgid"), "gid")?;
    Ok(Plan {
        newuidmap,
        newgidmap,
        uid_args: map_args(uid, &subuid),
        gid_args: map_args(gid, &subgid),
    })
}

/// Make the runtime dir the user's own, `0700`; a fallback under `/tmp`
/// made by someone else is refused (anyone can create it first).
fn own_dir(dir: &Path) -> Result<(), RootlessError> {
    let bad = |reason: String| RootlessError::RunDir {
        path: dir.to_path_buf(),
        reason,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| bad(format!("creating its parent: {e}")))?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| bad(e.to_string()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(bad(format!("creating it: {e}"))),
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| bad(e.to_string()))?;
    if !m.is_dir() || m.uid() != nix::unistd::getuid().as_raw() {
        return Err(bad(
            "it is not a directory of this user's: remove it or set XDG_RUNTIME_DIR (or --runroot) to one".into(),
        ));
    }
    Ok(())
}

/// The pause process recorded in `pause.pid`, if it is alive, ours and in
/// another user namespace than ours.
fn live_pause(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let m = std::fs::metadata(&proc_dir).ok()?;
    if m.uid() != nix::unistd::getuid().as_raw() {
        return None;
    }
    let comm = std::fs::read_to_string(proc_dir.join("comm")).ok()?;
    if comm.trim() != PAUSE_NAME {
        return None;
    }
    // A zombie (killed, not yet reaped) keeps its comm but has no
    // namespaces left.
    std::fs::metadata(proc_dir.join("ns/mnt")).ok()?;
    let theirs = std::fs::metadata(proc_dir.join("ns/user")).ok()?.ino();
    let ours = std::fs::metadata("/proc/self/ns/user").ok()?.ino();
    (theirs != ours).then_some(pid)
}

const PAUSE_NAME: &str = "berth-pause";

/// Enter rootless berth's namespace: join the pause process's, making it
/// first if there is none (nothing to do for root). Whether the process
/// is in a user namespace must not be asked before ([`active`] keeps its
/// first answer). Must be called by an unprivileged user while
/// the process is single-threaded (the kernel refuses `setns` into a user
/// namespace otherwise), before anything else: the working directory is
/// kept, the process becomes the namespace's root.
pub fn enter(root: &Path, runroot: &Path) -> Result<(), RootlessError> {
    // Root already: in the namespace (`berth unshare berth …`), or rootful.
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    own_dir(runroot)?;
    let lock_path = runroot.join("pause.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(ns_err(format!("opening {}", lock_path.display())))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| ns_err(format!("locking {}", lock_path.display()))(errno(e)))?;
    let pid_file = runroot.join("pause.pid");
    let record = |pid: i32| {
        let tmp = runroot.join("pause.pid.tmp");
        std::fs::write(&tmp, pid.to_string())
            .and_then(|()| std::fs::rename(&tmp, &pid_file))
            .map_err(ns_err(format!("writing {}", pid_file.display())))
    };
    if let Some(pid) = live_pause(&pid_file) {
        return join(pid);
    }
    // The pause process is gone (killed) but containers of this root
    // still run: their monitors hold the namespace. Join it through one
    // and leave a new pause process there (podman rejoins through a
    // conmon the same way).
    if let Some(monitor) = orphaned_namespace(root) {
        join(monitor)?;
        return record(fork_pause()?);
    }
    let plan = plan()?;
    let pid = make_pause(&plan)?;
    record(pid)?;
    join(pid)
}

/// A monitor of this root's (a `berth` process of the user's, in a user
/// namespace other than ours, holding the root's database open).
fn orphaned_namespace(root: &Path) -> Option<i32> {
    let me = nix::unistd::getuid().as_raw();
    let ours = std::fs::metadata("/proc/self/ns/user").ok()?.ino();
    let db = root.join("db");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let dir = e.path();
        let of_user = std::fs::metadata(&dir).is_ok_and(|m| m.uid() == me);
        let is_berth = std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "berth");
        if !of_user || !is_berth {
            continue;
        }
        let elsewhere = std::fs::metadata(dir.join("ns/user")).is_ok_and(|m| m.ino() != ours)
            && std::fs::metadata(dir.join("ns/mnt")).is_ok();
        let holds_db = std::fs::read_dir(dir.join("fd")).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(&db)))
        });
        if elsewhere && holds_db {
            return Some(pid);
        }
    }
    None
}

/// A new pause process in the namespace this process has joined.
fn fork_pause() -> Result<i32, RootlessError> {
    let (named_r, named_w) = name_pipe()?;
    match sys::process::fork() {
        Ok(sys::process::Forked::Child) => {
            drop(named_r);
            take_name(named_w);
            pause_forever()
        }
        Ok(sys::process::Forked::Parent(pid)) => {
            drop(named_w);
            wait_named(named_r);
            Ok(pid)
        }
        Err(e) => Err(ns_err("starting a new pause process")(e)),
    }
}

/// The pipe on which a new pause process says it has taken its name.
/// Its pid is recorded only then: a command that reads the pid file
/// meanwhile (the other half of `berth unshare … | berth import`) would
/// not know it for a pause process by its name and make a second one — a
/// second namespace, and a pause process nobody ends.
fn name_pipe() -> Result<(OwnedFd, OwnedFd), RootlessError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ns_err("creating a pipe")(errno(e)))
}

/// In the new pause process: take its name, then say so.
fn take_name(named_w: OwnedFd) {
    let _ = nix::sys::prctl::set_name(c"berth-pause");
    let _ = std::fs::File::from(named_w).write_all(&[1]);
}

/// In its parent: until it has its name (or is gone).
fn wait_named(named_r: OwnedFd) {
    let mut byte = [0u8; 1];
    let _ = std::fs::File::from(named_r).read(&mut byte);
}

/// Make the pause process: a child in a new user and mount namespace that
/// waits for its maps, detaches and sleeps until it is killed.
fn make_pause(plan: &Plan) -> Result<i32, RootlessError> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ns_err("creating a pipe")(errno(e)))?;
    let (named_r, named_w) = name_pipe()?;
    let flags = (CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).bits();
    match sys::process::clone_fork(flags) {
        Err(e) => Err(RootlessError::Namespace {
            what: "creating a user namespace (is kernel.unprivileged_userns_clone or user.max_user_namespaces 0?)".into(),
            source: e,
        }),
        Ok(sys::process::Forked::Child) => {
            drop(ready_w);
            drop(named_r);
            take_name(named_w);
            let mut byte = [0u8; 1];
            let ok = matches!(std::fs::File::from(ready_r).read(&mut byte), Ok(1));
            if !ok {
                sys::process::exit_now(1);
            }
            pause_forever()
        }
        Ok(sys::process::Forked::Parent(pid)) => {
            drop(ready_r);
            drop(named_w);
            wait_named(named_r);
            let abort = |e: RootlessError| {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                e
            };
            for (tool, exe, args) in [
                ("newuidmap", &plan.newuidmap, &plan.uid_args),
                ("newgidmap", &plan.newgidmap, &plan.gid_args),
            ] {
                let out = std::process::Command::new(exe)
                    .arg(pid.to_string())
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| abort(ns_err(format!("running {}", exe.display()))(e)))?;
                if !out.status.success() {
                    return Err(abort(RootlessError::Helper {
                        tool,
                        status: out.status.to_string(),
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    }));
                }
            }
            std::fs::File::from(ready_w)
                .write_all(&[1])
                .map_err(|e| abort(ns_err("releasing the pause process")(e)))?;
            Ok(pid)
        }
    }
}

fn pause_forever() -> ! {
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let _ = sys::process::close_from(0);
    loop {
        nix::unistd::pause();
    }
}

/// Join the pause process's user and mount namespaces and become their
/// root; the working directory is the same path after.
fn join(pid: i32) -> Result<(), RootlessError> {
    let cwd = std::env::current_dir().ok();
    let host_uid = nix::unistd::getuid().as_raw();
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        std::fs::File::open(&p).map_err(ns_err(format!("opening {p}")))
    };
    let user = open("user")?;
    let mnt = open("mnt")?;
    nix::sched::setns(user.as_fd(), CloneFlags::CLONE_NEWUSER)
        .map_err(|e| ns_err("joining rootless berth's user namespace")(errno(e)))?;
    nix::sched::setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS)
        .map_err(|e| ns_err("joining rootless berth's mount namespace")(errno(e)))?;
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(|e| ns_err("becoming the namespace's root group")(errno(e)))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(|e| ns_err("becoming the namespace's root")(errno(e)))?;
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    // Still single-threaded: changing the environment races nothing.
    std::env::set_var(ENV_UID, host_uid.to_string());
    Ok(())
}

/// The cgroup hierarchy containers are made in: the host's for rootful
/// berth; rootless, the user's delegated cgroup v2 subtree (systemd's
/// `user@UID.service`, see [`runtime::cgroup::delegation`]) as the root,
/// or `None` where there is none (cgroup v1, as here, or v2 without
/// delegation): then containers get no cgroup, as podman's.
pub fn cgroup_hierarchy() -> crate::Result<Option<runtime::cgroup::Hierarchy>> {
    if !active() {
        return Ok(Some(runtime::cgroup::Hierarchy::detect()?));
    }
    Ok(runtime::cgroup::delegation::detect()
        .ok()
        .map(|d| d.hierarchy()))
}

/// The warning when a rootless container asks for resource limits and
/// there is no cgroup of the user's to set them in. On cgroup v1
/// podman's, word for word (limits need cgroup v2 with the controllers
/// delegated to the user); on v2 without a delegated subtree, why none is
/// usable. `None` when nothing is asked, berth is rootful, or a delegated
/// subtree takes the limits.
pub fn limit_warning(req: &crate::container::create::CreateRequest) -> Option<String> {
    let asked = req.memory.is_some()
        || req.memory_swap.is_some()
        || req.memory_reservation.is_some()
        || req.cpus.is_some()
        || req.cpu_shares.is_some()
        || req.pids_limit.is_some()
        || req.cpuset_cpus.is_some()
        || req.cpuset_mems.is_some()
        || req.blkio.any();
    limits_ignored(asked)
}

/// [`limit_warning`] for `pod create`'s limits (podman warns the same).
pub fn pod_limit_warning(req: &crate::pod::create::PodCreateRequest) -> Option<String> {
    limits_ignored(req.resources.any())
}

fn limits_ignored(asked: bool) -> Option<String> {
    if !asked || !wanted() {
        return None;
    }
    match runtime::cgroup::delegation::detect() {
        Ok(_) => None,
        Err(runtime::cgroup::delegation::NotDelegated::V1) => Some(
            "WARN[0000] Resource limits are not supported and ignored on cgroups V1 rootless systems"
                .into(),
        ),
        Err(why) => Some(format!(
            "WARN[0000] Resource limits are not supported and ignored: {why}"
        )),
    }
}

/// `berth unshare [CMD…]`: exec the command (else `$SHELL`, else
/// `/bin/sh`) in the namespace this process has joined, with
/// `BERTH_ROOT`/`BERTH_RUNROOT`/`BERTH_CONFIG` set to this berth's dirs
/// (podman sets `CONTAINERS_GRAPHROOT`/`CONTAINERS_RUNROOT`). Returns only
/// on failure: not rootless, or the command could not be run.
pub fn unshare(paths: &crate::Paths, command: &[String]) -> crate::EngineError {
    use std::os::unix::process::CommandExt;
    if !active() {
        return RootlessError::NotRootless.into();
    }
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let (prog, args) = match command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (shell, Vec::new()),
    };
    let e = std::process::Command::new(&prog)
        .args(&args)
        .env("BERTH_ROOT", &paths.root)
        .env("BERTH_RUNROOT", &paths.runroot)
        .env("BERTH_CONFIG", &paths.config)
        .exec();
    crate::EngineError::io(format!("running {prog}"), e)
}

/// End the pause process (`system reset`): later commands make a new
/// namespace. Its pid file goes with it.
pub fn stop_pause(runroot: &Path) {
    let pid_file = runroot.join("pause.pid");
    if let Some(pid) = live_pause_any(&pid_file) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = std::fs::remove_file(&pid_file);
}

/// The recorded pause process, seen from inside its namespace too.
fn live_pause_any(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == PAUSE_NAME).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_by_name_or_uid() {
        let text =
            "alice:100000:65536\n1001:200000:1000\nbob:300000:65536\nbad line\nalice:500000:0\n";
        assert_eq!(
            ranges(text, "alice", 1000),
            vec![Range {
                start: 100000,
                count: 65536
            }]
        );
        assert_eq!(
            ranges(text, "carol", 1001),
            vec![Range {
                start: 200000,
                count: 1000
            }]
        );
        assert!(ranges(text, "dave", 1002).is_empty());
    }

    #[test]
    fn the_user_is_root_and_the_ranges_follow() {
        let r = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &r).join(" "),
            "0 1000 1 1 100000 65536 65537 300000 10"
        );
    }
}
