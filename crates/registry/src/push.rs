//! `push`: each blob is checked (HEAD) first, mounted from another
//! repository of the same registry when the image came from there, else
//! uploaded (one PUT, or PATCH chunks then PUT); then the manifest.
//!
//! A pulled image is pushed with the blobs and manifest it was pulled
//! with (no recompression, same digest). Layers stored uncompressed
//! (imported, committed, built) are compressed once and the result cached
//! in the store.
use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use model::{Digest, Reference};
use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use store::{Blobs, LayerBlob, Store};

use crate::client::{status_error, upload_timeout, Registry, Scope};
use crate::manifest::{self, Descriptor, Kind};
use crate::pull::{short, Event, LayerStatus, Progress};
use crate::{Config, Credentials, RegistryError};

/// How uncompressed layers are compressed for the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// gzip (level 1: speed first).
    #[default]
    Gzip,
    /// zstd (`--compression-format zstd`).
    Zstd,
}

/// `push` options.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Compression for uncompressed layers.
    pub compression: Compression,
    /// Blobs uploaded at once (default: from the config).
    pub max_concurrent: Option<usize>,
    /// Chunked uploads of this many bytes per PATCH (default: from the
    /// config; none = one PUT per blob).
    pub chunk_size: Option<u64>,
    /// Stops the push: no further blob, the upload under way at its next
    /// write (its body is then streamed in small pieces rather than handed
    /// to the HTTP stack whole), and never the manifest.
    pub cancel: crate::Cancel,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// Digest of the pushed manifest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The referrers (SBOM, provenance) pushed after it, by digest.
    pub referrers: Vec<Digest>,
}

pub(crate) struct Upload {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// Empty for a blob that is not a layer (no progress shown).
    pub(crate) media_type: String,
}

/// Push the local image `r` to its registry.
pub fn push(
    store: &Store,
    cfg: &Config,
    creds: &Credentials,
    r: &Reference,
    opts: &PushOptions,
    progress: Progress,
) -> Result<PushOutcome, RegistryError> {
    if r.digest().is_some() {
        return Err(RegistryError::Unsupported(format!(
            "cannot push {r}: push a tag, not a digest"
        )));
    }
    let img = store.resolve_image(&r.to_string())?;
    let reg = Registry::new(cfg, creds, r.registry())?;
    let repo = r.repository();
    progress(Event::PushStarted {
        repository: format!("{}/{}", r.registry(), repo),
    });

    let (layers, manifest_raw, manifest_type) =
        image_manifest(store, &img, opts.compression, &mut |blob| {
            opts.cancel.check()?;
            progress(Event::Layer {
                id: short(&blob.digest),
                status: LayerStatus::Compressing,
            });
            Ok(())
        })
        .map_err(|e| match e {
            RegistryError::Unsupported(m) => {
                RegistryError::Unsupported(format!("cannot push {r}: {m}"))
            }
            e => e,
        })?;
    let mut uploads: Vec<Upload> = layers
        .iter()
        .map(|l| {
            Ok(Upload {
                digest: l
                    .digest
                    .parse()
                    .map_err(|_| RegistryError::Protocol(format!("stored blob {:?}", l.digest)))?,
                size: l.size,
                media_type: l.media_type.clone(),
            })
        })
        .collect::<Result<_, RegistryError>>()?;
    let config_size = std::fs::metadata(store.blob_path(&img.id))
        .map_err(RegistryError::io(store.blob_path(&img.id)))?
        .len();
    uploads.push(Upload {
        digest: img.id.clone(),
        size: config_size,
        media_type: String::new(),
    });
    let mut seen = std::collections::HashSet::new();
    uploads.retain(|u| seen.insert(u.digest.clone()));

    // Mount sources: other repositories of this registry the image is in.
    let sources: Vec<String> = img
        .repo_digests
        .iter()
        .filter_map(|rd| rd.split_once('@').map(|(n, _)| n))
        .filter_map(|n| n.parse::<Reference>().ok())
        .filter(|s| s.registry() == r.registry() && s.repository() != repo)
        .map(|s| s.repository().to_string())
        .collect();

    progress(Event::Resolved {
        reference: r.tag().unwrap_or("latest").to_string(),
        repository: format!("{}/{}", r.registry(), repo),
        layers: uploads
            .iter()
            .filter(|u| !u.media_type.is_empty())
            .map(|u| (short(&u.digest.to_string()), u.size))
            .collect(),
    });
    reg.ping()?;
    let chunk = opts.chunk_size.or_else(|| cfg.push_chunk_size());
    let workers = opts
        .max_concurrent
        .unwrap_or_else(|| cfg.max_concurrent_uploads())
        .clamp(1, uploads.len().max(1));
    let blobs = store.blobs();
    let queue = Mutex::new(uploads.into_iter().collect::<VecDeque<_>>());
    let cancel = AtomicBool::new(false);
    let first_err: Mutex<Option<RegistryError>> = Mutex::new(None);
    let pusher = BlobPusher {
        reg: &reg,
        repo,
        sources: &sources,
        blobs: &blobs,
        chunk,
        cancel: &opts.cancel,
        progress,
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let Some(u) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let pushed = opts.cancel.check().and_then(|()| pusher.blob(&u));
                if let Err(e) = pushed {
                    cancel.store(true, Ordering::Relaxed);
                    first_err
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = first_err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }

    // The manifest: never once cancelled (the tag would then name an
    // image its client gave up on).
    opts.cancel.check()?;
    let tag = r.tag().unwrap_or("latest");
    let url = reg.url(&format!("/v2/{repo}/manifests/{tag}"));
    let resp = reg.send(&Scope::push(repo), |c| {
        c.put(&url)
            .header(CONTENT_TYPE, manifest_type.as_str())
            .body(manifest_raw.clone())
    })?;
    if resp.status().as_u16() != 201 && !resp.status().is_success() {
        return Err(status_error(&format!("pushing the manifest of {r}"), resp));
    }
    let digest = Digest::of(&manifest_raw);
    if let Some(h) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if h != digest.to_string() {
            return Err(RegistryError::Protocol(format!(
                "the registry stored the manifest as {h}, berth computed {digest}"
            )));
        }
    }
    store.put_blob_verified(&manifest_raw, Some(&digest))?;
    store.add_repo_digest(&img.id, &format!("{}@{digest}", r.name()))?;
    let subject = Descriptor {
        media_type: manifest_type.clone(),
        digest: digest.to_string(),
        size: manifest_raw.len() as u64,
        platform: None,
        annotations: None,
    };
    let referrers = crate::referrers::push_referrers(store, &pusher, &img.id, &subject)?;
    Ok(PushOutcome {
        digest,
        size: manifest_raw.len() as u64,
        referrers,
    })
}

