//! The code that runs in the freshly cloned container process, from the
//! release by the parent until `execve`. It only executes a [`ChildPlan`];
//! any failure is written to the report pipe and the process exits.
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, umask, Mode, SFlag};
use nix::unistd::{
    chdir, execve, pivot_root, setgroups, sethostname, setresgid, setresuid, Gid, Uid,
};

use super::CgroupLayout;
use crate::plan::{ChildPlan, DeviceStep, MountKind, MountStep};
use crate::Overlay;

pub(super) struct ChildArgs<'a> {
    pub plan: &'a ChildPlan,
    pub overlay: &'a Overlay,
    pub cgroup_layout: Option<&'a CgroupLayout>,
    pub stdio: [OwnedFd; 3],
    pub join: Vec<(OwnedFd, CloneFlags)>,
    pub release: OwnedFd,
    pub report: OwnedFd,
    pub seccomp_bpf: Option<&'a [u8]>,
    /// With a terminal: the socket the pty master goes back on. The pty is
    /// made in the container's own devpts (`tty` says `/dev/pts/0`, as with
    /// runc), not on the host.
    pub console: Option<OwnedFd>,
    /// Each cgroup v1 hierarchy's `tasks` file, opened by the parent.
    pub cgroup_tasks: Vec<(PathBuf, OwnedFd)>,
    /// In a user namespace: what the parent made (root, binds, devices).
    pub prepared: Option<crate::userns::Prepared>,
    /// See [`crate::SpawnRequest::exec_gate`].
    pub exec_gate: Option<OwnedFd>,
    /// The `net.*` sysctls were written before the child was cloned (into
    /// a joined network namespace its own user namespace has no power
    /// over).
    pub net_sysctls_done: bool,
}

/// A failure inside the child: the exit code Docker uses and a message.
pub(crate) struct Failure {
    pub(crate) code: i32,
    pub(crate) message: String,
}

fn fail(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 125,
        message: format!("{what}: {e}"),
    }
}

trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| fail(what(), e))
    }
}

/// Run the child side. Never returns: execs the container command or exits.
pub(super) fn run(args: ChildArgs<'_>) -> ! {
    let report = args.report.try_clone();
    let result = setup(args);
    die(report.ok(), result)
}

/// Report a failure on the report pipe and exit with its code.
pub(crate) fn die(report: Option<OwnedFd>, result: Result<std::convert::Infallible, Failure>) -> ! {
    let failure = match result {
        Ok(never) => match never {},
        Err(f) => f,
    };
    if let Some(fd) = report {
        let mut f = std::fs::File::from(fd);
        let _ = write!(f, "{}\n{}", failure.code, failure.message);
    }
    sys::process::exit_now(failure.code)
}

