//! pull / push / login against Debian's docker-registry (distribution 2.8)
//! and an in-process fake, all on 127.0.0.1.
mod common;
#[path = "../../registry/tests/support/fake.rs"]
mod fake;
#[path = "support/registry.rs"]
mod support_registry;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fake::{data_layers, manifests_for, serve_image, sha, Fake, Resp, TestImage};
use support_registry::make_certs;

/// A docker-registry process on a free loopback port.
struct DockerRegistry {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl DockerRegistry {
    fn start(auth: Option<(&str, &str)>) -> DockerRegistry {
        Self::start_with(auth, false)
    }

    /// With `tls`, the registry serves HTTPS with a certificate signed by
    /// a fresh CA, whose certificate is `ca.crt` in the returned dir.
    fn start_with(auth: Option<(&str, &str)>, tls: bool) -> DockerRegistry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "docker-registry is needed: apt-get install docker-registry (scripts/deps does)"
        );
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((u, p)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("htpasswd (apt-get install apache2-utils)");
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        if tls {
            make_certs(dir.path());
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        DockerRegistry { child, addr, dir }
    }
}

impl Drop for DockerRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// busybox plus `extra` data layers, served by a fake as `ns/src:1`.
fn runnable_image(extra: usize, arch: &str) -> TestImage {
    let mut tars = vec![busybox_rootfs_tar()];
    tars.extend(data_layers(extra, 300_000, arch));
    TestImage::from_tars(tars, arch)
}

fn serve(img: &TestImage) -> Fake {
    Fake::start(serve_image("ns/src", manifests_for(img, "1"), img.blobs()))
}

fn login(b: &Berth, reg: &str, user: &str, pass: &str) -> std::process::Output {
    b.run_stdin(
        &["login", "-u", user, "--password-stdin", reg],
        format!("{pass}\n").as_bytes(),
    )
}

#[test]
fn push_pull_round_trip_with_basic_auth_mount_and_chunks() {
    let reg = DockerRegistry::start(Some(("alice", "wonder")));
    let img = runnable_image(3, "amd64");
    let src = serve(&img);
    let b = Berth::empty();
    let srcref = format!("{}/ns/src:1", src.addr);
    let out = b.ok(&["pull", &srcref]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Digest: {}", sha(&img.manifest))),
        "{out}"
    );
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    let dst = format!("{}/team/app:v1", reg.addr);
    b.ok(&["tag", &srcref, &dst]);

    // No credentials: a clear error, exit 1.
    let o = b.run(&["push", &dst]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("berth login"), "{}", stderr(&o));
    let o = login(&b, &reg.addr, "alice", "wrong");
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("incorrect username or password"),
        "{}",
        stderr(&o)
    );
    let o = login(&b, &reg.addr, "alice", "wonder");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded\n");
    let saved = std::fs::read_to_string(b.path().join("config/config.json")).unwrap();
    assert!(
        saved.contains(&reg.addr) && saved.contains("\"auth\""),
        "{saved}"
    );

    // Push: the pulled blobs and manifest as they were (same digest).
    let out = b.ok(&["push", &dst]);
    assert!(out.contains("The push refers to repository"), "{out}");
    assert!(out.contains("Pushed"), "{out}");
    assert!(
        out.contains(&format!("v1: digest: {} size:", sha(&img.manifest))),
        "{out}"
    );
    let out = b.ok(&["push", &dst]);
    assert!(out.contains("Layer already exists"), "{out}");
    // Same image to another repository: blobs mounted, not uploaded.
    let other = format!("{}/team/copy:v1", reg.addr);
    b.ok(&["tag", &dst, &other]);
    let out = b.ok(&["push", &other]);
    assert!(out.contains("Mounted from team/app"), "{out}");
    // An imported image (stored uncompressed): compressed once, chunked.
    let out = b.run_stdin(&["import", "-", "local:1"], &busybox_rootfs_tar());
    assert!(out.status.success());
    let chunked = format!("{}/team/chunked:1", reg.addr);
    b.ok(&["tag", "local:1", &chunked]);
    let out = b.ok(&["push", "--chunk-size", "200000", &chunked]);
    assert!(out.contains("Pushed"), "{out}");

