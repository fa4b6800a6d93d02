//! Supervision (root): pause/unpause with the cgroup freezer.
mod common;

use common::*;

fn counter(b: &Berth, name: &str) -> u64 {
    let out = b
        .cmd()
        .args(["cp", &format!("{name}:/tmp/c"), "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut a = tar::Archive::new(&out.stdout[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    s.trim().parse().unwrap_or(0)
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "tick",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.02; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(b.ok(&["pause", "tick"]), "tick\n");
    let id = b
        .ok(&["inspect", "-f", "{{.Id}}", "tick"])
        .trim()
        .to_string();
    let state = std::fs::read_to_string(format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"))
        .unwrap_or_else(|_| "FROZEN".into());
    assert_eq!(state.trim(), "FROZEN");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "tick"
        ]),
        "paused true\n"
    );
    assert!(b
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    let a = counter(&b, "tick");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(counter(&b, "tick"), a, "the counter moved while paused");
    // Refused while paused: exec, a second pause.
    let out = b.run(&["exec", "tick", "true"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("paused"));
    assert_eq!(code(&b.run(&["pause", "tick"])), 1);
    b.ok(&["unpause", "tick"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(counter(&b, "tick") > a, "the counter did not resume");
    assert_eq!(code(&b.run(&["unpause", "tick"])), 1);
    // A paused container can still be stopped (thawed after the signal).
    b.ok(&["pause", "tick"]);
    b.ok(&["stop", "-t", "1", "tick"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "tick"]),
        "exited\n"
    );
    assert_eq!(code(&b.run(&["pause", "tick"])), 1);
}

#[test]
fn stats_no_stream_matches_the_cgroup_files() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "--memory",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "sleep 300 & sleep 300 & while true; do :; done",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "idle",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "300",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
    ]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 2, "{out}");
    let busy: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(busy[0], "busy");
    let cpu: f64 = busy[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 40.0, "a busy loop shows {cpu}% CPU");
    assert_eq!(busy[4], "64MiB", "the memory limit: {out}");
    let id = b
        .ok(&["inspect", "-f", "{{.Id}}", "busy"])
        .trim()
        .to_string();
    let pids =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/berth/{id}/pids.current")).unwrap();
    assert_eq!(busy[5], pids.trim(), "pids as the cgroup counts them");
    assert_eq!(busy[5], "3");
    let idle: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(idle[0], "idle");
    let cpu: f64 = idle[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu < 20.0, "sleep shows {cpu}% CPU");
    // Named, stopped: zeros, not an error.
    b.ok(&["stop", "-t", "0", "idle"]);
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "idle",
    ]);
    assert_eq!(out, "idle 0\n");
    assert_eq!(code(&b.run(&["stats", "--no-stream", "nosuch"])), 125);
}

#[test]
fn update_changes_the_cgroup_limits_live() {
    let b = Berth::new();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "lim",
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            IMAGE,
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let read = |ctl: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{ctl}/berth/{id}/{file}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
    b.ok(&[
        "update",
        "--memory",
        "128m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "lim",
    ]);
    assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(read("pids", "pids.max"), "50");
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    // Seen from inside, and kept for the next start.
    assert_eq!(
        b.ok(&[
            "exec",
            "lim",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ]),
        "134217728\n"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}",
            "lim"
        ]),
        "134217728 50\n"
    );
    b.ok(&["update", "--pids-limit", "-1", "lim"]);
    assert_eq!(read("pids", "pids.max"), "max");
    b.ok(&["restart", "-t", "0", "lim"]);
    assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
    // Bad input changes nothing.
    assert_eq!(code(&b.run(&["update", "--memory", "1m", "lim"])), 1);
    assert_eq!(code(&b.run(&["update", "lim"])), 125);
    assert_eq!(read("memory", "memory.limit_in_bytes"), "134217728");
}

#[test]
fn top_with_ps_options_lists_only_the_containers_processes() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "procs",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "sleep 311 & sleep 312 & wait",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = b.ok(&["top", "procs", "-o", "pid,args"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len(), 3, "{out}");
    assert!(rest.iter().any(|l| l.contains("sleep 311")));
    assert!(rest.iter().any(|l| l.contains("sleep 312")));
    let out = b.ok(&["top", "procs", "aux"]);
    assert!(out.starts_with("USER") && out.lines().count() == 4, "{out}");
    let out = b.run(&["top", "procs", "-o", "comm"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("PID field"));
}
