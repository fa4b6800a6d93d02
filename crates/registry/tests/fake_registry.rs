//! The client against an in-process registry that misbehaves on purpose.
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use registry::{Config, Credential, Credentials, PullOptions, RegistryError};
use store::Store;
use support::fake::{
    self, blob_response, manifests_for, serve_image, sha, Fake, Req, Resp, TestImage,
};

struct Env {
    dir: tempfile::TempDir,
    store: Store,
    cfg: Config,
    creds: Credentials,
}

fn env() -> Env {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let store = Store::open(&dir.path().join("root")).unwrap();
    let cfg = Config::load(&dir.path().join("config")).unwrap();
    let creds = Credentials::only(&dir.path().join("config/config.json"));
    Env {
        dir,
        store,
        cfg,
        creds,
    }
}

impl Env {
    fn pull(&self, r: &str) -> Result<registry::PullOutcome, RegistryError> {
        registry::pull(
            &self.store,
            &self.cfg,
            &self.creds,
            &r.parse().unwrap(),
            &PullOptions::default(),
            &|_| {},
        )
    }

    fn write_config(&mut self, toml: &str) {
        let d = self.dir.path().join("config");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("registries.toml"), toml).unwrap();
        self.cfg = Config::load(&d).unwrap();
    }

    /// No image, blob, layer or work dir: the store is as it was.
    fn assert_untouched(&self) {
        assert!(self.store.list_images().unwrap().is_empty());
        let root = self.dir.path().join("root");
        for d in ["blobs/sha256", "layers", "tmp"] {
            let n = std::fs::read_dir(root.join(d)).unwrap().count();
            assert_eq!(n, 0, "{d} is not empty");
        }
    }
}

fn image_server(img: &TestImage, repo: &str) -> Fake {
    Fake::start(serve_image(repo, manifests_for(img, "1"), img.blobs()))
}

#[test]
fn pull_verifies_and_unpacks_every_layer() {
    let img = TestImage::new(3, 200_000, "amd64");
    let f = image_server(&img, "ns/app");
    let e = env();
    let out = e.pull(&format!("{}/ns/app:1", f.addr)).unwrap();
    assert_eq!(out.digest.to_string(), sha(&img.manifest));
    assert_eq!(out.id.to_string(), sha(&img.config));
    assert!(out.new);
    let rec = e
        .store
        .resolve_image(&format!("{}/ns/app:1", f.addr))
        .unwrap();
    assert_eq!(
        rec.repo_digests,
        [format!("{}/ns/app@{}", f.addr, out.digest)]
    );
    let dirs = e.store.layer_dirs(&rec.id).unwrap();
    assert_eq!(dirs.len(), 3);
    // A second pull fetches no blob at all.
    let before = f.requests().len();
    let again = e.pull(&format!("{}/ns/app:1", f.addr)).unwrap();
    assert!(!again.new);
    let blob_gets = f.requests()[before..]
        .iter()
        .filter(|r| r.path.contains("/blobs/") && !r.path.ends_with(&sha(&img.config)))
        .count();
    assert_eq!(blob_gets, 0);
    // Pull by digest: no tag added.
    let e2 = env();
    e2.pull(&format!("{}/ns/app@{}", f.addr, sha(&img.manifest)))
        .unwrap();
    assert!(e2.store.list_images().unwrap()[0].repo_tags.is_empty());
}

