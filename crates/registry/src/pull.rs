//! `pull`: manifest → config → layers, each layer downloaded, verified
//! and unpacked in one streaming pass, several at once.
//!
//! A layer's bytes go to `downloads/<hex>` as they arrive (see
//! `store::download`) and on to the hasher and the unpacker. A connection
//! that breaks mid-layer is reopened with `Range: bytes=<offset>-`; a pull
//! killed mid-layer leaves the partial file, and the next pull replays it
//! from disk and asks the registry only for the rest. Nothing is visible
//! in the store until every layer is verified: the image row is written
//! in one transaction at the end.
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use model::digest::Hasher;
use model::{Digest, Reference};
use reqwest::blocking::Response;
use reqwest::header::{CONTENT_RANGE, RANGE};
use store::{Blobs, IngestedLayer, LayerBlob, Store};

use crate::client::{status_error, Registry, Scope};
use crate::manifest::{self, Descriptor, Kind, Platform};
use crate::{Config, Credentials, RegistryError};

/// Largest image config we accept.
const MAX_CONFIG: u64 = 32 << 20;
/// Reconnects in a row without receiving a byte before a layer fails.
const MAX_RETRIES: u32 = 5;

/// `pull` options.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--platform` (default: the host's, linux/amd64 here).
    pub platform: Option<Platform>,
    /// Layers downloaded at once (default: from the config).
    pub max_concurrent: Option<usize>,
    /// Stops the pull (every download, at its next read) and registers
    /// nothing; partial downloads stay for the next pull to resume.
    pub cancel: crate::Cancel,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image id (config digest).
    pub id: Digest,
    /// Digest of the manifest (or index) the reference points to.
    pub digest: Digest,
    /// False if the reference already pointed at this image.
    pub new: bool,
}

/// Progress of a pull or push, for the CLI to show.
#[derive(Debug, Clone)]
pub enum Event {
    /// The reference resolved; layers follow.
    Resolved {
        /// Tag or digest.
        reference: String,
        /// Repository (`library/busybox`).
        repository: String,
        /// Layer ids (12 hex digits), base first, and sizes.
        layers: Vec<(String, u64)>,
    },
    /// A push begins (before any layer is compressed).
    PushStarted {
        /// `host/repository`.
        repository: String,
    },
    /// Falling back from a mirror.
    MirrorFailed {
        /// The mirror.
        mirror: String,
        /// Why.
        reason: String,
    },
    /// A layer changed state.
    Layer {
        /// 12 hex digits of its blob digest.
        id: String,
        /// What happened.
        status: LayerStatus,
    },
}

/// The state of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// Nothing to do: in the store (pull) or in the registry (push).
    AlreadyExists,
    /// Bytes moved so far, of a total.
    Progress(u64, u64),
    /// Resuming a download from this offset.
    Resuming(u64),
    /// Reconnecting after a failure.
    Retrying(String),
    /// Done (pull: verified and unpacked; push: uploaded).
    Complete,
    /// Push: mounted from another repository.
    Mounted(String),
    /// Push: compressing a layer that is stored uncompressed.
    Compressing,
}

/// The progress callback.
pub type Progress<'a> = &'a (dyn Fn(Event) + Sync);

