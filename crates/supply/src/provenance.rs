//! The in-toto statement of a build's SLSA provenance (v0.2 predicate),
//! laid out as BuildKit's `attest:provenance=mode=min|max` lays it out
//! (`solver/llbsolver/provenance`, `ConvertToSLSA02`): the builder, the
//! build type, the invocation (frontend, build args, locals, secret ids),
//! the materials (base images by digest, the build context by hash) and
//! the metadata (times, completeness).
//!
//! Secret values never reach this module: [`BuildFacts`] carries secret
//! ids only, and `mode=min` drops even those, and every build argument.
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The in-toto statement type BuildKit writes for SLSA v0.2.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v0.1";
/// SLSA provenance v0.2.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v0.2";
/// The predicate type of an SPDX SBOM in an in-toto statement.
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";
/// BuildKit's v0.2 build type: berth's build follows its parameters.
pub const BUILD_TYPE: &str = "https://mobyproject.org/buildkit@v1";
/// The Dockerfile frontend's name in BuildKit's parameters.
pub const FRONTEND: &str = "dockerfile.v0";

/// How much provenance (BuildKit's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Timestamps, the frontend and the materials; no build argument,
    /// label or secret id.
    #[default]
    Min,
    /// Also the build arguments, labels, target and secret ids.
    Max,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            _ => Err(format!("provenance mode {s:?}: use min or max")),
        }
    }
}

/// Something the build used, with its digest (`{"sha256": hex}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// A purl (`pkg:docker/busybox@1.36?platform=linux%2Famd64`) or the
    /// local context's name.
    pub uri: String,
    /// Algorithm to hex digest.
    pub digest: BTreeMap<String, String>,
}

/// What a build did, as the engine saw it.
#[derive(Debug, Clone, Default)]
pub struct BuildFacts {
    /// The statement's subjects: purls of the image's names.
    pub subject_names: Vec<String>,
    /// The image manifest's digest (hex, sha256).
    pub subject_sha256: String,
    /// `builder.id` (BuildKit leaves it empty unless `builder-id=` is set).
    pub builder_id: String,
    /// The Dockerfile's name inside the context (`configSource.entryPoint`).
    pub dockerfile: String,
    /// `--build-arg`s (max only).
    pub build_args: BTreeMap<String, String>,
    /// `--label`s (max only).
    pub labels: BTreeMap<String, String>,
    /// `--target` (max only).
    pub target: Option<String>,
    /// Ids of the `--secret`s the build was given (max only); never values.
    pub secret_ids: Vec<String>,
    /// The platform built for (`linux/amd64`).
    pub platform: String,
    /// Base images, then the build context.
    pub materials: Vec<Material>,
    /// A unique id of this build.
    pub invocation_id: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339.
    pub finished: String,
}

/// `pkg:docker/NAME@VERSION?platform=OS%2FARCH`, the purl BuildKit names
/// images by (`NAME` without `docker.io/library/`).
pub fn docker_purl(name: &str, version: &str, platform: &str) -> String {
    let short = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let mut p = format!("pkg:docker/{short}");
    if !version.is_empty() {
        p.push('@');
        p.push_str(&version.replace(':', "%3A"));
    }
    if !platform.is_empty() {
        p.push_str("?platform=");
        p.push_str(&platform.replace('/', "%2F"));
    }
    p
}

/// The in-toto statement.
pub fn statement(f: &BuildFacts, mode: Mode) -> Value {
    let mut args = Map::new();
    let mut complete_parameters = true;
    if let Some(t) = &f.target {
        if mode == Mode::Max {
            args.insert("target".into(), json!(t));
        }
    }
    for (k, v) in &f.build_args {
        match mode {
            Mode::Max => {
                args.insert(format!("build-arg:{k}"), json!(v));
            }
            Mode::Min => complete_parameters = false,
        }
    }
    for (k, v) in &f.labels {
        match mode {
            Mode::Max => {
                args.insert(format!("label:{k}"), json!(v));
            }
            Mode::Min => complete_parameters = false,
        }
    }
    let mut parameters = Map::new();
    parameters.insert("frontend".into(), json!(FRONTEND));
    if !args.is_empty() {
        parameters.insert("args".into(), Value::Object(args));
    }
    if mode == Mode::Max && !f.secret_ids.is_empty() {
        parameters.insert(
            "secrets".into(),
            Value::Array(f.secret_ids.iter().map(|id| json!({ "id": id })).collect()),
        );
    }
    parameters.insert(
        "locals".into(),
        json!([{ "name": "context" }, { "name": "dockerfile" }]),
    );
    let materials: Vec<Value> = f
        .materials
        .iter()
        .map(|m| json!({ "uri": m.uri, "digest": m.digest }))
        .collect();
    json!({
        "_type": STATEMENT_TYPE,
        "predicateType": PREDICATE_TYPE,
        "subject": f.subject_names.iter().map(|n| json!({
            "name": n,
            "digest": { "sha256": f.subject_sha256 },
        })).collect::<Vec<_>>(),
        "predicate": {
            "builder": { "id": f.builder_id },
            "buildType": BUILD_TYPE,
            "materials": materials,
            "invocation": {
                "configSource": { "entryPoint": f.dockerfile },
                "parameters": parameters,
                "environment": { "platform": f.platform },
            },
            "metadata": {
                "buildInvocationID": f.invocation_id,
                "buildStartedOn": f.started,
                "buildFinishedOn": f.finished,
                "completeness": {
                    "parameters": complete_parameters,
                    "environment": true,
                    // The context is a local directory: hashed here, but
                    // what a RUN step fetched from the network is not.
                    "materials": false,
                },
                "reproducible": false,
                "https://mobyproject.org/buildkit@v1#metadata": {},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> BuildFacts {
        BuildFacts {
            subject_names: vec![docker_purl("localhost:5000/app", "1", "linux/amd64")],
            subject_sha256: "ab".repeat(32),
            dockerfile: "Dockerfile".into(),
            build_args: [("VERSION".to_string(), "1.2".to_string())].into(),
            labels: [("team".to_string(), "x".to_string())].into(),
            secret_ids: vec!["token".into()],
            platform: "linux/amd64".into(),
            materials: vec![Material {
                uri: docker_purl("docker.io/library/busybox", "1.36", "linux/amd64"),
                digest: [("sha256".to_string(), "cd".repeat(32))].into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn max_has_args_and_secret_ids_min_has_neither() {
        let max = statement(&facts(), Mode::Max);
        assert_eq!(max["_type"], STATEMENT_TYPE);
        assert_eq!(max["predicateType"], PREDICATE_TYPE);
        let p = &max["predicate"];
        assert_eq!(p["buildType"], BUILD_TYPE);
        assert_eq!(
            p["invocation"]["parameters"]["args"]["build-arg:VERSION"],
            "1.2"
        );
        assert_eq!(p["invocation"]["parameters"]["secrets"][0]["id"], "token");
        assert_eq!(
            p["materials"][0]["uri"],
            "pkg:docker/busybox@1.36?platform=linux%2Famd64"
        );
        assert_eq!(p["metadata"]["completeness"]["parameters"], true);
        let min = statement(&facts(), Mode::Min);
        let p = &min["predicate"];
        assert!(p["invocation"]["parameters"].get("args").is_none());
        assert!(p["invocation"]["parameters"].get("secrets").is_none());
        assert_eq!(p["metadata"]["completeness"]["parameters"], false);
        assert_eq!(p["materials"], max["predicate"]["materials"]);
    }
}