fn setup(args: ChildArgs<'_>) -> Result<std::convert::Infallible, Failure> {
    let plan = args.plan;
    // Wait until the parent has put us into our cgroups.
    let mut byte = [0u8; 1];
    match nix::unistd::read(args.release.as_fd(), &mut byte) {
        Ok(1) => {}
        _ => sys::process::exit_now(125),
    }
    drop(args.release);

    // Join our cgroups (v1) by writing 0 to each hierarchy's `tasks`
    // (opened by the parent).
    for (tasks, fd) in args.cgroup_tasks {
        std::fs::File::from(fd)
            .write_all(b"0")
            .ctx(|| format!("joining cgroup {}", tasks.display()))?;
    }
    for (fd, flag) in &args.join {
        setns(fd, *flag).ctx(|| format!("joining namespace {flag:?}"))?;
    }
    drop(args.join);
    if plan.new_cgroupns {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "creating the cgroup namespace".into())?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if plan.terminal && args.console.is_none() {
        sys::tty::set_controlling_tty(args.stdio[0].as_fd())
            .ctx(|| "setting the controlling terminal".into())?;
    }
    umask(Mode::empty());

    // Root filesystem.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "making mounts private".into())?;
    let (mut bind_sources, mut device_trees) = (Vec::new(), Vec::new());
    let mut new_root = None;
    if let Some(p) = args.prepared {
        // By path: a dir opened before the clone is a mount of the
        // host's namespace, not ours.
        sys::mount::attach_tree(p.root.as_fd(), &plan.rootfs)
            .ctx(|| format!("attaching the root filesystem on {}", plan.rootfs.display()))?;
        bind_sources = p.binds;
        device_trees = p.devices;
        new_root = Some(p.root);
    } else {
        mount_overlay(args.overlay, &plan.rootfs)?;
    }
    // Bind sources are host paths: capture each as a detached mount tree now,
    // attach it after pivot_root (when the host's tree is gone). In a user
    // namespace the parent captured them.
    let own_binds = if new_root.is_none() {
        &plan.mounts[..]
    } else {
        &[]
    };
    for m in own_binds {
        if let MountKind::Bind {
            source, recursive, ..
        } = &m.kind
        {
            let fd = open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("bind mount source {}", source.display()))?;
            let is_dir = std::fs::metadata(source)
                .map(|m| m.is_dir())
                .unwrap_or(false);
            let tree = sys::mount::clone_tree(fd.as_fd(), *recursive)
                .ctx(|| format!("capturing bind mount source {}", source.display()))?;
            bind_sources.push((tree, is_dir));
        }
    }
    // The container's own cgroup dirs, bound at /sys/fs/cgroup/<hierarchy>
    // (a fresh cgroup v1 mount per hierarchy costs ~1 ms each here).
    let mut cgroup_trees = Vec::new();
    if let (Some(CgroupLayout::V1 { hierarchies, .. }), Some(rel)) =
        (args.cgroup_layout, &plan.cgroups_path)
    {
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        for h in hierarchies {
            let dir = Path::new("/sys/fs/cgroup").join(h).join(rel);
            if let Ok(fd) = open(
                &dir,
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY,
                Mode::empty(),
            ) {
                let tree = sys::mount::clone_tree(fd.as_fd(), false)
                    .ctx(|| format!("capturing cgroup {h}"))?;
                cgroup_trees.push((h.clone(), tree));
            }
        }
    }
    // In a user namespace proc and sysfs are made now, while the host's
    // fully visible instances are still in our mount namespace (the
    // kernel refuses a new one where none is: `mount_too_revealing`), and
    // attached after pivot_root.
    // Rootless berth's namespace (the container shares it) is a user
    // namespace too: the same holds, and `mknod` is refused there, so the
    // host's device nodes are captured now to be bound after pivot_root.
    let rootless = plan.userns.is_none() && sys::process::in_user_namespace();
    if rootless {
        for d in &plan.devices {
            let fd = open(&d.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                .ctx(|| format!("opening the host's {}", d.path.display()))?;
            device_trees.push(
                sys::mount::clone_tree(fd.as_fd(), false)
                    .ctx(|| format!("capturing the host's {}", d.path.display()))?,
            );
        }
    }
    let in_userns = plan.userns.is_some() || rootless;
    let mut early = Vec::new();
    if in_userns {
        for m in &plan.mounts {
            if let MountKind::Fs { fstype, .. } = &m.kind {
                if fstype == "proc" || fstype == "sysfs" {
                    early.push(early_mount(fstype, &m.data)?);
                }
            }
        }
    }
    let mut early = early.into_iter();
    let console = if plan.terminal && args.console.is_none() {
        // The pty was opened in the host's mount namespace; capture it by
        // path through our copy of that tree (a tree can only be cloned from
        // a mount of the caller's own namespace).
        let fd_path = format!("/proc/self/fd/{}", args.stdio[0].as_raw_fd());
        let pts = std::fs::read_link(&fd_path).ctx(|| "finding the pty".into())?;
        let fd = open(&pts, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .ctx(|| format!("opening {}", pts.display()))?;
        Some(sys::mount::clone_tree(fd.as_fd(), false).ctx(|| "capturing the console".into())?)
    } else {
        None
    };
    match &new_root {
        // The mount's root itself (its dir may be out of our reach by path).
        Some(root) => nix::unistd::fchdir(root).ctx(|| "entering the root filesystem".into())?,
        None => chdir(&plan.rootfs).ctx(|| format!("entering {}", plan.rootfs.display()))?,
    }
    drop(new_root);
    pivot_root(".", ".").ctx(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detaching the old root".into())?;
    chdir("/").ctx(|| "chdir /".into())?;
    // In a user namespace the parent has written our maps: become its
    // root (until now we had host root's ids, unmapped here, which still
    // reached the host's paths above) and leave host root's groups, so
    // everything of the container is reached as its root.
    if plan.userns.is_some() {
        setgroups(&[]).ctx(|| "leaving the host's groups".into())?;
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "becoming the user namespace's root group".into())?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "becoming the user namespace's root".into())?;
    }

    let mut binds = bind_sources.into_iter();
    let mut dev_is_tmpfs = false;
    for m in &plan.mounts {
        match &m.kind {
            MountKind::Bind { .. } => {
                let (tree, is_dir) = binds.next().expect("one source per bind mount");
                do_bind(m, &tree, is_dir)?;
            }
            MountKind::Cgroup => mount_cgroups(m, args.cgroup_layout, &cgroup_trees)?,
            MountKind::Fs { fstype, .. }
                if in_userns && (fstype == "proc" || fstype == "sysfs") =>
            {
                let tree = early.next().expect("one early mount per proc or sysfs");
                mkdir_all(&m.dest)?;
                sys::mount::attach_tree(tree.as_fd(), &m.dest)
                    .ctx(|| format!("attaching {fstype} on {}", m.dest.display()))?;
                let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_REC | m.flags;
                mount(None::<&str>, &m.dest, None::<&str>, flags, None::<&str>)
                    .ctx(|| format!("remounting {fstype} on {}", m.dest.display()))?;
                propagate(m)?;
            }
            MountKind::Fs { fstype, source } => {
                if m.dest == Path::new("/dev") && fstype == "tmpfs" {
                    dev_is_tmpfs = true;
                }
                mkdir_all(&m.dest)?;
                let data = (!m.data.is_empty()).then_some(m.data.as_str());
                let r = mount(
                    Some(source.as_str()),
                    &m.dest,
                    Some(fstype.as_str()),
                    m.flags,
                    data,
                );
                r.ctx(|| format!("mounting {fstype} on {}", m.dest.display()))?;
                propagate(m)?;
            }
        }
    }
    if dev_is_tmpfs {
        if in_userns {
            for (d, tree) in plan.devices.iter().zip(&device_trees) {
                bind_device(d, tree)?;
            }
        } else {
            for d in &plan.devices {
                make_device(d)?;
            }
        }
        dev_links(console.as_ref())?;
    }
    let mut stdio = args.stdio;
    if let Some(sock) = &args.console {
        stdio = container_console(sock.as_fd(), plan.console_size)?;
    }
    // Docker creates a missing working directory.
    if !plan.cwd.exists() {
        let _ = mkdir_all(&plan.cwd);
    }
    for (k, v) in &plan.sysctls {
        if args.net_sysctls_done && k.starts_with("net.") {
            continue;
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).ctx(|| format!("setting sysctl {k}"))?;
    }
    let mut null = None;
    for p in &plan.masked {
        mask_path(p, &mut null)?;
    }
    drop(null);
    for p in &plan.readonly {
        readonly_path(p)?;
    }
    if plan.readonly_root {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ctx(|| "making the root filesystem read-only".into())?;
    }
    if let Some(h) = &plan.hostname {
        sethostname(h).ctx(|| format!("setting hostname {h:?}"))?;
    }
    if let Some(adj) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| "setting oom_score_adj".into())?;
    }
    if let Some(gate) = args.exec_gate {
        wait_gate(gate)?;
    }
    finish(plan, stdio, args.seccomp_bpf)
}