/// Pull `r` into `store`, trying the registry's mirrors first.
pub fn pull(
    store: &Store,
    cfg: &Config,
    creds: &Credentials,
    r: &Reference,
    opts: &PullOptions,
    progress: Progress,
) -> Result<PullOutcome, RegistryError> {
    let mut endpoints = cfg.mirrors(r.registry());
    endpoints.push(r.registry().to_string());
    let last = endpoints.len() - 1;
    for (i, loc) in endpoints.iter().enumerate() {
        let reg = Registry::new(cfg, creds, loc)?;
        match pull_from(store, cfg, &reg, r, opts, progress) {
            Ok(o) => return Ok(o),
            Err(e @ (RegistryError::Store(_) | RegistryError::Interrupted)) => return Err(e),
            Err(e) if i < last => progress(Event::MirrorFailed {
                mirror: loc.clone(),
                reason: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    unreachable!("the registry itself is the last endpoint")
}

fn pull_from(
    store: &Store,
    cfg: &Config,
    reg: &Registry,
    r: &Reference,
    opts: &PullOptions,
    progress: Progress,
) -> Result<PullOutcome, RegistryError> {
    let repo = r.repository();
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let top_ref = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = manifest::fetch(reg, repo, &top_ref, r.digest())?;
    let mut manifests = vec![top.clone()];
    let image = match &top.kind {
        Kind::Image(m) => m.clone(),
        Kind::Index(idx) => {
            let d = manifest::select(idx, &want, &r.to_string())?;
            let dd = d.parsed_digest()?;
            let m = manifest::fetch(reg, repo, &d.digest, Some(&dd))?;
            let Kind::Image(im) = &m.kind else {
                return Err(RegistryError::Unsupported(format!(
                    "the entry for {want} in the index of {r} is itself an index"
                )));
            };
            let im = im.clone();
            manifests.push(m);
            im
        }
    };
    // The config.
    let config_digest = image.config.parsed_digest()?;
    let config = fetch_small_blob(reg, repo, &image.config, MAX_CONFIG, "image config")?;
    let cfg_json: serde_json::Value = serde_json::from_slice(&config).map_err(|e| {
        RegistryError::Protocol(format!("the image config of {r} is not valid JSON: {e}"))
    })?;
    if matches!(top.kind, Kind::Image(_)) {
        if let Some(p) = &opts.platform {
            let actual = Platform {
                os: cfg_json["os"].as_str().unwrap_or("").to_string(),
                architecture: cfg_json["architecture"].as_str().unwrap_or("").to_string(),
                variant: cfg_json["variant"].as_str().map(str::to_string),
            };
            if !p.matches(&actual) {
                return Err(RegistryError::Unsupported(format!(
                    "image with reference {r} was found but does not match the specified platform: wanted {p}, actual: {actual}"
                )));
            }
        }
    }
    let diff_ids: Vec<Digest> = cfg_json["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if diff_ids.len() != image.layers.len() {
        return Err(RegistryError::Protocol(format!(
            "the image config of {r} lists {} layers, its manifest {}",
            diff_ids.len(),
            image.layers.len()
        )));
    }
    // Refused before anything is downloaded (the store refuses it anyway).
    if image.layers.len() > store::MAX_LAYERS {
        return Err(store::StoreError::TooDeep {
            layers: image.layers.len(),
        }
        .into());
    }
    let previous = store.resolve_image(&r.to_string()).ok().map(|i| i.id);
    progress(Event::Resolved {
        reference: top_ref,
        repository: repo.to_string(),
        layers: image
            .layers
            .iter()
            .map(|l| (short(&l.digest), l.size))
            .collect(),
    });

    opts.cancel.check()?;
    // What to fetch.
    let tmp = store.tmp_dir("pull")?;
    let mut jobs: Vec<Job> = Vec::new();
    let mut ready: HashMap<String, IngestedLayer> = HashMap::new();
    for (desc, diff) in image.layers.iter().zip(&diff_ids) {
        let digest = desc.parsed_digest()?;
        let blob = LayerBlob {
            digest: digest.to_string(),
            media_type: desc.media_type.clone(),
            size: desc.size,
        };
        let size = store.layer_size(diff)?;
        let have_blob = store.has_blob(&digest);
        if ready.contains_key(&desc.digest) || jobs.iter().any(|j| j.digest == digest) {
            continue;
        }
        match size {
            Some(size) if have_blob => {
                progress(Event::Layer {
                    id: short(&desc.digest),
                    status: LayerStatus::AlreadyExists,
                });
                ready.insert(
                    desc.digest.clone(),
                    IngestedLayer {
                        diff_id: diff.clone(),
                        size,
                        blob,
                        unpacked: None,
                        regen: None,
                    },
                );
            }
            _ => jobs.push(Job {
                desc: desc.clone(),
                digest,
                diff: diff.clone(),
                known_size: size,
                blob,
            }),
        }
    }
    let workers = opts
        .max_concurrent
        .unwrap_or_else(|| cfg.max_concurrent_downloads())
        .clamp(1, jobs.len().max(1));
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<_>>());
    let results = Mutex::new(Vec::new());
    let cancel = AtomicBool::new(false);
    let blobs = store.blobs();
    let ctx = Ctx {
        reg,
        repo,
        blobs: &blobs,
        tmp: tmp.path(),
        limits: store.limits(),
        cancel: &cancel,
        external: &opts.cancel,
        progress,
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                if opts.cancel.cancelled() {
                    cancel.store(true, Ordering::Relaxed);
                    break;
                }
                let Some(job) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
                    break;
                };
                let key = job.desc.digest.clone();
                let res = ctx.fetch(job);
                if res.is_err() {
                    cancel.store(true, Ordering::Relaxed);
                } else {
                    sys::faults::point("pull.layer-fetched");
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((key, res));
            });
        }
    });
    let mut first_err = None;
    for (key, res) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match res {
            Ok(l) => {
                ready.insert(key, l);
            }
            Err(RegistryError::Interrupted) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    // Gone while the last layers came in: nothing is registered.
    opts.cancel.check()?;
    let mut layers = Vec::new();
    for desc in &image.layers {
        let l = ready.get(&desc.digest).ok_or(RegistryError::Interrupted)?;
        layers.push(l.clone());
    }

    sys::faults::point("pull.before-register");
    // Register: layer blobs, config and manifests, then the image row.
    for l in &layers {
        if let Ok(d) = l.blob.digest.parse::<Digest>() {
            if !store.has_blob(&d) {
                blobs.adopt(&d)?;
            }
        }
    }
    store.put_blob_verified(&config, Some(&config_digest))?;
    for m in &manifests {
        store.put_blob_verified(&m.raw, Some(&m.digest))?;
    }
    let tags: Vec<Reference> = if r.digest().is_none() {
        vec![r.clone()]
    } else {
        Vec::new()
    };
    let repo_digest = format!("{}@{}", r.name(), top.digest);
    sys::faults::point("pull.blobs-stored");
    let id = store.register_image(&config, layers, &tags, &[repo_digest])?;
    drop(tmp);
    Ok(PullOutcome {
        new: previous.as_ref() != Some(&id),
        id,
        digest: top.digest,
    })
}

