//! `berth registry serve` with users (htpasswd, an access policy,
//! anonymous reads), Basic and token auth, TLS, and `berth registry gc`
//! beside pushes: berth's own client, skopeo and curl as the peers, all
//! on 127.0.0.1. The server runs as a child process, as users run it.
mod common;
#[path = "support/registry.rs"]
mod support_registry;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use support_registry::make_certs;

/// A `berth registry serve` child process on a free loopback port, its
/// stderr (startup line and JSON access log) collected.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(b: &Berth, root: &Path, args: &[&str]) -> Server {
        let mut child = b
            .cmd()
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["msg"] == "listening" {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                        }
                    }
                }
                l.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the registry did not start: {:?}", log.lock().unwrap());
            }
        };
        Server { child, addr, log }
    }

    /// Start, expecting a refusal: the exit code and stderr.
    fn refuse(b: &Berth, root: &Path, args: &[&str]) -> (i32, String) {
        let o = b
            .cmd()
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (code(&o), stderr(&o))
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: the server stops by itself.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An htpasswd file of `htpasswd -B` (apache2-utils) entries.
fn htpasswd(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let p = dir.join("htpasswd");
    for (i, (u, pw)) in users.iter().enumerate() {
        let mut c = Command::new("htpasswd");
        c.arg("-bB");
        if i == 0 {
            c.arg("-c");
        }
        let o = c
            .arg(&p)
            .args([u, pw])
            .output()
            .expect("htpasswd (apt-get install apache2-utils)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    p
}

/// alice may do everything, bob may only pull.
const POLICY: &str = r#"
[[allow]]
users = ["alice"]
repositories = ["*"]
actions = ["pull", "push", "delete"]
catalog = true

[[allow]]
users = ["bob"]
repositories = ["*"]
actions = ["pull"]
"#;

fn users(dir: &Path) -> (PathBuf, PathBuf) {
    let pw = htpasswd(dir, &[("alice", "wonderland"), ("bob", "builder")]);
    let access = dir.join("access.toml");
    std::fs::write(&access, POLICY).unwrap();
    (pw, access)
}

fn login(b: &Berth, reg: &str, user: &str, pass: &str) -> std::process::Output {
    b.run_stdin(
        &["login", "-u", user, "--password-stdin", reg],
        format!("{pass}\n").as_bytes(),
    )
}

fn skopeo(args: &[&str]) -> std::process::Output {
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is needed: apt-get install skopeo (scripts/deps does)"
    );
    Command::new("/usr/bin/skopeo").args(args).output().unwrap()
}

/// The same users and rules through either flow: alice logs in and
/// pushes, a wrong password and bob's push are refused with clear errors,
/// bob pulls, a client without credentials is asked for them; skopeo
/// copies out and in with `--creds`.
fn users_push_pull_and_are_refused(flow: &[&str], what: &str) {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (pw, access) = users(dir.path());
    let mut args = vec![
        "--htpasswd",
        pw.to_str().unwrap(),
        "--access",
        access.to_str().unwrap(),
    ];
    args.extend_from_slice(flow);
    let s = Server::start(&b, &dir.path().join("registry"), &args);
    let r = format!("{}/team/app:1", s.addr);
    b.ok(&["tag", IMAGE, &r]);

    // No credentials: asked to log in, exit 1 (docker's push error code).
    let o = b.run(&["push", &r]);
    assert_eq!(code(&o), 1, "{what}: {}", stderr(&o));
    assert!(
        stderr(&o).contains("unauthorized") || stderr(&o).contains("berth login"),
        "{what}: {}",
        stderr(&o)
    );
    // A wrong password is refused at login.
    let o = login(&b, &s.addr, "alice", "rabbit");
    assert_eq!(code(&o), 1, "{what}");
    assert!(
        stderr(&o).contains("incorrect username or password"),
        "{what}: {}",
        stderr(&o)
    );
    // alice pushes.
    let o = login(&b, &s.addr, "alice", "wonderland");
    assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
    b.ok(&["push", &r]);
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("\"user\":\"alice\"") && l.contains("\"method\":\"PUT\"")),
        "{what}: the access log names the user"
    );

    // bob pulls but may not push.
    let c = Berth::empty();
    assert_eq!(code(&login(&c, &s.addr, "bob", "builder")), 0, "{what}");
    c.ok(&["pull", &r]);
    assert_eq!(c.ok(&["run", "--rm", &r, "echo", "pulled"]), "pulled\n");
    let mine = format!("{}/team/bobs:1", s.addr);
    c.ok(&["tag", &r, &mine]);
    let o = c.run(&["push", &mine]);
    assert_eq!(code(&o), 1, "{what}: bob's push must fail");
    assert!(
        stderr(&o).contains("denied") || stderr(&o).contains("unauthorized"),
        "{what}: {}",
        stderr(&o)
    );

    // skopeo with --creds: out of the registry and back into it.
    let oci = dir.path().join("oci");
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "bob:builder",
        &format!("docker://{r}"),
        &format!("oci:{}:app", oci.display()),
    ]);
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:wonderland",
        &format!("oci:{}:app", oci.display()),
        &format!("docker://{}/team/copied:2", s.addr),
    ]);
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:builder",
        &format!("oci:{}:app", oci.display()),
        &format!("docker://{}/team/copied:3", s.addr),
    ]);
    assert!(!o.status.success(), "{what}: skopeo as bob must not push");
    let o = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "bob:builder",
        &format!("docker://{}/team/copied", s.addr),
    ]);
    assert!(
        o.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("\"2\""),
        "{what}"
    );
    let o = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{r}")]);
    assert!(
        !o.status.success(),
        "{what}: no anonymous reads without --anonymous-read"
    );
    drop(s);
    assert_census_clean(&b);
    assert_census_clean(&c);
}

