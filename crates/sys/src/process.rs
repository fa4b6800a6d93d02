//! Process creation and hygiene for the container start path.
//!
//! `fork`/`clone` are only sound in a single-threaded process (a child of a
//! multithreaded process may inherit locks held by threads that no longer
//! exist). The wrappers here check that the caller really is single-threaded
//! before forking, which makes them safe to call from anywhere.
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Which side of a fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The original process; holds the child's pid (in the caller's pid namespace).
    Parent(i32),
    /// The new process.
    Child,
}

/// Number of threads of the calling process, from /proc/self/status.
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

fn ensure_single_threaded() -> io::Result<()> {
    let n = thread_count()?;
    if n != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork: the process has {n} threads (fork is only safe single-threaded)"
        )));
    }
    Ok(())
}

/// `clone(2)` with fork semantics (no new stack) and the given `CLONE_NEW*`
/// flags, so the child starts in new namespaces. `SIGCHLD` is its exit signal.
pub fn clone_fork(namespace_flags: libc::c_int) -> io::Result<Forked> {
    ensure_single_threaded()?;
    let flags = (namespace_flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: the process is single-threaded (checked above, and no other
    // thread exists that could start one concurrently), so the child gets a
    // consistent copy of the address space, including allocator state. A
    // null stack pointer makes the kernel reuse the caller's stack in the
    // child's copy of the address space, exactly as fork(2) does; the
    // remaining arguments (parent_tid, child_tid, tls) are unused without
    // the matching CLONE_* flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0usize,
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// Plain `fork(2)`, refused unless the caller is single-threaded.
pub fn fork() -> io::Result<Forked> {
    clone_fork(0)
}

/// Mark every fd from `first` upwards close-on-exec (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`), so no host fd survives into a container
/// (CVE-2024-21626) whatever the caller forgot to close.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on open
    // descriptors; it closes nothing and touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Close every fd from `first` upwards (`close_range(2)`).
pub fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: closing descriptors cannot violate memory safety; callers use
    // this right before exec/exit when no Rust object still owns those fds
    // (an OwnedFd dropped later would only get EBADF).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Keep only `fd` (and /dev/null as stdin, stdout and stderr): a process
/// that outlives its command's work holds none of its pipes, so nobody
/// waiting for them to close waits for it. Only for a forked child about
/// to exit without running destructors.
pub fn keep_only(fd: RawFd) -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for std_fd in 0..3 {
        // SAFETY: dup2 onto 0-2 replaces the standard streams with
        // /dev/null; no Rust object owns those descriptor numbers.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), std_fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    drop(null);
    close_all_but(&[fd])
}

/// Close every fd from 3 upwards except those in `keep` (`close_range(2)`
/// over the gaps). Only for a forked child that will never again use, or
/// drop, an object owning one of the closed descriptors: it runs new code
/// of its own, then exits.
pub fn close_all_but(keep: &[RawFd]) -> io::Result<()> {
    let close = |first: RawFd, last: RawFd| -> io::Result<()> {
        if first > last {
            return Ok(());
        }
        // SAFETY: as in close_from: no Rust object of the caller's still
        // uses these descriptors (see above).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                last as libc::c_uint,
                0 as libc::c_uint,
            )
        };
        if ret == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    let mut kept: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    kept.sort_unstable();
    kept.dedup();
    let mut first = 3;
    for k in kept {
        close(first, k - 1)?;
        first = k + 1;
    }
    close(first, RawFd::MAX)
}

/// Make the calling process yield to everything else: the lowest CPU
/// priority (nice 19) and the idle I/O class. For cleanup work that
/// nobody waits for.
pub fn background_priority() {
    // SAFETY: setpriority and ioprio_set take plain integers and affect
    // only the calling process; failures are ignored (best effort).
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        // IOPRIO_WHO_PROCESS = 1, IOPRIO_CLASS_IDLE = 3 (in bits 13+).
        libc::syscall(libc::SYS_ioprio_set, 1, 0, 3 << 13);
    }
}

/// Reset every signal to its default disposition and unblock all signals.
/// Ignored signals survive `execve` (Rust ignores SIGPIPE at startup), so a
/// container must not inherit them.
pub fn reset_signals() -> io::Result<()> {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || (32..=33).contains(&sig) {
            continue;
        }
        // SAFETY: installing SIG_DFL does not run any code of ours, so no
        // handler can observe inconsistent state.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ignore a signal (SIG_IGN) in the calling process.
pub fn ignore_signal(sig: libc::c_int) {
    // SAFETY: SIG_IGN runs no code in the process.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

/// `pidfd_open(2)`: a fd that becomes readable when `pid` exits, usable for
/// processes that are not our children (stop/wait from another CLI process).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success the returned
    // fd is new and owned by nobody else.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ret is a freshly opened descriptor we exclusively own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// Duplicate `fd` onto the lowest free descriptor >= `min`, close-on-exec
/// (`F_DUPFD_CLOEXEC`).
pub fn dup_above(fd: std::os::fd::BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ret is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// `ioctl(NS_GET_PARENT)`: the parent of the user or pid namespace open
/// at `ns` (an nsfs file, `/proc/PID/ns/user`). Fails with `EPERM` when
/// the parent is outside the caller's user namespace, `EINVAL` for a
/// namespace of another kind.
pub fn namespace_parent(ns: std::os::fd::BorrowedFd<'_>) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    // NS_GET_PARENT is _IO(0xb7, 0x2) (linux/nsfs.h).
    const NS_GET_PARENT: libc::c_ulong = 0xb702;
    // SAFETY: NS_GET_PARENT takes no argument and only creates a new
    // descriptor.
    let ret = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_PARENT) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ret is a freshly opened descriptor we exclusively own.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Clock ticks per second (for /proc/PID/stat times).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Exit the process immediately without running destructors or atexit
/// handlers (what a forked child must do instead of returning).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Give free heap memory back to the kernel (glibc `malloc_trim`): a
/// long-lived forked process keeps only what it uses.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Let glibc's allocator use at most `n` arenas (`mallopt(M_ARENA_MAX)`;
/// its default is 8 per core): each thread of a busy moment otherwise may
/// get an arena of its own, whose free memory stays scattered there after
/// the thread is gone. Call before starting threads.
pub fn limit_malloc_arenas(n: i32) {
    // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes
    // any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, n.max(1));
    }
}

/// Unmap the pages of this program's own code and read-only data that
/// the process has mapped (`madvise(MADV_DONTNEED)` on the executable's
/// `r-xp` mapping and its first, offset-0 `r--p` one): they stay in the
/// page cache, shared with every other process running the program, and
/// the next use maps them again (a minor fault). For a long-lived
/// process that is idle: what it touched once no longer counts in its
/// resident set. Returns the bytes advised.
pub fn unmap_own_code() -> io::Result<u64> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut advised = 0;
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(offset)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(2).unwrap_or("");
        let code = perms == "r-xp" || (perms == "r--p" && u64::from_str_radix(offset, 16) == Ok(0));
        if path != exe || !code {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: [a, b) is a private, read-only mapping of the executable
        // file that nothing ever writes to (its text, or the read-only
        // data before it; the relocated RELRO segment is the other r--p
        // mapping, at a non-zero offset, and is not touched; a running
        // executable cannot be written to: ETXTBSY). Dropping the page
        // table entries of such a mapping loses nothing: the next access,
        // from any thread, faults the same file pages back in.
        let ret = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        if ret == 0 {
            advised += (b - a) as u64;
        }
    }
    Ok(advised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_threads() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn unmapped_code_and_data_come_back_when_used() {
        let advised = unmap_own_code().unwrap();
        assert!(advised > 0, "no mapping of the test binary found");
        // Every thread runs on: the pages fault back in.
        let t = std::thread::spawn(|| thread_count().unwrap());
        assert!(t.join().unwrap() >= 2);
        let text = format!("{:?}", Forked::Parent(7));
        assert_eq!(text, "Parent(7)");
    }

    #[test]
    fn refuses_to_fork_with_threads() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv().ok());
        assert!(fork().is_err());
        tx.send(()).unwrap();
        t.join().unwrap();
    }
}

/// Is the calling process in a user namespace other than the host's (its
/// `/proc/self/uid_map` is not the identity over every id)? Rootless
/// berth runs in one, as its root: what needs the host's root (cgroup v1
/// dirs, `mknod`, `trusted.*` xattrs, new proc instances after
/// `pivot_root`) is done another way there. Read once per process.
pub fn in_user_namespace() -> bool {
    static NESTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NESTED.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !is_identity_map(&map),
        Err(_) => false,
    })
}