/// 12 hex digits of a digest string, as Docker shows layers.
pub fn short(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// GET a small blob (config) whole, verified.
fn fetch_small_blob(
    reg: &Registry,
    repo: &str,
    desc: &Descriptor,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let digest = desc.parsed_digest()?;
    if desc.size > limit {
        return Err(RegistryError::Protocol(format!(
            "the {what} is {} bytes, more than the {limit} accepted",
            desc.size
        )));
    }
    let url = reg.url(&format!(
        "/v2/{}/blobs/{}",
        reg.repo_path(repo),
        desc.digest
    ));
    let resp = reg.send(&Scope::pull(repo), |c| c.get(&url))?;
    if !resp.status().is_success() {
        return Err(status_error(
            &format!("fetching the {what} {}", desc.digest),
            resp,
        ));
    }
    let body = reg.read_limited(resp, limit, what)?;
    let got = Digest::of(&body);
    if got != digest || body.len() as u64 != desc.size {
        return Err(RegistryError::Corrupt {
            what: format!("the {what} {digest}"),
            reason: format!(
                "received {} bytes with digest {got}, expected {} bytes",
                body.len(),
                desc.size
            ),
        });
    }
    Ok(body)
}

struct Job {
    desc: Descriptor,
    digest: Digest,
    diff: Digest,
    /// Set if the layer is unpacked already (only the blob is missing).
    known_size: Option<u64>,
    blob: LayerBlob,
}

struct Ctx<'a> {
    reg: &'a Registry,
    repo: &'a str,
    blobs: &'a Blobs,
    tmp: &'a std::path::Path,
    /// The store's unpack limits.
    limits: store::layer::Limits,
    cancel: &'a AtomicBool,
    /// The caller's cancel (checked on every read).
    external: &'a crate::Cancel,
    progress: Progress<'a>,
}