#[test]
fn bad_registries_leave_the_store_untouched() {
    let img = TestImage::new(2, 100_000, "amd64");
    let layer0 = sha(&img.layers[0]);
    type Case = (&'static str, Box<dyn Fn(&TestImage) -> Fake>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "wrong digest",
            Box::new(|img: &TestImage| {
                let mut blobs = img.blobs();
                let d = sha(&img.layers[0]);
                let b = blobs.get_mut(&d).unwrap();
                let n = b.len();
                b[n - 100] ^= 0xff;
                Fake::start(serve_image("ns/app", manifests_for(img, "1"), blobs))
            }),
            "corrupt",
        ),
        (
            "longer than declared",
            Box::new(|img: &TestImage| {
                let mut blobs = img.blobs();
                blobs
                    .get_mut(&sha(&img.layers[0]))
                    .unwrap()
                    .extend_from_slice(b"extra");
                Fake::start(serve_image("ns/app", manifests_for(img, "1"), blobs))
            }),
            "more than the declared",
        ),
        (
            "always truncated",
            Box::new(|img: &TestImage| {
                let blobs = img.blobs();
                let inner = serve_image("ns/app", manifests_for(img, "1"), blobs.clone());
                let d = sha(&img.layers[0]);
                Fake::start(move |req| {
                    if req.path.ends_with(&d) {
                        let b = blobs[&d].clone();
                        return Resp::Cut {
                            status: 200,
                            headers: vec![],
                            keep: 0,
                            body: b,
                        };
                    }
                    inner(req)
                })
            }),
            "failed after 5 retries",
        ),
        (
            "manifest over 4 MiB",
            Box::new(|img: &TestImage| {
                let mut m = manifests_for(img, "1");
                let mut big = img.manifest.clone();
                big.pop();
                big.extend_from_slice(br#","annotations":{"x":""#);
                big.extend(std::iter::repeat_n(b'a', 5 << 20));
                big.extend_from_slice(br#""}}"#);
                m.insert(
                    "1".into(),
                    ("application/vnd.oci.image.manifest.v1+json".into(), big),
                );
                Fake::start(serve_image("ns/app", m, img.blobs()))
            }),
            "larger than 4194304 bytes",
        ),
        (
            "malformed JSON",
            Box::new(|img: &TestImage| {
                let mut m = manifests_for(img, "1");
                m.insert(
                    "1".into(),
                    (
                        "application/vnd.oci.image.manifest.v1+json".into(),
                        b"{\"schemaVersion\": 2, \"layers\": [".to_vec(),
                    ),
                );
                Fake::start(serve_image("ns/app", m, img.blobs()))
            }),
            "not valid JSON",
        ),
        (
            "unknown media type",
            Box::new(|img: &TestImage| {
                let mut m = manifests_for(img, "1");
                m.insert(
                    "1".into(),
                    (
                        "application/vnd.example.thing+json".into(),
                        br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#
                            .to_vec(),
                    ),
                );
                Fake::start(serve_image("ns/app", m, img.blobs()))
            }),
            "unknown manifest media type",
        ),
        (
            "schema 1",
            Box::new(|img: &TestImage| {
                let mut m = manifests_for(img, "1");
                m.insert(
                    "1".into(),
                    (
                        "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
                        br#"{"schemaVersion":1,"name":"ns/app","fsLayers":[]}"#.to_vec(),
                    ),
                );
                Fake::start(serve_image("ns/app", m, img.blobs()))
            }),
            "schema 1",
        ),
        (
            "401 without a challenge",
            Box::new(|_: &TestImage| Fake::start(|_| Resp::status(401))),
            "without a usable WWW-Authenticate challenge",
        ),
        (
            "unknown tag",
            Box::new(|img: &TestImage| {
                Fake::start(serve_image("ns/app", manifests_for(img, "2"), img.blobs()))
            }),
            "manifest unknown",
        ),
        (
            "blob missing",
            Box::new(move |img: &TestImage| {
                let mut blobs = img.blobs();
                blobs.remove(&sha(&img.layers[1]));
                Fake::start(serve_image("ns/app", manifests_for(img, "1"), blobs))
            }),
            "blob unknown",
        ),
        (
            "layer not matching the config's diff-id",
            Box::new(|img: &TestImage| {
                let other = TestImage::new(2, 100_000, "arm64");
                let mut blobs = img.blobs();
                // The manifest points to other's layer 0 (valid digest and
                // size), the config still to ours.
                let mut man: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
                man["layers"][0]["digest"] = sha(&other.layers[0]).into();
                man["layers"][0]["size"] = other.layers[0].len().into();
                blobs.insert(sha(&other.layers[0]), other.layers[0].clone());
                let raw = serde_json::to_vec(&man).unwrap();
                let mut m = HashMap::new();
                m.insert(
                    "1".to_string(),
                    (
                        "application/vnd.oci.image.manifest.v1+json".to_string(),
                        raw,
                    ),
                );
                Fake::start(serve_image("ns/app", m, blobs))
            }),
            "diff-id",
        ),
    ];
    for (name, make, want) in cases {
        let f = make(&img);
        let e = env();
        let err = e
            .pull(&format!("{}/ns/app:1", f.addr))
            .expect_err(name)
            .to_string();
        assert!(err.contains(want), "{name}: {err}");
        e.assert_untouched();
        // A digest mismatch throws the partial download away.
        if name == "wrong digest" {
            let dl = e.dir.path().join("root/downloads").join(&layer0[7..]);
            assert!(!dl.exists(), "{name}: the bad partial download stayed");
        }
    }
}

#[test]
fn connection_refused_and_tls_failures_are_clear() {
    let e = env();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = e
        .pull(&format!("127.0.0.1:{port}/x:1"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot reach") && err.contains("refused"),
        "{err}"
    );
    e.assert_untouched();

    // A registry that must speak TLS but does not.
    let img = TestImage::new(1, 1000, "amd64");
    let f = image_server(&img, "ns/app");
    let mut e = env();
    e.write_config(&format!(
        "[[registry]]\nlocation = \"{}\"\ninsecure = false\n",
        f.addr
    ));
    let err = e
        .pull(&format!("{}/ns/app:1", f.addr))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS") && err.contains("certs.d"), "{err}");
    e.assert_untouched();
}

#[test]
fn bearer_token_flow_with_credentials() {
    let img = TestImage::new(3, 50_000, "amd64");
    let token_requests = Arc::new(AtomicUsize::new(0));
    let inner = serve_image("ns/app", manifests_for(&img, "1"), img.blobs());
    let f = Fake::start(|_| Resp::status(500));
    let realm = format!("http://{}/token", f.addr);
    let tr = token_requests.clone();
    f.set(move |req| {
        if req.path.starts_with("/token") {
            tr.fetch_add(1, Ordering::SeqCst);
            // alice:pw
            if req.header("authorization") != Some("Basic YWxpY2U6cHc=") {
                return Resp::status(401);
            }
            assert!(req.path.contains("service=fake"), "{}", req.path);
            return Resp::json(200, r#"{"token":"tok-123","expires_in":300}"#);
        }
        if req.header("authorization") != Some("Bearer tok-123") {
            return Resp::json(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).with_header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="{realm}",service="fake",scope="repository:ns/app:pull""#),
            );
        }
        inner(req)
    });
    let e = env();
    let r = format!("{}/ns/app:1", f.addr);
    let err = e.pull(&r).unwrap_err().to_string();
    assert!(
        err.contains("unauthorized") && err.contains("login"),
        "{err}"
    );
    e.assert_untouched();
    e.creds
        .save(
            &f.addr,
            &Credential {
                username: "alice".into(),
                password: "pw".into(),
            },
        )
        .unwrap();
    token_requests.store(0, Ordering::SeqCst);
    let e2 = Env {
        creds: Credentials::only(&e.dir.path().join("config/config.json")),
        ..env()
    };
    e2.pull(&r).unwrap();
    // One token for the one scope, reused by every request.
    assert_eq!(token_requests.load(Ordering::SeqCst), 1);
    // login checks credentials against the token server.
    let reg = registry::Registry::new(&e2.cfg, &e2.creds, &f.addr).unwrap();
    reg.login().unwrap();
    let bad = registry::Registry::new(&e2.cfg, &e2.creds, &f.addr)
        .unwrap()
        .with_credential(Some(Credential {
            username: "alice".into(),
            password: "nope".into(),
        }));
    assert!(bad
        .login()
        .unwrap_err()
        .to_string()
        .contains("incorrect username or password"));
}

#[test]
fn a_cut_connection_resumes_with_range_without_refetching() {
    let img = TestImage::new(2, 400_000, "amd64");
    let blobs = img.blobs();
    let d = sha(&img.layers[1]);
    let inner = serve_image("ns/app", manifests_for(&img, "1"), blobs.clone());
    let cut_done = Arc::new(AtomicUsize::new(0));
    let cd = cut_done.clone();
    let dd = d.clone();
    let f = Fake::start(move |req| {
        if req.path.ends_with(&dd) && cd.fetch_add(1, Ordering::SeqCst) == 0 {
            return Resp::Cut {
                status: 200,
                headers: vec![],
                body: blobs[&dd].clone(),
                keep: 150_000,
            };
        }
        inner(req)
    });
    let e = env();
    e.pull(&format!("{}/ns/app:1", f.addr)).unwrap();
    let gets: Vec<_> = f
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&d))
        .collect();
    assert_eq!(gets.len(), 2);
    assert_eq!(gets[0].header("range"), None);
    assert_eq!(gets[1].header("range"), Some("bytes=150000-"));
    // Every byte of the blob crossed the wire exactly once.
    assert_eq!(f.sent_for(&d), img.layers[1].len() as u64);
}

