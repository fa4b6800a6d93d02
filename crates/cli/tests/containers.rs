//! `berth run` and friends against real containers (root).
mod common;

use common::{assert_census_clean, code, stderr, stdout, Berth, IMAGE};

fn sh(b: &Berth, extra: &[&str], script: &str) -> std::process::Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    b.run(&args)
}

#[test]
fn isolation_matches_docker_defaults() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--hostname", "box"],
        "echo pid=$$; hostname; grep -E '^(CapEff|CapBnd|CapPrm|Seccomp|NoNewPrivs):' /proc/self/status; \
         echo procs=$(ls -d /proc/[0-9]* | wc -l); echo fds=$(ls /proc/self/fd | wc -l)",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s = stdout(&out);
    assert!(s.contains("pid=1\n"), "{s}");
    assert!(s.contains("box\n"), "{s}");
    assert!(s.contains("CapEff:\t00000000a80425fb"), "{s}");
    assert!(s.contains("CapBnd:\t00000000a80425fb"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "{s}");
    assert!(s.contains("NoNewPrivs:\t0"), "{s}");
    // sh, its subshell, ls and wc: host processes are invisible.
    let procs: usize = s
        .split("procs=")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(procs <= 4, "{s}");
    // 0, 1, 2 and the fd ls opens on /proc/self/fd: no host fd leaked (CVE-2024-21626).
    assert!(s.contains("fds=4\n"), "{s}");
}

#[test]
fn masked_and_readonly_proc_paths() {
    let b = Berth::new();
    let out = sh(
        &b,
        &[],
        "echo timer=$(wc -c < /proc/timer_list) keys=$(wc -c < /proc/keys); \
         echo 1 > /proc/sys/kernel/domainname && echo sys-writable || echo sys-ro; \
         ls /sys/firmware | wc -l",
    );
    let s = stdout(&out);
    assert!(s.contains("timer=0 keys=0"), "{s} {}", stderr(&out));
    assert!(s.contains("sys-ro"), "{s}");
    // /sys/firmware is masked: an empty directory.
    assert!(s.ends_with("sys-ro\n0\n"), "{s}");
}

#[test]
fn mount_and_unshare_are_denied() {
    let b = Berth::new();
    let out = sh(&b, &[], "mount -t tmpfs none /mnt");
    assert_ne!(code(&out), 0);
    let out = sh(&b, &[], "unshare -n true");
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    // With seccomp unconfined but no CAP_SYS_ADMIN, still denied by capabilities.
    let out = sh(
        &b,
        &["--security-opt", "seccomp=unconfined"],
        "grep Seccomp: /proc/self/status; mount -t tmpfs none /mnt",
    );
    assert!(stdout(&out).contains("Seccomp:\t0"));
    assert_ne!(code(&out), 0);
    // --privileged gets everything.
    let out = sh(
        &b,
        &["--privileged"],
        "mkdir -p /mnt && mount -t tmpfs none /mnt && grep CapEff /proc/self/status",
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("000001ff"), "{}", stdout(&out));
}

#[test]
fn capabilities_add_and_drop() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--cap-drop", "ALL", "--cap-add", "cap_chown"],
        "grep CapEff /proc/self/status",
    );
    assert!(
        stdout(&out).contains("CapEff:\t0000000000000001"),
        "{}",
        stdout(&out)
    );
    let out = sh(
        &b,
        &["--cap-drop", "NET_RAW"],
        "grep CapEff /proc/self/status",
    );
    assert!(
        stdout(&out).contains("CapEff:\t00000000a80405fb"),
        "{}",
        stdout(&out)
    );
    let out = b.run(&["run", "--rm", "--cap-add", "BOGUS", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("BOGUS"), "{}", stderr(&out));
}

