//! Real clients of the Docker Engine API against `berth serve` (root):
//! Debian's docker-compose 1.29 (Python, through docker-py 5), a scenario
//! of docker-py 7 (`clients/docker_py_scenario.py`) and docker-py 7.1.0's
//! own integration suite (`clients/docker-py/`, vendored from its
//! repository's tag 7.1.0: PyPI's sdist ships no tests), which must keep
//! passing every test listed in `clients/docker-py-pass.txt`.
//!
//! Nothing is pulled: the images the clients name are put into berth
//! beforehand (`alpine:3.10` for the suite: the busybox image with what
//! the suite expects of Alpine, a `postgres` user and `/var/opt`).
//! `scripts/deps` installs the clients; a missing one fails the test with
//! what to install.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use api_server::*;
use common::*;

/// The tests here run one at a time: docker-py's suite keeps the two
/// cores busy for a minute and a half, and a client's timing under that
/// load is not what these tests are about.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

const COMPOSE: &str = "/usr/bin/docker-compose";

/// The docker-py 7.1.0 environment `scripts/deps` makes: a venv over
/// Debian's python3 (whose pytest and pytest-timeout it sees) with PyPI's
/// `docker[ssh]==7.1.0`. `BERTH_DOCKER_PY_PYTHON` names another python.
fn docker_py_python() -> PathBuf {
    let python = std::env::var_os("BERTH_DOCKER_PY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-tests/docker-py/bin/python"));
    let check = Command::new(&python)
        .args([
            "-c",
            "import docker, pytest, pytest_timeout, paramiko; assert docker.__version__ == '7.1.0', docker.__version__",
        ])
        .output();
    match check {
        Ok(o) if o.status.success() => python,
        Ok(o) => panic!(
            "{} lacks docker-py 7.1.0, pytest or pytest-timeout ({}): run scripts/deps \
             (python3 -m venv --system-site-packages /opt/berth-tests/docker-py; \
             /opt/berth-tests/docker-py/bin/pip install 'docker[ssh]==7.1.0'; \
             apt-get install python3-pytest python3-pytest-timeout)",
            python.display(),
            stderr(&o).trim()
        ),
        Err(e) => panic!(
            "{}: {e}: run scripts/deps (it makes the docker-py 7.1.0 venv /opt/berth-tests/docker-py)",
            python.display()
        ),
    }
}