#[test]
fn blob_redirects_do_not_leak_credentials() {
    let img = TestImage::new(2, 50_000, "amd64");
    let blobs = img.blobs();
    let cdn = Fake::start({
        let blobs = blobs.clone();
        move |req| blob_response(req, blobs.get(req.path.trim_start_matches("/cdn/")))
    });
    let cdn_addr = cdn.addr.clone();
    let inner = serve_image("ns/app", manifests_for(&img, "1"), blobs);
    let f = Fake::start(move |req| {
        if req.header("authorization") != Some("Basic dTpw") {
            return Resp::status(401).with_header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        if let Some(d) = req.path.strip_prefix("/v2/ns/app/blobs/") {
            return Resp::status(307)
                .with_header("Location", &format!("http://{cdn_addr}/cdn/{d}"));
        }
        inner(req)
    });
    let e = env();
    e.creds
        .save(
            &f.addr,
            &Credential {
                username: "u".into(),
                password: "p".into(),
            },
        )
        .unwrap();
    e.pull(&format!("{}/ns/app:1", f.addr)).unwrap();
    let cdn_reqs = cdn.requests();
    assert_eq!(cdn_reqs.len(), 3, "config and two layers from the CDN");
    for r in cdn_reqs {
        assert_eq!(r.header("authorization"), None, "leaked to {}", r.path);
    }
}

#[test]
fn concurrent_pulls_of_one_image_share_the_downloads() {
    let img = TestImage::new(3, 300_000, "amd64");
    let f = image_server(&img, "ns/app");
    let e = env();
    let root = e.dir.path().join("root");
    let r = format!("{}/ns/app:1", f.addr);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let store = Store::open(&root).unwrap();
                registry::pull(
                    &store,
                    &e.cfg,
                    &e.creds,
                    &r.parse().unwrap(),
                    &PullOptions::default(),
                    &|_| {},
                )
                .unwrap();
            });
        }
    });
    for l in &img.layers {
        assert_eq!(f.sent_for(&sha(l)), l.len() as u64, "downloaded twice");
    }
    let rec = e.store.resolve_image(&r).unwrap();
    assert_eq!(e.store.layer_dirs(&rec.id).unwrap().len(), 3);
}

