//! A container's processes where it has no cgroup to list them (rootless
//! berth on cgroup v1, where no cgroup is the user's): those in its pid
//! namespace, or, when it shares the host's (`--pid host`), those in its
//! mount namespace — which its orphans keep after its init is gone, so the
//! monitor ends them at the init's exit as runc ends a `--pid host`
//! container's cgroup. `top`, `stop`/`rm -f` and the monitor use it.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A namespace: the device and inode of its nsfs file.
pub(crate) type Ns = (u64, u64);

/// The namespace of `kind` (`pid`, `mnt`) process `pid` (or `self`) is
/// in, None when it is gone or not ours to look at.
fn ns(proc: &Path, pid: &str, kind: &str) -> Option<Ns> {
    let m = std::fs::metadata(proc.join(pid).join("ns").join(kind)).ok()?;
    Some((m.dev(), m.ino()))
}

/// Every process under `proc` in namespace `which` of `kind`, sorted.
pub(crate) fn in_namespace(proc: &Path, kind: &str, which: Ns) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(proc)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| ns(proc, &p.to_string(), kind) == Some(which))
        .collect();
    out.sort_unstable();
    out
}

/// The mount namespace of the container whose init is `init` when it
/// shares this process's pid namespace (`--pid host`): what its processes
/// are known by. None when it has a pid namespace of its own (its
/// processes die with its init) or no mount namespace of its own.
pub(crate) fn shared_pid_mount_ns(proc: &Path, init: i32) -> Option<Ns> {
    let pid = init.to_string();
    let mnt = ns(proc, &pid, "mnt")?;
    (ns(proc, &pid, "pid")? == ns(proc, "self", "pid")? && Some(mnt) != ns(proc, "self", "mnt"))
        .then_some(mnt)
}

/// The processes of the container whose init is `init`, read from `proc`
/// (`/proc`; a directory in tests): every process in init's pid namespace,
/// or, sharing this process's, in its mount namespace. Empty when init is
/// gone.
pub(crate) fn without_cgroup(proc: &Path, init: i32) -> Vec<i32> {
    if init <= 0 {
        return Vec::new();
    }
    if let Some(mnt) = shared_pid_mount_ns(proc, init) {
        return in_namespace(proc, "mnt", mnt);
    }
    match ns(proc, &init.to_string(), "pid") {
        Some(theirs) if Some(theirs) != ns(proc, "self", "pid") => {
            in_namespace(proc, "pid", theirs)
        }
        Some(_) => vec![init],
        None => Vec::new(),
    }
}

/// Is process `pid` in this process's user namespace or one made in it
/// (rootless berth's containers with id maps of their own)? What is found
/// by a namespace recorded earlier is checked so: once a namespace is
/// gone, its inode may be a new one's, which is not berth's to touch.
fn in_our_user_ns(pid: i32) -> bool {
    use std::os::fd::AsFd;
    let Some(mine) = ns(Path::new("/proc"), "self", "user") else {
        return false;
    };
    let Ok(theirs) = std::fs::File::open(format!("/proc/{pid}/ns/user")) else {
        return false;
    };
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    if theirs.metadata().map(id).ok() == Some(mine) {
        return true;
    }
    sys::process::namespace_parent(theirs.as_fd())
        .ok()
        .and_then(|p| std::fs::File::from(p).metadata().ok())
        .map(id)
        == Some(mine)
}

/// The processes in mount namespace `which` that are berth's by their
/// user namespace (see `in_our_user_ns`).
pub(crate) fn berths_in_mount_namespace(which: Ns) -> Vec<i32> {
    let mut pids = in_namespace(Path::new("/proc"), "mnt", which);
    pids.retain(|p| in_our_user_ns(*p));
    pids
}

/// SIGKILL every process of berth's in mount namespace `which` until none
/// is left (bounded: 2 s).
pub(crate) fn kill_mount_namespace(which: Ns) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let left = berths_in_mount_namespace(which);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        for pid in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc: each pid's ns/pid and ns/mnt, files standing for the
    /// namespaces (their inodes tell them apart); `self` is in `me`.
    fn fake(dir: &Path, procs: &[(&str, &str, &str)]) {
        for name in ["host", "ctr", "hostmnt", "ctrmnt"] {
            std::fs::write(dir.join(format!("ns-{name}")), name).unwrap();
        }
        for (pid, pidns, mnt) in procs {
            let d = dir.join(pid);
            std::fs::create_dir_all(d.join("ns")).unwrap();
            std::fs::hard_link(dir.join(format!("ns-{pidns}")), d.join("ns/pid")).unwrap();
            std::fs::hard_link(dir.join(format!("ns-{mnt}")), d.join("ns/mnt")).unwrap();
        }
    }

    #[test]
    fn a_private_pid_namespace_gives_every_process_in_it() {
        let d = tempfile::tempdir().unwrap();
        // 10 is the init, 11 and 12 its processes; 5 (the monitor) and
        // 30 are the host's.
        fake(
            d.path(),
            &[
                ("self", "host", "hostmnt"),
                ("5", "host", "hostmnt"),
                ("10", "ctr", "ctrmnt"),
                ("11", "ctr", "ctrmnt"),
                ("12", "ctr", "ctrmnt"),
                ("30", "host", "hostmnt"),
            ],
        );
        assert_eq!(without_cgroup(d.path(), 10), [10, 11, 12]);
        assert_eq!(shared_pid_mount_ns(d.path(), 10), None);
    }

    #[test]
    fn the_hosts_pid_namespace_gives_the_processes_of_its_mount_namespace() {
        let d = tempfile::tempdir().unwrap();
        // 13 was orphaned: its parent is gone, its mounts are the
        // container's still.
        fake(
            d.path(),
            &[
                ("self", "host", "hostmnt"),
                ("5", "host", "hostmnt"),
                ("10", "host", "ctrmnt"),
                ("11", "host", "ctrmnt"),
                ("13", "host", "ctrmnt"),
                ("30", "host", "hostmnt"),
            ],
        );
        assert_eq!(without_cgroup(d.path(), 10), [10, 11, 13]);
        let mnt = shared_pid_mount_ns(d.path(), 10).unwrap();
        assert_eq!(in_namespace(d.path(), "mnt", mnt), [10, 11, 13]);
        assert_eq!(without_cgroup(d.path(), 99), Vec::<i32>::new());
        assert_eq!(without_cgroup(d.path(), 0), Vec::<i32>::new());
        // The host's own: nothing to tell its processes by.
        assert_eq!(without_cgroup(d.path(), 30), [30]);
    }
}