/// `0 0 4294967295`, the initial user namespace's map.
fn is_identity_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [f] if f.as_slice() == ["0", "0", "4294967295"])
}

#[cfg(test)]
mod userns_tests {
    #[test]
    fn only_the_full_identity_is_the_host() {
        assert!(super::is_identity_map("         0          0 4294967295\n"));
        assert!(!super::is_identity_map("0 1000 1\n1 100000 65536\n"));
        assert!(!super::is_identity_map("0 0 65536\n"));
    }
}

/// Fork a child into the pid namespace `ns` without the caller ever
/// changing its own: an intermediate process enters `ns` and clones the
/// child with `CLONE_PARENT`, so the child is still the caller's (it
/// waits for it as for any child) and reports its pid. For a caller that
/// could not come back from `setns` on its pid namespace (in a user
/// namespace, the host's pid namespace is out of its reach).
///
/// `namespace_flags` are `CLONE_NEW*` flags for the child, as
/// [`clone_fork`]'s.
pub fn fork_in_pid_ns(
    ns: std::os::fd::BorrowedFd<'_>,
    namespace_flags: libc::c_int,
) -> io::Result<Forked> {
    fork_in_namespaces(
        &[(ns, nix::sched::CloneFlags::CLONE_NEWPID)],
        &mut || Ok(()),
        namespace_flags,
    )
}

