//! `system df`: the space images, containers, volumes and the build cache
//! take, as dockerd's `GET /system/df` counts it (layers shared between
//! images counted once; an image's `SharedSize` is what it shares).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::config::MountType;
use crate::container::Container;
use crate::volumes::VolumeRecord;
use crate::{Engine, Result};

/// One image and the space it takes.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    /// The image.
    pub image: store::ImageRecord,
    /// Bytes of its layers (each once).
    pub size: u64,
    /// Bytes of its layers that other images hold too.
    pub shared_size: u64,
    /// Containers (any state) made from it.
    pub containers: usize,
}

/// One container and the space it takes.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    /// The container.
    pub container: Container,
    /// Bytes of its writable layer.
    pub size_rw: u64,
    /// Bytes of its image's layers plus its writable layer.
    pub size_root_fs: u64,
}

/// One volume and the space it takes.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    /// The volume.
    pub volume: VolumeRecord,
    /// Bytes of its content.
    pub size: u64,
    /// Containers (any state) that mount it.
    pub ref_count: usize,
}

/// One build cache entry: a cached step's image, sized by its own layer.
#[derive(Debug, Clone)]
pub struct CacheUsage {
    /// The step image's id (`sha256:…`).
    pub id: String,
    /// Bytes of its top layer.
    pub size: u64,
    /// Other images hold its top layer too.
    pub shared: bool,
    /// When the step was built.
    pub created: Option<DateTime<Utc>>,
}

/// Which parts of the report to compute (dockerd's `?type=` from API
/// 1.42; all of them by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsageParts {
    /// Images and `LayersSize`.
    pub images: bool,
    /// Containers.
    pub containers: bool,
    /// Volumes.
    pub volumes: bool,
    /// The build cache.
    pub build_cache: bool,
}

impl Default for DiskUsageParts {
    fn default() -> Self {
        DiskUsageParts {
            images: true,
            containers: true,
            volumes: true,
            build_cache: true,
        }
    }
}

/// The report; a part not asked for is `None`.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Bytes of every image layer, each once.
    pub layers_size: Option<u64>,
    /// Images (the build cache's untagged step images left out).
    pub images: Option<Vec<ImageUsage>>,
    /// Containers.
    pub containers: Option<Vec<ContainerUsage>>,
    /// Volumes.
    pub volumes: Option<Vec<VolumeUsage>>,
    /// Build cache entries.
    pub build_cache: Option<Vec<CacheUsage>>,
}

impl Engine {
    /// `system df`.
    pub fn disk_usage(&self, parts: DiskUsageParts) -> Result<DiskUsage> {
        let containers = self.containers()?;
        let mut out = DiskUsage::default();
        let need_layers = parts.images || parts.containers || parts.build_cache;
        let images = if need_layers {
            self.image_records()?
        } else {
            Vec::new()
        };
        let cached = if parts.build_cache || parts.images {
            self.build_cache_images()?
        } else {
            Default::default()
        };
        let mut layer_size: HashMap<String, u64> = HashMap::new();
        let mut holders: HashMap<String, usize> = HashMap::new();
        for img in &images {
            for d in img.diff_ids.iter().collect::<BTreeSet<_>>() {
                if let std::collections::hash_map::Entry::Vacant(v) =
                    layer_size.entry(d.to_string())
                {
                    v.insert(self.layer_size(d)?.unwrap_or(0));
                }
                *holders.entry(d.to_string()).or_default() += 1;
            }
        }
        let image_size = |img: &store::ImageRecord| -> (u64, u64) {
            let layers: BTreeSet<String> = img.diff_ids.iter().map(|d| d.to_string()).collect();
            let size = |d: &String| layer_size.get(d).copied().unwrap_or(0);
            let total = layers.iter().map(size).sum();
            let shared = layers
                .iter()
                .filter(|d| holders.get(*d).copied().unwrap_or(0) > 1)
                .map(size)
                .sum();
            (total, shared)
        };
        if parts.images {
            out.layers_size = Some(layer_size.values().sum());
            out.images = Some(
                images
                    .iter()
                    .filter(|i| !(cached.contains(&i.id.to_string()) && i.repo_tags.is_empty()))
                    .map(|img| {
                        let (size, shared_size) = image_size(img);
                        ImageUsage {
                            image: img.clone(),
                            size,
                            shared_size,
                            containers: containers
                                .iter()
                                .filter(|c| c.record.image_id == img.id)
                                .count(),
                        }
                    })
                    .collect(),
            );
        }
        if parts.containers {
            let by_id: HashMap<String, &store::ImageRecord> =
                images.iter().map(|i| (i.id.to_string(), i)).collect();
            out.containers = Some(
                containers
                    .iter()
                    .map(|c| {
                        let size_rw = self.container_size_rw(c.id());
                        let base = by_id
                            .get(&c.record.image_id.to_string())
                            .map(|i| image_size(i).0)
                            .unwrap_or(0);
                        ContainerUsage {
                            container: c.clone(),
                            size_rw,
                            size_root_fs: base + size_rw,
                        }
                    })
                    .collect(),
            );
        }
        if parts.volumes {
            let mut refs: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &containers {
                let names: BTreeSet<&str> = c
                    .config
                    .mounts
                    .iter()
                    .filter(|m| m.kind == MountType::Volume)
                    .map(|m| m.source.as_str())
                    .collect();
                for n in names {
                    *refs.entry(n).or_default() += 1;
                }
            }
            out.volumes = Some(
                self.volumes()?
                    .into_iter()
                    .map(|v| VolumeUsage {
                        size: self.volume_size(&v),
                        ref_count: refs.get(v.name.as_str()).copied().unwrap_or(0),
                        volume: v,
                    })
                    .collect(),
            );
        }
        if parts.build_cache {
            let all = self.store().list_all_images()?;
            let mut entries = Vec::new();
            for img in all.iter().filter(|i| cached.contains(&i.id.to_string())) {
                let Some(top) = img.diff_ids.last() else {
                    continue;
                };
                let size = match layer_size.get(&top.to_string()) {
                    Some(s) => *s,
                    None => self.layer_size(top)?.unwrap_or(0),
                };
                entries.push(CacheUsage {
                    id: img.id.to_string(),
                    size,
                    shared: holders.get(&top.to_string()).copied().unwrap_or(0) > 1,
                    created: img.created,
                });
            }
            out.build_cache = Some(entries);
        }
        Ok(out)
    }
}
