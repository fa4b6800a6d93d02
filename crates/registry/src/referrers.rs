//! OCI 1.1 referrers: artifact manifests whose `subject` is an image
//! manifest (image-spec `manifest.md`, "Guidelines for Artifact Usage"):
//! the empty config (`application/vnd.oci.empty.v1+json`, `{}`), the
//! document as the one layer, `artifactType` naming what it is. A registry
//! that implements the referrers API lists them under
//! `GET /v2/<name>/referrers/<subject digest>`.
//!
//! Local images keep theirs in the store ([`store::ReferrerRecord`]);
//! [`push_referrers`] sends them after the image's manifest, each with its
//! subject set to the manifest just pushed (a push with other compression
//! than the one the referrer was made for gets a rewritten copy).
use model::Digest;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use store::Store;

use crate::client::{status_error, Scope};
use crate::manifest::{Descriptor, OCI_MANIFEST};
use crate::push::{BlobPusher, Upload};
use crate::RegistryError;

/// The empty config's media type.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's content.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// One document to attach.
#[derive(Debug, Clone)]
pub struct Artifact<'a> {
    /// The manifest's `artifactType`.
    pub artifact_type: &'a str,
    /// The layer's media type.
    pub media_type: &'a str,
    /// The document.
    pub data: &'a [u8],
    /// Annotations of the layer (`in-toto.io/predicate-type`, the title).
    pub layer_annotations: Vec<(&'a str, String)>,
    /// `org.opencontainers.image.created` of the manifest (RFC 3339).
    pub created: String,
}

/// The artifact manifest of `a` about `subject`.
pub fn artifact_manifest(a: &Artifact<'_>, subject: &Descriptor) -> Vec<u8> {
    let mut layer = json!({
        "mediaType": a.media_type,
        "digest": Digest::of(a.data).to_string(),
        "size": a.data.len(),
    });
    if !a.layer_annotations.is_empty() {
        let ann: serde_json::Map<String, Value> = a
            .layer_annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        layer["annotations"] = Value::Object(ann);
    }
    let m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": a.artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::of(EMPTY_CONFIG).to_string(),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [layer],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
        "annotations": { "org.opencontainers.image.created": a.created },
    });
    serde_json::to_vec_pretty(&m).unwrap_or_default()
}

/// `raw` (a referrer manifest) with its subject replaced by `subject`.
fn with_subject(raw: &[u8], subject: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let mut v: Value = serde_json::from_slice(raw)
        .map_err(|e| RegistryError::Protocol(format!("a stored referrer manifest: {e}")))?;
    v["subject"] = json!({
        "mediaType": subject.media_type,
        "digest": subject.digest,
        "size": subject.size,
    });
    serde_json::to_vec_pretty(&v)
        .map_err(|e| RegistryError::Protocol(format!("encoding a referrer manifest: {e}")))
}

/// Push the referrers of the local image `image` with `subject` (the
/// manifest just pushed) as their subject: their blobs, then each manifest
/// by digest. Returns the digests pushed.
pub(crate) fn push_referrers(
    store: &Store,
    pusher: &BlobPusher<'_>,
    image: &Digest,
    subject: &Descriptor,
) -> Result<Vec<Digest>, RegistryError> {
    let mut pushed: Vec<Digest> = Vec::new();
    for r in store.referrers(image)? {
        let raw = store.read_blob(&r.digest)?;
        let (raw, digest) = if r.subject.to_string() == subject.digest {
            (raw, r.digest.clone())
        } else {
            let again = with_subject(&raw, subject)?;
            let rec = store.add_referrer(image, &again, &[])?;
            (again, rec.digest)
        };
        if pushed.contains(&digest) {
            continue;
        }
        for b in &r.blobs {
            let size = std::fs::metadata(store.blob_path(b))
                .map_err(RegistryError::io(store.blob_path(b)))?
                .len();
            pusher.blob(&Upload {
                digest: b.clone(),
                size,
                media_type: String::new(),
            })?;
        }
        let repo = pusher.repo;
        let url = pusher.reg.url(&format!("/v2/{repo}/manifests/{digest}"));
        let resp = pusher.reg.send(&Scope::push(repo), |c| {
            c.put(&url)
                .header(CONTENT_TYPE, OCI_MANIFEST)
                .body(raw.clone())
        })?;
        if !resp.status().is_success() {
            return Err(status_error(
                &format!("pushing the referrer {digest} ({})", r.artifact_type),
                resp,
            ));
        }
        pushed.push(digest);
    }
    Ok(pushed)
}
