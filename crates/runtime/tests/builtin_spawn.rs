//! Root test of the built-in start path without the engine: a busybox
//! rootfs as the overlay's lower dir, a hand-written OCI spec, and checks of
//! what the container sees. `harness = false`: forking needs a
//! single-threaded process, which libtest's runner is not.
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use runtime::{Overlay, Runtime, SpawnRequest};

fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for app in ["sh", "cat", "hostname", "ls", "grep", "wc", "echo", "id"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(app)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
}

fn spec(
    rootfs: &Path,
    args: &[&str],
    cwd: &str,
    change: &dyn Fn(&mut serde_json::Value),
) -> oci_spec::runtime::Spec {
    let caps = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"];
    let v = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": false},
        "hostname": "spawned",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin"],
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}],
            "maskedPaths": ["/proc/timer_list"],
            "readonlyPaths": ["/proc/sys"],
        },
    });
    let mut v = v;
    change(&mut v);
    serde_json::from_value(v).unwrap()
}

fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    run_in(dir, args, "/")
}

fn run_in(dir: &Path, args: &[&str], cwd: &str) -> (i32, String) {
    run_with(dir, args, cwd, &|_| {})
}

fn run_with(
    dir: &Path,
    args: &[&str],
    cwd: &str,
    change: &dyn Fn(&mut serde_json::Value),
) -> (i32, String) {
    let ov = Overlay {
        lower: vec![dir.join("lower")],
        upper: dir.join("upper"),
        work: dir.join("work"),
        copy: None,
    };
    let (r, w) = nix::unistd::pipe().unwrap();
    let null = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let spec = spec(&dir.join("rootfs"), args, cwd, change);
    let w2 = w.try_clone().unwrap();
    let spawned = runtime::builtin::Builtin.spawn(SpawnRequest {
        id: "test",
        spec: &spec,
        bundle: dir,
        overlay: &ov,
        stdio: [null, w, w2],
        seccomp_bpf: None,
        before_release: &|_| Ok(()),
        exec_gate: None,
    });
    let spawned = match spawned {
        Ok(s) => s,
        Err(e) => return (e.exit_code(), e.to_string()),
    };
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    let status =
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(spawned.wait_pid), None).unwrap();
    let code = match status {
        nix::sys::wait::WaitStatus::Exited(_, c) => c,
        other => panic!("unexpected {other:?}"),
    };
    (code, out)
}

fn main() {
    assert!(nix::unistd::geteuid().is_root(), "builtin_spawn needs root");
    let dir = tempfile::Builder::new()
        .prefix("berth-rt-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for d in ["lower", "upper", "work", "rootfs"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    busybox_rootfs(&dir.path().join("lower"));

    let (code, out) = run(
        dir.path(),
        &["sh", "-c", "echo pid=$$; hostname; grep CapEff /proc/self/status; wc -c < /proc/timer_list; echo x > /proc/sys/kernel/domainname || echo ro; ls /dev; exit 7"],
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("spawned\n"), "{out}");
    assert!(out.contains("CapEff:\t00000000000000e1"), "{out}");
    assert!(
        out.contains("\n0\n"),
        "masked /proc/timer_list reads empty: {out}"
    );
    assert!(out.contains("ro\n"), "/proc/sys is read-only: {out}");
    assert!(out.contains("null"), "{out}");

    let (code, out) = run(dir.path(), &["does-not-exist"]);
    assert_eq!(code, 127, "{out}");
    assert!(out.contains("does-not-exist"), "{out}");
    let (code, _) = run(dir.path(), &["/etc/passwd"]);
    assert_eq!(code, 126);
    // runc's CVE-2024-21626: a host directory held open (not close-on-exec)
    // by the process that starts the container, named as the working dir
    // through /proc/self/fd, must not become the container's cwd (from
    // there `..` walks up the host's tree).
    let host_dir = nix::fcntl::open(
        dir.path(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let cwd = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&host_dir)
    );
    let (code, out) = run_in(
        dir.path(),
        &["sh", "-c", "ls; ls ../../../../../../..; echo escaped"],
        &cwd,
    );
    drop(host_dir);
    assert!(
        !out.contains("escaped"),
        "landed outside the container: {out}"
    );
    assert_eq!(code, 126, "{out}");
    assert!(out.contains("outside the container"), "{out}");
    // runc's CVE-2025-31133: masks are bind mounts of /dev/null; an image
    // whose /dev/null is a symlink to a /proc/sys file (no /dev tmpfs over
    // it) would bind that file over the masked path, readable and writable.
    // The null device is checked (1:3) or the start refused.
    let lower_dev = dir.path().join("lower/dev");
    std::fs::create_dir_all(&lower_dev).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/hostname", lower_dev.join("null")).unwrap();
    let (code, out) = run_with(
        dir.path(),
        &["sh", "-c", "echo masked=$(cat /proc/timer_list)"],
        "/",
        &|v| {
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/dev");
            v["linux"]["devices"] = serde_json::json!([]);
        },
    );
    std::fs::remove_dir_all(&lower_dev).unwrap();
    assert!(
        !out.contains("masked=spawned"),
        "mask bound to a /proc/sys file: {out}"
    );
    assert_eq!(code, 125, "{out}");
    assert!(out.contains("not the null device"), "{out}");
    // The overlay lived in the container's mount namespace only.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(dir.path().to_str().unwrap()),
        "overlay leaked onto the host"
    );
    println!("builtin_spawn: ok");
}
