//! `import`, `load` and `save`: images from and to tar streams.
use std::io::{Read, Write};

use super::{ArchiveFormat, ImageRecord, ImportOptions, LoadedImage};
use crate::{Engine, EngineError, Result};

impl Engine {
    /// `import`: a root filesystem tar (plain, gzip or zstd) becomes a
    /// one-layer image, recording the event.
    pub fn import_image(&self, reader: impl Read, opts: &ImportOptions) -> Result<ImageRecord> {
        let record = self.store().import(reader, opts)?;
        self.emit("image", "import", &record.id.to_string(), &[]);
        Ok(record)
    }

    /// `import URL`: the tar at an http(s) URL, downloaded to a scratch
    /// file first (the API's `fromSrc=URL`).
    pub fn import_image_from_url(&self, url: &str, opts: &ImportOptions) -> Result<ImageRecord> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(EngineError::invalid(
                "import source",
                format!("{url:?}: give - (the request body) or an http(s) URL"),
            ));
        }
        let tmp = self.tmp_dir("import-url")?;
        let path = tmp.path().join("rootfs.tar");
        {
            let mut f = std::fs::File::create(&path)
                .map_err(|e| EngineError::io("creating the download file", e))?;
            self.fetch_url(url, &mut f, 64 << 30)?;
        }
        let f =
            std::fs::File::open(&path).map_err(|e| EngineError::io("reading the download", e))?;
        self.import_image(std::io::BufReader::new(f), opts)
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