/// What a registry serves for the local image `img`: its layer blobs
/// (uncompressed ones compressed once, cached in the store's `compressed`
/// table; `before_compress` is told first), the manifest (the one it was
/// pulled with if its layers are these, else one made for them) and the
/// manifest's media type. Shared by `push` and the registry server's
/// `--store` mode.
pub fn image_manifest(
    store: &Store,
    img: &store::ImageRecord,
    compression: Compression,
    before_compress: &mut dyn FnMut(&LayerBlob) -> Result<(), RegistryError>,
) -> Result<(Vec<LayerBlob>, Vec<u8>, String), RegistryError> {
    // The layer blobs to send, compressed.
    let mut layers = Vec::new();
    for (diff, blob) in img.diff_ids.iter().zip(&img.layer_blobs) {
        let d: Digest = blob
            .digest
            .parse()
            .map_err(|_| RegistryError::Protocol(format!("stored blob {:?}", blob.digest)))?;
        if !store.has_layer_blob(diff, &d) {
            return Err(RegistryError::Unsupported(format!(
                "the blob of layer {diff} is not in the store (pull or load the image again)"
            )));
        }
        if blob.media_type.ends_with("+gzip")
            || blob.media_type.ends_with("+zstd")
            || blob.media_type.ends_with(".tar.gzip")
        {
            layers.push(blob.clone());
            continue;
        }
        let mt = match compression {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let cached = store
            .compressed_blob(diff, mt)?
            .filter(|b| b.digest.parse().is_ok_and(|d| store.has_blob(&d)));
        let c = match cached {
            Some(c) => c,
            None => {
                before_compress(blob)?;
                store.compress_layer(diff, &d, compression == Compression::Zstd)?
            }
        };
        layers.push(c);
    }

    // The manifest: the one the image was pulled with, if it fits.
    let (manifest_raw, manifest_type) =
        match pulled_manifest(store, &img.id, &img.repo_digests, &layers) {
            Some(m) => m,
            None => build_manifest(store, &img.id, &layers)?,
        };
    Ok((layers, manifest_raw, manifest_type))
}

/// A manifest this image was pulled with whose layers are `layers`.
pub(crate) fn pulled_manifest(
    store: &Store,
    id: &Digest,
    repo_digests: &[String],
    layers: &[LayerBlob],
) -> Option<(Vec<u8>, String)> {
    let fits = |raw: &[u8]| -> Option<(Vec<u8>, String)> {
        let (mt, kind) = manifest::classify(raw, None, "stored manifest").ok()?;
        let Kind::Image(m) = kind else { return None };
        let same = m.config.digest == id.to_string()
            && m.layers.len() == layers.len()
            && m.layers
                .iter()
                .zip(layers)
                .all(|(a, b)| a.digest == b.digest);
        same.then(|| (raw.to_vec(), mt))
    };
    for rd in repo_digests {
        let d: Digest = rd.rsplit_once('@')?.1.parse().ok()?;
        let Ok(raw) = store.read_blob(&d) else {
            continue;
        };
        if let Some(m) = fits(&raw) {
            return Some(m);
        }
        if let Ok((_, Kind::Index(idx))) = manifest::classify(&raw, None, "stored index") {
            for e in &idx.manifests {
                let Ok(ed) = e.digest.parse::<Digest>() else {
                    continue;
                };
                if let Some(m) = store.read_blob(&ed).ok().and_then(|raw| fits(&raw)) {
                    return Some(m);
                }
            }
        }
    }
    None
}

fn build_manifest(
    store: &Store,
    id: &Digest,
    layers: &[LayerBlob],
) -> Result<(Vec<u8>, String), RegistryError> {
    let docker = layers
        .iter()
        .any(|l| l.media_type.starts_with("application/vnd.docker."));
    let (mt, config_mt) = if docker {
        (manifest::DOCKER_MANIFEST, manifest::DOCKER_CONFIG)
    } else {
        (manifest::OCI_MANIFEST, manifest::OCI_CONFIG)
    };
    let config_size = store.read_blob(id)?.len() as u64;
    let m = manifest::ImageManifest {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        artifact_type: None,
        config: Descriptor {
            media_type: config_mt.to_string(),
            digest: id.to_string(),
            size: config_size,
            platform: None,
            annotations: None,
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.digest.clone(),
                size: l.size,
                platform: None,
                annotations: None,
            })
            .collect(),
    };
    let raw = serde_json::to_vec_pretty(&m)
        .map_err(|e| RegistryError::Protocol(format!("encoding the manifest: {e}")))?;
    Ok((raw, mt.to_string()))
}

