//! `load` and `save`: docker-archive (what `docker save` writes, both the
//! classic `<id>/layer.tar` layout and the newer `blobs/sha256/` one) and
//! OCI image layout archives, several images per archive. Every blob is
//! verified against its digest; a layer is unpacked only if the store does
//! not already have its diff-id.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use model::{Digest, Reference};
use serde_json::{json, Value};

use crate::image::IngestedLayer;
use crate::{Store, StoreError};

/// Which archive format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save` format (loads into `docker load` and `podman load`).
    Docker,
    /// OCI image layout.
    Oci,
}

/// An image `load` registered.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Its id.
    pub id: Digest,
    /// Its tags.
    pub tags: Vec<Reference>,
}

fn corrupt(reason: impl Into<String>) -> StoreError {
    StoreError::corrupt("archive", reason)
}

/// A failed copy out of the archive: a refused (bomb) stream, a full
/// disk, or a short archive.
fn copy_error(e: std::io::Error, key: &str, dest: &Path) -> StoreError {
    if let Some(r) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<crate::layer::Refusal>())
    {
        return StoreError::Layer(crate::layer::LayerError::Refused { reason: r.clone() });
    }
    if e.kind() == std::io::ErrorKind::StorageFull {
        return StoreError::io(dest)(e);
    }
    corrupt(format!("truncated archive at {key}: {e}"))
}

/// Extract the archive's regular files under `dir` (paths checked, links
/// recorded by name, never followed on disk).
fn extract(
    reader: impl Read,
    dir: &Path,
    limits: crate::layer::Limits,
) -> Result<HashMap<String, String>, StoreError> {
    let stream =
        crate::layer::decompress_bounded(reader, limits, None).map_err(StoreError::io(dir))?;
    let mut archive = tar::Archive::new(stream);
    let mut links = HashMap::new();
    let mut any = false;
    for entry in archive
        .entries()
        .map_err(|e| corrupt(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| corrupt(format!("truncated or corrupt tar: {e}")))?;
        any = true;
        let path = entry
            .path()
            .map_err(|e| corrupt(e.to_string()))?
            .into_owned();
        let mut rel = PathBuf::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir | Component::RootDir => {}
                _ => {
                    return Err(corrupt(format!(
                        "entry {} leaves the archive",
                        path.display()
                    )))
                }
            }
        }
        let key = rel.to_string_lossy().into_owned();
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dest = dir.join(&rel);
                if let Some(p) = dest.parent() {
                    std::fs::create_dir_all(p).map_err(StoreError::io(p))?;
                }
                let mut f = std::fs::File::create(&dest).map_err(StoreError::io(&dest))?;
                std::io::copy(&mut entry, &mut f).map_err(|e| copy_error(e, &key, &dest))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Ok(Some(t)) = entry.link_name() {
                    let t = if entry.header().entry_type() == tar::EntryType::Symlink {
                        rel.parent().unwrap_or(Path::new("")).join(t)
                    } else {
                        t.into_owned()
                    };
                    let mut norm = PathBuf::new();
                    for c in t.components() {
                        match c {
                            Component::Normal(n) => norm.push(n),
                            Component::ParentDir => {
                                norm.pop();
                            }
                            _ => {}
                        }
                    }
                    links.insert(key, norm.to_string_lossy().into_owned());
                }
            }
            _ => {}
        }
    }
    if !any {
        return Err(corrupt("the archive is empty"));
    }
    Ok(links)
}

/// The largest manifest, index or image config `load` reads (dockerd's
/// registry client caps manifests at 4 MiB; configs of real images are a
/// few KiB).
const MAX_JSON: u64 = 8 << 20;

/// How many manifests and indexes one `load` follows (an index may name
/// itself).
const MAX_DESCRIPTORS: usize = 4096;

struct Extracted {
    dir: PathBuf,
    links: HashMap<String, String>,
}

