//! `berth serve`'s system and container-filesystem endpoints driven by the
//! real docker CLI (Debian's 20.10, API 1.41, and whatever `docker` is
//! first in PATH): `events`, `system df`, `top`, `stats`, `diff`,
//! `export`, `cp` both ways, `update`, `container prune`, checked with
//! berth's own CLI. The answers asserted on the wire are dockerd 20.10's,
//! recorded from a private dockerd (own netns, data root and socket) with
//! curl; each is quoted where it is used.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use api_server::*;
use common::*;
use serde_json::Value;

/// One request with an optional body; (status, head, body), a chunked
/// body reassembled.
fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, head, rest.to_vec());
    }
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        body.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
        rest = &rest[eol + 2 + n + 2..];
    }
    (status, head, body)
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// `%`-encoding for a query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The server's threads named `name`.
fn threads_named(srv: &Server, name: &str) -> usize {
    let dir = format!("/proc/{}/task", srv.child.id());
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn events_system_df_and_container_prune() {
    let b = Berth::new();
    let srv = Server::start(&b);

    // events: what berth's CLI did, replayed between --since and --until.
    let since = now_secs();
    b.ok(&["run", "--name", "ev1", "--label", "tier=x", IMAGE, "true"]);
    b.ok(&["rm", "ev1"]);
    b.ok(&["network", "create", "n1"]);
    b.ok(&["network", "rm", "n1"]);
    std::thread::sleep(Duration::from_millis(1100));
    let until = now_secs();
    let (s, u) = (since.to_string(), until.to_string());
    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let all = srv.docker_ok(&["events", "--since", &s, "--until", &u, "--format", fmt]);
    let lines: Vec<&str> = all.lines().collect();
    let want = [
        "container create ev1",
        "container start ev1",
        "container die ev1",
        "container destroy ev1",
        "network create n1",
        "network destroy n1",
    ];
    let mut at = 0;
    for w in want {
        let found = lines[at..].iter().position(|l| *l == w);
        assert!(found.is_some(), "{w:?} in order in {all}");
        at += found.unwrap() + 1;
    }
    let nets = srv.docker_ok(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "type=network",
        "--format",
        fmt,
    ]);
    // As dockerd: ev1's start connected it to the default bridge, its end
    // disconnected it.
    assert_eq!(
        nets,
        "network connect bridge\nnetwork disconnect bridge\nnetwork create n1\nnetwork destroy n1\n"
    );
    let died = srv.docker_ok(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "event=die",
        "--filter",
        "container=ev1",
        "--format",
        "{{.Status}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(died, "die 0\n");
    // A container's labels are among its events' attributes (recorded:
    // `"Attributes":{"exitCode":"0","image":"bb:test","name":"ev1","tier":"x"}`).
    let labelled = srv.docker_ok(&[
        "events",
        "--since",
        &s,
        "--until",
        &u,
        "--filter",
        "label=tier=x",
        "--format",
        "{{.Action}} {{.Actor.Attributes.tier}}",
    ]);
    assert_eq!(labelled, "create x\nstart x\ndie x\ndestroy x\n");
    // The wire, in the old filter encoding: dockerd's legacy fields on
    // container events (recorded: `{"status":"die","id":…,"from":"bb:test",
    // "Type":"container","Action":"die","Actor":{"ID":…,"Attributes":{
    // "exitCode":"0","image":"bb:test","name":"ev1",…}},"scope":"local",
    // "time":…,"timeNano":…}`), headers `200`, `Content-Type:
    // application/json`.
    let q = format!(
        "/v1.41/events?since={s}&until={u}&filters={}",
        enc(r#"{"event":["die"]}"#)
    );
    let (status, head, body) = request(&srv.socket, "GET", &q, b"");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let ev = json_of(&body);
    assert_eq!(ev["status"], "die");
    assert_eq!(ev["from"], IMAGE);
    assert_eq!(ev["id"], ev["Actor"]["ID"]);
    assert_eq!(ev["scope"], "local");
    assert_eq!(ev["Actor"]["Attributes"]["name"], "ev1");
    assert_eq!(
        ev["timeNano"].as_i64().unwrap() / 1_000_000_000,
        ev["time"].as_i64().unwrap()
    );
    // dockerd 20.10 ignores unknown keys for events (every event answers).
    let q = format!(
        "/v1.41/events?since={s}&until={u}&filters={}",
        enc(r#"{"bogus":{"x":true}}"#)
    );
    let (status, _, body) = request(&srv.socket, "GET", &q, b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).lines().count() >= 6);
    // Recorded: `{"message":"strconv.ParseInt: parsing \"abc\": invalid syntax"}`.
    let (status, _, body) = request(&srv.socket, "GET", "/v1.41/events?since=abc", b"");
    assert_eq!(status, 400);
    assert_eq!(
        json_of(&body)["message"],
        "strconv.ParseInt: parsing \"abc\": invalid syntax"
    );

    // Following: live events arrive; a client that goes takes its
    // follower with it.
    let mut s = UnixStream::connect(&srv.socket).unwrap();
    write!(s, "GET /v1.41/events HTTP/1.1\r\nHost: docker\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    assert!(status_line.contains("200"), "{status_line}");
    wait_for("the events follower", || {
        threads_named(&srv, "berth-events") == 1
    });
    b.ok(&["volume", "create", "live-one"]);
    let mut seen = String::new();
    while !seen.contains("live-one") {
        let mut l = String::new();
        assert_ne!(r.read_line(&mut l).unwrap(), 0, "the stream ended");
        seen.push_str(&l);
    }
    drop(r);
    drop(s);
    wait_for("the follower to end", || {
        threads_named(&srv, "berth-events") == 0
    });
    b.ok(&["volume", "rm", "live-one"]);

    // system df: the docker CLI's summary is berth's.
    b.ok(&["volume", "create", "vol1"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "withvol",
        "-v",
        "vol1:/data",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /data/x; exec sleep 300",
    ]);
    b.ok(&["create", "--name", "idle", IMAGE]);
    wait_for("the volume's content", || {
        b.run(&["exec", "withvol", "cat", "/data/x"])
            .status
            .success()
    });
    // (Sizes: berth's CLI rounds them its own way; the document's are
    // checked below.)
    let fmt = "{{.Type}} {{.TotalCount}} {{.Active}}";
    assert_eq!(
        srv.docker_ok(&["system", "df", "--format", fmt]),
        b.ok(&["system", "df", "--format", fmt])
    );
    let v = srv.docker_ok(&["system", "df", "-v"]);
    for w in [
        "Images space usage",
        "withvol",
        "idle",
        "vol1",
        "Build cache usage",
    ] {
        assert!(v.contains(w), "{w} in {v}");
    }
    // The document (recorded keys: LayersSize, Images, Containers with
    // SizeRootFs, Volumes with UsageData {RefCount, Size}, BuildCache
    // null, BuilderSize).
    let (status, _, body) = request(&srv.socket, "GET", "/v1.41/system/df", b"");
    assert_eq!(status, 200);
    let df = json_of(&body);
    assert!(df["LayersSize"].as_u64().unwrap() > 0);
    assert_eq!(df["Images"][0]["Containers"], 2);
    assert_eq!(df["Images"][0]["SharedSize"], 0);
    assert!(df["Containers"][0]["SizeRootFs"].as_u64().unwrap() > 0);
    let vol = &df["Volumes"][0];
    assert_eq!(vol["Name"], "vol1");
    assert_eq!(vol["UsageData"]["RefCount"], 1);
    assert!(vol["UsageData"]["Size"].as_u64().unwrap() > 0);
    assert_eq!(df["BuildCache"], Value::Null);
    assert_eq!(df["BuilderSize"], 0);

    // container prune with a label! filter, then all stopped ones.
    b.ok(&["run", "--name", "p1", "--label", "keep=1", IMAGE, "true"]);
    b.ok(&["run", "--name", "p2", IMAGE, "true"]);
    let p2 = id_of(&b, "p2");
    let out = srv.docker_ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains(&p2), "{out}");
    let names = b.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(names.contains("p1") && !names.contains("p2") && !names.contains("idle"));
    srv.docker_ok(&["container", "prune", "-f"]);
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(),
        "withvol"
    );
    // Recorded: nothing left → `{"ContainersDeleted":null,"SpaceReclaimed":0}`;
    // an unknown filter → 400 `{"message":"Invalid filter 'bogus'"}`.
    let (status, _, body) = request(&srv.socket, "POST", "/v1.41/containers/prune", b"");
    assert_eq!(status, 200);
    assert_eq!(
        json_of(&body),
        serde_json::json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
    );
    let q = format!(
        "/v1.41/containers/prune?filters={}",
        enc(r#"{"bogus":["x"]}"#)
    );
    let (status, _, body) = request(&srv.socket, "POST", &q, b"");
    assert_eq!(status, 400);
    assert_eq!(json_of(&body)["message"], "Invalid filter 'bogus'");
    b.ok(&["rm", "-f", "withvol"]);
}

#[test]
fn top_stats_diff_export_and_update() {
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&["run", "-d", "--name", "web", IMAGE, "sleep", "300"]);
    b.ok(&["create", "--name", "idle", IMAGE]);
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    let pid = pid.trim();

    // top: `ps -ef` by default, other ps options passed on.
    let top = srv.docker_ok(&["top", "web"]);
    let mut lines = top.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let row = lines.next().unwrap();
    assert_eq!(row.split_whitespace().nth(1), Some(pid), "{top}");
    assert!(row.ends_with("sleep 300"), "{top}");
    let top = srv.docker_ok(&["top", "web", "-o", "pid,comm"]);
    assert_eq!(
        top.split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND", pid, "sleep"]
    );
    // Recorded: 409 `Container <id> is not running`; 500 `Couldn't find
    // PID field in ps output`.
    let o = srv.docker(&["top", "idle"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    let o = srv.docker(&["top", "web", "-o", "comm"]);
    assert!(
        stderr(&o).contains("Couldn't find PID field in ps output"),
        "{}",
        stderr(&o)
    );

    // stats --no-stream: the docker CLI's figures from berth's readings.
    let fmt = "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}";
    let ours = srv.docker_ok(&["stats", "--no-stream", "--format", fmt, "web"]);
    let f: Vec<&str> = ours.trim().split('|').collect();
    assert_eq!((f[0], f[2]), ("web", "1"), "{ours}");
    let theirs = b.ok(&["stats", "--no-stream", "--format", fmt, "web"]);
    let limit = |s: &str| {
        s.split('|')
            .nth(1)
            .unwrap()
            .split(" / ")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(limit(&ours), limit(&theirs));
    assert_ne!(f[1].split(" / ").next(), Some("0B"), "{ours}");
    assert!(f[3].ends_with('%'), "{ours}");
    // Recorded shapes: one-shot has no preread ("0001-01-01T00:00:00Z");
    // a container that does not run answers zeros.
    let (status, _, body) = request(
        &srv.socket,
        "GET",
        "/v1.41/containers/web/stats?stream=false&one-shot=true",
        b"",
    );
    assert_eq!(status, 200);
    let st = json_of(&body);
    assert_eq!(st["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(st["pids_stats"]["current"], 1);
    assert_eq!(st["name"], "/web");
    assert!(st["memory_stats"]["limit"].as_u64().unwrap() > 0);
    assert!(st["cpu_stats"]["online_cpus"].as_u64().unwrap() > 0);
    let (_, _, body) = request(
        &srv.socket,
        "GET",
        "/v1.41/containers/idle/stats?stream=false",
        b"",
    );
    let st = json_of(&body);
    assert_eq!(st["read"], "0001-01-01T00:00:00Z");
    assert_eq!(st["memory_stats"], serde_json::json!({}));
    assert_eq!(st["blkio_stats"]["io_service_bytes_recursive"], Value::Null);

    // diff: what berth's own diff says; `null` for none (recorded).
    b.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "echo hello > /tmp/new; rm /bin/vi; mkdir /etc/foo",
    ]);
    let sorted = |s: String| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let d = sorted(srv.docker_ok(&["diff", "web"]));
    assert_eq!(d, sorted(b.ok(&["diff", "web"])));
    for w in ["A /tmp/new", "D /bin/vi", "A /etc/foo", "C /bin"] {
        assert!(d.iter().any(|l| l == w), "{w} in {d:?}");
    }
    let (status, _, body) = request(&srv.socket, "GET", "/v1.41/containers/idle/changes", b"");
    assert_eq!((status, body.as_slice()), (200, &b"null"[..]));

    // export, running and stopped.
    let out = b.path().join("web.tar");
    srv.docker_ok(&["export", "-o", out.to_str().unwrap(), "web"]);
    let names = tar_names(&std::fs::read(&out).unwrap());
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(names.iter().any(|n| n == "tmp/new"));
    assert!(!names.iter().any(|n| n == "bin/vi"));
    let out = b.path().join("idle.tar");
    srv.docker_ok(&["export", "-o", out.to_str().unwrap(), "idle"]);
    assert!(tar_names(&std::fs::read(&out).unwrap())
        .iter()
        .any(|n| n == "etc/passwd"));
    let o = srv.docker(&[
        "export",
        "-o",
        b.path().join("nosuch.tar").to_str().unwrap(),
        "nosuch",
    ]);
    assert!(stderr(&o).contains("No such container: nosuch"));

    // update: the limits and the policy, live in the cgroup.
    srv.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--restart",
        "on-failure:3",
        "web",
    ]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "web"
        ])
        .trim(),
        "67108864 134217728 on-failure 3"
    );
    let id = id_of(&b, "web");
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
    ))
    .unwrap();
    assert_eq!(limit.trim(), "67108864");
    // Recorded: `{"Warnings":null}`; a bad policy is a 400 `invalid
    // restart policy 'bogus'`.
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/containers/web/update",
        br#"{"CpuShares":0,"Memory":0,"PidsLimit":50,"RestartPolicy":{"Name":"","MaximumRetryCount":0}}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body), serde_json::json!({"Warnings": null}));
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}}",
            "web"
        ])
        .trim(),
        "50 67108864"
    );
    let o = srv.docker(&["update", "--restart", "bogus", "web"]);
    assert!(
        stderr(&o).contains("invalid restart policy 'bogus'"),
        "{}",
        stderr(&o)
    );
    b.ok(&["rm", "-f", "web", "idle"]);
}

fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| {
            String::from_utf8_lossy(&e.unwrap().path_bytes())
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

/// The decoded `X-Docker-Container-Path-Stat` of a head.
fn path_stat(head: &str) -> Value {
    let line = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("x-docker-container-path-stat:")
        })
        .unwrap_or_else(|| panic!("no stat header in {head}"));
    let b64 = line.split_once(':').unwrap().1.trim();
    let out = feed(
        {
            let mut c = std::process::Command::new("base64");
            c.arg("-d");
            c
        },
        b64.as_bytes(),
    );
    json_of(&out.stdout)
}

#[test]
fn docker_cp_both_ways_stays_inside_the_container() {
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&["run", "-d", "--name", "web", IMAGE, "sleep", "300"]);
    b.ok(&["create", "--name", "idle", IMAGE]);
    b.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /d/sub /e && echo one > /d/a.txt && echo two > /d/sub/b.txt \
         && chmod 640 /d/a.txt && touch -d @1700000000 /d/a.txt \
         && ln -s /etc/passwd /d/lnk && ln -s ../../../../../etc /e/esc",
    ]);
    let host = b.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();
    let container_passwd = b.ok(&["exec", "web", "cat", "/etc/passwd"]);

    // The stat header (recorded from dockerd for the same file:
    // `{"name":"a.txt","size":4,"mode":416,"mtime":"2023-11-14T22:13:20Z",
    // "linkTarget":""}`; a symlink's linkTarget resolved in the container:
    // `../../../../../etc` from /e is `/etc`).
    let (status, head, body) = request(
        &srv.socket,
        "HEAD",
        "/v1.41/containers/web/archive?path=/d/a.txt",
        b"",
    );
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(
        path_stat(&head),
        serde_json::json!({"name":"a.txt","size":4,"mode":416,"mtime":"2023-11-14T22:13:20Z","linkTarget":""})
    );
    let (_, head, _) = request(
        &srv.socket,
        "HEAD",
        "/v1.41/containers/web/archive?path=/e/esc",
        b"",
    );
    let st = path_stat(&head);
    assert_eq!(
        (st["name"].as_str(), st["mode"].as_u64()),
        (Some("esc"), Some(134218239))
    );
    assert_eq!(st["linkTarget"], "/etc");
    // Recorded: 404 `Could not find the file /nope in container web`.
    let (status, _, body) = request(
        &srv.socket,
        "GET",
        "/v1.41/containers/web/archive?path=/nope",
        b"",
    );
    assert_eq!(status, 404);
    assert_eq!(
        json_of(&body)["message"],
        "Could not find the file /nope in container web"
    );
    let (status, head, body) = request(
        &srv.socket,
        "GET",
        "/v1.41/containers/web/archive?path=/d",
        b"",
    );
    assert_eq!(status, 200);
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/x-tar"));
    let mut names = tar_names(&body);
    names.sort();
    assert_eq!(names, ["d", "d/a.txt", "d/lnk", "d/sub", "d/sub/b.txt"]);

    // Out of the container: a directory, its contents, a file, a symlink
    // (kept as one, or followed with -L inside the container).
    srv.docker_ok(&["cp", "web:/d", &h("dcopy")]);
    assert_eq!(
        std::fs::read_to_string(host.join("dcopy/sub/b.txt")).unwrap(),
        "two\n"
    );
    srv.docker_ok(&["cp", "web:/d/.", &h("contents")]);
    assert_eq!(
        std::fs::read_to_string(host.join("contents/a.txt")).unwrap(),
        "one\n"
    );
    assert!(host.join("contents/sub/b.txt").exists());
    srv.docker_ok(&["cp", "web:/d/lnk", &h("lnk")]);
    assert_eq!(
        std::fs::read_link(host.join("lnk")).unwrap(),
        Path::new("/etc/passwd")
    );
    srv.docker_ok(&["cp", "-L", "web:/d/lnk", &h("passwd")]);
    assert_eq!(
        std::fs::read_to_string(host.join("passwd")).unwrap(),
        container_passwd
    );
    // A symlink pointing out of the root, followed: the container's /etc.
    srv.docker_ok(&["cp", "web:/e/esc/", &h("etc")]);
    assert_eq!(
        std::fs::read_to_string(host.join("etc/passwd")).unwrap(),
        container_passwd
    );
    let o = srv.docker(&["cp", "web:/nope", &h("x")]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("/nope"), "{}", stderr(&o));

    // Into the container: files, directories, through a symlink pointing
    // out of its root (it lands in the container's /etc, not the host's).
    std::fs::create_dir_all(host.join("src/dir/inner")).unwrap();
    std::fs::write(host.join("src/f1.txt"), "f1\n").unwrap();
    std::fs::write(host.join("src/dir/inner/x"), "inner\n").unwrap();
    let escape = format!("berth-cp-{}.txt", std::process::id());
    std::fs::write(host.join(&escape), "inside\n").unwrap();
    srv.docker_ok(&["cp", &h("src/f1.txt"), "web:/d/"]);
    srv.docker_ok(&["cp", &h("src/f1.txt"), "web:/d/renamed.txt"]);
    srv.docker_ok(&["cp", &h("src/dir"), "web:/d/newdir"]);
    srv.docker_ok(&["cp", &h(&escape), "web:/e/esc/"]);
    assert_eq!(b.ok(&["exec", "web", "cat", "/d/f1.txt"]), "f1\n");
    assert_eq!(b.ok(&["exec", "web", "cat", "/d/renamed.txt"]), "f1\n");
    assert_eq!(
        b.ok(&["exec", "web", "cat", "/d/newdir/inner/x"]),
        "inner\n"
    );
    assert_eq!(
        b.ok(&["exec", "web", "cat", &format!("/etc/{escape}")]),
        "inside\n"
    );
    assert!(!Path::new("/etc").join(&escape).exists());
    // A directory onto a file: the docker CLI refuses; a missing parent
    // is dockerd's 404.
    assert_ne!(code(&srv.docker(&["cp", &h("src/dir"), "web:/d/a.txt"])), 0);
    let o = srv.docker(&["cp", &h("src/f1.txt"), "web:/nope/x"]);
    assert_ne!(code(&o), 0);

    // A stopped container: its layers, mounted by the op's helper.
    srv.docker_ok(&["cp", &h("src/dir/."), "idle:/tmp/"]);
    srv.docker_ok(&["cp", "idle:/tmp/inner/x", &h("from-idle")]);
    assert_eq!(
        std::fs::read_to_string(host.join("from-idle")).unwrap(),
        "inner\n"
    );

    // PUT on the wire: not a directory, and noOverwriteDirNonDir
    // (recorded: 500 `extraction point is not a directory`; 500 `…cannot
    // overwrite directory "/d/sub" with non-directory…`).
    let mut t = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_size(3);
    hd.set_mode(0o644);
    hd.set_cksum();
    t.append_data(&mut hd, "sub", &b"new"[..]).unwrap();
    let tarball = t.into_inner().unwrap();
    let (status, _, body) = request(
        &srv.socket,
        "PUT",
        "/v1.41/containers/web/archive?path=/d/a.txt",
        &tarball,
    );
    assert_eq!(status, 500);
    assert_eq!(
        json_of(&body)["message"]
            .as_str()
            .map(|m| m.contains("extraction point is not a directory")),
        Some(true)
    );
    let (status, _, body) = request(
        &srv.socket,
        "PUT",
        "/v1.41/containers/web/archive?path=/d&noOverwriteDirNonDir=true",
        &tarball,
    );
    assert_eq!(status, 500);
    assert_eq!(
        json_of(&body)["message"],
        r#"Error processing tar file(exit status 1): cannot overwrite directory "/d/sub" with non-directory "/d""#
    );
    assert_eq!(b.ok(&["exec", "web", "cat", "/d/sub/b.txt"]), "two\n");
    let (status, _, body) = request(
        &srv.socket,
        "PUT",
        "/v1.41/containers/web/archive?path=/e",
        &tarball,
    );
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(b.ok(&["exec", "web", "cat", "/e/sub"]), "new");
    // No socket of a request is left behind.
    let left: Vec<_> = std::fs::read_dir(&b.runroot)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("api-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    b.ok(&["rm", "-f", "web", "idle"]);
}

