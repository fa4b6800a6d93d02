//! `system check` (root): a clean store checks clean, beside another
//! root's containers; the damage crashes leave is each named, `--repair`
//! fixes what is berth's alone, and what needs the user (a damaged blob
//! of an image) is left with what to do.
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// A tmpfs mounted for the test, lazily unmounted on drop if a repair
/// did not (so a failing test leaks no mount).
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "berth-check-test"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs failed");
        Mounted(at.to_path_buf())
    }

    fn is_mounted(&self) -> bool {
        let want = format!(" {} ", self.0.display());
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.contains(&want))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.is_mounted() {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

fn check(b: &Berth, args: &[&str]) -> (i32, String) {
    let mut all = vec!["system", "check"];
    all.extend(args);
    let out = b.run(&all);
    assert!(
        stderr(&out).is_empty(),
        "system check wrote to stderr: {}",
        stderr(&out)
    );
    (code(&out), stdout(&out))
}

/// The parent of `pid` (the monitor of a container's init).
fn parent(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Is `pid` a live process (not gone, not a zombie)?
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat[stat.rfind(')').unwrap() + 1..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} did not go");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|c| c.path().join("berth").join(id))
        .filter(|d| d.is_dir())
        .collect()
}

#[test]
fn a_clean_store_checks_clean_beside_another_roots_containers() {
    let b = Berth::new();
    let other = Berth::new();
    b.ok(&["network", "create", "n"]);
    b.ok(&["volume", "create", "v"]);
    b.ok(&[
        "run", "-d", "--name", "up", "-v", "v:/data", IMAGE, "sleep", "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "on",
        "--network",
        "n",
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["create", "--name", "made", IMAGE, "true"]);
    b.ok(&["run", "--rm", IMAGE, "true"]);
    // Another root on the same host, its monitor killed: not this root's.
    let theirs = other.ok(&["run", "-d", IMAGE, "sleep", "300"]);
    let init: i32 = other
        .ok(&["inspect", "-f", "{{.State.Pid}}", theirs.trim()])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent(init);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(monitor);

    let (rc, out) = check(&b, &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.starts_with("No problems found: 1 image, 1 layer, 2 blobs (2 verified), 3 containers, 1 volume, 2 networks, 2 leases; on the host 3 processes, 2 cgroups, 0 mounts, 4 interfaces, "),
        "{out}"
    );
    let (rc, out) = check(&b, &["--quick"]);
    assert_eq!(rc, 0, "{out}");
    assert!(!out.contains("verified"), "{out}");
    // The other root sees its own damage.
    let (rc, out) = check(&other, &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("runs without its monitor"), "{out}");
    // The monitor was killed on purpose: the test ends the container
    // itself, or the teardown's census would (rightly) report it.
    other.ok(&["rm", "-f", theirs.trim()]);
}

#[test]
fn crash_damage_is_named_repaired_and_what_needs_the_user_is_left() {
    let b = Berth::new();
    // A second image, its layer blob its own (bb:test's is shared by none).
    let out = b.run_stdin(
        &["import", "-", "other:1"],
        &busybox_rootfs_tar_with(&[("etc/other", 0o644, b"other\n")]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    b.ok(&["network", "create", "net"]);

    // 1. A running container whose monitor is killed: its init runs on in
    //    its cgroup, with its veth, lease and published port.
    let orphan = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "orphan",
            "--network",
            "net",
            "-p",
            "127.0.0.1::80",
            IMAGE,
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    let init: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "orphan"])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent(init);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(monitor);
    assert!(alive(init));

    // 2. A work dir of a command that died before it locked it.
    let stray = b.root.join("tmp/stray-work");
    std::fs::create_dir_all(stray.join("sub")).unwrap();
    std::fs::write(stray.join("sub/f"), "x").unwrap();
    // 3. A layer dir without a record.
    let layer = b.root.join("layers").join("ab".repeat(32));
    std::fs::create_dir_all(layer.join("bin")).unwrap();
    // 4. A flipped byte in other:1's layer blob (an uncompressed import:
    //    the blob's digest is the diff-id).
    let diff = b
        .ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .RootFS.Layers 0}}",
            "other:1",
        ])
        .trim()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = b.root.join("blobs/sha256").join(&diff);
    let mut data = std::fs::read(&blob).unwrap();
    data[1000] ^= 0x20;
    std::fs::write(&blob, data).unwrap();
    // 5. A container whose dir is gone.
    let gone = b
        .ok(&["create", "--name", "gone", IMAGE, "true"])
        .trim()
        .to_string();
    std::fs::remove_dir_all(b.root.join("containers").join(&gone)).unwrap();
    // 6. A mount under the run root.
    let mount = Mounted::tmpfs(&b.runroot.join("stray-mount"));
    // 7. A lease of a container that was removed.
    let net = b
        .ok(&["network", "inspect", "-f", "{{.Id}}", "net"])
        .trim()
        .to_string();
    let subnet = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Subnet}}",
        "net",
    ]);
    let prefix = subnet.trim().rsplit_once('.').unwrap().0.to_string();
    let lease_ip = format!("{prefix}.250");
    let removed = "cd".repeat(32);
    {
        let db = rusqlite::Connection::open(b.root.join("db/berth.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute(
            "INSERT INTO leases (network, ip, container) VALUES (?1, ?2, ?3)",
            [&net, &lease_ip, &removed],
        )
        .unwrap();
    }

    let (rc, out) = check(&b, &[]);
    assert_eq!(rc, 1, "{out}");
    let short = |id: &str| id[..12].to_string();
    for needle in [
        format!(
            "container orphan ({}) runs without its monitor (pid {monitor} is gone; its init is pid {init})",
            short(&orphan)
        ),
        format!("{} is the work of no running command", stray.display()),
        format!("layer dir {} belongs to no image", layer.display()),
        format!(
            "blob sha256:{diff} (layer of image other:1) does not match its digest: its content is damaged: remove the image (berth rmi other:1) and pull, load or import it again"
        ),
        format!(
            "container gone ({}): its dir {} is missing",
            short(&gone),
            b.root.join("containers").join(&gone).display()
        ),
        format!(
            "{} (tmpfs) is mounted under berth's directories but nothing of berth's uses it",
            mount.0.display()
        ),
        format!(
            "address {lease_ip} on network {} is leased to container {}, which does not exist",
            short(&net),
            short(&removed)
        ),
        "7 problems found; \"berth system check --repair\" fixes 6 of them.".to_string(),
    ] {
        assert!(out.contains(&needle), "{needle:?} missing from:\n{out}");
    }

    let (rc, out) = check(&b, &["--repair"]);
    assert_eq!(rc, 1, "the damaged blob is the user's to fix:\n{out}");
    for needle in [
        "processes: 1 found, 1 repaired",
        "repaired: stopped it; start it again with berth start orphan",
        "tmp: 1 found, 1 repaired",
        "layers: 1 found, 1 repaired",
        "containers: 1 found, 1 repaired",
        "mounts: 1 found, 1 repaired",
        "leases: 1 found, 1 repaired",
        "blobs: 1 found, 0 repaired",
        "1 problem left: see above for what to do.",
    ] {
        assert!(out.contains(needle), "{needle:?} missing from:\n{out}");
    }
    // What the repair did, on the host and in the store.
    wait_gone(init);
    assert_eq!(cgroup_dirs(&orphan), Vec::<PathBuf>::new());
    assert!(!mount.is_mounted());
    assert!(!stray.exists());
    assert!(!layer.exists());
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "orphan"
        ]),
        "exited 137\n"
    );
    assert!(b.run(&["inspect", "gone"]).status.code() == Some(1));

    // Only the blob is left, until the image goes.
    let (rc, out) = check(&b, &[]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.starts_with("blobs: 1 problem\n"), "{out}");
    assert!(out.contains("1 problem found; \"berth system check --repair\" fixes 0 of them."));
    b.ok(&["rmi", "other:1"]);
    let (rc, out) = check(&b, &[]);
    assert_eq!(rc, 0, "{out}");
    // The orphan starts again, cleanly.
    b.ok(&["start", "orphan"]);
    assert_census_clean(&b);
    b.ok(&["rm", "-f", "orphan"]);
    b.ok(&["network", "rm", "net"]);
    assert_eq!(leftovers(&b, &[orphan]), Vec::<String>::new());
}