/// Block until the gate's writer says go (one byte); its EOF fails the
/// start (see [`crate::SpawnRequest::exec_gate`]).
pub(crate) fn wait_gate(gate: OwnedFd) -> Result<(), Failure> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(gate.as_fd(), &mut byte) {
            Ok(0) => {
                return Err(Failure {
                    code: 125,
                    message: crate::EXEC_GATE_CLOSED.into(),
                })
            }
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(fail("waiting for the container's network", e)),
        }
    }
}

/// Allocate the container's terminal from its own devpts, make it the
/// controlling terminal and `/dev/console`, send the master back on `sock`;
/// the slave, three times, is the init's stdio.
fn container_console(
    sock: BorrowedFd<'_>,
    size: Option<(u16, u16)>,
) -> Result<[OwnedFd; 3], Failure> {
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .ctx(|| "opening the root".into())?;
    let (master, slave) =
        sys::tty::open_pty_in(root.as_fd()).ctx(|| "allocating the terminal".into())?;
    let n = sys::tty::pty_number(master.as_fd()).ctx(|| "reading the pty number".into())?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open("/dev/console")
        .ctx(|| "creating /dev/console".into())?;
    mount(
        Some(format!("/dev/pts/{n}").as_str()),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| "mounting /dev/console".into())?;
    sys::tty::set_controlling_tty(slave.as_fd())
        .ctx(|| "setting the controlling terminal".into())?;
    if let Some((rows, cols)) = size {
        let _ = sys::tty::set_winsize(slave.as_fd(), sys::tty::WinSize { rows, cols });
    }
    sys::socket::send_with_fd(sock, b"m", Some(master.as_fd()))
        .ctx(|| "handing the terminal to the monitor".into())?;
    let s1 = slave.try_clone().ctx(|| "dup pty".into())?;
    let s2 = slave.try_clone().ctx(|| "dup pty".into())?;
    Ok([slave, s1, s2])
}

