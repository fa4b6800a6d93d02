//! `build --sbom --provenance` (root): the SBOM and the SLSA provenance
//! attached to a built image as OCI 1.1 referrers in the local store,
//! pushed with the image to `berth registry serve` and found there through
//! the referrers API (curl, skopeo, oras), the SBOM accepted by
//! `pyspdxtools`, the provenance's materials carrying the base image's
//! digest and never a secret's value; `rmi` takes them away.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const ORAS_PYTHON: &str = "/opt/berth-tests/oras/bin/python";
const SPDX_TOOLS: &str = "/opt/berth-tests/sbom/bin/pyspdxtools";
const SECRET: &str = "s3cr3t-never-in-provenance-7d1f";

/// A `berth registry serve` child on a port it picked.
fn referrers(b: &Berth, image: &str) -> Vec<Value> {
    let out = b.ok(&["image", "referrers", "--format", "json", image]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn of_type<'a>(list: &'a [Value], t: &str) -> &'a Value {
    list.iter()
        .find(|r| r["artifact_type"] == t)
        .unwrap_or_else(|| panic!("no {t} referrer in {list:?}"))
}

fn curl_json(url: &str) -> Value {
    let o = Command::new("curl").args(["-sf", url]).output().unwrap();
    assert!(o.status.success(), "curl {url}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The digest `push` printed for the image manifest.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split_once(": digest: ").map(|(_, r)| r))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in {out}"))
        .to_string()
}

const ORAS_SCRIPT: &str = r#"
import json, sys
import oras.client
addr, repo, subject, sbom_digest, work = sys.argv[1:6]
client = oras.client.OrasClient(hostname=addr, insecure=True)
r = client.do_request(f"http://{addr}/v2/{repo}/referrers/{subject}", "GET")
idx = r.json()
out = {"status": r.status_code,
       "types": sorted(m.get("artifactType", "") for m in idx["manifests"])}
files = client.pull(target=f"{addr}/{repo}@{sbom_digest}", outdir=work)
out["files"] = [f.rsplit("/", 1)[-1] for f in files]
out["sbom"] = json.load(open(files[0]))
print(json.dumps(out))
"#;