/// Owners of what is copied in, as dockerd 20.10 sets them (recorded,
/// `api_fixtures/dockerd-20.10-cp-stats-build.txt`): the tar's uid/gid are
/// kept, with or without `copyUIDGID` (`docker cp -a`), unless the
/// container has a user: then `-a` makes every entry that user's. (dockerd
/// looks the user up on the host and refuses `app`, which only the
/// container knows; berth resolves it in the container.) And dockerd's
/// words when `noOverwriteDirNonDir` refuses an entry.
#[test]
fn docker_cp_in_keeps_the_tars_owners_and_a_takes_the_containers_user() {
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "300"]);
    b.ok(&[
        "run", "-d", "--name", "user", "-u", "app", IMAGE, "sleep", "300",
    ]);
    b.ok(&[
        "create",
        "--name",
        "idle",
        "-u",
        "app:wheel",
        IMAGE,
        "sleep",
        "300",
    ]);
    let host = b.path().join("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("f"), "f\n").unwrap();
    std::fs::write(host.join("dir/sub/g"), "g\n").unwrap();
    for p in ["f", "dir", "dir/sub", "dir/sub/g"] {
        std::os::unix::fs::lchown(host.join(p), Some(1234), Some(4321)).unwrap();
    }
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();
    let owner = |c: &str, p: &str| {
        b.ok(&["exec", "-u", "0", c, "stat", "-c", "%u:%g", p])
            .trim()
            .to_string()
    };

    srv.docker_ok(&["cp", &h("f"), "plain:/o1"]);
    srv.docker_ok(&["cp", "-a", &h("f"), "plain:/o2"]);
    srv.docker_ok(&["cp", &h("f"), "user:/tmp/o3"]);
    srv.docker_ok(&["cp", "-a", &h("dir"), "user:/tmp/"]);
    assert_eq!(owner("plain", "/o1"), "1234:4321");
    assert_eq!(owner("plain", "/o2"), "1234:4321");
    assert_eq!(owner("user", "/tmp/o3"), "1234:4321");
    for p in ["/tmp/dir", "/tmp/dir/sub", "/tmp/dir/sub/g"] {
        assert_eq!(owner("user", p), "1000:1000", "{p}");
    }
    // A stopped container (its root mounted by the op's helper); its user
    // names a group too.
    srv.docker_ok(&["cp", "-a", &h("dir"), "idle:/tmp/"]);
    srv.docker_ok(&["cp", &h("f"), "idle:/tmp/kept"]);
    b.ok(&["start", "idle"]);
    let idle_owner = |p: &str| {
        b.ok(&["exec", "-u", "0", "idle", "stat", "-c", "%u:%g", p])
            .trim()
            .to_string()
    };
    assert_eq!(idle_owner("/tmp/dir/sub/g"), "1000:10");
    assert_eq!(idle_owner("/tmp/kept"), "1234:4321");

    // noOverwriteDirNonDir (the docker CLI sends it unless told
    // otherwise): dockerd's 500 and words, nothing changed.
    b.ok(&[
        "exec",
        "plain",
        "sh",
        "-c",
        "mkdir -p /n /m/x && echo f > /n/x",
    ]);
    let mut t = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(tar::EntryType::Directory);
    hd.set_size(0);
    hd.set_mode(0o755);
    hd.set_cksum();
    t.append_data(&mut hd, "x/", &b""[..]).unwrap();
    let dir_x = t.into_inner().unwrap();
    let (status, _, body) = request(
        &srv.socket,
        "PUT",
        "/v1.41/containers/plain/archive?path=/n&noOverwriteDirNonDir=1",
        &dir_x,
    );
    assert_eq!(status, 500);
    assert_eq!(
        json_of(&body)["message"],
        r#"Error processing tar file(exit status 1): cannot overwrite non-directory "/n/x" with directory "/n""#
    );
    assert_eq!(b.ok(&["exec", "plain", "cat", "/n/x"]), "f\n");
    std::fs::write(host.join("x"), "file\n").unwrap();
    let o = srv.docker(&["cp", &h("x"), "plain:/m/"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            r#"Error response from daemon: Error processing tar file(exit status 1): cannot overwrite directory "/m/x" with non-directory "/m""#
        ),
        "{}",
        stderr(&o)
    );
    // Without it, the entry replaces what is there (as dockerd).
    let (status, _, _) = request(
        &srv.socket,
        "PUT",
        "/v1.41/containers/plain/archive?path=/n",
        &dir_x,
    );
    assert_eq!(status, 200);
    assert_eq!(
        b.ok(&["exec", "plain", "sh", "-c", "test -d /n/x && echo dir"]),
        "dir\n"
    );
    b.ok(&["rm", "-f", "plain", "user", "idle"]);
}