#[test]
fn no_new_privileges() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--security-opt", "no-new-privileges"],
        "grep NoNewPrivs /proc/self/status",
    );
    assert!(stdout(&out).contains("NoNewPrivs:\t1"), "{}", stderr(&out));
    // What the flag is for: a setuid-root binary (a static one made here;
    // busybox drops setuid itself) run by uid 1000 gains root without it,
    // nothing with it.
    let dir = b.path().join("suid");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("euid.c"),
        "#include <stdio.h>\n#include <unistd.h>\nint main(void){printf(\"euid=%d\\n\",(int)geteuid());return 0;}\n",
    )
    .unwrap();
    let cc = std::process::Command::new("cc")
        .args(["-static", "-O", "-o"])
        .arg(dir.join("euid"))
        .arg(dir.join("euid.c"))
        .output()
        .expect("cc (the Rust toolchain's linker; scripts/deps installs gcc)");
    assert!(cc.status.success(), "{}", stderr(&cc));
    std::fs::set_permissions(
        dir.join("euid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    let bind = format!("{}:/euid:ro", dir.join("euid").display());
    let plain = b.ok(&["run", "--rm", "-u", "1000", "-v", &bind, IMAGE, "/euid"]);
    assert_eq!(plain, "euid=0\n", "the setuid probe works");
    let nnp = b.ok(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "--security-opt",
        "no-new-privileges",
        "-v",
        &bind,
        IMAGE,
        "/euid",
    ]);
    assert_eq!(nnp, "euid=1000\n", "no-new-privileges let setuid through");
}

#[test]
fn exit_codes_follow_docker() {
    let b = Berth::new();
    assert_eq!(code(&b.run(&["run", "--rm", IMAGE, "true"])), 0);
    assert_eq!(
        code(&b.run(&["run", "--rm", IMAGE, "sh", "-c", "exit 3"])),
        3
    );
    let out = b.run(&["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    let out = b.run(&["run", "--rm", IMAGE, "/bin/not-executable"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no-such-image"), "{}", stderr(&out));
    assert_eq!(code(&b.run(&["run", "--bogus-flag", IMAGE])), 125);
    let out = b.run(&["run", "--rm", "--memory", "lots", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'\n\
         See 'berth run --help'.\n"
    );
    // --rm containers are gone, failed or not.
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn name_in_use_is_refused() {
    let b = Berth::new();
    b.ok(&["create", "--name", "one", IMAGE, "true"]);
    let out = b.run(&["create", "--name", "one", IMAGE, "true"]);
    assert_eq!(code(&out), 1);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "one"]);
    assert_eq!(
        stderr(&out),
        format!(
            "berth: Conflict. The container name \"/one\" is already in use by container \"{}\". \
             You have to remove (or rename) that container to be able to reuse that name.\n",
            id.trim()
        )
    );
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1);
    // rename: dockerd's refusal, then which rename failed.
    b.ok(&["create", "--name", "two", IMAGE, "true"]);
    let out = b.run(&["rename", "two", "one"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).starts_with(
            "berth: Error when allocating new name: Conflict. The container name \"/one\""
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).ends_with("\nberth: failed to rename container named two\n"),
        "{}",
        stderr(&out)
    );
    let out = b.run(&["rename", "nosuch", "three"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "berth: No such container: nosuch\nberth: failed to rename container named nosuch\n"
    );
    b.ok(&["rm", "one", "two"]);
    assert_census_clean(&b);
}

