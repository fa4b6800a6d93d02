//! `tag`.
use model::{Digest, Reference};

use crate::{Engine, Result};

impl Engine {
    /// `tag`: point `reference` at the local image `image` (moving the tag
    /// if another image had it), recording the event.
    pub fn tag_image(&self, image: &Digest, reference: &Reference) -> Result<()> {
        self.store().tag(image, reference)?;
        let name = reference.to_string();
        self.emit("image", "tag", &image.to_string(), &[("name", &name)]);
        Ok(())
    }
}
