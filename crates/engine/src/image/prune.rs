//! `image prune`.
use super::{ImageRecord, PruneReport};
use crate::{Engine, Result};

impl Engine {
    /// `image prune`: the dangling images, or with `all` every image no
    /// container uses (the build cache is left to `builder prune`).
    pub fn prune_images(&self, all: bool) -> Result<PruneReport> {
        Ok(self.store().prune_images(all)?)
    }

    /// [`Engine::prune_images`] of the images `pick` accepts (the API's
    /// `label` and `until` filters).
    pub fn prune_images_where(
        &self,
        all: bool,
        pick: impl Fn(&ImageRecord) -> bool,
    ) -> Result<PruneReport> {
        Ok(self.store().prune_images_where(all, pick)?)
    }
}
