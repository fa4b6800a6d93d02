//! Build cache kept outside the store: `--cache-to`/`--cache-from`
//! directories and the inline cache in an image config.

use std::collections::BTreeMap;
use std::io::Write;

use model::{Digest, Reference};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use crate::Engine;

use super::{invalid, Builder, INLINE_CACHE};

impl Engine {
    /// `--cache-to type=local,dest=DIR`: the images of the steps this
    /// build used (an OCI layout archive, `cache.tar`) and their keys
    /// (`keys.json`).
    pub(super) fn export_cache(
        &self,
        dir: &std::path::Path,
        touched: &[(String, Digest)],
    ) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let mut images: Vec<String> = touched.iter().map(|(_, d)| d.to_string()).collect();
        images.sort();
        images.dedup();
        let tmp = dir.join(".cache.tar.tmp");
        {
            let f =
                std::fs::File::create(&tmp).map_err(|e| EngineError::io("writing the cache", e))?;
            let mut w = std::io::BufWriter::new(f);
            self.store()
                .save(&images, store::ArchiveFormat::Oci, &mut w)?;
            w.flush()
                .map_err(|e| EngineError::io("writing the cache", e))?;
        }
        std::fs::rename(&tmp, dir.join("cache.tar"))
            .map_err(|e| EngineError::io("writing the cache", e))?;
        let keys: BTreeMap<&str, String> = touched
            .iter()
            .map(|(k, d)| (k.as_str(), d.to_string()))
            .collect();
        std::fs::write(
            dir.join("keys.json"),
            serde_json::to_vec_pretty(&keys).unwrap_or_default(),
        )
        .map_err(|e| EngineError::io("writing the cache keys", e))?;
        Ok(())
    }

    /// `--cache-from REF`: the steps an inline cache in REF's config
    /// records become cache entries again: each an image of REF's first
    /// layers and the step's config.
    pub(super) fn import_inline_cache(&self, r: &str, out: &mut dyn Write) -> Result<()> {
        let id = match self.store().resolve_image(r) {
            Ok(img) => img.id,
            Err(store::StoreError::NotFound { .. }) => {
                let reference: Reference = r
                    .parse()
                    .map_err(|e| invalid("--cache-from", format!("{r:?}: {e}")))?;
                let _ = writeln!(out, "importing cache from {reference}");
                match self.pull(&reference, &Default::default(), &|_| {}) {
                    Ok(o) => o.id,
                    Err(e) => {
                        // As BuildKit: a cache that cannot be had is a warning.
                        let _ = writeln!(out, "WARN: --cache-from {r}: {e}");
                        return Ok(());
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        let config: Value = serde_json::from_slice(&self.store().image_config_raw(&id)?)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))?;
        let Some(entries) = config[INLINE_CACHE].as_array() else {
            let _ = writeln!(
                out,
                "note: {r} has no inline build cache (build it with --cache-to type=inline)"
            );
            return Ok(());
        };
        for e in entries {
            let (Some(key), Some(n)) = (e["key"].as_str(), e["layers"].as_u64()) else {
                continue;
            };
            let step = self
                .store()
                .register_prefix(&id, n as usize, e["config"].clone())?;
            self.store().cache_put(key, &step)?;
        }
        Ok(())
    }

    /// `--cache-from type=local,src=DIR`: load its images and keys.
    pub(super) fn import_cache(&self, dir: &std::path::Path, out: &mut dyn Write) -> Result<()> {
        let keys_path = dir.join("keys.json");
        let Ok(keys) = std::fs::read(&keys_path) else {
            let _ = writeln!(out, "note: no build cache in {}", dir.display());
            return Ok(());
        };
        let keys: BTreeMap<String, String> = serde_json::from_slice(&keys)
            .map_err(|e| invalid("--cache-from", format!("{}: {e}", keys_path.display())))?;
        let f = std::fs::File::open(dir.join("cache.tar"))
            .map_err(|e| invalid("--cache-from", format!("{}: {e}", dir.display())))?;
        self.store().load(std::io::BufReader::new(f))?;
        for (k, v) in keys {
            if let Ok(d) = v.parse::<Digest>() {
                if self.store().resolve_image(&d.to_string()).is_ok() {
                    self.store().cache_put(&k, &d)?;
                }
            }
        }
        Ok(())
    }
}

impl Builder<'_> {
    /// `--cache-to type=inline`: the result again, its config recording
    /// the steps this build used whose images are made of the result's
    /// first layers (their key, how many layers, their config).
    pub(super) fn embed_cache(&self, image: &Digest) -> Result<Digest> {
        let store = self.engine.store();
        let top = store.resolve_image(&image.to_string())?;
        let mut entries = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (key, id) in self.touched.borrow().iter() {
            if !seen.insert(key.clone()) {
                continue;
            }
            let Ok(step) = store.resolve_image(&id.to_string()) else {
                continue;
            };
            if !top.diff_ids.starts_with(&step.diff_ids) {
                continue;
            }
            let mut config: Value =
                serde_json::from_slice(&store.image_config_raw(id)?).map_err(|e| {
                    EngineError::io("reading an image config", std::io::Error::other(e))
                })?;
            if let Some(o) = config.as_object_mut() {
                o.remove("rootfs");
                o.remove(INLINE_CACHE);
            }
            entries.push(json!({"key": key, "layers": step.diff_ids.len(), "config": config}));
        }
        let mut config: Value = serde_json::from_slice(&store.image_config_raw(image)?)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))?;
        config[INLINE_CACHE] = json!(entries);
        let n = top.diff_ids.len();
        drop(store);
        Ok(self.engine.store().register_prefix(image, n, config)?)
    }
}
