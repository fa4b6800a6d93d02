//! The build cache: each build step that made a layer is an image (its
//! config and layers so far) recorded under the step's cache key. Cache
//! images are hidden from `images` unless tagged, kept by `image prune`,
//! and removed by `builder prune`.
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::Utc;
use model::{Digest, Reference};
use rusqlite::{params, OptionalExtension};

use crate::image::{IngestedLayer, LayerBlob, PruneReport};
use crate::{layer, Store, StoreError, TmpDir};

/// A writer that hashes and counts what it is given.
struct Digesting {
    hasher: model::digest::Hasher,
    count: u64,
}

impl Write for Digesting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.count += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Write a build layer's directory as its tar: entries sorted, overlayfs
/// whiteouts as `.wh.` entries, file times later than `clamp` written as
/// `clamp`. The same directory always gives the same bytes.
pub fn write_layer_dir(dir: &Path, clamp: u64, out: impl Write) -> std::io::Result<()> {
    let fd = crate::fsops::open_dir(dir)?;
    // Large writes: copying a file into a BufWriter reads it in blocks of
    // the buffer's size.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    crate::fsops::tar_layer_with(
        std::os::fd::AsFd::as_fd(&fd),
        &crate::fsops::LayerOpts {
            skip: Vec::new(),
            mtime_clamp: Some(clamp),
            ..Default::default()
        },
        &mut out,
    )?;
    out.flush()
}

/// The diff-id of a build layer's directory and the size of its tar
/// (see [`write_layer_dir`]). Needs no database: a build digests a layer
/// in a child process while its next step runs.
pub fn digest_layer_dir(dir: &Path, clamp: u64) -> std::io::Result<(Digest, u64)> {
    let mut d = Digesting {
        hasher: model::digest::Hasher::new(),
        count: 0,
    };
    write_layer_dir(dir, clamp, &mut d)?;
    Ok((d.hasher.finish(), d.count))
}

fn changed_on_disk(diff: &Digest) -> StoreError {
    StoreError::corrupt(
        format!("layer {}", diff.short()),
        "its files changed since it was built: remove the image and build it again \
         (berth builder prune; berth build --no-cache)",
    )
}