/// The steps shared by a container's init and `exec`'d processes: rlimits,
/// working dir, stdio, seccomp, credentials, capabilities, then `execve`.
pub(crate) fn finish(
    plan: &ChildPlan,
    stdio: [OwnedFd; 3],
    seccomp_bpf: Option<&[u8]>,
) -> Result<std::convert::Infallible, Failure> {
    for (res, soft, hard) in &plan.rlimits {
        nix::sys::resource::setrlimit(*res, *soft, *hard)
            .ctx(|| format!("setting rlimit {res:?}"))?;
    }
    chdir(&plan.cwd).map_err(|e| Failure {
        code: 126,
        message: format!("cannot enter working directory {}: {e}", plan.cwd.display()),
    })?;
    // A working dir through a magic link (`/proc/self/fd/N`, runc's
    // CVE-2024-21626) could land on a host directory held open by an fd:
    // the kernel then has no path from our root to it, and getcwd fails
    // (glibc's ENOENT for the kernel's "(unreachable)" answer).
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => {
            return Err(Failure {
                code: 126,
                message: format!(
                    "working directory {} is outside the container",
                    plan.cwd.display()
                ),
            })
        }
    }
    let exe = find_executable(plan)?;

    // stdio onto 0, 1, 2 (via fds >= 3 so the three cannot clobber each other).
    let mut high = Vec::with_capacity(3);
    for fd in &stdio {
        high.push(sys::process::dup_above(fd.as_fd(), 3).ctx(|| "dup stdio".into())?);
    }
    drop(stdio);
    nix::unistd::dup2_stdin(&high[0]).ctx(|| "setting up stdin".into())?;
    nix::unistd::dup2_stdout(&high[1]).ctx(|| "setting up stdout".into())?;
    nix::unistd::dup2_stderr(&high[2]).ctx(|| "setting up stderr".into())?;

    // Seccomp while CAP_SYS_ADMIN is still held (no no_new_privs needed), then
    // credentials and capabilities.
    if let Some(bpf) = seccomp_bpf {
        sys::seccomp::load_filter(bpf).ctx(|| "loading the seccomp filter".into())?;
    }
    apply_credentials(plan)?;
    if plan.no_new_privs {
        nix::sys::prctl::set_no_new_privs().ctx(|| "setting no_new_privs".into())?;
    }
    umask(Mode::from_bits_truncate(plan.umask as libc::mode_t));
    sys::process::reset_signals().ctx(|| "resetting signals".into())?;
    sys::process::cloexec_from(3).ctx(|| "closing inherited fds".into())?;
    let err = execve(&exe, &plan.args, &plan.env).unwrap_err();
    Err(exec_failure(&plan.args[0], err))
}

