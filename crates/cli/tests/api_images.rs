//! `berth serve`'s image endpoints driven by the docker CLI (Debian's
//! 20.10 in CI; 28 works too) and by raw HTTP: pull, push and login
//! against Debian's docker-registry on 127.0.0.1, save, load, import,
//! prune, and `docker build` over the classic builder's protocol.
//!
//! The shapes asserted here were recorded from dockerd 20.10 (Debian's
//! docker.io, run privately in a network namespace with a registry beside
//! it) over its socket; the lines quoted in the comments are its answers,
//! the whole record is `api_fixtures/dockerd-20.10-images.txt`.
#[path = "support/api_server.rs"]
mod api_server;
mod common;
#[path = "support/registry.rs"]
mod registry;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use api_server::*;
use base64::Engine as _;
use common::*;
use registry::Registry;
use serde_json::Value;

/// The docker CLI against the server, in `dir`, with `env`; BuildKit left
/// to what `/_ping` advertises (`Builder-Version: 1`).
fn docker_in(srv: &Server, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new("docker");
    c.args(["-H", &format!("unix://{}", srv.socket.display())])
        .args(args)
        .current_dir(dir)
        .env(
            "DOCKER_CONFIG",
            srv.socket.with_file_name("docker-cli-config"),
        )
        .env_remove("DOCKER_BUILDKIT")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the docker CLI")
}

/// One request with headers and a body: (status, head, body), the body
/// de-chunked.
fn request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = UnixStream::connect(socket).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before it has read the body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    split_response(&raw)
}

