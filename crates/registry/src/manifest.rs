//! Manifests and indexes: fetching (size-limited, digest-verified),
//! classifying by media type, and choosing a platform.
use model::Digest;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::{Deserialize, Serialize};

use crate::client::{status_error, Registry, Scope};
use crate::RegistryError;

/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// Largest manifest we accept.
pub const MAX_MANIFEST: u64 = 4 << 20;

const LAYER_TYPES: [&str; 8] = [
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl Descriptor {
    /// The digest, parsed (sha256 only).
    pub fn parsed_digest(&self) -> Result<Digest, RegistryError> {
        self.digest.parse().map_err(|_| {
            RegistryError::Unsupported(format!(
                "digest {:?} is not sha256:<64 hex digits> (berth supports sha256 only)",
                self.digest
            ))
        })
    }
}

/// os/arch/variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64 (the default, as Docker on this machine).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
        }
    }

    /// Parse `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad =
            || format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/arm64");
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        Ok(Platform {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }

    /// Does `other` (an index entry or image config) satisfy this request?
    pub fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let norm = |v: Option<&str>| -> Option<String> {
            match (self.architecture.as_str(), v) {
                ("arm64", Some("v8")) | ("arm64", None) => None,
                ("arm", None) => Some("v7".into()),
                (_, v) => v.map(str::to_string),
            }
        };
        match &self.variant {
            None => true,
            Some(v) => norm(Some(v)) == norm(other.variant.as_deref()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// 2.
    pub schema_version: u32,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// OCI artifacts set this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// Layer blobs, base first.
    pub layers: Vec<Descriptor>,
}

/// An index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// 2.
    pub schema_version: u32,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
}

/// A fetched manifest.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Raw bytes (what the digest covers).
    pub raw: Vec<u8>,
    /// sha256 of `raw`.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Parsed.
    pub kind: Kind,
}

/// Manifest or index.
#[derive(Debug, Clone)]
pub enum Kind {
    /// An image.
    Image(ImageManifest),
    /// Several.
    Index(Index),
}

/// GET a manifest by tag or digest, verifying the digest.
pub fn fetch(
    reg: &Registry,
    repo: &str,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<Fetched, RegistryError> {
    let url = reg.url(&format!(
        "/v2/{}/manifests/{reference}",
        reg.repo_path(repo)
    ));
    let accept = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX].join(", ");
    let resp = reg.send(&Scope::pull(repo), |c| {
        c.get(&url).header(ACCEPT, accept.as_str())
    })?;
    let full = format!("{}/{repo}:{reference}", reg.host());
    match resp.status().as_u16() {
        200 => {}
        404 => return Err(RegistryError::ManifestUnknown { reference: full }),
        _ => {
            return Err(status_error(
                &format!("fetching the manifest of {full}"),
                resp,
            ))
        }
    }
    let header_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = reg.read_limited(resp, MAX_MANIFEST, "manifest")?;
    let digest = Digest::of(&raw);
    if let Some(e) = expected {
        if *e != digest {
            return Err(RegistryError::Corrupt {
                what: format!("the manifest of {full}"),
                reason: format!("its digest is {digest}, not {e}"),
            });
        }
    }
    if let Some(h) = header_digest {
        if h.starts_with("sha256:") && h != digest.to_string() {
            return Err(RegistryError::Corrupt {
                what: format!("the manifest of {full}"),
                reason: format!("its digest is {digest}, the registry said {h}"),
            });
        }
    }
    let (media_type, kind) = classify(&raw, header_type.as_deref(), &full)?;
    Ok(Fetched {
        raw,
        digest,
        media_type,
        kind,
    })
}