fn exec_failure(arg0: &CString, err: Errno) -> Failure {
    let name = arg0.to_string_lossy();
    match err {
        Errno::ENOENT => Failure {
            code: 127,
            message: format!("exec: \"{name}\": no such file or directory"),
        },
        Errno::EACCES | Errno::EPERM => Failure {
            code: 126,
            message: format!("exec: \"{name}\": permission denied"),
        },
        Errno::ENOEXEC => Failure {
            code: 126,
            message: format!("exec: \"{name}\": exec format error"),
        },
        other => Failure {
            code: 126,
            message: format!("exec: \"{name}\": {}", other.desc()),
        },
    }
}

/// Find argv[0] on the container's PATH, as `execvp` would.
fn find_executable(plan: &ChildPlan) -> Result<CString, Failure> {
    let arg0 = plan.args[0].to_string_lossy().into_owned();
    if arg0.contains('/') {
        return Ok(plan.args[0].clone());
    }
    for dir in plan.path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(&arg0);
        if let Ok(md) = std::fs::metadata(&candidate) {
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return CString::new(candidate.into_os_string().into_encoded_bytes())
                    .map_err(|e| fail("executable path", e));
            }
        }
    }
    Err(Failure {
        code: 127,
        message: format!("exec: \"{arg0}\": executable file not found in $PATH"),
    })
}

fn mount_overlay(ov: &Overlay, target: &Path) -> Result<(), Failure> {
    if let Some(copy) = &ov.copy {
        return mount(
            Some(copy.as_path()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("binding the copied root filesystem {}", copy.display()));
    }
    let (mut data, cwd) = ov.mount_data(true);
    let mut _held = Vec::new();
    if !Overlay::fits(&data) {
        // Many layers: named by fd, they fit (held open until mounted).
        (data, _held) = ov
            .mount_data_by_fd()
            .ctx(|| "opening the image's layers".into())?;
    } else if let Some(dir) = cwd {
        chdir(&dir).ctx(|| "entering the layer dir".into())?;
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .ctx(|| {
        format!(
            "mounting the overlay root filesystem on {}",
            target.display()
        )
    })
}

fn mkdir_all(p: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(p)
        .ctx(|| format!("creating mount point {}", p.display()))
}

fn propagate(m: &MountStep) -> Result<(), Failure> {
    if !m.propagation.is_empty() {
        mount(
            None::<&str>,
            &m.dest,
            None::<&str>,
            m.propagation,
            None::<&str>,
        )
        .ctx(|| format!("setting propagation of {}", m.dest.display()))?;
    }
    Ok(())
}

fn do_bind(m: &MountStep, tree: &OwnedFd, is_dir: bool) -> Result<(), Failure> {
    if is_dir {
        mkdir_all(&m.dest)?;
    } else {
        if let Some(parent) = m.dest.parent() {
            mkdir_all(parent)?;
        }
        if !m.dest.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o644)
                .open(&m.dest)
                .ctx(|| format!("creating mount point {}", m.dest.display()))?;
        }
    }
    sys::mount::attach_tree(tree.as_fd(), &m.dest)
        .ctx(|| format!("bind mounting onto {}", m.dest.display()))?;
    let extra = m.flags & !MsFlags::MS_REMOUNT;
    if !extra.is_empty() {
        mount(
            None::<&str>,
            &m.dest,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
            None::<&str>,
        )
        .ctx(|| format!("remounting {}", m.dest.display()))?;
    }
    propagate(m)
}

