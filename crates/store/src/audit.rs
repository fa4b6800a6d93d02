//! The store checked against itself (`berth system check`): every
//! reference in the database points at content on disk, every file under
//! the root has a record, and (unless quick) every blob hashes to its
//! name. [`Store::audit`] only reads; each repair re-checks its finding
//! inside a write transaction before it removes anything, so a command
//! racing with the repair never loses what it just made.
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use model::{ContainerId, Digest, Reference};
use rusqlite::{params, OptionalExtension};

use crate::{Lease, Store, StoreError};

/// An image as a finding names it: its id, tags and the containers made
/// from it, so a message can say what to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The image id.
    pub id: Digest,
    /// Its tags.
    pub tags: Vec<Reference>,
    /// Names of the containers created from it.
    pub containers: Vec<String>,
}

impl ImageUse {
    /// The name a user would type: its first tag, else its short id.
    pub fn name(&self) -> String {
        self.tags
            .first()
            .map(Reference::familiar)
            .unwrap_or_else(|| self.id.short().to_string())
    }
}

/// A blob's part in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    /// The image config (the image id).
    Config,
    /// A layer as stored.
    Layer,
    /// The manifest the image was pulled by.
    Manifest,
    /// An artifact about the image (SBOM, provenance): its manifest,
    /// config or layer.
    Referrer,
}

/// One inconsistency of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A blob whose content does not hash to its name.
    CorruptBlob {
        /// Its name.
        digest: Digest,
        /// The images that hold it, with its part in each.
        users: Vec<(ImageUse, BlobRole)>,
        /// Only the compressed-layer cache holds it (made again on the
        /// next push).
        cache_only: bool,
    },
    /// A blob an image needs is not there.
    MissingBlob {
        /// The blob.
        digest: Digest,
        /// Its part in the image.
        role: BlobRole,
        /// The image.
        image: ImageUse,
    },
    /// An image's unpacked layer dir is not there.
    MissingLayer {
        /// The layer.
        diff_id: Digest,
        /// The images made of it.
        images: Vec<ImageUse>,
    },
    /// A layer dir no image references.
    UnreferencedLayer {
        /// The dir.
        path: PathBuf,
    },
    /// A blob no image references.
    UnreferencedBlob {
        /// The file.
        path: PathBuf,
    },
    /// A tag naming an image that does not exist.
    DanglingTag {
        /// The tag.
        tag: String,
        /// The image id it names.
        image: String,
    },
    /// A container whose image is gone.
    ContainerWithoutImage {
        /// The container.
        id: ContainerId,
        /// Its name.
        name: String,
        /// The image it was made from.
        image: Digest,
    },
    /// A container mounting a volume that has no record.
    ContainerWithoutVolume {
        /// The container.
        id: ContainerId,
        /// Its name.
        name: String,
        /// The volume.
        volume: String,
    },
    /// A container record without its dir (upper dir, /etc files, logs).
    MissingContainerDir {
        /// The container.
        id: ContainerId,
        /// Its name.
        name: String,
        /// Where the dir should be.
        path: PathBuf,
    },
    /// A dir under `containers/` without a record.
    OrphanContainerDir {
        /// The dir.
        path: PathBuf,
    },
    /// A volume record without its dir.
    MissingVolumeDir {
        /// The volume.
        name: String,
        /// Where its data should be.
        path: PathBuf,
    },
    /// A dir under `volumes/` without a record: it may hold data, so it is
    /// never removed by a repair.
    OrphanVolumeDir {
        /// The volume name it would have.
        name: String,
        /// The dir.
        path: PathBuf,
    },
    /// An address leased to a container that does not exist.
    LeaseWithoutContainer {
        /// The lease.
        lease: Lease,
    },
    /// An address leased on a network that does not exist.
    LeaseWithoutNetwork {
        /// The lease.
        lease: Lease,
    },
    /// An entry under `tmp/` that no live command holds.
    StrayTmp {
        /// The entry.
        path: PathBuf,
    },
    /// A build cache entry naming an image that does not exist.
    DanglingCacheEntry {
        /// The cache key.
        key: String,
        /// The image id it names.
        image: String,
    },
}

