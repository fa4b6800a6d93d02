//! kill -9 at every step (issue 20): a berth process — the CLI inside
//! create, start, rm, commit, volume import, build and pull, or a
//! container's monitor while it starts, while a healthcheck probe runs and
//! during a restart back-off — is stopped at a named fault point
//! (`BERTH_FAULT_POINT`, see `sys::faults`) and killed there with SIGKILL.
//! Afterwards the listings work, the half-done object is either whole,
//! absent, or removable, removing it works, the same command succeeds
//! again, nothing of the test's containers is left on the host (processes,
//! cgroups, veths, rules, mounts) and `berth system check` finds nothing.
mod common;
#[path = "support/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A berth process stopped at a fault point and killed there.
struct Crash {
    point: String,
    /// The killed process (the CLI itself, or a process it forked).
    pid: i32,
    /// What the CLI printed (it may outlive the killed process).
    output: String,
}

/// Run `berth ARGS` (stdin from `stdin`, else /dev/null) with the fault
/// point `point` armed, wait until a process stops there, kill it with
/// SIGKILL, and wait for the CLI to end. Panics if the CLI ends without
/// reaching the point.
fn crash_at(b: &Berth, point: &str, args: &[&str], stdin: Option<&Path>) -> Crash {
    let tag = point.replace(['.', '@'], "-");
    let file = b.path().join(format!("fault-{tag}"));
    let _ = std::fs::remove_file(&file);
    let out_path = b.path().join(format!("fault-{tag}.out"));
    let out = std::fs::File::create(&out_path).unwrap();
    let mut cmd = b.cmd();
    cmd.args(args)
        .env("BERTH_FAULT_POINT", point)
        .env("BERTH_FAULT_FILE", &file)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    cmd.stdin(match stdin {
        Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
        None => Stdio::null(),
    });
    let mut child = cmd.spawn().unwrap();
    let pid = wait_for_point(&file, &mut child, &out_path, point);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = child.wait();
    Crash {
        point: point.to_string(),
        pid,
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
    }
}

/// The pid announced in `file`, once the process has stopped.
fn wait_for_point(file: &Path, child: &mut Child, out: &Path, point: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            if let Some(pid) = text.lines().next().and_then(|l| l.split(' ').next()) {
                let pid: i32 = pid.parse().unwrap();
                // Announced just before it stops itself: wait for the stop.
                while !stopped(pid) {
                    assert!(
                        Instant::now() < deadline,
                        "{point}: pid {pid} never stopped"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                return pid;
            }
        }
        // A monitor's point may come after the CLI has returned.
        if let Some(st) = child.try_wait().ok().flatten() {
            assert!(
                point.starts_with("monitor."),
                "the command ended ({st}) without reaching fault point {point}:\n{}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "fault point {point} not reached in two minutes:\n{}",
            std::fs::read_to_string(out).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('T'))
        })
        .unwrap_or(true)
}

/// Every listing answers after a crash.
fn listings_work(b: &Berth, c: &Crash) {
    for args in [
        &["ps", "-a"][..],
        &["images", "-a"],
        &["volume", "ls"],
        &["network", "ls"],
    ] {
        let o = b.run(args);
        assert!(
            o.status.success(),
            "after a kill at {}: berth {args:?} failed: {}",
            c.point,
            stderr(&o)
        );
    }
}

