//! `volume rm`, `volume prune`, and anonymous volumes removed with their container.

use crate::config::{MountSpec, MountType};
use crate::error::Result;

use super::{release_mount, VolumeRecord};

/// Remove the anonymous volumes among `mounts` that no container uses.
pub(crate) fn remove_anonymous(store: &store::Store, mounts: &[MountSpec]) {
    for m in mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume && m.anonymous)
    {
        if let Err(e) = store.remove_volume(&m.source, |_, data| release_mount(data)) {
            tracing::debug!("keeping volume {}: {e}", m.source);
        }
    }
}

/// What `volume prune` removed.
#[derive(Debug, Default)]
pub struct VolumePrune {
    /// Names removed.
    pub removed: Vec<String>,
    /// Bytes freed.
    pub reclaimed: u64,
}

impl crate::Engine {
    /// `volume rm`.
    pub fn volume_remove(&self, name: &str) -> Result<VolumeRecord> {
        let rec = self
            .store()
            .remove_volume(name, |_, data| release_mount(data))?;
        self.emit("volume", "destroy", &rec.name, &[("driver", "local")]);
        Ok(rec)
    }

    /// `volume prune`: unused anonymous volumes (all unused ones with
    /// `all`) that match `keep`.
    pub fn volume_prune(
        &self,
        all: bool,
        keep: impl Fn(&VolumeRecord) -> bool,
    ) -> Result<VolumePrune> {
        let used = self.store().volumes_in_use()?;
        let mut out = VolumePrune::default();
        for v in self.store().volumes()? {
            if used.contains(&v.name) || !(all || v.anonymous) || !keep(&v) {
                continue;
            }
            let size = self.volume_size(&v);
            if self.volume_remove(&v.name).is_ok() {
                out.reclaimed += size;
                out.removed.push(v.name);
            }
        }
        Ok(out)
    }

    /// Remove the anonymous volumes among `mounts` that no other container
    /// uses (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, mounts: &[MountSpec]) {
        remove_anonymous(&self.store(), mounts)
    }
}
