//! The image policy (`policy.toml` in the config dir) against a `berth
//! registry serve` on 127.0.0.1: an unsigned image refused by `pull`,
//! `run`, `create` and `build`'s FROM with exit 125 and a message naming
//! the rule and the file; a signed one accepted, and run later from the
//! store by the signature pull kept; `--disable-policy` for one command,
//! logged in `berth events`; `max_severity` with no database and with a
//! finding above it; `require_sbom` with and without a signed SBOM
//! attestation.
mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

/// A `berth registry serve` child on a port it picked.
fn config(b: &Berth) -> PathBuf {
    b.path().join("config")
}

fn with_password(b: &Berth, args: &[&str]) -> Output {
    b.cmd()
        .args(args)
        .env("BERTH_PASSWORD", "pw")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A key pair in the config dir: `keys/<name>.key`, `keys/<name>.pub`.
fn keypair(b: &Berth, name: &str) -> PathBuf {
    let dir = config(b).join("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = dir.join(name);
    let o = with_password(
        b,
        &[
            "key",
            "generate",
            "--output-key-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    prefix.with_extension("key")
}

/// Import the busybox rootfs (plus `extra`) as `name` into the
/// publisher's store `p` and push it (the berth under test pulls it).
fn publish(p: &Berth, name: &str, extra: &[(&str, u32, &[u8])]) {
    let o = p.run_stdin(
        &["import", "-c", "CMD [\"sh\"]", "-", name],
        &busybox_rootfs_tar_with(extra),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    p.ok(&["push", name]);
}

fn policy(b: &Berth, text: &str) {
    std::fs::write(config(b).join("policy.toml"), text).unwrap();
}

fn refused(o: &Output, rule: &str, b: &Berth) -> String {
    let e = stderr(o);
    assert_eq!(code(o), 125, "{e}");
    assert!(e.contains(&format!("rule [\"{rule}\"]")), "{e}");
    assert!(
        e.contains(&config(b).join("policy.toml").display().to_string()),
        "{e}"
    );
    e
}

fn has_image(b: &Berth, name: &str) -> bool {
    b.run(&["image", "inspect", name]).status.success()
}

#[test]
fn signed_by_refuses_unsigned_images_everywhere_and_disable_policy_is_logged() {
    let b = Berth::new();
    let publisher = Berth::empty();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let signed = format!("{a}/app:signed");
    let unsigned = format!("{a}/app:unsigned");
    publish(&publisher, &signed, &[]);
    publish(&publisher, &unsigned, &[("etc/u", 0o644, b"u")]);
    let key = keypair(&b, "team");
    let o = with_password(&b, &["sign", "--key", key.to_str().unwrap(), &signed]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scope = format!("{a}/app");
    policy(
        &b,
        &format!("[\"{scope}\"]\nsigned_by = [\"keys/team.pub\"]\n"),
    );

    // pull: the unsigned one is refused before anything is downloaded.
    let o = b.run(&["pull", &unsigned]);
    let e = refused(&o, &scope, &b);
    assert!(e.contains("must be signed by one of"), "{e}");
    assert!(e.contains("--disable-policy"), "{e}");
    assert!(!has_image(&b, &unsigned));
    // run of a missing unsigned image: its pull is refused.
    let o = b.run(&["run", "--rm", &unsigned, "true"]);
    refused(&o, &scope, &b);
    assert!(!has_image(&b, &unsigned));

    // The signed one pulls, and runs later from the store (the kept
    // signature is verified again, offline).
    b.ok(&["pull", &signed]);
    assert_eq!(b.ok(&["run", "--rm", &signed, "echo", "ok"]), "ok\n");

    // --disable-policy: one pull, logged as an event.
    let o = b.run(&["pull", "--disable-policy", &unsigned]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `--until` counts whole seconds and drops what came later in that
    // second (as dockerd): the next second holds everything so far.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--format",
        "{{json .}}",
    ]);
    let disabled: Vec<Value> = ev
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["Type"] == "policy" && v["Action"] == "disable")
        .collect();
    assert_eq!(disabled.len(), 1, "{ev}");
    assert_eq!(disabled[0]["Actor"]["Attributes"]["command"], "pull");
    assert_eq!(
        disabled[0]["Actor"]["Attributes"]["image"],
        unsigned.as_str()
    );

    // The local unsigned image: create, run and build's FROM refuse it.
    let o = b.run(&["create", &unsigned]);
    let e = refused(&o, &scope, &b);
    assert!(e.contains("berth pull"), "{e}");
    let o = b.run(&["run", "--rm", &unsigned, "true"]);
    refused(&o, &scope, &b);
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {unsigned}\nRUN true\n"),
    )
    .unwrap();
    let o = b.run(&["build", "-t", "derived:1", ctx.to_str().unwrap()]);
    refused(&o, &scope, &b);
    assert!(!has_image(&b, "derived:1"));
    // ... unless disabled for that one command.
    assert_eq!(
        b.ok(&["run", "--rm", "--disable-policy", &unsigned, "echo", "ok"]),
        "ok\n"
    );
    let o = b.run(&[
        "build",
        "--disable-policy",
        "-t",
        "derived:1",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A signed base builds.
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {signed}\nRUN true\n")).unwrap();
    let o = b.run(&["build", "-t", "derived:2", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The key changed: what was kept no longer verifies.
    std::fs::remove_file(config(&b).join("keys/team.pub")).unwrap();
    std::fs::remove_file(config(&b).join("keys/team.key")).unwrap();
    keypair(&b, "team");
    let o = b.run(&["create", &signed]);
    let e = refused(&o, &scope, &b);
    assert!(e.contains("no signature of"), "{e}");

    // Other repositories have no rule.
    b.ok(&["run", "--rm", IMAGE, "true"]);
    assert_census_clean(&b);
    assert_census_clean(&publisher);
}

#[test]
fn max_severity_needs_the_database_and_refuses_findings_above_it() {
    let b = Berth::new();
    let publisher = Berth::empty();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let vulnerable = format!("{a}/py:1");
    let metadata = b"Metadata-Version: 2.1\nName: leaky\nVersion: 1.0\n";
    publish(
        &publisher,
        &vulnerable,
        &[(
            "usr/lib/python3/dist-packages/leaky-1.0.dist-info/METADATA",
            0o644,
            metadata,
        )],
    );
    policy(&b, "[\"*\"]\nmax_severity = \"HIGH\"\n");
    // No database: refused, naming the rule.
    let o = b.run(&["run", "--rm", IMAGE, "true"]);
    let e = refused(&o, "*", &b);
    assert!(e.contains("max_severity"), "{e}");
    assert!(e.contains("berth scan db"), "{e}");

    let now = chrono_now();
    let rec = json!({
        "schema_version": "1.6.0", "id": "PYSEC-TEST-1", "modified": now,
        "summary": "leaky leaks",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "leaky"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    });
    let f = b.path().join("osv.json");
    std::fs::write(&f, rec.to_string()).unwrap();
    b.ok(&["scan", "db", "import", f.to_str().unwrap()]);

    // The clean image runs; the vulnerable one is refused at pull and left
    // out of the store.
    b.ok(&["run", "--rm", IMAGE, "true"]);
    let o = b.run(&["pull", &vulnerable]);
    let e = refused(&o, "*", &b);
    assert!(e.contains("CRITICAL PYSEC-TEST-1"), "{e}");
    assert!(!has_image(&b, &vulnerable));
    // Allowed by a rule that tolerates CRITICAL.
    policy(&b, "[\"*\"]\nmax_severity = \"CRITICAL\"\n");
    b.ok(&["pull", &vulnerable]);
    policy(&b, "[\"*\"]\nmax_severity = \"MEDIUM\"\n");
    let o = b.run(&["create", &vulnerable]);
    refused(&o, "*", &b);
    assert_census_clean(&b);
    assert_census_clean(&publisher);
}

#[test]
fn require_sbom_needs_a_signed_sbom_attestation() {
    let b = Berth::new();
    let publisher = Berth::empty();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();
    let with = format!("{a}/s/app:with");
    let without = format!("{a}/s/app:without");
    publish(&publisher, &with, &[]);
    publish(&publisher, &without, &[("etc/w", 0o644, b"w")]);
    let key = keypair(&b, "k");
    let k = key.to_str().unwrap();
    for img in [&with, &without] {
        let o = with_password(&b, &["sign", "--key", k, img]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let sbom = b.path().join("sbom.json");
    std::fs::write(
        &sbom,
        r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","packages":[]}"#,
    )
    .unwrap();
    let o = with_password(
        &b,
        &[
            "attest",
            "--key",
            k,
            "--type",
            "spdxjson",
            "--predicate",
            sbom.to_str().unwrap(),
            &with,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    policy(
        &b,
        &format!("[\"{a}/s\"]\nsigned_by = [\"keys/k.pub\"]\nrequire_sbom = true\n"),
    );
    let o = b.run(&["pull", &without]);
    let e = refused(&o, &format!("{a}/s"), &b);
    assert!(e.contains("SBOM attestation"), "{e}");
    assert!(e.contains("berth attest"), "{e}");
    b.ok(&["pull", &with]);
    assert_eq!(b.ok(&["run", "--rm", &with, "echo", "ok"]), "ok\n");
    assert_census_clean(&b);
    assert_census_clean(&publisher);
}

fn chrono_now() -> String {
    let o = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    stdout(&o).trim().to_string()
}