#[test]
fn stop_ends_a_container_whose_monitor_was_killed() {
    let b = Berth::new();
    b.ok(&["run", "-d", "--name", "c", IMAGE, "sleep", "1000"]);
    let id = id_of(&b, "c");
    let init: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "c"])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent(init);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(monitor);
    // `sleep` as pid 1 ignores SIGTERM: the stop timeout's SIGKILL ends it.
    b.ok(&["stop", "-t", "1", "c"]);
    wait_gone(init);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "c"
        ]),
        "exited 137\n"
    );
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
    assert_census_clean(&b);
}

#[test]
fn a_crashed_container_and_a_lost_network_record_leave_nothing_after_repair() {
    let b = Berth::new();
    b.ok(&["network", "create", "net"]);
    let net = b
        .ok(&["network", "inspect", "-f", "{{.Id}}", "net"])
        .trim()
        .to_string();
    let bridge = format!("br-{}", &net[..12]);
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "net",
            "-p",
            "127.0.0.1::80",
            IMAGE,
            "sleep",
            "1000",
        ])
        .trim()
        .to_string();
    // The machine "crashes" under the container: monitor and init die
    // unrecorded, then the network's record is lost.
    let init: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent(init);
    for pid in [monitor, init] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_gone(pid);
    }
    {
        let db = rusqlite::Connection::open(b.root.join("db/berth.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db.execute("DELETE FROM networks WHERE id = ?1", [&net])
            .unwrap();
    }

    let (rc, out) = check(&b, &["--quick"]);
    assert_eq!(rc, 1, "{out}");
    let short = &id[..12];
    for needle in [
        format!("container web ({short}) is not running but its cgroup is left"),
        format!("bridge {bridge} belongs to a network of this root that no longer exists"),
        format!(
            "of network {} (bridge {bridge}), which no longer exists",
            &net[..12]
        ),
        format!("of container web ({short}), which is not running: ip daddr 127.0.0.1 tcp dport"),
        format!("{}.sock belongs to something that is gone", id),
        format!("is leased on network {}, which does not exist", &net[..12]),
    ] {
        assert!(out.contains(&needle), "{needle:?} missing from:\n{out}");
    }
    let (rc, out) = check(&b, &["--quick", "--repair"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.ends_with("Every problem was repaired.\n"), "{out}");
    let (rc, out) = check(&b, &["--quick"]);
    assert_eq!(rc, 0, "{out}");
    let nft = std::process::Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
        .unwrap();
    assert!(!stdout(&nft).contains(&net[..12]), "{}", stdout(&nft));
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    assert!(!stdout(&links).contains(&bridge));
    b.ok(&["rm", "web"]);
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}

/// Found by the full suite under load: the first commands on a fresh root,
/// run side by side, raced through the database's switch to WAL and
/// SQLite failed one of them at once with "database is locked" (a third
/// of the time with three `network create` at once while other tests ran;
/// on a quiet machine the race is rarely hit, so this test fails only
/// sometimes without the fix). The first open now makes the database
/// ready under a lock.
#[test]
fn first_commands_on_a_fresh_root_run_side_by_side() {
    for _ in 0..10 {
        let b = Berth::empty();
        let outs: Vec<std::process::Output> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..6)
                .map(|i| {
                    let b = &b;
                    s.spawn(move || match i % 3 {
                        0 => b.run(&["network", "ls"]),
                        1 => b.run(&["network", "create", &format!("n{i}")]),
                        _ => b.run(&["volume", "create", &format!("v{i}")]),
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in &outs {
            assert!(o.status.success(), "{}", stderr(o));
        }
        assert_eq!(b.ok(&["volume", "ls", "-q"]).lines().count(), 2);
        // bridge, host, none and the two made.
        assert_eq!(b.ok(&["network", "ls", "-q"]).lines().count(), 5);
        assert_census_clean(&b);
    }
}

/// Every root test's teardown (`Berth`'s drop) runs the census and then
/// checks the host after the reset: a test that leaves something behind
/// fails, with the census's words for it, and its root is still reset.
#[test]
fn the_teardown_fails_a_test_that_leaves_a_container_without_its_monitor() {
    let b = Berth::new();
    let id = b
        .ok(&["run", "-d", IMAGE, "sleep", "300"])
        .trim()
        .to_string();
    let init: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent(init);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(monitor);
    let root = b.root.clone();
    let teardown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(b)));
    let report = teardown.expect_err("the teardown let a leak pass");
    let report = report.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        report.contains("the census (berth system check --quick) found leftovers"),
        "{report}"
    );
    assert!(report.contains("runs without its monitor"), "{report}");
    // The reset ran all the same: the container is gone from the host.
    wait_gone(init);
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new());
    assert!(!root.exists());
}

/// Tests run side by side in one binary: one root's teardown does not
/// count another root's containers, networks, bridges or rules as its
/// leftovers, and leaves them alone.
#[test]
fn a_teardown_beside_another_roots_running_containers_is_its_own() {
    let mine = Berth::new();
    let theirs = Berth::new();
    for b in [&mine, &theirs] {
        b.ok(&["network", "create", "n"]);
        b.ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "n",
            "-p",
            "127.0.0.1::80",
            IMAGE,
            "sleep",
            "300",
        ]);
        b.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "300"]);
    }
    let their_ids = ids_with_prefix(&theirs, "");
    assert_eq!(their_ids.len(), 2);
    drop(mine);
    // Theirs are untouched: running, with their cgroups, bridge and rules.
    assert_eq!(
        theirs.ok(&["ps", "--format", "{{.Names}} {{.State}}"]),
        "plain running\nweb running\n"
    );
    for id in &their_ids {
        assert_ne!(cgroup_dirs(id), Vec::<PathBuf>::new());
    }
    let made = Footprint::of(&theirs);
    assert!(
        made.leftovers().len() >= 2,
        "their bridges and rules are on the host"
    );
    assert_census_clean(&theirs);
}
