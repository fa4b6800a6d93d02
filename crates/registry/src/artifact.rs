//! Small artifacts next to images: signatures and attestations as cosign
//! stores them (a manifest tagged `sha256-<hex>.sig` / `.att`) and OCI 1.1
//! referrers (a manifest whose `subject` is the image, listed by
//! `GET /v2/<name>/referrers/<digest>`). Blobs here are a few KiB, so they
//! are sent and read whole.
use model::Digest;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use serde::{Deserialize, Serialize};

use crate::client::{status_error, Registry, Scope};
use crate::manifest::{Descriptor, MAX_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::RegistryError;

/// Largest artifact blob read (a signature payload, a DSSE envelope with
/// an SBOM predicate).
pub const MAX_ARTIFACT_BLOB: u64 = 64 << 20;

/// A manifest as stored, unparsed.
#[derive(Debug, Clone)]
pub struct RawManifest {
    /// Its bytes.
    pub raw: Vec<u8>,
    /// sha256 of them.
    pub digest: Digest,
    /// The media type the registry gave (or the body names).
    pub media_type: String,
}

/// An OCI image manifest of an artifact (the fields cosign and the
/// referrers API use).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    /// 2.
    pub schema_version: u32,
    /// [`OCI_MANIFEST`].
    pub media_type: String,
    /// The artifact's type (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The payloads.
    pub layers: Vec<Descriptor>,
    /// The image this artifact is about (referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// GET the manifest `reference` (tag or digest) of `repo` as it is, or
/// `None` when the registry has none (404).
pub fn get_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
) -> Result<Option<RawManifest>, RegistryError> {
    let url = reg.url(&format!(
        "/v2/{}/manifests/{reference}",
        reg.repo_path(repo)
    ));
    let accept = [
        OCI_MANIFEST,
        OCI_INDEX,
        crate::manifest::DOCKER_MANIFEST,
        crate::manifest::DOCKER_LIST,
    ]
    .join(", ");
    let resp = reg.send(&Scope::pull(repo), |c| {
        c.get(&url).header(ACCEPT, accept.as_str())
    })?;
    let full = format!("{}/{repo}:{reference}", reg.host());
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
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
    let raw = reg.read_limited(resp, MAX_MANIFEST, "manifest")?;
    let digest = Digest::of(&raw);
    if let Some(d) = reference.strip_prefix("sha256:") {
        if d != digest.hex() {
            return Err(RegistryError::Corrupt {
                what: format!("the manifest of {full}"),
                reason: format!("its digest is {digest}"),
            });
        }
    }
    let body_type = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string));
    let media_type = body_type
        .or(header_type)
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    Ok(Some(RawManifest {
        raw,
        digest,
        media_type,
    }))
}

/// PUT `raw` as a manifest of `media_type` at `reference` (a tag or its
/// digest); returns its digest.
pub fn put_manifest(
    reg: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    raw: &[u8],
) -> Result<Digest, RegistryError> {
    let url = reg.url(&format!(
        "/v2/{}/manifests/{reference}",
        reg.repo_path(repo)
    ));
    let body = raw.to_vec();
    let resp = reg.send(&Scope::push(repo), |c| {
        c.put(&url)
            .header(CONTENT_TYPE, media_type)
            .body(body.clone())
    })?;
    if !resp.status().is_success() {
        return Err(status_error(
            &format!("pushing the manifest {repo}:{reference}"),
            resp,
        ));
    }
    Ok(Digest::of(raw))
}

/// Upload `bytes` as a blob of `repo` (unless the registry has it);
/// returns its descriptor with `media_type`.
pub fn put_blob(
    reg: &Registry,
    repo: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<Descriptor, RegistryError> {
    let digest = Digest::of(bytes);
    let desc = Descriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size: bytes.len() as u64,
        platform: None,
        annotations: None,
    };
    let path = reg.repo_path(repo);
    let scope = Scope::push(repo);
    let head = reg.url(&format!("/v2/{path}/blobs/{digest}"));
    if reg.send(&scope, |c| c.head(&head))?.status().is_success() {
        return Ok(desc);
    }
    let start = reg.url(&format!("/v2/{path}/blobs/uploads/"));
    let resp = reg.send(&scope, |c| c.post(&start).header(CONTENT_LENGTH, 0))?;
    if resp.status().as_u16() != 202 {
        return Err(status_error(
            &format!("starting the upload of {digest}"),
            resp,
        ));
    }
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol("an upload answer has no Location".into()))?;
    let loc = reg.url(loc);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let url = format!("{loc}{sep}digest={digest}");
    let body = bytes.to_vec();
    let resp = reg.send(&scope, |c| {
        c.put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(body.clone())
    })?;
    if !resp.status().is_success() {
        return Err(status_error(
            &format!("finishing the upload of {digest}"),
            resp,
        ));
    }
    Ok(desc)
}

/// GET the blob `digest` of `repo` whole (at most [`MAX_ARTIFACT_BLOB`]),
/// checking its digest.
pub fn get_blob(reg: &Registry, repo: &str, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
    let url = reg.url(&format!("/v2/{}/blobs/{digest}", reg.repo_path(repo)));
    let resp = reg.send(&Scope::pull(repo), |c| c.get(&url))?;
    if !resp.status().is_success() {
        return Err(status_error(&format!("fetching blob {digest}"), resp));
    }
    let bytes = reg.read_limited(resp, MAX_ARTIFACT_BLOB, "blob")?;
    if Digest::of(&bytes) != *digest {
        return Err(RegistryError::Corrupt {
            what: format!("blob {digest} of {}/{repo}", reg.host()),
            reason: format!("its content hashes to {}", Digest::of(&bytes)),
        });
    }
    Ok(bytes)
}

/// The referrers of `digest` in `repo` (the OCI 1.1 referrers API),
/// filtered by `artifact_type` if given. A registry without the API
/// (404) has none.
pub fn referrers(
    reg: &Registry,
    repo: &str,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>, RegistryError> {
    let mut url = reg.url(&format!("/v2/{}/referrers/{digest}", reg.repo_path(repo)));
    if let Some(t) = artifact_type {
        url.push_str("?artifactType=");
        url.push_str(&t.replace('+', "%2B"));
    }
    let resp = reg.send(&Scope::pull(repo), |c| {
        c.get(&url).header(ACCEPT, OCI_INDEX)
    })?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(Vec::new()),
        _ => {
            return Err(status_error(
                &format!("listing the referrers of {digest}"),
                resp,
            ))
        }
    }
    let raw = reg.read_limited(resp, MAX_MANIFEST, "referrers index")?;
    #[derive(Deserialize)]
    struct Listing {
        #[serde(default)]
        manifests: Vec<ReferrerEntry>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReferrerEntry {
        #[serde(flatten)]
        desc: Descriptor,
        #[serde(default)]
        artifact_type: Option<String>,
    }
    let l: Listing = serde_json::from_slice(&raw).map_err(|e| {
        RegistryError::Protocol(format!("the referrers index of {digest} is malformed: {e}"))
    })?;
    Ok(l.manifests
        .into_iter()
        .filter(|m| artifact_type.is_none() || m.artifact_type.as_deref() == artifact_type)
        .map(|m| m.desc)
        .collect())
}
