//! `berth registry serve` with ORAS (the PyPI `oras` client, installed by
//! scripts/deps into /opt/berth-tests/oras): artifacts pushed and pulled
//! back, a referrer pushed with a `subject`, found through the referrers
//! API (with its `artifactType` filter) and the tag listing.
mod common;

use common::LocalRegistry;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ORAS_PYTHON: &str = "/opt/berth-tests/oras/bin/python";

/// A `berth registry serve` child on a port it picked.
/// What the ORAS script does, step by step; it prints one JSON document of
/// what it saw.
const SCRIPT: &str = r#"
import json, os, sys, hashlib
import oras.client, oras.oci, oras.provider

addr, work = sys.argv[1], sys.argv[2]
os.chdir(work)
client = oras.client.OrasClient(hostname=addr, insecure=True)
out = {}

# An artifact of two files, each with its media type.
with open("doc.txt", "w") as f:
    f.write("hello from oras\n")
with open("data.json", "w") as f:
    f.write('{"k": 1}\n')
r = client.push(target=f"{addr}/art/doc:v1",
                files=["doc.txt:text/plain", "data.json:application/json"],
                manifest_annotations={"org.example.note": "first"})
out["push_status"] = r.status_code
r = client.push(target=f"{addr}/art/doc:v2", files=["doc.txt:text/plain"])
out["tags"] = sorted(client.get_tags(f"{addr}/art/doc"))

# Pulled back into a fresh directory: the same bytes.
os.makedirs("pulled")
files = client.pull(target=f"{addr}/art/doc:v1", outdir="pulled")
out["pulled"] = sorted(os.path.relpath(p, "pulled") for p in files)
out["pulled_doc"] = open("pulled/doc.txt").read()

# The subject: v1's manifest, by its descriptor.
raw = client.do_request(f"http://{addr}/v2/art/doc/manifests/v1", "GET",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
subject = oras.oci.Subject(mediaType="application/vnd.oci.image.manifest.v1+json",
                           digest="sha256:" + hashlib.sha256(raw.content).hexdigest(),
                           size=len(raw.content))
out["subject_digest"] = subject.digest

# A referrer: a signature-like artifact whose config names its type.
with open("sig.txt", "w") as f:
    f.write("signed\n")
with open("config.json", "w") as f:
    f.write("{}")
r = client.push(target=f"{addr}/art/doc:sig",
                files=["sig.txt:application/vnd.example.signature"],
                manifest_config="config.json:application/vnd.example.sig.config",
                subject=subject)
out["referrer_push_status"] = r.status_code
out["oci_subject_header"] = r.headers.get("OCI-Subject")

def referrers(query=""):
    r = client.do_request(f"http://{addr}/v2/art/doc/referrers/{subject.digest}{query}", "GET")
    return r.status_code, r.headers.get("Content-Type"), r.headers.get("OCI-Filters-Applied"), r.json()

s, ct, _, idx = referrers()
out["referrers_status"] = s
out["referrers_type"] = ct
out["referrers"] = [(m["artifactType"], m["mediaType"]) for m in idx["manifests"]]
_, _, applied, idx = referrers("?artifactType=application/vnd.example.sig.config")
out["filtered"] = len(idx["manifests"])
out["filters_applied"] = applied
_, _, _, idx = referrers("?artifactType=application/vnd.other")
out["filtered_other"] = len(idx["manifests"])
print(json.dumps(out))
"#;

#[test]
#[ignore = "root: needs the oras venv scripts/deps installs"]
fn oras_pushes_pulls_and_finds_referrers() {
    assert!(
        Path::new(ORAS_PYTHON).exists(),
        "{ORAS_PYTHON} missing: run scripts/deps"
    );
    let tmp = tempfile::tempdir().unwrap();
    let server = LocalRegistry::start(tmp.path());
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let o = Command::new(ORAS_PYTHON)
        .args(["-c", SCRIPT, &server.addr])
        .arg(&work)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "oras: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["push_status"], 201, "{v}");
    assert_eq!(v["tags"], serde_json::json!(["v1", "v2"]), "{v}");
    assert_eq!(
        v["pulled"],
        serde_json::json!(["data.json", "doc.txt"]),
        "{v}"
    );
    assert_eq!(v["pulled_doc"], "hello from oras\n", "{v}");
    assert_eq!(v["referrer_push_status"], 201, "{v}");
    assert_eq!(v["oci_subject_header"], v["subject_digest"], "{v}");
    assert_eq!(v["referrers_status"], 200, "{v}");
    assert_eq!(
        v["referrers_type"], "application/vnd.oci.image.index.v1+json",
        "{v}"
    );
    assert_eq!(
        v["referrers"],
        serde_json::json!([[
            "application/vnd.example.sig.config",
            "application/vnd.oci.image.manifest.v1+json"
        ]]),
        "{v}"
    );
    assert_eq!(v["filtered"], 1, "{v}");
    assert_eq!(v["filters_applied"], "artifactType", "{v}");
    assert_eq!(v["filtered_other"], 0, "{v}");
}
