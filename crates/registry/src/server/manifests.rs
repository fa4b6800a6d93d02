//! Manifests: PUT by tag or digest (Docker schema 2 manifests and lists,
//! OCI manifests and indexes, artifacts with `artifactType` and
//! `subject`), GET/HEAD by tag or digest, DELETE by digest (untags) or tag.
//!
//! A manifest is accepted only if everything it names is in the same
//! repository with the size it claims (blobs for an image manifest,
//! manifests for an index), so no pull from this registry meets a missing
//! piece. At most [`MAX_MANIFEST`] bytes (distribution's limit); read
//! with that cap, never more.
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use model::{Algorithm, AnyDigest};
use serde_json::Value;

use super::blobs::IDLE;
use super::errors::{ApiError, ApiResult, Code};
use super::storage::{tag_ok, Link, Name};
use super::AppState;

/// The largest manifest accepted (distribution's 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;

/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A content descriptor, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// `mediaType`.
    pub media_type: String,
    /// `digest`.
    pub digest: AnyDigest,
    /// `size`.
    pub size: u64,
    /// It has `urls`: a foreign layer, not expected in the registry.
    pub foreign: bool,
}

/// What a manifest names.
#[derive(Debug, PartialEq)]
pub enum Refs {
    /// An image manifest (or an artifact): its config and layers (blobs).
    Image {
        /// `config`.
        config: Descriptor,
        /// `layers`.
        layers: Vec<Descriptor>,
    },
    /// An index or list: its manifests.
    Index(Vec<Descriptor>),
}

/// A manifest as checked before it is stored.
#[derive(Debug)]
pub struct Parsed {
    /// Its media type (what GET answers as `Content-Type`).
    pub media_type: String,
    /// What it names.
    pub refs: Refs,
    /// `subject`.
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for an image manifest without one its config's
    /// media type (the referrers API's rule).
    pub artifact_type: Option<String>,
    /// `annotations`.
    pub annotations: Option<Value>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid).msg(msg)
}

fn descriptor(v: &Value, what: &str) -> ApiResult<Descriptor> {
    let o = v
        .as_object()
        .ok_or_else(|| invalid(format!("{what} is not a descriptor object")))?;
    let media_type = o
        .get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no mediaType")))?
        .to_string();
    let ds = o
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no digest")))?;
    let digest = ds.parse().map_err(|_| {
        invalid(format!(
            "{what}: digest {ds:?} is not sha256:<64 hex digits> or sha512:<128 hex digits> (the algorithms this registry keeps)"
        ))
    })?;
    let size = o
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(format!("{what} has no size (a non-negative integer)")))?;
    let foreign = o
        .get("urls")
        .and_then(Value::as_array)
        .is_some_and(|u| !u.is_empty());
    Ok(Descriptor {
        media_type,
        digest,
        size,
        foreign,
    })
}

/// The type without parameters (`; charset=…`).
fn bare_type(t: &str) -> &str {
    t.split(';').next().unwrap_or("").trim()
}

