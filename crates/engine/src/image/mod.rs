//! Image operations: lookup, `tag`, `history`, `import`/`load`/`save`,
//! `image prune` and `rmi`, one file per operation. The records, options
//! and events they take and give are the store's, re-exported here so
//! front ends name them `engine::image::…`. Pull and push are
//! [`crate::distribution`]; `images` with its filters is
//! [`Engine::list_images`]; `image inspect` is [`Engine::inspect_image`].
use model::Digest;

use crate::{Engine, Result};

mod archive;
mod history;
mod prune;
mod remove;
mod tag;

pub use store::{
    parse_change, ArchiveFormat, Change, HistoryEntry, ImageRecord, ImportOptions, LoadedImage,
    PruneReport, RemoveEvent,
};

impl Engine {
    /// The local image `name` (a reference, a `sha256:` id, a full hex id
    /// or a unique id prefix).
    pub fn image(&self, name: &str) -> Result<ImageRecord> {
        Ok(self.store().resolve_image(name)?)
    }

    /// Every image but the build cache's untagged ones, in the store's
    /// order, unfiltered (`system df`; `images` is [`Engine::list_images`]).
    pub fn image_records(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.store().list_images()?)
    }

    /// The unpacked size of the layer `diff_id`, if the store has it.
    pub fn layer_size(&self, diff_id: &Digest) -> Result<Option<u64>> {
        Ok(self.store().layer_size(diff_id)?)
    }
}
