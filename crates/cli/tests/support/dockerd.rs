//! A dockerd of the test's own, in a network namespace of the test's own
//! (its data root, exec root, socket and cgroup parent removed at the
//! end), for tests that drive the docker CLI against berth's servers
//! (included with `#[path]`; the same helpers as network_docker.rs).
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::common::{stderr, stdout};

pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";

pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

pub fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// A network namespace of the test's own (`ip netns add`), entered with
/// `nsenter --net` only (mounts, /sys and cgroups stay the host's).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        must(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.sh_ok("ip link set lo up");
        ns
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command run inside.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path())).arg(program);
        c
    }

    pub fn sh(&self, script: &str) -> Output {
        self.cmd("sh").args(["-c", script]).output().unwrap()
    }

    pub fn sh_ok(&self, script: &str) -> String {
        let o = self.sh(script);
        assert!(
            o.status.success(),
            "in {}: {script}: {}{}",
            self.name,
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// A dockerd of the test's own inside `ns`, with its own data root, exec
/// root, socket and cgroup parent; stopped and wiped on drop.
pub struct Dockerd {
    child: Child,
    dir: PathBuf,
    cgroup: String,
}

impl Dockerd {
    pub fn start(ns: &Netns, dir: &Path, extra: &[&str]) -> Dockerd {
        let cgroup = format!("berth-it-docker-{}", std::process::id());
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = ns
            .cmd(DOCKERD)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args([
                "--ip6tables=false",
                "--cgroup-parent",
                &format!("/{cgroup}"),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Dockerd {
            child,
            dir: dir.to_path_buf(),
            cgroup,
        };
        for _ in 0..300 {
            if d.docker(&["version"]).status.success() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "dockerd did not come up: {}",
            std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
    }

    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"));
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let out = self.docker(&["ps", "-aq"]);
        for id in stdout(&out).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let data = self.dir.join("data");
        let _ = sh(&format!(
            "umount -R {d} 2>/dev/null; grep -q ' {d}' /proc/mounts && umount -R -l {d}; rm -rf {d} {e}",
            d = data.display(),
            e = self.dir.join("exec").display()
        ));
        let _ = sh(&format!(
            "for d in /sys/fs/cgroup/*/{c}; do [ -d \"$d\" ] && find \"$d\" -depth -type d -exec rmdir {{}} +; done",
            c = self.cgroup
        ));
    }
}
