//! `berth registry serve` against real clients on 127.0.0.1 — berth's own
//! push/pull, skopeo, podman — and against raw HTTP for the spec's error
//! codes and hostile clients (wrong digests, short and over-long bodies,
//! chunks out of order, manifests naming missing blobs, path traversal,
//! huge manifests, a slow client holding an upload, concurrent pushes of
//! one blob, a stop in the middle of an upload).
mod common;
#[path = "support/dockerd.rs"]
mod dockerd;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A `berth registry serve` child on a port it picked; its stderr (the
/// JSON access log) collected by a thread.
struct Server {
    child: Option<Child>,
    addr: String,
    root: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: &Path, flags: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(flags)
            .env("BERTH_ROOT", root.join("berth-root"))
            .env("BERTH_RUNROOT", root.join("berth-run"));
        Server::spawn(cmd, root)
    }

    /// `--store`: serving the store of `b`.
    fn start_store(b: &Berth, flags: &[&str]) -> Server {
        let mut cmd = b.cmd();
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--store"])
            .args(flags);
        Server::spawn(cmd, &b.root)
    }

    fn spawn(mut cmd: Command, root: &Path) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().expect("the registry printed nothing").unwrap();
        let v: Value = serde_json::from_str(&first)
            .unwrap_or_else(|e| panic!("first line {first:?} is not JSON: {e}"));
        assert_eq!(v["msg"], "listening", "{first}");
        let addr = v["addr"].as_str().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = log.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Server {
            child: Some(child),
            addr,
            root: root.to_path_buf(),
            log,
            reader: Some(reader),
        }
    }

    /// SIGTERM; it must exit 0.
    fn stop(&mut self) {
        let mut c = self.child.take().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let st = c.wait().unwrap();
        assert!(st.success(), "registry serve ended with {st}");
        // Every line it wrote, up to its end.
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
    }

    fn log_lines(&self) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    fn uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn h(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    /// The first error's code.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    fn text(&self) -> String {
        format!(
            "{} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

fn parse_resp(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// One request on a fresh connection (`Connection: close`).
fn req(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server refusing a body early (413) may close before taking it all:
    // its answer is what counts.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = parse_resp(&raw);
    assert_eq!(
        r.h("docker-distribution-api-version"),
        Some("registry/2.0"),
        "{method} {path}: {}",
        r.text()
    );
    r
}

fn get(addr: &str, path: &str) -> Resp {
    req(addr, "GET", path, &[], b"")
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// Push a blob in one POST.
fn push_blob(addr: &str, repo: &str, data: &[u8]) -> String {
    let d = sha(data);
    let r = req(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.h("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        r.h("location"),
        Some(format!("/v2/{repo}/blobs/{d}").as_str())
    );
    d
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn desc(media: &str, data: &[u8]) -> Value {
    json!({"mediaType": media, "digest": sha(data), "size": data.len()})
}

/// A small image (config + one layer) pushed to `repo`; its manifest.
fn push_image(addr: &str, repo: &str, tag: &str, seed: &str) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":"{seed}"}}"#);
    let layer = format!("layer bytes of {seed}").repeat(100);
    push_blob(addr, repo, config.as_bytes());
    push_blob(addr, repo, layer.as_bytes());
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", config.as_bytes()),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", layer.as_bytes())],
    })
    .to_string()
    .into_bytes();
    let r = req(
        addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.h("docker-content-digest"), Some(sha(&m).as_str()));
    m
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-registry-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

fn skopeo(args: &[&str]) -> std::process::Output {
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is needed: apt-get install skopeo (scripts/deps does)"
    );
    Command::new("/usr/bin/skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .unwrap()
}

fn skopeo_ok(args: &[&str]) -> String {
    let o = skopeo(args);
    assert!(o.status.success(), "skopeo {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn berth_pushes_and_pulls_through_its_own_registry() {
    let b = Berth::new();
    let mut srv = Server::start(&b.path().join("registry"), &[]);
    let name = format!("{}/me/bb:1", srv.addr);
    b.ok(&["tag", IMAGE, &name]);
    let out = b.ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    b.ok(&["rmi", &name, IMAGE]);
    let out = b.ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(b.ok(&["run", "--rm", &name, "echo", "ok"]), "ok\n");
    // A second push finds every blob there.
    let out = b.ok(&["push", &name]);
    assert!(out.contains("Layer already exists"), "{out}");
    srv.stop();
    let log = srv.log_lines();
    let put = log
        .iter()
        .find(|l| l["method"] == "PUT" && l["path"] == "/v2/me/bb/manifests/1")
        .unwrap_or_else(|| panic!("no manifest PUT in the access log: {log:?}"));
    assert_eq!(put["status"], 201);
    for k in ["time", "bytes", "duration_ms", "user", "remote"] {
        assert!(put.get(k).is_some(), "{k} missing: {put}");
    }
    assert_eq!(log.last().unwrap()["msg"], "stopped");
    assert!(srv.uploads().is_empty(), "{:?}", srv.uploads());
    assert_census_clean(&b);
}

#[test]
fn skopeo_copies_in_and_out_inspects_lists_and_deletes() {
    let b = Berth::new();
    let mut srv = Server::start(&b.path().join("registry"), &["--delete"]);
    let a = srv.addr.clone();
    let archive = b.path().join("bb.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), IMAGE]);
    let reg = |r: &str| format!("docker://{a}/{r}");
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("docker-archive:{}", archive.display()),
        &reg("sk/bb:1"),
    ]);
    let inspect: Value = serde_json::from_str(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &reg("sk/bb:1"),
    ]))
    .unwrap();
    assert_eq!(inspect["Architecture"], "amd64", "{inspect}");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{inspect}");
    // Out to an OCI layout and a docker-archive, and the layout back in.
    let layout = b.path().join("layout");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &reg("sk/bb:1"),
        &format!("oci:{}:x", layout.display()),
    ]);
    let out_tar = b.path().join("out.tar");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &reg("sk/bb:1"),
        &format!("docker-archive:{}:sk/bb:1", out_tar.display()),
    ]);
    let c = Berth::empty();
    assert!(c
        .ok(&["load", "-i", out_tar.to_str().unwrap()])
        .contains("sk/bb:1"));
    assert_eq!(c.ok(&["run", "--rm", "sk/bb:1", "echo", "ok"]), "ok\n");
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", layout.display()),
        &reg("sk/oci:2"),
    ]);
    let tags: Value = serde_json::from_str(&skopeo_ok(&[
        "list-tags",
        "--tls-verify=false",
        &reg("sk/bb"),
    ]))
    .unwrap();
    assert_eq!(tags["Tags"], json!(["1"]), "{tags}");
    let cat = get(&a, "/v2/_catalog").json();
    assert_eq!(cat["repositories"], json!(["sk/bb", "sk/oci"]), "{cat}");
    skopeo_ok(&["delete", "--tls-verify=false", &reg("sk/oci:2")]);
    let o = skopeo(&["inspect", "--tls-verify=false", &reg("sk/oci:2")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("manifest unknown"), "{}", stderr(&o));
    // The other repository is untouched.
    skopeo_ok(&["inspect", "--tls-verify=false", &reg("sk/bb:1")]);
    srv.stop();
    assert!(srv.uploads().is_empty());
    assert_census_clean(&b);
    assert_census_clean(&c);
}

