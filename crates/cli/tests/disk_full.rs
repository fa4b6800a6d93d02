//! A full disk (issue 20): the state root is a small tmpfs, filled up by a
//! filler file, and each operation that writes to it — pull, build (a RUN
//! writing a large file, a COPY of one), commit, volume import, run, a
//! container flooding its log — runs out of space. It must fail with a
//! message that says the disk is full and what to do, Docker's exit code,
//! nothing half-registered (the listings and the state root's tmp dir as
//! before) and `system check` clean; once the filler is gone the same
//! operation works.
mod common;
#[path = "support/registry.rs"]
mod registry;

use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

/// The reserve the tests' stores keep free (`[storage] min_free_space`).
const RESERVE: &str = "2m";
/// What the filler leaves available: more than the reserve, less than
/// what each operation writes.
const LEAVE: u64 = 8 << 20;
/// What each operation writes: incompressible bytes, so every copy of
/// them (the upper dir, the layer blob, the unpacked layer) costs its size.
const BIG: u64 = 24 << 20;

/// A berth whose state root is on a 192 MiB tmpfs with a small reserve.
fn small() -> (SmallFs, Berth) {
    let fs = SmallFs::tmpfs("192m");
    let b = Berth::new_at(&fs.path().join("root"));
    std::fs::write(
        b.path().join("config/berth.toml"),
        format!("[network]\nip_forward = false\n[storage]\nmin_free_space = \"{RESERVE}\"\n"),
    )
    .unwrap();
    (fs, b)
}

/// What must be the same before and after a failed operation.
#[derive(Debug, PartialEq)]
struct Listing {
    images: String,
    containers: String,
    volumes: String,
    tmp: Vec<String>,
}

fn listing(b: &Berth) -> Listing {
    let mut tmp: Vec<String> = std::fs::read_dir(b.root.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    tmp.sort();
    Listing {
        images: b.ok(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        ]),
        containers: b.ok(&[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Names}} {{.Status}}",
        ]),
        volumes: b.ok(&["volume", "ls", "-q"]),
        tmp,
    }
}

/// The operation failed as a full disk should fail it: exit `code`, a
/// message saying the disk is full and to free space, no panic, no bare
/// `os error 28`.
fn assert_disk_full(what: &str, o: &Output, code: i32) {
    let err = stderr(o);
    let lower = err.to_lowercase();
    assert_eq!(
        common::code(o),
        code,
        "{what}: exit code\nstdout: {}\nstderr: {err}",
        stdout(o)
    );
    assert!(
        (lower.contains("no space left") || lower.contains("filesystem has only"))
            && lower.contains("free"),
        "{what}: the message must say the disk is full and to free space:\n{err}"
    );
    assert!(!lower.contains("panicked"), "{what}: panicked:\n{err}");
    if lower.contains("os error 28") {
        assert!(
            lower.contains("free"),
            "{what}: a bare os error 28 says nothing of what to do:\n{err}"
        );
    }
}

/// Run `args` on a full disk: it fails as [`assert_disk_full`] says,
/// leaves the listings as they were and `system check` clean.
fn fails_full(b: &Berth, what: &str, args: &[&str], stdin: Option<&[u8]>, code: i32) {
    let before = listing(b);
    let o = match stdin {
        Some(input) => b.run_stdin(args, input),
        None => b.run(args),
    };
    assert_disk_full(what, &o, code);
    assert_eq!(listing(b), before, "{what}: the failure left something");
    assert_census_clean(b);
}

#[test]
#[ignore = "needs root"]
fn pull_on_a_full_disk_fails_cleanly_and_works_once_freed() {
    let reg = registry::Registry::start("u", "p");
    let pusher = Berth::new();
    let image = format!("{}/t/big:1", reg.addr);
    let login = |b: &Berth| {
        let o = b.run_stdin(&["login", "-u", "u", "--password-stdin", &reg.addr], b"p");
        assert!(o.status.success(), "login: {}", stderr(&o));
    };
    login(&pusher);
    pusher.ok(&[
        "run",
        "--name",
        "c",
        IMAGE,
        "sh",
        "-c",
        &format!("head -c {BIG} /dev/urandom > /big"),
    ]);
    pusher.ok(&["commit", "c", &image]);
    pusher.ok(&["push", &image]);

    let (fs, b) = small();
    login(&b);
    fs.fill(LEAVE);
    fails_full(&b, "pull", &["pull", &image], None, 1);
    fs.free();
    b.ok(&["pull", &image]);
    assert_eq!(
        b.ok(&["run", "--rm", &image, "sh", "-c", "wc -c < /big"])
            .trim(),
        BIG.to_string()
    );
    assert_census_clean(&b);
}