#[test]
#[ignore = "root: builds with RUN steps; needs skopeo, the oras and sbom venvs (scripts/deps)"]
fn sbom_and_provenance_ride_along_as_referrers() {
    for tool in [ORAS_PYTHON, SPDX_TOOLS] {
        assert!(Path::new(tool).exists(), "{tool} missing: run scripts/deps");
    }
    let b = Berth::new();
    let srv = LocalRegistry::start(b.path());
    let a = srv.addr.clone();

    // The base lives in the registry: its manifest digest is what the
    // provenance must name.
    let base = format!("{a}/base/bb:1");
    b.ok(&["tag", IMAGE, &base]);
    let base_digest = pushed_digest(&b.ok(&["push", &base]));
    // An image COPY --from names is a material too.
    let tool = format!("{a}/other/tool:2");
    b.ok(&["tag", IMAGE, &tool]);
    let tool_digest = pushed_digest(&b.ok(&["push", &tool]));

    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\nARG VERSION\nCOPY hello.txt /\nCOPY --from={tool} /bin/busybox /opt/tool\nRUN --mount=type=secret,id=token test \"$(cat /run/secrets/token)\" = {SECRET} && echo v$VERSION > /version\nCMD [\"cat\", \"/version\"]\n"
        ),
    )
    .unwrap();
    let image = format!("{a}/app/web:1");
    let out = b
        .cmd()
        .env("TOKEN", SECRET)
        .args([
            "build",
            "--sbom",
            "--provenance=mode=max",
            "--secret",
            "id=token,env=TOKEN",
            "--build-arg",
            "VERSION=1.2.3",
            "-t",
            &image,
        ])
        .arg(&ctx)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "build: {}", stderr(&out));
    let progress = stderr(&out);
    assert!(
        progress.contains("#attest sbom application/spdx+json"),
        "{progress}"
    );
    assert!(
        progress.contains("#attest provenance application/vnd.in-toto+json (mode=max)"),
        "{progress}"
    );
    assert_eq!(b.ok(&["run", "--rm", &image]), "v1.2.3\n");

    // Two referrers in the store, each about the image's manifest.
    let list = referrers(&b, &image);
    assert_eq!(list.len(), 2, "{list:?}");
    let sbom_ref = of_type(&list, "application/spdx+json").clone();
    let prov_ref = of_type(&list, "application/vnd.in-toto+json").clone();
    assert_eq!(sbom_ref["subject"], prov_ref["subject"]);
    let table = b.ok(&["image", "referrers", &image]);
    assert!(table.starts_with("DIGEST "), "{table}");
    assert!(table.contains("application/spdx+json"), "{table}");

    // The SBOM: SPDX 2.3 that pyspdxtools accepts.
    let sbom_doc = b.ok(&[
        "image",
        "referrers",
        "--document",
        sbom_ref["digest"].as_str().unwrap(),
        &image,
    ]);
    let sbom_file = b.path().join("sbom.spdx.json");
    std::fs::write(&sbom_file, &sbom_doc).unwrap();
    let o = Command::new(SPDX_TOOLS)
        .arg("-i")
        .arg(&sbom_file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pyspdxtools: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let sbom: Value = serde_json::from_str(&sbom_doc).unwrap();
    assert_eq!(sbom["spdxVersion"], "SPDX-2.3");

    // The provenance: BuildKit's v0.2 layout, the base by digest, the
    // context hashed, the build arg and the secret's id (max), never its value.
    let prov_doc = b.ok(&[
        "image",
        "referrers",
        "--document",
        prov_ref["digest"].as_str().unwrap(),
        &image,
    ]);
    assert!(!prov_doc.contains(SECRET), "{prov_doc}");
    assert!(!sbom_doc.contains(SECRET));
    let prov: Value = serde_json::from_str(&prov_doc).unwrap();
    assert_eq!(prov["_type"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v0.2");
    assert_eq!(
        prov["subject"][0]["digest"]["sha256"].as_str().unwrap(),
        sbom_ref["subject"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    let p = &prov["predicate"];
    assert_eq!(p["buildType"], "https://mobyproject.org/buildkit@v1");
    assert_eq!(p["builder"]["id"], "");
    let materials = p["materials"].as_array().unwrap();
    let base_material = materials
        .iter()
        .find(|m| {
            m["uri"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pkg:docker/{a}/base/bb@1"))
        })
        .unwrap_or_else(|| panic!("no base material: {materials:?}"));
    assert_eq!(
        base_material["digest"]["sha256"].as_str().unwrap(),
        base_digest.trim_start_matches("sha256:")
    );
    let tool_material = materials
        .iter()
        .find(|m| {
            m["uri"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pkg:docker/{a}/other/tool@2"))
        })
        .unwrap_or_else(|| panic!("no COPY --from material: {materials:?}"));
    assert_eq!(
        tool_material["digest"]["sha256"].as_str().unwrap(),
        tool_digest.trim_start_matches("sha256:")
    );
    let context = materials.iter().find(|m| m["uri"] == "context").unwrap();
    assert_eq!(context["digest"]["sha256"].as_str().unwrap().len(), 64);
    let params = &p["invocation"]["parameters"];
    assert_eq!(params["frontend"], "dockerfile.v0");
    assert_eq!(params["args"]["build-arg:VERSION"], "1.2.3");
    assert_eq!(params["secrets"], serde_json::json!([{ "id": "token" }]));
    assert_eq!(p["invocation"]["configSource"]["entryPoint"], "Dockerfile");
    let md = &p["metadata"];
    assert!(md["buildStartedOn"].as_str().unwrap() <= md["buildFinishedOn"].as_str().unwrap());
    assert_eq!(md["completeness"]["parameters"], true);
    assert_eq!(md["completeness"]["materials"], false);

    // Pushed with the image: the registry lists both under the manifest.
    let out = b.ok(&["push", &image]);
    let manifest = pushed_digest(&out);
    assert_eq!(manifest, sbom_ref["subject"].as_str().unwrap(), "{out}");
    for r in [&sbom_ref, &prov_ref] {
        assert!(
            out.contains(&format!("referrer: {}", r["digest"].as_str().unwrap())),
            "{out}"
        );
    }
    let idx = curl_json(&format!("http://{a}/v2/app/web/referrers/{manifest}"));
    let mut types: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["application/spdx+json", "application/vnd.in-toto+json"],
        "{idx}"
    );
    let filtered = curl_json(&format!(
        "http://{a}/v2/app/web/referrers/{manifest}?artifactType=application/vnd.in-toto%2Bjson"
    ));
    assert_eq!(
        filtered["manifests"].as_array().unwrap().len(),
        1,
        "{filtered}"
    );
    assert_eq!(filtered["manifests"][0]["digest"], prov_ref["digest"]);

    // skopeo reads the referrer manifest: its subject and its one layer.
    let o = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{a}/app/web@{}",
            prov_ref["digest"].as_str().unwrap()
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", stderr(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["subject"]["digest"], manifest.as_str());
    assert_eq!(m["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        m["layers"][0]["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v0.2"
    );

    // oras finds them and pulls the SBOM back, byte for byte the same JSON.
    let work = b.path().join("oras");
    std::fs::create_dir_all(&work).unwrap();
    let o = Command::new(ORAS_PYTHON)
        .args([
            "-c",
            ORAS_SCRIPT,
            &a,
            "app/web",
            &manifest,
            sbom_ref["digest"].as_str().unwrap(),
        ])
        .arg(&work)
        .output()
        .unwrap();
    assert!(o.status.success(), "oras: {}{}", stdout(&o), stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(
        v["types"],
        serde_json::json!(["application/spdx+json", "application/vnd.in-toto+json"]),
        "{v}"
    );
    assert_eq!(v["files"], serde_json::json!(["sbom.spdx.json"]), "{v}");
    assert_eq!(v["sbom"], sbom, "{v}");

    // A zstd push makes another manifest: the referrers follow it there
    // (their subject rewritten), and the store keeps one per type.
    let zimage = format!("{a}/app/zstd:1");
    b.ok(&["tag", &image, &zimage]);
    let out = b.ok(&["push", "--compression-format", "zstd", &zimage]);
    let zmanifest = pushed_digest(&out);
    assert_ne!(zmanifest, manifest);
    let idx = curl_json(&format!("http://{a}/v2/app/zstd/referrers/{zmanifest}"));
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 2, "{idx}");
    let list = referrers(&b, &image);
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter().all(|r| r["subject"] == zmanifest.as_str()),
        "{list:?}"
    );
    b.ok(&["rmi", &zimage]);

    // A rebuild with mode=min replaces the provenance: no build args, no
    // secret ids, the parameters marked incomplete.
    let out = b
        .cmd()
        .args([
            "build",
            "--provenance",
            "--build-arg",
            "VERSION=1.2.3",
            "-t",
            &image,
        ])
        .arg(&ctx)
        .args(["--secret", "id=token,env=TOKEN"])
        .env("TOKEN", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "build: {}", stderr(&out));
    let list = referrers(&b, &image);
    assert_eq!(list.len(), 2, "{list:?}");
    let min_ref = of_type(&list, "application/vnd.in-toto+json");
    assert_ne!(min_ref["digest"], prov_ref["digest"]);
    let min: Value = serde_json::from_str(&b.ok(&[
        "image",
        "referrers",
        "--document",
        min_ref["digest"].as_str().unwrap(),
        &image,
    ]))
    .unwrap();
    let params = &min["predicate"]["invocation"]["parameters"];
    assert!(params.get("args").is_none(), "{params}");
    assert!(params.get("secrets").is_none(), "{params}");
    assert_eq!(
        min["predicate"]["metadata"]["completeness"]["parameters"],
        false
    );
    assert_census_clean(&b);

    // Not for outputs outside the store (refused as docker's daemon
    // refuses a build: exit 1).
    let out = b.run(&[
        "build",
        "--sbom",
        "-o",
        b.path().join("out").to_str().unwrap(),
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--sbom/--provenance"),
        "{}",
        stderr(&out)
    );
    let out = b.run(&["build", "--provenance=mode=full", ctx.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("use min or max"), "{}", stderr(&out));

    // rmi takes the referrers and their blobs with the image.
    b.ok(&["rmi", &image]);
    let out = b.run(&["image", "referrers", &image]);
    assert_ne!(code(&out), 0);
    let blob_dir = b.path().join("root/blobs/sha256");
    for r in [&sbom_ref, min_ref] {
        let hex = r["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert!(!blob_dir.join(hex).exists(), "{hex} is still there");
    }
    // The empty config `{}` went with the last referrer.
    assert!(!blob_dir
        .join("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
        .exists());
    assert_census_clean(&b);
}