#[test]
fn podman_pushes_and_pulls() {
    let podman_bin = "/usr/bin/podman";
    assert!(
        Path::new(podman_bin).exists(),
        "podman is needed: apt-get install podman (scripts/deps does)"
    );
    let b = Berth::new();
    let mut srv = Server::start(&b.path().join("registry"), &[]);
    let proot = b.path().join("podman-root");
    let prun = b.path().join("podman-run");
    let ptmp = b.path().join("podman-tmp");
    let podman = |args: &[&str]| {
        let out = Command::new(podman_bin)
            .args(["--root", proot.to_str().unwrap()])
            .args(["--runroot", prun.to_str().unwrap()])
            .args(["--tmpdir", ptmp.to_str().unwrap()])
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let archive = b.path().join("bb.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), IMAGE]);
    podman(&["load", "-i", archive.to_str().unwrap()]);
    let name = format!("{}/pd/bb:1", srv.addr);
    podman(&[
        "push",
        "--tls-verify=false",
        "docker.io/library/bb:test",
        &name,
    ]);
    podman(&["rmi", "-a", "-f"]);
    podman(&["pull", "--tls-verify=false", &name]);
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("pd/bb:1"), "{images}");
    // And berth pulls what podman pushed.
    assert_eq!(b.ok(&["run", "--rm", &name, "echo", "ok"]), "ok\n");
    podman(&["rmi", "-a", "-f"]);
    srv.stop();
    assert!(srv.uploads().is_empty());
    assert_census_clean(&b);
}

#[test]
fn blob_uploads_follow_the_spec() {
    let t = tmp();
    let mut srv = Server::start(&t.path().join("reg"), &[]);
    let a = srv.addr.clone();
    assert_eq!(get(&a, "/v2/").status, 200);
    let data = b"0123456789abcdefghij".to_vec();
    let d = sha(&data);

    // POST then PATCH chunks with Content-Range, status, PUT.
    let r = req(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let loc = r.h("location").unwrap().to_string();
    let id = r.h("docker-upload-uuid").unwrap().to_string();
    assert_eq!(loc, format!("/v2/up/blobs/uploads/{id}"));
    assert_eq!(r.h("range"), Some("0-0"));
    let r = req(&a, "PATCH", &loc, &[("Content-Range", "0-9")], &data[..10]);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.h("range"), Some("0-9"));
    // Out of order: 416 RANGE_INVALID, the upload unchanged.
    let r = req(
        &a,
        "PATCH",
        &loc,
        &[("Content-Range", "12-19")],
        &data[12..],
    );
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(r.code(), "RANGE_INVALID");
    assert_eq!(r.h("range"), Some("0-9"));
    // Longer than its Content-Range says: SIZE_INVALID, cut back.
    let r = req(
        &a,
        "PATCH",
        &loc,
        &[("Content-Range", "10-14")],
        &data[10..],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "SIZE_INVALID");
    let r = get(&a, &loc);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.h("range"), Some("0-9"));
    assert_eq!(r.h("docker-upload-uuid"), Some(id.as_str()));
    // A short body: the client declares 10 bytes, sends 4 and goes.
    {
        let mut s = TcpStream::connect(&a).unwrap();
        write!(
            s,
            "PATCH {loc} HTTP/1.1\r\nHost: {a}\r\nContent-Range: 10-19\r\nContent-Length: 10\r\n\r\nabcd"
        )
        .unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
    }
    let start = Instant::now();
    let r = loop {
        // The server may not have seen the end of that body yet.
        let r = req(
            &a,
            "PATCH",
            &loc,
            &[("Content-Range", "10-19")],
            &data[10..],
        );
        if r.status != 400 || start.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.h("range"), Some("0-19"));
    // Another repository cannot finish it.
    let r = req(
        &a,
        "PUT",
        &format!("/v2/other/blobs/uploads/{id}?digest={d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = req(&a, "PUT", &format!("{loc}?digest={d}"), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.h("location"), Some(format!("/v2/up/blobs/{d}").as_str()));
    let r = get(&a, &loc);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = get(&a, &format!("/v2/up/blobs/{d}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.h("docker-content-digest"), Some(d.as_str()));
    // Range: 206; beyond the end: 416.
    let r = req(
        &a,
        "GET",
        &format!("/v2/up/blobs/{d}"),
        &[("Range", "bytes=5-9")],
        b"",
    );
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body, b"56789");
    assert_eq!(r.h("content-range"), Some("bytes 5-9/20"));
    let r = req(
        &a,
        "GET",
        &format!("/v2/up/blobs/{d}"),
        &[("Range", "bytes=20-")],
        b"",
    );
    assert_eq!(r.status, 416, "{}", r.text());
    let r = req(&a, "HEAD", &format!("/v2/up/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.h("content-length"), Some("20"));
    // Not in another repository.
    let r = get(&a, &format!("/v2/elsewhere/blobs/{d}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "BLOB_UNKNOWN");

    // POST then PUT with the whole body.
    let other = b"monolithic in a PUT".to_vec();
    let r = req(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc2 = r.h("location").unwrap().to_string();
    let r = req(
        &a,
        "PUT",
        &format!("{loc2}?digest={}", sha(&other)),
        &[],
        &other,
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // A wrong digest: DIGEST_INVALID, nothing stored, the upload gone.
    let r = req(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc3 = r.h("location").unwrap().to_string();
    let wrong = sha(b"something else");
    let r = req(
        &a,
        "PUT",
        &format!("{loc3}?digest={wrong}"),
        &[],
        b"not that",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert!(!t.path().join("reg/blobs/sha256").join(&wrong[7..]).exists());
    assert!(!t
        .path()
        .join("reg/blobs/sha256")
        .join(&sha(b"not that")[7..])
        .exists());
    assert_eq!(get(&a, &loc3).code(), "BLOB_UPLOAD_UNKNOWN");
    let r = req(
        &a,
        "POST",
        &format!("/v2/up/blobs/uploads/?digest={wrong}"),
        &[],
        b"x",
    );
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = req(&a, "POST", "/v2/up/blobs/uploads/?digest=md5:00", &[], b"x");
    assert_eq!(r.code(), "DIGEST_INVALID");

    // Cancel.
    let r = req(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc4 = r.h("location").unwrap().to_string();
    req(&a, "PATCH", &loc4, &[], b"partial");
    assert_eq!(req(&a, "DELETE", &loc4, &[], b"").status, 204);
    assert_eq!(get(&a, &loc4).code(), "BLOB_UPLOAD_UNKNOWN");

    // Cross-repository mount: 201 from a repository that has the blob,
    // an ordinary upload (202) from one that has not.
    let r = req(
        &a,
        "POST",
        &format!("/v2/copy/blobs/uploads/?mount={d}&from=up"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(get(&a, &format!("/v2/copy/blobs/{d}")).body, data);
    let r = req(
        &a,
        "POST",
        &format!("/v2/copy2/blobs/uploads/?mount={d}&from=nothere"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(get(&a, &format!("/v2/copy2/blobs/{d}")).status, 404);

    // Cases of the distribution-spec conformance suite (v1.1.0; it does
    // not build here: its Go modules are out of reach): a mount without
    // `from` is an upload, a chunk sent again is 416, an empty blob is a
    // blob, a malformed digest is a spec error.
    let r = req(
        &a,
        "POST",
        &format!("/v2/copy3/blobs/uploads/?mount={d}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = req(&a, "POST", "/v2/up/blobs/uploads/", &[], b"");
    let loc5 = r.h("location").unwrap().to_string();
    assert_eq!(
        req(&a, "PATCH", &loc5, &[("Content-Range", "0-4")], b"01234").status,
        202
    );
    let r = req(&a, "PATCH", &loc5, &[("Content-Range", "0-4")], b"01234");
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(req(&a, "DELETE", &loc5, &[], b"").status, 204);
    let empty = push_blob(&a, "up", b"");
    let r = req(&a, "HEAD", &format!("/v2/up/blobs/{empty}"), &[], b"");
    assert_eq!((r.status, r.h("content-length")), (200, Some("0")));
    let r = get(&a, "/v2/up/manifests/sha256:totallywrong");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "DIGEST_INVALID");

    // Blob DELETE is off without --delete.
    let r = req(&a, "DELETE", &format!("/v2/up/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.code(), "UNSUPPORTED");
    srv.stop();
    // The uploads left open (copy2's and copy3's) are only uploads.
    assert_eq!(srv.uploads().len(), 2, "{:?}", srv.uploads());
}

#[test]
fn manifests_tags_catalog_and_referrers_follow_the_spec() {
    let t = tmp();
    let mut srv = Server::start(&t.path().join("reg"), &["--delete"]);
    let a = srv.addr.clone();
    let m = push_image(&a, "lib/app", "v1", "one");
    let md = sha(&m);
    for r in ["v1", md.as_str()] {
        let g = get(&a, &format!("/v2/lib/app/manifests/{r}"));
        assert_eq!(g.status, 200, "{}", g.text());
        assert_eq!(g.h("content-type"), Some(OCI_MANIFEST));
        assert_eq!(g.h("docker-content-digest"), Some(md.as_str()));
        assert_eq!(g.body, m);
        let h = req(&a, "HEAD", &format!("/v2/lib/app/manifests/{r}"), &[], b"");
        assert_eq!(h.status, 200);
        assert_eq!(h.h("content-length"), Some(m.len().to_string().as_str()));
    }
    // A client that takes Docker's types only does not get an OCI one.
    let g = req(
        &a,
        "GET",
        "/v2/lib/app/manifests/v1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(g.status, 404, "{}", g.text());
    assert_eq!(g.code(), "MANIFEST_UNKNOWN");
    assert_eq!(
        get(&a, "/v2/lib/app/manifests/nope").code(),
        "MANIFEST_UNKNOWN"
    );

    // A manifest naming a blob the repository lacks.
    let missing = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": desc("application/vnd.oci.image.config.v1+json", b"never pushed"),
        "layers": [],
    })
    .to_string();
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/bad",
        &[("Content-Type", OCI_MANIFEST)],
        missing.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    // Blobs of another repository do not count.
    let r = req(
        &a,
        "PUT",
        "/v2/other/manifests/v1",
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    );
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    // An index naming a manifest the repository lacks, then one it has.
    let index = |ms: Vec<Value>| {
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ms}).to_string()
    };
    let bad = index(vec![desc(OCI_MANIFEST, b"{}")]);
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/idx",
        &[("Content-Type", OCI_INDEX)],
        bad.as_bytes(),
    );
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN", "{}", r.text());
    let good = index(vec![desc(OCI_MANIFEST, &m)]);
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/idx",
        &[("Content-Type", OCI_INDEX)],
        good.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        get(&a, "/v2/lib/app/manifests/idx").h("content-type"),
        Some(OCI_INDEX)
    );
    // Malformed, schema 1, wrong digest in the URL, too big.
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/x",
        &[("Content-Type", OCI_MANIFEST)],
        b"{",
    );
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/x",
        &[(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        )],
        br#"{"schemaVersion":1}"#,
    );
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let r = req(
        &a,
        "PUT",
        &format!("/v2/lib/app/manifests/{}", sha(b"other")),
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    );
    assert_eq!(r.code(), "DIGEST_INVALID");
    let mut huge = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"x": ""}})
        .to_string();
    huge = huge.replace("\"x\":\"\"", &format!("\"x\":\"{}\"", "a".repeat(5 << 20)));
    let r = req(
        &a,
        "PUT",
        "/v2/lib/app/manifests/huge",
        &[("Content-Type", OCI_MANIFEST)],
        huge.as_bytes(),
    );
    assert_eq!(r.status, 413, "{}", r.status);
    assert_eq!(r.code(), "MANIFEST_INVALID");

    // Tags and catalog, paginated with Link.
    for t in ["v2", "v3", "a"] {
        let r = req(
            &a,
            "PUT",
            &format!("/v2/lib/app/manifests/{t}"),
            &[("Content-Type", OCI_MANIFEST)],
            &m,
        );
        assert_eq!(r.status, 201);
    }
    let r = get(&a, "/v2/lib/app/tags/list");
    assert_eq!(
        r.json(),
        json!({"name": "lib/app", "tags": ["a", "idx", "v1", "v2", "v3"]})
    );
    let r = get(&a, "/v2/lib/app/tags/list?n=2");
    assert_eq!(r.json()["tags"], json!(["a", "idx"]));
    assert_eq!(
        r.h("link"),
        Some("</v2/lib/app/tags/list?last=idx&n=2>; rel=\"next\"")
    );
    let r = get(&a, "/v2/lib/app/tags/list?last=idx&n=2");
    assert_eq!(r.json()["tags"], json!(["v1", "v2"]));
    let r = get(&a, "/v2/lib/app/tags/list?last=v2&n=2");
    assert_eq!(r.json()["tags"], json!(["v3"]));
    assert_eq!(r.h("link"), None);
    assert_eq!(
        get(&a, "/v2/lib/app/tags/list?n=x").code(),
        "PAGINATION_NUMBER_INVALID"
    );
    assert_eq!(get(&a, "/v2/nothing/tags/list").code(), "NAME_UNKNOWN");
    push_image(&a, "lib/base", "1", "two");
    push_image(&a, "zz", "1", "three");
    assert_eq!(
        get(&a, "/v2/_catalog").json(),
        json!({"repositories": ["lib/app", "lib/base", "zz"]})
    );
    let r = get(&a, "/v2/_catalog?n=1");
    assert_eq!(r.json()["repositories"], json!(["lib/app"]));
    assert_eq!(
        r.h("link"),
        Some("</v2/_catalog?last=lib/app&n=1>; rel=\"next\"")
    );

    // An artifact with a subject: OCI-Subject, then the referrers API.
    let empty = b"{}";
    push_blob(&a, "lib/app", empty);
    let sig = b"signature bytes";
    push_blob(&a, "lib/app", sig);
    let artifact = |t: &str, ann: &str| {
        json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": t,
            "config": desc("application/vnd.oci.empty.v1+json", empty),
            "layers": [desc("application/octet-stream", sig)],
            "subject": desc(OCI_MANIFEST, &m),
            "annotations": {"note": ann},
        })
        .to_string()
        .into_bytes()
    };
    let sig_m = artifact("application/vnd.example.sig", "s");
    let sbom_m = artifact("application/vnd.example.sbom", "b");
    for x in [&sig_m, &sbom_m] {
        let r = req(
            &a,
            "PUT",
            &format!("/v2/lib/app/manifests/{}", sha(x)),
            &[("Content-Type", OCI_MANIFEST)],
            x,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.h("oci-subject"), Some(md.as_str()));
    }
    let r = get(&a, &format!("/v2/lib/app/referrers/{md}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.h("content-type"), Some(OCI_INDEX));
    let idx = r.json();
    assert_eq!(idx["mediaType"], OCI_INDEX);
    let found = idx["manifests"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{idx}");
    let sig_entry = found.iter().find(|d| d["digest"] == sha(&sig_m)).unwrap();
    assert_eq!(sig_entry["artifactType"], "application/vnd.example.sig");
    assert_eq!(sig_entry["size"], sig_m.len());
    assert_eq!(sig_entry["annotations"]["note"], "s");
    let r = get(
        &a,
        &format!("/v2/lib/app/referrers/{md}?artifactType=application/vnd.example.sbom"),
    );
    assert_eq!(r.h("oci-filters-applied"), Some("artifactType"));
    let f = r.json();
    assert_eq!(f["manifests"].as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f["manifests"][0]["digest"], sha(&sbom_m));
    // No referrers: an empty index, not a 404.
    let r = get(&a, &format!("/v2/lib/app/referrers/{}", sha(b"none")));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], json!([]));
    assert_eq!(
        get(&a, "/v2/lib/app/referrers/sha256:zz").code(),
        "DIGEST_INVALID"
    );

    // DELETE: a tag alone; a digest with its tags and its referrer entry.
    assert_eq!(
        req(&a, "DELETE", "/v2/lib/app/manifests/a", &[], b"").status,
        202
    );
    assert_eq!(
        get(&a, "/v2/lib/app/manifests/a").code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(get(&a, "/v2/lib/app/manifests/v1").status, 200);
    let r = req(
        &a,
        "DELETE",
        &format!("/v2/lib/app/manifests/{}", sha(&sig_m)),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = get(&a, &format!("/v2/lib/app/referrers/{md}"));
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
    let r = req(
        &a,
        "DELETE",
        &format!("/v2/lib/app/manifests/{md}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    assert_eq!(
        get(&a, "/v2/lib/app/manifests/v1").code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        get(&a, "/v2/lib/app/tags/list").json()["tags"],
        json!(["idx"])
    );
    assert_eq!(
        req(
            &a,
            "DELETE",
            &format!("/v2/lib/app/manifests/{md}"),
            &[],
            b""
        )
        .code(),
        "MANIFEST_UNKNOWN"
    );
    srv.stop();
}

#[test]
fn hostile_repository_names_stay_inside_the_root() {
    let t = tmp();
    let root = t.path().join("reg");
    let mut srv = Server::start(&root, &[]);
    let a = srv.addr.clone();
    let data = b"escape".to_vec();
    let d = sha(&data);
    for name in [
        "..",
        "../../../../tmp/x",
        "%2e%2e/%2e%2e/x",
        "a/%2e%2e/b",
        "/etc",
        "a/../../b",
        "A",
        "a//b",
        "a/_tags",
        ".hidden",
    ] {
        for (m, path) in [
            ("POST", format!("/v2/{name}/blobs/uploads/?digest={d}")),
            ("GET", format!("/v2/{name}/tags/list")),
            ("PUT", format!("/v2/{name}/manifests/latest")),
            ("GET", format!("/v2/{name}/blobs/{d}")),
        ] {
            let r = req(&a, m, &path, &[], &data);
            assert!(
                r.status == 400 || r.status == 404,
                "{m} {path}: {}",
                r.text()
            );
            if r.status == 400 {
                assert_eq!(r.code(), "NAME_INVALID", "{m} {path}");
            }
        }
    }
    // Upload ids are checked too.
    let r = get(&a, "/v2/ok/blobs/uploads/..%2f..%2fblobs");
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    srv.stop();
    // Nothing was written anywhere: no blob, no repository, nothing beside
    // the root.
    let entries: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["reg"]);
    assert_eq!(
        std::fs::read_dir(root.join("repositories"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_slow_client_holding_an_upload_blocks_nobody() {
    let t = tmp();
    let mut srv = Server::start(&t.path().join("reg"), &[]);
    let a = srv.addr.clone();
    let r = req(&a, "POST", "/v2/slow/blobs/uploads/", &[], b"");
    let loc = r.h("location").unwrap().to_string();
    // The slow client: 1000 bytes declared, 10 sent, then silence.
    let mut slow = TcpStream::connect(&a).unwrap();
    write!(
        slow,
        "PATCH {loc} HTTP/1.1\r\nHost: {a}\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    slow.flush().unwrap();
    // Everyone else is served meanwhile.
    assert_eq!(get(&a, "/v2/").status, 200);
    push_image(&a, "fast/app", "1", "fast");
    assert_eq!(get(&a, "/v2/fast/app/manifests/1").status, 200);
    // The held upload answers its status (nothing kept yet) and refuses a
    // second writer rather than interleaving.
    let r = get(&a, &loc);
    assert_eq!(r.status, 204);
    assert_eq!(r.h("range"), Some("0-0"));
    let r = req(&a, "PATCH", &loc, &[], b"x");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    // The slow client gives up: its partial chunk is dropped, the upload
    // goes on from where it was.
    drop(slow);
    let data = b"the whole blob".to_vec();
    let start = Instant::now();
    let r = loop {
        let r = req(&a, "PATCH", &loc, &[], &data);
        if r.status != 400 || start.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.h("range"), Some(format!("0-{}", data.len() - 1).as_str()));
    let r = req(&a, "PUT", &format!("{loc}?digest={}", sha(&data)), &[], b"");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        get(&a, &format!("/v2/slow/blobs/{}", sha(&data))).body,
        data
    );
    srv.stop();
    assert!(srv.uploads().is_empty(), "{:?}", srv.uploads());
}

#[test]
fn concurrent_pushes_of_one_blob_store_it_once() {
    let t = tmp();
    let root = t.path().join("reg");
    let mut srv = Server::start(&root, &[]);
    let a = srv.addr.clone();
    let data: Vec<u8> = (0..(4u32 << 20)).map(|i| (i * 7 + i / 251) as u8).collect();
    let d = sha(&data);
    let data = Arc::new(data);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (a, data) = (a.clone(), data.clone());
            std::thread::spawn(move || {
                let repo = if i % 2 == 0 { "same" } else { "other" };
                push_blob(&a, repo, &data)
            })
        })
        .collect();
    for th in threads {
        assert_eq!(th.join().unwrap(), d);
    }
    for repo in ["same", "other"] {
        let r = get(&a, &format!("/v2/{repo}/blobs/{d}"));
        assert_eq!(sha(&r.body), d);
    }
    srv.stop();
    assert_eq!(
        std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        sha(&std::fs::read(root.join("blobs/sha256").join(&d[7..])).unwrap()),
        d
    );
    assert!(srv.uploads().is_empty(), "{:?}", srv.uploads());
}

#[test]
fn a_stop_mid_upload_loses_nothing_and_the_next_start_clears_it() {
    let t = tmp();
    let root = t.path().join("reg");
    let mut srv = Server::start(&root, &[]);
    let a = srv.addr.clone();
    let m = push_image(&a, "keep/app", "1", "kept");
    let r = req(&a, "POST", "/v2/keep/app/blobs/uploads/", &[], b"");
    let loc = r.h("location").unwrap().to_string();
    assert_eq!(req(&a, "PATCH", &loc, &[], b"half of a blob").status, 202);
    srv.stop();
    assert_eq!(srv.uploads().len(), 1);
    let mut srv = Server::start(&root, &[]);
    assert!(srv.uploads().is_empty(), "{:?}", srv.uploads());
    let a = srv.addr.clone();
    assert_eq!(get(&a, &loc).code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(get(&a, "/v2/keep/app/manifests/1").body, m);
    srv.stop();
}

#[test]
fn read_only_and_disabled_delete_answer_unsupported() {
    let t = tmp();
    let root = t.path().join("reg");
    let mut srv = Server::start(&root, &[]);
    let m = push_image(&srv.addr, "ro/app", "1", "ro");
    let r = req(
        &srv.addr,
        "DELETE",
        &format!("/v2/ro/app/manifests/{}", sha(&m)),
        &[],
        b"",
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.code(), "UNSUPPORTED");
    srv.stop();
    let mut srv = Server::start(&root, &["--read-only"]);
    let a = srv.addr.clone();
    assert_eq!(get(&a, "/v2/ro/app/manifests/1").body, m);
    for (method, path) in [
        ("POST", "/v2/ro/app/blobs/uploads/".to_string()),
        ("PUT", "/v2/ro/app/manifests/2".to_string()),
        ("DELETE", format!("/v2/ro/app/manifests/{}", sha(&m))),
    ] {
        let r = req(&a, method, &path, &[], b"{}");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert_eq!(r.code(), "UNSUPPORTED");
    }
    srv.stop();
    // Options that do not go together say so, with docker's 125.
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--store"])
        .args(["--proxy", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--store and --proxy do not go together"),
        "{}",
        stderr(&o)
    );
    // A taken address is a clear error too.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["registry", "serve", "--root"])
        .arg(&root)
        .args(["--addr", &l.local_addr().unwrap().to_string()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot listen on"), "{}", stderr(&o));
}

#[test]
fn store_mode_serves_berths_images_without_copying() {
    let b = Berth::new();
    let mut srv = Server::start_store(&b, &["--read-only"]);
    let a = srv.addr.clone();
    let cat = get(&a, "/v2/_catalog").json();
    assert_eq!(cat["repositories"], json!(["bb", "library/bb"]), "{cat}");
    assert_eq!(get(&a, "/v2/bb/tags/list").json()["tags"], json!(["test"]));
    // skopeo reads it; every blob it gets is the store's own file.
    let inspect: Value = serde_json::from_str(&skopeo_ok(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{a}/bb:test"),
    ]))
    .unwrap();
    let layers = inspect["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{inspect}");
    let layer = layers[0].as_str().unwrap();
    let served = get(&a, &format!("/v2/library/bb/blobs/{layer}")).body;
    assert_eq!(sha(&served), layer);
    let file = b.root.join("blobs/sha256").join(&layer[7..]);
    assert_eq!(std::fs::read(&file).unwrap(), served);
    let layout = b.path().join("layout");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{a}/library/bb:test"),
        &format!("oci:{}:x", layout.display()),
    ]);
    // Another berth pulls and runs it.
    let c = Berth::empty();
    let name = format!("{a}/bb:test");
    c.ok(&["pull", &name]);
    assert_eq!(c.ok(&["run", "--rm", &name, "echo", "ok"]), "ok\n");
    // A tag made while it serves is served at once.
    b.ok(&["tag", IMAGE, "127.0.0.1:5999/team/app:2"]);
    assert_eq!(
        get(&a, "/v2/team/app/tags/list").json()["tags"],
        json!(["2"])
    );
    // --read-only: pushes say where images come from.
    let r = req(&a, "POST", "/v2/bb/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 405, "{}", r.text());
    assert!(r.text().contains("--store"), "{}", r.text());
    srv.stop();
    assert_census_clean(&b);
    assert_census_clean(&c);
}

/// Blob uploads (POST/PATCH/PUT under `/blobs/uploads/`) into `repo` that
/// the access log shows, and HEADs of blobs there answered 200.
fn uploads_and_heads(srv: &Server, repo: &str) -> (usize, usize) {
    let log = srv.log_lines();
    let uploads = log
        .iter()
        .filter(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(&format!("/v2/{repo}/blobs/uploads/")))
                && l["status"].as_u64().is_some_and(|s| s < 300)
        })
        .count();
    let heads = log
        .iter()
        .filter(|l| {
            l["method"] == "HEAD"
                && l["status"] == 200
                && l["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("/v2/{repo}/blobs/sha256:")))
        })
        .count();
    (uploads, heads)
}

#[test]
fn store_mode_takes_pushes_into_berths_store() {
    let b = Berth::new();
    let mut srv = Server::start_store(&b, &[]);
    let a = srv.addr.clone();
    // Another berth pushes an image with a layer b's store lacks: it is
    // unpacked into b's store, listed by `berth images` under the name
    // pushed (the Host the client sent), and runs.
    let c = Berth::empty();
    let tar = busybox_rootfs_tar_with(&[("hello", 0o644, b"pushed\n")]);
    let o = c.run_stdin(&["import", "-c", "CMD [\"sh\"]", "-", "mine:1"], &tar);
    assert!(o.status.success(), "{}", stderr(&o));
    let pushed = format!("{a}/mine/app:1");
    c.ok(&["tag", "mine:1", &pushed]);
    c.ok(&["push", &pushed]);
    let (up, _) = uploads_and_heads(&srv, "mine/app");
    assert!(up > 0, "the new layer and config were uploaded");
    let images = b.ok(&["images"]);
    assert!(images.contains(&format!("{a}/mine/app")), "{images}");
    assert_eq!(b.ok(&["run", "--rm", &pushed, "cat", "/hello"]), "pushed\n");
    // Served back as mine/app:1, the manifest as pushed (same digest).
    let m = get(&a, "/v2/mine/app/manifests/1");
    assert_eq!(m.status, 200, "{}", m.text());
    assert_eq!(m.h("docker-content-digest"), Some(sha(&m.body).as_str()));
    let d = Berth::empty();
    d.ok(&["pull", &pushed]);
    assert_eq!(d.ok(&["run", "--rm", &pushed, "cat", "/hello"]), "pushed\n");
    let digests = d.ok(&["images", "--digests"]);
    assert!(digests.contains(&sha(&m.body)), "{digests}");
    // A local image whose blobs the store has: every blob HEAD says 200,
    // no byte is uploaded.
    c.ok(&["pull", &format!("{a}/bb:test")]);
    let again = format!("{a}/again:1");
    c.ok(&["tag", &format!("{a}/bb:test"), &again]);
    c.ok(&["push", &again]);
    let (up, heads) = uploads_and_heads(&srv, "again");
    assert_eq!(
        up, 0,
        "no blob was uploaded for a push of blobs the store has"
    );
    assert!(heads >= 2, "config and layer answered present: {heads}");
    assert_eq!(b.ok(&["run", "--rm", &again, "echo", "ok"]), "ok\n");
    // skopeo copies into it.
    let layout = b.path().join("layout");
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{a}/mine/app:1"),
        &format!("oci:{}:x", layout.display()),
    ]);
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:x", layout.display()),
        &format!("docker://{a}/sk/app:2"),
    ]);
    assert_eq!(
        b.ok(&["run", "--rm", &format!("{a}/sk/app:2"), "cat", "/hello"]),
        "pushed\n"
    );
    assert_eq!(get(&a, "/v2/sk/app/tags/list").json()["tags"], json!(["2"]));
    // A wrong digest leaves nothing: not in the store, no upload kept.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let r = req(
        &a,
        "POST",
        &format!("/v2/bad/blobs/uploads/?digest={wrong}"),
        &[],
        b"not what the digest says",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "DIGEST_INVALID");
    let body_sha = sha(b"not what the digest says");
    assert!(!b.root.join("blobs/sha256").join(&body_sha[7..]).exists());
    let staging: Vec<PathBuf> = std::fs::read_dir(b.root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("registry-"))
        })
        .collect();
    assert_eq!(staging.len(), 1, "{staging:?}");
    assert_eq!(
        std::fs::read_dir(staging[0].join("uploads"))
            .unwrap()
            .count(),
        0
    );
    // Indexes and artifacts are refused with a reason.
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []});
    let r = req(
        &a,
        "PUT",
        "/v2/mine/app/manifests/idx",
        &[("content-type", "application/vnd.oci.image.index.v1+json")],
        index.to_string().as_bytes(),
    );
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.code(), "UNSUPPORTED");
    assert!(r.text().contains("indexes"), "{}", r.text());
    srv.stop();
    // The server's work dir goes with it.
    assert!(!staging[0].exists());
    // --delete untags through the store (by tag, and by digest every tag
    // of it); the image stays until berth image prune.
    let mut srv = Server::start_store(&b, &["--delete"]);
    let a2 = srv.addr.clone();
    let r = req(&a2, "DELETE", "/v2/again/manifests/1", &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let sk = get(&a2, "/v2/sk/app/manifests/2");
    let sk_digest = sk.h("docker-content-digest").unwrap().to_string();
    let r = req(
        &a2,
        "DELETE",
        &format!("/v2/sk/app/manifests/{sk_digest}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = req(&a2, "DELETE", "/v2/again/manifests/1", &[], b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = req(
        &a2,
        "DELETE",
        &format!("/v2/mine/app/blobs/{sk_digest}"),
        &[],
        b"",
    );
    assert_eq!(r.code(), "UNSUPPORTED", "{}", r.text());
    let images = b.ok(&["images"]);
    assert!(!images.contains(&format!("{a}/again")), "{images}");
    assert!(!images.contains(&format!("{a}/sk/app")), "{images}");
    assert!(images.contains(&format!("{a}/mine/app")), "{images}");
    assert_eq!(get(&a2, "/v2/again/tags/list").status, 404);
    srv.stop();
    assert_census_clean(&b);
    assert_census_clean(&c);
    assert_census_clean(&d);
}

/// Pushes into `--store` that must not land: a layer whose content is not
/// the config's diff-id, a manifest naming a blob never pushed. Nothing of
/// them is kept; staged blobs outlive an `image prune -a` (the store's gc)
/// and a correct manifest then registers them.
#[test]
fn store_mode_refuses_bad_pushes_and_keeps_staged_blobs_from_gc() {
    let b = Berth::new();
    let mut srv = Server::start_store(&b, &[]);
    let a = srv.addr.clone();
    let layer = busybox_rootfs_tar_with(&[("marker", 0o644, b"staged\n")]);
    let config_for = |diff: &str| {
        json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        })
        .to_string()
        .into_bytes()
    };
    let manifest_for = |config: &[u8]| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", config),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
        })
        .to_string()
        .into_bytes()
    };
    let layers_before = std::fs::read_dir(b.root.join("layers")).unwrap().count();
    push_blob(&a, "evil", &layer);
    // The config names another diff-id: refused, nothing registered.
    let wrong = config_for(&format!("sha256:{}", "1".repeat(64)));
    push_blob(&a, "evil", &wrong);
    let r = req(
        &a,
        "PUT",
        "/v2/evil/manifests/1",
        &[("Content-Type", OCI_MANIFEST)],
        &manifest_for(&wrong),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(r.text().contains("diff-id"), "{}", r.text());
    // A manifest naming a blob never pushed.
    let right = config_for(&sha(&layer));
    let r = req(
        &a,
        "PUT",
        "/v2/evil/manifests/2",
        &[("Content-Type", OCI_MANIFEST)],
        &manifest_for(&right),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    assert!(!b.ok(&["images"]).contains("evil"));
    assert_eq!(
        std::fs::read_dir(b.root.join("layers")).unwrap().count(),
        layers_before
    );
    assert!(!b.root.join("blobs/sha256").join(&sha(&layer)[7..]).exists());
    // The store's gc runs meanwhile (every image pruned): the staged layer
    // stays, and the right config makes the image.
    b.ok(&["image", "prune", "-a", "-f"]);
    push_blob(&a, "good", &right);
    let m = manifest_for(&right);
    let r = req(
        &a,
        "PUT",
        "/v2/good/manifests/1",
        &[("Content-Type", OCI_MANIFEST)],
        &m,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.h("docker-content-digest"), Some(sha(&m).as_str()));
    let name = format!("{a}/good:1");
    assert_eq!(b.ok(&["run", "--rm", &name, "cat", "/marker"]), "staged\n");
    assert_eq!(get(&a, "/v2/good/manifests/1").body, m);
    srv.stop();
    assert_census_clean(&b);
}

#[test]
fn the_docker_cli_pushes_and_pulls_through_dockerd() {
    assert!(
        Path::new(dockerd::DOCKERD).exists() && Path::new(dockerd::DOCKER).exists(),
        "dockerd and the docker CLI are needed: apt-get install docker.io (scripts/deps does)"
    );
    let b = Berth::new();
    let ns = dockerd::Netns::new(format!("brs-{}", std::process::id()));
    let ddir = b.path().join("dockerd");
    std::fs::create_dir_all(&ddir).unwrap();
    // No bridge and no rules: the containers run with --network none.
    let d = dockerd::Dockerd::start(&ns, &ddir, &["--bridge=none", "--iptables=false"]);
    // The registries inside dockerd's namespace, on its loopback
    // (insecure for dockerd by default).
    let serve_in_ns = |flags: &[&str]| {
        let mut cmd = ns.cmd(env!("CARGO_BIN_EXE_berth"));
        for (k, v) in b.cmd().get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0"])
            .args(flags);
        cmd
    };
    let root = b.path().join("registry");
    let mut srv = Server::spawn(
        {
            let mut c = serve_in_ns(&["--root"]);
            c.arg(&root);
            c
        },
        &root,
    );
    let archive = b.path().join("bb.tar");
    b.ok(&["save", "-o", archive.to_str().unwrap(), IMAGE]);
    d.docker_ok(&["load", "-i", archive.to_str().unwrap()]);
    let name = format!("{}/dk/bb:1", srv.addr);
    d.docker_ok(&["tag", IMAGE, &name]);
    let out = d.docker_ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{out}");
    d.docker_ok(&["rmi", &name, IMAGE]);
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", &name, "echo", "ok"]),
        "ok\n"
    );
    srv.stop();
    // berth's own store, served as it is: dockerd pulls an imported image.
    let mut local = Server::spawn(serve_in_ns(&["--store"]), &b.root);
    let name = format!("{}/bb:test", local.addr);
    d.docker_ok(&["pull", &name]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", &name, "echo", "ok"]),
        "ok\n"
    );
    // And takes docker's push: the image lands in berth's store under the
    // name docker pushed, runnable. (docker 20.10 uploads the layer in the
    // compressed form it made for the first registry, a blob berth's store
    // does not hold; the store checks it against the config's diff-id.)
    let pushed = format!("{}/from-docker/app:1", local.addr);
    d.docker_ok(&["tag", &name, &pushed]);
    d.docker_ok(&["push", &pushed]);
    assert!(b
        .ok(&["images"])
        .contains(&format!("{}/from-docker/app", local.addr)));
    assert_eq!(b.ok(&["run", "--rm", &pushed, "echo", "ok"]), "ok\n");
    b.ok(&["rmi", &pushed]);
    local.stop();
    // The authenticated server, Basic then token auth: refused without a
    // login, then `docker login` and push, pull, run.
    let pw = b.path().join("htpasswd");
    let o = Command::new("htpasswd")
        .arg("-bBc")
        .arg(&pw)
        .args(["alice", "wonderland"])
        .output()
        .expect("htpasswd (apt-get install apache2-utils)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (flow, extra) in [("basic", &[][..]), ("token", &["--token-auth"][..])] {
        let root = b.path().join(format!("registry-{flow}"));
        let mut c = serve_in_ns(&["--htpasswd", pw.to_str().unwrap(), "--root"]);
        c.arg(&root).args(extra);
        let mut srv = Server::spawn(c, &root);
        docker_cli_with_users(&d, &name, &srv.addr, flow);
        srv.stop();
        let log = srv.log_lines();
        assert!(
            log.iter()
                .any(|l| l["user"] == "alice" && l["method"] == "PUT" && l["status"] == 201),
            "{flow}: no push by alice in the access log"
        );
    }
    drop(d);
    drop(ns);
    assert_census_clean(&b);
}

/// `docker login`, push, pull and run against a registry that requires
/// alice's credentials; a push without them is refused as docker says it.
fn docker_cli_with_users(d: &dockerd::Dockerd, image: &str, addr: &str, flow: &str) {
    let name = format!("{addr}/team/bb:{flow}");
    d.docker_ok(&["tag", image, &name]);
    let o = d.docker(&["push", &name]);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        !o.status.success(),
        "{flow}: a push without login worked: {said}"
    );
    // docker's own words: with Basic it sends nothing it does not hold;
    // with tokens it gets an anonymous one that grants no push, and says
    // what Docker Hub users see.
    let refused = match flow {
        "basic" => "no basic auth credentials",
        _ => "denied: requested access to the resource is denied",
    };
    assert!(said.contains(refused), "{flow}: {said}");
    let login = |user: &str, pass: &str| {
        let mut c = d.docker_cmd();
        c.args(["login", "-u", user, "--password-stdin", addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pass.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = login("alice", "not her password");
    assert!(!o.status.success(), "{flow}: a wrong password logged in");
    // "login attempt to http://…/v2/ failed with status: 401 Unauthorized"
    // (Basic), "unauthorized: …" from the token endpoint.
    assert!(
        stderr(&o).to_lowercase().contains("unauthorized"),
        "{flow}: {}",
        stderr(&o)
    );
    let o = login("alice", "wonderland");
    assert!(o.status.success(), "{flow}: docker login: {}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    let out = d.docker_ok(&["push", &name]);
    assert!(out.contains("digest: sha256:"), "{flow}: {out}");
    d.docker_ok(&["rmi", &name]);
    let out = d.docker_ok(&["pull", &name]);
    assert!(out.contains("Downloaded newer image"), "{flow}: {out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", &name, "echo", "ok"]),
        "ok\n"
    );
    d.docker_ok(&["rmi", &name]);
    d.docker_ok(&["logout", addr]);
    // Logged out: refused again.
    let o = d.docker(&["pull", &name]);
    assert!(!o.status.success(), "{flow}: a pull after logout worked");
}

/// Dribble `GET /v2/` headers on `s` a byte at a time (one every 100 ms,
/// a header line that never ends) until the server closes the connection;
/// false if it still held it after `bound` bytes.
fn dribble_until_closed(s: &mut TcpStream, bound: usize) -> bool {
    let head = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut sink = [0u8; 4096];
    for i in 0..bound {
        let byte = if i < head.len() { head[i] } else { b'a' };
        if s.write_all(&[byte]).and_then(|_| s.flush()).is_err() {
            return true;
        }
        // A closed connection reads as EOF (or a reset); a held one
        // times out here, which paces the dribble.
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// Slowloris: clients that send their request headers a byte at a time
/// (or nothing at all) are disconnected once the header timeout passes,
/// and at the connection cap a new client is served once they are gone.
#[test]
fn clients_dribbling_headers_are_disconnected() {
    let t = tmp();
    let mut srv = Server::start(
        &t.path().join("reg"),
        &["--header-timeout", "2s", "--max-connections", "3"],
    );
    let a = srv.addr.clone();
    // Two dribbling clients and one that sends nothing: the cap is full.
    let mut slow: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&a).unwrap()).collect();
    let silent = TcpStream::connect(&a).unwrap();
    // A fourth client waits to be accepted, in a thread of its own: the
    // server serves it once the others are cut off.
    let a2 = a.clone();
    let waiting = std::thread::spawn(move || get(&a2, "/v2/").status);
    let handles: Vec<_> = slow
        .drain(..)
        .map(|mut s| std::thread::spawn(move || dribble_until_closed(&mut s, 600)))
        .collect();
    for h in handles {
        assert!(
            h.join().unwrap(),
            "the server still held a connection after 60 s of headers sent a byte at a time"
        );
    }
    let mut silent = silent;
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buf = [0u8; 64];
    match silent.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a connection that sent nothing was kept for 60 s: {other:?}"),
    }
    assert_eq!(waiting.join().unwrap(), 200);
    // And the server serves as before.
    assert_eq!(get(&a, "/v2/").status, 200);
    srv.stop();
}
