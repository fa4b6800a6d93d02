//! Reading the host for the census: processes from `/proc`, berth's
//! cgroups from the hierarchy, mounts from mountinfo. The roots are
//! parameters, so the parsing is tested against directories and text.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A berth process as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    pub pid: i32,
    /// The command line.
    pub args: Vec<String>,
    /// The state root it works on.
    pub root: PathBuf,
    /// Its session (a detached process leads its own).
    pub session: i32,
    /// Start time, in clock ticks since boot.
    pub start: u64,
}

/// The value of `--root` on a command line (`--root X` or `--root=X`).
fn root_flag(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            return None;
        }
        if a == "--root" {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix("--root=") {
            return Some(v);
        }
    }
    None
}

/// The subcommand of a berth command line (`run`, `dns-serve`…): the
/// first word that is not a global flag or its value.
pub(crate) fn subcommand(args: &[String]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if matches!(
            a.as_str(),
            "--root" | "--runroot" | "--config" | "--log-level"
        ) {
            it.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        return Some(a);
    }
    None
}

/// The state root a berth process works on: `--root`, else `BERTH_ROOT`
/// in its environment, else the default; relative to its working dir.
pub(crate) fn root_of(args: &[String], environ: &[u8], cwd: Option<&Path>) -> PathBuf {
    let from_env = environ
        .split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"BERTH_ROOT="))
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let root = root_flag(args)
        .map(str::to_string)
        .or(from_env)
        .unwrap_or_else(|| crate::DEFAULT_ROOT.to_string());
    let root = PathBuf::from(root);
    match cwd {
        Some(cwd) if root.is_relative() => cwd.join(root),
        _ => root,
    }
}

/// The same path as `p` names, symlinks resolved where it exists.
pub(crate) fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Every process under `proc` running a `berth` binary on the state root
/// `root` (canonical), but `me`.
pub(crate) fn berth_processes(proc: &Path, root: &Path, me: i32) -> Vec<ProcInfo> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(proc) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let dir = e.path();
        // Kernel threads have no exe; a rebuilt binary reads "(deleted)".
        let Ok(exe) = std::fs::read_link(dir.join("exe")) else {
            continue;
        };
        let is_berth = exe
            .file_name()
            .map(|n| n.to_string_lossy().starts_with("berth"))
            .unwrap_or(false);
        if !is_berth {
            continue;
        }
        let args: Vec<String> = std::fs::read(dir.join("cmdline"))
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let environ = std::fs::read(dir.join("environ")).unwrap_or_default();
        let cwd = std::fs::read_link(dir.join("cwd")).ok();
        if canonical(&root_of(&args, &environ, cwd.as_deref())) != root {
            continue;
        }
        let Some((session, start)) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| session_and_start(&s))
        else {
            continue;
        };
        out.push(ProcInfo {
            pid,
            args,
            root: root.to_path_buf(),
            session,
            start,
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// Session id and start time (ticks) from a `/proc/PID/stat` line; None
/// for a zombie.
fn session_and_start(stat: &str) -> Option<(i32, u64)> {
    // The command name may hold spaces and ')': fields after the last ')'.
    let mut f = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = f.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let _ppid = f.next()?;
    let _pgrp = f.next()?;
    let session = f.next()?.parse().ok()?;
    let start = f.nth(15)?.parse().ok()?;
    Some((session, start))
}

/// Seconds since boot, now.
pub(crate) fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// How long ago a process started at `start` ticks after boot.
pub(crate) fn age(start: u64) -> std::time::Duration {
    let hz = sys::process::clock_ticks().max(1) as f64;
    std::time::Duration::from_secs_f64((uptime() - start as f64 / hz).max(0.0))
}

/// The `berth/<name>` cgroup dirs of every hierarchy of `h`, by name.
pub(crate) fn berth_cgroups(h: &runtime::cgroup::Hierarchy) -> BTreeMap<String, Vec<PathBuf>> {
    let mounts: Vec<PathBuf> = match h {
        runtime::cgroup::Hierarchy::V1 { controllers } => {
            let mut m: Vec<PathBuf> = controllers.values().cloned().collect();
            m.sort();
            m.dedup();
            m
        }
        runtime::cgroup::Hierarchy::V2 { root } => vec![root.clone()],
    };
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for m in mounts {
        let Ok(rd) = std::fs::read_dir(m.join("berth")) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.entry(e.file_name().to_string_lossy().into_owned())
                    .or_default()
                    .push(e.path());
            }
        }
    }
    out
}

