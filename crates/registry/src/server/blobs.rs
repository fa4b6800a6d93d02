//! Blobs: GET/HEAD (with `Range`), DELETE, and uploads — monolithic
//! (`POST ?digest=`, or POST then PUT), chunked (`PATCH` with
//! `Content-Range`), status, cancel, cross-repository mount.
//!
//! An upload is `uploads/<id>/data`, written as the body arrives (in 1 MiB
//! batches on the blocking pool, hashed as written; never the whole blob
//! in memory) under `uploads/<id>/lock`, flock'ed while this process
//! serves it. A chunk that fails half-way (a broken connection, a length
//! that does not match its `Content-Range`, a client idle for
//! [`IDLE`]) is cut off again, so the upload is as it was before it. The
//! blob is renamed into `blobs/` only once its digest matched.
//!
//! Digests are sha256 or sha512 (the client names the algorithm in
//! `?digest=`). The sha256 is taken while the body is written, the
//! algorithm nearly every client uses; a sha512 upload is read back once
//! at its end and hashed then, as distribution verifies any algorithm but
//! its canonical one.
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use model::{Algorithm, AnyDigest, AnyHasher};
use sha2::{Digest as _, Sha256};

use super::errors::{ApiError, ApiResult, Code};
use super::storage::{upload_id_ok, Link, Name};
use super::{query_param, AppState};

/// How long a client may send nothing in the middle of a body before its
/// chunk is dropped.
pub const IDLE: Duration = Duration::from_secs(60);

/// What is written to disk at once.
const BATCH: usize = 1 << 20;

/// What is handed to the connection at once when a blob is sent.
const SEND_CHUNK: usize = 1 << 20;