#[test]
fn user_switching_resolves_names() {
    let b = Berth::new();
    let out = sh(&b, &["-u", "app"], "id; grep CapEff /proc/self/status");
    let s = stdout(&out);
    assert!(
        s.contains("uid=1000(app) gid=1000(app)"),
        "{s} {}",
        stderr(&out)
    );
    assert!(s.contains("10(wheel)"), "{s}");
    assert!(s.contains("CapEff:\t0000000000000000"), "{s}");
    let out = sh(&b, &["-u", "4242:wheel"], "id -u; id -g");
    assert_eq!(stdout(&out), "4242\n10\n");
    let out = b.run(&["run", "--rm", "-u", "ghost", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        "berth: unable to find user ghost: no matching entries in passwd file.\n"
    );
    // As in Docker, the container is created; its start fails.
    b.ok(&["create", "--name", "ghostly", "-u", "ghost", IMAGE, "true"]);
    let out = b.run(&["start", "ghostly"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("unable to find user ghost: no matching entries in passwd file"),
        "{}",
        stderr(&out)
    );
    b.ok(&["rm", "ghostly"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn env_workdir_entrypoint() {
    let b = Berth::new();
    let envf = b.path().join("envfile");
    std::fs::write(&envf, "# comment\nFROM_FILE=1\n").unwrap();
    let out = b.run(&[
        "run",
        "--rm",
        "-e",
        "A=b c",
        "--env-file",
        envf.to_str().unwrap(),
        "-w",
        "/tmp/newdir",
        IMAGE,
        "sh",
        "-c",
        "echo $A $FROM_FILE $(pwd) $HOSTNAME",
    ]);
    assert!(
        stdout(&out).starts_with("b c 1 /tmp/newdir "),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    let out = b.run(&["run", "--rm", "--entrypoint", "echo", IMAGE, "hi", "there"]);
    assert_eq!(stdout(&out), "hi there\n");
}

#[test]
fn read_only_root_and_tmpfs() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--read-only", "--tmpfs", "/scratch:size=1m"],
        "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmp-ok",
    );
    assert_eq!(stdout(&out), "ro\ntmp-ok\n", "{}", stderr(&out));
}

#[test]
fn memory_limit_ooms_and_is_recorded() {
    let b = Berth::new();
    let out = b.run(&[
        "run",
        "--name",
        "oom",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMAGE,
        "sh",
        "-c",
        "x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
    ]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    let s = b.ok(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "oom",
    ]);
    assert_eq!(s.trim(), "true 137");
}

#[test]
fn pids_limit_stops_fork_bombs() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--pids-limit", "5"],
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo done",
    );
    let all = stdout(&out) + &stderr(&out);
    assert!(
        all.contains("can't fork") || all.contains("Resource temporarily unavailable"),
        "{all}"
    );
}

#[test]
fn cgroup_limits_are_written() {
    let b = Berth::new();
    let out = sh(
        &b,
        &["--memory", "64m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "20"],
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max",
    );
    assert_eq!(
        stdout(&out),
        "67108864\n50000\n512\n20\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn detached_logs_survive_the_cli() {
    let b = Berth::new();
    let id = b.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; echo partial | tr -d '\\n'",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(b.ok(&["wait", "talker"]).trim(), "0");
    let out = b.run(&["logs", "talker"]);
    assert_eq!(stdout(&out), "out\npartial");
    assert_eq!(stderr(&out), "err\n");
    let out = b.run(&["logs", "--tail", "1", "-t", "talker"]);
    assert!(stdout(&out).ends_with("Z partial"), "{}", stdout(&out));
    let ps = b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "talker exited");
}

#[test]
fn stop_sends_the_stop_signal_then_kills() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 42' TERM; while true; do sleep 0.1; done",
    ]);
    b.ok(&["stop", "polite"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "polite"])
            .trim(),
        "42"
    );
    // pid 1 without a handler ignores SIGTERM: SIGKILL after the timeout.
    // (dockerd records each signal as a `kill` event: SIGTERM, then SIGKILL.)
    b.ok(&["run", "-d", "--name", "stubborn", IMAGE, "sleep", "300"]);
    let since = b.ok(&["inspect", "-f", "{{.State.StartedAt}}", "stubborn"]);
    b.ok(&["stop", "-t", "1", "stubborn"]);
    let until = chrono::Utc::now().timestamp() + 1;
    let events = b.ok(&[
        "events",
        "--since",
        since.trim(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=stubborn",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"signal\"}}",
    ]);
    let actions: Vec<&str> = events
        .lines()
        .map(str::trim)
        .filter(|a| *a != "start")
        .collect();
    assert_eq!(actions, ["kill 15", "kill 9", "die", "stop"], "{events}");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.State.Status}}",
            "stubborn"
        ])
        .trim(),
        "137 exited"
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    b.ok(&["stop", "usr1"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "usr1"])
            .trim(),
        "7"
    );
    assert_census_clean(&b);
}

