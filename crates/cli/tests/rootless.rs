//! Rootless berth (issue 23): run as root, each test makes an
//! unprivileged user of its own (`useradd`, subordinate ids in
//! /etc/subuid and /etc/subgid), runs the berth binary as that user
//! (`setpriv`, HOME and XDG_RUNTIME_DIR in a dir of the test's) and
//! removes the user, its ids (both files restored byte for byte), its
//! processes and its files afterwards.
mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;

/// useradd/userdel and the edits of /etc/sub[ug]id, one test at a time.
static USERS: Mutex<()> = Mutex::new(());

const SUBID_COUNT: u32 = 65536;

struct User {
    name: String,
    uid: u32,
    /// The first subordinate id (the namespace's 1).
    sub_start: u32,
    dir: Option<tempfile::TempDir>,
    home: PathBuf,
    runtime: PathBuf,
    exe: PathBuf,
    saved: Vec<(PathBuf, Vec<u8>)>,
    tun_mode: Option<u32>,
    _lock: MutexGuard<'static, ()>,
    /// The same across test processes (two checkouts tested at once):
    /// each restores /etc/sub[ug]id and /dev/net/tun as it found them.
    _host_lock: std::fs::File,
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl User {
    /// A new user; with `subids`, a range of subordinate ids of its own.
    fn new(tag: &str, subids: bool) -> User {
        require_root();
        let lock = USERS.lock().unwrap_or_else(|p| p.into_inner());
        let host_lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/lock/berth-rootless-tests.lock")
            .unwrap();
        host_lock.lock().unwrap();
        let mut saved = Vec::new();
        for f in ["/etc/subuid", "/etc/subgid"] {
            saved.push((PathBuf::from(f), std::fs::read(f).unwrap_or_default()));
        }
        let name = format!("brl{tag}{}", std::process::id() % 100_000);
        let dir = tempfile::Builder::new()
            .prefix("berth-rootless-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = dir.path().join("home");
        // No subordinate ids of useradd's choosing: the test writes its own.
        run_ok(Command::new("useradd").args([
            "-M",
            "-d",
            home.to_str().unwrap(),
            "-s",
            "/bin/sh",
            "-K",
            "SUB_UID_COUNT=0",
            "-K",
            "SUB_GID_COUNT=0",
            &name,
        ]));
        let uid: u32 = run_ok(Command::new("id").args(["-u", &name]))
            .trim()
            .parse()
            .unwrap();
        let runtime = dir.path().join("run");
        for d in [&home, &runtime] {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(d, Some(uid), Some(uid)).unwrap();
        }
        // The berth binary where the user can run it (the target dir may
        // be under root's 0700 home).
        let exe = dir.path().join("berth");
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A range far from the usual 100000+ ones, per test process.
        let sub_start = 2_000_000_000 + (std::process::id() % 4096) * 2 * SUBID_COUNT;
        if subids {
            for f in ["/etc/subuid", "/etc/subgid"] {
                let mut file = std::fs::OpenOptions::new().append(true).open(f).unwrap();
                writeln!(file, "{name}:{sub_start}:{SUBID_COUNT}").unwrap();
            }
        }
        // pasta's tap needs /dev/net/tun, which udev makes 0666; a host
        // that left it 0600 gets udev's mode for the test, restored after.
        let tun = std::fs::metadata("/dev/net/tun")
            .map(|m| m.mode() & 0o7777)
            .ok();
        let tun_mode = tun.filter(|m| m & 0o006 != 0o006);
        if tun_mode.is_some() {
            std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(0o666))
                .unwrap();
        }
        User {
            name,
            uid,
            sub_start,
            dir: Some(dir),
            home,
            runtime,
            exe,
            saved,
            tun_mode,
            _lock: lock,
            _host_lock: host_lock,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.as_user(&self.exe);
        c.args(args);
        c
    }

    /// `program` run as the user, in its home, with its environment.
    fn as_user(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.uid.to_string(),
            "--init-groups",
            "--",
        ])
        .arg(program)
        .env_clear()
        .env("HOME", &self.home)
        .env("XDG_RUNTIME_DIR", &self.runtime)
        .env(
            "PATH",
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        )
        .current_dir(&self.home);
        c
    }

    /// A directory to use as PATH: links to everything on the usual one
    /// but the programs whose names start with one of `left_out` (berth
    /// looks its network tools up on PATH).
    fn path_without(&self, name: &str, left_out: &[&str]) -> PathBuf {
        let bin = self.dir.as_ref().unwrap().path().join(name);
        std::fs::create_dir(&bin).unwrap();
        for dir in [
            "/usr/local/bin",
            "/usr/bin",
            "/bin",
            "/usr/local/sbin",
            "/usr/sbin",
            "/sbin",
        ] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name();
                let n = name.to_string_lossy();
                if left_out.iter().any(|l| n.starts_with(l)) || bin.join(&name).exists() {
                    continue;
                }
                std::os::unix::fs::symlink(e.path(), bin.join(&name)).unwrap();
            }
        }
        bin
    }

    /// The test image, imported into the user's store.
    fn import_busybox(&self) {
        let imported = self.berth_stdin(
            &["import", "-c", "CMD [\"sh\"]", "-", IMAGE],
            &busybox_rootfs_tar(),
        );
        assert!(imported.status.success(), "import: {}", stderr(&imported));
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        feed(self.cmd(args), input)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} as {} failed ({}): {}{}",
            self.name,
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// The live processes of the user and of its subordinate ids.
    fn processes(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let zombie = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'));
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u32>().ok());
            let ours = uid.is_some_and(|u| {
                u == self.uid || (self.sub_start..self.sub_start + SUBID_COUNT).contains(&u)
            });
            if ours && !zombie {
                out.push(pid);
            }
        }
        out
    }

    fn wait_no_processes(&self) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = self.berth(&["system", "reset", "-f"]);
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.wait_no_processes();
        let _ = Command::new("userdel").arg(&self.name).output();
        for (path, bytes) in &self.saved {
            let _ = std::fs::write(path, bytes);
        }
        if let Some(mode) = self.tun_mode {
            let _ = std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(mode));
        }
        drop(self.dir.take());
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / on 127.0.0.1:port until it answers (the server starts after
/// `run -d` returns).
fn fetch(port: u16) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.contains("200") {
                return Some(body);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'))
    })
}

