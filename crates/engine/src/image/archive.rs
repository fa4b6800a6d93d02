//! `import`, `load` and `save`: images from and to tar streams.
use std::io::{Read, Write};

use super::{ArchiveFormat, ImageRecord, ImportOptions, LoadedImage};
use crate::{Engine, Result};

impl Engine {
    /// `import`: a root filesystem tar (plain, gzip or zstd) becomes a
    /// one-layer image, recording the event.
    pub fn import_image(&self, reader: impl Read, opts: &ImportOptions) -> Result<ImageRecord> {
        let record = self.store().import(reader, opts)?;
        self.emit("image", "import", &record.id.to_string(), &[]);
        Ok(record)
    }

    /// `load`: every image of a docker-archive or OCI-layout tar, recording
    /// an event for each.
    pub fn load_images(&self, reader: impl Read) -> Result<Vec<LoadedImage>> {
        let loaded = self.store().load(reader)?;
        for l in &loaded {
            self.emit("image", "load", &l.id.to_string(), &[]);
        }
        Ok(loaded)
    }

    /// `save`: the images `names` (references or ids) as one archive in
    /// `format`, written to `out`.
    pub fn save_images(
        &self,
        names: &[String],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<()> {
        Ok(self.store().save(names, format, out)?)
    }
}