    // A fresh store pulls everything back and runs it.
    let c = Berth::empty();
    std::fs::create_dir_all(c.path().join("config")).unwrap();
    std::fs::copy(
        b.path().join("config/config.json"),
        c.path().join("config/config.json"),
    )
    .unwrap();
    let out = c.ok(&["pull", &dst]);
    assert!(
        out.contains(&format!("Digest: {}", sha(&img.manifest))),
        "{out}"
    );
    let files = c.ok(&[
        "run",
        "--rm",
        &dst,
        "sh",
        "-c",
        "ls /layer*; wc -c /layer1-amd64",
    ]);
    assert!(
        files.contains("/layer0-amd64") && files.contains("/layer2-amd64"),
        "{files}"
    );
    assert!(files.contains("300000 /layer1-amd64"), "{files}");
    c.ok(&["pull", &chunked]);
    assert_eq!(
        c.ok(&["run", "--rm", &chunked, "echo", "chunked ok"]),
        "chunked ok\n"
    );
    let digests = c.ok(&["images", "--digests"]);
    assert!(digests.contains(&sha(&img.manifest)), "{digests}");
    let rd = c.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &dst,
    ]);
    assert!(
        rd.contains(&format!("team/app@{}", sha(&img.manifest))),
        "{rd}"
    );

    // Logout forgets; pulls then fail with a clear message.
    assert_eq!(
        c.ok(&["logout", &reg.addr]),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    assert_eq!(
        c.ok(&["logout", &reg.addr]),
        format!("Not logged in to {}\n", reg.addr)
    );
    c.ok(&["rmi", &dst]);
    let o = c.run(&["pull", &dst]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));
}

fn curl_put(url: &str, content_type: &str, body: &[u8]) {
    let mut child = Command::new("curl")
        .args(["-sf", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .args(["--data-binary", "@-", url])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    assert!(child.wait().unwrap().success(), "PUT {url}");
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let reg = DockerRegistry::start(None);
    let b = Berth::empty();
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let img = runnable_image(1, arch);
        let src = serve(&img);
        let srcref = format!("{}/ns/src:1", src.addr);
        b.ok(&["pull", &srcref]);
        let per = format!("{}/multi/app:{arch}", reg.addr);
        b.ok(&["tag", &srcref, &per]);
        b.ok(&["push", &per]);
        let mut platform = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            platform["variant"] = v.into();
        }
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&img.manifest), "size": img.manifest.len(),
            "platform": platform,
        }));
        ids.push(sha(&img.config));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    curl_put(
        &format!("http://{}/v2/multi/app/manifests/latest", reg.addr),
        "application/vnd.oci.image.index.v1+json",
        &index,
    );
    let r = format!("{}/multi/app", reg.addr);
    for (platform, id) in [(None, &ids[0]), (Some("linux/arm64"), &ids[1])] {
        let c = Berth::empty();
        let mut args = vec!["pull"];
        if let Some(p) = platform {
            args.extend(["--platform", p]);
        }
        args.push(&r);
        let out = c.ok(&args);
        assert!(out.contains(&format!("Digest: {}", sha(&index))), "{out}");
        let got = c.ok(&["image", "inspect", "--format", "{{.Id}}", &r]);
        assert_eq!(got.trim(), id.as_str(), "{platform:?}");
    }
    let c = Berth::empty();
    let o = c.run(&["pull", "--platform", "linux/s390x", &r]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no matching manifest for linux/s390x"),
        "{}",
        stderr(&o)
    );
    let o = c.run(&["pull", "--platform", "linux", &r]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("os/arch"), "{}", stderr(&o));
    assert_eq!(c.ok(&["images", "-q"]), "");
}

