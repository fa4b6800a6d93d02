//! `image prune`.
use super::PruneReport;
use crate::{Engine, Result};

impl Engine {
    /// `image prune`: the dangling images, or with `all` every image no
    /// container uses (the build cache is left to `builder prune`).
    pub fn prune_images(&self, all: bool) -> Result<PruneReport> {
        Ok(self.store().prune_images(all)?)
    }
}