/// The processes in cgroup dirs (each hierarchy's `cgroup.procs`).
pub(crate) fn cgroup_pids(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// One mount of a mountinfo table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountLine {
    pub path: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Parse `/proc/PID/mountinfo` (`id parent dev root point opts… - type
/// source superopts`).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let point = head.split(' ').nth(4)?;
            let mut t = tail.split(' ');
            Some(MountLine {
                path: PathBuf::from(crate::volumes::unescape_mountinfo(point)),
                fstype: t.next()?.to_string(),
                source: crate::volumes::unescape_mountinfo(t.next().unwrap_or("")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_process_root_comes_from_its_flag_then_its_environment() {
        let env = b"PATH=/bin\0BERTH_ROOT=/var/tmp/r\0";
        assert_eq!(
            root_of(&args("berth --root /x run -d img"), env, None),
            PathBuf::from("/x")
        );
        assert_eq!(
            root_of(&args("berth --root=/y ps"), env, None),
            PathBuf::from("/y")
        );
        assert_eq!(
            root_of(&args("berth run -d img"), env, None),
            PathBuf::from("/var/tmp/r")
        );
        assert_eq!(
            root_of(&args("berth ps"), b"", None),
            PathBuf::from(crate::DEFAULT_ROOT)
        );
        assert_eq!(
            root_of(&args("berth --root r ps"), b"", Some(Path::new("/home/u"))),
            PathBuf::from("/home/u/r")
        );
        // A container's command after `--` is not berth's.
        assert_eq!(
            root_of(&args("berth run img -- sh --root /z"), env, None),
            PathBuf::from("/var/tmp/r")
        );
    }

    #[test]
    fn subcommands_skip_global_flags() {
        assert_eq!(
            subcommand(&args("berth --root /r --runroot /x dns-serve abc")),
            Some("dns-serve")
        );
        assert_eq!(subcommand(&args("berth run -d img")), Some("run"));
        assert_eq!(subcommand(&args("berth")), None);
    }

    #[test]
    fn stat_lines_give_session_and_start() {
        let stat = "4242 (berth (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(session_and_start(stat), Some((4242, 987654)));
        let zombie =
            "4243 (berth) Z 1 4243 4243 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(session_and_start(zombie), None);
    }

    #[test]
    fn cgroups_are_found_in_v1_and_v2_layouts() {
        let t = tempfile::tempdir().unwrap();
        let v2 = t.path().join("unified");
        for d in ["berth/aaa", "berth/bbb", "other/ccc"] {
            std::fs::create_dir_all(v2.join(d)).unwrap();
        }
        std::fs::write(v2.join("berth/aaa/cgroup.procs"), "12\n7\n").unwrap();
        let found = berth_cgroups(&runtime::cgroup::Hierarchy::V2 { root: v2.clone() });
        assert_eq!(found.keys().collect::<Vec<_>>(), ["aaa", "bbb"]);
        assert_eq!(cgroup_pids(&found["aaa"]), [7, 12]);
        assert_eq!(cgroup_pids(&found["bbb"]), Vec::<i32>::new());

        // v1: co-mounted controllers share a dir, each mount counts once.
        let (cpu, mem) = (t.path().join("cpu,cpuacct"), t.path().join("memory"));
        std::fs::create_dir_all(cpu.join("berth/aaa")).unwrap();
        std::fs::create_dir_all(mem.join("berth/aaa")).unwrap();
        std::fs::write(mem.join("berth/aaa/cgroup.procs"), "7\n").unwrap();
        let controllers = [
            ("cpu".to_string(), cpu.clone()),
            ("cpuacct".to_string(), cpu.clone()),
            ("memory".to_string(), mem.clone()),
        ]
        .into_iter()
        .collect();
        let found = berth_cgroups(&runtime::cgroup::Hierarchy::V1 { controllers });
        assert_eq!(
            found["aaa"],
            vec![cpu.join("berth/aaa"), mem.join("berth/aaa")]
        );
        assert_eq!(cgroup_pids(&found["aaa"]), [7]);
    }

    #[test]
    fn mountinfo_lines() {
        let text = "36 35 98:0 /mnt1 /var/lib/berth/run\\040dir rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    37 35 0:5 / /proc rw shared:2 - proc proc rw\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].path, PathBuf::from("/var/lib/berth/run dir"));
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[0].source, "/dev/root");
        assert_eq!(m[1].path, PathBuf::from("/proc"));
    }
}