#[test]
fn rootless_berth_runs_containers_as_the_user() {
    let u = User::new("a", true);
    u.import_busybox();

    // State in the user's XDG dirs, owned by the user.
    let root = u.home.join(".local/share/berth");
    assert_eq!(std::fs::metadata(root.join("db")).unwrap().uid(), u.uid);
    let runroot = u.runtime.join("berth");
    assert_eq!(std::fs::metadata(&runroot).unwrap().uid(), u.uid);

    // The namespace: the user is 0, its subordinate ids 1..65536.
    let map = u.ok(&["unshare", "cat", "/proc/self/uid_map"]);
    let lines: Vec<Vec<u64>> = map
        .lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![0, u64::from(u.uid), 1],
            vec![1, u64::from(u.sub_start), u64::from(SUBID_COUNT)]
        ],
        "{map}"
    );

    // berth run inside `unshare` is the same berth (same store, same
    // namespace), and knows the user's host uid.
    let exe = u.exe.to_str().unwrap().to_string();
    let inner = u.ok(&["unshare", &exe, "images", "-q"]);
    assert_eq!(inner.lines().count(), 1, "{inner}");
    let env = u.ok(&[
        "unshare",
        "sh",
        "-c",
        "echo $_BERTH_ROOTLESS_UID $BERTH_ROOT",
    ]);
    assert_eq!(env.trim(), format!("{} {}", u.uid, root.display()));

    // A nested user namespace: `auto` takes the namespace's ids but the
    // user's (more in `auto_gives_rootless_containers_…`).
    let nested = u.ok(&[
        "run",
        "--rm",
        "--userns=auto",
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(
        nested.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", &SUBID_COUNT.to_string()]
    );

    // Root inside.
    let id = u.ok(&["run", "--rm", IMAGE, "id"]);
    assert!(id.contains("uid=0(root) gid=0(root)"), "{id}");

    // Host files: root's 0600 stays closed, what the container makes in
    // the user's dir is the user's.
    let host = u.dir.as_ref().unwrap().path();
    let rootdir = host.join("rootdir");
    std::fs::create_dir(&rootdir).unwrap();
    std::fs::write(rootdir.join("secret"), "host root's secret\n").unwrap();
    std::fs::set_permissions(
        rootdir.join("secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let userdir = host.join("userdir");
    std::fs::create_dir(&userdir).unwrap();
    std::os::unix::fs::chown(&userdir, Some(u.uid), Some(u.uid)).unwrap();
    let r = format!("{}:/r", rootdir.display());
    let w = format!("{}:/u", userdir.display());
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &r,
        "-v",
        &w,
        IMAGE,
        "sh",
        "-c",
        "cat /r/secret; touch /u/made; mkdir /u/sub && chown 1000:1000 /u/sub",
    ]);
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("secret"), "{}", stdout(&out));
    let made = std::fs::metadata(userdir.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.uid));
    // The container's 1000 is the user's subordinate id 999 above the start.
    let sub = std::fs::metadata(userdir.join("sub")).unwrap();
    assert_eq!(sub.uid(), u.sub_start + 999);

    // Published port through slirp4netns, from the host's 127.0.0.1.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let cid = u
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            IMAGE,
            "sh",
            "-c",
            "echo hello-rootless > /tmp/index.html; echo started; exec httpd -f -p 80 -h /tmp",
        ])
        .trim()
        .to_string();
    let body = fetch(port).expect("the published port never answered");
    assert!(body.contains("hello-rootless"), "{body}");
    let ps = u.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{ps}"
    );
    let exec = u.ok(&["exec", "web", "id", "-u"]);
    assert_eq!(exec.trim(), "0");
    assert!(u.ok(&["logs", "web"]).contains("started"));
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .trim()
        .parse()
        .unwrap();
    let net_pid: i32 = std::fs::read_to_string(runroot.join(format!("{cid}.net.pid")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid) && alive(net_pid));
    u.ok(&["stop", "-t", "1", "web"]);
    assert!(u.ok(&["ps", "-a"]).contains("Exited"));
    u.ok(&["start", "web"]);
    assert!(fetch(port).is_some(), "not served again after start");
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .trim()
        .parse()
        .unwrap();
    let net_pid: i32 = std::fs::read_to_string(runroot.join(format!("{cid}.net.pid")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    u.ok(&["rm", "-f", "web"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (alive(pid) || alive(net_pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "the container's init {pid} outlived rm -f");
    assert!(!alive(net_pid), "slirp4netns {net_pid} outlived rm -f");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!u.ok(&["ps", "-a"]).contains("web"));

    // pasta, asked for by name: its own forward, its process gone with
    // the container.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let cid = u
        .ok(&[
            "run",
            "-d",
            "--name",
            "pasta",
            "--network",
            "pasta",
            "-p",
            &publish,
            IMAGE,
            "sh",
            "-c",
            "echo hello-pasta > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ])
        .trim()
        .to_string();
    let body = fetch(port).expect("the pasta port never answered");
    assert!(body.contains("hello-pasta"), "{body}");
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "pasta"])
            .trim(),
        "pasta"
    );
    let tool_pid: i32 = std::fs::read_to_string(runroot.join(format!("{cid}.net.pid")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(tool_pid));
    u.ok(&["rm", "-f", "pasta"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(tool_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(tool_pid), "pasta {tool_pid} outlived rm -f");

    // Limits on cgroup v1: podman's warning, and the container runs.
    let v2 = Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/cgroup"])
        .output()
        .map(|o| stdout(&o).trim() == "cgroup2fs")
        .unwrap_or(false);
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        IMAGE,
        "true",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    if !v2 {
        assert!(
            stderr(&out).contains(
                "Resource limits are not supported and ignored on cgroups V1 rootless systems"
            ),
            "{}",
            stderr(&out)
        );
    }

    // The pause process killed while a container runs: the next command
    // finds the namespace through the container's monitor and leaves a new
    // pause process there.
    u.ok(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let pause: i32 = std::fs::read_to_string(runroot.join("pause.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pause),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pause) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(u.ok(&["ps", "--format", "{{.Names}}"]).contains("kept"));
    assert_eq!(u.ok(&["exec", "kept", "id", "-u"]).trim(), "0");
    let paused = u.berth(&["pause", "kept"]);
    assert_ne!(code(&paused), 0);
    assert!(
        stderr(&paused).contains("cannot be paused"),
        "{}",
        stderr(&paused)
    );
    let new_pause: i32 = std::fs::read_to_string(runroot.join("pause.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(new_pause != pause && alive(new_pause));
    // `--pid container:` (forked by an intermediate process that enters
    // the donor's pid namespace).
    let ps = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:kept",
        IMAGE,
        "ps",
    ]);
    assert!(ps.contains("sleep 1000"), "{ps}");

    // Everything of the user's goes with a reset: containers, state, the
    // namespace's pause process.
    u.ok(&["run", "-d", "--network", "none", IMAGE, "sleep", "1000"]);
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(!root.exists() && !runroot.exists());
}

/// The user's processes whose command line is `cmd`.
fn running(u: &User, cmd: &str) -> Vec<i32> {
    u.processes()
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmd)
        })
        .collect()
}

#[test]
fn top_and_rm_find_a_rootless_containers_processes_without_a_cgroup() {
    // No cgroup is the user's on v1: a container's processes are those of
    // its pid namespace, or with --pid host its init's descendants.
    let u = User::new("d", true);
    u.import_busybox();
    let script = |n: &str| format!("sleep {n} & sleep {n} & echo up; wait");
    for (name, pid, n) in [
        ("own", &[][..], "1001"),
        ("shared", &["--pid", "host"][..], "1002"),
    ] {
        let command = script(n);
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend(pid);
        args.extend([IMAGE, "sh", "-c", &command]);
        u.ok(&args);
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(&u, &format!("sleep {n}")).len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let top = u.ok(&["top", name]);
        assert_eq!(
            top.lines()
                .filter(|l| l.ends_with(&format!("sleep {n}")))
                .count(),
            2,
            "{name}: {top}"
        );
        assert!(
            top.lines().any(|l| l.contains("sh -c sleep")),
            "{name}: {top}"
        );
        u.ok(&["rm", "-f", name]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !running(&u, &format!("sleep {n}")).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            running(&u, &format!("sleep {n}")),
            Vec::<i32>::new(),
            "{name}: rm -f left its processes"
        );
    }
    // A --pid host init that ends by itself takes what it left with it.
    u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "host",
        IMAGE,
        "sh",
        "-c",
        "sleep 1003 &",
    ]);
    // (The monitor ends them after it has reported the exit.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&u, "sleep 1003").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(running(&u, "sleep 1003"), Vec::<i32>::new());
}

#[test]
fn system_check_finds_and_ends_what_a_rootless_pid_host_container_left_behind() {
    // No cgroup to find them by: its run records its mount namespace,
    // which what its init leaves behind keeps after the init and the
    // monitor are gone.
    let u = User::new("k", true);
    u.import_busybox();
    u.ok(&[
        "run",
        "-d",
        "--name",
        "left",
        "--network",
        "none",
        "--pid",
        "host",
        IMAGE,
        "sh",
        "-c",
        "sleep 1005 & echo up; wait",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&u, "sleep 1005").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let init: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "left"])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent_of(init);
    assert!(
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap())
            .contains("berth"),
        "{monitor} is not the monitor"
    );
    // The monitor and the init die without any cleanup; the sleep lives on.
    run_ok(Command::new("kill").args(["-9", &monitor.to_string(), &init.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{init}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = running(&u, "sleep 1005");
    assert_eq!(left.len(), 1, "the orphan should outlive them");
    let out = u.berth(&["system", "check", "--quick"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    let report = stdout(&out);
    assert!(
        report.contains(&left[0].to_string()) && report.contains("left in its mount namespace"),
        "the check should name the orphan {}: {report}",
        left[0]
    );
    u.ok(&["system", "check", "--quick", "--repair"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&u, "sleep 1005").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        running(&u, "sleep 1005"),
        Vec::<i32>::new(),
        "--repair left it"
    );
    u.ok(&["system", "check", "--quick"]);
    assert_eq!(
        u.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "left"
        ])
        .trim(),
        // Its init was seen gone with no exit recorded: read as a crash,
        // as dockerd does.
        "exited 255"
    );
    u.ok(&["rm", "left"]);
}

#[test]
fn a_user_without_subordinate_ids_is_told_what_to_add() {
    let u = User::new("b", false);
    let out = u.berth(&["ps"]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "no subordinate uids for user \"{}\" in /etc/subuid",
            u.name
        )) && err.contains(&format!("{}:100000:65536", u.name))
            && err.contains("usermod --add-subuids"),
        "{err}"
    );
    assert!(u.wait_no_processes().is_empty());
}

#[test]
fn unshare_is_refused_as_root() {
    require_root();
    let b = Berth::empty();
    let out = b.run(&["unshare", "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("for rootless berth"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn volumes_builds_and_a_registry_work_rootless() {
    let u = User::new("c", true);
    u.import_busybox();

    // A named volume keeps what a container wrote, for the next one.
    u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let kept = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMAGE,
        "cat",
        "/data/f",
    ]);
    assert_eq!(kept.trim(), "kept");
    assert!(u.ok(&["volume", "ls", "-q"]).contains("data"));

    // A build whose layers delete a file (a whiteout), replace a dir (an
    // opaque dir) and chown to a mapped id; rebuilt from the cache.
    let ctx = u.home.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN rm /etc/group && rm -rf /home && mkdir /home && touch /home/new\n\
             RUN mkdir /app && echo built > /app/x && chown 1000:1000 /app/x\nCMD [\"cat\", \"/app/x\"]\n"
        ),
    )
    .unwrap();
    let ctx_arg = ctx.to_str().unwrap().to_string();
    u.ok(&["build", "--network", "none", "-t", "app:1", &ctx_arg]);
    let shown = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "cat /app/x; stat -c %u /app/x; ls /home; test -e /etc/group || echo no-group",
    ]);
    assert_eq!(
        shown.split_whitespace().collect::<Vec<_>>(),
        ["built", "1000", "new", "no-group"]
    );
    let again = u.berth(&["build", "--network", "none", "-t", "app:1", &ctx_arg]);
    assert!(again.status.success());
    assert_eq!(
        stderr(&again).matches("CACHED").count() + stdout(&again).matches("CACHED").count(),
        2
    );

    // Push to a registry on 127.0.0.1 (berth's own, served rootless too)
    // and pull it back.
    let port = free_port();
    let reg_dir = u.home.join("registry");
    let mut reg = u
        .cmd(&[
            "registry",
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--root",
            reg_dir.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let remote = format!("127.0.0.1:{port}/me/app:1");
    u.ok(&["tag", "app:1", &remote]);
    u.ok(&["push", &remote]);
    u.ok(&["rmi", &remote, "app:1"]);
    u.ok(&["pull", &remote]);
    let pulled = u.ok(&["run", "--rm", "--network", "none", &remote]);
    assert_eq!(pulled.trim(), "built");
    let _ = reg.kill();
    let _ = reg.wait();
}

#[test]
fn a_pod_shares_its_network_rootless() {
    let u = User::new("d", true);
    u.import_busybox();
    let port = free_port();
    u.ok(&[
        "pod",
        "create",
        "--name",
        "p",
        "-p",
        &format!("127.0.0.1:{port}:80"),
    ]);
    u.ok(&[
        "run",
        "-d",
        "--pod",
        "p",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "echo pod-ok > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let body = fetch(port).expect("the pod's port never answered");
    assert!(body.contains("pod-ok"), "{body}");
    // Another member reaches it on the pod's localhost.
    let local = u.ok(&[
        "run",
        "--rm",
        "--pod",
        "p",
        IMAGE,
        "wget",
        "-qO-",
        "127.0.0.1:80/index.html",
    ]);
    assert_eq!(local.trim(), "pod-ok");
    u.ok(&["pod", "rm", "-f", "p"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(u.ok(&["ps", "-a", "-q"]).trim().is_empty());

    // Pod limits on this host's cgroup v1: podman's warning, no pod
    // cgroup (rootless containers have none), and the pod works.
    let v1 = Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/cgroup"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "cgroup2fs")
        .unwrap_or(false);
    if v1 {
        let out = u.berth(&[
            "pod", "create", "--name", "lim", "-m", "64m", "--cpus", "0.5",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "Resource limits are not supported and ignored on cgroups V1 rootless systems"
            ),
            "{}",
            stderr(&out)
        );
        let inspect = u.ok(&["pod", "inspect", "lim"]);
        assert!(!inspect.contains("\"CgroupPath\""), "{inspect}");
        assert_eq!(
            u.ok(&["run", "--rm", "--pod", "lim", IMAGE, "echo", "limited-pod"])
                .trim(),
            "limited-pod"
        );
        u.ok(&["pod", "rm", "-f", "lim"]);
    }

    // `pod create --userns=keep-id` (podman's): every member is in the
    // infra's user namespace and runs as the user, with the user's passwd
    // entry; what it writes in the user's dir is the user's; `--user 0`
    // is the namespace's root; the pod's port and localhost still work.
    let port = free_port();
    u.ok(&[
        "pod",
        "create",
        "--name",
        "k",
        "--userns=keep-id",
        "-p",
        &format!("127.0.0.1:{port}:8080"),
    ]);
    let userdir = u.home.join("pod-shared");
    std::fs::create_dir(&userdir).unwrap();
    std::os::unix::fs::chown(&userdir, Some(u.uid), Some(u.uid)).unwrap();
    let bind = format!("{}:/s", userdir.display());
    let out = u.ok(&[
        "run",
        "--rm",
        "--pod",
        "k",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "id -u; id -un; echo $HOME; touch /s/made; readlink /proc/self/ns/user",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], u.uid.to_string(), "{out}");
    assert_eq!(lines[1], u.name, "{out}");
    let made = std::fs::metadata(userdir.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.uid));
    assert_eq!(
        u.ok(&["run", "--rm", "--pod", "k", "--user", "0", IMAGE, "id", "-u"])
            .trim(),
        "0"
    );
    u.ok(&[
        "run",
        "-d",
        "--pod",
        "k",
        "--name",
        "kweb",
        IMAGE,
        "sh",
        "-c",
        "echo keep-id-pod > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    ]);
    let body = fetch(port).expect("the keep-id pod's port never answered");
    assert!(body.contains("keep-id-pod"), "{body}");
    // The member's user namespace is the infra's, not berth's own.
    let infra = u.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", "k"]);
    let pid_of = |c: &str| {
        u.ok(&["inspect", "-f", "{{.State.Pid}}", c])
            .trim()
            .to_string()
    };
    let userns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    let infra_pid = pid_of(infra.trim());
    assert_eq!(userns(&pid_of("kweb")), userns(&infra_pid));
    let pause = u
        .processes()
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "berth-pause")
        })
        .expect("no pause process");
    assert_ne!(userns(&infra_pid), userns(&pause.to_string()));
    assert_eq!(lines[3], userns(&infra_pid).to_string_lossy(), "{out}");
    // A member's own user namespace is refused in podman's words.
    let own = u.berth(&[
        "run",
        "--rm",
        "--pod",
        "k",
        "--userns=keep-id",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&own), 125, "{}", stderr(&own));
    assert!(
        stderr(&own).contains("--userns and --pod cannot be set together"),
        "{}",
        stderr(&own)
    );
    u.ok(&["pod", "rm", "-f", "k"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(u.ok(&["ps", "-a", "-q"]).trim().is_empty());
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// What is left of the rootless network namespace in the runroot: its
/// bind, its tool's pid file, port proxies' and DNS responders' files.
fn netns_leftovers(runroot: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for p in [
        runroot.join("netns/rootless-netns"),
        runroot.join("rootless-netns.pid"),
    ] {
        if p.exists() {
            out.push(p.display().to_string());
        }
    }
    for dir in [runroot.to_path_buf(), runroot.join("dns")] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".ports.pid") || n.ends_with(".net.pid") || dir.ends_with("dns") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// The user's processes other than the pause process.
fn non_pause(u: &User) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = u
            .processes()
            .into_iter()
            .filter_map(|p| {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).ok()?;
                (comm.trim() != "berth-pause").then(|| format!("{p} {}", comm.trim()))
            })
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn user_networks_resolve_names_and_publish_ports_rootless() {
    let u = User::new("e", true);
    u.import_busybox();
    let runroot = u.runtime.join("berth");

    u.ok(&["network", "create", "front"]);
    assert!(u.ok(&["network", "ls"]).contains("front"));
    let subnet = u.ok(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "front",
    ]);
    assert!(subnet.trim().contains('/'), "{subnet}");
    // Nothing runs for a network without containers.
    assert!(netns_leftovers(&runroot).is_empty());
    // A server on the network, published on the host's 127.0.0.1.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "echo hello-front > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    assert!(runroot.join("netns/rootless-netns").exists());
    let body = fetch(port).expect("the published port never answered");
    assert!(body.contains("hello-front"), "{body}");
    let ps = u.ok(&["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");

    // Another container resolves it by name and by alias, and fetches.
    for name in ["web", "www"] {
        let got = u.ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            IMAGE,
            "wget",
            "-qO-",
            &format!("http://{name}/index.html"),
        ]);
        assert_eq!(got.trim(), "hello-front", "by {name}");
    }

    // network connect: a container on another network reaches web once
    // connected to its network, and not after disconnect.
    u.ok(&["network", "create", "back"]);
    u.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "back",
        IMAGE,
        "sleep",
        "1000",
    ]);
    u.ok(&["network", "connect", "front", "client"]);
    let got = u.ok(&["exec", "client", "wget", "-qO-", "http://web/index.html"]);
    assert_eq!(got.trim(), "hello-front");
    u.ok(&["network", "disconnect", "front", "client"]);
    let cut = u.berth(&["exec", "client", "wget", "-qO-", "http://web/index.html"]);
    assert_eq!(code(&cut), 1, "{}{}", stdout(&cut), stderr(&cut));
    assert!(stderr(&cut).contains("bad address"), "{}", stderr(&cut));

    // A network in use is not removed.
    let busy = u.berth(&["network", "rm", "front"]);
    assert_ne!(code(&busy), 0);

    // Stopped, the last containers take the namespace with them; started
    // again, it comes back with the published port.
    u.ok(&["stop", "-t", "1", "web", "client"]);
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left after stop: {left:?}");
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    u.ok(&["start", "web"]);
    let body = fetch(port).expect("not served again after start");
    assert!(body.contains("hello-front"), "{body}");

    // The last container gone, the namespace goes: no pasta, no proxy,
    // no responder, no bind, no pid files; the port is free.
    u.ok(&["rm", "-f", "web", "client"]);
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    u.ok(&["network", "rm", "front", "back"]);
    let ls = u.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.contains("front") && !ls.contains("back"), "{ls}");

    // The default network of a plain run is still its own: slirp4netns
    // (podman 4.3's), or pasta when berth.toml says so.
    let mode = u.ok(&["create", "--name", "plain", IMAGE, "true"]);
    assert!(!mode.trim().is_empty());
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "plain"])
            .trim(),
        "slirp4netns"
    );
    u.ok(&["rm", "plain"]);
    let config = u.home.join(".config/berth");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("berth.toml"),
        "[network]\ndefault_rootless_network_cmd = \"pasta\"\n",
    )
    .unwrap();
    u.ok(&["create", "--name", "plain", IMAGE, "true"]);
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "plain"])
            .trim(),
        "pasta"
    );
    u.ok(&["rm", "plain"]);
    std::fs::write(
        config.join("berth.toml"),
        "[network]\ndefault_rootless_network_cmd = \"vpnkit\"\n",
    )
    .unwrap();
    let out = u.berth(&["create", IMAGE, "true"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out)
            .contains("default_rootless_network_cmd \"vpnkit\": use \"slirp4netns\" or \"pasta\""),
        "{}",
        stderr(&out)
    );
    std::fs::remove_file(config.join("berth.toml")).unwrap();
}

