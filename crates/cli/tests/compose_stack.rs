//! The Compose tutorial's stack (root), with stand-in images built from
//! Debian's packages by `berth compose build` / `up --build` from one
//! Dockerfile (a shared base stage with every package, a small stage per
//! service): `db` (PostgreSQL, healthchecked with `pg_isready`), `cache`
//! (Redis, healthchecked with `redis-cli ping`), `web` (a Python stdlib
//! HTTP app that reaches `db` and `cache` by their service names) and
//! `proxy` (nginx in front of `web`, published on 127.0.0.1). The stack
//! starts by health, answers through the proxy, keeps its named volume
//! across `down`/`up`, scales `web` behind the service name, stays as it is
//! on a second `up`, recreates only the service that changed, and leaves
//! nothing behind after `down -v`.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use common::*;

/// Record the project's containers there are now (id and name) in `seen`.
fn note(b: &Berth, seen: &mut BTreeMap<String, String>) {
    for l in b
        .ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
        .lines()
    {
        if let Some((id, name)) = l.split_once(' ') {
            if name.starts_with("tutorial-") {
                seen.insert(id.to_string(), name.to_string());
            }
        }
    }
}

/// Names of every container whose name starts with `prefix`, sorted.
fn names_with_prefix(b: &Berth, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = b
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect();
    names.sort();
    names
}