#[test]
fn kill_records_137_and_restart_runs_again() {
    let b = Berth::new();
    b.ok(&["run", "-d", "--name", "k", IMAGE, "sleep", "300"]);
    b.ok(&["kill", "k"]);
    assert_eq!(b.ok(&["wait", "k"]).trim(), "137");
    b.ok(&["restart", "k"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "k"]).trim(),
        "true"
    );
    let out = b.run(&["rm", "k"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    b.ok(&["rm", "-f", "k"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn init_reaps_zombies_and_forwards_signals() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "reaper",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do (sleep 0.1 &) ; done; sleep 300",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let ps = b.ok(&["exec", "reaper", "ps", "-o", "pid,stat,args"]);
    assert!(
        !ps.lines().any(|l| l.split_whitespace().nth(1) == Some("Z")),
        "{ps}"
    );
    assert!(ps.contains("docker-init"), "{ps}");
    let t = std::time::Instant::now();
    b.ok(&["stop", "-t", "20", "reaper"]);
    assert!(
        t.elapsed().as_secs() < 10,
        "the init should forward SIGTERM to sh"
    );
}

#[test]
fn exec_joins_the_container() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "host",
        "--hostname",
        "inner",
        IMAGE,
        "sleep",
        "300",
    ]);
    let out = b.ok(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "app",
        "host",
        "sh",
        "-c",
        "echo $X $(pwd) $(hostname) $(id -u); grep -E 'Seccomp|CapEff' /proc/self/status",
    ]);
    assert!(out.starts_with("1 /tmp inner 1000\n"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    let out = b.run(&["exec", "host", "sh", "-c", "exit 9"]);
    assert_eq!(code(&out), 9);
    // As docker's CLI: dockerd's OCI error on stdout, 126.
    let out = b.run(&["exec", "host", "nope"]);
    assert_eq!(code(&out), 126);
    assert_eq!(
        stdout(&out),
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nope\": executable file not found in $PATH: unknown\n"
    );
    let top = b.ok(&["top", "host"]);
    assert!(top.contains("sleep 300"), "{top}");
    assert_census_clean(&b);
}

#[test]
fn concurrent_runs_and_removals() {
    let b = std::sync::Arc::new(Berth::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let b = b.clone();
            std::thread::spawn(move || {
                b.run(&[
                    "run",
                    "--rm",
                    "--name",
                    &format!("c{i}"),
                    IMAGE,
                    "echo",
                    "hi",
                ])
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(stdout(&out), "hi\n", "{}", stderr(&out));
    }
    // rmi racing a create, on an image with only that one tag (so rmi
    // deletes it): exactly one wins. A create that wins holds the image
    // (rmi refuses) and its container runs; an rmi that wins leaves the
    // create nothing to use. Both winning would leave a container without
    // its image's layers.
    for round in 0..8 {
        let tag = format!("racy:{round}");
        let o = b.run_stdin(
            &["import", "-", &tag],
            &common::busybox_rootfs_tar_with(&[("round", 0o644, tag.as_bytes())]),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let b2 = b.clone();
        let (name, tag2) = (format!("racer{round}"), tag.clone());
        let creator = std::thread::spawn(move || {
            b2.run(&["create", "--name", &name, &tag2, "cat", "/round"])
        });
        let rmi = b.run(&["rmi", &tag]);
        let created = creator.join().unwrap();
        let (c, r) = (code(&created) == 0, code(&rmi) == 0);
        assert!(
            c != r,
            "round {round}: create {} rmi {}",
            stderr(&created),
            stderr(&rmi)
        );
        if c {
            assert!(stderr(&rmi).contains("used by"), "{}", stderr(&rmi));
            let out = b.ok(&["start", "-a", &format!("racer{round}")]);
            assert_eq!(out, tag);
        }
    }
    assert_census_clean(&b);
}

#[test]
fn external_runtime_runc() {
    let b = Berth::new();
    if !std::path::Path::new("/usr/sbin/runc").exists()
        && !std::path::Path::new("/usr/bin/runc").exists()
    {
        panic!("runc is not installed: apt-get install runc (scripts/deps does)");
    }
    let out = sh(
        &b,
        &["--runtime", "runc"],
        "echo pid=$$; grep -E '^(CapEff|Seccomp):' /proc/self/status",
    );
    let s = stdout(&out);
    assert_eq!(code(&out), 0, "{s}{}", stderr(&out));
    assert!(s.contains("pid=1"), "{s}");
    assert!(s.contains("CapEff:\t00000000a80425fb"), "{s}");
    assert!(s.contains("Seccomp:\t2"), "{s}");
    assert_eq!(
        code(&b.run(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            IMAGE,
            "sh",
            "-c",
            "exit 5"
        ])),
        5
    );
    b.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "r",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["stop", "-t", "1", "r"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "r"]).trim(),
        "137"
    );
    // -t: runc makes the pty inside the container and hands it over.
    let out = b.run(&["run", "--rm", "-t", "--runtime", "runc", IMAGE, "tty"]);
    assert!(
        stdout(&out).contains("/dev/pts/"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    assert_census_clean(&b);
}

#[test]
fn inspect_rename_and_ps_filters() {
    let b = Berth::new();
    b.ok(&[
        "create", "--name", "a", "--label", "tier=web", IMAGE, "true",
    ]);
    b.ok(&["create", "--name", "b", IMAGE, "true"]);
    b.ok(&["rename", "a", "alpha"]);
    assert_eq!(
        b.ok(&[
            "ps",
            "-a",
            "--filter",
            "label=tier=web",
            "--format",
            "{{.Names}}"
        ])
        .trim(),
        "alpha"
    );
    assert_eq!(
        b.ok(&["ps", "-a", "--filter", "status=created", "-q"])
            .lines()
            .count(),
        2
    );
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "alpha"])).unwrap();
    assert_eq!(v[0]["Name"], "/alpha");
    assert_eq!(v[0]["State"]["Status"], "created");
    assert_eq!(v[0]["Config"]["Labels"]["tier"], "web");
    let out = b.run(&["rename", "alpha", "b"]);
    assert_eq!(code(&out), 1);
}