fn require_compose() {
    assert!(
        Path::new(COMPOSE).exists(),
        "{COMPOSE} missing: apt-get install docker-compose (scripts/deps installs it)"
    );
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// docker-compose in `dir` against the server.
fn compose(srv: &Server, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(COMPOSE);
    c.current_dir(dir)
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", srv.socket.display()))
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .env("PYTHONUNBUFFERED", "1")
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
    c
}

fn compose_ok(srv: &Server, dir: &Path, args: &[&str]) -> Output {
    let o = compose(srv, dir, args).output().unwrap();
    assert!(
        o.status.success(),
        "docker-compose {args:?}: {}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// `docker-compose ps`'s line for a container: (name, state column).
fn compose_states(srv: &Server, dir: &Path) -> Vec<(String, String)> {
    let out = stdout(&compose_ok(srv, dir, &["ps"]));
    out.lines()
        .skip(2)
        .filter_map(|l| {
            let name = l.split_whitespace().next()?.to_string();
            let state = if l.contains(" Up ") || l.trim_end().ends_with(" Up") {
                "Up".to_string()
            } else if let Some(i) = l.find(" Exit ") {
                l[i + 1..]
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                l.to_string()
            };
            Some((name, state))
        })
        .collect()
}

/// An HTTP GET of `path` on 127.0.0.1:`port`: the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

const PROJECT: &str = r#"version: "3.8"
services:
  web:
    image: bb:test
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    volumes:
      - shared:/www
    ports:
      - "127.0.0.1:28931:80"
    environment:
      GREETING: hello from compose
    labels:
      tier: front
    depends_on:
      - db
    networks: [back]
  db:
    image: bb:test
    command: ["sh", "-c", "echo db up; mkdir -p /tmp/db; echo from-db > /tmp/db/index.html; echo shared > /www/index.html; exec httpd -f -p 8080 -h /tmp/db"]
    volumes:
      - shared:/www
    networks: [back]
volumes:
  shared:
networks:
  back:
"#;

#[test]
fn docker_compose_runs_a_project_against_berth_serve() {
    let _serial = one_at_a_time();
    require_compose();
    let b = Berth::new();
    let srv = Server::start(&b);
    let dir = b.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), PROJECT).unwrap();
    let p = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["-p".to_string(), "proj".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: &[&str]| {
        let a = p(args);
        compose_ok(
            &srv,
            &dir,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // up -d: the network, the volume, db before web (depends_on).
    let up = stderr(&run(&["up", "-d"]));
    for want in [
        "Creating network \"proj_back\"",
        "Creating volume \"proj_shared\"",
        "Creating proj_db_1",
        "Creating proj_web_1",
    ] {
        assert!(up.contains(want), "up -d said:\n{up}");
    }
    assert!(up.find("proj_db_1 ... done") < up.find("Creating proj_web_1 ..."));
    let states = compose_states(&srv, &dir);
    assert_eq!(
        states,
        [
            ("proj_db_1".to_string(), "Up".to_string()),
            ("proj_web_1".to_string(), "Up".to_string())
        ],
        "{states:?}"
    );
    // Again: nothing to do.
    let again = stderr(&run(&["up", "-d"]));
    assert!(
        again.contains("proj_db_1 is up-to-date") && again.contains("proj_web_1 is up-to-date"),
        "{again}"
    );

    // The published port serves the named volume db wrote into.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut body = None;
    while Instant::now() < deadline {
        body = http_get(28931, "/");
        if body.as_deref() == Some("shared\n") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(body.as_deref(), Some("shared\n"));

    // exec -T: the environment, and db reached by its service name.
    let o = run(&[
        "exec",
        "-T",
        "web",
        "sh",
        "-c",
        "echo $GREETING; wget -qO- http://db:8080/",
    ]);
    assert_eq!(stdout(&o), "hello from compose\nfrom-db\n");
    let o = compose(
        &srv,
        &dir,
        &["-p", "proj", "exec", "-T", "web", "sh", "-c", "exit 5"],
    )
    .output()
    .unwrap();
    assert_eq!(code(&o), 5, "{}", stderr(&o));

    // Labels: the service's and compose's own, as the docker CLI sees them.
    let labels = srv.docker_ok(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"tier\"}} {{index .Config.Labels \"com.docker.compose.project\"}} {{index .Config.Labels \"com.docker.compose.service\"}}",
        "proj_web_1",
    ]);
    assert_eq!(labels.trim(), "front proj web");

    // logs.
    let logs = stdout(&run(&["logs", "--no-color", "db"]));
    assert!(logs.contains("db_1   | db up"), "{logs}");

    // run --rm: a one-off container on the project's network, gone after.
    let o = run(&[
        "run",
        "--rm",
        "-T",
        "db",
        "sh",
        "-c",
        "echo one-off; wget -qO- http://web/",
    ]);
    assert_eq!(stdout(&o), "one-off\nshared\n");
    let left = srv.docker_ok(&[
        "ps",
        "-aq",
        "--filter",
        "label=com.docker.compose.oneoff=True",
    ]);
    assert_eq!(left.trim(), "", "run --rm left its container");

    // stop, start, restart.
    run(&["stop", "-t", "1"]);
    for (name, state) in compose_states(&srv, &dir) {
        assert!(state.starts_with("Exit"), "{name} after stop: {state}");
    }
    run(&["start"]);
    run(&["restart", "-t", "1"]);
    for (name, state) in compose_states(&srv, &dir) {
        assert_eq!(state, "Up", "{name} after restart");
    }

    // down -v: containers, network and volume gone.
    let down = stderr(&run(&["down", "-v", "-t", "1"]));
    assert!(
        down.contains("Removing network proj_back") && down.contains("Removing volume proj_shared"),
        "{down}"
    );
    assert_eq!(srv.docker_ok(&["ps", "-aq"]).trim(), "");
    assert!(!srv.docker_ok(&["network", "ls"]).contains("proj_back"));
    assert!(!srv
        .docker_ok(&["volume", "ls", "-q"])
        .contains("proj_shared"));
}

const FOREGROUND: &str = r#"version: "3.8"
services:
  talker:
    image: bb:test
    command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; echo started; while true; do echo tick; sleep 1; done"]
  quitter:
    image: bb:test
    command: ["sh", "-c", "echo quitting; exit 3"]
"#;

#[test]
fn docker_compose_up_in_the_foreground_stops_on_sigint() {
    let _serial = one_at_a_time();
    require_compose();
    let b = Berth::new();
    let srv = Server::start(&b);
    let dir = b.path().join("fg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), FOREGROUND).unwrap();

    let mut child = compose(&srv, &dir, &["-p", "fg", "--ansi", "never", "up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The attached output, until talker has ticked (quitter has ended).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => seen.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        let ticks = seen.iter().filter(|l| l.ends_with("| tick")).count();
        if ticks >= 2 && seen.iter().any(|l| l.contains("exited with code 3")) {
            break;
        }
    }
    let joined = seen.join("\n");
    if !(joined.contains("talker_1   | started") && joined.contains("quitter_1  | quitting")) {
        let _ = child.kill();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        panic!("attached output:\n{joined}\ndocker-compose's stderr:\n{err}");
    }
    assert!(
        joined.contains("fg_quitter_1 exited with code 3"),
        "{joined}"
    );

    // Ctrl-C: compose stops the project and ends.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "docker-compose up outlived its SIGINT by 30s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = reader.join();
    seen.extend(rx.try_iter());
    let joined = seen.join("\n");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // (compose writes these to stdout or stderr, by version and terminal)
    let all = format!("{joined}\n{err}");
    assert!(all.contains("Gracefully stopping"), "{all}");
    assert!(all.contains("Stopping fg_talker_1"), "{all}");
    assert!(status.code().is_some(), "{status:?}");
    let states = compose_states(&srv, &dir);
    assert_eq!(
        states,
        [
            ("fg_quitter_1".to_string(), "Exit 3".to_string()),
            ("fg_talker_1".to_string(), "Exit 0".to_string())
        ],
        "talker stopped by its TERM trap, quitter by itself"
    );
    compose_ok(&srv, &dir, &["-p", "fg", "down"]);
    assert_eq!(srv.docker_ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn docker_py_drives_containers_networks_volumes_and_images() {
    let _serial = one_at_a_time();
    let python = docker_py_python();
    let b = Berth::new();
    let srv = Server::start(&b);
    let o = Command::new(&python)
        .arg(clients_dir().join("docker_py_scenario.py"))
        .env("DOCKER_HOST", format!("unix://{}", srv.socket.display()))
        .env("IMAGE", IMAGE)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    for step in [
        "ok containers.run in the foreground",
        "ok exec_run",
        "ok put_archive and get_archive",
        "ok attach and wait",
        "ok events with until",
        "ok images.build",
    ] {
        assert!(out.contains(step), "{out}");
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        13,
        "{out}"
    );
}

#[test]
fn testcontainers_python_runs_a_container_through_berth_serve() {
    let _serial = one_at_a_time();
    let python = docker_py_python();
    let check = Command::new(&python)
        .args(["-c", "import testcontainers"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "testcontainers missing: run scripts/deps (it installs PyPI testcontainers==4.15.0 into /opt/berth-tests/docker-py)"
    );
    let b = Berth::new();
    let srv = Server::start(&b);
    let o = Command::new(&python)
        .arg(clients_dir().join("testcontainers_scenario.py"))
        .env("DOCKER_HOST", format!("unix://{}", srv.socket.display()))
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env("IMAGE", IMAGE)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("ok testcontainers "))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .to_string();
    // Leaving the block stopped and removed it.
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "", "{id} left behind");
    assert!(srv.stop().success());
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}

/// The suite's `alpine:3.10` (and `alpine`): busybox with Alpine's
/// `postgres` user and `/var/opt`, which tests use.
fn alpine_like(b: &Berth) {
    let passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n\
postgres:x:70:70::/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    let tar =
        busybox_rootfs_tar_with(&[("etc/passwd", 0o644, passwd), ("var/opt/.keep", 0o644, b"")]);
    let o = b.run_stdin(
        &["import", "-c", "CMD [\"/bin/sh\"]", "-", "alpine:3.10"],
        &tar,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    b.ok(&["tag", "alpine:3.10", "alpine:latest"]);
}

#[test]
fn docker_py_integration_suite_keeps_its_passes() {
    let _serial = one_at_a_time();
    let python = docker_py_python();
    let b = Berth::new();
    alpine_like(&b);
    let srv = Server::start(&b);
    let suite = clients_dir().join("docker-py");
    let started = Instant::now();
    let o = Command::new(&python)
        .current_dir(&suite)
        .args([
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            "--timeout",
            "60",
            "tests/integration",
        ])
        .env("DOCKER_HOST", format!("unix://{}", srv.socket.display()))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("DOCKER_TEST_API_VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    let passed: std::collections::BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("PASSED "))
        .map(str::trim)
        .collect();
    let list = std::fs::read_to_string(clients_dir().join("docker-py-pass.txt")).unwrap();
    let expected: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let lost: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|t| !passed.contains(t))
        .collect();
    let summary = out.lines().last().unwrap_or_default();
    eprintln!(
        "docker-py 7.1.0 integration suite against berth serve: {} passed ({} listed) in {:?}: {summary}",
        passed.len(),
        expected.len(),
        started.elapsed()
    );
    // DOCKER_PY_PASSED=FILE: write this run's passes there (to update the
    // list after a fix).
    if let Some(f) = std::env::var_os("DOCKER_PY_PASSED") {
        let text: String = passed.iter().map(|t| format!("{t}\n")).collect();
        std::fs::write(f, text).unwrap();
    }
    let new: Vec<&&str> = passed.iter().filter(|t| !expected.contains(t)).collect();
    if !new.is_empty() {
        eprintln!("passing but not in docker-py-pass.txt: {new:#?}");
    }
    assert!(
        lost.is_empty(),
        "{} listed tests no longer pass: {lost:#?}\n{out}\n{}",
        lost.len(),
        stderr(&o)
    );
}