/// `n` consecutive UDP ports free on 127.0.0.1.
fn free_udp_ports(n: u16) -> u16 {
    loop {
        let first = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if first.checked_add(n).is_some()
            && (1..n).all(|i| std::net::UdpSocket::bind(("127.0.0.1", first + i)).is_ok())
        {
            return first;
        }
    }
}

/// A UDP echo server on each of `ports` in the container, answering
/// `PORT:DATAGRAM`: the host's python3, with the host's /usr and its
/// loader bound read-only (busybox has no UDP server).
fn udp_echo_args(ports: &[u16]) -> Vec<String> {
    let script = "import select, socket, sys\n\
                  socks = []\n\
                  for p in sys.argv[1:]:\n    \
                      s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    \
                      s.bind(('0.0.0.0', int(p)))\n    \
                      socks.append(s)\n\
                  while True:\n    \
                      for s in select.select(socks, [], [])[0]:\n        \
                          d, a = s.recvfrom(65535)\n        \
                          s.sendto(str(s.getsockname()[1]).encode() + b':' + d, a)\n";
    let mut args: Vec<String> = [
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
        IMAGE,
        "/usr/bin/python3",
        "-c",
        script,
    ]
    .map(String::from)
    .to_vec();
    args.extend(ports.iter().map(u16::to_string));
    args
}