fn location(reg: &Registry, resp: &reqwest::blocking::Response) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol("an upload answer has no Location".into()))?;
    Ok(reg.url(loc))
}

fn with_digest(loc: &str, d: &Digest) -> String {
    let sep = if loc.contains('?') { '&' } else { '?' };
    format!("{loc}{sep}digest={d}")
}

/// What every blob upload of one push shares.
pub(crate) struct BlobPusher<'a> {
    pub(crate) reg: &'a Registry,
    pub(crate) repo: &'a str,
    /// Repositories of this registry to mount the blob from.
    sources: &'a [String],
    blobs: &'a Blobs,
    chunk: Option<u64>,
    cancel: &'a crate::Cancel,
    progress: Progress<'a>,
}

impl BlobPusher<'_> {
    pub(crate) fn blob(&self, u: &Upload) -> Result<(), RegistryError> {
        let BlobPusher {
            reg,
            repo,
            sources,
            blobs,
            chunk,
            cancel,
            progress,
        } = *self;
        let id = short(&u.digest.to_string());
        let layer = !u.media_type.is_empty();
        let event = |status| {
            if layer {
                progress(Event::Layer {
                    id: id.clone(),
                    status,
                })
            }
        };
        let scope = Scope::push(repo);
        let head = reg.url(&format!("/v2/{repo}/blobs/{}", u.digest));
        let resp = reg.send(&scope, |c| c.head(&head))?;
        if resp.status().is_success() {
            event(LayerStatus::AlreadyExists);
            return Ok(());
        }
        let mut loc = None;
        for src in sources {
            let url = reg.url(&format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={src}",
                u.digest
            ));
            let resp = reg.send(&scope.clone().and_pull(src), |c| {
                c.post(&url).header(CONTENT_LENGTH, 0)
            })?;
            match resp.status().as_u16() {
                201 => {
                    event(LayerStatus::Mounted(src.clone()));
                    return Ok(());
                }
                202 => {
                    loc = Some(location(reg, &resp)?);
                    break;
                }
                _ => {}
            }
        }
        let mut loc = match loc {
            Some(l) => l,
            None => {
                let url = reg.url(&format!("/v2/{repo}/blobs/uploads/"));
                let resp = reg.send(&scope, |c| c.post(&url).header(CONTENT_LENGTH, 0))?;
                if resp.status().as_u16() != 202 {
                    return Err(status_error(
                        &format!("starting the upload of {}", u.digest),
                        resp,
                    ));
                }
                location(reg, &resp)?
            }
        };
        let path = blobs.path(&u.digest);
        event(LayerStatus::Progress(0, u.size));
        let resp = match chunk {
            Some(n) if u.size > n => {
                let mut f = std::fs::File::open(&path).map_err(RegistryError::io(&path))?;
                let mut start = 0u64;
                let mut buf = Vec::new();
                while start < u.size {
                    cancel.check()?;
                    buf.clear();
                    (&mut f)
                        .take(n)
                        .read_to_end(&mut buf)
                        .map_err(RegistryError::io(&path))?;
                    if buf.is_empty() {
                        return Err(RegistryError::Protocol(format!(
                            "blob {} is shorter than recorded",
                            u.digest
                        )));
                    }
                    let end = start + buf.len() as u64 - 1;
                    let url = loc.clone();
                    let resp = reg.send(&scope, |c| {
                        c.patch(&url)
                            .timeout(upload_timeout(reg.idle_timeout(), buf.len() as u64))
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, format!("{start}-{end}"))
                            .body(buf.clone())
                    })?;
                    if resp.status().as_u16() != 202 {
                        return Err(status_error(
                            &format!("uploading bytes {start}-{end} of {}", u.digest),
                            resp,
                        ));
                    }
                    loc = location(reg, &resp)?;
                    start = end + 1;
                    event(LayerStatus::Progress(start, u.size));
                }
                let url = with_digest(&loc, &u.digest);
                reg.send(&scope, |c| c.put(&url).header(CONTENT_LENGTH, 0))?
            }
            _ => {
                // The blob is mapped and handed to the HTTP stack whole: no
                // copies through small buffers on reqwest's one I/O thread.
                let url = with_digest(&loc, &u.digest);
                let f = std::fs::File::open(&path).map_err(RegistryError::io(&path))?;
                let map = sys::mmap::MappedFile::map(&f).map_err(RegistryError::io(&path))?;
                if map.as_ref().len() as u64 != u.size {
                    return Err(RegistryError::Protocol(format!(
                        "blob {} is {} bytes on disk, {} recorded",
                        u.digest,
                        map.as_ref().len(),
                        u.size
                    )));
                }
                let bytes = bytes::Bytes::from_owner(map);
                cancel.check()?;
                let sent = reg.send(&scope, |c| {
                    let body = if cancel.is_set() {
                        Body::sized(
                            Cancellable {
                                bytes: bytes.clone(),
                                cancel: cancel.clone(),
                            },
                            u.size,
                        )
                    } else {
                        Body::from(bytes.clone())
                    };
                    c.put(&url)
                        .timeout(upload_timeout(reg.idle_timeout(), u.size))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(body)
                });
                // A body cut short by the cancel fails the request.
                cancel.check()?;
                sent?
            }
        };
        if resp.status().as_u16() != 201 && !resp.status().is_success() {
            return Err(status_error(
                &format!("finishing the upload of {}", u.digest),
                resp,
            ));
        }
        event(LayerStatus::Complete);
        Ok(())
    }
}

/// A blob as a request body that stops (an error, which aborts the
/// request) once its push is cancelled: the HTTP stack reads it in small
/// pieces, so a cancel is seen within one of them.
struct Cancellable {
    bytes: bytes::Bytes,
    cancel: crate::Cancel,
}

impl Read for Cancellable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.cancelled() {
            return Err(std::io::Error::other("the push was cancelled"));
        }
        let n = buf.len().min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        bytes::Buf::advance(&mut self.bytes, n);
        Ok(n)
    }
}