/// A build step's layer, unpacked under a tmp dir, not yet digested.
#[derive(Debug)]
pub struct UnpackedBuildLayer {
    /// The directory (in overlayfs format).
    pub dir: PathBuf,
    /// Bytes of its regular files.
    pub size: u64,
    /// Tar entries it had (0: the step changed nothing).
    pub entries: u64,
}

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

    /// Unpack a build step's layer tar into a new dir under `tmp`, without
    /// hashing the stream: the layer's diff-id is taken from the directory
    /// ([`digest_layer_dir`]), which is also how its blob is made again.
    pub fn unpack_build_layer(
        &self,
        tmp: &TmpDir,
        reader: impl Read,
        source: Option<layer::DataSource<'_>>,
    ) -> Result<UnpackedBuildLayer, StoreError> {
        let dir = tmp.path().join(format!(
            "layer-{}",
            &model::ContainerId::random().as_str()[..12]
        ));
        std::fs::create_dir(&dir).map_err(StoreError::io(&dir))?;
        let u = layer::unpack_from(
            reader,
            &dir,
            &layer::UnpackOptions {
                skip_digest: true,
                limits: Some(self.limits()),
                ..Default::default()
            },
            source,
        )?;
        Ok(UnpackedBuildLayer {
            dir,
            size: u.size,
            entries: u.entries,
        })
    }

    /// A digested build layer, ready to register: no blob is written (an
    /// export or a push makes it from the directory, see
    /// [`Store::ensure_layer_blob`]).
    pub fn build_layer(
        &self,
        u: UnpackedBuildLayer,
        (diff_id, tar_size): (Digest, u64),
        clamp: u64,
    ) -> Result<IngestedLayer, StoreError> {
        let unpacked = if self.has_layer(&diff_id)? {
            None
        } else {
            Some(u.dir)
        };
        Ok(IngestedLayer {
            blob: LayerBlob {
                digest: diff_id.to_string(),
                media_type: "application/vnd.oci.image.layer.v1.tar".to_string(),
                size: tar_size,
            },
            diff_id,
            size: u.size,
            unpacked,
            regen: Some(clamp),
        })
    }

    /// Write layer `diff`'s uncompressed tar (its blob `blob`) to `out`:
    /// from the blob, or for a build layer stored without one, from its
    /// directory, checked against `diff` as it is written.
    pub fn write_layer_tar(
        &self,
        diff: &Digest,
        blob: &Digest,
        out: &mut impl Write,
    ) -> Result<(), StoreError> {
        let path = self.blob_path(blob);
        if path.is_file() {
            let mut f = std::fs::File::open(&path).map_err(StoreError::io(&path))?;
            std::io::copy(&mut f, out).map_err(StoreError::io(&path))?;
            return Ok(());
        }
        let (dir, clamp) = self.regenerable(diff, blob)?;
        struct Tee<'a, W> {
            out: &'a mut W,
            digest: Digesting,
        }
        impl<W: Write> Write for Tee<'_, W> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let n = self.out.write(buf)?;
                self.digest.write_all(&buf[..n])?;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.out.flush()
            }
        }
        let mut tee = Tee {
            out,
            digest: Digesting {
                hasher: model::digest::Hasher::new(),
                count: 0,
            },
        };
        write_layer_dir(&dir, clamp, &mut tee).map_err(StoreError::io(&dir))?;
        if tee.digest.hasher.finish() != *diff {
            return Err(changed_on_disk(diff));
        }
        Ok(())
    }

    /// Is layer `diff`'s blob `blob` in the store, or can it be made (a
    /// build layer's, from its directory)?
    pub fn has_layer_blob(&self, diff: &Digest, blob: &Digest) -> bool {
        self.blob_path(blob).is_file() || self.regenerable(diff, blob).is_ok()
    }

    /// The directory and mtime clamp of a build layer stored without its
    /// blob.
    fn regenerable(&self, diff: &Digest, blob: &Digest) -> Result<(PathBuf, u64), StoreError> {
        let clamp: Option<i64> = if blob == diff {
            self.conn()
                .query_row(
                    "SELECT mtime_clamp FROM build_layers WHERE diff_id = ?1",
                    [diff.to_string()],
                    |r| r.get(0),
                )
                .optional()?
        } else {
            None
        };
        let dir = self.layer_dir(diff);
        match clamp {
            Some(c) if dir.is_dir() => Ok((dir, c.max(0) as u64)),
            _ => Err(StoreError::corrupt(
                format!("layer {}", diff.short()),
                format!(
                    "blob {} is missing: remove the image (berth rmi) and pull or build it again",
                    blob.short()
                ),
            )),
        }
    }

    /// Make sure the uncompressed blob of layer `diff` exists: a build
    /// layer's is written from its directory (and must hash to `diff`).
    pub fn ensure_layer_blob(&self, diff: &Digest, blob: &Digest) -> Result<(), StoreError> {
        if self.blob_path(blob).is_file() {
            return Ok(());
        }
        let (dir, clamp) = self.regenerable(diff, blob)?;
        let tmp = self.tmp_dir("layer-blob")?;
        let mut w = self.blob_writer(tmp.path())?;
        write_layer_dir(&dir, clamp, &mut w).map_err(StoreError::io(&dir))?;
        self.commit_blob(w, Some(diff)).map_err(|e| match e {
            StoreError::DigestMismatch { .. } => changed_on_disk(diff),
            e => e,
        })?;
        Ok(())
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
        let mut layers = match base {
            Some(b) => self.existing_layers(&self.resolve_image(&b.to_string())?)?,
            None => Vec::new(),
        };
        layers.extend(new_layers);
        let diffs: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diffs});
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        crate::check_depth(layers.len())?;
        self.put_blob(tmp.path(), &bytes)?;
        let id = self.register_image(&bytes, layers, tags, &[])?;
        drop(tmp);
        Ok(id)
    }

    /// Register an image made of `image`'s first `n` layers and `config`
    /// (its `rootfs` filled in here): a build step again, from an inline
    /// cache.
    pub fn register_prefix(
        &self,
        image: &Digest,
        n: usize,
        mut config: serde_json::Value,
    ) -> Result<Digest, StoreError> {
        let img = self.resolve_image(&image.to_string())?;
        if n > img.diff_ids.len() || !config.is_object() {
            return Err(StoreError::corrupt(
                format!("image {}", image.short()),
                "its inline build cache names more layers than it has",
            ));
        }
        let mut layers = self.existing_layers(&img)?;
        layers.truncate(n);
        let diffs: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diffs});
        let bytes = serde_json::to_vec(&config)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        let tmp = self.tmp_dir("build-image")?;
        self.put_blob(tmp.path(), &bytes)?;
        let id = self.register_image(&bytes, layers, &[], &[])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path, data: &[u8]) {
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/file"), data).unwrap();
        std::fs::write(root.join("a"), b"first").unwrap();
        std::fs::hard_link(root.join("a"), root.join("b/link")).unwrap();
        std::os::unix::fs::symlink("../a", root.join("b/sym")).unwrap();
    }

    #[test]
    fn a_layer_dir_digests_the_same_every_time() {
        let t = tempfile::tempdir().unwrap();
        let (one, two) = (t.path().join("one"), t.path().join("two"));
        tree(&one, b"data");
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(&two, b"data");
        // File times past the clamp are written as the clamp.
        let d1 = digest_layer_dir(&one, 0).unwrap();
        assert_eq!(d1, digest_layer_dir(&one, 0).unwrap());
        assert_eq!(d1, digest_layer_dir(&two, 0).unwrap());
        std::fs::write(two.join("b/c/file"), b"datA").unwrap();
        assert_ne!(d1, digest_layer_dir(&two, 0).unwrap());

        // What it writes is a layer: unpacked again, it digests the same,
        // and its size is what the digest counted.
        let mut tar = Vec::new();
        write_layer_dir(&one, 0, &mut tar).unwrap();
        assert_eq!(tar.len() as u64, d1.1);
        assert_eq!(Digest::of(&tar), d1.0);
        let three = t.path().join("three");
        std::fs::create_dir(&three).unwrap();
        layer::unpack(&tar[..], &three).unwrap();
        assert_eq!(digest_layer_dir(&three, 0).unwrap(), d1);
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar[..]).entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), 0);
            names.push(e.path().unwrap().display().to_string());
        }
        assert_eq!(names, ["a", "b/", "b/c/", "b/c/file", "b/link", "b/sym"]);
    }
}
