//! Pull-through cache: `berth registry serve --proxy https://upstream
//! [--proxy-ttl 10m]`. A pull of a manifest or blob the registry lacks
//! fetches it from the upstream (berth's registry client: its TLS settings,
//! `certs.d`, credentials from `berth login UPSTREAM`, bearer tokens),
//! verifies it and keeps it; what is here is served from here.
//!
//! - Blobs and manifests by digest are content-addressed: cached forever
//!   (until gc, when nothing references them).
//! - A tag is asked of the upstream again once its file here is older than
//!   the TTL (the tag file's time is when it was last confirmed); when the
//!   upstream cannot be reached the cached tag is served (a mirror that
//!   keeps working offline), when the upstream says the tag is gone it is
//!   gone here too.
//! - Pushes are refused: the upstream is the source of truth.
//!
//! Repository names pass through unchanged, so the registry is usable as
//! a mirror in `registries.toml` (`mirrors = ["127.0.0.1:5000"]`).
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use model::{Algorithm, AnyDigest, Digest};
use sha2::{Digest as _, Sha256};

use super::errors::{ApiError, Code};
use super::gc::write_guard;
use super::storage::{Link, Name, Storage};
use crate::client::Scope;
use crate::{manifest, Config, Credentials, Registry, RegistryError};

/// How long a cached tag is served before the upstream is asked again.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// The upstream and how long tags stay fresh.
pub struct Proxy {
    upstream: Arc<Registry>,
    /// As given (for messages).
    url: String,
    ttl: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proxy({}, ttl {:?})", self.url, self.ttl)
    }
}

fn upstream_error(url: &str, e: RegistryError) -> ApiError {
    ApiError::new(Code::Unknown)
        .msg(format!("the upstream {url} failed: {e}"))
        .status(axum::http::StatusCode::BAD_GATEWAY)
}

fn io_error(what: &str, e: io::Error) -> ApiError {
    ApiError::new(Code::Unknown).msg(format!("{what}: {e}"))
}