/// Check a manifest's bytes as pushed with `content_type`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> ApiResult<Parsed> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    let o = v
        .as_object()
        .ok_or_else(|| invalid("the manifest is not a JSON object"))?;
    let body_type = o.get("mediaType").and_then(Value::as_str);
    let header_type = content_type
        .map(bare_type)
        .filter(|t| !t.is_empty() && *t != "application/json" && *t != "application/octet-stream");
    let media_type = match (header_type, body_type) {
        (Some(h), Some(b)) if h != b => {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )))
        }
        (Some(t), _) | (None, Some(t)) => t.to_string(),
        // An OCI manifest may leave mediaType out: tell by its fields.
        (None, None) if o.contains_key("manifests") => OCI_INDEX.to_string(),
        (None, None) if o.contains_key("config") => OCI_MANIFEST.to_string(),
        (None, None) => {
            return Err(invalid(
                "the manifest has no media type: send it with Content-Type (e.g. application/vnd.oci.image.manifest.v1+json)",
            ))
        }
    };
    if o.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid(format!(
            "{media_type}: schemaVersion must be 2 (schema 1 manifests are not kept by this registry)"
        )));
    }
    let refs = match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = descriptor(
                o.get("config")
                    .ok_or_else(|| invalid("the image manifest has no config"))?,
                "config",
            )?;
            let layers = match o.get("layers") {
                None | Some(Value::Null) if media_type == OCI_MANIFEST => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, l)| descriptor(l, &format!("layers[{i}]")))
                    .collect::<ApiResult<_>>()?,
                _ => return Err(invalid("the image manifest's layers is not an array")),
            };
            Refs::Image { config, layers }
        }
        DOCKER_LIST | OCI_INDEX => match o.get("manifests") {
            Some(Value::Array(a)) => Refs::Index(
                a.iter()
                    .enumerate()
                    .map(|(i, m)| descriptor(m, &format!("manifests[{i}]")))
                    .collect::<ApiResult<_>>()?,
            ),
            _ => return Err(invalid("the index has no manifests array")),
        },
        other => {
            return Err(invalid(format!(
                "unsupported manifest media type {other:?}: this registry keeps {DOCKER_MANIFEST}, {DOCKER_LIST}, {OCI_MANIFEST} and {OCI_INDEX} (artifacts are OCI manifests with an artifactType)"
            )))
        }
    };
    let subject = o
        .get("subject")
        .filter(|s| !s.is_null())
        .map(|s| descriptor(s, "subject"))
        .transpose()?;
    let artifact_type = match o.get("artifactType") {
        Some(Value::String(s)) => Some(s.clone()),
        None | Some(Value::Null) => match &refs {
            Refs::Image { config, .. } => Some(config.media_type.clone()),
            Refs::Index(_) => None,
        },
        Some(_) => return Err(invalid("artifactType is not a string")),
    };
    Ok(Parsed {
        media_type,
        refs,
        subject,
        artifact_type,
        annotations: o.get("annotations").filter(|a| a.is_object()).cloned(),
    })
}

/// Everything `p` names is in `name`, with the size it claims.
fn check_refs(st: &AppState, name: &Name, p: &Parsed) -> ApiResult<()> {
    let s = &st.storage;
    let unknown = |d: &Descriptor, what: &str| {
        ApiError::new(Code::ManifestBlobUnknown)
            .msg(format!(
                "the manifest names {what} {} that {name} does not have: push it first",
                d.digest
            ))
            .detail(serde_json::json!({ "digest": d.digest.to_string() }))
    };
    let size_ok = |d: &Descriptor, what: &str| -> ApiResult<()> {
        match s.blob_size(&d.digest) {
            Some(n) if n == d.size => Ok(()),
            Some(n) => Err(invalid(format!(
                "{what} {} is {n} bytes, the manifest says {}",
                d.digest, d.size
            ))),
            None => Err(unknown(d, what)),
        }
    };
    match &p.refs {
        Refs::Image { config, layers } => {
            if !s.linked(name, Link::Layer, &config.digest) {
                return Err(unknown(config, "config blob"));
            }
            size_ok(config, "config blob")?;
            for l in layers.iter().filter(|l| !l.foreign) {
                if !s.linked(name, Link::Layer, &l.digest) {
                    return Err(unknown(l, "layer blob"));
                }
                size_ok(l, "layer blob")?;
            }
        }
        Refs::Index(ms) => {
            for m in ms {
                if s.manifest_type(name, &m.digest).is_none() {
                    return Err(unknown(m, "manifest"));
                }
                size_ok(m, "manifest")?;
            }
        }
    }
    Ok(())
}