/// Ids of every container of the store.
fn all_ids(b: &Berth) -> Vec<String> {
    b.ok(&["ps", "-a", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn exists(b: &Berth, name: &str) -> bool {
    b.run(&["inspect", "--type", "container", name])
        .status
        .success()
}

/// `berth system check` (blobs hashed) finds nothing wrong.
fn store_consistent(b: &Berth, c: &Crash, when: &str) {
    let out = b.run(&["system", "check"]);
    assert!(
        out.status.success(),
        "{when} a kill at {}: berth system check:\n{}{}",
        c.point,
        stdout(&out),
        stderr(&out)
    );
}

/// Nothing of the containers `ids` on the host, and the census clean.
fn clean(b: &Berth, ids: &[String], c: &Crash) {
    let left = leftovers(b, ids);
    assert!(
        left.is_empty(),
        "after a kill at {} (pid {}) and rm -f: {left:#?}\n{}",
        c.point,
        c.pid,
        c.output
    );
    let out = b.run(&["system", "check"]);
    assert!(
        out.status.success(),
        "after a kill at {}: berth system check:\n{}{}",
        c.point,
        stdout(&out),
        stderr(&out)
    );
}

const RUN: &[&str] = &[
    "run",
    "-d",
    "--name",
    "c",
    "-p",
    "127.0.0.1::80",
    "-v",
    "vol:/data",
    "-v",
    "/anon",
    IMAGE,
    "sleep",
    "1000",
];

/// The same `run` again works, its container answers `exec`, and it goes.
fn run_again(b: &Berth, c: &Crash) -> String {
    let o = b.run(RUN);
    assert!(
        o.status.success(),
        "after a kill at {}: run again failed: {}",
        c.point,
        stderr(&o)
    );
    let id = stdout(&o).trim().to_string();
    assert_eq!(b.ok(&["exec", "c", "echo", "hi"]), "hi\n");
    b.ok(&["rm", "-f", "-v", "c"]);
    b.ok(&["volume", "rm", "vol"]);
    id
}

/// `rm -f -v` of the container and `volume rm` of its named volume, if
/// they are there.
fn remove_c(b: &Berth, c: &Crash) {
    if exists(b, "c") {
        let o = b.run(&["rm", "-f", "-v", "c"]);
        assert!(
            o.status.success(),
            "after a kill at {}: rm -f failed: {}",
            c.point,
            stderr(&o)
        );
    }
    assert!(!exists(b, "c"));
    remove_volumes(b, c);
}

/// `volume rm` of every volume left (named and anonymous: a killed `rm
/// -v` may leave the anonymous one, which is then an ordinary volume).
fn remove_volumes(b: &Berth, c: &Crash) {
    for v in b.ok(&["volume", "ls", "-q"]).lines() {
        let o = b.run(&["volume", "rm", v]);
        assert!(
            o.status.success(),
            "after a kill at {}: volume rm {v} failed: {}",
            c.point,
            stderr(&o)
        );
    }
}

#[test]
#[ignore = "needs root"]
fn run_killed_inside_create_and_start() {
    let b = Berth::new();
    let mut ids = Vec::new();
    for point in [
        "create.record-written",
        "create.volumes-filled",
        "create.files-written",
        "start.monitor-forked",
    ] {
        let c = crash_at(&b, point, RUN, None);
        listings_work(&b, &c);
        ids.extend(all_ids(&b));
        if exists(&b, "c") && point.starts_with("create.") {
            // A container whose create was cut short starts, or says what
            // happened and what to do.
            let o = b.run(&["start", "c"]);
            assert!(
                o.status.success()
                    || stderr(&o).contains(
                        "was not completely created (its create was interrupted): remove it with \"berth rm c\""
                    ),
                "{point}: start: {}",
                stderr(&o)
            );
        }
        remove_c(&b, &c);
        ids.push(run_again(&b, &c));
        clean(&b, &ids, &c);
    }
}

#[test]
#[ignore = "needs root"]
fn monitor_killed_while_starting() {
    let b = Berth::new();
    let mut ids = Vec::new();
    for point in [
        "monitor.started",
        "monitor.cgroup-made",
        "monitor.before-init",
        "monitor.running-recorded",
    ] {
        let c = crash_at(&b, point, RUN, None);
        listings_work(&b, &c);
        ids.extend(all_ids(&b));
        assert!(exists(&b, "c"), "{point}: the created container is gone");
        remove_c(&b, &c);
        ids.push(run_again(&b, &c));
        clean(&b, &ids, &c);
    }
}

#[test]
#[ignore = "needs root"]
fn monitor_killed_while_a_probe_runs() {
    let b = Berth::new();
    let c = crash_at(
        &b,
        "monitor.probe-running",
        &[
            "run",
            "-d",
            "--name",
            "c",
            "-p",
            "127.0.0.1::80",
            "--health-cmd",
            "sleep 2",
            "--health-interval",
            "1s",
            IMAGE,
            "sleep",
            "1000",
        ],
        None,
    );
    listings_work(&b, &c);
    let ids = all_ids(&b);
    // Its init runs on without a monitor: stop ends it and records 137.
    b.ok(&["stop", "-t", "1", "c"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "c"]).trim(),
        "exited"
    );
    b.ok(&["start", "c"]);
    assert_eq!(b.ok(&["exec", "c", "echo", "hi"]), "hi\n");
    b.ok(&["rm", "-f", "c"]);
    clean(&b, &ids, &c);
}

#[test]
#[ignore = "needs root"]
fn monitor_killed_during_restart_backoff() {
    let b = Berth::new();
    let c = crash_at(
        &b,
        "monitor.restart-backoff",
        &[
            "run",
            "-d",
            "--name",
            "c",
            "--restart",
            "always",
            "-p",
            "127.0.0.1::80",
            IMAGE,
            "sh",
            "-c",
            "exit 3",
        ],
        None,
    );
    listings_work(&b, &c);
    let ids = all_ids(&b);
    // Nothing waits out the back-off any more: stop says so, start works.
    b.ok(&["stop", "c"]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "c"
        ])
        .trim(),
        "exited 3"
    );
    let o = b.run(&["start", "c"]);
    assert!(o.status.success(), "start after the kill: {}", stderr(&o));
    b.ok(&["rm", "-f", "c"]);
    clean(&b, &ids, &c);
}