/// Decide what a manifest is.
pub fn classify(
    raw: &[u8],
    header_type: Option<&str>,
    what: &str,
) -> Result<(String, Kind), RegistryError> {
    let v: serde_json::Value = serde_json::from_slice(raw).map_err(|e| {
        RegistryError::Protocol(format!("the manifest of {what} is not valid JSON: {e}"))
    })?;
    if v["schemaVersion"].as_u64() == Some(1)
        || header_type.is_some_and(|t| SCHEMA1[..2].contains(&t))
    {
        return Err(RegistryError::Unsupported(format!(
            "{what} uses the Docker image manifest schema 1, which is deprecated and not supported: push it again with a current client (schema 2 or OCI)"
        )));
    }
    let body_type = v["mediaType"].as_str();
    let mt = match (body_type, header_type) {
        (Some(b), _) => b.to_string(),
        (None, Some(h)) if h != "application/json" && !h.is_empty() => h.to_string(),
        // OCI allows the media type to be absent: go by the structure.
        _ if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        _ if v.get("layers").is_some() => OCI_MANIFEST.to_string(),
        _ => {
            return Err(RegistryError::Unsupported(format!(
                "the manifest of {what} has no media type and is neither an image manifest nor an index"
            )))
        }
    };
    let bad = |e: serde_json::Error| {
        RegistryError::Protocol(format!("the manifest of {what} is malformed: {e}"))
    };
    match mt.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let m: ImageManifest = serde_json::from_value(v).map_err(bad)?;
            if let Some(a) = &m.artifact_type {
                return Err(RegistryError::Unsupported(format!(
                    "{what} is not a container image but an OCI artifact of type {a}"
                )));
            }
            if m.config.media_type != DOCKER_CONFIG && m.config.media_type != OCI_CONFIG {
                return Err(RegistryError::Unsupported(format!(
                    "{what} is not a container image: its config is {}",
                    m.config.media_type
                )));
            }
            for l in &m.layers {
                if !LAYER_TYPES.contains(&l.media_type.as_str()) {
                    return Err(RegistryError::Unsupported(format!(
                        "{what} has a layer of unknown media type {}",
                        l.media_type
                    )));
                }
            }
            Ok((mt, Kind::Image(m)))
        }
        DOCKER_LIST | OCI_INDEX => {
            let i: Index = serde_json::from_value(v).map_err(bad)?;
            Ok((mt, Kind::Index(i)))
        }
        other if SCHEMA1.contains(&other) => Err(RegistryError::Unsupported(format!(
            "{what} uses the Docker image manifest schema 1, which is not supported"
        ))),
        other => Err(RegistryError::Unsupported(format!(
            "{what} has unknown manifest media type {other}: not a container image"
        ))),
    }
}

/// Pick the entry of `index` for `want`.
pub fn select<'a>(
    index: &'a Index,
    want: &Platform,
    what: &str,
) -> Result<&'a Descriptor, RegistryError> {
    index
        .manifests
        .iter()
        .filter(|d| d.media_type == DOCKER_MANIFEST || d.media_type == OCI_MANIFEST)
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| {
            let have: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .filter(|p| p.os != "unknown")
                .map(|p| p.to_string())
                .collect();
            RegistryError::Unsupported(format!(
                "no matching manifest for {want} in the manifest list entries of {what} (it has: {}); choose one with --platform",
                if have.is_empty() { "none".to_string() } else { have.join(", ") }
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(p: &str) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 1,
            platform: Some(Platform::parse(p).unwrap()),
            annotations: None,
        }
    }

    #[test]
    fn platforms() {
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(arm.matches(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(Platform::parse("linux/arm64/v8")
            .unwrap()
            .matches(&Platform::parse("linux/arm64").unwrap()));
        assert!(!Platform::parse("linux/arm/v6")
            .unwrap()
            .matches(&Platform::parse("linux/arm/v7").unwrap()));
        assert!(Platform::parse("linux/arm/v7")
            .unwrap()
            .matches(&Platform::parse("linux/arm").unwrap()));
        let idx = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![d("linux/arm64/v8"), d("linux/amd64"), d("unknown/unknown")],
        };
        assert_eq!(
            select(&idx, &Platform::parse("linux/amd64").unwrap(), "x")
                .unwrap()
                .platform,
            Some(Platform::parse("linux/amd64").unwrap())
        );
        let e = select(&idx, &Platform::parse("linux/s390x").unwrap(), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux/arm64/v8, linux/amd64"), "{e}");
    }

    #[test]
    fn classification() {
        let cfg = format!(
            r#"{{"mediaType":"{OCI_CONFIG}","digest":"sha256:{}","size":2}}"#,
            "b".repeat(64)
        );
        let m = format!(r#"{{"schemaVersion":2,"config":{cfg},"layers":[]}}"#);
        assert!(matches!(
            classify(m.as_bytes(), None, "x").unwrap(),
            (t, Kind::Image(_)) if t == OCI_MANIFEST
        ));
        let e = classify(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema 1"), "{e}");
        let art = m.replace(OCI_CONFIG, "application/vnd.cncf.helm.config.v1+json");
        let e = classify(art.as_bytes(), None, "x").unwrap_err().to_string();
        assert!(e.contains("not a container image"), "{e}");
        let e = classify(b"{nope", None, "x").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = classify(
            br#"{"schemaVersion":2,"mediaType":"application/x-weird"}"#,
            None,
            "x",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown manifest media type"), "{e}");
    }
}