/// Send `msg` to 127.0.0.1:`port` over UDP until an answer comes back
/// (the server starts after `run -d` returns), or a deadline passes.
fn udp_ask(port: u16, msg: &str) -> Option<String> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let _ = s.send_to(msg.as_bytes(), ("127.0.0.1", port));
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

#[test]
fn udp_ports_are_published_rootless() {
    let u = User::new("u", true);
    u.import_busybox();
    let runroot = u.runtime.join("berth");
    let run = |name: &str, net: &[&str], publish: &str, ports: &[u16]| {
        let mut args: Vec<String> = ["run", "-d", "--name", name, "-p", publish]
            .map(String::from)
            .to_vec();
        args.extend(net.iter().map(|s| s.to_string()));
        args.extend(udp_echo_args(ports));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        u.ok(&args);
    };

    // The default network (slirp4netns): its UDP forwards are the port
    // proxy's, answering from 127.0.0.1 (slirp4netns' own drop them, see
    // usernet.rs).
    let s = free_udp_ports(1);
    run("dflt", &[], &format!("127.0.0.1:{s}:9000/udp"), &[9000]);
    assert_eq!(udp_ask(s, "via-slirp").as_deref(), Some("9000:via-slirp"));
    let ps = u.ok(&["ps", "--format", "{{.Ports}}", "-f", "name=dflt"]);
    assert!(ps.contains(&format!("127.0.0.1:{s}->9000/udp")), "{ps}");
    // `--network pasta`: pasta's own UDP forward (-u). The same port
    // inside: bookworm's pasta (0.0~git20230309) loses the answers of a
    // forward from 127.0.0.1 to another port (see docs/architecture.md).
    let p = free_udp_ports(1);
    run(
        "pasta",
        &["--network", "pasta"],
        &format!("127.0.0.1:{p}:{p}/udp"),
        &[p],
    );
    assert_eq!(
        udp_ask(p, "via-pasta"),
        Some(format!("{p}:via-pasta")),
        "no echo through pasta's UDP forward"
    );

    // A user network: the port proxy's UDP sessions into the rootless
    // network namespace; a range maps port to port.
    u.ok(&["network", "create", "front"]);
    let q = free_udp_ports(1);
    run(
        "one",
        &["--network", "front"],
        &format!("127.0.0.1:{q}:9000/udp"),
        &[9000],
    );
    assert_eq!(udp_ask(q, "via-proxy").as_deref(), Some("9000:via-proxy"));
    // Two clients at once: each gets its own answer.
    let clients: Vec<std::net::UdpSocket> = (0..2)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, c) in clients.iter().enumerate() {
        c.send_to(format!("client-{i}").as_bytes(), ("127.0.0.1", q))
            .unwrap();
    }
    for (i, c) in clients.iter().enumerate().rev() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = c.recv_from(&mut buf).expect("no answer to a second client");
        assert_eq!(&buf[..n], format!("9000:client-{i}").as_bytes());
    }
    let r = free_udp_ports(2);
    run(
        "range",
        &["--network", "front"],
        &format!("127.0.0.1:{r}-{}:9000-9001/udp", r + 1),
        &[9000, 9001],
    );
    assert_eq!(udp_ask(r, "low").as_deref(), Some("9000:low"));
    assert_eq!(udp_ask(r + 1, "high").as_deref(), Some("9001:high"));
    let ps = u.ok(&["ps", "--format", "{{.Ports}}", "-f", "name=range"]);
    // docker's column: host ports other than the container's are not grouped.
    assert_eq!(
        ps.trim(),
        format!("127.0.0.1:{r}->9000/udp, 127.0.0.1:{}->9001/udp", r + 1)
    );
    // The ports are held: another container cannot take one.
    let taken = u.berth(&[
        "run",
        "--rm",
        "--network",
        "front",
        "-p",
        &format!("127.0.0.1:{q}:9000/udp"),
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&taken), 125, "{}", stderr(&taken));

    // Nothing is left: no proxy, pasta, responder or bind, and the ports
    // are free again.
    u.ok(&["rm", "-f", "dflt", "pasta", "one", "range"]);
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    for port in [s, p, q, r, r + 1] {
        assert!(
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok(),
            "udp port {port} still held"
        );
    }
    u.ok(&["network", "rm", "front"]);
}