/// Read a manifest body, at most [`MAX_MANIFEST`] bytes.
async fn read_capped(headers: &HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
    let too_big = || {
        ApiError::new(Code::ManifestInvalid)
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .msg(format!(
                "the manifest is larger than {} MiB, this registry's limit",
                MAX_MANIFEST >> 20
            ))
    };
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if n > MAX_MANIFEST as u64 {
            return Err(too_big());
        }
    }
    let mut out = Vec::new();
    let mut s = body.into_data_stream();
    loop {
        let next = tokio::time::timeout(IDLE, s.next()).await.map_err(|_| {
            invalid(format!(
                "the client sent nothing for {} s in the middle of the manifest",
                IDLE.as_secs()
            ))
        })?;
        let Some(c) = next else { break };
        let c = c.map_err(|e| invalid(format!("the body broke off: {e}")))?;
        if out.len() + c.len() > MAX_MANIFEST {
            return Err(too_big());
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A reference: a digest or a tag.
enum Reference {
    Digest(AnyDigest),
    Tag(String),
}

fn reference(r: &str) -> ApiResult<Reference> {
    if r.contains(':') {
        return r.parse().map(Reference::Digest).map_err(|_| {
            ApiError::new(Code::DigestInvalid).msg(format!(
                "invalid digest {r:?}: use sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex digits>"
            ))
        });
    }
    if tag_ok(r) {
        Ok(Reference::Tag(r.to_string()))
    } else {
        Err(ApiError::new(Code::ManifestInvalid).msg(format!(
            "invalid tag {r:?}: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )))
    }
}

/// PUT `/v2/<name>/manifests/<reference>`.
pub(crate) async fn put(
    st: &Arc<AppState>,
    name: &Name,
    r: &str,
    req: Request,
) -> ApiResult<Response> {
    let r = reference(r)?;
    // `?tag=a&tag=b` (distribution-spec 1.1+dev): tags set by the same
    // push, each named back in an `OCI-Tag` header.
    let mut tags: Vec<String> = Vec::new();
    for (k, v) in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        if k != "tag" {
            continue;
        }
        if !tag_ok(v) {
            return Err(ApiError::new(Code::ManifestInvalid).msg(format!(
                "invalid tag {v:?} in ?tag=: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
            )));
        }
        if !tags.iter().any(|t| t == v) {
            tags.push(v.to_string());
        }
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = req.into_parts();
    let bytes = read_capped(&parts.headers, body).await?;
    let p = parse(&bytes, content_type.as_deref())?;
    // Pushed by digest, the manifest is kept under a digest of the
    // algorithm the client named; by tag, under its sha256 (the
    // canonical algorithm, as distribution).
    let algorithm = match &r {
        Reference::Digest(want) => want.algorithm(),
        Reference::Tag(_) => Algorithm::Sha256,
    };
    let d = AnyDigest::of(algorithm, &bytes);
    if let Reference::Digest(want) = &r {
        if *want != d {
            return Err(ApiError::new(Code::DigestInvalid)
                .msg(format!(
                    "the manifest's digest is {d}, not {want} as the URL says"
                ))
                .detail(
                    serde_json::json!({ "digest": want.to_string(), "actual": d.to_string() }),
                ));
        }
    }
    let st2 = st.clone();
    let name2 = name.clone();
    let mut to_tag = tags.clone();
    if let Reference::Tag(t) = &r {
        to_tag.insert(0, t.clone());
    }
    if st.storage.local().is_some() {
        if algorithm != Algorithm::Sha256 {
            return Err(ApiError::new(Code::Unsupported).msg(format!(
                "berth's store keeps sha256 manifests only; push {d} by tag or by its sha256 digest"
            )));
        }
        let authority = parts.uri.authority().map(|a| a.as_str());
        put_local(st, name, &parts.headers, authority, &p, bytes, &to_tag).await?;
        return Ok(created_manifest(name, &d, &tags));
    }
    let subject = p.subject.as_ref().map(|s| s.digest.clone());
    let referrer = p.subject.as_ref().map(|_| {
        let mut desc = serde_json::json!({
            "mediaType": p.media_type,
            "digest": d.to_string(),
            "size": bytes.len(),
        });
        if let Some(a) = &p.artifact_type {
            desc["artifactType"] = Value::String(a.clone());
        }
        if let Some(a) = &p.annotations {
            desc["annotations"] = a.clone();
        }
        desc
    });
    let media_type = p.media_type.clone();
    let d2 = d.clone();
    let p = Arc::new(p);
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        let s = &st2.storage;
        // From the check of the blobs it names to its last link, no gc
        // may sweep (gc.rs).
        let _gc = super::gc::write_guard(s.root())
            .map_err(|e| ApiError::internal("taking the gc lock", e))?;
        check_refs(&st2, &name2, &p2)?;
        let store = || -> std::io::Result<()> {
            s.put_small_blob(&bytes, algorithm)?;
            s.link(&name2, Link::Manifest, &d2, media_type.as_bytes())?;
            if let (Some(subject), Some(desc)) = (&subject, &referrer) {
                s.add_referrer(&name2, subject, &d2, desc)?;
            }
            for t in &to_tag {
                s.set_tag(&name2, t, &d2)?;
            }
            Ok(())
        };
        store().map_err(|e| ApiError::internal("storing a manifest", e))
    })
    .await
    .map_err(|e| ApiError::internal("storing a manifest", e))??;
    let mut resp = created_manifest(name, &d, &tags);
    if let Some(s) = &p.subject {
        resp.headers_mut()
            .insert("oci-subject", hv(&s.digest.to_string()));
    }
    Ok(resp)
}

fn created_manifest(name: &Name, d: &AnyDigest, tags: &[String]) -> Response {
    let mut resp = StatusCode::CREATED.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&format!("/v2/{name}/manifests/{d}")));
    h.insert("docker-content-digest", hv(&d.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    for t in tags {
        h.append("oci-tag", hv(t));
    }
    resp
}

/// Image config media types berth's store keeps.
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// `--store`: a pushed image manifest becomes an image in berth's store,
/// tagged `HOST/<name>:<tag>` (HOST from the request's `Host` header).
async fn put_local(
    st: &Arc<AppState>,
    name: &Name,
    headers: &HeaderMap,
    authority: Option<&str>,
    p: &Parsed,
    bytes: Vec<u8>,
    tags: &[String],
) -> ApiResult<()> {
    let Some(local) = st.storage.local().cloned() else {
        return Err(ApiError::internal("--store", "no store"));
    };
    let unsupported = |m: String| ApiError::new(Code::Unsupported).msg(m);
    let (config, layers) = match &p.refs {
        Refs::Index(_) => {
            return Err(unsupported(format!(
                "berth's store (--store) keeps images, not indexes or manifest lists ({}): push one platform's image manifest",
                p.media_type
            )))
        }
        Refs::Image { config, layers } => (config, layers),
    };
    if !IMAGE_CONFIGS.contains(&bare_type(&config.media_type)) {
        return Err(unsupported(format!(
            "berth's store (--store) keeps runnable images; this manifest's config is {:?} (an artifact): push artifacts to a registry with its own --root",
            config.media_type
        )));
    }
    if let Some(l) = layers.iter().find(|l| l.foreign) {
        return Err(unsupported(format!(
            "layer {} is a foreign layer (urls): berth's store keeps the layers it can unpack",
            l.digest
        )));
    }
    // HTTP/1.1's Host, or HTTP/2's :authority.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .or(authority)
        .ok_or_else(|| {
            invalid("the request has no Host header: berth names a pushed image HOST/<name>:<tag>")
        })?
        .to_ascii_lowercase();
    for t in tags {
        let full = format!("{host}/{name}:{t}");
        let ok = full
            .parse::<model::Reference>()
            .is_ok_and(|r| r.registry() == host);
        if !ok {
            return Err(invalid(format!(
                "{full} is not an image reference naming registry {host}: push through host:port, a dotted host name or localhost"
            )));
        }
    }
    let s = &st.storage;
    let mut wanted = vec![(config, "config blob")];
    wanted.extend(layers.iter().map(|l| (l, "layer blob")));
    let mut shas = Vec::new();
    for (desc, what) in wanted {
        let Some(d) = desc.digest.sha256() else {
            return Err(unsupported(format!(
                "{what} {}: berth's store keeps sha256 blobs only",
                desc.digest
            )));
        };
        if !s.present(name, &desc.digest) {
            return Err(ApiError::new(Code::ManifestBlobUnknown)
                .msg(format!(
                    "the manifest names {what} {} that this registry does not have: push it first",
                    desc.digest
                ))
                .detail(serde_json::json!({ "digest": desc.digest.to_string() })));
        }
        match s.blob_size(&desc.digest) {
            Some(n) if n == desc.size => {}
            n => {
                return Err(invalid(format!(
                    "{what} {} is {} bytes, the manifest says {}",
                    desc.digest,
                    n.unwrap_or(0),
                    desc.size
                )))
            }
        }
        shas.push((d, desc.size, desc.media_type.clone()));
    }
    let config_d = shas.remove(0);
    let name2 = name.as_str().to_string();
    let tags = tags.to_vec();
    tokio::task::spawn_blocking(move || {
        local.push_image(&host, &name2, &tags, &bytes, &config_d.0, &shas)
    })
    .await
    .map_err(|e| ApiError::internal("storing an image", e))?
    .map_err(|e| match e {
        super::local::PushError::Invalid(m) => invalid(m),
        super::local::PushError::Store(m) => ApiError::internal("storing an image", m),
    })?;
    Ok(())
}

fn manifest_unknown(name: &Name, r: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown)
        .msg(format!("manifest {r} not found in {name}"))
        .detail(serde_json::json!({ "name": name.as_str(), "reference": r }))
}

/// The digest a reference names in `name`, if it has that manifest.
fn resolve(st: &AppState, name: &Name, r: &str) -> ApiResult<(AnyDigest, String)> {
    let d = match reference(r) {
        Ok(Reference::Digest(d)) => d,
        Ok(Reference::Tag(t)) => st
            .storage
            .tag(name, &t)
            .ok_or_else(|| manifest_unknown(name, r))?,
        Err(e) if e.code == Code::DigestInvalid => return Err(e),
        Err(_) => return Err(manifest_unknown(name, r)),
    };
    let t = st
        .storage
        .manifest_type(name, &d)
        .ok_or_else(|| manifest_unknown(name, r))?;
    Ok((d, t))
}

/// Whether a client's `Accept` takes `t` (no `Accept`: anything).
fn accepts(headers: &HeaderMap, t: &str) -> bool {
    let mut any = false;
    for v in headers.get_all(header::ACCEPT) {
        for a in v.to_str().unwrap_or("").split(',') {
            let a = bare_type(a);
            if a.is_empty() {
                continue;
            }
            any = true;
            if a == t || a == "*/*" || a == "application/*" {
                return true;
            }
        }
    }
    !any
}

/// GET/HEAD `/v2/<name>/manifests/<reference>`.
pub(crate) fn get(
    st: &AppState,
    name: &Name,
    r: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let (d, t) = resolve(st, name, r)?;
    if !accepts(headers, &t) {
        return Err(manifest_unknown(name, r).msg(format!(
            "manifest {r} in {name} is {t}, which the client's Accept header does not list"
        )));
    }
    let (len, body) = if head {
        let n = st
            .storage
            .manifest_len(&d)
            .ok_or_else(|| manifest_unknown(name, r))?;
        (n, Body::empty())
    } else {
        let b = st
            .storage
            .manifest_bytes(&d)
            .ok_or_else(|| manifest_unknown(name, r))?;
        (b.len() as u64, Body::from(b))
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, t)
        .header(header::CONTENT_LENGTH, len)
        .header("docker-content-digest", d.to_string())
        .header(header::ETAG, format!("\"{d}\""))
        .body(body)
        .map_err(|e| ApiError::internal("answering", e))
}

/// DELETE `/v2/<name>/manifests/<reference>`: a digest goes with every tag
/// pointing at it; a tag alone goes. Only with `--delete`.
pub(crate) fn delete(st: &AppState, name: &Name, r: &str) -> ApiResult<Response> {
    if !st.opts.delete {
        return Err(ApiError::new(Code::Unsupported)
            .msg("deleting is disabled on this registry (start it with --delete)"));
    }
    if let Some(l) = st.storage.local().cloned() {
        let (tag, digest) = match reference(r)? {
            Reference::Tag(t) => (Some(t), None),
            Reference::Digest(d) => (None, d.sha256()),
        };
        if tag.is_none() && digest.is_none() {
            return Err(manifest_unknown(name, r));
        }
        let n =
            tokio::task::block_in_place(|| l.untag(name.as_str(), tag.as_deref(), digest.as_ref()))
                .map_err(|e| ApiError::internal("untagging in the store", e))?;
        if n == 0 {
            return Err(manifest_unknown(name, r));
        }
        return Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response());
    }
    let s = &st.storage;
    let io = |e| ApiError::internal("deleting a manifest", e);
    match reference(r)? {
        Reference::Tag(t) => {
            if !s.remove_tag(name, &t).map_err(io)? {
                return Err(manifest_unknown(name, r));
            }
        }
        Reference::Digest(d) => {
            let t = s
                .manifest_type(name, &d)
                .ok_or_else(|| manifest_unknown(name, r))?;
            for tag in s.tags_of(name, &d).map_err(io)? {
                s.remove_tag(name, &tag).map_err(io)?;
            }
            if let Ok(bytes) = std::fs::read(s.blob_path(&d)) {
                if let Ok(p) = parse(&bytes, Some(&t)) {
                    if let Some(subj) = p.subject {
                        s.remove_referrer(name, &subj.digest, &d).map_err(io)?;
                    }
                }
            }
            s.unlink(name, Link::Manifest, &d).map_err(io)?;
        }
    }
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn image_manifests_and_artifacts() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/x-sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"a","digest":"{D}","size":1,"urls":["http://x"]}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3}}}}"#
        );
        let p = parse(m.as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
        assert!(p.subject.is_some());
        match p.refs {
            Refs::Image { layers, .. } => assert!(layers[0].foreign),
            Refs::Index(_) => panic!(),
        }
        // Without artifactType: the config's media type.
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-cfg","digest":"{D}","size":2}},"layers":[]}}"#
        );
        let p = parse(m.as_bytes(), None).unwrap();
        assert_eq!(p.media_type, OCI_MANIFEST);
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-cfg"));
    }

    #[test]
    fn refused() {
        let cases = [
            ("not json", None),
            (
                r#"{"schemaVersion":1,"fsLayers":[]}"#,
                Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                Some(OCI_MANIFEST),
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"md5:00","size":1},"layers":[]}"#,
                Some(OCI_MANIFEST),
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:00","size":-1},"layers":[]}"#,
                Some(DOCKER_MANIFEST),
            ),
            (r#"{"schemaVersion":2}"#, Some("text/plain")),
        ];
        for (m, t) in cases {
            let e = parse(m.as_bytes(), t).unwrap_err();
            assert_eq!(e.code, Code::ManifestInvalid, "{m}");
        }
    }

    #[test]
    fn accept_header() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h, OCI_MANIFEST));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/vnd.docker.distribution.manifest.v2+json; q=0.9, application/json",
            ),
        );
        assert!(!accepts(&h, OCI_MANIFEST));
        assert!(accepts(&h, DOCKER_MANIFEST));
        h.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&h, OCI_MANIFEST));
    }
}