/// How much [`Store::audit`] looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Image records.
    pub images: usize,
    /// Blob files.
    pub blobs: usize,
    /// Blobs whose content was hashed.
    pub blobs_verified: usize,
    /// Layer dirs.
    pub layers: usize,
    /// Container records.
    pub containers: usize,
    /// Volume records.
    pub volumes: usize,
    /// Network records.
    pub networks: usize,
    /// Leases.
    pub leases: usize,
}

/// What [`Store::audit`] found.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// How much was looked at.
    pub counts: Counts,
    /// The inconsistencies, in the order of the checks.
    pub findings: Vec<Finding>,
}

/// The content the images reference: what [`Store::gc`] keeps.
pub(crate) struct References {
    /// Layer dirs (hex of the diff-id).
    pub layers: HashSet<String>,
    /// Blobs (hex), with the images and parts that hold them (empty for
    /// the compressed-layer cache).
    pub blobs: BTreeMap<String, Vec<(Digest, BlobRole)>>,
}

/// One image row, as stored.
struct ImageRow {
    id: Digest,
    diff_ids: Vec<Digest>,
    blobs: Vec<crate::image::LayerBlob>,
    manifests: Vec<String>,
}

fn image_rows(conn: &rusqlite::Connection) -> Result<Vec<ImageRow>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, diff_ids, layer_blobs, repo_digests FROM images")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, diffs, blobs, repo_digests) = row?;
        let Ok(id) = id.parse::<Digest>() else {
            continue;
        };
        out.push(ImageRow {
            id,
            diff_ids: serde_json::from_str::<Vec<String>>(&diffs)
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect(),
            blobs: serde_json::from_str(&blobs).unwrap_or_default(),
            manifests: serde_json::from_str::<Vec<String>>(&repo_digests)
                .unwrap_or_default()
                .iter()
                .filter_map(|rd| rd.rsplit_once("@sha256:").map(|(_, d)| d.to_string()))
                .collect(),
        });
    }
    Ok(out)
}

/// What the images in `conn` reference (see [`References`]); `blob_dir`
/// holds the blobs (an image pulled by an index references the index and,
/// through it, the manifests it names that are stored).
pub(crate) fn references(
    conn: &rusqlite::Connection,
    blob_dir: &Path,
) -> Result<References, StoreError> {
    let mut refs = References {
        layers: HashSet::new(),
        blobs: BTreeMap::new(),
    };
    for img in image_rows(conn)? {
        let mut hold = |hex: &str, role| {
            refs.blobs
                .entry(hex.to_string())
                .or_default()
                .push((img.id.clone(), role));
        };
        hold(img.id.hex(), BlobRole::Config);
        for m in &img.manifests {
            hold(m, BlobRole::Manifest);
            for child in index_children(&blob_dir.join(m)) {
                hold(&child, BlobRole::Manifest);
            }
        }
        for b in &img.blobs {
            hold(b.digest.trim_start_matches("sha256:"), BlobRole::Layer);
        }
        for d in &img.diff_ids {
            refs.layers.insert(d.hex().to_string());
        }
    }
    // Referrers (SBOM, provenance) of images that exist.
    for r in crate::referrer::referrer_rows(conn, None)? {
        let image_exists = refs
            .blobs
            .get(r.image_id.hex())
            .is_some_and(|v| v.iter().any(|(_, role)| *role == BlobRole::Config));
        if !image_exists {
            continue;
        }
        let held = refs.blobs.entry(r.digest.hex().to_string()).or_default();
        held.push((r.image_id.clone(), BlobRole::Referrer));
        for b in &r.blobs {
            refs.blobs
                .entry(b.hex().to_string())
                .or_default()
                .push((r.image_id.clone(), BlobRole::Referrer));
        }
    }
    // Compressed forms of layers some image still has.
    let mut stmt = conn.prepare(
        "SELECT digest FROM compressed WHERE diff_id IN (SELECT value FROM images, json_each(images.diff_ids))",
    )?;
    for d in stmt.query_map([], |r| r.get::<_, String>(0))? {
        refs.blobs
            .entry(d?.trim_start_matches("sha256:").to_string())
            .or_default();
    }
    Ok(refs)
}