impl Proxy {
    /// `url`: `https://host[:port][/prefix]` (or `http://` for a
    /// registry listed `insecure` in registries.toml, or on loopback).
    pub fn new(
        url: &str,
        ttl: Duration,
        cfg: &Config,
        creds: &Credentials,
    ) -> Result<Proxy, RegistryError> {
        let location = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "--proxy {url:?}: give the upstream registry's URL, e.g. https://registry.example.com"
                ))
            })?
            .trim_end_matches('/');
        if location.is_empty() {
            return Err(RegistryError::Unsupported(format!(
                "--proxy {url:?}: no host in it"
            )));
        }
        let host = location.split('/').next().unwrap_or(location);
        if url.starts_with("http://") && !cfg.insecure(host) {
            return Err(RegistryError::Unsupported(format!(
                "--proxy {url}: plain HTTP to {host} needs `insecure = true` for it in registries.toml"
            )));
        }
        Ok(Proxy {
            upstream: Arc::new(Registry::new(cfg, creds, location)?),
            url: url.to_string(),
            ttl,
        })
    }

    /// The upstream's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Make sure `name`'s manifest `reference` (tag or digest) is here and,
    /// for a tag, fresh. Blocking: call off the async threads.
    pub fn manifest(&self, st: &Storage, name: &Name, reference: &str) -> Result<(), ApiError> {
        if let Ok(d) = reference.parse::<Digest>() {
            if st.manifest_type(name, &AnyDigest::from(&d)).is_some() {
                return Ok(());
            }
            return match manifest::fetch(&self.upstream, name.as_str(), reference, Some(&d)) {
                Ok(f) => self.keep_manifest(st, name, None, &f),
                // Let the handler answer MANIFEST_UNKNOWN.
                Err(RegistryError::ManifestUnknown { .. }) => Ok(()),
                Err(e) => Err(upstream_error(&self.url, e)),
            };
        }
        // A reference outside the tag grammar names no file: the handler
        // answers it (MANIFEST_INVALID / MANIFEST_UNKNOWN).
        if !super::storage::tag_ok(reference) {
            return Ok(());
        }
        let tag_file = st.repo_dir(name).join("_tags").join(reference);
        let fresh = fs::metadata(&tag_file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age < self.ttl);
        if fresh && st.tag(name, reference).is_some() {
            return Ok(());
        }
        match manifest::fetch(&self.upstream, name.as_str(), reference, None) {
            Ok(f) => self.keep_manifest(st, name, Some(reference), &f),
            Err(RegistryError::ManifestUnknown { .. }) => {
                let _guard = write_guard(st.root()).map_err(|e| io_error("gc lock", e))?;
                st.remove_tag(name, reference)
                    .map_err(|e| io_error("removing a tag the upstream no longer has", e))?;
                Ok(())
            }
            // Offline: serve what is cached, if anything.
            Err(_) if st.tag(name, reference).is_some() => Ok(()),
            Err(e) => Err(upstream_error(&self.url, e)),
        }
    }

    fn keep_manifest(
        &self,
        st: &Storage,
        name: &Name,
        tag: Option<&str>,
        f: &manifest::Fetched,
    ) -> Result<(), ApiError> {
        let _guard = write_guard(st.root()).map_err(|e| io_error("gc lock", e))?;
        let d = st
            .put_small_blob(&f.raw, Algorithm::Sha256)
            .map_err(|e| io_error("storing the manifest", e))?;
        st.link(name, Link::Manifest, &d, f.media_type.as_bytes())
            .map_err(|e| io_error("linking the manifest", e))?;
        if let Some(t) = tag {
            st.set_tag(name, t, &d)
                .map_err(|e| io_error("storing the tag", e))?;
        }
        Ok(())
    }

    /// Make sure blob `d` is here and linked into `name`. Blocking.
    pub fn blob(&self, st: &Storage, name: &Name, d: &Digest) -> Result<(), ApiError> {
        let any = AnyDigest::from(d);
        if st.blob_size(&any).is_some() {
            if !st.linked(name, Link::Layer, &any) {
                let _guard = write_guard(st.root()).map_err(|e| io_error("gc lock", e))?;
                st.link(name, Link::Layer, &any, b"")
                    .map_err(|e| io_error("linking the blob", e))?;
            }
            return Ok(());
        }
        let url = self.upstream.url(&format!(
            "/v2/{}/blobs/{d}",
            self.upstream.repo_path(name.as_str())
        ));
        let resp = match self
            .upstream
            .send(&Scope::pull(name.as_str()), |c| c.get(&url))
        {
            Ok(r) => r,
            Err(e) => return Err(upstream_error(&self.url, e)),
        };
        match resp.status().as_u16() {
            200 => {}
            // The handler answers BLOB_UNKNOWN.
            404 => return Ok(()),
            s => {
                return Err(upstream_error(
                    &self.url,
                    RegistryError::Status {
                        what: format!("GET blob {d}"),
                        status: s,
                        detail: String::new(),
                    },
                ))
            }
        }
        // Into an upload dir of our own (its lock held, so a server start
        // meanwhile does not take it for a dead one), verified, committed.
        let dir = st
            .uploads_dir()
            .join(format!("proxy-{:x}", rand::random::<u64>()));
        fs::create_dir_all(&dir).map_err(|e| io_error("making an upload dir", e))?;
        let r = (|| {
            let lock = File::create(dir.join("lock")).map_err(|e| io_error("upload lock", e))?;
            lock.lock().map_err(|e| io_error("upload lock", e))?;
            let data = dir.join("data");
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&data)
                .map_err(|e| io_error("upload data", e))?;
            let got = copy_hashing(resp, &mut file).map_err(|e| {
                upstream_error(
                    &self.url,
                    RegistryError::Protocol(format!("reading blob {d}: {e}")),
                )
            })?;
            if got != *d {
                return Err(upstream_error(
                    &self.url,
                    RegistryError::Corrupt {
                        what: format!("blob {d}"),
                        reason: format!("the upstream sent content of digest {got}"),
                    },
                ));
            }
            let _guard = write_guard(st.root()).map_err(|e| io_error("gc lock", e))?;
            st.commit_blob(&data, &file, &any)
                .map_err(|e| io_error("storing the blob", e))?;
            st.link(name, Link::Layer, &any, b"")
                .map_err(|e| io_error("linking the blob", e))
        })();
        let _ = fs::remove_dir_all(&dir);
        r
    }
}

fn copy_hashing(mut from: impl Read, to: &mut File) -> io::Result<Digest> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    Ok(Digest::from_sha256_bytes(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_outside_the_grammar_touch_nothing_and_ask_no_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let st = Storage::open(dir.path()).unwrap();
        let cfg = Config::load(dir.path()).unwrap();
        let creds = Credentials::new(dir.path());
        // Port 1 on loopback: any request to it would fail.
        let p = Proxy::new("http://127.0.0.1:1", DEFAULT_TTL, &cfg, &creds).unwrap();
        let name = Name::parse("a/b").unwrap();
        for bad in ["..", ".", "-x", ""] {
            p.manifest(&st, &name, bad).unwrap();
        }
        assert!(!st.repo_dir(&name).exists());
        // A valid tag does ask, and fails clearly: nothing cached.
        let e = p.manifest(&st, &name, "1").unwrap_err();
        assert_eq!(e.code, Code::Unknown);
        let e = Proxy::new("ftp://x", DEFAULT_TTL, &cfg, &creds).unwrap_err();
        assert!(e.to_string().contains("--proxy"), "{e}");
    }
}