#[test]
fn kill_9_mid_layer_then_pull_resumes_with_range() {
    let img = runnable_image(1, "amd64");
    let big = sha(&img.layers[1]);
    let size = img.layers[1].len();
    let blobs = img.blobs();
    let inner = serve_image("ns/src", manifests_for(&img, "1"), blobs.clone());
    let bb = big.clone();
    let f = Fake::start(move |req| {
        if req.path.ends_with(&bb) {
            return Resp::Stall {
                status: 200,
                headers: vec![],
                body: blobs[&bb].clone(),
                keep: size / 2,
            };
        }
        inner(req)
    });
    let b = Berth::empty();
    let r = format!("{}/ns/src:1", f.addr);
    let mut child = b
        .cmd()
        .args(["pull", &r])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = b.path().join("root/downloads").join(&big[7..]);
    let start = Instant::now();
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < (size / 2) as u64 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no partial download"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let have = std::fs::metadata(&partial).unwrap().len();
    assert_eq!(b.ok(&["images", "-q"]), "", "a half pull is not an image");
    // The registry behaves now; the new pull asks only for the rest.
    f.set(serve_image("ns/src", manifests_for(&img, "1"), img.blobs()));
    let before = f.requests().len();
    let out = b.ok(&["pull", &r]);
    assert!(out.contains(&format!("Resuming from byte {have}")), "{out}");
    let gets: Vec<_> = f.requests()[before..]
        .iter()
        .filter(|q| q.path.ends_with(&big))
        .cloned()
        .collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(
        gets[0].header("range"),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(
        b.ok(&["run", "--rm", &r, "wc", "-c", "/layer0-amd64"]),
        "300000 /layer0-amd64\n"
    );
    assert!(!partial.exists());
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("/usr/bin/skopeo").args(args).output().unwrap()
}

#[test]
fn images_interoperate_with_skopeo() {
    assert!(
        Path::new("/usr/bin/skopeo").exists(),
        "skopeo is needed: apt-get install skopeo (scripts/deps does)"
    );
    let reg = DockerRegistry::start(None);
    let b = Berth::new();
    // berth pushes, skopeo reads it back and copies it to another repo.
    let ours = format!("{}/interop/ours:1", reg.addr);
    b.ok(&["tag", IMAGE, &ours]);
    b.ok(&["push", &ours]);
    let theirs = format!("{}/interop/theirs:1", reg.addr);
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s2",
        &format!("docker://{ours}"),
        &format!("docker://{theirs}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // skopeo wrote a Docker schema 2 manifest; berth pulls and runs it.
    let c = Berth::empty();
    c.ok(&["pull", &theirs]);
    assert_eq!(
        c.ok(&["run", "--rm", &theirs, "echo", "from skopeo"]),
        "from skopeo\n"
    );
    let o = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{ours}")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn run_pulls_a_missing_image_like_docker() {
    let img = runnable_image(1, "amd64");
    let f = serve(&img);
    let b = Berth::empty();
    let r = format!("{}/ns/src:1", f.addr);
    let o = b.run(&["run", "--pull", "never", "--rm", &r, "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("No such image: "), "{}", stderr(&o));
    let o = b.run(&["run", "--pull", "sometimes", "--rm", &r, "true"]);
    assert_eq!(code(&o), 125);
    let o = b.run(&["run", "--rm", &r, "echo", "pulled and ran"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled and ran\n");
    assert!(
        stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("Status: Downloaded newer image"),
        "{}",
        stderr(&o)
    );
    // Present now: no registry request at all.
    let before = f.requests().len();
    assert_eq!(b.ok(&["run", "--rm", &r, "true"]), "");
    assert_eq!(f.requests().len(), before);
    // A pull that fails is an engine error for run.
    let o = b.run(&["run", "--rm", &format!("{}/ns/missing:1", f.addr), "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("manifest unknown"), "{}", stderr(&o));
}

#[test]
fn tls_registries_need_their_ca_unless_insecure() {
    let reg = DockerRegistry::start_with(None, true);
    let b = Berth::new();
    let r = format!("{}/tls/app:1", reg.addr);
    b.ok(&["tag", IMAGE, &r]);
    // Loopback is insecure by default (as Docker): TLS without verification.
    b.ok(&["push", &r]);
    // Declared secure: the unknown CA is refused, with what to do.
    let cfg = b.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("registries.toml"),
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = false\n",
            reg.addr
        ),
    )
    .unwrap();
    let c = Berth::empty();
    std::fs::create_dir_all(c.path().join("config")).unwrap();
    std::fs::copy(
        cfg.join("registries.toml"),
        c.path().join("config/registries.toml"),
    )
    .unwrap();
    let o = c.run(&["pull", &r]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("TLS") && stderr(&o).contains(&format!("certs.d/{}", reg.addr)),
        "{}",
        stderr(&o)
    );
    assert_eq!(c.ok(&["images", "-q"]), "");
    // With the CA in certs.d/<host>/ it verifies and works.
    let certs = c.path().join("config/certs.d").join(&reg.addr);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(reg.dir.path().join("ca.crt"), certs.join("ca.crt")).unwrap();
    c.ok(&["pull", &r]);
    assert_eq!(c.ok(&["run", "--rm", &r, "echo", "tls ok"]), "tls ok\n");
}

#[test]
fn images_interoperate_with_podman() {
    let podman_bin = "/usr/bin/podman";
    assert!(
        Path::new(podman_bin).exists(),
        "podman is needed: apt-get install podman (scripts/deps does)"
    );
    let reg = DockerRegistry::start(None);
    let b = Berth::new();
    let proot = b.path().join("podman-root");
    let prun = b.path().join("podman-run");
    let podman = |args: &[&str]| {
        let out = Command::new(podman_bin)
            .args(["--root", proot.to_str().unwrap()])
            .args(["--runroot", prun.to_str().unwrap()])
            .args(["--storage-driver", "vfs"])
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
    // berth pushes (zstd-compressed), podman pulls and reads the image.
    let ours = format!("{}/interop/ours:zstd", reg.addr);
    b.ok(&["tag", IMAGE, &ours]);
    let out = b.ok(&["push", "--compression-format", "zstd", &ours]);
    assert!(
        out.contains("Compressing") && out.contains("Pushed"),
        "{out}"
    );
    podman(&["pull", "--tls-verify=false", &ours]);
    let id = podman(&["image", "inspect", "--format", "{{.Id}}", &ours]);
    let ours_id = b.ok(&["image", "inspect", "--format", "{{.Id}}", &ours]);
    assert_eq!(format!("sha256:{}", id.trim()), ours_id.trim());
    // The compressed layer is cached: a second repository compresses nothing.
    let again = format!("{}/interop/again:zstd", reg.addr);
    b.ok(&["tag", IMAGE, &again]);
    let out = b.ok(&["push", "--compression-format", "zstd", &again]);
    assert!(!out.contains("Compressing"), "{out}");
    // podman pushes its own copy; berth pulls and runs it.
    let theirs = format!("{}/interop/theirs:1", reg.addr);
    podman(&["tag", &ours, &theirs]);
    podman(&["push", "--tls-verify=false", &theirs]);
    let c = Berth::empty();
    c.ok(&["pull", &theirs]);
    assert_eq!(
        c.ok(&["run", "--rm", &theirs, "echo", "from podman"]),
        "from podman\n"
    );
}

/// A built image's layers have no blob in the store until a push makes
/// them (compressed) from the layers' files; another store pulls the same
/// image.
#[test]
fn a_built_image_pushes_and_pulls_back_the_same() {
    let reg = DockerRegistry::start(None);
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app.txt"), "built\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY app.txt /app.txt\nRUN cp /app.txt /copy.txt && mkdir /made\n"),
    )
    .unwrap();
    let r = format!("{}/built/app:1", reg.addr);
    b.ok(&["build", "-q", "-t", &r, ctx.to_str().unwrap()]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", &r]);
    b.ok(&["push", &r]);
    let c = Berth::empty();
    c.ok(&["pull", &r]);
    assert_eq!(c.ok(&["inspect", "-f", "{{.Id}}", &r]), id);
    assert_eq!(c.ok(&["run", "--rm", &r, "cat", "/copy.txt"]), "built\n");

    // The build pushes: `--push`, and `-o type=image,name=…,push=true`
    // with zstd layers.
    let r2 = format!("{}/built/app:2", reg.addr);
    b.ok(&["build", "--push", "-t", &r2, ctx.to_str().unwrap()]);
    let r3 = format!("{}/built/zstd:1", reg.addr);
    let o = format!("type=image,name={r3},push=true,compression=zstd");
    b.ok(&["build", "-o", &o, ctx.to_str().unwrap()]);
    let manifest = |repo_tag: &str| -> serde_json::Value {
        let (repo, tag) = repo_tag.split_once(':').unwrap();
        let out = std::process::Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg(format!("http://{}/v2/{repo}/manifests/{tag}", reg.addr))
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let types = |m: &serde_json::Value| -> Vec<String> {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(types(&manifest("built/app:2"))
        .iter()
        .all(|t| t.ends_with("+gzip")));
    assert!(types(&manifest("built/zstd:1"))
        .iter()
        .all(|t| t.ends_with("+zstd")));
    let d = Berth::empty();
    d.ok(&["pull", &r3]);
    assert_eq!(d.ok(&["run", "--rm", &r3, "cat", "/copy.txt"]), "built\n");
    // Nothing to push to.
    let out = b.run(&["build", "--push", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1);

    // `pull --all-tags`: both tags of the repository.
    let e = Berth::empty();
    let repo = format!("{}/built/app", reg.addr);
    let out = e.ok(&["pull", "-a", &repo]);
    assert!(
        out.contains(&format!("{repo}:1")) && out.contains(&format!("{repo}:2")),
        "{out}"
    );
    assert_eq!(e.ok(&["inspect", "-f", "{{.Id}}", &r]), id);
    e.ok(&["inspect", &r2]);
    assert_eq!(code(&e.run(&["pull", "-a", &r])), 1);

    // `push --all-tags` (issue 17 defect 9): every local tag of the
    // repository, and only those.
    let repo2 = format!("{}/every/tag", reg.addr);
    for t in ["a", "b"] {
        e.ok(&["tag", &r, &format!("{repo2}:{t}")]);
    }
    e.ok(&["tag", &r, &format!("{}/other/repo:c", reg.addr)]);
    let out = e.ok(&["push", "--all-tags", &repo2]);
    assert!(
        out.contains("a: digest: sha256:") && out.contains("b: digest: sha256:"),
        "{out}"
    );
    let tags = std::process::Command::new("curl")
        .arg("-sf")
        .arg(format!("http://{}/v2/every/tag/tags/list", reg.addr))
        .output()
        .unwrap();
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap();
    let mut tags: Vec<String> = serde_json::from_value(tags["tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    assert_eq!(code(&e.run(&["push", "-a", &format!("{repo2}:a")])), 1);
    assert_eq!(
        code(&e.run(&["push", "-a", &format!("{}/none/here", reg.addr)])),
        1
    );
}

/// A Docker credential helper named by `credsStore`: `login` stores the
/// password with it (the file keeps only an empty entry), pushes get it
/// from it, `logout` erases it.
#[test]
fn a_credential_helper_keeps_the_password() {
    use std::os::unix::fs::PermissionsExt;
    let reg = DockerRegistry::start(Some(("alice", "wonder")));
    let b = Berth::new();
    let bin = b.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store = b.path().join("helper-store");
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nd={}\nmkdir -p \"$d\"\ncase \"$1\" in\n store) cat > \"$d/data.json\" ;;\n get) read url; echo \"$url\" > \"$d/asked\"; if [ -f \"$d/data.json\" ]; then cat \"$d/data.json\"; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) rm -f \"$d/data.json\" ;;\nesac\n",
            store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = b.path().join("config/config.json");
    std::fs::write(&config, r#"{"credsStore": "berthtest"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str], input: &[u8]| {
        let mut cmd = b.cmd();
        cmd.env("PATH", &path).args(args);
        feed(cmd, input)
    };
    let r = format!("{}/helped/app:1", reg.addr);
    b.ok(&["tag", IMAGE, &r]);
    // Nothing stored yet: the push is refused (a login is needed).
    assert_eq!(code(&run(&["push", &r], b"")), 1);
    let o = run(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"wonder\n",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stored = std::fs::read_to_string(store.join("data.json")).unwrap();
    assert!(
        stored.contains("\"alice\"") && stored.contains("wonder"),
        "{stored}"
    );
    let file = std::fs::read_to_string(&config).unwrap();
    assert!(
        file.contains(&reg.addr) && !file.contains("\"auth\""),
        "{file}"
    );
    let o = run(&["push", &r], b"");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(store.join("asked")).unwrap().trim(),
        reg.addr
    );
    let o = run(&["logout", &reg.addr], b"");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!store.join("data.json").exists());
    assert_eq!(code(&run(&["push", &r], b"")), 1);
    // A helper that is not installed: said so, with what to do.
    std::fs::write(&config, r#"{"credsStore": "nosuchhelper"}"#).unwrap();
    let o = run(&["push", &r], b"");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("docker-credential-nosuchhelper") && stderr(&o).contains("install it"),
        "{}",
        stderr(&o)
    );
}

/// `--cache-to type=inline`: the pushed image carries its steps' cache;
/// another store building the same Dockerfile with `--cache-from REF`
/// reuses it (the RUN step does not run again).
#[test]
fn an_inline_cache_travels_with_the_image() {
    let reg = DockerRegistry::start(None);
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("app.txt"), "cached\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY app.txt /app.txt\nRUN echo \"ran-$((2+3))\" && cp /app.txt /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n"),
    )
    .unwrap();
    let r = format!("{}/inline/app:1", reg.addr);
    let out = b.run(&[
        "build",
        "--progress",
        "plain",
        "--cache-to",
        "type=inline",
        "--push",
        "-t",
        &r,
        ctx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("ran-5"), "{}", stderr(&out));
    let cfg: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", &r])).unwrap();
    assert!(cfg[0]["Id"].is_string());

    let other = Berth::new();
    let ctx2 = other.path().join("ctx");
    std::fs::create_dir_all(&ctx2).unwrap();
    for f in ["app.txt", "Dockerfile"] {
        std::fs::copy(ctx.join(f), ctx2.join(f)).unwrap();
    }
    let out = other.run(&[
        "build",
        "--progress",
        "plain",
        "--cache-from",
        &format!("type=registry,ref={r}"),
        "-t",
        "again:1",
        ctx2.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let progress = stderr(&out);
    assert!(!progress.contains("ran-5"), "the RUN ran again: {progress}");
    assert!(progress.matches("CACHED").count() >= 2, "{progress}");
    assert_eq!(other.ok(&["run", "--rm", "again:1"]), "cached\n");
    // Without it, the same build runs its steps.
    let third = Berth::new();
    std::fs::create_dir_all(third.path().join("ctx")).unwrap();
    for f in ["app.txt", "Dockerfile"] {
        std::fs::copy(ctx.join(f), third.path().join("ctx").join(f)).unwrap();
    }
    let out = third.run(&[
        "build",
        "--progress",
        "plain",
        third.path().join("ctx").to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("ran-5"), "{}", stderr(&out));
}