fn split_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut body = raw[end + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

/// A JSON-lines body, each line parsed.
fn json_lines(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn registry_auth(user: &str, pass: &str, server: &str) -> String {
    let doc = serde_json::json!({"username": user, "password": pass, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(doc.to_string())
}

fn images(b: &Berth) -> String {
    b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
}

#[test]
fn the_docker_cli_logs_in_pushes_and_pulls_through_berth() {
    let reg = Registry::start("alice", "wonder");
    let b = Berth::new();
    let srv = Server::start(&b);
    let r = &reg.addr;
    let tmp = b.path().to_path_buf();

    // Bad credentials: dockerd 20.10 answers 500 `login attempt to
    // http://127.0.0.1:5001/v2/ failed with status: 401 Unauthorized`
    // (later dockerds: 401); the CLI prints it and exits 1.
    let o = docker_in(&srv, &tmp, &[], &["login", "-u", "alice", "-p", "nope", r]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("login attempt to"), "{}", stderr(&o));
    // Good ones: `{"IdentityToken":"","Status":"Login Succeeded"}`; the
    // CLI keeps them, berth does not save them.
    let o = docker_in(
        &srv,
        &tmp,
        &[],
        &["login", "-u", "alice", "-p", "wonder", r],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    assert!(!b.path().join("config/config.json").exists());

    // push: X-Registry-Auth from the CLI's login.
    let app = format!("{r}/team/app:v1");
    srv.docker_ok(&["tag", IMAGE, &app]);
    let out = srv.docker_ok(&["push", &app]);
    assert!(
        out.contains(&format!("The push refers to repository [{r}/team/app]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let again = srv.docker_ok(&["push", &app]);
    assert!(again.contains(": Layer already exists"), "{again}");
    // Raw, dockerd's shape:
    //   {"status":"The push refers to repository [127.0.0.1:5000/bb]"}
    //   {"status":"Preparing","progressDetail":{},"id":"e7160d42fbc6"}
    //   {"status":"Layer already exists","progressDetail":{},"id":"e7160d42fbc6"}
    //   {"status":"2: digest: sha256:68cc… size: 527"}
    //   {"progressDetail":{},"aux":{"Tag":"2","Digest":"sha256:68cc…","Size":527}}
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/{r}/team/app/push?tag=v1"),
        &[("X-Registry-Auth", &registry_auth("alice", "wonder", r))],
        b"",
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert_eq!(
        lines[0]["status"],
        format!("The push refers to repository [{r}/team/app]")
    );
    assert_eq!(lines[1]["status"], "Preparing");
    assert_eq!(lines[1]["id"].as_str().unwrap().len(), 12);
    assert!(lines
        .iter()
        .any(|l| l["status"] == "Layer already exists" && l["id"] == lines[1]["id"]));
    let n = lines.len();
    let digest = lines[n - 1]["aux"]["Digest"].as_str().unwrap().to_string();
    let size = lines[n - 1]["aux"]["Size"].as_u64().unwrap();
    assert_eq!(
        lines[n - 1],
        serde_json::json!({"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest, "Size": size}})
    );
    assert_eq!(
        lines[n - 2]["status"],
        format!("v1: digest: {digest} size: {size}")
    );

    // pull back: the CLI's progress lines, berth has the image.
    srv.docker_ok(&["rmi", &app]);
    assert!(!images(&b).contains("team/app"));
    let out = srv.docker_ok(&["pull", &app]);
    assert!(out.contains("v1: Pulling from team/app"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {app}")),
        "{out}"
    );
    assert!(images(&b).contains(&app), "{}", images(&b));
    let out = srv.docker_ok(&["pull", &app]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {app}")),
        "{out}"
    );

    // A FROM that needs the login: X-Registry-Config reaches the build.
    srv.docker_ok(&["rmi", &app]);
    let ctx = tmp.join("from-private");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {app}\nRUN echo ok > /ok\n"),
    )
    .unwrap();
    let o = docker_in(&srv, &ctx, &[], &["build", "-t", "derived:1", "."]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(images(&b).contains("derived:1"));

    // Without credentials the registry refuses: the CLI says why, exit 1.
    srv.docker_ok(&["logout", r]);
    let o = srv.docker(&["pull", &format!("{r}/team/app:v1")]);
    // dockerd 20.10: 500 `Head "http://127.0.0.1:5001/v2/bb/manifests/1":
    // no basic auth credentials` (not a 401, on which the CLI would offer
    // an interactive login).
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).to_lowercase().contains("unauthorized"),
        "{}",
        stderr(&o)
    );

    // Raw: dockerd's lines for a fresh pull of a one-layer image:
    //   {"status":"Pulling from bb","id":"2"}
    //   {"status":"Pulling fs layer","progressDetail":{},"id":"a4f0d8a91bae"}
    //   {"status":"Downloading","progressDetail":{"current":1069531,"total":1069531},
    //    "progress":"[==================================================\u003e]   1.07MB/1.07MB","id":"a4f0d8a91bae"}
    //   {"status":"Download complete","progressDetail":{},"id":"a4f0d8a91bae"}
    //   {"status":"Pull complete","progressDetail":{},"id":"a4f0d8a91bae"}
    //   {"status":"Digest: sha256:68cc…"}
    //   {"status":"Status: Downloaded newer image for 127.0.0.1:5000/bb:2"}
    // Nothing may hold the layer: the image, what was built from it, the
    // build cache.
    b.ok(&["rmi", "-f", "derived:1", IMAGE, &app]);
    b.ok(&["builder", "prune", "-a", "-f"]);
    let auth = registry_auth("alice", "wonder", r);
    let (status, head, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/create?fromImage={r}/team/app&tag=v1"),
        &[("X-Registry-Auth", &auth)],
        b"",
    );
    assert_eq!(status, 200, "{head}");
    assert!(head
        .to_lowercase()
        .contains("content-type: application/json"));
    let lines = json_lines(&body);
    assert_eq!(
        lines[0],
        serde_json::json!({"status": "Pulling from team/app", "id": "v1"})
    );
    let id = lines[1]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    assert_eq!(id.len(), 12);
    assert_eq!(
        lines[1],
        serde_json::json!({"status": "Pulling fs layer", "progressDetail": {}, "id": id})
    );
    let downloading = lines
        .iter()
        .find(|l| l["status"] == "Downloading")
        .expect("a Downloading line");
    assert!(downloading["progressDetail"]["total"].as_u64().unwrap() > 0);
    assert!(downloading["progress"].as_str().unwrap().starts_with('['));
    for s in ["Download complete", "Pull complete"] {
        assert!(
            lines.iter().any(|l| l["status"] == s && l["id"] == id),
            "{s}"
        );
    }
    let n = lines.len();
    assert!(lines[n - 2]["status"]
        .as_str()
        .unwrap()
        .starts_with("Digest: sha256:"));
    assert_eq!(
        lines[n - 1]["status"],
        format!("Status: Downloaded newer image for {r}/team/app:v1")
    );
    // Go's encoder escapes `>`, as dockerd's bars show.
    assert!(String::from_utf8_lossy(&body).contains("\\u003e"));

    // A failure before any line is a status and {"message"}, as dockerd:
    // 404 {"message":"manifest for 127.0.0.1:5000/bb:nope not found: manifest unknown: manifest unknown"}
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/create?fromImage={r}/team/app&tag=nope"),
        &[("X-Registry-Auth", &auth)],
        b"",
    );
    assert_eq!(status, 404);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("nope"), "{v}");
    // 400 {"message":"invalid tag format"}
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/create?fromImage={r}/team/app&tag=@@"),
        &[],
        b"",
    );
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (400, r#"{"message":"invalid tag format"}"#)
    );
    // Pushing without the header: 400 {"message":"Bad parameters and
    // missing X-Registry-Auth: EOF"}; an image that is not there: 200, the
    // first line, then {"errorDetail":{"message":"An image does not exist
    // locally with the tag: 127.0.0.1:5000/zzz"},"error":…}.
    let (status, _, _) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/{r}/team/app/push?tag=v1"),
        &[],
        b"",
    );
    assert_eq!(status, 400);
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/{r}/zzz/push?tag=1"),
        &[("X-Registry-Auth", "e30=")],
        b"",
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert_eq!(
        lines[1]["error"],
        format!("An image does not exist locally with the tag: {r}/zzz")
    );
    assert_eq!(lines[1]["errorDetail"]["message"], lines[1]["error"]);
    drop(srv);
}

#[test]
fn the_docker_cli_saves_loads_imports_and_prunes_through_berth() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let tmp = b.path().to_path_buf();
    b.ok(&["tag", IMAGE, "second:1"]);

    // docker save (GET /images/get?names=…) and docker load: `Loaded image: …`.
    let saved = tmp.join("saved.tar");
    srv.docker_ok(&["save", "-o", saved.to_str().unwrap(), IMAGE, "second:1"]);
    let mut names = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&saved).unwrap())
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    b.ok(&["rmi", IMAGE, "second:1"]);
    let out = srv.docker_ok(&["load", "-i", saved.to_str().unwrap()]);
    assert!(out.contains(&format!("Loaded image: {IMAGE}")), "{out}");
    assert!(out.contains("Loaded image: second:1"), "{out}");
    assert!(images(&b).contains("second:1"));

    // GET /images/{name}/get: a tar; a name that is not there: 404
    // {"message":"reference does not exist"} from dockerd, before any byte.
    let (status, head, body) = request(&srv.socket, "GET", "/v1.41/images/second:1/get", &[], b"");
    assert_eq!(status, 200);
    assert!(head
        .to_lowercase()
        .contains("content-type: application/x-tar"));
    assert!(body.len() > 1_000_000);
    let (status, _, body) = request(&srv.socket, "GET", "/v1.41/images/nope:1/get", &[], b"");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    // load of garbage: dockerd answers 200, then
    // {"errorDetail":{"message":"Error processing tar file(exit status 1): unexpected EOF"},"error":…}
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/images/load?quiet=1",
        &[("Content-Type", "application/x-tar")],
        b"garbage\n",
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert!(
        lines.last().unwrap()["errorDetail"]["message"].is_string(),
        "{lines:?}"
    );

    // A large bad body: the error, not a broken pipe (the server reads
    // the whole body before it answers).
    let junk = b.path().join("junk.tar");
    std::fs::write(&junk, vec![0x5a_u8; 3 << 20]).unwrap();
    for args in [
        vec!["load", "-i", junk.to_str().unwrap()],
        vec!["import", junk.to_str().unwrap(), "junk:1"],
    ] {
        let o = srv.docker(&args);
        assert_eq!(code(&o), 1, "{args:?}");
        assert!(
            !stderr(&o).contains("broken pipe"),
            "{args:?}: {}",
            stderr(&o)
        );
    }

    // docker import (POST /images/create?fromSrc=-): {"status":"sha256:…"}.
    let rootfs = tmp.join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs_tar()).unwrap();
    let out = srv.docker_ok(&[
        "import",
        "-c",
        "ENV GREETING=hi",
        "-m",
        "imported",
        rootfs.to_str().unwrap(),
        "imp:1",
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Env}}", "imp:1"]).trim(),
        "[GREETING=hi]"
    );
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/images/create?fromSrc=-&repo=imp&tag=2&changes=CMD%20%5B%22sh%22%5D",
        &[("Content-Type", "application/x-tar")],
        &busybox_rootfs_tar(),
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert_eq!(lines.len(), 1);
    assert!(lines[0]["status"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Cmd}}", "imp:2"]).trim(),
        "[sh]"
    );

    // prune: an untagged import is dangling; -a takes every unused image
    // but keeps those a container uses. dockerd's shape:
    // {"ImagesDeleted":[{"Untagged":"keepme:1"},{"Deleted":"sha256:…"}],"SpaceReclaimed":N}
    // and {"ImagesDeleted":null,"SpaceReclaimed":0} when nothing goes.
    let dangling = b.run_stdin(
        &["import", "-"],
        &busybox_rootfs_tar_with(&[("x", 0o644, b"x")]),
    );
    assert!(dangling.status.success());
    let dangling_id = stdout(&dangling).trim().to_string();
    let out = srv.docker_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&dangling_id), "{out}");
    assert!(!b
        .ok(&["images", "-a", "-q", "--no-trunc"])
        .contains(&dangling_id));
    let (status, _, body) = request(&srv.socket, "POST", "/v1.41/images/prune", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body).trim(),
        r#"{"ImagesDeleted":null,"SpaceReclaimed":0}"#
    );
    b.ok(&["create", "--name", "user", "imp:1", "sh"]);
    let out = srv.docker_ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("untagged: second:1"), "{out}");
    let left = images(&b);
    assert!(left.contains("imp:1"), "{left}");
    assert!(
        !left.contains("second:1") && !left.contains("imp:2"),
        "{left}"
    );
    // A filter dockerd does not know: 400 {"message":"Invalid filter 'nope'"}.
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/images/prune?filters=%7B%22nope%22%3A%7B%22x%22%3Atrue%7D%7D",
        &[],
        b"",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Invalid filter 'nope'"));

    // search: dockerd asks Docker Hub; berth says it does not.
    let o = srv.docker(&["search", "busybox"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
}

#[test]
fn the_docker_cli_builds_with_the_classic_builder_through_berth() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS base\nARG GREETING=hello\nRUN echo \"$GREETING from run\" > /greeting\nCOPY hello.txt /hello.txt\n\nFROM base AS final\nLABEL stage=final\nRUN cat /greeting /hello.txt\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "file content\n").unwrap();

    // The classic builder's output, as the CLI prints dockerd's:
    //   Step 1/8 : FROM busybox AS base
    //    ---> b4a7ce6d9b27
    //   …
    //   Step 7/8 : RUN cat /greeting /hello.txt
    //    ---> Running in 0a952e6f27f6
    //   hi from run
    //   file content
    //   …
    //   Successfully built f0f34a59c065
    //   Successfully tagged x:latest
    let o = docker_in(
        &srv,
        &ctx,
        &[],
        &[
            "build",
            "-t",
            "x",
            "-t",
            "x:2",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "l=v",
            ".",
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Step 1/7 : FROM bb:test AS base"), "{out}");
    assert!(
        out.contains("Step 7/7 : RUN cat /greeting /hello.txt"),
        "{out}"
    );
    assert!(out.contains("hi from run\nfile content\n"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(
        out.contains("Successfully tagged x:latest\nSuccessfully tagged x:2\n"),
        "{out}"
    );
    assert!(images(&b).contains("x:latest"));
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.Config.Labels.l}} {{.Config.Labels.stage}}",
            "x"
        ])
        .trim(),
        "v final"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "x", "cat", "/greeting"]).trim(),
        "hi from run"
    );
    // Again: the cache, as ` ---> Using cache`.
    let o = docker_in(
        &srv,
        &ctx,
        &[],
        &[
            "build",
            "-t",
            "x",
            "--build-arg",
            "GREETING=hi",
            "--label",
            "l=v",
            ".",
        ],
    );
    assert!(stdout(&o).contains(" ---> Using cache"), "{}", stdout(&o));
    // --target: the first stage only.
    let o = docker_in(
        &srv,
        &ctx,
        &[],
        &["build", "-t", "base", "--target", "base", "."],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Step 4/4 : COPY hello.txt /hello.txt"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Labels.stage}}", "base"])
            .trim(),
        "<no value>"
    );

    // -f outside the context: the CLI adds the file to the context's tar
    // (20.10 without padding the last entry or ending the archive).
    let outside = b.path().join("outside.Dockerfile");
    std::fs::write(
        &outside,
        format!("FROM {IMAGE}\nCOPY hello.txt /h\nRUN cat /h\n"),
    )
    .unwrap();
    let o = docker_in(
        &srv,
        &ctx,
        &[],
        &[
            "build",
            "-t",
            "outside",
            "-f",
            outside.to_str().unwrap(),
            ".",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("file content"), "{}", stdout(&o));

    // A failing RUN: the step's output, then dockerd's error line
    //   {"errorDetail":{"code":3,"message":"The command '/bin/sh -c echo out; echo err \u003e\u00262; exit 3' returned a non-zero code: 3"},"error":…}
    // which the CLI prints on stderr, exiting with the code.
    let bad = b.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo out; echo err >&2; exit 3\n"),
    )
    .unwrap();
    let o = docker_in(&srv, &bad, &[], &["build", "-t", "bad", "."]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    let said = stdout(&o);
    let run = said
        .split_once("Step 2/2 : RUN echo out; echo err >&2; exit 3\n ---> Running in ")
        .map(|(_, rest)| rest);
    assert!(
        run.and_then(|r| r.get(12..))
            .is_some_and(|t| t.starts_with("\nout\n")),
        "{said}"
    );
    assert!(
        stderr(&o).contains(
            "The command '/bin/sh -c echo out; echo err >&2; exit 3' returned a non-zero code: 3"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(b.ok(&["ps", "-a", "-q"]).trim(), "");

    // Raw: a gzip context with q=1 answers the id alone; version=2 says
    // what to do; a missing Dockerfile is dockerd's 500 `Cannot locate
    // specified Dockerfile: nope`.
    let mut tb = tar::Builder::new(Vec::new());
    tb.append_dir_all(".", &ctx).unwrap();
    let context = tb.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&context).unwrap();
    let gz = gz.finish().unwrap();
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/build?q=1&t=quiet&target=base&buildargs=%7B%22GREETING%22%3A%22yo%22%7D",
        &[("Content-Type", "application/x-tar")],
        &gz,
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0]["stream"].as_str().unwrap().starts_with("sha256:"));
    let (status, _, body) = request(&srv.socket, "POST", "/v1.41/build?version=2", &[], &context);
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("DOCKER_BUILDKIT=0"));
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/build?dockerfile=nope",
        &[],
        &context,
    );
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (
            500,
            r#"{"message":"Cannot locate specified Dockerfile: nope"}"#
        )
    );
    // Nothing but the Dockerfile can be named: no escape from the context.
    let (status, _, _) = request(
        &srv.socket,
        "POST",
        "/v1.41/build?dockerfile=../../../etc/passwd",
        &[],
        &context,
    );
    assert_eq!(status, 500);

    // A hostile context: `..` names and a symlink out of the context are
    // not followed out of it (the engine's archive-safe unpacking).
    let outside_dir = b.path().join("outside");
    std::fs::create_dir_all(&outside_dir).unwrap();
    let hostile = {
        let mut tb = tar::Builder::new(Vec::new());
        let mut file = |name: &[u8], data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            tb.append(&h, data).unwrap();
        };
        file(b"../../../../evil.txt", b"x");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tb.append_link(&mut h, "link", &outside_dir).unwrap();
        let mut file = |name: &[u8], data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            tb.append(&h, data).unwrap();
        };
        file(b"link/evil.txt", b"x");
        let df = format!("FROM {IMAGE}\n");
        file(b"Dockerfile", df.as_bytes());
        tb.into_inner().unwrap()
    };
    let (status, _, body) = request(&srv.socket, "POST", "/v1.41/build?t=hostile", &[], &hostile);
    let said = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("invalid build context"), "{said}");
    assert!(!b.path().join("evil.txt").exists(), "{said}");
    assert!(!outside_dir.join("evil.txt").exists(), "{said}");

    // The client goes mid-RUN: the build stops, its container goes.
    let slow = b.path().join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    std::fs::write(
        slow.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo started; sleep 60; echo ended\n"),
    )
    .unwrap();
    let mut tb = tar::Builder::new(Vec::new());
    tb.append_dir_all(".", &slow).unwrap();
    let slow_tar = tb.into_inner().unwrap();
    {
        let mut s = UnixStream::connect(&srv.socket).unwrap();
        write!(
            s,
            "POST /v1.41/build?t=slow HTTP/1.1\r\nHost: docker\r\nContent-Length: {}\r\n\r\n",
            slow_tar.len()
        )
        .unwrap();
        s.write_all(&slow_tar).unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(20);
        // The RUN's output (not its step line).
        while !String::from_utf8_lossy(&seen).contains(r#"{"stream":"started\n"}"#) {
            assert!(
                Instant::now() < deadline,
                "{}",
                String::from_utf8_lossy(&seen)
            );
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        assert_eq!(b.ok(&["ps", "-q"]).lines().count(), 1);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.ok(&["ps", "-a", "-q"]).trim().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the build's RUN container stayed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!images(&b).contains("slow"));
    // The context's scratch dir goes once the builder has ended.
    loop {
        let scratch: Vec<_> = std::fs::read_dir(b.root.join("tmp"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if scratch.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{scratch:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP proxy on 127.0.0.1 in front of a registry: while `slow` is set
/// it passes at most `RATE` bytes a second each way, so that a transfer
/// through it is still under way when its client goes. It counts the
/// connections open and the bytes sent upstream.
struct SlowProxy {
    addr: String,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    upstream_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: std::sync::Arc<std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>>,
    sockets: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl SlowProxy {
    const RATE: u64 = 1 << 20;

    fn start(upstream: &str) -> SlowProxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let p = SlowProxy {
            addr: listener.local_addr().unwrap().to_string(),
            slow: Arc::new(AtomicBool::new(true)),
            open: Arc::new(AtomicUsize::new(0)),
            upstream_bytes: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Arc::default(),
            sockets: Arc::new(Mutex::new(Vec::new())),
        };
        let (slow, open, up, stop, threads, sockets) = (
            p.slow.clone(),
            p.open.clone(),
            p.upstream_bytes.clone(),
            p.stop.clone(),
            p.threads.clone(),
            p.sockets.clone(),
        );
        let upstream = upstream.to_string();
        let accept = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let server = std::net::TcpStream::connect(&upstream).unwrap();
                sockets.lock().unwrap().push(client.try_clone().unwrap());
                sockets.lock().unwrap().push(server.try_clone().unwrap());
                open.fetch_add(1, Ordering::SeqCst);
                let done = Arc::new(AtomicUsize::new(0));
                let pairs = [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        true,
                    ),
                    (server, client, false),
                ];
                for (mut from, mut to, counts) in pairs {
                    let (slow, open, up, done) =
                        (slow.clone(), open.clone(), up.clone(), done.clone());
                    let t = std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            if counts {
                                up.fetch_add(n as u64, Ordering::SeqCst);
                            }
                            if slow.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_micros(
                                    n as u64 * 1_000_000 / SlowProxy::RATE,
                                ));
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        if done.fetch_add(1, Ordering::SeqCst) == 1 {
                            open.fetch_sub(1, Ordering::SeqCst);
                        }
                    });
                    threads.lock().unwrap().push(t);
                }
            }
        });
        p.threads.lock().unwrap().push(accept);
        p
    }

    fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn upstream_bytes(&self) -> u64 {
        self.upstream_bytes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set_slow(&self, slow: bool) {
        self.slow.store(slow, std::sync::atomic::Ordering::SeqCst);
    }

    /// Wait until no connection goes through the proxy.
    fn wait_idle(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.open() > 0 {
            assert!(
                Instant::now() < deadline,
                "{what}: {} connection(s) to the registry still open",
                self.open()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}

/// A request whose answer is read until `until` appears in it, then the
/// connection is dropped: a client that goes away mid-stream.
fn request_then_leave(socket: &Path, path: &str, auth: &str, until: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nX-Registry-Auth: {auth}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(until) {
        // A read with a timeout is not restarted after a signal (SA_RESTART
        // does not cover SO_RCVTIMEO sockets): try again.
        let n = match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.unwrap(),
        };
        assert!(
            n > 0,
            "the answer ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // Mid-transfer, then gone.
    std::thread::sleep(Duration::from_millis(500));
    String::from_utf8_lossy(&seen).into_owned()
}

/// A registry's answer to GET `path` (basic auth), its status.
fn registry_status(addr: &str, path: &str, user: &str, pass: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {basic}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    split_response(&raw).0
}

/// What the store's tmp dir holds (work in progress; empty when idle).
fn tmp_entries(b: &Berth) -> Vec<String> {
    std::fs::read_dir(b.root.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A client that goes away mid-push or mid-pull stops the transfer, as
/// dockerd cancels the request's context: berth's connections to the
/// registry close at once, the registry gets no manifest, the store
/// registers no image and keeps no temporary files (a pull's partial
/// download stays in `downloads/` and the next pull resumes it).
#[test]
fn a_client_that_goes_away_stops_its_push_and_pull() {
    let reg = Registry::start("alice", "wonder");
    let proxy = SlowProxy::start(&reg.addr);
    let b = Berth::new();
    let srv = Server::start(&b);
    let r = proxy.addr.clone();
    let auth = registry_auth("alice", "wonder", &r);

    // 12 MiB that do not compress: 12 s through the proxy.
    let mut data = vec![0u8; 12 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "big", &data[..]).unwrap();
    let big = format!("{r}/big:1");
    let out = b.run_stdin(&["import", "-", &big], &t.into_inner().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));

    // Push, gone once the upload has begun.
    let said = request_then_leave(
        &srv.socket,
        &format!("/v1.41/images/{r}/big/push?tag=1"),
        &auth,
        "\"Pushing\"",
    );
    assert!(said.contains("The push refers to repository"), "{said}");
    proxy.wait_idle("after the push's client went");
    let sent = proxy.upstream_bytes();
    assert!(sent < 8 << 20, "{sent} bytes went up: the upload went on");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(proxy.upstream_bytes(), sent, "bytes still going up");
    assert_eq!(
        registry_status(&reg.addr, "/v2/big/manifests/1", "alice", "wonder"),
        404
    );
    // A push that is left alone completes.
    proxy.set_slow(false);
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/{r}/big/push?tag=1"),
        &[("X-Registry-Auth", &auth)],
        b"",
    );
    assert_eq!(status, 200);
    let lines = json_lines(&body);
    assert!(
        lines.last().unwrap()["aux"]["Digest"].is_string(),
        "{lines:?}"
    );
    assert_eq!(
        registry_status(&reg.addr, "/v2/big/manifests/1", "alice", "wonder"),
        200
    );
    proxy.wait_idle("after the push");

    // Pull into another store (this one keeps the pushed blob), gone once
    // the download has begun.
    drop(srv);
    let b = Berth::new();
    let srv = Server::start(&b);
    let before = images(&b);
    proxy.set_slow(true);
    let said = request_then_leave(
        &srv.socket,
        &format!("/v1.41/images/create?fromImage={r}/big&tag=1"),
        &auth,
        "\"Downloading\"",
    );
    assert!(said.contains("Pulling fs layer"), "{said}");
    proxy.wait_idle("after the pull's client went");
    assert_eq!(images(&b), before, "a cancelled pull registered an image");
    assert_eq!(tmp_entries(&b), Vec::<String>::new());
    let partial: Vec<u64> = std::fs::read_dir(b.root.join("downloads"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        partial.iter().any(|n| *n > 0 && *n < 12 << 20),
        "no partial download kept: {partial:?}"
    );
    // The next pull resumes it and completes.
    proxy.set_slow(false);
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        &format!("/v1.41/images/create?fromImage={r}/big&tag=1"),
        &[("X-Registry-Auth", &auth)],
        b"",
    );
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Resuming from byte"), "{text}");
    assert!(text.contains("Downloaded newer image"), "{text}");
    assert!(images(&b).contains(&format!("{r}/big:1")));
    assert_eq!(tmp_entries(&b), Vec::<String>::new());
    proxy.wait_idle("after the pull");
}

/// The recorded stream of dockerd's classic builder for a request of
/// `api_fixtures/dockerd-20.10-cp-stats-build.txt`, from its header line
/// to the next blank line.
fn recorded_build(header: &str) -> Vec<Value> {
    let text = include_str!("api_fixtures/dockerd-20.10-cp-stats-build.txt");
    let at = text.find(header).unwrap_or_else(|| panic!("{header}"));
    text[at..]
        .lines()
        .skip_while(|l| !l.starts_with('{'))
        .take_while(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A build stream with its ids (runs of 12 or 64 lowercase hex digits)
/// as `ID`.
fn ids_out(lines: &[Value]) -> Vec<String> {
    let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    lines
        .iter()
        .map(|l| {
            let s = l.to_string();
            let mut out = String::new();
            let mut run = String::new();
            for c in s.chars().chain(std::iter::once('\0')) {
                if hex(c) {
                    run.push(c);
                    continue;
                }
                if run.len() == 12 || run.len() == 64 {
                    out.push_str("ID");
                } else {
                    out.push_str(&run);
                }
                run.clear();
                if c != '\0' {
                    out.push(c);
                }
            }
            out
        })
        .collect()
}

/// `POST /build` says what dockerd's classic builder says, line for line:
/// ` ---> <image>` after every step, ` ---> Running in`, the output and
/// `Removing intermediate container` around a RUN, ` ---> Using cache`,
/// an `aux` with each stage's image, `Successfully built/tagged`. dockerd
/// also commits ENV, WORKDIR, LABEL and CMD through a container of their
/// own (`Running in`/`Removing intermediate container` lines); berth makes
/// none for them. The docker CLIs print that stream.
#[test]
fn the_classic_builder_stream_is_dockerds_line_for_line() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE} AS base\nENV A=1\nRUN echo hello > /x && echo out\nFROM {IMAGE}\nCOPY --from=base /x /y\nCOPY f /f\nWORKDIR /w\nRUN cat /y\nLABEL k=v\nCMD [\"cat\", \"/y\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("f"), "data\n").unwrap();
    let mut tb = tar::Builder::new(Vec::new());
    tb.append_dir_all(".", &ctx).unwrap();
    let context = tb.into_inner().unwrap();
    let ours = |lines: &[Value]| -> Vec<String> {
        ids_out(lines)
            .into_iter()
            .map(|l| l.replace(IMAGE, "bb"))
            .collect()
    };

    // A new build.
    let (status, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/build?t=apitest:1&rm=1",
        &[("Content-Type", "application/x-tar")],
        &context,
    );
    assert_eq!(status, 200);
    let got = json_lines(&body);
    let mut want = Vec::new();
    let mut step = String::new();
    for l in recorded_build("## POST /build?t=apitest:1&rm=1") {
        let s = l["stream"].as_str().unwrap_or_default();
        if s.starts_with("Step ") {
            step = s.to_string();
        }
        let own_container =
            s.starts_with(" ---> Running in ") || s.starts_with("Removing intermediate container");
        if own_container && !step.contains(" : RUN ") {
            continue;
        }
        want.push(l);
    }
    assert_eq!(ours(&got), ids_out(&want));
    // The aux ids are the stages' images; the last one is the result.
    let auxes: Vec<&str> = got.iter().filter_map(|l| l["aux"]["ID"].as_str()).collect();
    assert_eq!(auxes.len(), 2);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "apitest:1"]);
    assert_eq!(auxes[1], id.trim());
    // Each ` ---> <id>` is an image one can run (a failed build's last
    // good step is where one looks).
    let steps: Vec<String> = got
        .iter()
        .filter_map(|l| l["stream"].as_str())
        .filter_map(|s| s.strip_prefix(" ---> "))
        .filter(|s| s.len() == 13)
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(steps.len(), 10, "{got:?}");
    assert_eq!(b.ok(&["run", "--rm", &steps[2], "cat", "/x"]), "hello\n");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Env}}", &steps[1]])
            .trim(),
        b.ok(&["inspect", "-f", "{{.Config.Env}}", &steps[2]])
            .trim()
    );
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");

    // Again, two tags: every step from the cache, the same images.
    let (_, _, body) = request(
        &srv.socket,
        "POST",
        "/v1.41/build?t=apitest:1&t=apitest:2&rm=1",
        &[("Content-Type", "application/x-tar")],
        &context,
    );
    let again = json_lines(&body);
    assert_eq!(
        ours(&again),
        ids_out(&recorded_build(
            "Again with t=apitest:1&t=apitest:2 (every step cached):"
        ))
    );
    let ids = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["stream"].as_str())
            .filter(|s| s.starts_with(" ---> ") && s.len() == 19)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(ids(&again), ids(&got));

    // The docker CLI prints the stream as it comes.
    let o = docker_in(
        &srv,
        &ctx,
        &[("DOCKER_BUILDKIT", "0")],
        &["build", "-t", "apitest:3", "."],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut text: String = again.iter().filter_map(|l| l["stream"].as_str()).collect();
    text = text.replace(
        "Successfully tagged apitest:1\nSuccessfully tagged apitest:2\n",
        "Successfully tagged apitest:3\n",
    );
    let printed = stdout(&o);
    let printed = printed
        .split_once("Step 1/10")
        .map(|(_, rest)| format!("Step 1/10{rest}"))
        .unwrap_or(printed);
    assert_eq!(printed, text);
}