/// The uploads this process serves.
#[derive(Default)]
pub(crate) struct Uploads {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

/// One upload.
pub(crate) struct Session {
    repo: Name,
    dir: PathBuf,
    /// The bytes written and kept (what `Range` reports).
    committed: AtomicU64,
    inner: tokio::sync::Mutex<Inner>,
    /// Held (flock) while this process serves the upload.
    _lock: File,
}

struct Inner {
    /// `None` once finished or cancelled.
    file: Option<File>,
    hasher: Sha256,
    size: u64,
}

fn location_upload(name: &Name, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn location_blob(name: &Name, d: &AnyDigest) -> String {
    format!("/v2/{name}/blobs/{d}")
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `0-(size-1)` as distribution reports it (`0-0` when empty).
fn range_of(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

pub(crate) fn parse_digest(d: &str) -> ApiResult<AnyDigest> {
    d.parse().map_err(|_| {
        ApiError::new(Code::DigestInvalid)
            .msg(format!(
                "invalid digest {d:?}: this registry takes sha256:<64 lowercase hex digits> or sha512:<128 lowercase hex digits>"
            ))
            .detail(serde_json::json!({ "digest": d }))
    })
}

fn blob_unknown(d: &AnyDigest) -> ApiError {
    ApiError::new(Code::BlobUnknown).detail(serde_json::json!({ "digest": d.to_string() }))
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` within `size`: `Ok(None)` for no
/// (or a multi-range, served whole) range, `Err` when unsatisfiable.
fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        let e: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (s, e)
    };
    if size == 0 || start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// GET/HEAD `/v2/<name>/blobs/<digest>`.
pub(crate) fn get(
    st: &Arc<AppState>,
    name: &Name,
    d: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    let d = parse_digest(d)?;
    let s = &st.storage;
    // With --store a HEAD answers for any blob the store holds: a push of
    // a local image then sends no layer bytes.
    let known = (head && s.local().is_some() && s.present(name, &d))
        || s.linked(name, Link::Layer, &d)
        || s.linked(name, Link::Manifest, &d);
    if !known {
        return Err(blob_unknown(&d));
    }
    let path = s.blob_path(&d);
    let file = File::open(&path).map_err(|_| blob_unknown(&d))?;
    let size = file
        .metadata()
        .map_err(|e| ApiError::internal("reading a blob", e))?
        .len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => parse_range(r, size).map_err(|()| {
            ApiError::new(Code::RangeInvalid)
                .msg(format!("range {r:?} is outside the blob's {size} bytes"))
                .header(header::CONTENT_RANGE, &format!("bytes */{size}"))
        })?,
        None => None,
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", d.to_string())
        .header(header::ETAG, format!("\"{d}\""))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    if range.is_some() {
        resp = resp.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    let body = if head || len == 0 {
        Body::empty()
    } else {
        // Mapped, and handed to hyper in slices of the mapping; a plain
        // TCP connection sends them from the file with sendfile (see
        // `zerocopy`). Blobs are never rewritten in place (a new one is
        // renamed in, a removed one unlinked), so the mapping and the file
        // stay what they were while they are sent.
        let all =
            super::zerocopy::bytes_of(file).map_err(|e| ApiError::internal("reading a blob", e))?;
        let (start, end) = (start as usize, (start + len) as usize);
        let chunks = (start..end).step_by(SEND_CHUNK).map(move |a| {
            Ok::<_, std::convert::Infallible>(all.slice(a..(a + SEND_CHUNK).min(end)))
        });
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    resp.body(body)
        .map_err(|e| ApiError::internal("answering", e))
}

/// DELETE `/v2/<name>/blobs/<digest>`: the repository's link goes (the
/// bytes stay until gc), only with `--delete`.
pub(crate) fn delete(st: &Arc<AppState>, name: &Name, d: &str) -> ApiResult<Response> {
    if !st.opts.delete {
        return Err(ApiError::new(Code::Unsupported)
            .msg("deleting is disabled on this registry (start it with --delete)"));
    }
    if st.storage.local().is_some() {
        return Err(ApiError::new(Code::Unsupported).msg(
            "berth's store (--store) keeps blobs with their images: delete the manifest (untags it), then berth image prune",
        ));
    }
    let d = parse_digest(d)?;
    match st.storage.unlink(name, Link::Layer, &d) {
        Ok(true) => Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()),
        Ok(false) => Err(blob_unknown(&d)),
        Err(e) => Err(ApiError::internal("deleting a blob link", e)),
    }
}

impl Uploads {
    fn get(&self, name: &Name, id: &str) -> ApiResult<Arc<Session>> {
        let unknown = || {
            ApiError::new(Code::BlobUploadUnknown)
                .msg(format!(
                    "no upload {id} in {name} (finished, cancelled, or begun on a server since restarted: start again with POST /v2/{name}/blobs/uploads/)"
                ))
        };
        if !upload_id_ok(id) {
            return Err(unknown());
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.repo == *name => Ok(s.clone()),
            _ => Err(unknown()),
        }
    }

    fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

fn new_id() -> String {
    let x: u128 = rand::random();
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Begin an upload into `name`.
fn begin(st: &Arc<AppState>, name: &Name) -> ApiResult<(String, Arc<Session>)> {
    let id = new_id();
    let dir = st.storage.uploads_dir().join(&id);
    let make = || -> std::io::Result<(File, File)> {
        std::fs::create_dir(&dir)?;
        let lock = File::create(dir.join("lock"))?;
        lock.lock()?;
        let data = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join("data"))?;
        Ok((lock, data))
    };
    let (lock, data) = make().map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        ApiError::internal("starting an upload", e)
    })?;
    let s = Arc::new(Session {
        repo: name.clone(),
        dir,
        committed: AtomicU64::new(0),
        inner: tokio::sync::Mutex::new(Inner {
            file: Some(data),
            hasher: Sha256::new(),
            size: 0,
        }),
        _lock: lock,
    });
    st.uploads
        .map
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), s.clone());
    Ok((id, s))
}

/// Drop an upload: its entry and its files.
fn discard(st: &Arc<AppState>, id: &str, s: &Session, inner: &mut Inner) {
    inner.file = None;
    st.uploads.remove(id);
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn upload_busy() -> ApiError {
    ApiError::new(Code::BlobUploadInvalid)
        .msg("another request is writing to this upload; wait for it to finish")
}

/// Append `body` to the upload; on any failure the upload is cut back to
/// what it was. `expect`: the length the client declared (Content-Range).
async fn append(inner: &mut Inner, body: Body, expect: Option<u64>) -> ApiResult<u64> {
    let old_size = inner.size;
    let old_hasher = inner.hasher.clone();
    let r = write_body(inner, body, expect).await;
    if r.is_err() {
        inner.hasher = old_hasher;
        inner.size = old_size;
        if let Some(f) = inner.file.take() {
            let back = tokio::task::spawn_blocking(move || {
                f.set_len(old_size)?;
                Ok::<File, std::io::Error>(f)
            })
            .await;
            match back {
                Ok(Ok(f)) => inner.file = Some(f),
                // The upload cannot be trusted any more: it ends.
                _ => inner.file = None,
            }
        }
    }
    r
}

async fn flush(inner: &mut Inner, buf: Vec<u8>) -> ApiResult<Vec<u8>> {
    let mut f = inner
        .file
        .take()
        .ok_or_else(|| ApiError::new(Code::BlobUploadUnknown))?;
    let mut h = std::mem::take(&mut inner.hasher);
    let n = buf.len() as u64;
    let (f, h, mut buf, r) = tokio::task::spawn_blocking(move || {
        let r = f.write_all(&buf);
        if r.is_ok() {
            h.update(&buf);
        }
        (f, h, buf, r)
    })
    .await
    .map_err(|e| ApiError::internal("writing an upload", e))?;
    inner.file = Some(f);
    inner.hasher = h;
    r.map_err(|e| ApiError::internal("writing an upload", e))?;
    inner.size += n;
    buf.clear();
    Ok(buf)
}

async fn write_body(inner: &mut Inner, body: Body, expect: Option<u64>) -> ApiResult<u64> {
    let start = inner.size;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::with_capacity(BATCH);
    let mut received: u64 = 0;
    loop {
        let next = match tokio::time::timeout(IDLE, stream.next()).await {
            Ok(n) => n,
            Err(_) => {
                return Err(ApiError::new(Code::BlobUploadInvalid).msg(format!(
                    "the client sent nothing for {} s; this chunk was dropped (send it again)",
                    IDLE.as_secs()
                )))
            }
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::BlobUploadInvalid).msg(format!(
                "the body broke off after {received} bytes ({e}); this chunk was dropped (send it again)"
            ))
        })?;
        received += chunk.len() as u64;
        if let Some(x) = expect {
            if received > x {
                return Err(ApiError::new(Code::SizeInvalid).msg(format!(
                    "the body is longer than the {x} bytes its Content-Range declares; this chunk was dropped"
                )));
            }
        }
        buf.extend_from_slice(&chunk);
        if buf.len() >= BATCH {
            buf = flush(inner, buf).await?;
        }
    }
    if !buf.is_empty() {
        flush(inner, buf).await?;
    }
    if let Some(x) = expect {
        if received != x {
            return Err(ApiError::new(Code::SizeInvalid).msg(format!(
                "the body has {received} bytes, its Content-Range declares {x}; this chunk was dropped"
            )));
        }
    }
    Ok(inner.size - start)
}

/// `Content-Range: <start>-<end>` (distribution's form; `bytes a-b/n` too).
fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn accepted(name: &Name, id: &str, size: u64) -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, hv(&location_upload(name, id)));
    h.insert(header::RANGE, hv(&range_of(size)));
    h.insert("docker-upload-uuid", hv(id));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn created(name: &Name, d: &AnyDigest) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, hv(&location_blob(name, d)));
    h.insert("docker-content-digest", hv(&d.to_string()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// POST `/v2/<name>/blobs/uploads/`: a mount, a monolithic upload
/// (`?digest=`), or the start of one.
pub(crate) async fn start(
    st: &Arc<AppState>,
    name: &Name,
    query: Option<&str>,
    req: Request,
) -> ApiResult<Response> {
    if let (Some(mount), Some(from)) = (query_param(query, "mount"), query_param(query, "from")) {
        let d = parse_digest(&mount)?;
        if st.storage.local().is_some() {
            // One content space: a blob the store has is mounted anywhere.
            if st.storage.present(name, &d) {
                return Ok(created(name, &d));
            }
        } else if let Some(from) = Name::parse(&from) {
            let mounted = tokio::task::block_in_place(|| -> ApiResult<bool> {
                let _gc = super::gc::write_guard(st.storage.root())
                    .map_err(|e| ApiError::internal("taking the gc lock", e))?;
                if !st.storage.linked(&from, Link::Layer, &d) {
                    return Ok(false);
                }
                st.storage
                    .link(name, Link::Layer, &d, b"")
                    .map_err(|e| ApiError::internal("mounting a blob", e))?;
                Ok(true)
            })?;
            if mounted {
                return Ok(created(name, &d));
            }
        }
        // Not mountable from there: an ordinary upload (the spec's 202).
    }
    if let Some(d) = query_param(query, "digest") {
        let d = parse_digest(&d)?;
        let (id, s) = begin(st, name)?;
        let mut inner = s.inner.lock().await;
        let expect = content_length(req.headers());
        return complete(st, &id, &s, &mut inner, req.into_body(), expect, &d).await;
    }
    let (id, _) = begin(st, name)?;
    Ok(accepted(name, &id, 0))
}

/// GET on an upload: how much it holds.
pub(crate) async fn status(st: &Arc<AppState>, name: &Name, id: &str) -> ApiResult<Response> {
    let s = st.uploads.get(name, id)?;
    let size = s.committed.load(Ordering::SeqCst);
    let mut r = accepted(name, id, size);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// PATCH: one chunk, in order.
pub(crate) async fn patch(
    st: &Arc<AppState>,
    name: &Name,
    id: &str,
    req: Request,
) -> ApiResult<Response> {
    let s = st.uploads.get(name, id)?;
    let mut inner = s.inner.try_lock().map_err(|_| upload_busy())?;
    if inner.file.is_none() {
        return Err(ApiError::new(Code::BlobUploadUnknown));
    }
    let expect = match req.headers().get(header::CONTENT_RANGE) {
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            let (a, b) = parse_content_range(v).ok_or_else(|| {
                ApiError::new(Code::RangeInvalid)
                    .msg(format!("Content-Range {v:?} is not <start>-<end>"))
                    .header(header::RANGE, &range_of(inner.size))
            })?;
            if a != inner.size || b < a {
                return Err(ApiError::new(Code::RangeInvalid)
                    .msg(format!(
                        "chunk {a}-{b} is out of order: the upload holds {} bytes, the next chunk starts at {}",
                        inner.size, inner.size
                    ))
                    .header(header::RANGE, &range_of(inner.size))
                    .header(header::LOCATION, &location_upload(name, id))
                    .header(HeaderName::from_static("docker-upload-uuid"), id));
            }
            Some(b - a + 1)
        }
        None => None,
    };
    append(&mut inner, req.into_body(), expect).await?;
    s.committed.store(inner.size, Ordering::SeqCst);
    Ok(accepted(name, id, inner.size))
}

/// PUT `?digest=`: the last chunk (if any), then verify and commit.
pub(crate) async fn finish(
    st: &Arc<AppState>,
    name: &Name,
    id: &str,
    query: Option<&str>,
    req: Request,
) -> ApiResult<Response> {
    let s = st.uploads.get(name, id)?;
    let d = query_param(query, "digest").ok_or_else(|| {
        ApiError::new(Code::DigestInvalid)
            .msg("PUT of an upload needs ?digest=sha256:<hex> (or sha512:<hex>)")
    })?;
    let d = parse_digest(&d)?;
    let mut inner = s.inner.try_lock().map_err(|_| upload_busy())?;
    let expect = match req.headers().get(header::CONTENT_RANGE) {
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            match parse_content_range(v) {
                Some((a, b)) if a == inner.size && b >= a => Some(b - a + 1),
                _ => {
                    return Err(ApiError::new(Code::RangeInvalid)
                        .msg(format!(
                            "Content-Range {v:?} does not continue the upload's {} bytes",
                            inner.size
                        ))
                        .header(header::RANGE, &range_of(inner.size)))
                }
            }
        }
        None => None,
    };
    complete(st, id, &s, &mut inner, req.into_body(), expect, &d).await
}

/// Write the last bytes, check the digest, rename into `blobs/`, link.
/// On a failure the upload ends (as distribution cancels it).
async fn complete(
    st: &Arc<AppState>,
    id: &str,
    s: &Session,
    inner: &mut Inner,
    body: Body,
    expect: Option<u64>,
    want: &AnyDigest,
) -> ApiResult<Response> {
    if inner.file.is_none() {
        return Err(ApiError::new(Code::BlobUploadUnknown));
    }
    if st.storage.local().is_some() && want.algorithm() != Algorithm::Sha256 {
        discard(st, id, s, inner);
        return Err(ApiError::new(Code::Unsupported).msg(format!(
            "berth's store keeps sha256 blobs only; push {want} with a sha256 digest"
        )));
    }
    if let Err(e) = append(inner, body, expect).await {
        discard(st, id, s, inner);
        return Err(e);
    }
    let got = match want.algorithm() {
        Algorithm::Sha256 => AnyDigest::from(model::Digest::from_sha256_bytes(
            &inner.hasher.clone().finalize(),
        )),
        other => {
            let data = s.dir.join("data");
            tokio::task::spawn_blocking(move || rehash(&data, other))
                .await
                .map_err(|e| ApiError::internal("verifying an upload", e))
                .and_then(|r| r.map_err(|e| ApiError::internal("verifying an upload", e)))
                .inspect_err(|_| discard(st, id, s, inner))?
        }
    };
    if got != *want {
        let size = inner.size;
        discard(st, id, s, inner);
        return Err(ApiError::new(Code::DigestInvalid)
            .msg(format!(
                "the {size} bytes uploaded have digest {got}, not {want}; the upload was dropped"
            ))
            .detail(serde_json::json!({ "digest": want.to_string(), "actual": got.to_string() })));
    }
    let Some(file) = inner.file.take() else {
        return Err(ApiError::new(Code::BlobUploadUnknown));
    };
    let data = s.dir.join("data");
    let d = want.clone();
    let st2 = st.clone();
    let repo = s.repo.clone();
    // The blob becomes visible and linked under the gc lock (gc.rs).
    let linked = tokio::task::spawn_blocking(move || -> ApiResult<()> {
        if st2.storage.local().is_some() {
            // Staged in the server's work dir (blob_path): linked when a
            // manifest registers an image naming it.
            return st2
                .storage
                .commit_blob(&data, &file, &d)
                .map_err(|e| ApiError::internal("staging a blob", e));
        }
        let _gc = super::gc::write_guard(st2.storage.root())
            .map_err(|e| ApiError::internal("taking the gc lock", e))?;
        st2.storage
            .commit_blob(&data, &file, &d)
            .map_err(|e| ApiError::internal("storing a blob", e))?;
        st2.storage
            .link(&repo, Link::Layer, &d, b"")
            .map_err(|e| ApiError::internal("linking a blob", e))
    })
    .await
    .map_err(|e| ApiError::internal("storing a blob", e))
    .and_then(|r| r);
    discard(st, id, s, inner);
    linked?;
    Ok(created(&s.repo, want))
}

/// The digest with `algorithm` of the upload's data as written.
fn rehash(data: &std::path::Path, algorithm: Algorithm) -> std::io::Result<AnyDigest> {
    use std::io::Read;
    let mut f = File::open(data)?;
    let mut h = AnyHasher::new(algorithm);
    let mut buf = vec![0u8; BATCH];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(h.finish()),
            n => h.update(&buf[..n]),
        }
    }
}

/// DELETE on an upload: cancel it.
pub(crate) async fn cancel(st: &Arc<AppState>, name: &Name, id: &str) -> ApiResult<Response> {
    let s = st.uploads.get(name, id)?;
    let mut inner = s.inner.try_lock().map_err(|_| upload_busy())?;
    discard(st, id, &s, &mut inner);
    Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-1000", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-2", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("x"), None);
    }

    #[test]
    fn ids_are_uuids() {
        let id = new_id();
        assert!(upload_id_ok(&id), "{id}");
        assert!(!upload_id_ok("../../etc/passwd-0000000000000000000"));
    }
}
