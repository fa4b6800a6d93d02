//! A container's mounts from `--volumes-from`, `-v`, `--mount` and the image's `VOLUME`s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{MountSpec, MountType};
use crate::error::{EngineError, Result};

use super::{
    bad, check_driver_options, new_record, parse_mount_flag, parse_volume_flag, NewVolume,
    VolumeRecord,
};

/// What [`crate::Engine::plan_mounts`] decided.
pub(crate) struct MountPlan {
    /// The container's mounts.
    pub mounts: Vec<MountSpec>,
    /// Volumes to create with the container (existing ones are kept).
    pub volumes: Vec<VolumeRecord>,
}

impl crate::Engine {
    /// Turn `--volumes-from`, `-v`, `--mount` and the image's `VOLUME`s
    /// into the container's mounts (Docker's precedence: explicit mounts
    /// over `--volumes-from`, both over image volumes).
    pub(crate) fn plan_mounts(
        &self,
        volume_flags: &[String],
        mount_flags: &[String],
        volumes_from: &[String],
        tmpfs: &BTreeMap<String, String>,
        image_volumes: &[String],
    ) -> Result<MountPlan> {
        let mut mounts: Vec<MountSpec> = Vec::new();
        for vf in volumes_from {
            let (name, mode) = match vf.rsplit_once(':') {
                Some((n, m @ ("ro" | "rw"))) => (n, Some(m)),
                Some((_, m)) => {
                    return Err(bad(
                        "--volumes-from",
                        format!("invalid mode {m:?} in {vf:?}: use ro or rw"),
                    ))
                }
                None => (vf.as_str(), None),
            };
            let c = self.container(name)?;
            for m in c
                .config
                .mounts
                .iter()
                .filter(|m| m.kind != MountType::Tmpfs)
            {
                let mut m = m.clone();
                // Shared, not owned: only its creator removes it with -v.
                m.anonymous = false;
                if let Some(mode) = mode {
                    m.readonly = mode == "ro";
                }
                mounts.retain(|x| x.target != m.target);
                mounts.push(m);
            }
        }
        let mut explicit: Vec<(MountSpec, NewVolume)> = Vec::new();
        for v in volume_flags {
            explicit.push((parse_volume_flag(v)?, NewVolume::default()));
        }
        for m in mount_flags {
            explicit.push(parse_mount_flag(m)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut new_opts: BTreeMap<String, NewVolume> = BTreeMap::new();
        for (mut m, nv) in explicit {
            if !seen.insert(m.target.clone()) || tmpfs.contains_key(&m.target) {
                return Err(bad(
                    "-v/--mount",
                    format!("duplicate mount point: {}", m.target),
                ));
            }
            if m.anonymous {
                m.source = model::ContainerId::random().as_str().to_string();
            }
            if m.kind == MountType::Bind && !m.bind_spec.is_empty() {
                // Docker: -v creates a missing host directory.
                if std::fs::symlink_metadata(&m.source).is_err() {
                    std::fs::create_dir_all(&m.source).map_err(|e| {
                        EngineError::io(format!("creating bind source {}", m.source), e)
                    })?;
                }
            }
            if m.kind == MountType::Volume && nv != NewVolume::default() {
                check_driver_options(&nv.options)?;
                new_opts.insert(m.source.clone(), nv);
            }
            mounts.retain(|x| x.target != m.target);
            mounts.push(m);
        }
        let mut image_volumes: Vec<String> = image_volumes
            .iter()
            .filter_map(|v| {
                let clean: PathBuf = Path::new(v).components().collect();
                let s = clean.display().to_string();
                (s.starts_with('/') && s != "/").then_some(s)
            })
            .collect();
        image_volumes.sort();
        image_volumes.dedup();
        for target in image_volumes {
            if mounts.iter().any(|m| m.target == target) || tmpfs.contains_key(&target) {
                continue;
            }
            mounts.push(MountSpec {
                kind: MountType::Volume,
                source: model::ContainerId::random().as_str().to_string(),
                target,
                anonymous: true,
                ..Default::default()
            });
        }
        let mut volumes = Vec::new();
        for m in mounts.iter().filter(|m| m.kind == MountType::Volume) {
            if volumes.iter().any(|v: &VolumeRecord| v.name == m.source) {
                continue;
            }
            let nv = new_opts.remove(&m.source).unwrap_or_default();
            volumes.push(new_record(&m.source, nv.labels, nv.options, m.anonymous));
        }
        Ok(MountPlan { mounts, volumes })
    }
}
