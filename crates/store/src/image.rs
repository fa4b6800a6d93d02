//! Images: import, registration (shared with load), lookup, tags, removal
//! and prune.
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use model::{Digest, Reference};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::layer::{self, Compression};
use crate::{Change, Store, StoreError, TmpDir};

/// A stored layer blob as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the blob as stored.
    pub digest: String,
    /// OCI media type (tar, tar+gzip, tar+zstd).
    pub media_type: String,
    /// Blob size.
    pub size: u64,
}

/// An image as the store knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// sha256 of the config blob.
    pub id: Digest,
    /// Tags pointing at it.
    pub repo_tags: Vec<Reference>,
    /// `name@sha256:…` it was pulled or loaded by.
    pub repo_digests: Vec<String>,
    /// Creation time from the config.
    pub created: Option<DateTime<Utc>>,
    /// Unpacked size of its layers.
    pub size: u64,
    /// Layer diff-ids, base first.
    pub diff_ids: Vec<Digest>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Stored layer blobs, base first.
    pub layer_blobs: Vec<LayerBlob>,
}

/// `import` options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Tag for the new image.
    pub reference: Option<Reference>,
    /// `--change` instructions.
    pub changes: Vec<Change>,
    /// `--message` (history comment).
    pub message: Option<String>,
    /// `--platform`: (os, architecture, variant) for the config (default:
    /// the host's).
    pub platform: Option<(String, String, Option<String>)>,
}

/// `commit` options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Tag for the new image.
    pub reference: Option<Reference>,
    /// `--change` instructions.
    pub changes: Vec<Change>,
    /// `--message`.
    pub message: Option<String>,
    /// `--author`.
    pub author: Option<String>,
    /// The history line (the container's command).
    pub created_by: String,
    /// Docker's `Config` sent with `POST /commit`: merged over the
    /// container's config as dockerd merges it, before `changes`.
    pub config: Option<serde_json::Value>,
}

/// One step of `rmi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A tag was removed.
    Untagged(Reference),
    /// The image was deleted.
    Deleted(Digest),
}

/// What `image prune` did.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Deleted image ids.
    pub deleted: Vec<Digest>,
    /// Bytes freed.
    pub reclaimed: u64,
}

/// One `history` line.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// When.
    pub created: Option<DateTime<Utc>>,
    /// The instruction.
    pub created_by: String,
    /// Size of the layer it made (0 if none).
    pub size: u64,
    /// Comment.
    pub comment: String,
    /// It made no layer.
    pub empty_layer: bool,
}

/// A layer ready to register: either unpacked in a tmp dir or already stored.
#[derive(Debug, Clone)]
pub struct IngestedLayer {
    /// Its diff-id.
    pub diff_id: Digest,
    /// Size of its files.
    pub size: u64,
    /// The stored blob it came from.
    pub blob: LayerBlob,
    /// Unpacked dir in tmp/ (None if the layer already existed).
    pub unpacked: Option<PathBuf>,
    /// A build layer stored without its blob: the blob is the layer dir
    /// written as a tar ([`crate::fsops::tar_layer_with`]) with file times
    /// clamped to this, made again when an export or a push needs it.
    pub regen: Option<u64>,
}

/// Unpack a layer stream of `compressed_size` bytes (if known) into a
/// fresh directory under `tmp` (a [`crate::TmpDir`]'s path), within
/// `limits` ([`Store::limits`]). Needs no database: pull workers call it.
pub fn unpack_layer_in(
    tmp: &Path,
    reader: impl Read,
    limits: layer::Limits,
    compressed_size: Option<u64>,
) -> Result<(layer::Unpacked, PathBuf), StoreError> {
    let dir = tmp.join(format!(
        "layer-{}",
        &model::ContainerId::random().as_str()[..12]
    ));
    std::fs::create_dir(&dir).map_err(StoreError::io(&dir))?;
    let opts = layer::UnpackOptions {
        limits: Some(limits),
        compressed_size,
        ..Default::default()
    };
    let u = layer::unpack_with(reader, &dir, &opts)?;
    Ok((u, dir))
}

struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::blob::BlobWriter,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// An image may hold the same layer twice (two steps that made the same
/// files); overlayfs refuses a lower dir given twice (ELOOP). Keeping only
/// the topmost occurrence gives the same union: that occurrence re-applies
/// everything the lower one had.
pub fn dedupe_layers(base_first: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<PathBuf> = base_first
        .into_iter()
        .rev()
        .filter(|d| seen.insert(d.clone()))
        .collect();
    out.reverse();
    out
}

