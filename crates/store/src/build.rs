//! The build cache: each build step that made a layer is an image (its
//! config and layers so far) recorded under the step's cache key. Cache
//! images are hidden from `images` unless tagged, kept by `image prune`,
//! and removed by `builder prune`.
use std::collections::HashSet;
use std::io::Read;

use chrono::Utc;
use model::{Digest, Reference};
use rusqlite::{params, OptionalExtension};

use crate::image::{IngestedLayer, PruneReport};
use crate::{Store, StoreError, TmpDir};

impl Store {
    /// The image recorded for a cache key, if it still exists.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>, StoreError> {
        let id: Option<String> = self
            .conn()
            .prepare_cached(
                "SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key = ?1",
            )?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(id.and_then(|s| s.parse().ok()))
    }

    /// Record `image` under `key`.
    pub fn cache_put(&self, key: &str, image: &Digest) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?1, ?2, ?3)",
            params![key, image.to_string(), Utc::now().to_rfc3339()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Ids of the images the build cache holds.
    pub fn cache_images(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT DISTINCT image_id FROM build_cache")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Ingest a layer tar stream for a build step (see `ingest_layer`).
    /// Its blob is not fsynced here: the build calls
    /// [`Store::sync_blobs`] before it reports success, while later steps
    /// run meanwhile.
    pub fn ingest_build_layer(
        &self,
        tmp: &TmpDir,
        reader: impl Read,
    ) -> Result<IngestedLayer, StoreError> {
        self.ingest_layer_with(tmp, reader, None, None, true)
    }

    /// Register a built image: `base`'s layers (none for `scratch`) plus
    /// `new_layers`, with `config` (a whole image config whose
    /// `rootfs.diff_ids` is filled in here), tagged `tags`.
    pub fn register_built(
        &self,
        base: Option<&Digest>,
        new_layers: Vec<IngestedLayer>,
        mut config: serde_json::Value,
        tags: &[Reference],
    ) -> Result<Digest, StoreError> {
        let tmp = self.tmp_dir("build-image")?;
        let mut layers = Vec::new();
        if let Some(b) = base {
            let rec = self.resolve_image(&b.to_string())?;
            for (d, blob) in rec.diff_ids.iter().zip(rec.layer_blobs.iter()) {
                layers.push(IngestedLayer {
                    diff_id: d.clone(),
                    size: self.layer_size(d)?.unwrap_or(0),
                    blob: blob.clone(),
                    unpacked: None,
                });
            }
        }
        layers.extend(new_layers);
        let diffs: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diffs});
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        self.put_blob(tmp.path(), &bytes)?;
        let id = self.register_image(&bytes, layers, tags, &[])?;
        drop(tmp);
        Ok(id)
    }

    /// `builder prune`: forget the cache and delete its images that no tag
    /// and no container uses. What was freed.
    pub fn builder_prune(&self) -> Result<PruneReport, StoreError> {
        let cached = self.cache_images()?;
        let tx = self.write_tx()?;
        tx.execute("DELETE FROM build_cache", [])?;
        self.delete_unused_images(tx, |img| {
            cached.contains(&img.id.to_string()) && img.repo_tags.is_empty()
        })
    }

    /// `builder prune --keep-storage`: drop the oldest cache entries (and
    /// their images nothing else uses) until the cache holds at most
    /// `keep` bytes.
    pub fn builder_prune_to(&self, keep: u64) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let order: Vec<String> = {
            let mut stmt = self.conn().prepare(
                "SELECT image_id, MIN(created) AS c FROM build_cache GROUP BY image_id ORDER BY c",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for image in order {
            if self.build_cache_size()? <= keep {
                break;
            }
            let tx = self.write_tx()?;
            tx.execute("DELETE FROM build_cache WHERE image_id = ?1", [&image])?;
            let mut doomed = Vec::new();
            if let Some(img) = self
                .records_for_prune()?
                .into_iter()
                .find(|i| i.id.to_string() == image)
            {
                if img.repo_tags.is_empty() && self.container_using(&tx, &img.id)?.is_none() {
                    let (files, freed) = self.delete_image(&tx, &img)?;
                    doomed = files;
                    report.reclaimed += freed;
                    report.deleted.push(img.id.clone());
                }
            }
            tx.commit()?;
            self.remove_files(doomed)?;
        }
        Ok(report)
    }

    /// Bytes of layers that only cache images hold (`system df`).
    pub fn build_cache_size(&self) -> Result<u64, StoreError> {
        let cached = self.cache_images()?;
        let images = self.records_for_prune()?;
        let mut kept: HashSet<Digest> = HashSet::new();
        for img in &images {
            if !cached.contains(&img.id.to_string()) || !img.repo_tags.is_empty() {
                kept.extend(img.diff_ids.iter().cloned());
            }
        }
        let mut only_cache: HashSet<Digest> = HashSet::new();
        for img in &images {
            if cached.contains(&img.id.to_string()) && img.repo_tags.is_empty() {
                only_cache.extend(img.diff_ids.iter().filter(|d| !kept.contains(*d)).cloned());
            }
        }
        let mut total = 0;
        for d in only_cache {
            total += self.layer_size(&d)?.unwrap_or(0);
        }
        Ok(total)
    }

    /// Forget cache entries whose image is gone (after `rmi`).
    pub(crate) fn cache_forget_image(
        tx: &rusqlite::Transaction<'_>,
        image: &Digest,
    ) -> Result<(), StoreError> {
        tx.execute(
            "DELETE FROM build_cache WHERE image_id = ?1",
            params![image.to_string()],
        )?;
        Ok(())
    }
}