/// [`fork_in_pid_ns`] for any namespaces: the intermediate process joins
/// each of `joins` (`setns` with its flag) before it clones the child.
/// Also for a child cloned into a new user namespace that must be in
/// namespaces of its creator's user namespace (rootless berth's network
/// namespace of a container with a nested user namespace): once in its
/// own user namespace it could no longer join them, so it is cloned from
/// inside them (as crun joins such namespaces before it makes the user
/// namespace). `inside` runs in the intermediate process once it is in
/// them, before the clone (what only their user namespace's root may do).
pub fn fork_in_namespaces(
    joins: &[(std::os::fd::BorrowedFd<'_>, nix::sched::CloneFlags)],
    inside: &mut dyn FnMut() -> io::Result<()>,
    namespace_flags: libc::c_int,
) -> io::Result<Forked> {
    use std::io::{Read, Write};
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    match fork()? {
        Forked::Child => {
            drop(r);
            let mut w = std::fs::File::from(w);
            for (ns, flag) in joins {
                if let Err(e) = nix::sched::setns(ns, *flag) {
                    let _ = write!(w, "e{}", e as i32);
                    exit_now(1);
                }
            }
            if let Err(e) = inside() {
                let _ = write!(w, "e{}", e.raw_os_error().unwrap_or(libc::EIO));
                exit_now(1);
            }
            match clone_fork(libc::CLONE_PARENT | namespace_flags) {
                Ok(Forked::Child) => Ok(Forked::Child),
                Ok(Forked::Parent(pid)) => {
                    let _ = write!(w, "p{pid}");
                    exit_now(0)
                }
                Err(e) => {
                    let _ = write!(w, "e{}", e.raw_os_error().unwrap_or(libc::EIO));
                    exit_now(1)
                }
            }
        }
        Forked::Parent(mid) => {
            drop(w);
            let mut answer = String::new();
            let read = std::fs::File::from(r).read_to_string(&mut answer);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
            read?;
            match (
                answer.get(..1),
                answer.get(1..).and_then(|n| n.parse::<i32>().ok()),
            ) {
                (Some("p"), Some(pid)) => Ok(Forked::Parent(pid)),
                (Some("e"), Some(errno)) => Err(io::Error::from_raw_os_error(errno)),
                _ => Err(io::Error::other("the intermediate process died")),
            }
        }
    }
}