#[test]
fn missing_network_tools_and_a_closed_tun_are_named_with_what_to_do() {
    let u = User::new("t", true);
    u.import_busybox();
    let runroot = u.runtime.join("berth");
    // A PATH with everything of the usual one but pasta and slirp4netns.
    let bin = u.path_without("bin-without-tools", &["pasta", "passt", "slirp4netns"]);
    let without = |args: &[&str]| {
        u.cmd(args)
            .env("PATH", &bin)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = without(&["run", "--rm", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "needs slirp4netns, which is not installed (as root: apt-get install slirp4netns)"
        ) && stderr(&out).contains("--network none or host"),
        "{}",
        stderr(&out)
    );
    let out = without(&["run", "--rm", "--network", "none", IMAGE, "echo", "alone"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "alone");
    assert_eq!(code(&without(&["network", "create", "inner"])), 0);
    let out = without(&["run", "--rm", "--network", "inner", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the way out of rootless berth's user-defined networks needs slirp4netns, which is not installed (as root: apt-get install slirp4netns)"),
        "{}",
        stderr(&out)
    );
    // A host that leaves /dev/net/tun to root (0600): said so, with the fix.
    struct Tun(u32);
    impl Drop for Tun {
        fn drop(&mut self) {
            let _ =
                std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(self.0));
        }
    }
    let _tun = Tun(std::fs::metadata("/dev/net/tun").unwrap().mode() & 0o7777);
    std::fs::set_permissions("/dev/net/tun", std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = u.berth(&["run", "--rm", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("needs slirp4netns, which needs /dev/net/tun, and this user cannot open it")
            && stderr(&out).contains("chmod 0666 /dev/net/tun"),
        "{}",
        stderr(&out)
    );
    let out = u.berth(&["run", "--rm", "--network", "inner", IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("which needs /dev/net/tun"),
        "{}",
        stderr(&out)
    );
    drop(_tun);
    u.ok(&["network", "rm", "inner"]);
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    u.ok(&["system", "check", "--quick"]);
}

#[test]
fn user_networks_go_out_through_pasta_without_slirp4netns_rootless() {
    let u = User::new("s", true);
    u.import_busybox();
    let runroot = u.runtime.join("berth");
    // A PATH with everything of the usual one but slirp4netns (berth
    // looks its network tools up on PATH): pasta is the way out.
    let bin = u.path_without("bin-without-slirp", &["slirp4netns"]);
    assert!(bin.join("pasta").exists(), "apt-get install passt");
    assert!(bin.join("newuidmap").exists(), "apt-get install uidmap");
    let berth = |args: &[&str]| {
        u.cmd(args)
            .env("PATH", &bin)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let out = berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}): {}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };

    // The default network of a plain run follows: pasta.
    ok(&["create", "--name", "plain", IMAGE, "true"]);
    assert_eq!(
        ok(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", "plain"]).trim(),
        "pasta"
    );
    ok(&["rm", "plain"]);
    // A published TCP port of a plain run: pasta's own forward.
    let port = free_port();
    ok(&[
        "run",
        "-d",
        "--name",
        "own",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "sh",
        "-c",
        "echo hello-own > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let body = fetch(port).expect("the published port never answered");
    assert!(body.contains("hello-own"), "{body}");
    ok(&["rm", "-f", "own"]);

    ok(&["network", "create", "front"]);
    let port = free_port();
    ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--network-alias",
        "www",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "sh",
        "-c",
        "echo hello-pasta > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    // The namespace's way out is pasta (`passt.avx2` where the CPU has
    // AVX2: pasta execs it).
    let pid = std::fs::read_to_string(runroot.join("rootless-netns.pid")).unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", pid.trim())).unwrap();
    assert!(
        comm.starts_with("pasta") || comm.starts_with("passt"),
        "{comm}"
    );
    // A published TCP port answers from the host.
    let body = fetch(port).expect("the published port never answered");
    assert!(body.contains("hello-pasta"), "{body}");
    // Names and aliases resolve on the network.
    for name in ["web", "www"] {
        let got = ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            IMAGE,
            "wget",
            "-qO-",
            &format!("http://{name}/index.html"),
        ]);
        assert_eq!(got.trim(), "hello-pasta", "by {name}");
    }

    // The last container gone, pasta and the namespace go.
    ok(&["rm", "-f", "web"]);
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    ok(&["network", "rm", "front"]);
}

#[test]
fn compose_runs_a_project_network_rootless() {
    let u = User::new("f", true);
    u.import_busybox();
    let runroot = u.runtime.join("berth");
    let port = free_port();
    let dir = u.home.join("proj");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  db:
    image: {IMAGE}
    command: ["sh", "-c", "echo from-db > /tmp/index.html; exec httpd -f -p 8000 -h /tmp"]
  app:
    image: {IMAGE}
    depends_on: [db]
    ports:
      - "127.0.0.1:{port}:80"
    command: ["sh", "-c", "mkdir /www; while ! wget -qO /www/index.html http://db:8000/index.html; do sleep 0.2; done; exec httpd -f -p 80 -h /www"]
"#
        ),
    )
    .unwrap();
    std::os::unix::fs::chown(&dir, Some(u.uid), Some(u.uid)).unwrap();
    std::os::unix::fs::chown(dir.join("compose.yaml"), Some(u.uid), Some(u.uid)).unwrap();
    let up = u
        .cmd(&["compose", "up", "-d"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(up.status.success(), "compose up: {}", stderr(&up));
    assert!(u.ok(&["network", "ls"]).contains("proj_default"));
    // The host reaches app, which fetched its page from db by name.
    let body = fetch(port).expect("the app's published port never answered");
    assert!(body.contains("from-db"), "{body}");

    let down = u
        .cmd(&["compose", "down"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(down.status.success(), "compose down: {}", stderr(&down));
    assert!(u.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(!u.ok(&["network", "ls"]).contains("proj_default"));
    let left = non_pause(&u);
    assert!(left.is_empty(), "processes left: {left:?}");
    assert!(
        netns_leftovers(&runroot).is_empty(),
        "{:?}",
        netns_leftovers(&runroot)
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn every_demo_step_runs_as_an_unprivileged_user() {
    // README's main job, `scripts/demo`, is root's; its steps are
    // `scripts/demo-steps`, run here by a user of the test's with the
    // scripts and README copied where it can read them.
    let u = User::new("e", true);
    let src = u.dir.as_ref().unwrap().path().join("src");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::create_dir_all(src.join("scripts")).unwrap();
    for f in ["scripts/demo-steps", "scripts/busybox-rootfs", "README.md"] {
        std::fs::copy(repo.join(f), src.join(f)).unwrap();
    }
    let out = u
        .as_user(std::path::Path::new("/bin/bash"))
        .arg(src.join("scripts/demo-steps"))
        .arg(&u.exe)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "demo-steps failed: {o}\n{e}");
    for shown in [
        "uid=1000(app)",
        "tick ",
        "demo-http",
        "written by the first container",
        "A /tmp/README.md",
        "hello from the build context",
        "steps cached",
        "health healthy",
        "db says: ready",
        "hello from a ConfigMap",
        "-> signature verified",
        "demo-pod",
        "-> exit code 127",
        "No problems found",
    ]
    .into_iter()
    .chain(
        // The Docker API steps, through a rootless `berth serve`, where a
        // docker CLI is installed (CI's Debian docker.io).
        ["/usr/local/bin/docker", "/usr/bin/docker"]
            .iter()
            .any(|p| std::path::Path::new(p).exists())
            .then_some(["hello from the API", "exec in ", "typed into docker run -i"])
            .into_iter()
            .flatten(),
    ) {
        assert!(o.contains(shown), "{shown:?} not shown: {o}\n{e}");
    }
    // The registry's, the API's and the build's temporary dirs are gone;
    // the rest goes with the user (system reset in its drop).
    assert!(u.ok(&["ps", "-aq"]).trim().is_empty());
    // The first step's two commands (`berth unshare … | berth import`)
    // started at once: one namespace, one pause process.
    let pauses: Vec<i32> = u
        .processes()
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "berth-pause")
        })
        .collect();
    assert_eq!(pauses.len(), 1, "pause processes: {pauses:?}");
}

#[test]
fn keep_id_keeps_the_users_ids_inside() {
    let u = User::new("k", true);
    u.import_busybox();
    let userdir = u.dir.as_ref().unwrap().path().join("keepdir");
    std::fs::create_dir(&userdir).unwrap();
    std::os::unix::fs::chown(&userdir, Some(u.uid), Some(u.uid)).unwrap();
    let bind = format!("{}:/u", userdir.display());
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; echo $HOME; touch /u/made; stat -c %u /bin/busybox /home/app; id -un; touch /tmp/t && echo tmp-ok",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    // The user's own ids inside, its passwd entry (name, HOME).
    assert_eq!(lines[0], u.uid.to_string(), "{lines:?}");
    assert_eq!(lines[1], u.uid.to_string(), "{lines:?}");
    assert_eq!(lines[2], u.home.display().to_string(), "{lines:?}");
    // The image's files keep their owners (root, 1000).
    assert_eq!(lines[3], "0", "{lines:?}");
    assert_eq!(lines[4], "1000", "{lines:?}");
    assert_eq!(lines[5], u.name, "{lines:?}");
    assert_eq!(lines[6], "tmp-ok", "{lines:?}");
    // What it writes in the user's dir is the user's on the host.
    let made = std::fs::metadata(userdir.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.uid));
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--userns=keep-id",
            "--user",
            "0",
            IMAGE,
            "id",
            "-u"
        ])
        .trim(),
        "0"
    );

    // On the default network (pasta's) too.
    assert_eq!(
        u.ok(&["run", "--rm", "--userns=keep-id", IMAGE, "id", "-u"])
            .trim(),
        u.uid.to_string()
    );

    // keep-id:uid=N,gid=N: the user is N inside; its files still the user's.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id:uid=200,gid=210",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; touch /u/made200; stat -c %u /bin/busybox",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["200", "210", "0"]
    );
    let made = std::fs::metadata(userdir.join("made200")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.uid, u.uid));

    // A detached one: exec runs as the user too, stop/start keep its files.
    u.ok(&[
        "run",
        "-d",
        "--name",
        "kid",
        "--network",
        "none",
        "--userns=keep-id",
        IMAGE,
        "sh",
        "-c",
        "echo mine > /tmp/f; exec sleep 1000",
    ]);
    assert_eq!(u.ok(&["exec", "kid", "id", "-u"]).trim(), u.uid.to_string());
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "kid"])
            .trim(),
        "keep-id"
    );
    u.ok(&["stop", "-t", "1", "kid"]);
    u.ok(&["start", "kid"]);
    assert_eq!(u.ok(&["exec", "kid", "cat", "/tmp/f"]).trim(), "mine");
    // diff and commit of its copy: the owners shifted on disk are written
    // as the image's (root's dir stays root's, the user's file the user's).
    u.ok(&["stop", "-t", "1", "kid"]);
    let diff = u.ok(&["diff", "kid"]);
    assert!(
        diff.contains("C /tmp\nA /tmp/f\n") && diff.contains("C /etc/passwd\n"),
        "{diff}"
    );
    u.ok(&["commit", "kid", "kid:1"]);
    let seen = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "kid:1",
        "stat",
        "-c",
        "%u:%g",
        "/tmp/f",
        "/tmp",
        "/bin/busybox",
    ]);
    let own = format!("{0}:{0}", u.uid);
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        [own.as_str(), "0:0", "0:0"]
    );
    u.ok(&["rm", "-f", "kid"]);
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn a_forced_copy_root_runs_keeps_and_leaves_nothing() {
    let u = User::new("v", true);
    u.import_busybox();
    // An image of several layers (a whiteout, an opaque dir, a chown),
    // built on overlay.
    let ctx = u.home.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN mkdir -p /home/old && touch /home/old/f\n\
             RUN rm /etc/group && rm -rf /home && mkdir /home && touch /home/new\n\
             RUN mkdir /app && echo built > /app/x && chown 1000:1000 /app/x\n"
        ),
    )
    .unwrap();
    u.ok(&[
        "build",
        "--network",
        "none",
        "-t",
        "app:1",
        ctx.to_str().unwrap(),
    ]);

    // Forced with the global flag: the copy is said once, with its cost.
    let out = u.berth(&[
        "--storage-driver",
        "vfs",
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "none",
        "app:1",
        "sh",
        "-c",
        "echo persisted >> /data.txt; exec sleep 1000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("vfs storage driver") && stderr(&out).contains("size on disk"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "c"])
            .trim(),
        "vfs"
    );
    assert_eq!(
        u.ok(&["--storage-driver", "vfs", "info", "-f", "{{.Driver}}"])
            .trim(),
        "vfs"
    );
    let seen = u.ok(&[
        "exec",
        "c",
        "sh",
        "-c",
        "cat /app/x; stat -c %u /app/x; ls /home; test -e /etc/group || echo no-group",
    ]);
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        ["built", "1000", "new", "no-group"]
    );
    // Persisted across stop/start.
    u.ok(&["stop", "-t", "1", "c"]);
    u.ok(&["start", "c"]);
    assert_eq!(
        u.ok(&["exec", "c", "cat", "/data.txt"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["persisted", "persisted"]
    );
    // diff walks the copy beside the image's layers; export and cp work
    // on the copy.
    assert_eq!(u.ok(&["diff", "c"]), "A /data.txt\n");
    let exported = u.berth(&["export", "c"]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let mut ar = tar::Archive::new(&exported.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.trim_start_matches("./") == "data.txt"),
        "{names:?}"
    );
    u.ok(&["stop", "-t", "1", "c"]);
    // commit makes an image of its changes, the image's owners (mapped on
    // disk) kept.
    u.ok(&["commit", "c", "kept:1"]);
    let seen = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "kept:1",
        "sh",
        "-c",
        "cat /data.txt; stat -c %u /app/x; ls /home; test -e /etc/group || echo no-group",
    ]);
    assert_eq!(
        seen.split_whitespace().collect::<Vec<_>>(),
        ["persisted", "persisted", "1000", "new", "no-group"]
    );
    u.ok(&["rmi", "kept:1"]);
    let cp_to = u.home.join("cp");
    std::fs::create_dir(&cp_to).unwrap();
    std::os::unix::fs::chown(&cp_to, Some(u.uid), Some(u.uid)).unwrap();
    u.ok(&["cp", "c:/app/x", cp_to.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(cp_to.join("x")).unwrap(), "built\n");

    // Asked for in berth.toml; said only once per state root.
    let conf = u.home.join(".config/berth");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("berth.toml"), "[storage]\ndriver = \"vfs\"\n").unwrap();
    let out = u.berth(&["run", "--rm", "--network", "none", "app:1", "cat", "/app/x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "built");
    assert!(
        !stderr(&out).contains("vfs storage driver"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(u.home.join(".config")).unwrap();

    // Not asked for: overlay, as this kernel mounts it in the namespace
    // (the probe's answer, kept in the runroot); where the probe found
    // overlayfs refused, a copy by itself.
    let probe = u.runtime.join("berth/overlay-probe");
    assert_eq!(std::fs::read_to_string(&probe).unwrap(), "ok");
    u.ok(&["create", "--name", "ov", "--network", "none", "app:1"]);
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "ov"])
            .trim(),
        "overlay2"
    );
    std::fs::write(
        &probe,
        "refused: mounting the root filesystem: Operation not permitted",
    )
    .unwrap();
    u.ok(&[
        "create",
        "--name",
        "fallback",
        "--network",
        "none",
        "app:1",
        "cat",
        "/app/x",
    ]);
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "fallback"])
            .trim(),
        "vfs"
    );
    assert_eq!(
        u.ok(&["start", "-a", "fallback"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["built"]
    );
    std::fs::remove_file(&probe).unwrap();
    u.ok(&["rm", "ov", "fallback"]);

    // rm leaves nothing of the copy.
    let cid = u.ok(&["inspect", "-f", "{{.Id}}", "c"]).trim().to_string();
    u.ok(&["rm", "-f", "c"]);
    let root = u.home.join(".local/share/berth");
    let mut left = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(&cid) || name == "data.txt" {
                left.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_rootless_servers_first_container_gets_an_overlay_root_and_attaches() {
    // The first container of a boot made through `berth serve` (a
    // threaded process, where the overlay probe's helper cannot fork)
    // still gets overlayfs, and its attach socket — under a runroot whose
    // path with the container's id is past a unix socket address's 107
    // bytes, as the harness's is — answers.
    let u = User::new("f", true);
    u.import_busybox();
    let sock = u.runtime.join("api.sock");
    assert!(
        u.runtime
            .join("berth")
            .join("x".repeat(64) + ".sock")
            .as_os_str()
            .len()
            > 107,
        "the harness's runroot is too short to test long socket paths"
    );
    let _ = std::fs::remove_file(u.runtime.join("berth/overlay-probe"));
    let mut serve = u
        .cmd(&["serve", "-H", &format!("unix://{}", sock.display())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let post = |path: &str, body: &str| -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    };
    let created = post(
        "/v1.41/containers/create?name=first",
        &format!(r#"{{"Image":"{IMAGE}","Cmd":["sh","-c","echo attached"]}}"#),
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "first"])
            .trim(),
        "overlay2"
    );
    assert_eq!(
        std::fs::read_to_string(u.runtime.join("berth/overlay-probe")).unwrap(),
        "ok"
    );
    // Attached before the start, as `docker run` does: the output comes
    // through the monitor's attach socket.
    let (upgraded_tx, upgraded) = std::sync::mpsc::channel();
    let attach = std::thread::spawn({
        let sock = sock.clone();
        move || {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            s.write_all(
                b"POST /v1.41/containers/first/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            )
            .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !got.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
                got.push(byte[0]);
            }
            upgraded_tx
                .send(String::from_utf8_lossy(&got).into_owned())
                .unwrap();
            let _ = s.read_to_end(&mut got);
            String::from_utf8_lossy(&got).into_owned()
        }
    });
    let head = upgraded.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let started = post("/v1.41/containers/first/start", "");
    assert!(started.starts_with("HTTP/1.1 204"), "{started}");
    let out = attach.join().unwrap();
    assert!(out.contains("attached"), "attach gave: {out:?}");
    u.ok(&["rm", "-f", "first"]);
    let _ = serve.kill();
    let _ = serve.wait();
}

/// Paths under the user's state root whose name holds one of `ids`.
fn left_of(u: &User, ids: &[&str]) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let mut stack = vec![u.home.join(".local/share/berth")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ids.iter().any(|id| name.contains(id)) {
                left.push(e.path());
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    left
}

#[test]
fn uidmap_maps_the_containers_ids_into_the_users_namespace() {
    let u = User::new("m", true);
    u.import_busybox();
    let userdir = u.dir.as_ref().unwrap().path().join("mapdir");
    std::fs::create_dir(&userdir).unwrap();
    std::os::unix::fs::chown(&userdir, Some(u.uid), Some(u.uid)).unwrap();
    // The container's root is no id of the user's: it may write here
    // because the dir is open to all.
    std::fs::set_permissions(&userdir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = format!("{}:/u", userdir.display());
    // An idmapped bind is beyond a user's power: refused, saying so, not
    // ignored.
    let out = u.berth(&[
        "run",
        "--rm",
        "--uidmap",
        "0:1:2000",
        "-v",
        &format!("{bind}:idmap"),
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/u: rootless berth cannot idmap a bind mount")
            && stderr(&out).contains(":U"),
        "{}",
        stderr(&out)
    );
    // HOST ids are the namespace's: 1 is the user's first subordinate id.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:1:2000",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "id -u; id -g; touch /u/made; stat -c '%u %g' /bin/busybox /home/app; cat /proc/self/uid_map /proc/self/gid_map; echo x > /etc/hosts && echo hosts-ok",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "0",
            "0",
            // The image's owners kept inside (0 and 1000).
            "0 0",
            "1000 1000",
            // The map as given; only --uidmap given: the gid map the same.
            "0 1 2000",
            "0 1 2000",
            "hosts-ok"
        ],
        "{}",
        stderr(&out)
    );
    // What it made in the user's dir is the mapped subordinate id's.
    let made = std::fs::metadata(userdir.join("made")).unwrap();
    assert_eq!((made.uid(), made.gid()), (u.sub_start, u.sub_start));

    // Ids the map leaves out are nobody inside (podman's overflow id);
    // --gidmap apart from --uidmap.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:1:1000",
        "--gidmap",
        "0:1:2000",
        IMAGE,
        "stat",
        "-c",
        "%u %g",
        "/home/app",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "65534 1000");

    // A new named volume is given to the container's root (podman
    // chowns it): it may write there; the files are the mapped id's.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:1:2000",
        "-v",
        "mapvol:/data",
        IMAGE,
        "sh",
        "-c",
        "touch /data/x && stat -c '%u %g' /data /data/x",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["0 0", "0 0"],
        "{}",
        stderr(&out)
    );
    u.ok(&["volume", "rm", "mapvol"]);

    // podman's nomap: every subordinate id, the user none of them.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=nomap",
        IMAGE,
        "sh",
        "-c",
        "id -u; stat -c %u /home/app; cat /proc/self/uid_map",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "1000", "0", "1", &SUBID_COUNT.to_string()]
    );

    // A detached one on the default network (slirp4netns' namespace,
    // which belongs to berth's user namespace: joined before the nested
    // one is made) with a published port its root binds below 1024: inspect
    // shows the maps, the port answers, exec and stop/start work.
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let id = u
        .ok(&[
            "run",
            "-d",
            "--name",
            "mapped",
            "-p",
            &publish,
            "--uidmap",
            "0:100:1000",
            IMAGE,
            "sh",
            "-c",
            "echo kept > /tmp/f; mkdir /www; echo mapped-page > /www/index.html; exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    let body = fetch(port).expect("the mapped container's published port never answered");
    assert!(body.contains("mapped-page"), "{body}");
    // exec joins slirp4netns' namespace before the container's user
    // namespace: its tap0 is there.
    assert!(
        u.ok(&["exec", "mapped", "ip", "-4", "addr"])
            .contains("tap0"),
        "no tap0 in the container's network namespace"
    );
    assert_eq!(
        u.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.UsernsMode}} {{.HostConfig.IDMappings.UidMap}} {{.HostConfig.IDMappings.GidMap}}",
            "mapped"
        ])
        .trim(),
        "private [0:100:1000] [0:100:1000]"
    );
    // Its processes are the mapped subordinate id's on the host.
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "mapped"])
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let host_uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(host_uid, (u.sub_start + 99).to_string());
    assert_eq!(u.ok(&["exec", "mapped", "id", "-u"]).trim(), "0");
    // cp gives what it copies in to the container's root.
    let src = u.home.join("cp-src");
    std::fs::write(&src, "in").unwrap();
    std::os::unix::fs::chown(&src, Some(u.uid), Some(u.uid)).unwrap();
    u.ok(&["cp", src.to_str().unwrap(), "mapped:/tmp/in"]);
    assert_eq!(
        u.ok(&["exec", "mapped", "stat", "-c", "%u %g", "/tmp/in"])
            .trim(),
        "0 0"
    );
    u.ok(&["stop", "-t", "1", "mapped"]);
    u.ok(&["start", "mapped"]);
    assert_eq!(u.ok(&["exec", "mapped", "cat", "/tmp/f"]).trim(), "kept");

    // Ids past the namespace are refused saying what they are.
    let out = u.berth(&["run", "--rm", "--uidmap", "0:100000:10", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("HOST ids are ids of that namespace (0 is you, 1..65536"),
        "{}",
        stderr(&out)
    );

    // Its diff is overlay's (the owners compared as it sees them).
    assert_eq!(
        u.ok(&["diff", "mapped"]).lines().collect::<Vec<_>>(),
        [
            "C /tmp",
            "A /tmp/f",
            "A /tmp/in",
            "A /www",
            "A /www/index.html"
        ]
    );

    // rm leaves nothing of the copy.
    u.ok(&["rm", "-f", "mapped"]);
    let left = left_of(&u, &[&id]);
    assert!(left.is_empty(), "left behind: {left:?}");
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn auto_gives_rootless_containers_disjoint_ranges_and_rm_frees_them() {
    let u = User::new("a", true);
    u.import_busybox();
    let maps = |name: &str| {
        u.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.UsernsMode}} {{.HostConfig.IDMappings.UidMap}} {{.HostConfig.IDMappings.GidMap}}",
            name,
        ])
        .trim()
        .to_string()
    };
    let create = |name: &str, mode: &str| {
        u.berth(&[
            "create",
            "--name",
            name,
            "--network",
            "none",
            mode,
            IMAGE,
            "sleep",
            "1000",
        ])
    };
    let a = create("a", "--userns=auto:size=2000");
    assert!(a.status.success(), "{}", stderr(&a));
    let b = create("b", "--userns=auto:size=2000");
    assert!(b.status.success(), "{}", stderr(&b));
    // From the namespace's ids but its 0 (the user): 1.. first.
    assert_eq!(maps("a"), "auto:size=2000 [0:1:2000] [0:1:2000]");
    assert_eq!(maps("b"), "auto:size=2000 [0:2001:2000] [0:2001:2000]");

    // What does not fit is refused with what to do.
    let refused = |mode: &str| u.berth(&["run", "--rm", "--network", "none", mode, IMAGE, "true"]);
    let whole = refused("--userns=auto");
    assert_eq!(code(&whole), 125, "{}", stderr(&whole));
    assert!(
        stderr(&whole)
            .contains("no free range of 65536 uids is left in rootless berth's user namespace"),
        "{}",
        stderr(&whole)
    );
    let big = refused("--userns=auto:size=70000");
    assert_eq!(code(&big), 125, "{}", stderr(&big));
    assert!(
        stderr(&big).contains("has 65536 uids to give"),
        "{}",
        stderr(&big)
    );

    // b runs in its range: root inside, the range's first id on the host,
    // the image's owners kept.
    u.ok(&["start", "b"]);
    assert_eq!(
        u.ok(&[
            "exec",
            "b",
            "sh",
            "-c",
            "id -u; stat -c %u /home/app; cat /proc/self/uid_map"
        ])
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["0", "1000", "0", "2001", "2000"]
    );
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "b"])
        .trim()
        .parse()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.lines().any(|l| l.starts_with("Uid:")
            && l.split_whitespace().nth(1) == Some(&(u.sub_start + 2000).to_string())),
        "{status}"
    );

    // a's range is free once it is removed, and the next one gets it.
    let a_id = u.ok(&["inspect", "-f", "{{.Id}}", "a"]).trim().to_string();
    u.ok(&["rm", "a"]);
    let c = create("c", "--userns=auto:size=2000");
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(maps("c"), "auto:size=2000 [0:1:2000] [0:1:2000]");
    assert_eq!(
        u.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--userns=auto:size=500",
            IMAGE,
            "cat",
            "/proc/self/uid_map"
        ])
        .split_whitespace()
        .collect::<Vec<_>>(),
        ["0", "4001", "500"]
    );

    // Nothing of them is left after rm.
    let ids: Vec<String> = ["b", "c"]
        .iter()
        .map(|n| u.ok(&["inspect", "-f", "{{.Id}}", n]).trim().to_string())
        .collect();
    u.ok(&["rm", "-f", "b", "c"]);
    let all: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .chain([a_id.as_str()])
        .collect();
    let left = left_of(&u, &all);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(u.ok(&["ps", "-aq"]).trim().is_empty());

    // compose's userns_mode takes the same path: the freed ids again.
    let dir = u.home.join("proj");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"services:
  s:
    image: {IMAGE}
    network_mode: none
    userns_mode: "auto:size=300"
    command: ["sh", "-c", "trap exit TERM; sleep 1000 & wait"]