#[test]
#[ignore = "needs root"]
fn build_on_a_full_disk_fails_cleanly_and_works_once_freed() {
    let (fs, b) = small();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // A RUN that writes a large file, and a COPY of one.
    std::fs::write(
        ctx.join("Dockerfile.run"),
        format!("FROM {IMAGE}\nRUN head -c {BIG} /dev/urandom > /big\n"),
    )
    .unwrap();
    std::fs::write(
        ctx.join("Dockerfile.copy"),
        format!("FROM {IMAGE}\nCOPY big /big\n"),
    )
    .unwrap();
    let mut big = vec![0u8; BIG as usize];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(ctx.join("big"), &big).unwrap();
    let ctx_s = ctx.to_str().unwrap();
    // The RUN's file fits the disk, its layer does not; the COPY's file
    // does not fit.
    for (kind, leave) in [("run", LEAVE + BIG), ("copy", LEAVE)] {
        let file = ctx.join(format!("Dockerfile.{kind}"));
        let file = file.to_str().unwrap();
        let tag = format!("big-{kind}:1");
        fs.fill(leave);
        fails_full(
            &b,
            &format!("build ({kind})"),
            &["build", "--no-cache", "-f", file, "-t", &tag, ctx_s],
            None,
            1,
        );
        fs.free();
        b.ok(&["build", "-f", file, "-t", &tag, ctx_s]);
        assert_eq!(
            b.ok(&["run", "--rm", &tag, "sh", "-c", "wc -c < /big"])
                .trim(),
            BIG.to_string()
        );
        b.ok(&["rmi", &tag]);
        b.ok(&["builder", "prune", "-f"]);
    }
    assert_census_clean(&b);
}

#[test]
#[ignore = "needs root"]
fn commit_on_a_full_disk_fails_cleanly_and_works_once_freed() {
    let (fs, b) = small();
    // The container's file fits; the layer made of it does not.
    fs.fill(LEAVE + BIG);
    b.ok(&[
        "run",
        "--name",
        "c",
        IMAGE,
        "sh",
        "-c",
        &format!("head -c {BIG} /dev/urandom > /big"),
    ]);
    fails_full(&b, "commit", &["commit", "c", "snap:1"], None, 1);
    fs.free();
    b.ok(&["commit", "c", "snap:1"]);
    assert_eq!(
        b.ok(&["run", "--rm", "snap:1", "sh", "-c", "wc -c < /big"])
            .trim(),
        BIG.to_string()
    );
    b.ok(&["rm", "c"]);
    assert_census_clean(&b);
}

#[test]
#[ignore = "needs root"]
fn volume_import_on_a_full_disk_fails_cleanly_and_works_once_freed() {
    let (fs, b) = small();
    let mut t = tar::Builder::new(Vec::new());
    let data: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    t.append_data(&mut h, "big", &data[..]).unwrap();
    let tar = t.into_inner().unwrap();
    fs.fill(LEAVE);
    // Into a new volume (made by the import) and into an existing one.
    fails_full(
        &b,
        "volume import (new)",
        &["volume", "import", "v", "-"],
        Some(&tar),
        1,
    );
    b.ok(&["volume", "create", "w"]);
    fails_full(
        &b,
        "volume import (existing)",
        &["volume", "import", "w", "-"],
        Some(&tar),
        1,
    );
    fs.free();
    for v in ["v", "w"] {
        let o = b.run_stdin(&["volume", "import", v, "-"], &tar);
        assert!(o.status.success(), "import into {v} again: {}", stderr(&o));
        assert_eq!(
            b.ok(&[
                "run",
                "--rm",
                "-v",
                &format!("{v}:/v"),
                IMAGE,
                "sh",
                "-c",
                "wc -c < /v/big"
            ])
            .trim(),
            BIG.to_string()
        );
    }
    b.ok(&["volume", "rm", "v", "w"]);
    assert_census_clean(&b);
}

#[test]
#[ignore = "needs root"]
fn run_on_a_full_disk_fails_with_125_and_works_once_freed() {
    let (fs, b) = small();
    fs.fill(0);
    fails_full(&b, "run", &["run", "--name", "c", IMAGE, "true"], None, 125);
    fs.free();
    b.ok(&["run", "--rm", "--name", "c", IMAGE, "true"]);
    assert_census_clean(&b);
}

/// Lines of the log flood: 100 MiB of output.
const FLOOD_LINES: u64 = 2_400_000;

/// Poll `f` until it holds (a bound, not a timing assertion).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root"]
fn a_log_flood_on_a_full_disk_stops_the_log_not_the_container() {
    let (fs, b) = small();
    fs.fill(LEAVE);
    // A flood larger than the disk (whole lines of 43 bytes), then a mark,
    // then a line written once the test has freed space.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        IMAGE,
        "sh",
        "-c",
        &format!(
            "yes flood-0123456789abcdefghijklmnopqrstuvwxyz | head -n {}; touch /tmp/flooded; \
             while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-free; exec sleep 1000",
            FLOOD_LINES
        ),
    ]);
    wait_for("the flood to end", || {
        b.run(&["exec", "c", "test", "-e", "/tmp/flooded"])
            .status
            .success()
    });
    // The log stopped at the disk's end; the container and its monitor go on.
    let log = b.ok(&["inspect", "-f", "{{.LogPath}}", "c"]);
    let size = std::fs::metadata(log.trim()).unwrap().len();
    assert!(
        size < FLOOD_LINES * 43,
        "the log grew past the disk? {size}"
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "c"]).trim(),
        "true"
    );
    let o = b.run(&["logs", "--tail", "3", "c"]);
    assert!(o.status.success(), "logs on a full disk: {}", stderr(&o));
    assert!(stdout(&o).contains("flood-0123456789"), "{}", stdout(&o));
    fs.free();
    b.ok(&["exec", "c", "touch", "/tmp/go"]);
    // Once freed, the container's next line is logged whole.
    wait_for("the line after the flood in the log", || {
        b.ok(&["logs", "--tail", "2", "c"])
            .lines()
            .any(|l| l == "after-free")
    });
    b.ok(&["stop", "-t", "1", "c"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "c"]).trim(),
        "false"
    );
    b.ok(&["rm", "c"]);
    assert_census_clean(&b);
}
