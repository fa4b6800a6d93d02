//! `--store`: berth's own image store served, without copying a byte, and
//! (unless `--read-only`) pushed into. Each tagged image is served under its repository path
//! (`docker.io/library/bb:1` as `library/bb:1` and `bb:1`,
//! `127.0.0.1:5000/me/app:2` as `me/app:2`) and, when its registry is a
//! valid name component, under `<registry>/<path>` too (`quay.io/x/y`).
//! Blobs are the store's own files (`<root>/blobs/sha256/<hex>`); an
//! imported or built image's uncompressed layers are compressed once into
//! the store, as `push` does; the manifest is the one the image was pulled
//! with when it fits, else one made for it (kept in memory).
//!
//! The view is rebuilt when the store's database changes (its files' size
//! or time), checked before each request.
//!
//! Pushes: uploads are written under a store work dir (`tmp/registry-…`)
//! held (flock'ed) for the server's lifetime, so the store's recovery does
//! not take them and its blob gc waits (as for a pull under way). A
//! verified blob is staged there (`blobs/<hex>`), not renamed into the
//! store's `blobs/`, where other commands would sweep it as unreferenced.
//! A blob the store already has is answered present by HEAD in any
//! repository (the store has one content space), so pushing a local image
//! sends no layer bytes. A manifest PUT (an image manifest; indexes and
//! artifacts are refused) unpacks the staged layers as a pull does
//! ([`store::unpack_layer_in`], diff-ids checked against the config),
//! moves the staged blobs into the store, keeps the manifest as a blob and
//! registers the image in one transaction ([`store::Store::register_image`])
//! tagged `HOST/<name>:<tag>` — HOST the request's `Host` header, the name
//! the client pushed to — with the repo digest `HOST/<name>@<digest>`, so
//! the same manifest (same digest) is served back.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use model::Digest;

use super::storage::{tag_ok, Name};
use crate::push::{image_manifest, pulled_manifest, Compression};
use crate::RegistryError;

/// One repository of the view.
#[derive(Debug, Default)]
pub(crate) struct Repo {
    pub(crate) tags: BTreeMap<String, Digest>,
    pub(crate) manifests: HashSet<Digest>,
    pub(crate) blobs: HashSet<Digest>,
}

/// The store as a registry sees it.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) repos: BTreeMap<String, Repo>,
    /// Manifests by digest: (media type, bytes).
    pub(crate) manifests: HashMap<Digest, (String, Arc<Vec<u8>>)>,
}

/// What tells a changed store: the database files' sizes and times.
type Stamp = Vec<(u64, i128)>;

/// The served store.
pub(crate) struct Local {
    root: PathBuf,
    /// Pushes' work dir in the store's `tmp/` (None: read-only).
    staging: Option<store::TmpDir>,
    store: Mutex<store::Store>,
    index: RwLock<(Stamp, Arc<Index>)>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
}

fn stamp(root: &Path) -> Stamp {
    ["db/berth.db", "db/berth.db-wal"]
        .iter()
        .map(|f| match std::fs::metadata(root.join(f)) {
            Ok(m) => {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as i128)
                    .unwrap_or(0);
                (m.len(), t)
            }
            Err(_) => (0, 0),
        })
        .collect()
}

/// The names an image reference is served under.
fn names_of(r: &model::Reference) -> Vec<String> {
    let mut out = Vec::new();
    let path = r.repository();
    if Name::parse(path).is_some() {
        out.push(path.to_string());
    }
    if r.registry() == model::reference::DEFAULT_REGISTRY {
        if let Some(short) = path.strip_prefix("library/") {
            out.push(short.to_string());
        }
    } else {
        let full = format!("{}/{path}", r.registry());
        if Name::parse(&full).is_some() {
            out.push(full);
        }
    }
    out
}

impl Local {
    /// Open the store at `root` (berth's state root) and build the view.
    pub(crate) fn open(root: &Path, writable: bool) -> Result<Local, RegistryError> {
        let store = store::Store::open(root)?;
        let staging = if writable {
            let t = store.tmp_dir("registry")?;
            for d in ["uploads", "blobs"] {
                std::fs::create_dir(t.path().join(d))
                    .map_err(RegistryError::io(t.path().join(d)))?;
            }
            Some(t)
        } else {
            None
        };
        let l = Local {
            root: root.to_path_buf(),
            staging,
            store: Mutex::new(store),
            index: RwLock::new((Vec::new(), Arc::new(Index::default()))),
            rebuilding: tokio::sync::Mutex::new(()),
        };
        l.rebuild();
        Ok(l)
    }

