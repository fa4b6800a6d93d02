//! `berth serve` (issue 19, root) under bad input and rough clients:
//! malformed or mistyped JSON, bodies over the limit, unknown fields, a
//! too-new version, hundreds of concurrent requests, clients that go away
//! mid-stream. Always dockerd's `{"message": …}` and status, never a
//! panic, no leaked thread or fd, and the server keeps serving.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use api_server::*;
use common::*;

const IMAGE: &str = "bb:test";

/// One request with a JSON body: (status, body).
fn post_json(socket: &Path, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // The server may answer (413) before reading it all.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, rest.to_string())
}

/// The server's threads and open fds, the database's aside: the server
/// keeps a few engines open (each with its connection's files) however
/// many clients came, see `db_fds`.
fn census(pid: u32) -> (usize, usize) {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|r| r.count())
        .unwrap_or(0);
    let fds = fd_targets(pid)
        .iter()
        .filter(|t| !t.contains("/db/berth.db"))
        .count();
    (threads, fds)
}

fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    std::fs::read_link(e.path())
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The database files the server holds open (its pool of engines).
fn db_fds(pid: u32) -> usize {
    fd_targets(pid)
        .iter()
        .filter(|t| t.contains("/db/berth.db"))
        .count()
}

/// Wait until the server is back to (at most) `base` threads and fds.
fn settles(pid: u32, base: (usize, usize)) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = census(pid);
        if (now.0 <= base.0 && now.1 <= base.1) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_input_gets_dockers_error_json_and_the_server_keeps_serving() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let cases: &[(&str, &[u8], u16, &str)] = &[
        ("/v1.41/containers/create", b"{bad", 400, "invalid JSON"),
        (
            "/v1.41/containers/create",
            b"{\"Image\": 5}",
            400,
            "invalid type",
        ),
        (
            "/v1.41/containers/create",
            b"{\"Image\": \"bb:test\", \"HostConfig\": {\"Memory\": \"lots\"}}",
            400,
            "invalid type",
        ),
        ("/v1.41/containers/create", b"{}", 400, "cannot be empty"),
        (
            "/v1.41/networks/create",
            b"{\"Name\": 7}",
            400,
            "invalid type",
        ),
        ("/v1.41/volumes/create", b"{\"Name\": [1]}", 400, "invalid"),
        (
            "/v1.41/containers/nosuch/exec",
            b"{\"Cmd\": [\"true\"]}",
            404,
            "No such container",
        ),
        (
            "/v1.41/containers/nosuch/kill?signal=NOPE",
            b"",
            400,
            "Invalid signal: NOPE",
        ),
        (
            "/v1.99/containers/create",
            b"",
            400,
            "client version 1.99 is too new",
        ),
        (
            "/v1.41/containers/create?name=bad%2Fname",
            b"{\"Image\": \"bb:test\"}",
            400,
            "Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
    ];
    for (path, body, status, text) in cases {
        let (got, answer) = post_json(&srv.socket, path, body);
        assert_eq!(got, *status, "POST {path}: {answer}");
        let doc: serde_json::Value = serde_json::from_str(answer.trim())
            .unwrap_or_else(|e| panic!("POST {path}: not JSON ({e}): {answer}"));
        let message = doc["message"].as_str().unwrap_or_default();
        assert!(message.contains(text), "POST {path}: {message}");
    }
    let (status, _, body) = srv.http("GET", "/v1.41/containers/json?filters=%7Bbad");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid filter"), "{body}");
    // A method the path does not take: still JSON.
    let (status, _, body) = srv.http("PUT", "/v1.41/containers/json");
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    // A body over the limit: refused, in JSON, before it is all read.
    let big = vec![b' '; 8 << 20];
    let (got, answer) = post_json(&srv.socket, "/v1.41/containers/create", &big);
    assert_eq!(got, 413, "{answer}");
    assert!(answer.contains("\"message\""), "{answer}");
    // Unknown fields are ignored, as dockerd ignores them.
    let (got, answer) = post_json(
        &srv.socket,
        "/v1.41/containers/create?name=tolerant",
        b"{\"Image\": \"bb:test\", \"FutureField\": {\"x\": 1}, \"HostConfig\": {\"Unknown\": true}}",
    );
    assert_eq!(got, 201, "{answer}");
    // Nothing half-made: the refused creates left no container.
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(),
        "tolerant"
    );
    let (status, _, body) = srv.http("GET", "/_ping");
    assert_eq!((status, body.as_str()), (200, "OK"));
}

#[test]
fn hundreds_of_clients_and_clients_that_go_away_leak_nothing() {
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        IMAGE,
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.1; done",
    ]);
    let pid = srv.child.id();
    // 300 clients at once, listing containers and pinging. The burst also
    // fills the server's pool of open engines (it keeps a few): what is
    // open after it is the baseline.
    let burst = |socket: std::path::PathBuf| {
        let workers: Vec<_> = (0..300)
            .map(|i| {
                let socket = socket.clone();
                std::thread::spawn(move || {
                    let path = if i % 2 == 0 {
                        "/v1.41/containers/json?all=1"
                    } else {
                        "/_ping"
                    };
                    http(&socket, "GET", path).0
                })
            })
            .collect();
        let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    };
    burst(srv.socket.clone());
    // Idle workers leave after a second.
    std::thread::sleep(Duration::from_millis(1500));
    let base = settles(pid, (usize::MAX, usize::MAX));

    // Streams whose client disconnects mid-way: logs -f, events, wait,
    // attach, stats.
    for path in [
        "/v1.41/containers/chatty/logs?follow=1&stdout=1",
        "/v1.41/events",
        "/v1.41/containers/chatty/stats",
    ] {
        let mut s = UnixStream::connect(&srv.socket).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: docker\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(s.read(&mut buf).unwrap() > 0, "{path}");
        drop(s);
    }
    for path in [
        "/v1.41/containers/chatty/wait",
        "/v1.41/containers/chatty/attach?stream=1&stdout=1",
    ] {
        let (status, s) = upgrade(&srv.socket, path, "");
        assert!(status == 200 || status == 101, "{path}: {status}");
        drop(s);
    }
    burst(srv.socket.clone());
    let after = settles(pid, base);
    assert!(
        after.0 <= base.0 && after.1 <= base.1,
        "threads and fds before {base:?}, after {after:?}: {:?}",
        fd_targets(pid)
    );
    // The database files held stay bounded by the blocking pool (64
    // threads, one connection each at most), however many clients came:
    // the server keeps 4 engines, and SQLite keeps a closed connection's
    // file open for reuse while another connection holds locks on it.
    let db = db_fds(pid);
    assert!(db <= 3 * 64 + 1, "{db} database fds: {:?}", fd_targets(pid));
    // Still serving, and the container still runs.
    let (status, _, _) = srv.http("GET", "/containers/chatty/json");
    assert_eq!(status, 200);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "chatty"])
            .trim(),
        "true"
    );
    b.ok(&["rm", "-f", "chatty"]);
}