/// `berth inspect NAME`, parsed: the one object.
fn inspect(b: &Berth, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn time(v: &serde_json::Value) -> DateTime<FixedOffset> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// When the container `name` first turned healthy: the end of the first
/// successful probe in `.State.Health.Log`. The log keeps the last five
/// probes: it must still hold the probes from the start (fewer than five,
/// or a failed one before the success) for the first success to be known.
fn first_healthy(b: &Berth, name: &str) -> DateTime<FixedOffset> {
    let c = inspect(b, name);
    let log = c["State"]["Health"]["Log"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} has no health log: {}", c["State"]));
    let first_ok = log
        .iter()
        .position(|p| p["ExitCode"] == 0)
        .unwrap_or_else(|| panic!("{name}: no successful probe: {}", c["State"]));
    assert!(
        log.len() < 5 || first_ok > 0,
        "{name}: the probes from the start have left the health log already, \
         the first success is not known: {}",
        c["State"]["Health"]
    );
    time(&log[first_ok]["End"])
}

/// The first line container `name` logged, with its timestamp (`logs -t`),
/// once there is one.
fn first_log_line(b: &Berth, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = b.ok(&["logs", "-t", name]);
        if let Some(l) = logs.lines().next() {
            return l.to_string();
        }
        assert!(Instant::now() < deadline, "{name} printed nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `GET /` on 127.0.0.1:`port`: the status and the body.
fn http_get(port: u16) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// How long a check through the gateway (a name lookup from the DNS
/// responder, a request through the proxy's published port) may take while
/// the services settle. Bridges have a MAC address of their own, so a
/// container leaving does not stall the others (it did for 30 to 56 s
/// before: `a_bridge_keeps_its_mac_address_when_containers_leave` in
/// network.rs); a check that has to wait long says so (`slow`).
const GATEWAY_WAIT: Duration = Duration::from_secs(60);

/// Say so when a check through the gateway had to wait (and whether it did).
fn slow(what: &str, since: Instant) -> bool {
    let took = since.elapsed();
    let slow = took > Duration::from_secs(3);
    if slow {
        eprintln!("note: {what} took {took:?} (see GATEWAY_WAIT)");
    }
    slow
}

/// `GET /` through the proxy until it answers 200 (the app may still be
/// starting): the body.
fn get_ok(b: &Berth, dir: &Path, port: u16) -> String {
    let since = Instant::now();
    let deadline = since + GATEWAY_WAIT;
    loop {
        let got = http_get(port);
        if let Ok((200, body)) = &got {
            slow("GET through the proxy", since);
            return body.clone();
        }
        if Instant::now() > deadline {
            let ps = compose(b, dir, &["ps", "-a"]);
            let logs = compose(b, dir, &["logs", "--no-color"]);
            panic!(
                "the proxy on 127.0.0.1:{port} did not answer 200: {got:?}\n{}\n{}{}",
                stdout(&ps),
                stdout(&logs),
                stderr(&logs)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A port on 127.0.0.1 that nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One base stage with every package (one RUN that fetches, on the host's
/// network: the tests keep the host's ip_forward off), then a small stage
/// per service. dpkg leaves out docs, man pages and translations and skips
/// fsync; no service is started and no cluster made at install.
const DOCKERFILE: &str = r#"FROM debian:bookworm AS base
RUN --network=host --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    printf 'path-exclude=/usr/share/doc/*\npath-exclude=/usr/share/man/*\npath-exclude=/usr/share/locale/*\nforce-unsafe-io\n' \
       > /etc/dpkg/dpkg.cfg.d/slim \
    && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       postgresql-15 redis-server nginx-light python3 >/dev/null \
    && echo "base-packages-installed"

FROM base AS db
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY db-start.sh /usr/local/bin/db-start.sh
CMD ["sh", "/usr/local/bin/db-start.sh"]

FROM base AS cache
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]

FROM base AS web
COPY app.py /app/app.py
CMD ["python3", "-u", "/app/app.py"]

FROM base AS proxy
COPY nginx.conf /etc/nginx/nginx.conf
CMD ["nginx"]
"#;

/// The database's entrypoint: a cluster in the (volume's) data directory
/// made on first start, trust auth, listening on every address.
const DB_START: &str = r#"#!/bin/sh
set -e
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "db: initdb"
  setpriv --reuid=postgres --regid=postgres --init-groups \
    initdb -D "$PGDATA" -U postgres --auth=trust --locale=C.UTF-8 >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
echo "db: starting postgres"
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  postgres -D "$PGDATA" -c listen_addresses=0.0.0.0
"#;

/// The app: says so when it starts; each GET checks that `db:5432` and
/// `cache:6379` take a connection and answers with its host name.
const APP: &str = r#"import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = socket.gethostname()
print(f"web: starting on {HOST} ({os.environ.get('GREETING')})", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def reaches(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        db, cache = reaches("db", 5432), reaches("cache", 6379)
        if db and cache:
            code, body = 200, f"ok db cache from {HOST}\n"
        else:
            code, body = 503, f"not ok: db={db} cache={cache} from {HOST}\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"#;

/// nginx in the foreground in front of `web:8000` (resolved at start: the
/// addresses the name has then, taken in turn).
const NGINX_CONF: &str = r#"daemon off;
worker_processes 1;
error_log stderr;
pid /run/nginx.pid;
events {
    worker_connections 64;
}
http {
    access_log off;
    server {
        listen 80;
        location / {
            proxy_pass http://web:8000;
        }
    }
}
"#;

// Health probes every second until healthy (start_interval), then every
// `interval` (as Docker: the start interval ends at the first success), so
// the first successful probe stays in `.State.Health.Log` (`first_healthy`).
const COMPOSE: &str = r#"
services:
  db:
    build:
      context: .
      entitlements: [network.host]
      target: db
    stop_signal: SIGINT
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
      interval: 30s
      start_period: 30s
      start_interval: 1s
    volumes:
      - pgdata:/var/lib/postgresql/data
  cache:
    build:
      context: .
      entitlements: [network.host]
      target: cache
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 30s
      start_period: 30s
      start_interval: 1s
  web:
    build:
      context: .
      entitlements: [network.host]
      target: web
    environment:
      GREETING: hello
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_healthy
  proxy:
    build:
      context: .
      entitlements: [network.host]
      target: proxy
    ports:
      - "127.0.0.1:PROXY_PORT:80"
    depends_on:
      web:
        condition: service_started
volumes:
  pgdata:
"#;

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).unwrap();
}

/// The project directory `tutorial` with its Dockerfile, files and
/// compose.yaml (the proxy published on `port`).
fn project(b: &Berth, port: u16) -> PathBuf {
    let dir = b.path().join("tutorial");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "Dockerfile", DOCKERFILE);
    write(&dir, "db-start.sh", DB_START);
    write(&dir, "app.py", APP);
    write(&dir, "nginx.conf", NGINX_CONF);
    write(
        &dir,
        "compose.yaml",
        &COMPOSE.replace("PROXY_PORT", &port.to_string()),
    );
    dir
}

/// `psql -c SQL` in the db container: its output (unaligned, tuples only).
fn psql(b: &Berth, dir: &Path, sql: &str) -> String {
    let (out, _) = compose_ok(
        b,
        dir,
        &[
            "exec",
            "-T",
            "db",
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ],
    );
    out
}

/// The IPv4 addresses `name` resolves to in the service `service`'s
/// container (`getent ahostsv4`), sorted, once they are `want` (or the
/// last answer, after GATEWAY_WAIT).
fn resolve(b: &Berth, dir: &Path, service: &str, name: &str, want: &[String]) -> Vec<String> {
    let since = Instant::now();
    loop {
        let o = compose(b, dir, &["exec", "-T", service, "getent", "ahostsv4", name]);
        let set: BTreeSet<String> = stdout(&o)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        let got: Vec<String> = set.into_iter().collect();
        if got == want || since.elapsed() > GATEWAY_WAIT {
            slow(&format!("resolving {name} in {service}"), since);
            return got;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How many times the base stage's RUN ran in a build's progress: the
/// lines its `echo` printed (`#2 45.6 base-packages-installed`), not the
/// step's own line (which ends with the quoted word).
fn installs(progress: &str) -> usize {
    progress
        .lines()
        .filter(|l| l.ends_with(" base-packages-installed"))
        .count()
}

#[test]
fn the_tutorial_stack_builds_starts_by_health_scales_keeps_its_data_and_goes() {
    let started = Instant::now();
    let b = Berth::new();
    import_debian(&b);
    let port = free_port();
    let dir = project(&b, port);
    // Every container the project had: id and name.
    let mut seen: BTreeMap<String, String> = BTreeMap::new();

    // compose build: the base stage (every package) is built once, the
    // other services' builds take it from the cache.
    let (out, err) = compose_ok(&b, &dir, &["build"]);
    let progress = out + &err;
    for s in ["db", "cache", "web", "proxy"] {
        assert!(
            progress.contains(&format!("Service {s}  Built")),
            "{progress}"
        );
    }
    assert_eq!(installs(&progress), 1, "{progress}");
    for s in ["db", "cache", "web", "proxy"] {
        b.ok(&["image", "inspect", &format!("tutorial-{s}")]);
    }
    eprintln!("built in {:?}", started.elapsed());

    // up -d --build: rebuilt (all from the cache), then started in the
    // order of health: web once db and cache are healthy.
    let (out, err) = compose_ok(&b, &dir, &["up", "-d", "--build"]);
    let progress = out + &err;
    assert_eq!(
        installs(&progress),
        0,
        "the base stage should come from the cache: {progress}"
    );
    assert!(progress.contains("Service web  Built"), "{progress}");
    assert!(
        progress.contains("Network tutorial_default  Created"),
        "{progress}"
    );
    assert!(
        progress.contains("Volume \"tutorial_pgdata\"  Created"),
        "{progress}"
    );
    let at = |what: &str| {
        progress
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in {progress}"))
    };
    let web_started = at("Container tutorial-web-1  Started");
    assert!(at("Container tutorial-db-1  Healthy") < web_started);
    assert!(at("Container tutorial-cache-1  Healthy") < web_started);
    assert!(web_started < at("Container tutorial-proxy-1  Started"));

    // As the engine recorded it: web started, and printed its first line,
    // after db's first successful probe (and cache's).
    let db_healthy = first_healthy(&b, "tutorial-db-1");
    let cache_healthy = first_healthy(&b, "tutorial-cache-1");
    let web = inspect(&b, "tutorial-web-1");
    let web_start = time(&web["State"]["StartedAt"]);
    assert!(
        web_start >= db_healthy && web_start >= cache_healthy,
        "web started at {web_start}, db healthy at {db_healthy}, cache at {cache_healthy}"
    );
    let first_line = first_log_line(&b, "tutorial-web-1");
    let (stamp, text) = first_line.split_once(' ').unwrap();
    assert!(text.starts_with("web: starting on "), "{first_line}");
    assert!(text.ends_with("(hello)"), "{first_line}");
    let printed = DateTime::parse_from_rfc3339(stamp).unwrap();
    eprintln!(
        "db healthy at {db_healthy}, cache at {cache_healthy}; web started at {web_start}, \
         printed at {printed}"
    );
    assert!(
        printed >= db_healthy,
        "web's first line at {printed}, db healthy at {db_healthy}"
    );

    // Through the proxy's published port: web reached db and cache by
    // their service names.
    let body = get_ok(&b, &dir, port);
    let web_host = web["Config"]["Hostname"].as_str().unwrap().to_string();
    assert_eq!(body, format!("ok db cache from {web_host}\n"));
    let (out, _) = compose_ok(
        &b,
        &dir,
        &["ps", "--format", "{{.Name}} {{.Service}} {{.State}}"],
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "tutorial-cache-1 cache running",
            "tutorial-db-1 db running",
            "tutorial-proxy-1 proxy running",
            "tutorial-web-1 web running",
        ]
    );
    let names = ["db", "cache", "web", "proxy"].map(|s| format!("tutorial-{s}-1"));
    let before: Vec<String> = names.iter().map(|n| id_of(&b, n)).collect();
    note(&b, &mut seen);

    // up -d again with the same file: nothing changes.
    let (_, err) = compose_ok(&b, &dir, &["up", "-d"]);
    for n in &names {
        assert!(err.contains(&format!("Container {n}  Running")), "{err}");
    }
    assert!(!err.contains("Recreate"), "{err}");
    let again: Vec<String> = names.iter().map(|n| id_of(&b, n)).collect();
    assert_eq!(before, again);

    // Editing web's environment recreates web alone.
    std::fs::write(
        dir.join("compose.yaml"),
        COMPOSE
            .replace("PROXY_PORT", &port.to_string())
            .replace("GREETING: hello", "GREETING: bonjour"),
    )
    .unwrap();
    let (_, err) = compose_ok(&b, &dir, &["up", "-d"]);
    assert!(err.contains("Container tutorial-web-1  Recreated"), "{err}");
    for (i, n) in names.iter().enumerate() {
        let id = id_of(&b, n);
        if n == "tutorial-web-1" {
            assert_ne!(id, before[i], "web was not recreated");
        } else {
            assert_eq!(id, before[i], "{n} was recreated: {err}");
        }
    }
    let (env, _) = compose_ok(&b, &dir, &["exec", "-T", "web", "printenv", "GREETING"]);
    assert_eq!(env, "bonjour\n");
    let first_line = first_log_line(&b, "tutorial-web-1");
    assert!(first_line.ends_with(" (bonjour)"), "{first_line}");

    // --scale web=3: three containers, all behind the service name.
    compose_ok(&b, &dir, &["up", "-d", "--scale", "web=3"]);
    let webs = names_with_prefix(&b, "tutorial-web-");
    assert_eq!(webs, ["tutorial-web-1", "tutorial-web-2", "tutorial-web-3"]);
    note(&b, &mut seen);
    let mut web_ips = Vec::new();
    let mut web_hosts = BTreeSet::new();
    for w in &webs {
        let c = inspect(&b, w);
        let nets = c["NetworkSettings"]["Networks"].as_object().unwrap();
        web_ips.push(
            nets["tutorial_default"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        web_hosts.insert(c["Config"]["Hostname"].as_str().unwrap().to_string());
    }
    web_ips.sort();
    assert_eq!(resolve(&b, &dir, "proxy", "web", &web_ips), web_ips);
    // nginx takes the name's addresses when it starts: restarted, it sends
    // requests to the three in turn.
    compose_ok(&b, &dir, &["restart", "proxy"]);
    let since = Instant::now();
    let mut answered = BTreeSet::new();
    let mut failures = Vec::new();
    while answered != web_hosts && since.elapsed() < GATEWAY_WAIT {
        match http_get(port) {
            Ok((200, body)) => {
                let host = body
                    .strip_prefix("ok db cache from ")
                    .unwrap_or_else(|| panic!("{body}"));
                answered.insert(host.trim().to_string());
            }
            other => {
                failures.push(format!("{other:?}"));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    if slow("reaching the three webs through the proxy", since) {
        let (out, err) = compose_ok(&b, &dir, &["logs", "--no-color", "proxy"]);
        eprintln!("note: failed GETs: {failures:?}; the proxy's log:\n{out}{err}");
    }
    assert_eq!(answered, web_hosts, "failed GETs: {failures:?}");

    // The named volume's data survives down and up.
    psql(
        &b,
        &dir,
        "create table kept (v text); insert into kept values ('survives down')",
    );
    compose_ok(
        &b,
        &dir,
        &[
            "exec",
            "-T",
            "db",
            "createdb",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "shop",
        ],
    );
    note(&b, &mut seen);
    let (_, err) = compose_ok(&b, &dir, &["down"]);
    assert!(err.contains("Network tutorial_default  Removed"), "{err}");
    assert!(ids_with_prefix(&b, "tutorial-").is_empty());
    assert!(b.ok(&["volume", "ls", "-q"]).contains("tutorial_pgdata"));
    compose_ok(&b, &dir, &["up", "-d"]);
    note(&b, &mut seen);
    // The file says one web: the scale is back to one.
    assert_eq!(names_with_prefix(&b, "tutorial-web-"), ["tutorial-web-1"]);
    assert_eq!(psql(&b, &dir, "select v from kept"), "survives down\n");
    assert_eq!(
        psql(
            &b,
            &dir,
            "select datname from pg_database where datname = 'shop'"
        ),
        "shop\n"
    );
    let db_log = b.ok(&["logs", "tutorial-db-1"]);
    assert!(!db_log.contains("db: initdb"), "{db_log}");
    let body = get_ok(&b, &dir, port);
    assert!(body.starts_with("ok db cache from "), "{body}");

    // down -v: the containers, the network and the volume go, and nothing
    // of the containers is left on the host.
    let (_, err) = compose_ok(&b, &dir, &["down", "-v"]);
    assert!(err.contains("Volume tutorial_pgdata  Removed"), "{err}");
    assert!(err.contains("Network tutorial_default  Removed"), "{err}");
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    assert!(!b.ok(&["network", "ls"]).contains("tutorial_default"));
    let ids: Vec<String> = seen.keys().cloned().collect();
    let mut left = leftovers(&b, &ids);
    if !left.is_empty() {
        // The kernel takes a container's veth away with its network
        // namespace, in the background: on a busy machine that can take
        // longer than the five seconds `leftovers` waits. Say so, and wait
        // longer before calling it left behind.
        eprintln!("note: still there 5 s after down -v: {left:#?}\ncontainers: {seen:#?}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
            left = leftovers(&b, &ids);
        }
    }
    assert_eq!(left, Vec::<String>::new(), "containers: {seen:#?}");
    assert!(
        http_get(port).is_err(),
        "127.0.0.1:{port} still answers after down -v"
    );
    eprintln!("the tutorial stack took {:?}", started.elapsed());
}
