//! `--store`: berth's own image store served read-only, without copying a
//! byte. Each tagged image is served under its repository path
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
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use model::Digest;

use super::storage::{tag_ok, Name};
use crate::push::{image_manifest, Compression};
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
    pub(crate) fn open(root: &Path) -> Result<Local, RegistryError> {
        let store = store::Store::open(root)?;
        let l = Local {
            root: root.to_path_buf(),
            store: Mutex::new(store),
            index: RwLock::new((Vec::new(), Arc::new(Index::default()))),
            rebuilding: tokio::sync::Mutex::new(()),
        };
        l.rebuild();
        Ok(l)
    }

    /// The store's blob file for `d`.
    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
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
                match image_manifest(&store, &img, Compression::Gzip, &mut |_| Ok(())) {
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