#[test]
fn basic_auth_users_push_pull_and_are_refused() {
    users_push_pull_and_are_refused(&[], "basic");
}

#[test]
fn token_auth_users_push_pull_and_are_refused() {
    users_push_pull_and_are_refused(&["--token-auth"], "token");
}

#[test]
fn anonymous_reads_pull_without_credentials_and_never_push() {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (pw, _) = users(dir.path());
    for flow in [&[][..], &["--token-auth"][..]] {
        let mut args = vec!["--htpasswd", pw.to_str().unwrap(), "--anonymous-read"];
        args.extend_from_slice(flow);
        let s = Server::start(&b, &dir.path().join("registry"), &args);
        let r = format!("{}/pub/app:1", s.addr);
        b.ok(&["tag", IMAGE, &r]);
        let o = b.run(&["push", &r]);
        assert_eq!(code(&o), 1, "{flow:?}: an anonymous push: {}", stderr(&o));
        assert_eq!(code(&login(&b, &s.addr, "alice", "wonderland")), 0);
        b.ok(&["push", &r]);
        b.ok(&["logout", &s.addr]);
        let c = Berth::empty();
        c.ok(&["pull", &r]);
        let o = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{r}")]);
        assert!(
            o.status.success(),
            "{flow:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_census_clean(&c);
    }
    assert_census_clean(&b);
}

#[test]
fn bad_auth_and_tls_options_are_refused_at_start() {
    let b = Berth::empty();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path().join("registry");
    let md5 = dir.path().join("md5.htpasswd");
    let o = Command::new("htpasswd")
        .args(["-bcm"])
        .arg(&md5)
        .args(["carol", "x"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let (c, e) = Server::refuse(&b, &root, &["--htpasswd", md5.to_str().unwrap()]);
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("line 1") && e.contains("htpasswd -B"), "{e}");
    let missing = dir.path().join("missing.htpasswd");
    let (c, e) = Server::refuse(&b, &root, &["--htpasswd", missing.to_str().unwrap()]);
    assert_eq!(c, 125, "{e}");
    assert!(
        e.contains("--htpasswd") && e.contains("cannot read it"),
        "{e}"
    );
    let (c, e) = Server::refuse(&b, &root, &["--anonymous-read"]);
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("--anonymous-read needs --htpasswd"), "{e}");
    make_certs(dir.path());
    let crt = dir.path().join("server.crt");
    let (c, e) = Server::refuse(
        &b,
        &root,
        &[
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            crt.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("--tls-key"), "{e}");
    let (c, e) = Server::refuse(&b, &root, &["--tls-cert", crt.to_str().unwrap()]);
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("--tls-key"), "{e}");
    assert_census_clean(&b);
}

/// HTTPS with a certificate from a CA made here: berth trusts it through
/// certs.d/<host:port>/ca.crt (and refuses it without), skopeo through
/// --cert-dir; token auth over the same TLS.
#[test]
fn tls_with_a_ca_of_the_test() {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    make_certs(dir.path());
    let (pw, _) = users(dir.path());
    let s = Server::start(
        &b,
        &dir.path().join("registry"),
        &[
            "--tls-cert",
            dir.path().join("server.crt").to_str().unwrap(),
            "--tls-key",
            dir.path().join("server.key").to_str().unwrap(),
            "--htpasswd",
            pw.to_str().unwrap(),
            "--token-auth",
        ],
    );
    let cfg = b.path().join("config");
    std::fs::write(
        cfg.join("registries.toml"),
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = false\n",
            s.addr
        ),
    )
    .unwrap();
    let r = format!("{}/secure/app:1", s.addr);
    b.ok(&["tag", IMAGE, &r]);
    let o = login(&b, &s.addr, "alice", "wonderland");
    assert_eq!(code(&o), 1, "an unknown CA must be refused");
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));
    let certs = cfg.join("certs.d").join(&s.addr);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(dir.path().join("ca.crt"), certs.join("ca.crt")).unwrap();
    assert_eq!(code(&login(&b, &s.addr, "alice", "wonderland")), 0);
    b.ok(&["push", &r]);
    let o = skopeo(&[
        "inspect",
        "--cert-dir",
        certs.to_str().unwrap(),
        "--creds",
        "alice:wonderland",
        &format!("docker://{r}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Plain HTTP to the TLS port gets nowhere, and the server goes on.
    let o = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/v2/", s.addr))
        .output()
        .unwrap();
    assert_ne!(stdout(&o), "200");
    b.ok(&["rmi", &r]);
    b.ok(&["pull", &r]);
    drop(s);
    assert_census_clean(&b);
}

fn curl(args: &[&str]) -> (String, String) {
    let o = Command::new("curl")
        .args(["-sS", "-D", "/dev/stderr", "-o", "/dev/stdout"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "curl {args:?}: {}", stderr(&o));
    (stdout(&o), stderr(&o))
}

/// The `Location` of a curl answer's headers.
fn location(headers: &str, addr: &str) -> String {
    let l = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in {headers}"));
    if l.starts_with('/') {
        format!("http://{addr}{l}")
    } else {
        l
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn gc(b: &Berth, root: &Path, args: &[&str]) -> String {
    let mut a = vec!["registry", "gc", "--root", root.to_str().unwrap()];
    a.extend_from_slice(args);
    b.ok(&a)
}

/// gc removes a blob nothing references, keeps what images need, and
/// leaves an upload under way alone: the upload finishes after gc and the
/// manifest naming it is accepted. Pushes running while gc runs again and
/// again all succeed and pull back whole.
#[test]
fn gc_sweeps_unreferenced_blobs_and_keeps_concurrent_pushes() {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let root = dir.path().join("registry");
    let s = Server::start(&b, &root, &[]);
    let r = format!("{}/gc/app:1", s.addr);
    b.ok(&["tag", IMAGE, &r]);
    b.ok(&["push", &r]);

    // An orphan blob, pushed monolithically.
    let orphan = b"nobody refers to me".to_vec();
    let od = sha256(&orphan);
    let (_, h) = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/gc/app/blobs/uploads/", s.addr),
    ]);
    let up = location(&h, &s.addr);
    let sep = if up.contains('?') { '&' } else { '?' };
    let file = dir.path().join("orphan");
    std::fs::write(&file, &orphan).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{up}{sep}digest={od}"),
    ]);
    let blob = root
        .join("blobs/sha256")
        .join(od.trim_start_matches("sha256:"));
    assert!(blob.exists());

    // An upload under way: one chunk sent, not finished.
    let late = b"a layer whose upload gc must not lose".to_vec();
    let ld = sha256(&late);
    let (_, h) = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/gc/late/blobs/uploads/", s.addr),
    ]);
    let up = location(&h, &s.addr);
    std::fs::write(&file, &late[..10]).unwrap();
    let (_, h) = curl(&[
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        "Content-Range: 0-9",
        "--data-binary",
        &format!("@{}", file.display()),
        &up,
    ]);
    let up = location(&h, &s.addr);

    // A dry run says what would go and removes nothing.
    let out = gc(&b, &root, &["--dry-run", "--grace", "0s"]);
    assert!(out.contains(&od), "{out}");
    assert!(out.contains("would"), "{out}");
    assert!(blob.exists());
    // The real one removes the orphan and says how much it freed.
    let out = gc(&b, &root, &["--grace", "0s"]);
    assert!(
        out.contains(&od) && out.contains(&format!("{} bytes", orphan.len())) || out.contains(&od),
        "{out}"
    );
    assert!(!blob.exists(), "{out}");
    let o = b.run(&[
        "registry",
        "gc",
        "--root",
        root.to_str().unwrap(),
        "--grace",
        "0s",
    ]);
    assert!(!stdout(&o).contains(&od));

    // The upload under way finishes after gc, and an image uses it.
    std::fs::write(&file, &late[10..]).unwrap();
    let sep = if up.contains('?') { '&' } else { '?' };
    curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "-H",
        &format!("Content-Range: 10-{}", late.len() - 1),
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{up}{sep}digest={ld}"),
    ]);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let cd = sha256(&config);
    std::fs::write(&file, &config).unwrap();
    let (_, h) = curl(&[
        "-X",
        "POST",
        &format!("http://{}/v2/gc/late/blobs/uploads/", s.addr),
    ]);
    let up = location(&h, &s.addr);
    let sep = if up.contains('?') { '&' } else { '?' };
    curl(&[
        "-X",
        "PUT",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{up}{sep}digest={cd}"),
    ]);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": late.len()}],
    })
    .to_string();
    std::fs::write(&file, &manifest).unwrap();
    let (_, h) = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{}/v2/gc/late/manifests/1", s.addr),
    ]);
    assert!(h.starts_with("HTTP/1.1 201"), "{h}");
    let out = gc(&b, &root, &["--grace", "0s"]);
    assert!(!out.contains(&ld) && !out.contains(&cd), "{out}");
    assert!(root
        .join("blobs/sha256")
        .join(ld.trim_start_matches("sha256:"))
        .exists());

    // Real pushes while gc runs over and over (default grace): every push
    // succeeds and every image pulls back.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gcs = {
        let (stop, runs) = (stop.clone(), runs.clone());
        let cmd = b.cmd();
        let bin = cmd.get_program().to_owned();
        let envs: Vec<_> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect();
        let root = root.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                || runs.load(std::sync::atomic::Ordering::Relaxed) == 0
            {
                let mut c = Command::new(&bin);
                for (k, v) in &envs {
                    if let Some(v) = v {
                        c.env(k, v);
                    }
                }
                let o = c
                    .args(["registry", "gc", "--root"])
                    .arg(&root)
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let b2 = Berth::new();
    for i in 0..4 {
        let t = format!("{}/gc/busy{i}:1", s.addr);
        b2.ok(&["tag", IMAGE, &t]);
        b2.ok(&["push", &t]);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    gcs.join().unwrap();
    assert!(runs.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let c = Berth::empty();
    for i in 0..4 {
        let t = format!("{}/gc/busy{i}:1", s.addr);
        c.ok(&["pull", &t]);
    }
    assert_eq!(
        c.ok(&[
            "run",
            "--rm",
            &format!("{}/gc/busy3:1", s.addr),
            "echo",
            "whole"
        ]),
        "whole\n"
    );
    drop(s);
    assert_census_clean(&b);
    assert_census_clean(&b2);
    assert_census_clean(&c);
}

/// The digest `berth pull` printed.
fn pulled_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .trim()
        .to_string()
}

/// A pull-through cache of another berth registry: it fills on the first
/// pull, serves offline once the upstream is gone, refuses pushes, works
/// as a mirror in registries.toml, and re-asks the upstream for a tag
/// once its TTL is over (0s here) but not before (the default 10m).
#[test]
fn pull_through_cache_of_another_registry() {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let up_root = dir.path().join("upstream");
    let cache_root = dir.path().join("cache");
    let up = Server::start(&b, &up_root, &[]);
    let upstream_ref = format!("{}/lib/app:1", up.addr);
    b.ok(&["tag", IMAGE, &upstream_ref]);
    b.ok(&["push", &upstream_ref]);
    let url = format!("http://{}", up.addr);
    let cache = Server::start(&b, &cache_root, &["--proxy", &url]);

    // First pull: fetched from the upstream, kept.
    let c = Berth::empty();
    let via = format!("{}/lib/app:1", cache.addr);
    let first = pulled_digest(&c.ok(&["pull", &via]));
    assert!(cache_root.join("repositories/lib/app/_tags/1").exists());
    // Pushes are refused, naming the upstream.
    let o = c.run(&["push", &via]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("pull-through cache"), "{}", stderr(&o));

    // A new image under the same tag upstream: within the TTL the cache
    // keeps serving what it has.
    let e = Berth::new();
    e.ok(&["run", "--name", "x", IMAGE, "sh", "-c", "echo v2 > /v2"]);
    e.ok(&["commit", "x", &upstream_ref]);
    e.ok(&["rm", "x"]);
    e.ok(&["push", &upstream_ref]);
    let d = Berth::empty();
    assert_eq!(pulled_digest(&d.ok(&["pull", &via])), first);
    drop(cache);

    // TTL 0: every pull of the tag asks the upstream.
    let cache = Server::start(&b, &cache_root, &["--proxy", &url, "--proxy-ttl", "0s"]);
    let via = format!("{}/lib/app:1", cache.addr);
    let d = Berth::empty();
    let second = pulled_digest(&d.ok(&["pull", &via]));
    assert_ne!(second, first);
    assert_eq!(d.ok(&["run", "--rm", &via, "cat", "/v2"]), "v2\n");

    // The upstream gone: the cache serves what it has, also as a mirror.
    drop(up);
    let m = Berth::empty();
    std::fs::write(
        m.path().join("config/registries.toml"),
        format!(
            "[[registry]]\nlocation = \"{}\"\nmirrors = [\"{}\"]\n",
            upstream_ref.split('/').next().unwrap(),
            cache.addr
        ),
    )
    .unwrap();
    let out = m.ok(&["pull", &upstream_ref]);
    assert_eq!(pulled_digest(&out), second);
    assert_eq!(m.ok(&["run", "--rm", &upstream_ref, "cat", "/v2"]), "v2\n");
    // Something never cached cannot be had offline: a clear error.
    let o = m.run(&["pull", &format!("{}/lib/other:1", cache.addr)]);
    assert_eq!(code(&o), 1);
    drop(cache);
    for x in [&b, &c, &d, &e, &m] {
        assert_census_clean(x);
    }
}

/// A P-256 key pair made with openssl: (PKCS#8 private PEM, public PEM).
fn p256_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let o = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (key, public)
}