#[test]
fn attach_forwards_stdin_and_returns_the_exit_code() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "cat",
        IMAGE,
        "sh",
        "-c",
        "read line; echo got:$line; exit 4",
    ]);
    let out = b.run_stdin(&["attach", "cat"], b"hello\n");
    assert_eq!(stdout(&out), "got:hello\n", "{}", stderr(&out));
    assert_eq!(code(&out), 4);
}

#[test]
fn foreground_run_pipes_stdin() {
    let b = Berth::new();
    let out = b.run_stdin(
        &["run", "--rm", "-i", IMAGE, "sh", "-c", "tr a-z A-Z"],
        b"shout\n",
    );
    assert_eq!(stdout(&out), "SHOUT\n", "{}", stderr(&out));
}

#[test]
fn tty_gives_the_container_a_terminal() {
    let b = Berth::new();
    let out = b.run(&[
        "run",
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "tty; stty size 2>/dev/null; echo done",
    ]);
    let s = stdout(&out);
    assert!(s.contains("/dev/pts/0"), "{s} {}", stderr(&out));
    assert!(s.contains("done"), "{s}");
    b.ok(&["run", "-d", "--name", "t", IMAGE, "sleep", "300"]);
    let out = b.run(&["exec", "-t", "t", "tty"]);
    assert!(stdout(&out).contains("/dev/pts/"), "{}", stdout(&out));
}

#[test]
fn no_host_binary_is_reachable_from_inside() {
    // CVE-2019-5736: neither the container's processes nor an exec'd one
    // expose berth's own executable through /proc/PID/exe.
    let b = Berth::new();
    b.ok(&["run", "-d", "--name", "c", IMAGE, "sleep", "300"]);
    let out = b.ok(&[
        "exec",
        "c",
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do readlink $p/exe; done",
    ]);
    assert!(!out.contains("berth"), "{out}");
    for line in out.lines().filter(|l| !l.is_empty()) {
        assert_eq!(line, "/bin/busybox", "{out}");
    }
}