const NOT_FOUND_HINT: &str =
    " locally: import it (berth import), load it (berth load) or check the name with berth images";

impl Store {
    pub(crate) fn layer_dir(&self, diff: &Digest) -> PathBuf {
        self.root().join("layers").join(diff.hex())
    }

    /// Size of an unpacked layer, if the store has it.
    pub fn layer_size(&self, diff: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT size FROM layers WHERE diff_id = ?1",
                [diff.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
    }

    pub(crate) fn has_layer(&self, diff: &Digest) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM layers WHERE diff_id = ?1",
                [diff.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Store a layer stream as a blob and unpack it (unless `known_diff`
    /// says it is already unpacked), verifying `expected_blob`.
    pub(crate) fn ingest_layer(
        &self,
        tmp: &TmpDir,
        reader: impl Read,
        expected_blob: Option<&Digest>,
        known_diff: Option<&Digest>,
    ) -> Result<IngestedLayer, StoreError> {
        let mut w = self.blob_writer(tmp.path())?;
        // An uncompressed stream unpacked here: its blob digest is the
        // diff-id the unpacker computes (one hash pass, not two).
        let mut reuse_diff_id = false;
        let mut buffered = std::io::BufReader::with_capacity(128 * 1024, reader);
        let compression = layer::detect(
            std::io::BufRead::fill_buf(&mut buffered).map_err(StoreError::io(tmp.path()))?,
        );
        let existing = match known_diff {
            Some(d) if self.has_layer(d)? => Some(d.clone()),
            _ => None,
        };
        if compression == layer::Compression::None && existing.is_none() {
            w.known_digest = true;
            reuse_diff_id = true;
        }
        let (diff_id, size, unpacked) = match existing {
            Some(d) => {
                std::io::copy(
                    &mut Tee {
                        inner: buffered,
                        out: &mut w,
                    },
                    &mut std::io::sink(),
                )
                .map_err(StoreError::io(tmp.path()))?;
                let size: u64 = self.conn().query_row(
                    "SELECT size FROM layers WHERE diff_id = ?1",
                    [d.to_string()],
                    |r| r.get(0),
                )?;
                (d, size, None)
            }
            None => {
                let dir = tmp.path().join(format!(
                    "layer-{}",
                    &model::ContainerId::random().as_str()[..12]
                ));
                std::fs::create_dir(&dir).map_err(StoreError::io(&dir))?;
                let u = layer::unpack_with(
                    Tee {
                        inner: buffered,
                        out: &mut w,
                    },
                    &dir,
                    &layer::UnpackOptions {
                        limits: Some(self.limits()),
                        ..Default::default()
                    },
                )?;
                if let Some(k) = known_diff {
                    if *k != u.diff_id {
                        return Err(StoreError::DigestMismatch {
                            what: "layer diff-id".into(),
                            expected: k.clone(),
                            actual: u.diff_id,
                        });
                    }
                }
                (u.diff_id, u.size, Some(dir))
            }
        };
        let known = reuse_diff_id.then(|| diff_id.clone());
        let (digest, blob_size) = self.commit_blob_as(w, expected_blob, known)?;
        Ok(IngestedLayer {
            diff_id,
            size,
            blob: LayerBlob {
                digest: digest.to_string(),
                media_type: media_type(compression).to_string(),
                size: blob_size,
            },
            unpacked,
            regen: None,
        })
    }

    /// An image's layers, as already in the store (for a new image on top).
    pub(crate) fn existing_layers(
        &self,
        img: &ImageRecord,
    ) -> Result<Vec<IngestedLayer>, StoreError> {
        let mut layers = Vec::new();
        for (d, blob) in img.diff_ids.iter().zip(img.layer_blobs.iter()) {
            layers.push(IngestedLayer {
                diff_id: d.clone(),
                size: self.layer_size(d)?.unwrap_or(0),
                blob: blob.clone(),
                unpacked: None,
                regen: None,
            });
        }
        Ok(layers)
    }

    /// Register an image whose config blob and layers are in place, with
    /// its tags, in one transaction.
    pub fn register_image(
        &self,
        config: &[u8],
        layers: Vec<IngestedLayer>,
        tags: &[Reference],
        repo_digests: &[String],
    ) -> Result<Digest, StoreError> {
        let cfg: serde_json::Value = serde_json::from_slice(config)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        let id = Digest::of(config);
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        crate::check_depth(layers.len())?;
        let got: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
        if diff_ids != got {
            return Err(StoreError::corrupt(
                format!("image {}", id.short()),
                "the layers do not match the config's rootfs.diff_ids",
            ));
        }
        let created = cfg["created"].as_str().map(str::to_string);
        let labels = cfg["config"]["Labels"].clone();
        let blobs: Vec<&LayerBlob> = layers.iter().map(|l| &l.blob).collect();
        let tx = self.write_tx()?;
        for l in &layers {
            if let Some(dir) = &l.unpacked {
                let dest = self.layer_dir(&l.diff_id);
                let registered: bool = tx
                    .query_row(
                        "SELECT 1 FROM layers WHERE diff_id = ?1",
                        [l.diff_id.to_string()],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !registered {
                    if dest.exists() {
                        // An orphan of a crashed command: ours replaces it.
                        let _ = std::fs::remove_dir_all(&dest);
                    }
                    std::fs::rename(dir, &dest).map_err(StoreError::io(&dest))?;
                    tx.execute(
                        "INSERT INTO layers (diff_id, size) VALUES (?1, ?2)",
                        params![l.diff_id.to_string(), l.size as i64],
                    )?;
                    if let Some(clamp) = l.regen {
                        tx.execute(
                            "INSERT OR REPLACE INTO build_layers (diff_id, mtime_clamp) VALUES (?1, ?2)",
                            params![l.diff_id.to_string(), clamp as i64],
                        )?;
                    }
                }
            }
        }
        let mut all_digests: Vec<String> = tx
            .query_row(
                "SELECT repo_digests FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        for d in repo_digests {
            if !all_digests.contains(d) {
                all_digests.push(d.clone());
            }
        }
        // The image may be here already (a pull of what was imported or
        // pushed from here): its record now names the new blobs, and an old
        // one nothing names any more (the import's uncompressed layer,
        // replaced by the pull's compressed one) goes, or it would be left
        // with no image.
        let old_blobs: Vec<LayerBlob> = tx
            .query_row(
                "SELECT layer_blobs FROM images WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO images (id, created, diff_ids, layer_blobs, repo_digests, labels, loaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id.to_string(),
                created,
                serde_json::to_string(&diff_ids).unwrap_or_default(),
                serde_json::to_string(&blobs).unwrap_or_default(),
                serde_json::to_string(&all_digests).unwrap_or_default(),
                if labels.is_object() { labels.to_string() } else { "{}".to_string() },
                Utc::now().to_rfc3339(),
            ],
        )?;
        for t in tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
                params![t.to_string(), id.to_string()],
            )?;
        }
        let mut unnamed = Vec::new();
        if !old_blobs.is_empty() {
            let refs = crate::audit::references(&tx, &self.root().join("blobs/sha256"))?;
            for b in &old_blobs {
                if let Ok(d) = b.digest.parse::<Digest>() {
                    if !refs.blobs.contains_key(d.hex()) && d != id {
                        unnamed.push(self.blob_path(&d));
                    }
                }
            }
        }
        tx.commit()?;
        for p in unnamed {
            let _ = std::fs::remove_file(p);
        }
        Ok(id)
    }

    /// `docker import`: a root filesystem tar (plain, gzip or zstd) becomes
    /// a one-layer image.
    pub fn import(
        &self,
        reader: impl Read,
        opts: &ImportOptions,
    ) -> Result<ImageRecord, StoreError> {
        let tmp = self.tmp_dir("import")?;
        let layer = self.ingest_layer(&tmp, reader, None, None)?;
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut config = serde_json::json!({});
        crate::change::apply(&mut config, &opts.changes);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let (os, arch, variant) = opts
            .platform
            .clone()
            .unwrap_or_else(|| ("linux".into(), arch.into(), None));
        let mut cfg = serde_json::json!({
            "architecture": arch,
            "os": os,
            "created": now,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
            // As dockerd's import: no created_by, only the comment.
            "history": [{"created": now, "comment": opts.message.clone().unwrap_or_else(|| "Imported from -".to_string())}],
        });
        if let Some(v) = variant {
            cfg["variant"] = v.into();
        }
        let bytes = serde_json::to_vec(&cfg)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        self.put_blob(tmp.path(), &bytes)?;
        let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
        let id = self.register_image(&bytes, vec![layer], &tags, &[])?;
        drop(tmp);
        self.image_by_id(&id)
    }

    /// `docker commit`: the image `parent` plus one layer (a tar stream
    /// in OCI layer format), with the container's `config` object
    /// (Docker's image `config`: Cmd, Env...) and `changes` applied.
    pub fn commit_image(
        &self,
        parent: &Digest,
        layer_tar: impl Read,
        config: serde_json::Value,
        opts: &CommitOptions,
    ) -> Result<ImageRecord, StoreError> {
        let tmp = self.tmp_dir("commit")?;
        let parent_rec = self.image_by_id(parent)?;
        let mut cfg: serde_json::Value = serde_json::from_slice(&self.image_config_raw(parent)?)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        let layer = self.ingest_layer(&tmp, layer_tar, None, None)?;
        let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut c = config;
        crate::change::apply(&mut c, &opts.changes);
        cfg["config"] = c;
        cfg["created"] = serde_json::json!(now);
        if let Some(a) = &opts.author {
            cfg["author"] = serde_json::json!(a);
        }
        let mut diffs: Vec<String> = parent_rec.diff_ids.iter().map(|d| d.to_string()).collect();
        diffs.push(layer.diff_id.to_string());
        cfg["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": diffs});
        let mut history = cfg["history"].as_array().cloned().unwrap_or_default();
        let mut h = serde_json::json!({"created": now, "created_by": opts.created_by});
        if let Some(m) = &opts.message {
            h["comment"] = serde_json::json!(m);
        }
        if let Some(a) = &opts.author {
            h["author"] = serde_json::json!(a);
        }
        history.push(h);
        cfg["history"] = serde_json::json!(history);
        let bytes = serde_json::to_vec(&cfg)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        let mut layers = self.existing_layers(&parent_rec)?;
        layers.push(layer);
        crate::check_depth(layers.len())?;
        self.put_blob(tmp.path(), &bytes)?;
        sys::faults::point("commit.before-register");
        let tags: Vec<Reference> = opts.reference.iter().cloned().collect();
        let id = self.register_image(&bytes, layers, &tags, &[])?;
        // The image it was made from is its parent (`inspect`'s `Parent`,
        // as dockerd's for a commit), unless it is that image itself.
        if id != *parent {
            self.conn().execute(
                "INSERT OR REPLACE INTO image_parents (id, parent) VALUES (?1, ?2)",
                [id.to_string(), parent.to_string()],
            )?;
        }
        drop(tmp);
        self.image_by_id(&id)
    }

