//! `history`.
use model::Digest;

use super::HistoryEntry;
use crate::{Engine, Result};

impl Engine {
    /// `history`: the steps that made the local image `image`, newest
    /// first.
    pub fn image_history(&self, image: &Digest) -> Result<Vec<HistoryEntry>> {
        Ok(self.store().history(image)?)
    }
}
