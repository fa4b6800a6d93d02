//! `berth serve` (issue 19, root): where it listens and how it stops, with
//! the real docker CLI — TLS with client certificates (`--tlsverify`) and
//! without (`--tls`), plain TCP, systemd socket activation (`-H fd://`),
//! and SIGTERM while long polls are connected.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_server::*;
use common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA `{ca}.pem`/`{ca}.key`.
fn make_ca(dir: &Path, ca: &str) {
    let (key, pem) = (format!("{ca}.key"), format!("{ca}.pem"));
    let subj = format!("/CN=berth test {ca}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "2", "-subj", &subj,
        ],
    );
}

/// `{name}.pem`/`{name}-key.pem` signed by CA `ca`, with extensions `ext`.
fn make_cert(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) {
    let (key, csr, pem) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj,
        ],
    );
    let extfile = format!("{name}.cnf");
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
}

/// ca.pem; server.pem for 127.0.0.1 and client.pem signed by it;
/// rogue.pem, a client signed by another CA (other.pem).
fn make_certs(dir: &Path) {
    make_ca(dir, "ca");
    make_cert(
        dir,
        "ca",
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    let client = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    make_cert(dir, "ca", "client", "client", client);
    make_ca(dir, "other");
    make_cert(dir, "other", "rogue", "client", client);
}

/// A new file for a server's stderr in the test's directory.
fn log_file(b: &Berth) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    b.path().join(format!("serve-{n}.log"))
}

/// A port nobody listens on now.
/// The processes whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // pid (comm) state ppid …: the comm may hold spaces.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(pid)
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `berth serve` of the test's own, its stderr in a file.
struct Serving {
    child: Child,
    log: PathBuf,
}