impl Ctx<'_> {
    fn event(&self, desc: &Descriptor, status: LayerStatus) {
        (self.progress)(Event::Layer {
            id: short(&desc.digest),
            status,
        });
    }

    fn fetch(&self, job: Job) -> Result<IngestedLayer, RegistryError> {
        let dl = self.blobs.start_download(&job.digest)?;
        let unpacked = match dl {
            None => {
                // Another command fetched it meanwhile.
                let p = self.blobs.path(&job.digest);
                let f = File::open(&p).map_err(RegistryError::io(&p))?;
                self.unpack(&job, f)?
            }
            Some(mut dl) => {
                if dl.len > job.desc.size {
                    // Not what this blob can be: start again.
                    dl.file.set_len(0).map_err(RegistryError::io(dl.path()))?;
                    dl.len = 0;
                }
                if dl.len > 0 {
                    self.event(&job.desc, LayerStatus::Resuming(dl.len));
                }
                let prefix = dl.len;
                let reader = BlobReader {
                    ctx: self,
                    desc: &job.desc,
                    url: self.reg.url(&format!(
                        "/v2/{}/blobs/{}",
                        self.reg.repo_path(self.repo),
                        job.desc.digest
                    )),
                    file: &mut dl.file,
                    prefix,
                    offset: 0,
                    resp: None,
                    failures: 0,
                    since_open: 0,
                    reported: 0,
                };
                let mut hashing = Hashing {
                    inner: reader,
                    hasher: Hasher::new(),
                    count: 0,
                };
                let res = self.unpack(&job, &mut hashing);
                // Read the rest: after a successful unpack (padding), and
                // after a failed one unless the network failed, so that a
                // corrupt download is reported (and dropped) as such.
                let drained = match &res {
                    Err(
                        RegistryError::Interrupted
                        | RegistryError::Cancelled
                        | RegistryError::Connect { .. },
                    ) => None,
                    _ => Some(io::copy(&mut hashing, &mut io::sink())),
                };
                let count = hashing.count;
                let got = std::mem::take(&mut hashing.hasher).finish();
                match drained {
                    Some(Ok(_)) if got != job.digest || count != job.desc.size => {
                        let _ = dl.discard();
                        return Err(RegistryError::Corrupt {
                            what: format!("layer {}", job.digest),
                            reason: format!(
                                "received {count} bytes with digest {got}, expected {} bytes",
                                job.desc.size
                            ),
                        });
                    }
                    Some(Err(e)) => {
                        res?;
                        return Err(unwrap_read_error(e));
                    }

                    // Verified (or the unpack's own error, returned below).
                    _ => {}
                }
                let unpacked = match res {
                    Err(e) => {
                        // A bomb is refused again by every pull: nothing
                        // of it is kept for the next one to resume.
                        if let RegistryError::Store(store::StoreError::Layer(
                            store::layer::LayerError::Refused {
                                reason: store::layer::Refusal::Expands { .. },
                            },
                        )) = &e
                        {
                            let _ = dl.discard();
                        }
                        return Err(e);
                    }
                    Ok(u) => u,
                };
                self.blobs.finish_download(dl)?;
                unpacked
            }
        };
        self.event(&job.desc, LayerStatus::Complete);
        Ok(IngestedLayer {
            diff_id: job.diff.clone(),
            size: unpacked
                .as_ref()
                .map(|u| u.0)
                .or(job.known_size)
                .unwrap_or(0),
            blob: job.blob,
            unpacked: unpacked.map(|u| u.1),
            regen: None,
        })
    }

    /// Unpack (unless the layer is in the store already) and check the
    /// diff-id. Returns the size and directory.
    fn unpack(
        &self,
        job: &Job,
        reader: impl Read,
    ) -> Result<Option<(u64, std::path::PathBuf)>, RegistryError> {
        if job.known_size.is_some() {
            let mut reader = reader;
            io::copy(&mut reader, &mut io::sink()).map_err(unwrap_read_error)?;
            return Ok(None);
        }
        let compressed = Some(job.desc.size);
        let (u, dir) = store::unpack_layer_in(self.tmp, reader, self.limits, compressed).map_err(
            |e| match e {
                store::StoreError::Layer(store::layer::LayerError::Read { source })
                    if source.get_ref().is_some_and(|s| s.is::<Wrapped>()) =>
                {
                    unwrap_read_error(source)
                }
                e => RegistryError::Store(e),
            },
        )?;
        if u.diff_id != job.diff {
            return Err(RegistryError::Corrupt {
                what: format!("layer {}", job.digest),
                reason: format!(
                    "its content has diff-id {}, the image config says {}",
                    u.diff_id, job.diff
                ),
            });
        }
        Ok(Some((u.size, dir)))
    }
}