    /// The store's blob file for `d`, else where a pushed blob is staged.
    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        let p = self.root.join("blobs/sha256").join(d.hex());
        match &self.staging {
            Some(t) if !p.exists() => t.path().join("blobs").join(d.hex()),
            _ => p,
        }
    }

    /// Whether the store has `d` or a push staged it.
    pub(crate) fn has(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Where uploads are written (None: read-only).
    pub(crate) fn uploads_dir(&self) -> Option<PathBuf> {
        self.staging.as_ref().map(|t| t.path().join("uploads"))
    }

    /// Register a pushed image manifest `raw` (its blobs staged or in the
    /// store, checked by the caller) as `host/name:tag` for each tag, in
    /// one transaction. Blocking.
    pub(crate) fn push_image(
        &self,
        host: &str,
        name: &str,
        tags: &[String],
        raw: &[u8],
        config: &Digest,
        layers: &[(Digest, u64, String)],
    ) -> Result<Digest, PushError> {
        let refs: Vec<model::Reference> = tags
            .iter()
            .map(|t| {
                format!("{host}/{name}:{t}").parse().map_err(|e| {
                    PushError::Invalid(format!(
                        "{host}/{name}:{t} is not an image reference berth can keep ({e}): push through a host name or address:port"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let cfg_bytes = std::fs::read(self.blob_path(config))
            .map_err(|e| PushError::Store(format!("reading config {config}: {e}")))?;
        let cfg: serde_json::Value = serde_json::from_slice(&cfg_bytes).map_err(|e| {
            PushError::Invalid(format!("the config blob {config} is not JSON: {e}"))
        })?;
        let diff_ids: Vec<Digest> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()?.parse().ok()).collect())
            .unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(PushError::Invalid(format!(
                "the config {config} lists {} layers (rootfs.diff_ids), the manifest {}",
                diff_ids.len(),
                layers.len()
            )));
        }
        let tmp = store
            .tmp_dir("push")
            .map_err(|e| PushError::Store(e.to_string()))?;
        let mut ingested = Vec::new();
        let mut unpacked: HashMap<Digest, store::IngestedLayer> = HashMap::new();
        for ((d, size, mt), diff) in layers.iter().zip(&diff_ids) {
            let blob = store::LayerBlob {
                digest: d.to_string(),
                media_type: mt.clone(),
                size: *size,
            };
            let known = store
                .layer_size(diff)
                .map_err(|e| PushError::Store(e.to_string()))?;
            let l = match (known, unpacked.get(d)) {
                (_, Some(l)) => l.clone(),
                (Some(sz), None) => store::IngestedLayer {
                    diff_id: diff.clone(),
                    size: sz,
                    blob,
                    unpacked: None,
                    regen: None,
                },
                (None, None) => {
                    let path = self.blob_path(d);
                    let f = std::fs::File::open(&path)
                        .map_err(|e| PushError::Store(format!("opening layer {d}: {e}")))?;
                    let (u, dir) = store::unpack_layer_in(
                        tmp.path(),
                        std::io::BufReader::with_capacity(128 * 1024, f),
                        store.limits(),
                        Some(*size),
                    )
                    .map_err(|e| PushError::Invalid(format!("layer {d}: {e}")))?;
                    if u.diff_id != *diff {
                        return Err(PushError::Invalid(format!(
                            "layer {d} has diff-id {}, the config says {diff}",
                            u.diff_id
                        )));
                    }
                    let l = store::IngestedLayer {
                        diff_id: diff.clone(),
                        size: u.size,
                        blob,
                        unpacked: Some(dir),
                        regen: None,
                    };
                    unpacked.insert(d.clone(), l.clone());
                    l
                }
            };
            ingested.push(l);
        }
        // Staged blobs into the store (our tmp lock keeps its gc off them
        // until the image names them), then the manifest, then the image.
        let blobs_dir = self.root.join("blobs/sha256");
        for d in layers.iter().map(|l| &l.0).chain([config]) {
            let dest = blobs_dir.join(d.hex());
            if dest.exists() {
                continue;
            }
            let src = self.blob_path(d);
            if let Err(e) = std::fs::rename(&src, &dest) {
                if !dest.exists() {
                    return Err(PushError::Store(format!("storing blob {d}: {e}")));
                }
            }
        }
        let md = store
            .put_blob_verified(raw, None)
            .map_err(|e| PushError::Store(e.to_string()))?;
        let repo_digest = format!("{host}/{name}@{md}");
        store
            .register_image(&cfg_bytes, ingested, &refs, &[repo_digest])
            .map_err(|e| PushError::Store(e.to_string()))?;
        drop(tmp);
        Ok(md)
    }

    /// The current view.
    pub(crate) fn index(&self) -> Arc<Index> {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Rebuild the view if the store changed since it was built.
    pub(crate) async fn refresh(self: &Arc<Self>) {
        let now = stamp(&self.root);
        if self.index.read().unwrap_or_else(|p| p.into_inner()).0 == now {
            return;
        }
        let _one = self.rebuilding.lock().await;
        if self.index.read().unwrap_or_else(|p| p.into_inner()).0 == stamp(&self.root) {
            return;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.rebuild()).await;
    }

    fn rebuild(&self) {
        // The stamp before reading: a change while building is seen next
        // time (compressing a layer changes it once, then it settles).
        let before = stamp(&self.root);
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let mut idx = Index::default();
        let images = match store.list_images() {
            Ok(i) => i,
            Err(e) => {
                tracing::error!("--store: listing images: {e}");
                super::log_event(
                    "cannot list the store's images",
                    serde_json::json!({ "error": e.to_string() }),
                );
                return;
            }
        };
        let mut refs: Vec<(String, store::ImageRecord)> = Vec::new();
        for img in images {
            for r in &img.repo_tags {
                refs.push((r.to_string(), img.clone()));
            }
        }
        refs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut made: HashMap<Digest, Option<(Digest, Vec<Digest>)>> = HashMap::new();
        for (rs, img) in refs {
            let Ok(r) = rs.parse::<model::Reference>() else {
                continue;
            };
            let Some(tag) = r.tag().filter(|t| tag_ok(t)) else {
                continue;
            };
            let entry = made.entry(img.id.clone()).or_insert_with(|| {
                // Pulled or pushed with these very layers (uncompressed
                // ones too, as a client pushed them): that manifest.
                let as_is = img.layer_blobs.iter().zip(&img.diff_ids).all(|(b, diff)| {
                    b.digest
                        .parse::<Digest>()
                        .is_ok_and(|d| store.has_layer_blob(diff, &d))
                });
                let kept = as_is
                    .then(|| pulled_manifest(&store, &img.id, &img.repo_digests, &img.layer_blobs))
                    .flatten();
                let manifest = match kept {
                    Some((raw, mt)) => Ok((img.layer_blobs.clone(), raw, mt)),
                    None => image_manifest(&store, &img, Compression::Gzip, &mut |_| Ok(())),
                };
                match manifest {
                    Ok((layers, raw, mt)) => {
                        let d = Digest::of(&raw);
                        let mut blobs: Vec<Digest> = layers
                            .iter()
                            .filter_map(|l| l.digest.parse().ok())
                            .collect();
                        blobs.push(img.id.clone());
                        idx.manifests.insert(d.clone(), (mt, Arc::new(raw)));
                        Some((d, blobs))
                    }
                    Err(e) => {
                        super::log_event(
                            "image not served",
                            serde_json::json!({ "image": rs, "error": e.to_string() }),
                        );
                        None
                    }
                }
            });
            let Some((d, blobs)) = entry.clone() else {
                continue;
            };
            for n in names_of(&r) {
                let repo = idx.repos.entry(n).or_default();
                repo.tags
                    .entry(tag.to_string())
                    .or_insert_with(|| d.clone());
                repo.manifests.insert(d.clone());
                repo.blobs.extend(blobs.iter().cloned());
            }
        }
        drop(store);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = (before, Arc::new(idx));
    }
}

impl Local {
    /// `--delete`: untag, through the store, every reference served as
    /// `name:tag` — each tag of `tags`, or (`digest`) each tag of `name`
    /// pointing at that manifest. The images stay (dangling once
    /// untagged) until `berth rmi` or `berth image prune`. Returns how
    /// many references went. Blocking.
    pub(crate) fn untag(
        &self,
        name: &str,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<usize, String> {
        let idx = self.index();
        let Some(repo) = idx.repos.get(name) else {
            return Ok(0);
        };
        let tags: Vec<&str> = match (tag, digest) {
            (Some(t), _) => repo.tags.contains_key(t).then_some(t).into_iter().collect(),
            (None, Some(d)) => repo
                .tags
                .iter()
                .filter(|(_, v)| *v == d)
                .map(|(t, _)| t.as_str())
                .collect(),
            (None, None) => Vec::new(),
        };
        if tags.is_empty() {
            return Ok(0);
        }
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let images = store.list_images().map_err(|e| e.to_string())?;
        let mut n = 0;
        for r in images.iter().flat_map(|i| i.repo_tags.iter()) {
            let hit =
                r.tag().is_some_and(|t| tags.contains(&t)) && names_of(r).iter().any(|x| x == name);
            if hit && store.untag(r).map_err(|e| e.to_string())? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Why a push into the store failed.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The client's content (manifest, config or layers).
    Invalid(String),
    /// The store.
    Store(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = |s: &str| names_of(&s.parse().unwrap());
        assert_eq!(n("bb:1"), ["library/bb", "bb"]);
        assert_eq!(n("127.0.0.1:5000/me/app:2"), ["me/app"]);
        assert_eq!(n("quay.io/x/y:1"), ["x/y", "quay.io/x/y"]);
    }
}
