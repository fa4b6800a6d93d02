//! Shared helpers for the integration tests: each test gets its own state
//! root, runroot and busybox image (built from the host's busybox-static),
//! all removed at the end. The tests need root: they start real containers.
#![allow(dead_code, clippy::new_without_default)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Berth {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
}

pub const IMAGE: &str = "bb:test";

/// Fail loudly when not root: these tests must not silently pass.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the integration tests start real containers and must run as root (scripts/test)"
    );
}

/// A tar of a busybox root filesystem (uncompressed).
pub fn busybox_rootfs_tar() -> Vec<u8> {
    busybox_rootfs_tar_with(&[])
}

/// [`busybox_rootfs_tar`] plus files: (path, mode, content); one named as
/// a file of the base (`etc/passwd`) replaces it.
pub fn busybox_rootfs_tar_with(extra: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox")
        .expect("/bin/busybox missing: apt-get install busybox-static");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32, uid: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, &[][..]).unwrap();
    };
    for (d, m, u) in [
        ("bin", 0o755, 0),
        ("etc", 0o755, 0),
        ("tmp", 0o1777, 0),
        ("root", 0o700, 0),
        ("home", 0o755, 0),
        ("home/app", 0o755, 1000),
        ("proc", 0o755, 0),
        ("sys", 0o755, 0),
        ("dev", 0o755, 0),
    ] {
        dir(&mut b, d, m, u);
    }
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, mode: u32, data: &[u8]| {
        if extra.iter().any(|(x, ..)| *x == p) {
            return;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, data).unwrap();
    };
    file(&mut b, "bin/busybox", 0o755, &bb);
    file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    file(
        &mut b,
        "etc/group",
        0o644,
        b"root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n",
    );
    file(&mut b, "bin/not-executable", 0o644, b"#!/bin/sh\necho no\n");
    for (p, mode, data) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, p, *data).unwrap();
    }
    for app in String::from_utf8_lossy(&list.stdout).lines() {
        if app == "busybox" || app.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{app}"), "busybox")
            .unwrap();
    }
    b.into_inner().unwrap()
}

impl Berth {
    /// A fresh berth state with the busybox image imported as `bb:test`.
    pub fn new() -> Berth {
        require_root();
        let b = Berth::empty();
        let out = b.run_stdin(
            &["import", "-c", "CMD [\"sh\"]", "-", IMAGE],
            &busybox_rootfs_tar(),
        );
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b
    }

