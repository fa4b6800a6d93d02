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
    /// Set by [`Berth::expect_damage`]: the teardown skips the census of
    /// the store (the test damaged it on purpose) but still checks that
    /// nothing of this root is left on the host after the reset.
    damage: std::sync::atomic::AtomicBool,
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
        Berth {
            dir,
            root,
            runroot,
            damage: Default::default(),
        }
    }

    /// This test damages its store on purpose (and checks or repairs the
    /// damage itself): the teardown does not run the census on it, only
    /// the host check after the reset. Each caller says why.
    pub fn expect_damage(&self) {
        self.damage
            .store(true, std::sync::atomic::Ordering::Relaxed);
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

/// Every root test ends here: the census (`system check --quick`: this
/// root's processes, monitors, cgroups, mounts, veths, bridges, rules,
/// leases, work dirs and run files, each checked against the store) must
/// find nothing wrong; then `system reset -f` takes the containers,
/// networks and directories, and nothing this root made may be left on
/// the host ([`Footprint::leftovers`]). Everything is told apart by this
/// root (its path, its containers' and networks' ids), so tests running
/// side by side do not see each other's objects. A test that is already
/// failing is not failed again: its root is only reset.
impl Drop for Berth {
    fn drop(&mut self) {
        let checking = !std::thread::panicking();
        let damaged = self.damage.load(std::sync::atomic::Ordering::Relaxed);
        let mut report = Vec::new();
        let mut made = Footprint::default();
        if self.root.join("db").is_dir() {
            if checking && !damaged {
                let out = self.run(&["system", "check", "--quick"]);
                if !out.status.success() {
                    report.push(format!(
                        "the census (berth system check --quick) found leftovers before the reset:\n{}{}",
                        stdout(&out),
                        stderr(&out)
                    ));
                }
            }
            made = Footprint::of(self);
            let out = self.run(&["system", "reset", "-f"]);
            if checking && !damaged && !out.status.success() {
                report.push(format!(
                    "berth system reset -f failed ({}): {}",
                    out.status,
                    stderr(&out)
                ));
            }
        }
        if checking {
            let left = made.left_by(self);
            if !left.is_empty() {
                report.push(format!(
                    "after berth system reset -f, this root left on the host:\n  {}",
                    left.join("\n  ")
                ));
            }
        }
        if !report.is_empty() {
            panic!(
                "teardown of the berth root {}: {}",
                self.root.display(),
                report.join("\n")
            );
        }
    }
}

/// The parent of process `pid` (field 4 of /proc/PID/stat): a container
/// init's is its monitor.
pub fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
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

pub fn text(args: &[&str]) -> String {
    String::from_utf8_lossy(
        &Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

/// The tables of legacy iptables that exist (listing one that does not
/// would make it).
pub fn legacy_tables() -> Vec<String> {
    std::fs::read_to_string("/proc/net/ip_tables_names")
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What one test's berth made, by the names and tags its leftovers would
/// carry: the containers and networks of its event log, its bridges.
#[derive(Default)]
pub struct Footprint {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub bridges: Vec<String>,
}

impl Footprint {
    /// This and `other`.
    pub fn merge(&mut self, other: Footprint) {
        self.containers.extend(other.containers);
        self.networks.extend(other.networks);
        self.bridges.extend(other.bridges);
    }

    /// Read before `b` is dropped (its state goes with it).
    pub fn of(b: &Berth) -> Footprint {
        // The log moves to events.log.1 past 1 MiB: read both.
        let log = ["events.log.1", "events.log"]
            .iter()
            .map(|f| std::fs::read_to_string(b.root.join(f)).unwrap_or_default())
            .collect::<String>();
        let (mut containers, mut networks) = (Vec::new(), Vec::new());
        for l in log.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                continue;
            };
            let id = v["Actor"]["ID"].as_str().unwrap_or_default().to_string();
            let list = match v["Type"].as_str() {
                Some("container") => &mut containers,
                Some("network") => &mut networks,
                _ => continue,
            };
            if id.len() >= 12 && !list.contains(&id) {
                list.push(id);
            }
        }
        let mut bridges: Vec<String> = networks
            .iter()
            .map(|n| format!("br-{}", &n[..12]))
            .collect();
        // The default bridge of a root other than the default one.
        use sha2::Digest;
        let h = sha2::Sha256::digest(b.root.as_os_str().as_encoded_bytes());
        bridges.push(format!(
            "berth{:02x}{:02x}{:02x}{:02x}",
            h[0], h[1], h[2], h[3]
        ));
        // Networks still there (the default one has no event) and their
        // bridges named by an option.
        for id in stdout(&b.run(&["network", "ls", "-q", "--no-trunc"])).split_whitespace() {
            if !networks.iter().any(|n| n == id) {
                networks.push(id.to_string());
            }
            let named = b.run(&[
                "network",
                "inspect",
                "--format",
                "{{index .Options \"com.docker.network.bridge.name\"}}",
                id,
            ]);
            bridges.extend(stdout(&named).split_whitespace().map(str::to_string));
        }
        for id in stdout(&b.run(&["ps", "-aq", "--no-trunc"])).split_whitespace() {
            if !containers.iter().any(|c| c == id) {
                containers.push(id.to_string());
            }
        }
        Footprint {
            containers,
            networks,
            bridges,
        }
    }

    /// Everything of `b`'s root still on the host: [`leftovers`] (its
    /// processes, its containers' cgroups and veths, mounts under its
    /// directory) and [`Footprint::leftovers`] (its bridges, its
    /// networks' veths, its rules). The kernel removes a veth with its
    /// network namespace in the background: given a moment.
    pub fn left_by(&self, b: &Berth) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut found = leftovers_now(b, &self.containers);
            found.extend(self.leftovers());
            if found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Links, nftables rules and set elements, legacy iptables rules of
    /// this test's berth still on the host.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in text(&["ip", "-o", "link"]).lines() {
            let Some(n) = l.split(": ").nth(1) else {
                continue;
            };
            let n = n.split('@').next().unwrap_or(n);
            let veth = n.len() == 15
                && n.starts_with("vb")
                && self.networks.iter().any(|id| n[8..] == id[..7]);
            if veth || self.bridges.iter().any(|b| b == n) {
                out.push(format!("link {n}"));
            }
        }
        let tags: Vec<String> = self
            .containers
            .iter()
            .map(|c| format!("berth:{c}"))
            .chain(self.networks.iter().map(|n| format!("berth-net:{n}")))
            .collect();
        let mut rules = text(&["nft", "list", "ruleset"]);
        // nft does not show the comments iptables-nft wrote (berth's rules
        // in Docker's chains): list them the iptables way too.
        rules.push_str(&text(&["iptables-nft", "-w", "-t", "filter", "-S"]));
        for t in legacy_tables() {
            rules.push_str(&text(&["iptables-legacy", "-w", "-t", &t, "-S"]));
        }
        for l in rules.lines() {
            if tags.iter().any(|t| l.contains(t.as_str()))
                || self
                    .bridges
                    .iter()
                    .any(|b| l.contains(&format!("\"{b}\"")) || l.contains(&format!(" {b} ")))
            {
                out.push(format!("rule {}", l.trim()));
            }
        }
        out
    }
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
        if l.contains(&format!("{}/", b.path().display())) {
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

/// The `containers` user's subordinate ids, in files of the test's own
/// (never the host's /etc/subuid), named in its berth.toml.
pub fn with_subids(b: &Berth, uids: &str, gids: &str) {
    let dir = b.path();
    std::fs::write(dir.join("subuid"), uids).unwrap();
    std::fs::write(dir.join("subgid"), gids).unwrap();
    std::fs::write(
        dir.join("config/berth.toml"),
        format!(
            "[network]\nip_forward = false\n[userns]\nsubuid_file = \"{}\"\nsubgid_file = \"{}\"\n",
            dir.join("subuid").display(),
            dir.join("subgid").display()
        ),
    )
    .unwrap();
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
    let tar = debian_tar();
    let out = b.run_stdin(&["import", "-", "debian:bookworm"], &tar);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A debootstrap'ed bookworm (minbase) as a tar, made once and kept for a
/// day in /var/tmp/berth-tests (debootstrap takes a minute or more, and
/// several test binaries want it); concurrent tests wait for the one
/// making it.
fn debian_tar() -> Vec<u8> {
    let mirror = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("URIs: ").map(|u| u.trim().to_string()))
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let dir = Path::new("/var/tmp/berth-tests");
    std::fs::create_dir_all(dir).unwrap();
    let key: String = mirror
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let cached = dir.join(format!("debian-bookworm-minbase-{key}.tar"));
    let lock = std::fs::File::create(dir.join("debian.lock")).unwrap();
    lock.lock().unwrap();
    let fresh = std::fs::metadata(&cached)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(24 * 3600));
    if fresh {
        return std::fs::read(&cached).unwrap();
    }
    let root = tempfile::Builder::new()
        .prefix("debootstrap-")
        .tempdir_in(dir)
        .unwrap();
    let st = std::process::Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(root.path())
        .arg(&mirror)
        .stdout(Stdio::null())
        .status()
        .expect("debootstrap (scripts/deps installs it)");
    assert!(st.success(), "debootstrap failed");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let part = cached.with_extension("tar.part");
    std::fs::write(&part, &tar.stdout).unwrap();
    std::fs::rename(&part, &cached).unwrap();
    tar.stdout
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

/// `berth registry serve --delete` on a free port of 127.0.0.1 (its
/// address from the first log line), its root and state under `dir`; the
/// access log is drained so it never blocks; killed on drop.
pub struct LocalRegistry {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl LocalRegistry {
    pub fn start(dir: &Path) -> LocalRegistry {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args([
                "registry",
                "serve",
                "--delete",
                "--addr",
                "127.0.0.1:0",
                "--root",
            ])
            .arg(dir.join("registry"))
            .env("BERTH_ROOT", dir.join("registry-berth-root"))
            .env("BERTH_RUNROOT", dir.join("registry-berth-run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("the registry printed nothing").unwrap();
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        let addr = v["addr"].as_str().unwrap().to_string();
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        LocalRegistry { child, addr }
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