#[test]
fn start_attach_logs_follow_since_and_exec_detached() {
    let b = Berth::new();
    b.ok(&[
        "create",
        "--name",
        "s",
        IMAGE,
        "sh",
        "-c",
        "echo one; sleep 0.3; echo two; exit 6",
    ]);
    let out = b.run(&["start", "-a", "s"]);
    assert_eq!(stdout(&out), "one\ntwo\n", "{}", stderr(&out));
    assert_eq!(code(&out), 6);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "f",
        IMAGE,
        "sh",
        "-c",
        "echo a; sleep 0.5; echo b",
    ]);
    let out = b.run(&["logs", "-f", "f"]);
    assert_eq!(stdout(&out), "a\nb\n");
    assert_eq!(b.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "f"]), "");
    assert_eq!(b.ok(&["logs", "--since", "10m", "f"]), "a\nb\n");
    assert_eq!(b.ok(&["logs", "--tail", "1", "f"]), "b\n");
    b.ok(&["run", "-d", "--name", "e", IMAGE, "sleep", "300"]);
    b.ok(&["exec", "-d", "e", "sh", "-c", "echo bg > /tmp/marker"]);
    let mut got = String::new();
    for _ in 0..50 {
        got = b
            .run(&["exec", "e", "cat", "/tmp/marker"])
            .stdout
            .iter()
            .map(|&c| c as char)
            .collect();
        if got == "bg\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(got, "bg\n");
    let json = b.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Names"], "e");
    let json = b.ok(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(v["Repository"], "bb");
}

#[test]
fn network_modes_ulimits_and_stop_timeout() {
    let b = Berth::new();
    // none: only loopback.
    let out = sh(&b, &["--network", "none"], "ls /sys/class/net");
    assert_eq!(stdout(&out), "lo\n", "{}", stderr(&out));
    // The default: the default bridge (eth0).
    let out = sh(&b, &[], "ls /sys/class/net");
    assert_eq!(stdout(&out), "eth0\nlo\n", "{}", stderr(&out));
    // host: the host's interfaces (the one of its default route among
    // them; other tests add and remove links meanwhile).
    let route = std::fs::read_to_string("/proc/net/route").unwrap();
    let uplink = route
        .lines()
        .skip(1)
        .find(|l| l.split_whitespace().nth(1) == Some("00000000"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("lo")
        .to_string();
    let out = sh(&b, &["--network", "host"], "ls /sys/class/net");
    assert!(
        stdout(&out).lines().any(|l| l == uplink),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = b.run(&["run", "--rm", "--network", "bridge", IMAGE, "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "--network", "container:", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    // --ulimit.
    let out = sh(&b, &["--ulimit", "nofile=64:128"], "ulimit -n; ulimit -Hn");
    assert_eq!(stdout(&out), "64\n128\n", "{}", stderr(&out));
    // --stop-timeout is the default for stop.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--stop-timeout",
        "1",
        IMAGE,
        "sleep",
        "300",
    ]);
    let t = std::time::Instant::now();
    b.ok(&["stop", "slow"]);
    assert!(
        t.elapsed().as_secs() < 5,
        "stop should use --stop-timeout 1, took {:?}",
        t.elapsed()
    );
}

#[test]
fn shm_size_and_namespaced_sysctls() {
    let b = Berth::new();
    let out = b.ok(&[
        "run",
        "--rm",
        "--shm-size",
        "128m",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=0",
        "--sysctl",
        "kernel.shmmax=1048576",
        IMAGE,
        "sh",
        "-c",
        "df -k /dev/shm | tail -1; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmax",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().nth(1), Some("131072"), "{out}");
    assert_eq!(&lines[1..], ["0", "1048576"], "{out}");
    // The host's values are untouched.
    let host = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    assert_ne!(host.trim(), "1048576");
    b.ok(&[
        "create",
        "--name",
        "s",
        "--shm-size",
        "1g",
        "--sysctl",
        "net.core.somaxconn=1024",
        IMAGE,
    ]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.ShmSize}} {{json .HostConfig.Sysctls}}",
            "s"
        ])
        .trim(),
        "1073741824 {\"net.core.somaxconn\":\"1024\"}"
    );
    // What is not namespaced, or the host's network, is refused.
    let o = b.run(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.hostname=x",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("is not in a separate kernel namespace"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.core.somaxconn=1",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("not allowed in host network namespace"),
        "{}",
        stderr(&o)
    );
    // --memory-reservation: the soft limit.
    let out = b.ok(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        IMAGE,
        "cat",
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
    ]);
    assert_eq!(out.trim(), "33554432");
    let o = b.run(&[
        "run",
        "--rm",
        "--memory",
        "16m",
        "--memory-reservation",
        "32m",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    // --domainname: the UTS namespace's domain name.
    let out = b.ok(&[
        "run",
        "--rm",
        "--domainname",
        "example.org",
        IMAGE,
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(out, "example.org\n");
    b.ok(&[
        "create",
        "--name",
        "d",
        "--domainname",
        "example.org",
        IMAGE,
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Domainname}}", "d"]),
        "example.org\n"
    );
    let o = b.run(&["run", "--rm", "--shm-size", "lots", IMAGE, "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
}

#[test]
fn pid_and_ipc_host_share_the_hosts_namespaces() {
    let b = Berth::new();
    let ns = |p: &str| std::fs::read_link(p).unwrap().display().to_string();
    let out = b.ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "--ipc",
        "host",
        IMAGE,
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ns("/proc/self/ns/pid"), "{out}");
    assert_eq!(lines[1], ns("/proc/self/ns/ipc"), "{out}");
    // The shell's pid is a host pid, not 1.
    assert_ne!(lines[2], "1", "{out}");
    // By default both are the container's own.
    let out = b.ok(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], ns("/proc/self/ns/pid"));
    assert_ne!(lines[1], ns("/proc/self/ns/ipc"));
    b.ok(&[
        "create",
        "--name",
        "h",
        "--pid",
        "host",
        "--ipc",
        "shareable",
        IMAGE,
    ]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}",
            "h"
        ])
        .trim(),
        "host shareable"
    );
    // A donor that is not running, or not there at all.
    let o = b.run(&["run", "--rm", "--pid", "container:h", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "--ipc", "container:nosuch", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("No such container: nosuch"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pid_and_ipc_container_join_a_running_donors_namespaces() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        IMAGE,
        "sleep",
        "300",
    ]);
    let donor_pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "donor"]);
    let ns = |kind: &str| {
        std::fs::read_link(format!("/proc/{}/ns/{kind}", donor_pid.trim()))
            .unwrap()
            .display()
            .to_string()
    };
    let out = b.ok(&[
        "run",
        "--rm",
        "--pid",
        "container:donor",
        "--ipc",
        "container:donor",
        IMAGE,
        "sh",
        "-c",
        "cat /proc/1/comm; readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["sleep", ns("pid").as_str(), ns("ipc").as_str()],
        "{out}"
    );
    // A joiner lives in the donor's pid namespace: exec into it sees both,
    // and it is stopped and removed like any other container.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--pid",
        "container:donor",
        IMAGE,
        "sleep",
        "301",
    ]);
    let ps = b.ok(&["exec", "joiner", "ps", "-o", "comm,args"]);
    assert!(ps.contains("sleep 300") && ps.contains("sleep 301"), "{ps}");
    assert!(b
        .ok(&["inspect", "-f", "{{.HostConfig.PidMode}}", "joiner"])
        .starts_with("container:"));
    // A donor whose IPC is private (the default) cannot be joined.
    b.ok(&["run", "-d", "--name", "private", IMAGE, "sleep", "300"]);
    let o = b.run(&["run", "--rm", "--ipc", "container:private", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("non-shareable IPC"), "{}", stderr(&o));
    b.ok(&["rm", "-f", "joiner", "donor", "private"]);
}