impl Extracted {
    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        let mut name = name.trim_start_matches("./").to_string();
        for _ in 0..8 {
            match self.links.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        // An absolute name would replace the extraction dir in `join`.
        if name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(corrupt(format!("{name} leaves the archive")));
        }
        let p = self.dir.join(&name);
        if !p.is_file() {
            return Err(corrupt(format!("{name} is missing from the archive")));
        }
        Ok(p)
    }

    /// A JSON document of the archive (a manifest, an index, a config):
    /// refused beyond [`MAX_JSON`] rather than read into memory.
    fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        let p = self.path(name)?;
        let len = std::fs::metadata(&p).map_err(StoreError::io(&p))?.len();
        if len > MAX_JSON {
            return Err(corrupt(format!(
                "{name} is {len} bytes, more than the {MAX_JSON} a manifest or config may have"
            )));
        }
        std::fs::read(&p).map_err(StoreError::io(&p))
    }

    /// A blob named by digest, verified.
    fn blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let data = self.read(&format!("blobs/sha256/{}", d.hex()))?;
        let actual = Digest::of(&data);
        if actual != *d {
            return Err(StoreError::DigestMismatch {
                what: format!("blob {d}"),
                expected: d.clone(),
                actual,
            });
        }
        Ok(data)
    }
}

/// The digest a docker-archive path names, if it names one
/// (`blobs/sha256/<hex>`, `<hex>.json`).
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    if name.contains("blobs/sha256/") || name.ends_with(".json") {
        Digest::from_hex(hex).ok()
    } else {
        None
    }
}

fn diff_ids(config: &[u8]) -> Result<Vec<Digest>, StoreError> {
    let v: Value =
        serde_json::from_slice(config).map_err(|e| corrupt(format!("image config: {e}")))?;
    v["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| corrupt("image config has no rootfs.diff_ids"))?
        .iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt("bad diff_id"))
        })
        .collect()
}

/// An image to save, with the names it goes under.
struct Item {
    img: crate::ImageRecord,
    tags: Vec<Reference>,
}