/// The manifests an image index blob at `path` names (hex digests), none
/// for a manifest, a missing or an unreadable blob. Indexes are small:
/// anything over 4 MiB is not read.
fn index_children(path: &Path) -> Vec<String> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut text = Vec::new();
    if f.take(4 << 20).read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    doc["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["digest"].as_str())
        .filter_map(|d| d.strip_prefix("sha256:"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
        .collect()
}

/// The names of the entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Hash a file.
fn digest_of(path: &Path) -> std::io::Result<Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut h = model::digest::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// Is the lock file at `path` held by a live process?
/// What the lock file at `path` says about its command.
#[derive(PartialEq)]
enum Lock {
    /// A live command holds it.
    Held,
    /// It exists and nobody holds it: its command died.
    Free,
    /// It is not there (any more: a command that finished removes it).
    Gone,
}

fn lock_state(path: &Path) -> Lock {
    use std::os::unix::fs::MetadataExt;
    let Ok(f) = std::fs::File::open(path) else {
        return Lock::Gone;
    };
    let Ok(locked) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock) else {
        return Lock::Held;
    };
    // A command that finishes unlinks its lock file before it lets go of
    // the lock: a lock got on a file no longer at `path` is a finished
    // command's, not a dead one's.
    let same = match (locked.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    };
    if same {
        Lock::Free
    } else {
        Lock::Gone
    }
}

/// Seconds since `path` last changed (its inode: a rename counts).
fn age_secs(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    (now - m.ctime()).max(0) as u64
}

/// Is the entry `name` of `tmp/` work of no live command? Work dirs come
/// with a `<name>.lock` held by their command (see [`Store::tmp_dir`]);
/// a fresh lock is made under `<name>.lock.new` and renamed within
/// microseconds. A lock file beside its dir is the dir's business.
fn stray_tmp(tmp: &Path, name: &str) -> bool {
    if name.ends_with(".lock.new") {
        return age_secs(&tmp.join(name)) > 60;
    }
    if let Some(base) = name.strip_suffix(".lock") {
        return !tmp.join(base).exists() && lock_state(&tmp.join(name)) == Lock::Free;
    }
    // A dir is made after its lock and removed before it: a dir whose lock
    // is gone is stray only if it is still there once that is seen.
    match lock_state(&tmp.join(format!("{name}.lock"))) {
        Lock::Held => false,
        Lock::Free => true,
        Lock::Gone => std::fs::symlink_metadata(tmp.join(name)).is_ok(),
    }
}

impl Store {
    /// Check the store against itself (see the module). `verify`: hash
    /// every blob (slow on a large store: `system check --quick` skips it).
    pub fn audit(&self, verify: bool) -> Result<Audit, StoreError> {
        // One read transaction: every query sees the same snapshot.
        let tx = self.conn().unchecked_transaction()?;
        let mut out = Audit::default();
        let images = image_rows(&tx)?;
        let refs = references(&tx, &self.root().join("blobs/sha256"))?;
        out.counts.images = images.len();
        let mut tags: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
        let mut dangling_tags = Vec::new();
        let image_ids: HashSet<String> = images.iter().map(|i| i.id.to_string()).collect();
        {
            let mut stmt = tx.prepare("SELECT name, image_id FROM tags ORDER BY name")?;
            for row in
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            {
                let (name, id) = row?;
                if !image_ids.contains(&id) {
                    dangling_tags.push(Finding::DanglingTag {
                        tag: name,
                        image: id,
                    });
                } else if let Ok(r) = name.parse::<Reference>() {
                    tags.entry(id).or_default().push(r);
                }
            }
        }
        let containers: Vec<(ContainerId, String, String)> = {
            let mut stmt = tx.prepare("SELECT id, name, image_id FROM containers ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<Result<Vec<(String, String, String)>, _>>()?
                .into_iter()
                .filter_map(|(id, name, image)| Some((id.parse().ok()?, name, image)))
                .collect()
        };
        out.counts.containers = containers.len();
        let image_use = |id: &Digest| ImageUse {
            id: id.clone(),
            tags: tags.get(&id.to_string()).cloned().unwrap_or_default(),
            containers: containers
                .iter()
                .filter(|(_, _, image)| *image == id.to_string())
                .map(|(_, name, _)| name.clone())
                .collect(),
        };

        // Blobs: present for what images need, each hashing to its name.
        let blob_dir = self.root().join("blobs/sha256");
        let blob_names = entries(&blob_dir);
        out.counts.blobs = blob_names.len();
        let present: HashSet<&str> = blob_names.iter().map(String::as_str).collect();
        if verify {
            for name in &blob_names {
                let path = blob_dir.join(name);
                let Ok(actual) = digest_of(&path) else {
                    continue;
                };
                out.counts.blobs_verified += 1;
                if actual.hex() == name {
                    continue;
                }
                let Some(holders) = refs.blobs.get(name) else {
                    // Nobody's: reported (and removed) as unreferenced.
                    continue;
                };
                let Ok(digest) = Digest::from_hex(name) else {
                    continue;
                };
                out.findings.push(Finding::CorruptBlob {
                    digest,
                    users: holders
                        .iter()
                        .map(|(img, role)| (image_use(img), *role))
                        .collect(),
                    cache_only: holders.is_empty(),
                });
            }
        }
        let build_layers: HashSet<String> = {
            let mut stmt = tx.prepare("SELECT diff_id FROM build_layers")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let layer_dir = self.root().join("layers");
        for img in &images {
            if !present.contains(img.id.hex()) {
                out.findings.push(Finding::MissingBlob {
                    digest: img.id.clone(),
                    role: BlobRole::Config,
                    image: image_use(&img.id),
                });
            }
            for (i, b) in img.blobs.iter().enumerate() {
                let Ok(d) = b.digest.parse::<Digest>() else {
                    continue;
                };
                // A build layer is stored without its blob: its dir makes it.
                let regenerable = img.diff_ids.get(i) == Some(&d)
                    && build_layers.contains(&d.to_string())
                    && layer_dir.join(d.hex()).is_dir();
                if !present.contains(d.hex()) && !regenerable {
                    out.findings.push(Finding::MissingBlob {
                        digest: d,
                        role: BlobRole::Layer,
                        image: image_use(&img.id),
                    });
                }
            }
        }

        // Layers: each image's unpacked, each unpacked one some image's.
        let layer_names = entries(&layer_dir);
        out.counts.layers = layer_names.len();
        let unpacked: HashSet<&str> = layer_names.iter().map(String::as_str).collect();
        let mut missing: BTreeMap<Digest, Vec<ImageUse>> = BTreeMap::new();
        for img in &images {
            for d in img.diff_ids.iter().collect::<BTreeSet<_>>() {
                if !unpacked.contains(d.hex()) {
                    missing
                        .entry(d.clone())
                        .or_default()
                        .push(image_use(&img.id));
                }
            }
        }
        for (diff_id, images) in missing {
            out.findings.push(Finding::MissingLayer { diff_id, images });
        }
        for name in &layer_names {
            if !refs.layers.contains(name) {
                out.findings.push(Finding::UnreferencedLayer {
                    path: layer_dir.join(name),
                });
            }
        }
        // Blobs of a pull or push in progress are not referenced yet.
        if !self.commands_in_progress() {
            for name in &blob_names {
                if !refs.blobs.contains_key(name) {
                    out.findings.push(Finding::UnreferencedBlob {
                        path: blob_dir.join(name),
                    });
                }
            }
        }
        out.findings.extend(dangling_tags);

        // Containers: their image, their volumes, their dir.
        let volumes: BTreeSet<String> = {
            let mut stmt = tx.prepare("SELECT name FROM volumes")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        out.counts.volumes = volumes.len();
        let container_dir = self.root().join("containers");
        for (id, name, image) in &containers {
            if !image_ids.contains(image) {
                if let Ok(image) = image.parse() {
                    out.findings.push(Finding::ContainerWithoutImage {
                        id: id.clone(),
                        name: name.clone(),
                        image,
                    });
                }
            }
            let path = container_dir.join(id.as_str());
            if !path.is_dir() {
                out.findings.push(Finding::MissingContainerDir {
                    id: id.clone(),
                    name: name.clone(),
                    path,
                });
            }
        }
        {
            let mut stmt = tx.prepare(
                "SELECT DISTINCT c.id, c.name, json_extract(m.value, '$.source')
                 FROM containers c, json_each(c.config, '$.mounts') AS m
                 WHERE json_extract(m.value, '$.type') = 'volume'",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                let (id, name, volume) = row?;
                let (Ok(id), Some(volume)) = (id.parse(), volume) else {
                    continue;
                };
                if !volume.is_empty() && !volumes.contains(&volume) {
                    out.findings
                        .push(Finding::ContainerWithoutVolume { id, name, volume });
                }
            }
        }
        let ids: HashSet<&str> = containers.iter().map(|(id, ..)| id.as_str()).collect();
        for name in entries(&container_dir) {
            if !ids.contains(name.as_str()) {
                out.findings.push(Finding::OrphanContainerDir {
                    path: container_dir.join(name),
                });
            }
        }

        // Volumes: a dir for each record, a record for each dir.
        for v in &volumes {
            let path = self.volume_dir(v);
            if !path.is_dir() {
                out.findings.push(Finding::MissingVolumeDir {
                    name: v.clone(),
                    path: self.volume_data(v),
                });
            }
        }
        for name in entries(&self.root().join("volumes")) {
            if !volumes.contains(&name) {
                out.findings.push(Finding::OrphanVolumeDir {
                    path: self.volume_dir(&name),
                    name,
                });
            }
        }

        // Leases: of existing containers on existing networks.
        let networks: HashSet<String> = {
            let mut stmt = tx.prepare("SELECT id FROM networks")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        out.counts.networks = networks.len();
        let leases = self.leases(None)?;
        out.counts.leases = leases.len();
        for lease in leases {
            if !networks.contains(&lease.network) {
                out.findings.push(Finding::LeaseWithoutNetwork { lease });
            } else if !ids.contains(lease.container.as_str()) {
                out.findings.push(Finding::LeaseWithoutContainer { lease });
            }
        }

        // Build cache entries of images that are gone.
        {
            let mut stmt = tx.prepare(
                "SELECT key, image_id FROM build_cache WHERE image_id NOT IN (SELECT id FROM images)",
            )?;
            for row in
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            {
                let (key, image) = row?;
                out.findings
                    .push(Finding::DanglingCacheEntry { key, image });
            }
        }
        drop(tx);

        // Work dirs of commands that are gone.
        let tmp = self.root().join("tmp");
        for name in entries(&tmp) {
            if stray_tmp(&tmp, &name) {
                out.findings.push(Finding::StrayTmp {
                    path: tmp.join(name),
                });
            }
        }
        Ok(out)
    }

    /// Remove layer dirs and blobs no image references (the garbage
    /// collection every `open` runs after a crash); bytes freed.
    pub fn collect_garbage(&self) -> Result<u64, StoreError> {
        self.gc()
    }

    /// Remove a tag whose image does not exist.
    pub fn remove_dangling_tag(&self, tag: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM tags WHERE name = ?1 AND image_id NOT IN (SELECT id FROM images)",
            [tag],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remove a build cache entry whose image does not exist.
    pub fn remove_dangling_cache_entry(&self, key: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM build_cache WHERE key = ?1 AND image_id NOT IN (SELECT id FROM images)",
            [key],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remove a dir under `containers/` that has no record. Checked and
    /// moved away under the write lock, so a `create` (which makes the
    /// dir inside its transaction) is never caught half-way.
    pub fn remove_orphan_container_dir(&self, path: &Path) -> Result<(), StoreError> {
        let Some(name) = path
            .strip_prefix(self.root().join("containers"))
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| !n.is_empty() && !n.contains('/'))
        else {
            return Err(StoreError::Conflict(format!(
                "{} is not a container dir of this store",
                path.display()
            )));
        };
        let tx = self.write_tx()?;
        let known = tx
            .query_row("SELECT 1 FROM containers WHERE id = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if known {
            return Err(StoreError::Conflict(format!(
                "{} belongs to container {name} again",
                path.display()
            )));
        }
        let trash = self.tmp_dir("orphan")?;
        match std::fs::rename(path, trash.path().join("c")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(path)(e)),
        }
        drop(tx);
        drop(trash);
        Ok(())
    }

    /// Make the (empty) data dir of a volume whose dir is missing, as its
    /// next use would.
    pub fn restore_volume_dir(&self, name: &str) -> Result<(), StoreError> {
        self.volume(name)?;
        let data = self.volume_data(name);
        std::fs::create_dir_all(&data).map_err(StoreError::io(&data))
    }

    /// Release a lease whose container or network does not exist.
    pub fn release_orphan_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM leases WHERE network = ?1 AND ip = ?2 AND container = ?3
             AND (container NOT IN (SELECT id FROM containers) OR network NOT IN (SELECT id FROM networks))",
            params![lease.network, lease.ip, lease.container],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Remove an entry under `tmp/` that no live command holds (checked
    /// again first).
    pub fn remove_stray_tmp(&self, path: &Path) -> Result<(), StoreError> {
        let tmp = self.root().join("tmp");
        let name = path
            .strip_prefix(&tmp)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .ok_or_else(|| {
                StoreError::Conflict(format!("{} is not under {}", path.display(), tmp.display()))
            })?;
        if !stray_tmp(&tmp, name) {
            return Err(StoreError::Conflict(format!(
                "{} is in use by a running command",
                path.display()
            )));
        }
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(path)(e)),
        };
        if meta.is_dir() {
            std::fs::remove_dir_all(path).map_err(StoreError::io(path))?;
        } else {
            std::fs::remove_file(path).map_err(StoreError::io(path))?;
        }
        // Its lock, free (or it would not be stray).
        let _ = std::fs::remove_file(tmp.join(format!("{name}.lock")));
        Ok(())
    }

    /// Drop a corrupt blob that only the compressed-layer cache holds (a
    /// push compresses the layer again).
    pub fn drop_cached_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let refs = references(&tx, &self.root().join("blobs/sha256"))?;
        if refs
            .blobs
            .get(digest.hex())
            .is_some_and(|holders| !holders.is_empty())
        {
            return Err(StoreError::Conflict(format!(
                "blob {} belongs to an image",
                digest.short()
            )));
        }
        tx.execute(
            "DELETE FROM compressed WHERE digest = ?1",
            [digest.to_string()],
        )?;
        let path = self.blob_path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path)(e)),
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        (t, s)
    }

    fn layer_tar(content: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, "file", content).unwrap();
        b.into_inner().unwrap()
    }

    fn import(s: &Store, content: &[u8], tag: &str) -> crate::ImageRecord {
        let opts = crate::ImportOptions {
            reference: Some(tag.parse().unwrap()),
            ..Default::default()
        };
        s.import(&layer_tar(content)[..], &opts).unwrap()
    }

    #[test]
    fn a_fresh_store_with_an_image_is_clean() {
        let (_t, s) = store();
        import(&s, b"one", "one:1");
        let a = s.audit(true).unwrap();
        assert_eq!(a.findings, vec![]);
        assert_eq!(a.counts.images, 1);
        assert_eq!(a.counts.blobs, a.counts.blobs_verified);
        assert!(a.counts.blobs >= 2, "{:?}", a.counts);
    }

    #[test]
    fn damage_is_found_and_what_is_the_stores_alone_repaired() {
        let (t, s) = store();
        let img = import(&s, b"two", "two:1");
        let layer_blob: Digest = img.layer_blobs[0].digest.parse().unwrap();
        // A flipped byte in the layer blob.
        let p = s.blob_path(&layer_blob);
        let mut data = std::fs::read(&p).unwrap();
        data[600] ^= 1;
        std::fs::write(&p, data).unwrap();
        // A layer nobody references, a stray work dir, a tag of nothing.
        std::fs::create_dir_all(t.path().join("layers").join("ab".repeat(32))).unwrap();
        std::fs::create_dir(t.path().join("tmp/stray")).unwrap();
        s.conn()
            .execute(
                "INSERT INTO tags (name, image_id) VALUES ('docker.io/library/ghost:1', 'sha256:00')",
                [],
            )
            .unwrap();
        let a = s.audit(true).unwrap();
        let corrupt = a
            .findings
            .iter()
            .find_map(|f| match f {
                Finding::CorruptBlob { digest, users, .. } => Some((digest, users)),
                _ => None,
            })
            .expect("the corrupt blob is found");
        assert_eq!(corrupt.0, &layer_blob);
        assert_eq!(corrupt.1[0].0.name(), "two:1");
        assert_eq!(corrupt.1[0].1, BlobRole::Layer);
        assert!(a.findings.contains(&Finding::UnreferencedLayer {
            path: t.path().join("layers").join("ab".repeat(32))
        }));
        assert!(a.findings.contains(&Finding::StrayTmp {
            path: t.path().join("tmp/stray")
        }));
        assert!(a.findings.contains(&Finding::DanglingTag {
            tag: "docker.io/library/ghost:1".into(),
            image: "sha256:00".into()
        }));
        // --quick does not hash.
        assert!(!s
            .audit(false)
            .unwrap()
            .findings
            .iter()
            .any(|f| matches!(f, Finding::CorruptBlob { .. })));

        s.collect_garbage().unwrap();
        s.remove_stray_tmp(&t.path().join("tmp/stray")).unwrap();
        s.remove_dangling_tag("docker.io/library/ghost:1").unwrap();
        let left = s.audit(true).unwrap().findings;
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(matches!(left[0], Finding::CorruptBlob { .. }));
        // A work dir a live command holds is not stray.
        let live = s.tmp_dir("live").unwrap();
        assert!(s.audit(false).unwrap().findings.is_empty());
        assert!(s.remove_stray_tmp(live.path()).is_err());
    }

    #[test]
    fn removing_the_last_image_of_a_layer_takes_its_compressed_forms() {
        // push (and build --sbom/--provenance) cache a compressed form of
        // an uncompressed layer; rmi of the last image with that layer
        // used to leave the blob behind, unreferenced.
        let (_t, s) = store();
        let img = import(&s, b"only here", "one:1");
        let blob: Digest = img.layer_blobs[0].digest.parse().unwrap();
        let gz = s.compress_layer(&img.diff_ids[0], &blob, false).unwrap();
        let zst = s.compress_layer(&img.diff_ids[0], &blob, true).unwrap();
        assert!(s.audit(true).unwrap().findings.is_empty());
        s.remove_image("one:1", false).unwrap();
        for b in [&gz, &zst] {
            assert!(!s.has_blob(&b.digest.parse().unwrap()), "{} left", b.digest);
        }
        let a = s.audit(true).unwrap();
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }
}