/// /dev/shm as dockerd gives it per `--ipc`: the donor's to a joiner
/// (files one writes the other reads), the host's with `host`, none with
/// `none`; and a donor that swapped its /dev/shm for a symlink to `/etc`
/// cannot point a joiner anywhere: the shared tmpfs is the host-side one
/// berth made, never a path looked up in the donor.
#[test]
fn ipc_modes_give_dev_shm_as_dockerd_does() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["exec", "donor", "sh", "-c", "echo from-donor > /dev/shm/d"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        IMAGE,
        "sh",
        "-c",
        "cat /dev/shm/d; echo from-joiner > /dev/shm/j",
    ]);
    assert_eq!(out, "from-donor\n");
    assert_eq!(
        b.ok(&["exec", "donor", "cat", "/dev/shm/j"]),
        "from-joiner\n"
    );
    // The host's /dev/shm with --ipc host.
    let probe = format!("/dev/shm/berth-ipc-host-{}", std::process::id());
    std::fs::write(&probe, "host\n").unwrap();
    let out = b.run(&["run", "--rm", "--ipc", "host", IMAGE, "cat", &probe]);
    std::fs::remove_file(&probe).unwrap();
    assert_eq!(stdout(&out), "host\n", "{}", stderr(&out));
    // None at all with --ipc none (its own IPC namespace still).
    let out = b.ok(&[
        "run",
        "--rm",
        "--ipc",
        "none",
        IMAGE,
        "sh",
        "-c",
        "grep -c ' /dev/shm ' /proc/mounts; readlink /proc/self/ns/ipc",
    ]);
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_eq!(out.lines().next(), Some("0"), "{out}");
    assert_ne!(
        out.lines().nth(1),
        Some(host_ipc.to_str().unwrap()),
        "{out}"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.IpcMode}}", "donor"])
            .trim(),
        "shareable"
    );
    // A hostile donor (privileged: it may unmount) points /dev/shm at /etc:
    // the joiner still gets the shared tmpfs, not the host's /etc nor the
    // donor's.
    assert!(std::path::Path::new("/etc/os-release").exists());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "hostile",
        "--privileged",
        "--ipc",
        "shareable",
        IMAGE,
        "sh",
        "-c",
        "umount /dev/shm && rmdir /dev/shm && ln -s /etc /dev/shm && sleep 300",
    ]);
    let mut swapped = false;
    for _ in 0..100 {
        let o = b.run(&["exec", "hostile", "readlink", "/dev/shm"]);
        if stdout(&o).trim() == "/etc" {
            swapped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(swapped, "the donor did not swap its /dev/shm");
    let out = b.run(&[
        "run",
        "--rm",
        "--ipc",
        "container:hostile",
        IMAGE,
        "sh",
        "-c",
        "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3; ls /dev/shm",
    ]);
    assert_eq!(stdout(&out), "tmpfs\n", "{}", stderr(&out));
    b.ok(&["rm", "-f", "donor", "hostile"]);
    assert_census_clean(&b);
}

/// `--cidfile` as docker's CLI: the id written once the container exists,
/// an existing file refused (125), the file gone again when the create
/// fails.
#[test]
fn cidfile_holds_the_id_and_refuses_an_existing_file() {
    let b = Berth::new();
    let cid = b.path().join("cid");
    let cid_s = cid.to_str().unwrap();
    let id = b.ok(&["run", "-d", "--cidfile", cid_s, IMAGE, "sleep", "300"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let out = b.run(&["run", "--rm", "--cidfile", cid_s, IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert_eq!(
        stderr(&out),
        format!(
            "berth: container ID file found, make sure the other container isn't running or delete {cid_s}.\nSee 'berth run --help'.\n"
        )
    );
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1);
    std::fs::remove_file(&cid).unwrap();
    let out = b.run(&["create", "--cidfile", cid_s, "--pull", "never", "nosuch:1"]);
    assert_ne!(code(&out), 0);
    assert!(!cid.exists(), "the file of a failed create is removed");
    b.ok(&["create", "--cidfile", cid_s, IMAGE]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap().len(), 64);
    b.ok(&["rm", "-f", "-v", &id.trim()[..12]]);
    let all = b.ok(&["ps", "-aq"]);
    b.ok(&[&["rm"][..], &all.split_whitespace().collect::<Vec<_>>()[..]].concat());
    assert_census_clean(&b);
}

/// `ps -s` and `inspect -s`: the writable layer's size and, with the
/// image's, the virtual size, as docker's; left out without -s.
#[test]
fn sizes_with_ps_s_and_inspect_s() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--name",
        "w",
        IMAGE,
        "sh",
        "-c",
        "head -c 20000 /dev/zero > /f",
    ]);
    let size = b.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]);
    let (rw, virt) = size.trim().split_once(" (virtual ").expect(&size);
    assert!(rw.ends_with("kB") && virt.ends_with("MB)"), "{size}");
    let table = b.ok(&["ps", "-a", "-s"]);
    assert!(table.lines().next().unwrap().ends_with("SIZE"), "{table}");
    assert_eq!(b.ok(&["ps", "-a", "--format", "{{.Names}}"]), "w\n");
    let rw: u64 = b
        .ok(&["inspect", "-s", "-f", "{{.SizeRw}}", "w"])
        .trim()
        .parse()
        .unwrap();
    let root: u64 = b
        .ok(&["container", "inspect", "-s", "-f", "{{.SizeRootFs}}", "w"])
        .trim()
        .parse()
        .unwrap();
    assert!(rw >= 20000 && root > rw, "{rw} {root}");
    let plain: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "w"])).unwrap();
    assert!(plain[0].get("SizeRw").is_none());
    b.ok(&["rm", "w"]);
    assert_census_clean(&b);
}