/// An external token server (docker's token auth): a second `berth
/// registry serve` issues the tokens with a key on disk; the registry
/// keeps no users and verifies them with its public key, issuer and
/// service. berth logs in (at the registry, sent to the issuer), pushes
/// and pulls; a registry expecting another issuer or key refuses the
/// same tokens. (Expired and not-yet-valid tokens: `auth.rs`'s
/// `tokens_of_an_external_issuer_are_verified_with_its_public_key`.)
#[test]
fn tokens_of_an_external_token_server_are_verified() {
    let b = Berth::new();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let (pw, _) = users(dir.path());
    let (key, public) = p256_pair(dir.path(), "issuer");
    let (_, other) = p256_pair(dir.path(), "other");
    let issuer = Server::start(
        &b,
        &dir.path().join("issuer"),
        &[
            "--htpasswd",
            pw.to_str().unwrap(),
            "--token-auth",
            "--token-service",
            "reg-b",
            "--token-issuer",
            "issuer-a",
            "--token-signing-key",
            key.to_str().unwrap(),
        ],
    );
    let realm = format!("http://{}/token", issuer.addr);
    let registry = |root: &str, key: &Path, iss: &str| {
        Server::start(
            &b,
            &dir.path().join(root),
            &[
                "--token-realm",
                &realm,
                "--token-service",
                "reg-b",
                "--token-issuer",
                iss,
                "--token-key",
                key.to_str().unwrap(),
            ],
        )
    };
    let s = registry("registry", &public, "issuer-a");
    let r = format!("{}/team/app:1", s.addr);
    b.ok(&["tag", IMAGE, &r]);
    let o = b.run(&["push", &r]);
    assert_eq!(code(&o), 1, "a push without login: {}", stderr(&o));
    let o = login(&b, &s.addr, "alice", "rabbit");
    assert_eq!(code(&o), 1, "a wrong password logged in: {}", stderr(&o));
    let o = login(&b, &s.addr, "alice", "wonderland");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    b.ok(&["push", &r]);
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("\"user\":\"alice\"") && l.contains("\"method\":\"PUT\"")),
        "{:?}",
        s.log()
    );
    assert!(
        issuer.log().iter().any(|l| l.contains("/token")),
        "the tokens came from the issuer: {:?}",
        issuer.log()
    );
    b.ok(&["rmi", &r]);
    b.ok(&["pull", &r]);
    // The registry has no /token of its own.
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/token?service=reg-b", s.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
    // Registries expecting another issuer, or another key, refuse the
    // issuer's tokens. (Login itself succeeds: it asks the issuer, which
    // takes alice's password, as docker login does.)
    for (root, key, iss) in [
        ("wrong-iss", &public, "issuer-z"),
        ("wrong-key", &other, "issuer-a"),
    ] {
        let s2 = registry(root, key, iss);
        let o = login(&b, &s2.addr, "alice", "wonderland");
        assert_eq!(code(&o), 0, "{root}: {}", stderr(&o));
        let r2 = format!("{}/team/app:1", s2.addr);
        b.ok(&["tag", IMAGE, &r2]);
        let o = b.run(&["push", &r2]);
        assert_eq!(code(&o), 1, "{root}: {}", stderr(&o));
        // Why, as the registry says it to a client holding the token.
        let (token, _) = curl(&[
            "-s",
            "-u",
            "alice:wonderland",
            &format!("{realm}?service=reg-b&scope=repository:team/app:pull"),
        ]);
        let token: serde_json::Value = serde_json::from_str(&token).unwrap();
        let (body, _) = curl(&[
            "-s",
            "-H",
            &format!("Authorization: Bearer {}", token["token"].as_str().unwrap()),
            &format!("http://{}/v2/team/app/tags/list", s2.addr),
        ]);
        let why = if root == "wrong-iss" {
            "issued by \\\"issuer-a\\\""
        } else {
            "bad signature"
        };
        assert!(body.contains(why), "{root}: {body}");
        assert!(
            !s2.log().iter().any(|l| l.contains("\"status\":201")),
            "{root}: something was stored: {:?}",
            s2.log()
        );
        b.ok(&["rmi", &r2]);
    }
    // What does not fit is refused at start, naming the flag.
    let (c, e) = Server::refuse(
        &b,
        &dir.path().join("bad"),
        &[
            "--token-realm",
            &realm,
            "--token-service",
            "reg-b",
            "--token-issuer",
            "issuer-a",
            "--token-key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(c, 125, "{e}");
    assert!(e.contains("--token-key") && e.contains("public key"), "{e}");
    drop(s);
    drop(issuer);
    assert_census_clean(&b);
}