    /// The image a committed image was made from (`None` for the others,
    /// or when the parent is gone).
    pub fn image_parent(&self, id: &Digest) -> Result<Option<Digest>, StoreError> {
        let parent: Option<String> = self
            .conn()
            .query_row(
                "SELECT p.parent FROM image_parents p JOIN images i ON i.id = p.parent \
                 WHERE p.id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(parent.and_then(|p| p.parse().ok()))
    }

    fn records(&self, filter: Option<&str>) -> Result<Vec<ImageRecord>, StoreError> {
        let sizes: HashMap<String, u64> = {
            let mut stmt = self
                .conn()
                .prepare_cached("SELECT diff_id, size FROM layers")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut tags: HashMap<String, Vec<Reference>> = HashMap::new();
        {
            let mut stmt = self
                .conn()
                .prepare_cached("SELECT name, image_id FROM tags ORDER BY name")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (name, id) = row?;
                if let Ok(r) = name.parse::<Reference>() {
                    tags.entry(id).or_default().push(r);
                }
            }
        }
        let sql = match filter {
            Some(_) => "SELECT id, created, diff_ids, layer_blobs, repo_digests, labels FROM images WHERE id = ?1",
            None => "SELECT id, created, diff_ids, layer_blobs, repo_digests, labels FROM images",
        };
        let mut stmt = self.conn().prepare_cached(sql)?;
        let map = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        };
        let rows: Vec<_> = match filter {
            Some(f) => stmt.query_map([f], map)?.collect::<Result<_, _>>()?,
            None => stmt.query_map([], map)?.collect::<Result<_, _>>()?,
        };
        let mut out = Vec::new();
        for (id, created, diffs, blobs, digests, labels) in rows {
            let Ok(digest) = id.parse::<Digest>() else {
                continue;
            };
            let diff_ids: Vec<Digest> = serde_json::from_str::<Vec<String>>(&diffs)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect();
            let size = diff_ids
                .iter()
                .map(|d| sizes.get(&d.to_string()).copied().unwrap_or(0))
                .sum();
            let labels: BTreeMap<String, String> =
                serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&labels)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
            out.push(ImageRecord {
                repo_tags: tags.remove(&id).unwrap_or_default(),
                repo_digests: serde_json::from_str(&digests).unwrap_or_default(),
                created: created
                    .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
                    .map(|c| c.with_timezone(&Utc)),
                size,
                diff_ids,
                labels,
                layer_blobs: serde_json::from_str(&blobs).unwrap_or_default(),
                id: digest,
            });
        }
        Ok(out)
    }

    fn image_by_id(&self, id: &Digest) -> Result<ImageRecord, StoreError> {
        self.records(Some(&id.to_string()))?
            .pop()
            .ok_or_else(|| StoreError::NotFound {
                kind: "image",
                what: id.to_string(),
                hint: NOT_FOUND_HINT,
            })
    }

    /// Every image but the build cache's untagged ones.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let cached = self.cache_images()?;
        Ok(self
            .records(None)?
            .into_iter()
            .filter(|i| !i.repo_tags.is_empty() || !cached.contains(&i.id.to_string()))
            .collect())
    }

    /// Every image, build cache included.
    pub fn list_all_images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.records(None)
    }

    pub(crate) fn records_for_prune(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.records(None)
    }

    /// Find an image by reference, `sha256:` id, full hex id or unique id prefix.
    pub fn resolve_image(&self, s: &str) -> Result<ImageRecord, StoreError> {
        let not_found = || StoreError::NotFound {
            kind: "image",
            what: s.to_string(),
            hint: NOT_FOUND_HINT,
        };
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let is_hex = !hex.is_empty()
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if !s.starts_with("sha256:") {
            if let Ok(r) = s.parse::<Reference>() {
                if let Some(d) = r.digest() {
                    let needle = format!("\"{}@{}\"", r.name(), d);
                    let id: Option<String> = self
                        .conn()
                        .query_row(
                            "SELECT id FROM images WHERE instr(repo_digests, ?1) > 0",
                            [needle],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if let Some(id) = id {
                        return self.image_by_id(&id.parse().map_err(|_| not_found())?);
                    }
                    if r.tag().is_none() {
                        return self.image_by_id(d).map_err(|_| not_found());
                    }
                }
                let id: Option<String> = self
                    .conn()
                    .query_row(
                        "SELECT image_id FROM tags WHERE name = ?1",
                        [r.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = id {
                    return self.image_by_id(&id.parse().map_err(|_| not_found())?);
                }
            }
        }
        if !is_hex {
            return Err(not_found());
        }
        let pattern = format!("sha256:{hex}%");
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
        let ids: Vec<String> = stmt
            .query_map([pattern], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        match ids.len() {
            0 => Err(not_found()),
            1 => self.image_by_id(&ids[0].parse().map_err(|_| not_found())?),
            _ => Err(StoreError::Ambiguous {
                kind: "image",
                prefix: s.to_string(),
            }),
        }
    }

    /// Point `reference` at `image` (moving it if it exists).
    pub fn tag(&self, image: &Digest, reference: &Reference) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM images WHERE id = ?1",
                [image.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound {
                kind: "image",
                what: image.to_string(),
                hint: NOT_FOUND_HINT,
            });
        }
        tx.execute(
            "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?1, ?2)",
            params![reference.to_string(), image.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remove `reference` (a tag) and nothing else: the image stays, dangling
    /// if that was its last tag, until `rmi` or `image prune`. False if
    /// there was no such tag.
    pub fn untag(&self, reference: &Reference) -> Result<bool, StoreError> {
        let tx = self.write_tx()?;
        let n = tx.execute("DELETE FROM tags WHERE name = ?1", [reference.to_string()])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The raw config blob.
    pub fn image_config_raw(&self, id: &Digest) -> Result<Vec<u8>, StoreError> {
        self.read_blob(id)
    }

    /// The parsed config.
    pub fn image_config(
        &self,
        id: &Digest,
    ) -> Result<oci_spec::image::ImageConfiguration, StoreError> {
        let raw = self.image_config_raw(id)?;
        serde_json::from_slice(&raw).map_err(|e| {
            StoreError::corrupt(format!("config of image {}", id.short()), e.to_string())
        })
    }

    /// Unpacked layer dirs, base first.
    pub fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>, StoreError> {
        let diffs: Option<String> = self
            .conn()
            .prepare_cached("SELECT diff_ids FROM images WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        let diffs = diffs.ok_or_else(|| StoreError::NotFound {
            kind: "image",
            what: id.to_string(),
            hint: NOT_FOUND_HINT,
        })?;
        let dirs: Vec<PathBuf> = serde_json::from_str::<Vec<String>>(&diffs)
            .unwrap_or_default()
            .iter()
            .map(|d| {
                self.root()
                    .join("layers")
                    .join(d.trim_start_matches("sha256:"))
            })
            .collect();
        Ok(dedupe_layers(dirs))
    }

    /// History, newest first.
    pub fn history(&self, id: &Digest) -> Result<Vec<HistoryEntry>, StoreError> {
        let img = self.image_by_id(id)?;
        let cfg: serde_json::Value = serde_json::from_slice(&self.image_config_raw(id)?)
            .map_err(|e| StoreError::corrupt("image config", e.to_string()))?;
        let sizes: Vec<u64> = img
            .diff_ids
            .iter()
            .map(|d| {
                self.conn()
                    .query_row(
                        "SELECT size FROM layers WHERE diff_id = ?1",
                        [d.to_string()],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|s| s as u64)
                    .unwrap_or(0)
            })
            .collect();
        let mut layer_i = 0;
        let mut out = Vec::new();
        for h in cfg["history"].as_array().cloned().unwrap_or_default() {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = sizes.get(layer_i).copied().unwrap_or(0);
                layer_i += 1;
                s
            };
            out.push(HistoryEntry {
                created: h["created"]
                    .as_str()
                    .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
                    .map(|c| c.with_timezone(&Utc)),
                created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
                size,
                comment: h["comment"].as_str().unwrap_or_default().to_string(),
                empty_layer: empty,
            });
        }
        out.reverse();
        Ok(out)
    }

    /// Delete an image's row (tags already gone) and then its content that
    /// no other image shares.
    pub(crate) fn delete_image(
        &self,
        tx: &rusqlite::Transaction<'_>,
        img: &ImageRecord,
    ) -> Result<(Vec<PathBuf>, u64), StoreError> {
        tx.execute("DELETE FROM images WHERE id = ?1", [img.id.to_string()])?;
        tx.execute(
            "DELETE FROM image_parents WHERE id = ?1",
            [img.id.to_string()],
        )?;
        tx.execute("DELETE FROM tags WHERE image_id = ?1", [img.id.to_string()])?;
        Store::cache_forget_image(tx, &img.id)?;
        let referrer_blobs = crate::referrer::forget_image(tx, &img.id)?;
        let mut doomed = vec![self.blob_path(&img.id)];
        let mut freed = 0;
        let others: Vec<(String, String, String)> = {
            let mut stmt = tx.prepare("SELECT diff_ids, layer_blobs, repo_digests FROM images")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let shared = |needle: &str| {
            others
                .iter()
                .any(|(d, b, m)| d.contains(needle) || b.contains(needle) || m.contains(needle))
        };
        // Its referrers' blobs that no other image's referrer holds.
        let kept: Vec<Digest> = referrer_blobs
            .into_iter()
            .filter(|d| !shared(d.hex()))
            .collect();
        doomed.extend(crate::referrer::paths(self, &kept));
        // The manifest it was pulled or loaded by (`name@sha256:…`), kept
        // as a blob for push: it goes with the last image naming it.
        for rd in &img.repo_digests {
            if let Some((_, hex)) = rd.rsplit_once("@sha256:") {
                if !shared(hex) {
                    if let Ok(d) = format!("sha256:{hex}").parse::<Digest>() {
                        doomed.push(self.blob_path(&d));
                    }
                }
            }
        }
        for d in &img.diff_ids {
            if !shared(&d.to_string()) {
                let size: Option<i64> = tx
                    .query_row(
                        "SELECT size FROM layers WHERE diff_id = ?1",
                        [d.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
                freed += size.unwrap_or(0) as u64;
                tx.execute("DELETE FROM layers WHERE diff_id = ?1", [d.to_string()])?;
                tx.execute(
                    "DELETE FROM build_layers WHERE diff_id = ?1",
                    [d.to_string()],
                )?;
                doomed.push(self.layer_dir(d));
                // Its compressed forms (push's cache) go with it.
                let cached: Vec<String> = {
                    let mut stmt =
                        tx.prepare("SELECT digest FROM compressed WHERE diff_id = ?1")?;
                    let rows = stmt.query_map([d.to_string()], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                tx.execute("DELETE FROM compressed WHERE diff_id = ?1", [d.to_string()])?;
                for c in cached {
                    if let Ok(cd) = c.parse::<Digest>() {
                        if !shared(cd.hex()) {
                            doomed.push(self.blob_path(&cd));
                        }
                    }
                }
            }
        }
        // A layer blob is another image's only if that image names it as a
        // blob: one that has the same layer from another blob (the
        // compressed one of a pull, where this was an import's
        // uncompressed one) does not need it.
        let blob_shared = |needle: &str| {
            others
                .iter()
                .any(|(_, b, m)| b.contains(needle) || m.contains(needle))
        };
        for b in &img.layer_blobs {
            if !blob_shared(&b.digest) {
                if let Ok(d) = b.digest.parse::<Digest>() {
                    doomed.push(self.blob_path(&d));
                }
            }
        }
        Ok((doomed, freed))
    }

    pub(crate) fn remove_files(&self, doomed: Vec<PathBuf>) -> Result<(), StoreError> {
        // A crash while deleting leaves orphans: the lock makes the next
        // open collect them.
        let marker = self.tmp_dir("remove")?;
        for p in doomed {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
        drop(marker);
        Ok(())
    }

    pub(crate) fn container_using(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: &Digest,
    ) -> Result<Option<String>, StoreError> {
        Ok(tx
            .query_row(
                "SELECT id FROM containers WHERE image_id = ?1 LIMIT 1",
                [id.to_string()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// `rmi` with Docker's semantics.
    pub fn remove_image(&self, s: &str, force: bool) -> Result<Vec<RemoveEvent>, StoreError> {
        let img = self.resolve_image(s)?;
        let by_tag = img
            .repo_tags
            .iter()
            .find(|t| s.parse::<Reference>().ok().as_ref() == Some(*t))
            .cloned();
        let tx = self.write_tx()?;
        let mut events = Vec::new();
        if let Some(tag) = &by_tag {
            if img.repo_tags.len() > 1 {
                tx.execute("DELETE FROM tags WHERE name = ?1", [tag.to_string()])?;
                tx.commit()?;
                return Ok(vec![RemoveEvent::Untagged(tag.clone())]);
            }
        } else if img.repo_tags.len() > 1 && !force {
            return Err(StoreError::MultipleTags {
                image: img.id.short().to_string(),
            });
        }
        if let Some(c) = self.container_using(&tx, &img.id)? {
            if !force {
                return Err(StoreError::ImageInUse {
                    image: img.id.short().to_string(),
                    container: c.chars().take(12).collect(),
                });
            }
            for t in &img.repo_tags {
                tx.execute("DELETE FROM tags WHERE name = ?1", [t.to_string()])?;
                events.push(RemoveEvent::Untagged(t.clone()));
            }
            tx.commit()?;
            return Ok(events);
        }
        for t in &img.repo_tags {
            events.push(RemoveEvent::Untagged(t.clone()));
        }
        let (doomed, _) = self.delete_image(&tx, &img)?;
        tx.commit()?;
        events.push(RemoveEvent::Deleted(img.id.clone()));
        self.remove_files(doomed)?;
        Ok(events)
    }

    /// `image prune`: dangling images, or with `all` every image no
    /// container uses.
    pub fn prune_images(&self, all: bool) -> Result<PruneReport, StoreError> {
        self.prune_images_where(all, |_| true)
    }

    /// [`Store::prune_images`], of the images `pick` accepts only (the
    /// API's `label` and `until` filters).
    pub fn prune_images_where(
        &self,
        all: bool,
        pick: impl Fn(&ImageRecord) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let cached = self.cache_images()?;
        let tx = self.write_tx()?;
        // The build cache is `builder prune`'s.
        self.delete_unused_images(tx, |img| {
            (all || img.repo_tags.is_empty())
                && !(img.repo_tags.is_empty() && cached.contains(&img.id.to_string()))
                && pick(img)
        })
    }

    /// Delete, in `tx`, every image `doomed` picks that no container uses;
    /// commit, then remove their files.
    pub(crate) fn delete_unused_images(
        &self,
        tx: rusqlite::Transaction<'_>,
        doomed: impl Fn(&ImageRecord) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let mut files = Vec::new();
        for img in self.records(None)? {
            if !doomed(&img) || self.container_using(&tx, &img.id)?.is_some() {
                continue;
            }
            let (f, freed) = self.delete_image(&tx, &img)?;
            files.extend(f);
            report.reclaimed += freed;
            report.deleted.push(img.id.clone());
        }
        tx.commit()?;
        self.remove_files(files)?;
        Ok(report)
    }
}

/// Is `p` inside the store's layers dir (for tests and sanity checks)?
pub fn is_layer_dir(store: &Store, p: &Path) -> bool {
    p.starts_with(store.root().join("layers"))
}

impl Store {
    /// The cached compressed form of a layer, if any.
    pub fn compressed_blob(
        &self,
        diff: &Digest,
        media_type: &str,
    ) -> Result<Option<LayerBlob>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT digest, size FROM compressed WHERE diff_id = ?1 AND media_type = ?2",
                params![diff.to_string(), media_type],
                |r| {
                    Ok(LayerBlob {
                        digest: r.get(0)?,
                        media_type: media_type.to_string(),
                        size: r.get::<_, i64>(1)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// Compress the uncompressed layer blob `src` (gzip level 1, or zstd
    /// level 3), store the result and remember it for `diff`.
    pub fn compress_layer(
        &self,
        diff: &Digest,
        src: &Digest,
        zstd: bool,
    ) -> Result<LayerBlob, StoreError> {
        let tmp = self.tmp_dir("compress")?;
        let mut w = self.blob_writer(tmp.path())?;
        let path = self.blob_path(src);
        let media_type = if zstd {
            let mut enc =
                zstd::stream::write::Encoder::new(&mut w, 3).map_err(StoreError::io(&path))?;
            self.write_layer_tar(diff, src, &mut enc)?;
            enc.finish().map_err(StoreError::io(&path))?;
            media_type(Compression::Zstd)
        } else {
            let mut enc = flate2::write::GzEncoder::new(&mut w, flate2::Compression::new(1));
            self.write_layer_tar(diff, src, &mut enc)?;
            enc.finish().map_err(StoreError::io(&path))?;
            media_type(Compression::Gzip)
        };
        let (digest, size) = self.commit_blob(w, None)?;
        let blob = LayerBlob {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            size,
        };
        self.conn().execute(
            "INSERT OR REPLACE INTO compressed (diff_id, media_type, digest, size) VALUES (?1, ?2, ?3, ?4)",
            params![diff.to_string(), media_type, blob.digest, size as i64],
        )?;
        Ok(blob)
    }

    /// Record that `image` is in a registry as `name@digest`.
    pub fn add_repo_digest(&self, image: &Digest, repo_digest: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let current: Option<String> = tx
            .query_row(
                "SELECT repo_digests FROM images WHERE id = ?1",
                [image.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(current) = current else {
            return Ok(());
        };
        let mut all: Vec<String> = serde_json::from_str(&current).unwrap_or_default();
        let name = repo_digest.split('@').next().unwrap_or("");
        // One digest per repository: the latest push or pull.
        all.retain(|d| d.split('@').next() != Some(name));
        all.push(repo_digest.to_string());
        tx.execute(
            "UPDATE images SET repo_digests = ?2 WHERE id = ?1",
            params![
                image.to_string(),
                serde_json::to_string(&all).unwrap_or_default()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod dedupe_tests {
    use super::dedupe_layers;
    use std::path::PathBuf;

    #[test]
    fn keeps_the_topmost_occurrence() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            dedupe_layers(vec![p("a"), p("e"), p("b"), p("e"), p("c")]),
            vec![p("a"), p("b"), p("e"), p("c")]
        );
    }
}
