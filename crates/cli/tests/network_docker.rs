//! berth's networks beside Docker (root, Debian's docker.io): a dockerd of
//! the test's own, in a network namespace of the test's own, sets the
//! `FORWARD` policy to `DROP` and makes `DOCKER-USER` there, as on a host
//! where Docker runs; berth, in the same namespace, still connects its
//! containers, publishes ports and forwards out, while Docker's isolation
//! stays. Nothing of the host's network is touched: both namespaces, the
//! dockerd (data root, exec root, socket, cgroup parent) and their rules
//! go at the end.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::*;

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";

fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().unwrap()
}

fn must(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(o.status.success(), "{cmd}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// A network namespace of the test's own (`ip netns add`), entered with
/// `nsenter --net` only (mounts, /sys and cgroups stay the host's).
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: String) -> Netns {
        let _ = sh(&format!("ip netns del {name} 2>/dev/null"));
        must(&format!("ip netns add {name}"));
        let ns = Netns { name };
        ns.sh_ok("ip link set lo up");
        ns
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command run inside.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path())).arg(program);
        c
    }

    fn sh(&self, script: &str) -> Output {
        self.cmd("sh").args(["-c", script]).output().unwrap()
    }

    fn sh_ok(&self, script: &str) -> String {
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
struct Dockerd {
    child: Child,
    dir: PathBuf,
    cgroup: String,
}

impl Dockerd {
    fn start(ns: &Netns, dir: &Path) -> Dockerd {
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

    fn docker_cmd(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .env("DOCKER_CONFIG", self.dir.join("cli"));
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn docker_ok(&self, args: &[&str]) -> String {
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

/// A child killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// berth inside `ns`, with the state of `b`.
fn berth_in(b: &Berth, ns: &Netns, args: &[&str]) -> Output {
    let probe = b.cmd();
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_berth"));
    for (k, v) in probe.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.args(args).stdin(Stdio::null()).output().unwrap()
}

fn berth_ok(b: &Berth, ns: &Netns, args: &[&str]) -> String {
    let o = berth_in(b, ns, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed ({}): {}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Whether `wget URL` succeeds within 3 s from a berth container run with
/// `args` (`run … IMAGE`).
fn reaches(b: &Berth, ns: &Netns, args: &[&str], url: &str) -> bool {
    let mut a = args.to_vec();
    let script = format!("timeout 3 wget -q -O - {url} 2>&1; echo rc=$?");
    a.extend(["sh", "-c", &script]);
    let out = berth_ok(b, ns, &a);
    out.trim_end().ends_with("rc=0")
}

/// The `filter` table of iptables-nft inside `ns`.
fn filter_rules(ns: &Netns) -> String {
    ns.sh_ok("iptables-nft -w -t filter -S")
}

/// What a test needs: berth (state of its own), the namespace it and a
/// dockerd of the test's own live in, and another host linked to it by a
/// veth (10.252.40.1 here, 10.252.40.2 there) serving `other-host` on port
/// 80. On drop: berth's containers and rules, then dockerd, then the rest.
struct Scene {
    dockerd: Option<Dockerd>,
    _server: Killed,
    other: Netns,
    ns: Netns,
    b: Berth,
    _www: tempfile::TempDir,
}

impl Scene {
    fn new(name: &str) -> Scene {
        require_root();
        for bin in [DOCKERD, DOCKER, "/usr/sbin/iptables-nft"] {
            assert!(
                Path::new(bin).exists(),
                "{bin} missing: apt-get install docker.io iptables (the test starts its own \
                 dockerd in a network namespace of its own; Docker's service is not used)"
            );
        }
        let b = Berth::new();
        let tag = format!("{name}{:x}", std::process::id());
        let ns = Netns::new(format!("berth-dk-{tag}"));
        let other = Netns::new(format!("berth-dko-{tag}"));
        must(&format!(
            "ip link add tdh{tag} netns {} type veth peer name tdo{tag} netns {}",
            ns.name, other.name
        ));
        ns.sh_ok(&format!(
            "ip addr add 10.252.40.1/30 dev tdh{tag} && ip link set tdh{tag} up"
        ));
        other.sh_ok(&format!(
            "ip addr add 10.252.40.2/30 dev tdo{tag} && ip link set tdo{tag} up && \
             ip route add default via 10.252.40.1"
        ));
        let www = tempfile::tempdir().unwrap();
        std::fs::write(www.path().join("index.html"), "other-host\n").unwrap();
        let server = Killed(
            other
                .cmd("busybox")
                .args(["httpd", "-f", "-p", "10.252.40.2:80", "-h"])
                .arg(www.path())
                .spawn()
                .unwrap(),
        );
        Scene {
            dockerd: None,
            _server: server,
            other,
            ns,
            b,
            _www: www,
        }
    }

    /// Start dockerd and check it made the `FORWARD` path drop; forwarding
    /// on, as Docker does (in the test's namespace).
    fn start_dockerd(&mut self) -> &Dockerd {
        // dockerd sets the `FORWARD` policy to drop when it turns forwarding
        // on itself; a new namespace inherits the host's value, which may
        // be on already: start from off, as on a fresh host.
        self.ns.sh_ok("echo 0 > /proc/sys/net/ipv4/ip_forward");
        let d = Dockerd::start(&self.ns, self.b.path());
        let rules = filter_rules(&self.ns);
        assert!(rules.contains("-P FORWARD DROP"), "{rules}");
        assert!(rules.contains("-N DOCKER-USER"), "{rules}");
        self.ns.sh_ok("echo 1 > /proc/sys/net/ipv4/ip_forward");
        self.dockerd.insert(d)
    }

    fn berth(&self, args: &[&str]) -> String {
        berth_ok(&self.b, &self.ns, args)
    }

    fn reaches(&self, args: &[&str], url: &str) -> bool {
        reaches(&self.b, &self.ns, args, url)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = berth_in(&self.b, &self.ns, &["system", "reset", "-f"]);
    }
}

#[test]
fn berth_networks_work_beside_dockerd_which_keeps_its_isolation() {
    let mut s = Scene::new("a");
    // A berth network whose bridge is up before dockerd starts.
    s.berth(&["network", "create", "--subnet", "10.251.31.0/24", "dk"]);
    let dk_id = s
        .berth(&["network", "inspect", "-f", "{{.Id}}", "dk"])
        .trim()
        .to_string();
    s.berth(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "dk",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    s.start_dockerd();

    // Containers on a user network reach each other by name (the bridge
    // came up before dockerd: its rules come with this attach).
    assert!(
        s.reaches(
            &["run", "--rm", "--network", "dk", IMAGE],
            "http://srv:8080/hostname"
        ),
        "containers on a berth network do not reach each other beside dockerd:\n{}",
        filter_rules(&s.ns)
    );

    // A published port answers another host (DNAT'd traffic is
    // forwarded), on the default bridge made after dockerd started.
    let pub_id = s
        .berth(&[
            "run",
            "-d",
            "-p",
            "8081:8080",
            IMAGE,
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/etc",
        ])
        .trim()
        .to_string();
    let page = s.other.sh(
        "for i in $(seq 1 30); do wget -q -t 1 -T 2 -O - http://10.252.40.1:8081/hostname && exit 0; \
         sleep 0.1; done; exit 1",
    );
    assert!(
        stdout(&page).contains(&pub_id[..12]),
        "a published port does not answer another host beside dockerd: {}{}\n{}",
        stdout(&page),
        stderr(&page),
        filter_rules(&s.ns)
    );

    // Outbound: a container reaches the other host; not from an internal
    // network.
    assert!(
        s.reaches(
            &["run", "--rm", "--network", "dk", IMAGE],
            "http://10.252.40.2/"
        ),
        "a berth container does not reach another host beside dockerd:\n{}",
        filter_rules(&s.ns)
    );
    s.berth(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        "10.251.34.0/24",
        "closed",
    ]);
    assert!(!s.reaches(
        &["run", "--rm", "--network", "closed", IMAGE],
        "http://10.252.40.2/"
    ));

    // Docker's isolation is intact: a Docker container's unpublished port
    // answers the host, but neither berth's containers nor the other host
    // (routed to docker0 through this one).
    let dockerd = s.dockerd.as_ref().unwrap();
    let mut import = dockerd.docker_cmd();
    import.args(["import", "-", "bbdk:test"]);
    let imported = feed(import, &busybox_rootfs_tar());
    assert!(imported.status.success(), "{}", stderr(&imported));
    dockerd.docker_ok(&[
        "run",
        "-d",
        "--name",
        "dweb",
        "bbdk:test",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let dip = dockerd
        .docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "dweb"])
        .trim()
        .to_string();
    let durl = format!("http://{dip}:8080/hostname");
    s.ns.sh_ok(&format!(
        "for i in $(seq 1 30); do wget -q -t 1 -T 2 -O - {durl} && exit 0; sleep 0.1; done; exit 1"
    ));
    assert!(
        !s.reaches(&["run", "--rm", "--network", "dk", IMAGE], &durl),
        "a berth container reaches a Docker container's unpublished port"
    );
    s.other
        .sh_ok(&format!("ip route add {dip}/32 via 10.252.40.1"));
    let o = s.other.sh(&format!("wget -q -t 1 -T 2 -O - {durl}"));
    assert!(
        !o.status.success(),
        "another host reaches a Docker container's unpublished port: {}",
        stdout(&o)
    );
    // berth's rules are only about berth's bridges, in DOCKER-USER.
    let rules = filter_rules(&s.ns);
    assert!(rules.contains("-P FORWARD DROP"), "{rules}");
    for l in rules.lines().filter(|l| l.contains("berth-net:")) {
        assert!(l.starts_with("-A DOCKER-USER "), "{l}");
        assert!(
            [" -i br-", " -o br-", " -i berth", " -o berth"]
                .iter()
                .any(|w| l.contains(w)),
            "{l}"
        );
    }
    assert!(rules.contains(&format!("berth-net:{dk_id}")), "{rules}");

    // Gone with the network, then with system reset.
    s.berth(&["rm", "-f", "srv"]);
    s.berth(&["network", "rm", "dk"]);
    let rules = filter_rules(&s.ns);
    assert!(!rules.contains(&format!("berth-net:{dk_id}")), "{rules}");
    assert!(
        rules.contains("berth-net:"),
        "the default bridge's rules: {rules}"
    );
    s.berth(&["system", "reset", "-f"]);
    let rules = filter_rules(&s.ns);
    assert!(!rules.contains("berth-net:"), "{rules}");
    assert!(rules.contains("-A DOCKER-USER -j RETURN"), "{rules}");
}

/// berth's iptables backend in Docker's very table (iptables-nft): the
/// accept rules in DOCKER-USER, which dockerd jumps to first when it
/// starts after berth made its chains, must not bypass berth's isolation
/// in BERTH-FORWARD.
#[test]
fn the_iptables_backend_in_dockers_table_keeps_berths_isolation() {
    let mut s = Scene::new("b");
    std::fs::write(
        s.b.path().join("config/berth.toml"),
        "[network]\nip_forward = false\nfirewall = \"iptables\"\niptables = \"iptables-nft\"\n",
    )
    .unwrap();
    s.berth(&["network", "create", "--subnet", "10.251.33.0/24", "right"]);
    s.berth(&[
        "run",
        "-d",
        "--name",
        "r",
        "--network",
        "right",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    s.berth(&[
        "run", "-d", "--name", "d", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/etc",
    ]);
    s.start_dockerd();
    let rules = filter_rules(&s.ns);
    assert!(
        rules.find("-A FORWARD -j DOCKER-USER") < rules.find("-A FORWARD -j BERTH-FORWARD"),
        "{rules}"
    );
    let rip = ip_on(&s, "right", "r");
    let dip = ip_on(&s, "bridge", "d");
    // The default bridge's rules come first (with this attach), then the
    // right network's above them: its accept of replies would let the
    // answers from the default bridge in.
    assert!(s.reaches(
        &["run", "--rm", IMAGE],
        &format!("http://{dip}:8080/hostname")
    ));
    assert!(
        s.reaches(
            &["run", "--rm", "--network", "right", IMAGE],
            "http://r:8080/hostname"
        ),
        "{}",
        filter_rules(&s.ns)
    );
    assert!(s.reaches(
        &["run", "--rm", "--network", "right", IMAGE],
        "http://10.252.40.2/"
    ));
    // Between berth's networks, both ways: closed.
    assert!(
        !s.reaches(
            &["run", "--rm", "--network", "right", IMAGE],
            &format!("http://{dip}:8080/hostname")
        ),
        "{}",
        filter_rules(&s.ns)
    );
    assert!(
        !s.reaches(
            &["run", "--rm", IMAGE],
            &format!("http://{rip}:8080/hostname")
        ),
        "{}",
        filter_rules(&s.ns)
    );
    let rules = filter_rules(&s.ns);
    assert!(rules.contains("-j BERTH-FORWARD"), "{rules}");
    s.berth(&["system", "reset", "-f"]);
    let rules = filter_rules(&s.ns);
    assert!(!rules.contains("berth-net:"), "{rules}");
}

/// The address of container `name` on network `net`.
fn ip_on(s: &Scene, net: &str, name: &str) -> String {
    let id = s.berth(&["inspect", "--format", "{{.Id}}", name]);
    let out = s.berth(&[
        "network",
        "inspect",
        "--format",
        "{{json .Containers}}",
        net,
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v[id.trim()]["IPv4Address"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not on {net}: {v}"))
        .split('/')
        .next()
        .unwrap()
        .to_string()
}