impl Store {
    /// Load every image of a docker-archive or OCI-layout archive.
    pub fn load(&self, reader: impl Read) -> Result<Vec<LoadedImage>, StoreError> {
        let tmp = self.tmp_dir("load")?;
        let dir = tmp.path().join("archive");
        std::fs::create_dir(&dir).map_err(StoreError::io(&dir))?;
        let links = extract(reader, &dir, self.limits())?;
        let x = Extracted { dir, links };
        let mut loaded = Vec::new();
        if x.dir.join("manifest.json").is_file() {
            let manifest: Value = serde_json::from_slice(&x.read("manifest.json")?)
                .map_err(|e| corrupt(format!("manifest.json: {e}")))?;
            for m in manifest
                .as_array()
                .ok_or_else(|| corrupt("manifest.json is not a list"))?
            {
                let cfg_name = m["Config"]
                    .as_str()
                    .ok_or_else(|| corrupt("manifest.json entry without Config"))?;
                let config = x.read(cfg_name)?;
                if let Some(d) = digest_in_name(cfg_name) {
                    let actual = Digest::of(&config);
                    if actual != d {
                        return Err(StoreError::DigestMismatch {
                            what: cfg_name.to_string(),
                            expected: d,
                            actual,
                        });
                    }
                }
                let diffs = diff_ids(&config)?;
                let names: Vec<&str> = m["Layers"]
                    .as_array()
                    .ok_or_else(|| corrupt("manifest.json entry without Layers"))?
                    .iter()
                    .filter_map(|l| l.as_str())
                    .collect();
                if names.len() > crate::MAX_LAYERS {
                    return Err(StoreError::TooDeep {
                        layers: names.len(),
                    });
                }
                if names.len() != diffs.len() {
                    return Err(corrupt(
                        "manifest.json lists a different number of layers than the config",
                    ));
                }
                let mut layers = Vec::new();
                for (name, diff) in names.iter().zip(&diffs) {
                    let p = x.path(name)?;
                    let f = std::fs::File::open(&p).map_err(StoreError::io(&p))?;
                    let expected = if name.contains("blobs/sha256/") {
                        digest_in_name(name)
                    } else {
                        None
                    };
                    layers.push(self.ingest_layer(&tmp, f, expected.as_ref(), Some(diff))?);
                }
                let tags: Vec<Reference> = m["RepoTags"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().and_then(|t| t.parse().ok()))
                            .collect()
                    })
                    .unwrap_or_default();
                self.put_blob(tmp.path(), &config)?;
                let id = self.register_image(&config, layers, &tags, &[])?;
                loaded.push(LoadedImage { id, tags });
            }
        } else if x.dir.join("index.json").is_file() {
            let index: Value = serde_json::from_slice(&x.read("index.json")?)
                .map_err(|e| corrupt(format!("index.json: {e}")))?;
            let mut descriptors: Vec<Value> =
                index["manifests"].as_array().cloned().unwrap_or_default();
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            // First the walk to the image manifests (bounded: indexes may
            // fan out), so a refusal registers nothing.
            let mut found: Vec<(Digest, Value, Option<Reference>)> = Vec::new();
            let mut followed = 0;
            while let Some(desc) = descriptors.pop() {
                followed += 1;
                if followed > MAX_DESCRIPTORS {
                    return Err(corrupt(format!(
                        "index.json leads to more than {MAX_DESCRIPTORS} manifests and indexes"
                    )));
                }
                let digest: Digest = desc["digest"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| corrupt("descriptor without a digest"))?;
                let blob = x.blob(&digest)?;
                let doc: Value = serde_json::from_slice(&blob)
                    .map_err(|e| corrupt(format!("manifest {digest}: {e}")))?;
                let annotations = &desc["annotations"];
                if doc["manifests"].is_array() {
                    // A nested index: take this platform's manifests.
                    for m in doc["manifests"].as_array().cloned().unwrap_or_default() {
                        let os = m["platform"]["os"].as_str().unwrap_or("linux");
                        let arch = m["platform"]["architecture"].as_str().unwrap_or("amd64");
                        let ours = match std::env::consts::ARCH {
                            "x86_64" => "amd64",
                            "aarch64" => "arm64",
                            a => a,
                        };
                        if os == "linux" && arch == ours {
                            let mut m = m.clone();
                            if m["annotations"].is_null() {
                                m["annotations"] = annotations.clone();
                            }
                            descriptors.push(m);
                        }
                    }
                    continue;
                }
                let tag = annotations["io.containerd.image.name"]
                    .as_str()
                    .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str())
                    .filter(|n| n.contains(':') || n.contains('/'))
                    .and_then(|n| n.parse::<Reference>().ok());
                found.push((digest, doc, tag));
            }
            for (digest, doc, tag) in found {
                if let Some(&i) = seen.get(&digest.to_string()) {
                    let entry: &mut LoadedImage = &mut loaded[i];
                    if let Some(t) = tag {
                        self.tag(&entry.id, &t)?;
                        entry.tags.push(t);
                    }
                    continue;
                }
                let cfg_digest: Digest = doc["config"]["digest"]
                    .as_str()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| corrupt(format!("manifest {digest} has no config")))?;
                let config = x.blob(&cfg_digest)?;
                let diffs = diff_ids(&config)?;
                let layer_descs = doc["layers"].as_array().cloned().unwrap_or_default();
                if layer_descs.len() > crate::MAX_LAYERS {
                    return Err(StoreError::TooDeep {
                        layers: layer_descs.len(),
                    });
                }
                if layer_descs.len() != diffs.len() {
                    return Err(corrupt(format!(
                        "manifest {digest} and its config disagree on the layers"
                    )));
                }
                let mut layers: Vec<IngestedLayer> = Vec::new();
                for (l, diff) in layer_descs.iter().zip(&diffs) {
                    let ld: Digest = l["digest"]
                        .as_str()
                        .and_then(|d| d.parse().ok())
                        .ok_or_else(|| corrupt("layer without a digest"))?;
                    let p = x.path(&format!("blobs/sha256/{}", ld.hex()))?;
                    let f = std::fs::File::open(&p).map_err(StoreError::io(&p))?;
                    layers.push(self.ingest_layer(&tmp, f, Some(&ld), Some(diff))?);
                }
                self.put_blob(tmp.path(), &config)?;
                let tags: Vec<Reference> = tag.into_iter().collect();
                let id = self.register_image(&config, layers, &tags, &[])?;
                seen.insert(digest.to_string(), loaded.len());
                loaded.push(LoadedImage { id, tags });
            }
            loaded.reverse();
        } else {
            return Err(corrupt(
                "not a docker-archive (no manifest.json) or OCI image layout (no index.json)",
            ));
        }
        if loaded.is_empty() {
            return Err(corrupt("the archive contains no image"));
        }
        Ok(loaded)
    }

    /// Save images (by reference or id) to an archive.
    pub fn save(
        &self,
        images: &[String],
        format: ArchiveFormat,
        writer: impl Write,
    ) -> Result<(), StoreError> {
        self.save_with(images, format, writer, None)
    }

    /// [`Store::save`] with uncompressed layers compressed (`Some(false)`:
    /// gzip, `Some(true)`: zstd), once, through the same cache as push.
    pub fn save_with(
        &self,
        images: &[String],
        format: ArchiveFormat,
        writer: impl Write,
        compress: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut items: Vec<Item> = Vec::new();
        for name in images {
            let img = self.resolve_image(name)?;
            let tags: Vec<Reference> = match name.parse::<Reference>() {
                Ok(r) if img.repo_tags.contains(&r) => vec![r],
                _ => Vec::new(),
            };
            match items.iter_mut().find(|i| i.img.id == img.id) {
                Some(i) => i.tags.extend(tags),
                None => items.push(Item { img, tags }),
            }
        }
        self.save_items(items, format, writer, compress, None)
    }

    /// One image built for several platforms (`images`, one per platform)
    /// as an OCI layout: its index names (`tags`) one image index whose
    /// manifests carry their platforms, as BuildKit's OCI exporter writes
    /// it; `load` takes this machine's platform from it.
    pub fn save_platforms(
        &self,
        images: &[Digest],
        tags: &[Reference],
        writer: impl Write,
        compress: Option<bool>,
    ) -> Result<(), StoreError> {
        let mut items = Vec::new();
        for d in images {
            items.push(Item {
                img: self.resolve_image(&d.to_string())?,
                tags: Vec::new(),
            });
        }
        self.save_items(items, ArchiveFormat::Oci, writer, compress, Some(tags))
    }

    fn save_items(
        &self,
        items: Vec<Item>,
        format: ArchiveFormat,
        writer: impl Write,
        compress: Option<bool>,
        nested: Option<&[Reference]>,
    ) -> Result<(), StoreError> {
        let mut tar = tar::Builder::new(writer);
        let mut written: HashSet<String> = HashSet::new();
        let add_dir = |tar: &mut tar::Builder<_>, name: &str| -> Result<(), StoreError> {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_cksum();
            tar.append_data(&mut h, name, std::io::empty())
                .map_err(StoreError::io(name))
        };
        add_dir(&mut tar, "blobs")?;
        add_dir(&mut tar, "blobs/sha256")?;
        fn add_bytes<W: Write>(
            tar: &mut tar::Builder<W>,
            name: &str,
            data: &[u8],
        ) -> Result<(), StoreError> {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append_data(&mut h, name, data)
                .map_err(StoreError::io(name))
        }
        let mut add_blob = |tar: &mut tar::Builder<_>, d: &Digest| -> Result<u64, StoreError> {
            let p = self.blob_path(d);
            let mut f = std::fs::File::open(&p).map_err(StoreError::io(&p))?;
            let size = f.metadata().map_err(StoreError::io(&p))?.len();
            if written.insert(d.to_string()) {
                let mut h = tar::Header::new_ustar();
                h.set_mode(0o644);
                h.set_size(size);
                h.set_cksum();
                tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut f)
                    .map_err(StoreError::io(&p))?;
            }
            Ok(size)
        };
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut index_manifests = Vec::new();
        let mut platform_manifests = Vec::new();
        let mut add_manifest: Vec<(Digest, Vec<u8>)> = Vec::new();
        for item in &items {
            let cfg_size = add_blob(&mut tar, &item.img.id)?;
            let mut layer_names = Vec::new();
            let mut layer_descs = Vec::new();
            for (b, diff) in item.img.layer_blobs.iter().zip(item.img.diff_ids.iter()) {
                let mut b = b.clone();
                if let Some(zstd) = compress {
                    if b.media_type.ends_with(".tar") || b.media_type.ends_with("diff.tar") {
                        let want = if zstd {
                            "application/vnd.oci.image.layer.v1.tar+zstd"
                        } else {
                            "application/vnd.oci.image.layer.v1.tar+gzip"
                        };
                        let src: Digest = b
                            .digest
                            .parse()
                            .map_err(|_| StoreError::corrupt("stored image", "bad layer digest"))?;
                        let cached = self.compressed_blob(diff, want)?.filter(|c| {
                            c.digest
                                .parse::<Digest>()
                                .map(|d| self.blob_path(&d).exists())
                                .unwrap_or(false)
                        });
                        b = match cached {
                            Some(c) => c,
                            None => self.compress_layer(diff, &src, zstd)?,
                        };
                    }
                }
                let d: Digest = b
                    .digest
                    .parse()
                    .map_err(|_| StoreError::corrupt("stored image", "bad layer digest"))?;
                self.ensure_layer_blob(diff, &d)?;
                let size = add_blob(&mut tar, &d)?;
                layer_names.push(format!("blobs/sha256/{}", d.hex()));
                layer_descs
                    .push(json!({"mediaType": b.media_type, "digest": b.digest, "size": size}));
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": item.img.id.to_string(), "size": cfg_size},
                "layers": layer_descs,
            });
            let manifest_bytes = serde_json::to_vec(&manifest)
                .map_err(|e| StoreError::corrupt("manifest", e.to_string()))?;
            let manifest_digest = Digest::of(&manifest_bytes);
            add_manifest.push((manifest_digest.clone(), manifest_bytes.clone()));
            let cfg: Value =
                serde_json::from_slice(&self.read_blob(&item.img.id)?).unwrap_or_default();
            let mut platform = json!({
                "os": cfg["os"].as_str().unwrap_or("linux"),
                "architecture": cfg["architecture"].as_str().unwrap_or(""),
            });
            if let Some(v) = cfg["variant"].as_str() {
                platform["variant"] = json!(v);
            }
            let desc = |annotations: Value| {
                json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest_digest.to_string(),
                    "size": manifest_bytes.len(),
                    "annotations": annotations,
                    "platform": platform,
                })
            };
            if nested.is_some() {
                let mut d = desc(json!({}));
                if let Some(o) = d.as_object_mut() {
                    o.remove("annotations");
                }
                platform_manifests.push(d);
            } else if item.tags.is_empty() {
                index_manifests.push(desc(json!({})));
            }
            for t in &item.tags {
                index_manifests.push(desc(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                })));
                if let (Some(tag), Some(top)) = (t.tag(), item.img.diff_ids.last()) {
                    repositories
                        .entry(t.familiar_name())
                        .or_default()
                        .insert(tag.to_string(), top.hex().to_string());
                }
            }
            docker_manifest.push(json!({
                "Config": format!("blobs/sha256/{}", item.img.id.hex()),
                "RepoTags": if item.tags.is_empty() { Value::Null } else { json!(item.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>()) },
                "Layers": layer_names,
            }));
        }
        if let Some(tags) = nested {
            let list = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": platform_manifests,
            }))
            .map_err(|e| StoreError::corrupt("index", e.to_string()))?;
            let list_digest = Digest::of(&list);
            let desc = |annotations: Value| {
                json!({
                    "mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": list_digest.to_string(),
                    "size": list.len(),
                    "annotations": annotations,
                })
            };
            if tags.is_empty() {
                index_manifests.push(desc(json!({})));
            }
            for t in tags {
                index_manifests.push(desc(json!({
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag().unwrap_or("latest"),
                })));
            }
            add_manifest.push((list_digest, list));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index_manifests,
        });
        let mut seen_manifests = HashSet::new();
        for (d, bytes) in &add_manifest {
            if seen_manifests.insert(d.to_string()) {
                add_bytes(&mut tar, &format!("blobs/sha256/{}", d.hex()), bytes)?;
            }
        }
        add_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add_bytes(&mut tar, "index.json", index.to_string().as_bytes())?;
        if format == ArchiveFormat::Docker {
            add_bytes(
                &mut tar,
                "manifest.json",
                json!(docker_manifest).to_string().as_bytes(),
            )?;
            if !repositories.is_empty() {
                add_bytes(
                    &mut tar,
                    "repositories",
                    json!(repositories).to_string().as_bytes(),
                )?;
            }
        }
        tar.into_inner()
            .map_err(StoreError::io("archive"))?
            .flush()
            .map_err(StoreError::io("archive"))?;
        Ok(())
    }
}
