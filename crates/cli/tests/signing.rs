//! `key generate`, `sign`, `verify`, `attest`, `verify-attestation`
//! against `berth registry serve` on 127.0.0.1, checked by other tools:
//! the raw signature by `openssl dgst -verify`, the `sha256-<hex>.sig`
//! manifest by `skopeo inspect --raw`, the referrer by ORAS (PyPI `oras`
//! in /opt/berth-tests/oras) through the referrers API; a key cosign
//! generated (its test vector) used to sign; a tampered image, a wrong
//! key and a missing signature refused with exit code 1.
mod common;
#[path = "support/http1.rs"]
mod http1;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::*;
use serde_json::Value;

const ORAS_PYTHON: &str = "/opt/berth-tests/oras/bin/python";

/// `pemsigstorekey` of cosign's pkg/cosign/keys_test.go (password "hello").
const COSIGN_VECTOR_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

/// A `berth registry serve` child on a port it picked.
/// GET from the registry, accepting OCI manifests and indexes.
fn registry_get(srv: &LocalRegistry, target: &str) -> http1::Response {
    let req = http1::Request::new("GET", target).header(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
    );
    http1::send(&srv.addr, &req).unwrap()
}

/// PUT an OCI manifest, asserted to be taken.
fn registry_put_manifest(srv: &LocalRegistry, repo: &str, reference: &str, raw: &[u8]) {
    let req = http1::Request::new("PUT", format!("/v2/{repo}/manifests/{reference}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(http1::Body::Sized(raw));
    let r = http1::send(&srv.addr, &req).unwrap();
    assert_eq!(r.status, 201, "{}", r.describe());
}

fn with_password(b: &Berth, pw: &str, args: &[&str]) -> Output {
    b.cmd()
        .args(args)
        .env("BERTH_PASSWORD", pw)
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn keypair(b: &Berth, name: &str) -> (PathBuf, PathBuf) {
    let prefix = b.path().join(name);
    let o = with_password(
        b,
        "s3cret",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// Push the busybox image (with `extra` files) to `addr/repo:tag`; its digest.
fn push_image(b: &Berth, addr: &str, repo_tag: &str, extra: &[(&str, u32, &[u8])]) -> String {
    let name = format!("{addr}/{repo_tag}");
    let o = b.run_stdin(&["import", "-", &name], &busybox_rootfs_tar_with(extra));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = b.ok(&["push", &name]);
    let d = out
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string();
    d
}

fn skopeo_raw(addr: &str, repo_tag: &str) -> Value {
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{addr}/{repo_tag}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn openssl_verifies(dir: &Path, public: &Path, payload: &[u8], der_sig: &[u8]) -> bool {
    let p = dir.join("openssl-payload");
    let s = dir.join("openssl-sig.der");
    std::fs::write(&p, payload).unwrap();
    std::fs::write(&s, der_sig).unwrap();
    let o = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&s)
        .arg(&p)
        .output()
        .unwrap();
    o.status.success() && stdout(&o).contains("Verified OK")
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[test]
fn key_generate_writes_a_cosign_key_pair_openssl_reads() {
    let b = Berth::empty();
    let (key, public) = keypair(&b, "k");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let o = Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("P-256"), "{}", stdout(&o));
    // Never overwritten.
    let o = with_password(
        &b,
        "",
        &[
            "key",
            "generate",
            "--output-key-prefix",
            b.path().join("k").to_str().unwrap(),
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    // No password and no terminal: told how to give one.
    let o = b
        .cmd()
        .args(["key", "generate", "--output-key-prefix"])
        .arg(b.path().join("n"))
        .env_remove("BERTH_PASSWORD")
        .env_remove("COSIGN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("BERTH_PASSWORD"), "{}", stderr(&o));
    assert!(!b.path().join("n.key").exists());
}

#[test]
fn sign_stores_as_cosign_and_as_a_referrer_and_verify_accepts_it() {
    let b = Berth::new();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let digest = push_image(&b, &a, "app:1", &[]);
    let hex = digest.trim_start_matches("sha256:");
    let (key, public) = keypair(&b, "k");
    let image = format!("{a}/app:1");
    let o = with_password(
        &b,
        "s3cret",
        &[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "-a",
            "team=web",
            &image,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("sha256-{hex}.sig")),
        "{}",
        stderr(&o)
    );

    // The .sig manifest as skopeo sees it.
    let m = skopeo_raw(&a, &format!("app:sha256-{hex}.sig"));
    assert_eq!(
        m["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{m}"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    let l = &layers[0];
    assert_eq!(
        l["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let sig = b64(l["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap());
    let payload = registry_get(
        &srv,
        &format!("/v2/app/blobs/{}", l["digest"].as_str().unwrap()),
    );
    assert_eq!(payload.status, 200);
    let claim: Value = serde_json::from_slice(&payload.body).unwrap();
    assert_eq!(
        claim["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        claim["critical"]["identity"]["docker-reference"],
        format!("{a}/app")
    );
    assert_eq!(
        claim["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(claim["optional"]["team"], "web");
    // openssl checks the raw signature over the payload with the .pub.
    assert!(openssl_verifies(b.path(), &public, &payload.body, &sig));
    assert!(!openssl_verifies(
        b.path(),
        &public,
        b"another payload",
        &sig
    ));

    // The referrer, listed by ORAS through the referrers API.
    let script = r#"
import json, sys
import oras.client
addr, repo, digest = sys.argv[1], sys.argv[2], sys.argv[3]
c = oras.client.OrasClient(hostname=addr, insecure=True)
r = c.do_request(f"http://{addr}/v2/{repo}/referrers/{digest}", "GET")
print(json.dumps({"status": r.status_code, "index": r.json()}))
"#;
    let o = Command::new(ORAS_PYTHON)
        .args(["-c", script, &a, "app", &digest])
        .output()
        .expect("the oras venv (scripts/deps) is missing");
    assert!(o.status.success(), "oras: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    let refs = v["index"]["manifests"].as_array().unwrap();
    let sig_ref = refs
        .iter()
        .find(|r| r["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json")
        .unwrap_or_else(|| panic!("no signature referrer: {v}"));
    let rm = registry_get(
        &srv,
        &format!("/v2/app/manifests/{}", sig_ref["digest"].as_str().unwrap()),
    );
    let rm: Value = serde_json::from_slice(&rm.body).unwrap();
    assert_eq!(rm["subject"]["digest"], digest.as_str(), "{rm}");
    assert_eq!(rm["layers"][0], *l, "{rm}");

    // verify: the claims on stdout, the checks on stderr, exit 0.
    let o = b.run(&["verify", "--key", public.to_str().unwrap(), &image]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("verified against the specified public key"),
        "{}",
        stderr(&o)
    );
    let claims: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(claims.as_array().unwrap().len(), 1, "{claims}");
    assert_eq!(
        claims[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    // Required annotations: present passes, absent is refused.
    let pk = public.to_str().unwrap();
    assert_eq!(
        code(&b.run(&["verify", "--key", pk, "-a", "team=web", &image])),
        0
    );
    let o = b.run(&["verify", "--key", pk, "-a", "team=db", &image]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    // A second key signs too: appended to the same .sig manifest.
    let (key2, public2) = keypair(&b, "k2");
    let o = with_password(
        &b,
        "s3cret",
        &["sign", "--key", key2.to_str().unwrap(), &image],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = skopeo_raw(&a, &format!("app:sha256-{hex}.sig"));
    assert_eq!(m["layers"].as_array().unwrap().len(), 2, "{m}");
    assert_eq!(m["layers"][0], *l, "the first signature was kept: {m}");
    assert_eq!(
        code(&b.run(&["verify", "--key", public2.to_str().unwrap(), &image])),
        0
    );
    assert_eq!(code(&b.run(&["verify", "--key", pk, &image])), 0);
    assert_census_clean(&b);
}

#[test]
fn a_wrong_key_a_missing_signature_and_a_tampered_image_are_refused() {
    let b = Berth::new();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let old = push_image(&b, &a, "app:1", &[]);
    let (key, public) = keypair(&b, "k");
    let (_, other_public) = keypair(&b, "other");
    let image = format!("{a}/app:1");
    let o = with_password(
        &b,
        "s3cret",
        &["sign", "--key", key.to_str().unwrap(), &image],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // A wrong key.
    let o = b.run(&["verify", "--key", other_public.to_str().unwrap(), &image]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("verifies with this key"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());

    // A wrong password for the private key.
    let o = with_password(
        &b,
        "nope",
        &["sign", "--key", key.to_str().unwrap(), &image],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("password does not decrypt"),
        "{}",
        stderr(&o)
    );

    // A missing signature.
    push_image(&b, &a, "unsigned:1", &[("etc/x", 0o644, b"x")]);
    let o = b.run(&[
        "verify",
        "--key",
        public.to_str().unwrap(),
        &format!("{a}/unsigned:1"),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no signatures found"), "{}", stderr(&o));
    assert!(stderr(&o).contains("berth sign --key"), "{}", stderr(&o));

    // The tag moved to another image: its digest has no signature.
    let new = push_image(&b, &a, "app:1", &[("etc/evil", 0o644, b"evil")]);
    assert_ne!(old, new);
    let o = b.run(&["verify", "--key", public.to_str().unwrap(), &image]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("no signatures found"), "{}", stderr(&o));
    // ... and the old signature copied next to it names the old digest.
    let sig = registry_get(
        &srv,
        &format!(
            "/v2/app/manifests/sha256-{}.sig",
            old.trim_start_matches("sha256:")
        ),
    );
    assert_eq!(sig.status, 200);
    registry_put_manifest(
        &srv,
        "app",
        &format!("sha256-{}.sig", new.trim_start_matches("sha256:")),
        &sig.body,
    );
    let o = b.run(&["verify", "--key", public.to_str().unwrap(), &image]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "the signature is for {old}, but the image is {new}"
        )),
        "{}",
        stderr(&o)
    );
    // The signed digest itself still verifies.
    assert_eq!(
        code(&b.run(&[
            "verify",
            "--key",
            public.to_str().unwrap(),
            &format!("{a}/app@{old}")
        ])),
        0
    );
    assert_census_clean(&b);
}

#[test]
fn a_key_cosign_generated_signs_with_its_password() {
    let b = Berth::new();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    push_image(&b, &a, "app:1", &[]);
    let key = b.path().join("cosign-vector.key");
    std::fs::write(&key, COSIGN_VECTOR_KEY).unwrap();
    let image = format!("{a}/app:1");
    let o = b
        .cmd()
        .args(["sign", "--key", key.to_str().unwrap(), &image])
        .env_remove("BERTH_PASSWORD")
        .env("COSIGN_PASSWORD", "hello")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b
        .cmd()
        .args(["sign", "--key", key.to_str().unwrap(), &image])
        .env("COSIGN_PASSWORD", "wrong")
        .env_remove("BERTH_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("password does not decrypt"),
        "{}",
        stderr(&o)
    );
    assert_census_clean(&b);
}

#[test]
fn attest_stores_a_dsse_envelope_as_cosign_and_verify_attestation_checks_it() {
    let b = Berth::new();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let digest = push_image(&b, &a, "app:1", &[]);
    let hex = digest.trim_start_matches("sha256:");
    let (key, public) = keypair(&b, "k");
    let (_, other_public) = keypair(&b, "other");
    let image = format!("{a}/app:1");
    let predicate = b.path().join("provenance.json");
    let pred = r#"{"builder":{"id":"https://example.com/berth"},"buildType":"https://example.com/t","materials":[]}"#;
    std::fs::write(&predicate, pred).unwrap();
    let o = with_password(
        &b,
        "s3cret",
        &[
            "attest",
            "--key",
            key.to_str().unwrap(),
            "--predicate",
            predicate.to_str().unwrap(),
            "--type",
            "slsaprovenance",
            &image,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let m = skopeo_raw(&a, &format!("app:sha256-{hex}.att"));
    let l = &m["layers"][0];
    assert_eq!(
        l["mediaType"], "application/vnd.dsse.envelope.v1+json",
        "{m}"
    );
    assert_eq!(
        l["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v0.2"
    );
    let env = registry_get(
        &srv,
        &format!("/v2/app/blobs/{}", l["digest"].as_str().unwrap()),
    );
    let env: Value = serde_json::from_slice(&env.body).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    let statement = b64(env["payload"].as_str().unwrap());
    let st: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(st["subject"][0]["digest"]["sha256"], hex);
    assert_eq!(
        st["predicate"],
        serde_json::from_str::<Value>(pred).unwrap()
    );
    // openssl checks the signature over DSSE's PAE.
    let mut pae = format!(
        "DSSEv1 28 application/vnd.in-toto+json {} ",
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);
    let sig = b64(env["signatures"][0]["sig"].as_str().unwrap());
    assert!(openssl_verifies(b.path(), &public, &pae, &sig));

    let pk = public.to_str().unwrap();
    let o = b.run(&[
        "verify-attestation",
        "--key",
        pk,
        "--type",
        "slsaprovenance",
        &image,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let line: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(line, env);
    // Another type: none; another key: refused; both exit 1.
    let o = b.run(&[
        "verify-attestation",
        "--key",
        pk,
        "--type",
        "cyclonedx",
        &image,
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no attestations of type https://cyclonedx.org/bom"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&[
        "verify-attestation",
        "--key",
        other_public.to_str().unwrap(),
        &image,
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    // A predicate that is not JSON for a JSON type: refused before pushing.
    std::fs::write(&predicate, "not json").unwrap();
    let o = with_password(
        &b,
        "s3cret",
        &[
            "attest",
            "--key",
            key.to_str().unwrap(),
            "--predicate",
            predicate.to_str().unwrap(),
            "--type",
            "spdxjson",
            &image,
        ],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
    assert_census_clean(&b);
}