#[test]
#[ignore = "needs root"]
fn rm_killed_at_each_step() {
    let b = Berth::new();
    let mut ids = Vec::new();
    for point in [
        "rm.stopped",
        "rm.detached",
        "rm.row-deleted",
        "rm.record-removed",
    ] {
        let id = stdout(&b.run(RUN)).trim().to_string();
        assert_eq!(id.len(), 64, "run before the rm");
        ids.push(id);
        let c = crash_at(&b, point, &["rm", "-f", "-v", "c"], None);
        listings_work(&b, &c);
        remove_c(&b, &c);
        ids.push(run_again(&b, &c));
        clean(&b, &ids, &c);
    }
}

#[test]
#[ignore = "needs root"]
fn commit_killed_before_the_image_is_registered() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        IMAGE,
        "sh",
        "-c",
        "echo x > /f; sleep 1000",
    ]);
    for point in ["commit.layer-written", "commit.before-register"] {
        let c = crash_at(&b, point, &["commit", "c", "snap:1"], None);
        listings_work(&b, &c);
        store_consistent(&b, &c, "right after");
        assert!(
            !b.run(&["image", "inspect", "snap:1"]).status.success(),
            "{point}: a killed commit registered its image"
        );
        b.ok(&["commit", "c", "snap:1"]);
        assert_eq!(b.ok(&["run", "--rm", "snap:1", "cat", "/f"]), "x\n");
        b.ok(&["rmi", "snap:1"]);
        store_consistent(&b, &c, "after");
    }
    let ids = all_ids(&b);
    b.ok(&["rm", "-f", "c"]);
    clean(
        &b,
        &ids,
        &Crash {
            point: "commit.*".into(),
            pid: 0,
            output: String::new(),
        },
    );
}

/// A tar of a few files of 64 KiB: read in several pieces.
fn volume_tar(dir: &Path) -> PathBuf {
    let mut t = tar::Builder::new(Vec::new());
    for i in 0..8 {
        let data = vec![b'a' + i as u8; 64 * 1024];
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        t.append_data(&mut h, format!("f{i}"), &data[..]).unwrap();
    }
    let p = dir.join("vol.tar");
    std::fs::write(&p, t.into_inner().unwrap()).unwrap();
    p
}

