//! Listing volumes as `system df` counts them, and where a volume's
//! content lives.
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::VolumeRecord;
use crate::{Engine, Result};

impl Engine {
    /// Every volume, by name, unfiltered (`volume ls` with its filters is
    /// [`Engine::list_volumes`]).
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.store().volumes()?)
    }

    /// The names of the volumes some container (running or not) mounts.
    pub fn volumes_in_use(&self) -> Result<BTreeSet<String>> {
        Ok(self.store().volumes_in_use()?)
    }

    /// The host directory holding the content of the volume `name` (its
    /// `Mountpoint`), whether or not the volume exists or is mounted
    /// ([`Engine::volume_path`] mounts it).
    pub fn volume_mountpoint(&self, name: &str) -> PathBuf {
        self.store().volume_data(name)
    }
}