#[test]
fn mirrors_are_tried_first_and_fall_back() {
    let img = TestImage::new(1, 10_000, "amd64");
    let origin = image_server(&img, "ns/app");
    let mirror = Fake::start(serve_image(
        "cache/ns/app",
        manifests_for(&img, "1"),
        img.blobs(),
    ));
    let broken = Fake::start(|_| Resp::status(503));
    let mut e = env();
    e.write_config(&format!(
        "[[registry]]\nlocation = \"{}\"\nmirrors = [\"{}\", \"{}/cache\"]\n",
        origin.addr, broken.addr, mirror.addr
    ));
    e.pull(&format!("{}/ns/app:1", origin.addr)).unwrap();
    assert!(origin.requests().is_empty(), "the origin was contacted");
    assert!(!mirror.requests().is_empty());
    let _ = fake::sha(b"");
}

/// `idle_timeout = 1` in registries.toml.
fn impatient_env() -> Env {
    let mut e = env();
    e.write_config("idle_timeout = 1\n");
    e
}

/// Issue 20: a registry that goes quiet fails the pull within the idle
/// timeout (plus the retries of a layer), with what happened and what to
/// do, and leaves the store as it was: one that sends a byte every 3 s,
/// one that stops half way through a layer, one that never answers a
/// manifest request, a token server that never sends its token. A slow
/// registry that keeps sending is not cut.
#[test]
fn stalled_and_trickling_registries_fail_with_a_clear_error() {
    use std::time::Duration;
    let img = TestImage::new(1, 200_000, "amd64");
    let layer = sha(&img.layers[0]);
    type Mode = fn(&Req, &[u8]) -> Option<Resp>;
    let cases: Vec<(&str, Mode, &str)> = vec![
        (
            "a byte every 3 s",
            |req, blob| {
                req.path.contains("/blobs/").then(|| Resp::Trickle {
                    status: 200,
                    headers: vec![],
                    body: blob.to_vec(),
                    piece: 1,
                    every: Duration::from_secs(3),
                })
            },
            "registry 127.0.0.1",
        ),
        (
            "stops half way",
            |req, blob| {
                req.path.contains("/blobs/").then(|| Resp::Stall {
                    status: 200,
                    headers: vec![],
                    body: blob.to_vec(),
                    keep: blob.len() / 2,
                })
            },
            "registry 127.0.0.1",
        ),
        (
            "never answers",
            |req, _| {
                req.path.contains("/manifests/").then(|| {
                    std::thread::sleep(Duration::from_secs(20));
                    Resp::status(500)
                })
            },
            "registry 127.0.0.1",
        ),
        (
            "token server stalls",
            |req, _| {
                if req.path.starts_with("/token") {
                    return Some(Resp::Stall {
                        status: 200,
                        headers: vec![],
                        body: br#"{"token":"t"}"#.to_vec(),
                        keep: 0,
                    });
                }
                req.header("authorization").is_none().then(|| {
                    Resp::status(401).with_header(
                        "WWW-Authenticate",
                        &format!(
                            r#"Bearer realm="http://{}/token",service="fake""#,
                            req.header("host").unwrap_or("")
                        ),
                    )
                })
            },
            "token server 127.0.0.1",
        ),
    ];
    for (what, mode, peer) in cases {
        let blobs = img.blobs();
        let inner = serve_image("ns/app", manifests_for(&img, "1"), blobs.clone());
        let blob = blobs[&layer].clone();
        let layer = layer.clone();
        let layer = layer.clone();
        let f = Fake::start(move |req| {
            let b = if req.path.ends_with(&layer) {
                &blob[..]
            } else {
                &[][..]
            };
            match mode(req, b) {
                Some(r) if !b.is_empty() || !req.path.contains("/blobs/") => r,
                _ => inner(req),
            }
        });
        let e = impatient_env();
        let err = e
            .pull(&format!("{}/ns/app:1", f.addr))
            .expect_err(what)
            .to_string();
        assert!(
            err.contains(peer)
                && err.contains("sent nothing for 1 s")
                && err.contains("idle_timeout"),
            "{what}: {err}"
        );
        e.assert_untouched();
    }

    // Slow but steady: 20 kB every 200 ms, with a 2 s idle timeout.
    let blobs = img.blobs();
    let inner = serve_image("ns/app", manifests_for(&img, "1"), blobs.clone());
    let blob = blobs[&layer].clone();
    let l2 = layer.clone();
    let f = Fake::start(move |req| {
        if req.path.ends_with(&l2) && req.method == "GET" {
            return Resp::Trickle {
                status: 200,
                headers: vec![],
                body: blob.clone(),
                piece: 20_000,
                every: Duration::from_millis(200),
            };
        }
        inner(req)
    });
    let mut e = env();
    e.write_config("idle_timeout = 2\n");
    e.pull(&format!("{}/ns/app:1", f.addr)).unwrap();
}

/// Issue 20: a registry that stops reading a pushed blob fails the push
/// once it has taken nothing for the idle timeout (the kernel's
/// `TCP_USER_TIMEOUT`), instead of hanging.
#[test]
fn a_registry_that_stops_reading_an_upload_fails_the_push() {
    let e = impatient_env();
    // 24 MiB that do not compress: more than both sockets buffer.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "big", &data[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let f = Fake::start(|req| match req.method.as_str() {
        "HEAD" => Resp::status(404),
        "POST" => {
            Resp::status(202).with_header("Location", "/v2/ns/app/blobs/uploads/stall-upload")
        }
        _ if req.path == "/v2/" => Resp::status(200),
        _ => Resp::status(500),
    });
    let r: model::Reference = format!("{}/ns/app:1", f.addr).parse().unwrap();
    e.store
        .import(
            &tar[..],
            &store::ImportOptions {
                reference: Some(r.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    let err = registry::push(
        &e.store,
        &e.cfg,
        &e.creds,
        &r,
        // The layer first, alone (the config would fit in the buffers and
        // time out waiting for an answer instead).
        &registry::PushOptions {
            max_concurrent: Some(1),
            ..Default::default()
        },
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("took nothing for 1 s"), "{err}");
}