"#
        ),
    )
    .unwrap();
    for p in [dir.clone(), dir.join("compose.yaml")] {
        std::os::unix::fs::chown(p, Some(u.uid), Some(u.uid)).unwrap();
    }
    let compose = |args: &[&str]| {
        let out = u.cmd(args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    compose(&["compose", "up", "-d"]);
    let cid = u.ok(&["ps", "-q"]).trim().to_string();
    assert_eq!(maps(&cid), "auto:size=300 [0:1:300] [0:1:300]");
    compose(&["compose", "down"]);
    assert!(u.ok(&["ps", "-aq"]).trim().is_empty());
    let left = left_of(&u, &[&cid]);
    assert!(left.is_empty(), "left behind: {left:?}");
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// The same steps in a container of `mode` (rootless berth's own ids
/// when empty): a file made by root and one by uid 1000 (exec -u), an
/// image file chowned, one deleted; stopped, its `diff`, then committed
/// as `image`. Returns the diff and the container's id.
fn change_and_commit(
    u: &User,
    name: &str,
    mode: &[&str],
    image: &str,
    driver: &str,
) -> (String, String) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(mode);
    args.extend_from_slice(&[
        IMAGE,
        "sh",
        "-c",
        "touch /root-made && chown 1000:1000 /bin/not-executable && rm /etc/group && exec sleep 1000",
    ]);
    let id = u.ok(&args).trim().to_string();
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", name])
            .trim(),
        driver
    );
    u.ok(&["exec", "-u", "1000", name, "touch", "/home/app/mine"]);
    // What the container's processes see.
    assert_eq!(
        u.ok(&[
            "exec",
            name,
            "stat",
            "-c",
            "%n %u %g",
            "/root-made",
            "/home/app/mine",
            "/bin/not-executable",
            "/bin/busybox",
        ])
        .lines()
        .collect::<Vec<_>>(),
        [
            "/root-made 0 0",
            "/home/app/mine 1000 1000",
            "/bin/not-executable 1000 1000",
            "/bin/busybox 0 0"
        ],
        "{mode:?}"
    );
    u.ok(&["stop", "-t", "1", name]);
    let diff = u.ok(&["diff", name]);
    // export writes the owners it sees too (podman maps them back).
    let out = u.berth(&["export", name]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    let mut owners = std::collections::BTreeMap::new();
    for e in tar::Archive::new(&out.stdout[..]).entries().unwrap() {
        let e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let path = path.trim_start_matches("./").trim_end_matches('/');
        owners.insert(
            path.to_string(),
            (e.header().uid().unwrap(), e.header().gid().unwrap()),
        );
    }
    for (path, want) in [
        ("root-made", (0, 0)),
        ("home/app/mine", (1000, 1000)),
        ("home/app", (1000, 1000)),
        ("bin/not-executable", (1000, 1000)),
        ("bin/busybox", (0, 0)),
    ] {
        assert_eq!(owners.get(path), Some(&want), "{path} in {mode:?}'s export");
    }
    assert!(!owners.contains_key("etc/group"), "{mode:?}");
    // cp to a tar as well.
    let out = u.berth(&["cp", &format!("{name}:/home/app"), "-"]);
    assert!(out.status.success(), "cp: {}", stderr(&out));
    let owners: Vec<(String, u64, u64)> = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let path = e.path().unwrap().display().to_string();
            (path, h.uid().unwrap(), h.gid().unwrap())
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("app/".to_string(), 1000, 1000),
            ("app/mine".to_string(), 1000, 1000)
        ],
        "{mode:?}"
    );
    // cp -a to the user's dir keeps them: the container's 1000 is the
    // namespace's 1000, the user's subordinate id 999 above the start.
    let dest = u.home.join(format!("cp-{name}"));
    u.ok(&[
        "cp",
        "-a",
        &format!("{name}:/home/app"),
        dest.to_str().unwrap(),
    ]);
    let m = std::fs::metadata(dest.join("mine")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (u.sub_start + 999, u.sub_start + 999),
        "{mode:?}"
    );
    u.ok(&["unshare", "rm", "-r", dest.to_str().unwrap()]);
    u.ok(&["commit", name, image]);
    (diff, id)
}