/// Every key path of a JSON document (`/cpu_stats/cpu_usage/percpu_usage`).
fn key_paths(v: &Value, at: &str, out: &mut std::collections::BTreeSet<String>) {
    if let Value::Object(m) = v {
        for (k, v) in m {
            let p = format!("{at}/{k}");
            key_paths(v, &p, out);
            out.insert(p);
        }
    }
}

/// The stats document dockerd gave for a busy container
/// (`api_fixtures/dockerd-20.10-cp-stats-build.txt`).
fn recorded_stats() -> Value {
    let text = include_str!("api_fixtures/dockerd-20.10-cp-stats-build.txt");
    let start = text
        .find("## GET /containers/busy/stats?stream=false")
        .unwrap();
    let rest = &text[start..];
    let open = rest.find("\n{").unwrap() + 1;
    let close = rest.find("\n}\n").unwrap() + 2;
    json_of(&rest.as_bytes()[open..close])
}

/// Stats of a busy container: the keys dockerd 20.10 sends on cgroup v1
/// (per-CPU time, user/kernel time, throttling, `memory_stats.stats`,
/// max usage, the eight blkio lists, `networks` per interface), a stream
/// whose `precpu_stats` is the reading before, and a CPU % the docker CLI
/// shows above zero.
#[test]
fn stats_have_dockerds_fields_and_a_busy_container_shows_cpu() {
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let (status, _, body) = request(
        &srv.socket,
        "GET",
        "/v1.41/containers/busy/stats?stream=false",
        b"",
    );
    assert_eq!(status, 200);
    let ours = json_of(&body);
    let (mut want, mut got) = (Default::default(), Default::default());
    key_paths(&recorded_stats(), "", &mut want);
    key_paths(&ours, "", &mut got);
    assert_eq!(
        want.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "missing: {ours}"
    );
    assert_eq!(
        got.difference(&want).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "extra: {ours}"
    );
    let cpu = &ours["cpu_stats"];
    let percpu: Vec<u64> = cpu["cpu_usage"]["percpu_usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(percpu.len() as u64 >= cpu["online_cpus"].as_u64().unwrap());
    let total = cpu["cpu_usage"]["total_usage"].as_u64().unwrap();
    let sum: u64 = percpu.iter().sum();
    assert!(sum > 0 && sum.abs_diff(total) < total / 10, "{cpu}");
    assert!(cpu["cpu_usage"]["usage_in_usermode"].as_u64().unwrap() > 0);
    assert!(
        total
            > ours["precpu_stats"]["cpu_usage"]["total_usage"]
                .as_u64()
                .unwrap(),
        "{ours}"
    );
    assert_eq!(ours["memory_stats"]["stats"].as_object().unwrap().len(), 32);
    assert!(ours["memory_stats"]["max_usage"].as_u64().unwrap() > 0);
    assert!(ours["networks"]["eth0"]["rx_packets"].is_u64(), "{ours}");
    assert!(ours["blkio_stats"]["io_serviced_recursive"].is_array());

    // The stream: the first document has no reading before it; each next
    // one has the previous reading as its precpu_stats.
    let mut s = UnixStream::connect(&srv.socket).unwrap();
    write!(
        s,
        "GET /v1.41/containers/busy/stats HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut docs = Vec::new();
    let mut line = String::new();
    while docs.len() < 2 {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the stream ended");
        if line.trim_start().starts_with('{') {
            docs.push(json_of(line.trim().as_bytes()));
        }
    }
    assert_eq!(docs[0]["preread"], "0001-01-01T00:00:00Z");
    assert!(docs[0]["precpu_stats"].get("system_cpu_usage").is_none());
    assert_eq!(docs[1]["preread"], docs[0]["read"]);
    assert_eq!(docs[1]["precpu_stats"], docs[0]["cpu_stats"]);
    drop(r);

    // docker stats --no-stream: two readings a second apart, CPU above 0%.
    let out = srv.docker_ok(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy"]);
    let pct: f64 = out.trim().trim_end_matches('%').parse().unwrap();
    assert!(pct > 1.0, "{out}");
    b.ok(&["rm", "-f", "busy"]);
}