#[test]
fn the_docker_cli_commits_through_berth() {
    let b = Berth::new();
    let srv = Server::start(&b);
    srv.docker_ok(&[
        "run",
        "--name",
        "c1",
        "-e",
        "KEEP=1",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /f",
    ]);
    // docker commit: POST /commit with changes, a message and an author.
    let id = srv.docker_ok(&[
        "commit",
        "-c",
        "EXPOSE 8000",
        "-c",
        r#"CMD ["cat", "/f"]"#,
        "-m",
        "msg",
        "-a",
        "me",
        "c1",
        "mine:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(srv.docker_ok(&["run", "--rm", "mine:v1"]), "hi\n");
    let base = srv.docker_ok(&["inspect", "-f", "{{.Id}}", IMAGE]);
    assert_eq!(
        srv.docker_ok(&[
            "inspect",
            "-f",
            "{{.Id}} {{.Parent}} {{.Author}} {{.Comment}} {{json .Config.ExposedPorts}} {{json .Config.Cmd}}",
            "mine:v1"
        ]),
        format!(
            "{} {} me msg {{\"8000/tcp\":{{}}}} [\"cat\",\"/f\"]\n",
            id.trim(),
            base.trim()
        )
    );
    // dockerd's commit event (`--until 0s` is now in whole seconds: the
    // event's second has to be over).
    std::thread::sleep(Duration::from_millis(1100));
    let events = srv.docker_ok(&[
        "events",
        "--since",
        "1h",
        "--until",
        "0s",
        "--filter",
        "event=commit",
        "--format",
        "{{.Actor.Attributes.imageRef}} {{.Actor.Attributes.comment}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(events, "mine:v1 msg c1\n");
    // A Config in the body is merged over the container's (dockerd's
    // merge): the given Cmd and Env win, the container's other variables
    // stay; no repo: an untagged image; pause=0 on a stopped container.
    let (status, _, body) = http_json(
        &srv.socket,
        "POST",
        "/v1.44/commit?container=c1&pause=0&changes=LABEL%20a%3Db",
        r#"{"Env":["A=1"],"Cmd":["env"]}"#,
    );
    assert_eq!(status, 201, "{body}");
    let made: Value = serde_json::from_str(&body).unwrap();
    let made = made["Id"].as_str().unwrap().to_string();
    let env = srv.docker_ok(&["run", "--rm", &made]);
    assert!(env.lines().any(|l| l == "A=1"), "{env}");
    assert!(env.lines().any(|l| l == "KEEP=1"), "{env}");
    assert_eq!(
        srv.docker_ok(&[
            "inspect",
            "-f",
            "{{.Config.Labels.a}} {{json .RepoTags}}",
            &made
        ]),
        "b []\n"
    );
    // Bad input: dockerd's statuses.
    let (status, _, body) = srv.http("POST", "/commit?container=nope");
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = srv.http("POST", "/commit?container=c1&repo=Bad%20Name");
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = http_json(&srv.socket, "POST", "/commit?container=c1", "[1]");
    assert_eq!(status, 400, "{body}");
    // An image removed takes its parent link with it; the parent stays.
    srv.docker_ok(&["rm", "c1"]);
    srv.docker_ok(&["rmi", "mine:v1", &made]);
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{.Parent}}", IMAGE]),
        "\n"
    );
    drop(srv);
    assert_census_clean(&b);
}