#[test]
fn diff_and_commit_of_mapped_containers_keep_the_containers_owners() {
    let u = User::new("c", true);
    u.import_busybox();
    // The reference: a container in berth's own ids (overlay's diff).
    let (want, plain) = change_and_commit(&u, "plain", &[], "plain:1", "overlay2");
    assert_eq!(
        want.lines().collect::<Vec<_>>(),
        [
            "C /bin",
            "C /bin/not-executable",
            "C /etc",
            "D /etc/group",
            "C /home",
            "C /home/app",
            "A /home/app/mine",
            "A /root-made"
        ]
    );
    let mut ids = vec![plain];
    let modes: [&[&str]; 3] = [
        &["--uidmap", "0:1:2000"],
        &["--userns=auto"],
        &["--userns=nomap"],
    ];
    for (i, mode) in modes.iter().enumerate() {
        let (name, image) = (format!("m{i}"), format!("mapped:{i}"));
        let (diff, id) = change_and_commit(&u, &name, mode, &image, "vfs");
        assert_eq!(diff, want, "{mode:?}");
        // (Gone first: its range is free for the next `auto`.)
        u.ok(&["rm", "-f", &name]);
        // The committed layer holds the ids the container saw, not the
        // shifted ones its copy stores: a run of it (berth's own ids, and
        // the same map again) sees 0 and 1000, the deleted file gone.
        for run_mode in [&[][..], *mode] {
            let mut args = vec!["run", "--rm", "--network", "none"];
            args.extend_from_slice(run_mode);
            args.extend_from_slice(&[
                &image,
                "sh",
                "-c",
                "stat -c '%n %u %g' /root-made /home/app/mine /bin/not-executable /bin/busybox; ls /etc",
            ]);
            assert_eq!(
                u.ok(&args).lines().collect::<Vec<_>>(),
                [
                    "/root-made 0 0",
                    "/home/app/mine 1000 1000",
                    "/bin/not-executable 1000 1000",
                    "/bin/busybox 0 0",
                    "hostname",
                    "hosts",
                    "passwd",
                    "resolv.conf"
                ],
                "{mode:?} then {run_mode:?}"
            );
        }
        ids.push(id);
    }
    // An image id a map leaves out (1000 here) is nobody inside and no
    // change: an untouched container's diff is empty, as overlay's.
    u.ok(&[
        "create",
        "--name",
        "narrow",
        "--network",
        "none",
        "--uidmap",
        "0:1:1000",
        IMAGE,
        "true",
    ]);
    assert_eq!(u.ok(&["diff", "narrow"]), "");
    ids.push(
        u.ok(&["inspect", "-f", "{{.Id}}", "narrow"])
            .trim()
            .to_string(),
    );
    u.ok(&["rm", "-f", "plain", "narrow"]);
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let left = left_of(&u, &all);
    assert!(left.is_empty(), "left behind: {left:?}");
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn a_run_whose_create_fails_ends_its_early_network() {
    // `berth run --network pasta` starts pasta before the create (its
    // start then overlaps the create's): a create that fails ends it and
    // unbinds its namespace, and the running container's own is untouched.
    let u = User::new("g", true);
    u.import_busybox();
    u.ok(&[
        "run",
        "-d",
        "--name",
        "n1",
        "--network",
        "pasta",
        IMAGE,
        "sleep",
        "60",
    ]);
    let tools = || {
        u.processes()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                    let state = s.rfind(')').map(|i| &s[i + 2..i + 3]);
                    (s.contains("(pasta") || s.contains("(passt")) && state != Some("Z")
                })
            })
            .count()
    };
    let settled = |want: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tools() != want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        tools()
    };
    let netns = u.runtime.join("berth/netns");
    let files = |dir: &std::path::Path, suffix: &str| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(settled(1), 1);
    let conflict = u.berth(&[
        "run",
        "--rm",
        "--name",
        "n1",
        "--network",
        "pasta",
        IMAGE,
        "true",
    ]);
    assert_eq!(conflict.status.code(), Some(125), "{}", stderr(&conflict));
    assert!(
        stderr(&conflict).contains("is already in use"),
        "{}",
        stderr(&conflict)
    );
    assert_eq!(settled(1), 1, "the early pasta was left running");
    assert_eq!(files(&netns, ""), 1);
    assert_eq!(files(&u.runtime.join("berth"), ".net.pid"), 1);
    assert_eq!(
        u.ok(&[
            "exec",
            "n1",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -c inet"
        ])
        .trim(),
        "1"
    );
    // A plain run on the early network reaches its gateway's address.
    let addr = u.ok(&[
        "run",
        "--rm",
        "--network",
        "pasta",
        IMAGE,
        "sh",
        "-c",
        "ip -4 route | grep -c default",
    ]);
    assert_eq!(addr.trim(), "1");
    u.ok(&["rm", "-f", "n1"]);
    assert_eq!(settled(0), 0);
    assert_eq!(files(&netns, ""), 0);
    assert_eq!(files(&u.runtime.join("berth"), ".net.pid"), 0);
}