/// A registry error carried through `io::Error` (the unpacker's reader).
#[derive(Debug)]
struct Wrapped(Mutex<Option<RegistryError>>);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => write!(f, "{e}"),
            None => write!(f, "registry error"),
        }
    }
}

impl std::error::Error for Wrapped {}

fn wrap(e: RegistryError) -> io::Error {
    io::Error::other(Wrapped(Mutex::new(Some(e))))
}

fn unwrap_read_error(e: io::Error) -> RegistryError {
    if let Some(w) = e.get_ref().and_then(|s| s.downcast_ref::<Wrapped>()) {
        if let Some(inner) = w.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return inner;
        }
    }
    RegistryError::Protocol(format!("reading a layer: {e}"))
}

struct Hashing<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A layer blob as a stream: the partial file's bytes first, then the
/// registry's from where they stop, appended to the partial file as they
/// arrive; reconnecting with a Range request when the connection fails.
struct BlobReader<'a> {
    ctx: &'a Ctx<'a>,
    desc: &'a Descriptor,
    url: String,
    file: &'a mut File,
    /// Bytes of the partial file to replay.
    prefix: u64,
    /// Bytes delivered so far.
    offset: u64,
    resp: Option<Response>,
    failures: u32,
    /// Bytes received since the connection was (re)opened.
    since_open: u64,
    reported: u64,
}

impl BlobReader<'_> {
    fn open(&mut self) -> Result<Response, RegistryError> {
        let offset = self.offset;
        let url = self.url.clone();
        let resp = self.ctx.reg.send(&Scope::pull(self.ctx.repo), |c| {
            let r = c.get(&url);
            if offset > 0 {
                r.header(RANGE, format!("bytes={offset}-"))
            } else {
                r
            }
        })?;
        match resp.status().as_u16() {
            200 if offset == 0 => Ok(resp),
            200 => {
                // The registry ignored the Range header: skip what we have.
                let mut resp = resp;
                let skipped = io::copy(&mut (&mut resp).take(offset), &mut io::sink())
                    .map_err(|e| self.read_error(e))?;
                if skipped < offset {
                    return Err(RegistryError::Connect {
                        host: self.ctx.reg.host().to_string(),
                        reason: "the blob ended early".into(),
                    });
                }
                Ok(resp)
            }
            206 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(RegistryError::Protocol(format!(
                        "asked for blob {} from byte {offset}, the registry sent Content-Range {:?}",
                        self.desc.digest,
                        resp.headers().get(CONTENT_RANGE)
                    )));
                }
                Ok(resp)
            }
            404 => Err(RegistryError::Status {
                what: format!("fetching layer {}", self.desc.digest),
                status: 404,
                detail: ": blob unknown to the registry".into(),
            }),
            _ => Err(status_error(
                &format!("fetching layer {}", self.desc.digest),
                resp,
            )),
        }
    }

    fn retry(&mut self, why: RegistryError) -> io::Result<()> {
        self.resp = None;
        self.failures += 1;
        if self.failures > MAX_RETRIES {
            // A stall says itself what went wrong and what to do.
            if let RegistryError::Stalled { .. } = why {
                return Err(wrap(why));
            }
            let reason = match why {
                RegistryError::Connect { reason, .. } => reason,
                e => e.to_string(),
            };
            return Err(wrap(RegistryError::Connect {
                host: self.ctx.reg.host().to_string(),
                reason: format!(
                    "layer {} failed after {MAX_RETRIES} retries at byte {} of {}: {reason}",
                    self.desc.digest, self.offset, self.desc.size
                ),
            }));
        }
        let reason = why.to_string();
        self.ctx.event(self.desc, LayerStatus::Retrying(reason));
        std::thread::sleep(Duration::from_millis(100 << (self.failures - 1)));
        Ok(())
    }

    /// A failed read of the body, as the error to retry on.
    fn read_error(&self, e: io::Error) -> RegistryError {
        if crate::client::stalled_read(&e).is_some() {
            self.ctx.reg.stalled_reading()
        } else {
            RegistryError::Connect {
                host: self.ctx.reg.host().to_string(),
                reason: e.to_string(),
            }
        }
    }
}