fn mount_cgroups(
    m: &MountStep,
    layout: Option<&CgroupLayout>,
    trees: &[(String, OwnedFd)],
) -> Result<(), Failure> {
    mkdir_all(&m.dest)?;
    let ro = m.flags.contains(MsFlags::MS_RDONLY);
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match layout {
        None | Some(CgroupLayout::V2) => {
            let flags = if ro { base | MsFlags::MS_RDONLY } else { base };
            mount(
                Some("cgroup2"),
                &m.dest,
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .ctx(|| format!("mounting cgroup2 on {}", m.dest.display()))
        }
        Some(CgroupLayout::V1 { links, .. }) => {
            mount(
                Some("tmpfs"),
                &m.dest,
                Some("tmpfs"),
                base,
                Some("mode=755"),
            )
            .ctx(|| format!("mounting tmpfs on {}", m.dest.display()))?;
            for (h, tree) in trees {
                let dir = m.dest.join(h);
                mkdir_all(&dir)?;
                sys::mount::attach_tree(tree.as_fd(), &dir)
                    .ctx(|| format!("mounting cgroup {h}"))?;
                let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | base;
                if ro {
                    flags |= MsFlags::MS_RDONLY;
                }
                mount(None::<&str>, &dir, None::<&str>, flags, None::<&str>)
                    .ctx(|| format!("remounting cgroup {h}"))?;
            }
            for (name, target) in links {
                if trees.iter().any(|(h, _)| h == target) {
                    std::os::unix::fs::symlink(target, m.dest.join(name))
                        .ctx(|| format!("linking cgroup {name}"))?;
                }
            }
            if ro {
                mount(
                    None::<&str>,
                    &m.dest,
                    None::<&str>,
                    MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base,
                    None::<&str>,
                )
                .ctx(|| "making /sys/fs/cgroup read-only".into())?;
            }
            Ok(())
        }
    }
}

fn make_device(d: &DeviceStep) -> Result<(), Failure> {
    if let Some(parent) = d.path.parent() {
        mkdir_all(parent)?;
    }
    let kind = match d.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let _ = std::fs::remove_file(&d.path);
    mknod(
        &d.path,
        kind,
        Mode::from_bits_truncate(d.mode as libc::mode_t),
        makedev(d.major, d.minor),
    )
    .ctx(|| format!("creating device {}", d.path.display()))?;
    std::os::unix::fs::lchown(&d.path, Some(d.uid), Some(d.gid))
        .ctx(|| format!("chown {}", d.path.display()))
}

/// A detached new instance of proc or sysfs with its `key=value` options;
/// sysfs, which needs a network namespace of the user namespace's own
/// (not `--network host`), falls back to a recursive bind of the host's
/// `/sys` (read-only by the spec's flags, as runc's rootless fallback),
/// and proc, which needs a pid namespace of its own (not `--pid host`),
/// to one of the host's `/proc` (crun's fallback; the masked paths still
/// go over it).
fn early_mount(fstype: &str, data: &str) -> Result<OwnedFd, Failure> {
    let made = sys::mount::FsContext::open(fstype).and_then(|ctx| {
        for o in data.split(',').filter(|o| !o.is_empty()) {
            let (k, v) = o.split_once('=').unwrap_or((o, ""));
            ctx.set(k, v)?;
        }
        ctx.mount()
    });
    match made {
        Ok(fd) => Ok(fd),
        Err(e)
            if (fstype == "sysfs" || fstype == "proc") && e.raw_os_error() == Some(libc::EPERM) =>
        {
            let host = format!("/{}", if fstype == "proc" { "proc" } else { "sys" });
            let fd = open(
                host.as_str(),
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .ctx(|| format!("opening {host}"))?;
            sys::mount::clone_tree(fd.as_fd(), true).ctx(|| format!("binding the host's {host}"))
        }
        Err(e) => Err(fail(format!("making a new {fstype} instance"), e)),
    }
}

/// In a user namespace: the host's node (captured by the parent) bound on
/// an empty file, as runc and crun do where `mknod` is refused.
fn bind_device(d: &DeviceStep, tree: &OwnedFd) -> Result<(), Failure> {
    if let Some(parent) = d.path.parent() {
        mkdir_all(parent)?;
    }
    let _ = std::fs::remove_file(&d.path);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&d.path)
        .ctx(|| format!("creating {}", d.path.display()))?;
    sys::mount::attach_tree(tree.as_fd(), &d.path)
        .ctx(|| format!("binding the host's {}", d.path.display()))
}

fn dev_links(console: Option<&OwnedFd>) -> Result<(), Failure> {
    let links = [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ];
    for (target, link) in links {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(target, link).ctx(|| format!("creating {link}"))?;
    }
    if Path::new("/proc/kcore").exists() {
        let _ = std::os::unix::fs::symlink("/proc/kcore", "/dev/core");
    }
    if let Some(tree) = console {
        // The pty slave doubles as /dev/console, as runc does.
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open("/dev/console")
            .ctx(|| "creating /dev/console".into())?;
        sys::mount::attach_tree(tree.as_fd(), Path::new("/dev/console"))
            .ctx(|| "mounting /dev/console".into())?;
    }
    Ok(())
}

/// Mask `p`: a directory under a read-only tmpfs, a file under the
/// container's `/dev/null` — opened once, by fd, and checked to be the null
/// device (1:3): a `/dev/null` that a mount or the image replaced (by a
/// symlink to a `/proc/sys` file, runc's CVE-2025-31133) would unmask a
/// path or make it writable.
fn mask_path(p: &PathBuf, null: &mut Option<OwnedFd>) -> Result<(), Failure> {
    let md = match std::fs::metadata(p) {
        Ok(md) => md,
        Err(_) => return Ok(()),
    };
    let r = if md.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        if null.is_none() {
            *null = Some(real_dev_null()?);
        }
        let fd = null.as_ref().expect("opened above");
        mount(
            Some(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str()),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    r.ctx(|| format!("masking {}", p.display()))
}

/// The container's `/dev/null`, refused unless it is the null device.
fn real_dev_null() -> Result<OwnedFd, Failure> {
    let fd = open(
        "/dev/null",
        OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .ctx(|| "opening /dev/null to mask paths with".into())?;
    let st = nix::sys::stat::fstat(&fd).ctx(|| "checking /dev/null".into())?;
    let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_char || st.st_rdev != makedev(1, 3) {
        return Err(fail(
            "masking paths",
            "/dev/null is not the null device (1:3); refusing to mask with it",
        ));
    }
    Ok(fd)
}

fn readonly_path(p: &PathBuf) -> Result<(), Failure> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("binding {}", p.display()))?;
    mount(
        None::<&str>,
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("making {} read-only", p.display()))
}

fn apply_credentials(plan: &ChildPlan) -> Result<(), Failure> {
    use caps::{CapSet, Capability, CapsHashSet};
    // Never ask for more than we hold (e.g. --privileged on a host whose
    // root lacks CAP_SYS_RESOURCE): capset would fail with EPERM.
    let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
    let to_set = |mask: u64| -> CapsHashSet {
        caps::all()
            .into_iter()
            .filter(|c: &Capability| mask & (1u64 << c.index()) != 0 && held.contains(c))
            .collect()
    };
    for c in caps::all() {
        if plan.caps.bounding & (1u64 << c.index()) == 0 {
            caps::drop(None, CapSet::Bounding, c)
                .ctx(|| format!("dropping {c} from the bounding set"))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).ctx(|| "keeping capabilities".into())?;
    let groups: Vec<Gid> = plan.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).ctx(|| "setting supplementary groups".into())?;
    let gid = Gid::from_raw(plan.gid);
    setresgid(gid, gid, gid).ctx(|| format!("setting gid {}", plan.gid))?;
    let uid = Uid::from_raw(plan.uid);
    setresuid(uid, uid, uid).ctx(|| format!("setting uid {}", plan.uid))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "resetting keepcaps".into())?;
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &to_set(plan.caps.effective))
        .ctx(|| "setting effective capabilities".into())?;
    caps::set(None, CapSet::Permitted, &to_set(plan.caps.permitted))
        .ctx(|| "setting permitted capabilities".into())?;
    caps::set(None, CapSet::Inheritable, &to_set(plan.caps.inheritable))
        .ctx(|| "setting inheritable capabilities".into())?;
    if plan.caps.ambient != 0 {
        caps::set(None, CapSet::Ambient, &to_set(plan.caps.ambient))
            .ctx(|| "setting ambient capabilities".into())?;
    }
    Ok(())
}