/// Rootless `--userns=auto:uidmapping=…` (HOST ids are ids of berth's
/// namespace) and `--userns=container:NAME` (the donor's nested user
/// namespace, with its network namespace: localhost shared).
#[test]
fn auto_uidmapping_and_userns_container_rootless() {
    let u = User::new("j", true);
    u.import_busybox();
    let userdir = u.dir.as_ref().unwrap().path().join("joindir");
    std::fs::create_dir(&userdir).unwrap();
    std::os::unix::fs::chown(&userdir, Some(u.uid), Some(u.uid)).unwrap();
    std::fs::set_permissions(&userdir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = format!("{}:/u", userdir.display());
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    // The container's root is the namespace's 5000 (forced), the rest of
    // 0..100 the first free ids; the gid map all auto.
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=auto:uidmapping=0:5000:1,size=100",
        "-v",
        &bind,
        IMAGE,
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /u/forced",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        lines(&stdout(&out)),
        ["1 1 99", "0 5000 1", "0 1 100", "0"],
        "{}",
        stderr(&out)
    );
    let md = std::fs::metadata(userdir.join("forced")).unwrap();
    assert_eq!(md.uid(), u.sub_start + 4999);
    let bad = u.berth(&["run", "--rm", "--userns=auto:uidmapping=x", IMAGE, "true"]);
    assert_eq!(code(&bad), 125, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("UID setting is malformed"),
        "{}",
        stderr(&bad)
    );
    // Past the namespace's ids: refused with what to do.
    let far = u.berth(&[
        "run",
        "--rm",
        "--userns=auto:uidmapping=0:70000:1",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&far), 125, "{}", stderr(&far));
    assert!(stderr(&far).contains("goes past"), "{}", stderr(&far));

    // A donor in a user namespace of its own, serving on its localhost.
    u.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--userns=auto:size=2000",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let donor_id = u
        .ok(&["inspect", "-f", "{{.Id}}", "donor"])
        .trim()
        .to_string();
    u.ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--userns=container:donor",
        "--network",
        "container:donor",
        "-v",
        &bind,
        IMAGE,
        "sleep",
        "1000",
    ]);
    assert_eq!(
        u.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "joiner"])
            .trim(),
        format!("container:{donor_id}")
    );
    let ns = |name: &str, kind: &str| {
        let p = format!("/proc/self/ns/{kind}");
        u.ok(&["exec", name, "readlink", &p]).trim().to_string()
    };
    for kind in ["user", "net"] {
        assert_eq!(ns("joiner", kind), ns("donor", kind), "{kind}");
    }
    assert_eq!(
        lines(&u.ok(&[
            "exec",
            "joiner",
            "sh",
            "-c",
            "cat /proc/self/uid_map; id -u; stat -c %u /home/app"
        ])),
        ["0 1 2000", "0", "1000"]
    );
    let page = u.ok(&[
        "exec",
        "joiner",
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/hostname",
    ]);
    assert_eq!(page.trim(), u.ok(&["exec", "donor", "hostname"]).trim());
    u.ok(&["exec", "joiner", "touch", "/u/joined"]);
    let md = std::fs::metadata(userdir.join("joined")).unwrap();
    assert_eq!(md.uid(), u.sub_start);
    // ns:PATH, the donor's namespace by its path.
    let pid = u.ok(&["inspect", "-f", "{{.State.Pid}}", "donor"]);
    let by_path = format!("--userns=ns:/proc/{}/ns/user", pid.trim());
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &by_path,
        IMAGE,
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(lines(&out), ["0 1 2000"]);
    // A namespace of its own cannot share the donor's network namespace.
    let mixed = u.berth(&[
        "run",
        "--rm",
        "--userns=auto:size=100",
        "--network",
        "container:donor",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&mixed), 125, "{}", stderr(&mixed));
    assert!(
        stderr(&mixed).contains("user namespace of its own cannot use --network container:"),
        "{}",
        stderr(&mixed)
    );
    let ids: Vec<String> = ["donor", "joiner"]
        .iter()
        .map(|n| u.ok(&["inspect", "-f", "{{.Id}}", n]).trim().to_string())
        .collect();
    u.ok(&["rm", "-f", "joiner", "donor"]);
    assert!(u.ok(&["ps", "-aq"]).trim().is_empty());
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    let left = left_of(&u, &all);
    assert!(left.is_empty(), "left behind: {left:?}");
    u.ok(&["system", "reset", "-f"]);
    let left = u.wait_no_processes();
    assert!(left.is_empty(), "processes left: {left:?}");
}