fn retryable(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Connect { .. }
            | RegistryError::Stalled { .. }
            | RegistryError::Status {
                status: 408 | 429 | 500..=599,
                ..
            }
    )
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ctx.external.cancelled() {
            return Err(wrap(RegistryError::Cancelled));
        }
        if self.ctx.cancel.load(Ordering::Relaxed) {
            return Err(wrap(RegistryError::Interrupted));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.offset < self.prefix {
            let want = buf.len().min((self.prefix - self.offset) as usize);
            let n = self.file.read_at(&mut buf[..want], self.offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the partial download shrank",
                ));
            }
            self.offset += n as u64;
            return Ok(n);
        }
        let total = self.desc.size;
        loop {
            if self.resp.is_none() {
                if self.offset >= total {
                    return Ok(0);
                }
                match self.open() {
                    Ok(r) => {
                        self.resp = Some(r);
                        self.since_open = 0;
                    }
                    Err(e) if retryable(&e) => {
                        self.retry(e)?;
                        continue;
                    }
                    Err(e) => return Err(wrap(e)),
                }
            }
            let resp = self.resp.as_mut().expect("opened above");
            // Read one byte past the declared size to notice a registry
            // that sends more.
            let want = buf.len().min((total - self.offset + 1) as usize);
            match resp.read(&mut buf[..want]) {
                Ok(0) if self.offset >= total => {
                    self.resp = None;
                    return Ok(0);
                }
                Ok(0) => self.retry(RegistryError::Connect {
                    host: self.ctx.reg.host().to_string(),
                    reason: format!("the connection ended at byte {} of {total}", self.offset),
                })?,
                Ok(n) if self.offset + n as u64 > total => {
                    return Err(wrap(RegistryError::Corrupt {
                        what: format!("layer {}", self.desc.digest),
                        reason: format!("the registry sent more than the declared {total} bytes"),
                    }))
                }
                Ok(n) => {
                    self.file.write_all(&buf[..n])?;
                    self.offset += n as u64;
                    // A connection counts as good once it brought 64 KiB:
                    // a server that sends a byte after each reconnect and
                    // then stalls runs out of retries.
                    self.since_open += n as u64;
                    if self.since_open >= 64 << 10 {
                        self.failures = 0;
                    }
                    if self.offset - self.reported >= 256 * 1024 || self.offset == total {
                        self.reported = self.offset;
                        self.ctx
                            .event(self.desc, LayerStatus::Progress(self.offset, total));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = self.read_error(e);
                    self.retry(why)?
                }
            }
        }
    }
}

/// Every tag of `r`'s repository (`GET /v2/NAME/tags/list`, following
/// `Link: <…>; rel="next"` pages), as `pull --all-tags` needs.
pub fn list_tags(
    cfg: &Config,
    creds: &Credentials,
    r: &Reference,
) -> Result<Vec<String>, RegistryError> {
    let reg = Registry::new(cfg, creds, r.registry())?;
    let repo = r.repository();
    let mut url = reg.url(&format!("/v2/{}/tags/list?n=1000", reg.repo_path(repo)));
    let mut tags = Vec::new();
    // A bound on pages: a registry that keeps answering "next" is not
    // followed for ever.
    for _ in 0..1000 {
        let resp = reg.send(&Scope::pull(repo), |c| c.get(&url))?;
        if !resp.status().is_success() {
            return Err(crate::client::status_error(
                &format!("listing the tags of {repo}"),
                resp,
            ));
        }
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .filter(|l| l.contains("rel=\"next\""))
            .and_then(|l| l.split_once('<'))
            .and_then(|(_, rest)| rest.split_once('>'))
            .map(|(u, _)| u.to_string());
        let body = reg.read_limited(resp, 16 << 20, "tag list")?;
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("the tag list of {repo}: {e}")))?;
        for t in doc["tags"].as_array().into_iter().flatten() {
            if let Some(t) = t.as_str() {
                tags.push(t.to_string());
            }
        }
        match next {
            Some(n) => url = reg.url(&n),
            None => break,
        }
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}