impl Serving {
    /// `berth serve ARGS`; ready once `ready` answers.
    fn start(b: &Berth, args: &[&str], ready: impl Fn() -> bool) -> Serving {
        let log = log_file(b);
        let child = b
            .cmd()
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut s = Serving { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "berth serve {args:?} did not come up: {}",
                s.log()
            );
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("berth serve {args:?} ended ({st}): {}", s.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        s
    }

    fn tcp(b: &Berth, port: u16, args: &[&str]) -> Serving {
        let host = format!("tcp://127.0.0.1:{port}");
        let mut all = vec!["-H", &host];
        all.extend_from_slice(args);
        Serving::start(b, &all, || TcpStream::connect(("127.0.0.1", port)).is_ok())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status and how long it took.
    fn stop(&mut self) -> (std::process::ExitStatus, Duration) {
        let t = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let st = self.child.wait().unwrap();
        (st, t.elapsed())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The docker CLI with `args` (flags before the command), its own empty
/// configuration directory (no certificates of root's), no DOCKER_* env.
fn docker(b: &Berth, args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_CONFIG", b.path().join("docker-cli-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI (Debian's docker.io)")
}

fn docker_ok(b: &Berth, args: &[&str]) -> String {
    let o = docker(b, args);
    assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn tlsverify_serves_the_docker_cli_with_a_certificate_and_refuses_others() {
    let b = Berth::new();
    let certs = b.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let c = |f: &str| certs.join(f).display().to_string();
    let port = free_port();
    let mut srv = Serving::tcp(
        &b,
        port,
        &[
            "--tlsverify",
            "--tlscacert",
            &c("ca.pem"),
            "--tlscert",
            &c("server.pem"),
            "--tlskey",
            &c("server-key.pem"),
        ],
    );
    let host = format!("tcp://127.0.0.1:{port}");
    let (ca, cert, key) = (c("ca.pem"), c("client.pem"), c("client-key.pem"));
    let tls = |args: &[&str]| {
        let mut all = vec![
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "-H",
            &host,
        ];
        all.extend_from_slice(args);
        docker(&b, &all)
    };

    // A client that connects and never says hello holds up nobody: the
    // handshake is its connection's own business.
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();

    let o = tls(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1.44");
    b.ok(&["run", "-d", "--name", "bg", IMAGE, "sleep", "300"]);
    let o = tls(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(stdout(&o).trim(), "bg", "{}", stderr(&o));
    // run in the foreground: attach is an HTTP upgrade, here inside TLS.
    let o = tls(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n");
    // exec with stdin: the client half-closes inside TLS.
    let mut cmd = Command::new("docker");
    cmd.args([
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "-H",
        &host,
        "exec",
        "-i",
        "bg",
        "cat",
    ])
    .env("DOCKER_CONFIG", b.path().join("docker-cli-config"));
    let o = feed(cmd, b"through tls\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "through tls\n");

    // No client certificate: refused.
    let o = docker(
        &b,
        &["--tlsverify", "--tlscacert", &ca, "-H", &host, "version"],
    );
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("Client:") && !stdout(&o).contains("Server:"));
    // Plain HTTP to the TLS port: refused.
    let o = docker(&b, &["-H", &host, "ps"]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    // A certificate from another CA: the docker CLI (Go) offers it only to
    // a server asking for that CA, so present it with curl, which sends it
    // anyway; the server's verification refuses it.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &ca, "--cert"])
        .arg(certs.join("rogue.pem"))
        .arg("--key")
        .arg(certs.join("rogue-key.pem"))
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .expect("curl (apt-get install curl)");
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    // The same curl with the right certificate gets in.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &ca, "--cert", &cert])
        .args(["--key", &key])
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "OK", "{}", stderr(&o));

    // After all that the server still serves.
    let o = tls(&["ps", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = srv.log();
    assert!(
        log.contains("TLS handshake error from 127.0.0.1:"),
        "the refusals are logged: {log}"
    );
    // The other CA's certificate was refused by verification.
    assert!(log.contains("invalid peer certificate"), "{log}");
    assert!(
        !log.contains("insecure"),
        "--tlsverify is not warned about: {log}"
    );
    let (st, _) = srv.stop();
    assert!(st.success(), "{st}: {}", srv.log());
    b.ok(&["rm", "-f", "bg"]);
}

#[test]
fn tls_alone_and_plain_tcp_work_with_dockerds_warnings() {
    let b = Berth::new();
    let certs = b.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let c = |f: &str| certs.join(f).display().to_string();

    // --tls: encrypted, clients not authenticated; `docker --tls` (no
    // client certificate, server not verified; the CLI wants a ca.pem to
    // read all the same) gets in.
    let port = free_port();
    let mut srv = Serving::tcp(
        &b,
        port,
        &[
            "--tls",
            "--tlscert",
            &c("server.pem"),
            "--tlskey",
            &c("server-key.pem"),
        ],
    );
    let host = format!("tcp://127.0.0.1:{port}");
    let out = docker_ok(
        &b,
        &[
            "--tls",
            "--tlscacert",
            &c("other.pem"),
            "-H",
            &host,
            "run",
            "--rm",
            IMAGE,
            "echo",
            "hi",
        ],
    );
    assert_eq!(out, "hi\n");
    // A client verifying the server against the CA also gets in.
    let out = docker_ok(
        &b,
        &[
            "--tlsverify",
            "--tlscacert",
            &c("ca.pem"),
            "-H",
            &host,
            "ps",
            "-q",
        ],
    );
    assert_eq!(out, "");
    let log = srv.log();
    for words in [
        "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.",
        "Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!",
        "WITHOUT client verification",
    ] {
        assert!(log.contains(words), "{words:?} missing: {log}");
    }
    assert!(srv.stop().0.success(), "{}", srv.log());

    // Plain TCP: the loud warning, and it serves.
    let port = free_port();
    let mut srv = Serving::tcp(&b, port, &[]);
    let host = format!("tcp://127.0.0.1:{port}");
    let v = docker_ok(
        &b,
        &["-H", &host, "version", "--format", "{{.Server.APIVersion}}"],
    );
    assert_eq!(v.trim(), "1.44");
    let log = srv.log();
    assert!(log.contains("WITHOUT TLS"), "{log}");
    assert!(log.contains("is insecure and gives root access"), "{log}");
    assert!(srv.stop().0.success(), "{}", srv.log());

    // Bad TLS files: the flag and file are named, nothing listens.
    let o = b.run(&[
        "serve",
        "-H",
        &format!("tcp://127.0.0.1:{}", free_port()),
        "--tlsverify",
        "--tlscacert",
        &c("nope.pem"),
        "--tlscert",
        &c("server.pem"),
        "--tlskey",
        &c("server-key.pem"),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("--tlscacert") && stderr(&o).contains("nope.pem"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&[
        "serve",
        "-H",
        &format!("tcp://127.0.0.1:{}", free_port()),
        "--tls",
        "--tlscert",
        &c("server.pem"),
        "--tlskey",
        &c("client-key.pem"),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--tlskey"), "{}", stderr(&o));
}

/// `sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec berth serve -H HOST'` with
/// `listener` as fd 3: berth started as systemd starts a socket-activated
/// service (the shell's pid is berth's after `exec`).
fn activated_cmd(b: &Berth, host: &str, listener: std::os::unix::net::UnixListener) -> Command {
    let mut sh = Command::new("sh");
    sh.args([
        "-c",
        &format!(
            "LISTEN_PID=$$ LISTEN_FDS=1 exec {} serve -H {host}",
            env!("CARGO_BIN_EXE_berth")
        ),
    ]);
    // berth's environment as the tests give it.
    for (k, v) in b.cmd().get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    command_fds::CommandFdExt::fd_mappings(
        &mut sh,
        vec![command_fds::FdMapping {
            parent_fd: listener.into(),
            child_fd: 3,
        }],
    )
    .unwrap();
    sh.stdin(Stdio::null());
    sh
}

/// A socket-activated `berth serve -H HOST` on a socket at `sock`, ready
/// once it answers (the kernel queues connections before berth runs).
fn activated(b: &Berth, sock: &Path, host: &str) -> Serving {
    let listener = std::os::unix::net::UnixListener::bind(sock).unwrap();
    let log = log_file(b);
    let mut cmd = activated_cmd(b, host, listener);
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Our copy of the socket goes with the command.
    drop(cmd);
    let mut s = Serving { child, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = std::os::unix::net::UnixStream::connect(sock) {
            use std::io::Write;
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = c.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
            let mut r = String::new();
            let _ = c.read_to_string(&mut r);
            if r.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!("berth serve -H {host} ended ({st}): {}", s.log());
        }
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    s
}

#[test]
fn socket_activation_serves_the_passed_socket_and_leaves_it_to_systemd() {
    let b = Berth::new();
    for host in ["fd://", "fd://3"] {
        let sock = b.path().join("activated.sock");
        let _ = std::fs::remove_file(&sock);
        let mut srv = activated(&b, &sock, host);
        let h = format!("unix://{}", sock.display());
        let out = docker_ok(&b, &["-H", &h, "run", "--rm", IMAGE, "echo", "hi"]);
        assert_eq!(out, "hi\n");
        assert!(srv.log().contains("(fd 3, from systemd)"), "{}", srv.log());
        // Taken close-on-exec: nothing the server starts inherits it.
        let info = std::fs::read_to_string(format!("/proc/{}/fdinfo/3", srv.child.id())).unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
            .unwrap();
        assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "fd 3 flags {flags:o}");
        let (st, _) = srv.stop();
        assert!(st.success(), "{st}: {}", srv.log());
        // systemd's socket stays: it is not ours to remove.
        assert!(sock.exists(), "the passed socket was removed");
    }

    // Not socket-activated, or not enough fds: dockerd's words.
    let o = b.run(&["serve", "-H", "fd://"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            "no sockets found via socket activation: make sure the service was started by systemd"
        ),
        "{}",
        stderr(&o)
    );
    let sock = b.path().join("four.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = activated_cmd(&b, "fd://4", listener).output().unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("too few socket activated files passed in by systemd"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn sigterm_closes_long_polls_removes_the_socket_and_leaves_containers_running() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pinger",
        IMAGE,
        "sh",
        "-c",
        "echo ready; while true; do sleep 1; done",
    ]);
    let srv = Server::start(&b);
    let h = format!("unix://{}", srv.socket.display());
    let follow = |args: &[&str]| {
        Command::new("docker")
            .args(["-H", &h])
            .args(args)
            .env("DOCKER_CONFIG", b.path().join("docker-cli-config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let pid = srv.child.id();
    let sockets_of = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|l| l.to_string_lossy().starts_with("socket:"))
                    .count()
            })
            .unwrap_or(0)
    };
    // The fork server and its spare process.
    let helpers: Vec<i32> = {
        let zygotes = children(pid as i32);
        let mut all = zygotes.clone();
        for z in zygotes {
            all.extend(children(z));
        }
        all
    };
    assert!(!helpers.is_empty(), "no fork server");
    let mut logs = follow(&["logs", "-f", "pinger"]);
    let mut wait = follow(&["wait", "pinger"]);
    let mut events = follow(&["events"]);
    // logs -f is connected once the first line came through it.
    let mut first = String::new();
    BufReader::new(logs.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "ready\n");
    // wait and events: connected once each CLI holds a socket (counting
    // the server's sockets instead raced with a connection of its start
    // closing meanwhile), then a moment for their requests to arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sockets_of(wait.id()) == 0 || sockets_of(events.id()) == 0 {
        assert!(
            Instant::now() < deadline,
            "docker wait and events did not connect"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(500));

    let socket = srv.socket.clone();
    let t = Instant::now();
    let st = srv.stop();
    let took = t.elapsed();
    assert!(st.success(), "berth serve ended with {st}");
    // The long polls do not hold the server for its grace period.
    assert!(took < Duration::from_secs(4), "stopping took {took:?}");
    assert!(!socket.exists(), "our socket is removed");
    for (name, c) in [
        ("logs -f", &mut logs),
        ("wait", &mut wait),
        ("events", &mut events),
    ] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "docker {name} still runs");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    // The fork server and its spare end with the server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(p) = helpers
        .iter()
        .find(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(Instant::now() < deadline, "process {p} outlived the server");
        std::thread::sleep(Duration::from_millis(25));
    }
    // The container runs on: it belongs to its monitor.
    let running = b.ok(&["inspect", "-f", "{{.State.Running}}", "pinger"]);
    assert_eq!(running.trim(), "true");
    let ps = b.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "pinger");
    b.ok(&["rm", "-f", "pinger"]);
}

/// Under systemd's `Type=notify` (`NOTIFY_SOCKET` set), as dockerd:
/// `READY=1` once the API listens, `STOPPING=1` when SIGTERM comes; the
/// variable is not passed on to what the server starts.
#[test]
fn sd_notify_says_ready_once_listening_and_stopping_at_sigterm() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let b = Berth::new();
    let abstract_name = format!("berth-test-notify-{}", std::process::id());
    let path = b.path().join("notify.sock");
    for (receiver, name) in [
        (
            UnixDatagram::bind(&path).unwrap(),
            path.display().to_string(),
        ),
        (
            UnixDatagram::bind_addr(
                &SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap(),
            )
            .unwrap(),
            format!("@{abstract_name}"),
        ),
    ] {
        receiver
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let sock = b.path().join("notified.sock");
        let log = log_file(&b);
        let child = b
            .cmd()
            .args(["serve", "-H", &format!("unix://{}", sock.display())])
            .env("NOTIFY_SOCKET", &name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut srv = Serving { child, log };
        let mut buf = [0u8; 256];
        let n = receiver
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 on {name}: {e}: {}", srv.log()));
        assert_eq!(&buf[..n], b"READY=1", "{name}");
        // Ready means listening: the first request is answered.
        let (status, _, body) = http(&sock, "GET", "/_ping");
        assert_eq!((status, body.as_str()), (200, "OK"), "{}", srv.log());
        // A container started through the server: nothing it runs sees
        // NOTIFY_SOCKET (the server takes it out of its environment before
        // its fork server starts; the monitor is a fork of that, and its
        // `/proc/PID/environ` still shows the server's first environment
        // block, which unsetenv does not rewrite, so the processes it
        // executes are what is looked at: the init and an exec).
        let h = format!("unix://{}", sock.display());
        let id = docker_ok(&b, &["-H", &h, "run", "-d", IMAGE, "sleep", "100"]);
        let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", id.trim()]);
        let environ = std::fs::read(format!("/proc/{}/environ", pid.trim())).unwrap();
        assert!(
            !environ
                .split(|b| *b == 0)
                .any(|v| v.starts_with(b"NOTIFY_SOCKET=")),
            "NOTIFY_SOCKET passed on to the container"
        );
        let env = docker_ok(&b, &["-H", &h, "exec", id.trim(), "env"]);
        assert!(!env.contains("NOTIFY_SOCKET"), "{env}");
        b.ok(&["rm", "-f", id.trim()]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(srv.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let n = receiver
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no STOPPING=1 on {name}: {e}: {}", srv.log()));
        assert_eq!(&buf[..n], b"STOPPING=1", "{name}");
        let st = srv.child.wait().unwrap();
        assert!(st.success(), "{st}: {}", srv.log());
        assert!(!sock.exists());
    }
    // A value that names no socket is said and ignored; the server serves.
    let sock = b.path().join("notified.sock");
    let log = log_file(&b);
    let child = b
        .cmd()
        .args(["serve", "-H", &format!("unix://{}", sock.display())])
        .env("NOTIFY_SOCKET", "vsock:2:1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut srv = Serving { child, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "{}", srv.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(http(&sock, "GET", "/_ping").0, 200);
    let (st, _) = srv.stop();
    assert!(st.success(), "{st}: {}", srv.log());
    assert!(
        srv.log().contains("NOTIFY_SOCKET=vsock:2:1 ignored"),
        "{}",
        srv.log()
    );
}