    /// A fresh, empty berth state.
    pub fn empty() -> Berth {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let root = dir.path().join("root");
        let runroot = dir.path().join("run");
        // Tests never change the host's net.ipv4.ip_forward: outbound NAT
        // is tested through links of their own (forwarding set on those).
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("berth.toml"), "[network]\nip_forward = false\n").unwrap();
        Berth { dir, root, runroot }
    }

    /// A fresh berth state whose root is `root` (a directory on a
    /// filesystem the test made, e.g. a [`SmallFs`]), with the busybox
    /// image imported as `bb:test`; the runroot and config stay in a temp
    /// dir of their own. Declare the filesystem's guard before the
    /// `Berth`, so the state is reset before the filesystem goes.
    pub fn new_at(root: &Path) -> Berth {
        let mut b = Berth::empty();
        b.root = root.to_path_buf();
        let out = b.run_stdin(
            &["import", "-c", "CMD [\"sh\"]", "-", IMAGE],
            &busybox_rootfs_tar(),
        );
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.env("BERTH_ROOT", &self.root)
            .env("BERTH_RUNROOT", &self.runroot)
            .env("BERTH_CONFIG", self.dir.path().join("config"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c
    }

    /// Run berth with args, stdin from /dev/null.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        feed(cmd, input)
    }

    /// Run, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        // Containers, networks (bridges, rules: host state) and the state
        // directories go with the test.
        if self.root.join("db").is_dir() {
            let _ = self.cmd().args(["system", "reset", "-f"]).output();
        }
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `cmd` with `input` on its stdin; its output.
pub fn feed(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // berth may refuse before reading all of it (bad input, disk full).
    let _ = child.stdin.take().unwrap().write_all(input);
    child.wait_with_output().unwrap()
}

/// What this state root's containers `ids` left on the host: processes of
/// berth's started for this root (monitors, DNS responders), processes in
/// or dirs of the containers' cgroups, mounts under the root and host-side
/// veths (`vb<id 6>…`). Empty when nothing is left behind.
pub fn leftovers(b: &Berth, ids: &[String]) -> Vec<String> {
    // The kernel deletes a container's veth when its network namespace is
    // cleaned up, which it does in the background: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = leftovers_now(b, ids);
        if found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn leftovers_now(b: &Berth, ids: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let marker = format!("BERTH_ROOT={}", b.root.display());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.split(|&c| c == 0).any(|kv| kv == marker.as_bytes()) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push(format!(
                "process {pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    for id in ids {
        for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let d = ctl.path().join("berth").join(id);
            if d.is_dir() {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                found.push(format!(
                    "cgroup {} (processes: {})",
                    d.display(),
                    procs.split_whitespace().collect::<Vec<_>>().join(",")
                ));
            }
        }
        let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
        for l in String::from_utf8_lossy(&links.stdout).lines() {
            if l.contains(&format!("vb{}", &id[..6])) {
                found.push(format!("link {l}"));
            }
        }
    }
    if let Ok(o) = Command::new("nft")
        .args(["list", "table", "ip", "berth"])
        .output()
    {
        let table = String::from_utf8_lossy(&o.stdout);
        for id in ids {
            for l in table.lines().filter(|l| l.contains(id.as_str())) {
                found.push(format!("nft rule {}", l.trim()));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for l in mounts.lines() {
        if l.contains(b.path().to_str().unwrap()) {
            found.push(format!("mount {l}"));
        }
    }
    found
}

/// The leak census as a teardown check: `berth system check --quick`
/// finds nothing of this root's wrong, in its store or on the host — no
/// container running without its monitor, no process left in the cgroup
/// of a stopped one, no stray mount, veth, rule, lease, work dir or run
/// file (see `engine::check`).
pub fn assert_census_clean(b: &Berth) {
    let out = b.run(&["system", "check", "--quick"]);
    assert!(
        out.status.success(),
        "berth system check found leftovers:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// `berth compose ARGS` run in `dir`.
pub fn compose(b: &Berth, dir: &Path, args: &[&str]) -> Output {
    b.cmd()
        .current_dir(dir)
        .arg("compose")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `compose ARGS`, asserted to succeed: its stdout and stderr.
pub fn compose_ok(b: &Berth, dir: &Path, args: &[&str]) -> (String, String) {
    let o = compose(b, dir, args);
    assert!(
        o.status.success(),
        "compose {args:?} failed ({}):\n{}\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    (stdout(&o), stderr(&o))
}

pub fn id_of(b: &Berth, name: &str) -> String {
    b.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

/// Ids of every container whose name starts with `prefix`.
pub fn ids_with_prefix(b: &Berth, prefix: &str) -> Vec<String> {
    b.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .lines()
        .filter(|l| l.split(' ').nth(1).is_some_and(|n| n.starts_with(prefix)))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// `debian:bookworm`: `debootstrap --variant=minbase bookworm` from the
/// machine's mirror, imported.
pub fn import_debian(b: &Berth) {
    let root = b.path().join("debian");
    let mirror = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("URIs: ").map(|u| u.trim().to_string()))
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let st = std::process::Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&root)
        .arg(&mirror)
        .stdout(Stdio::null())
        .status()
        .expect("debootstrap (scripts/deps installs it)");
    assert!(st.success(), "debootstrap failed");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let out = b.run_stdin(&["import", "-", "debian:bookworm"], &tar.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::remove_dir_all(&root).unwrap();
}

/// A small tmpfs mounted on a temp dir for one test (a state root that
/// fills up), unmounted when the guard drops — also when the test panics.
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// A tmpfs of `size` (`mount -o size=`, e.g. `96m`).
    pub fn tmpfs(size: &str) -> SmallFs {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("berth-smallfs-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "berth-smallfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs on {}", dir.path().display());
        SmallFs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes the filesystem has available.
    pub fn available(&self) -> u64 {
        let st = nix::sys::statvfs::statvfs(self.path()).unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    }

    /// Fill the filesystem with `filler` until `leave` bytes are
    /// available (about: to a page).
    pub fn fill(&self, leave: u64) {
        let avail = self.available();
        let want = avail.saturating_sub(leave);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("filler"))
            .unwrap();
        let chunk = vec![0x5a_u8; 1 << 20];
        let mut left = want;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        f.sync_all().unwrap();
    }

    /// Remove the filler: the space is free again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.path().join("filler"));
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Whatever berth left mounted under it goes with it (lazily if busy).
        let p = self.path().to_path_buf();
        let ok = Command::new("umount")
            .arg(&p)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&p).status();
        }
    }
}