#[test]
#[ignore = "needs root"]
fn volume_import_killed() {
    let b = Berth::new();
    let tar = volume_tar(b.path());
    for point in ["volume-import.created", "volume-import.unpacking"] {
        let c = crash_at(&b, point, &["volume", "import", "v", "-"], Some(&tar));
        listings_work(&b, &c);
        // The volume is there (made by the import), maybe half filled:
        // an ordinary volume that removes.
        remove_volumes(&b, &c);
        let o = b.run_stdin(
            &["volume", "import", "v", "-"],
            &std::fs::read(&tar).unwrap(),
        );
        assert!(o.status.success(), "{point}: import again: {}", stderr(&o));
        assert_eq!(
            b.ok(&[
                "run",
                "--rm",
                "-v",
                "v:/v",
                IMAGE,
                "sh",
                "-c",
                "cat /v/f7 | wc -c"
            ])
            .trim(),
            "65536"
        );
        b.ok(&["volume", "rm", "v"]);
        clean(&b, &all_ids(&b), &c);
    }
}

#[test]
#[ignore = "needs root"]
fn build_killed_between_and_inside_steps() {
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo one > /one\nRUN echo two > /two && sleep 1\nCMD [\"cat\", \"/one\", \"/two\"]\n"),
    )
    .unwrap();
    let ctx_s = ctx.to_str().unwrap().to_string();
    let mut ids = Vec::new();
    for point in [
        "build.step-done",
        "build.run-started",
        "build.run-layer-written",
        "build.run-started@2",
    ] {
        let c = crash_at(
            &b,
            point,
            &["build", "--no-cache", "-t", "app:1", &ctx_s],
            None,
        );
        listings_work(&b, &c);
        // A RUN container the killed build left is listed until the next
        // build, which removes it (its owner is gone).
        ids.extend(all_ids(&b));
        let o = b.run(&["build", "-t", "app:1", &ctx_s]);
        assert!(o.status.success(), "{point}: build again: {}", stderr(&o));
        assert_eq!(
            all_ids(&b),
            Vec::<String>::new(),
            "{point}: left by the killed build"
        );
        assert_eq!(b.ok(&["run", "--rm", "app:1"]), "one\ntwo\n");
        b.ok(&["rmi", "app:1"]);
        b.ok(&["builder", "prune", "-f"]);
        clean(&b, &ids, &c);
    }
}

#[test]
#[ignore = "needs root"]
fn pull_killed_before_the_image_is_registered() {
    let reg = registry::Registry::start("u", "p");
    let pusher = Berth::new();
    let login = |b: &Berth| {
        let o = b.run_stdin(&["login", "-u", "u", "--password-stdin", &reg.addr], b"p");
        assert!(o.status.success(), "login: {}", stderr(&o));
    };
    login(&pusher);
    let image = format!("{}/t/app:1", reg.addr);
    // Two layers: the busybox one and a commit's.
    pusher.ok(&["run", "--name", "c", IMAGE, "sh", "-c", "echo x > /f"]);
    pusher.ok(&["commit", "c", &image]);
    pusher.ok(&["rm", "c"]);
    pusher.ok(&["push", &image]);

    let b = Berth::empty();
    login(&b);
    // Without a kill: pull and rmi leave the store as it was.
    b.ok(&["pull", &image]);
    b.ok(&["rmi", &image]);
    store_consistent(
        &b,
        &Crash {
            point: "none".into(),
            pid: 0,
            output: String::new(),
        },
        "without",
    );
    for point in [
        "pull.layer-fetched",
        "pull.before-register",
        "pull.blobs-stored",
    ] {
        let c = crash_at(&b, point, &["pull", &image], None);
        listings_work(&b, &c);
        store_consistent(&b, &c, "right after");
        assert!(
            !b.run(&["image", "inspect", &image]).status.success(),
            "{point}: a killed pull registered its image"
        );
        let o = b.run(&["pull", &image]);
        assert!(o.status.success(), "{point}: pull again: {}", stderr(&o));
        assert_eq!(b.ok(&["run", "--rm", &image, "cat", "/f"]), "x\n");
        b.ok(&["rmi", &image]);
        clean(&b, &all_ids(&b), &c);
    }
}
