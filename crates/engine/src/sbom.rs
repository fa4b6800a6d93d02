//! `berth sbom IMAGE`: the packages of a local image, read from its
//! unpacked layers by the `supply` crate without running it. Per-layer
//! scans are cached under `<root>/cache/sbom/<diff-id hex>.json`, so a
//! second SBOM of an image (or of another image on the same base) reads
//! only its new layers; scans of layers the store no longer has are
//! dropped on the next call.
use supply::{Cache, ImageInfo, LayerRef};

use crate::{Engine, Result};

pub use supply::{Ecosystem, Format as SbomFormat, Package, Sbom};

impl Engine {
    /// The SBOM of the local image `name` (a reference, id or id prefix).
    pub fn sbom(&self, name: &str) -> Result<Sbom> {
        let img = self.image(name)?;
        let layers_dir = self.paths.root.join("layers");
        let layers: Vec<LayerRef> = img
            .diff_ids
            .iter()
            .map(|d| LayerRef {
                diff_id: d.to_string(),
                dir: layers_dir.join(d.hex()),
            })
            .collect();
        let info = ImageInfo {
            name: name.to_string(),
            id: img.id.to_string(),
            repo_digests: img.repo_digests.clone(),
            repo_tags: img.repo_tags.iter().map(|t| t.to_string()).collect(),
        };
        if let Some(l) = layers.iter().find(|l| !l.dir.is_dir()) {
            return Err(store::StoreError::Corrupt {
                what: format!("layer {} of image {name}", l.diff_id),
                reason: format!(
                    "its directory {} is missing from the store: \"berth system check\" says what else is damaged; remove the image (berth rmi {name}) and pull, load or build it again",
                    l.dir.display()
                ),
            }
            .into());
        }
        let tmp = self.tmp_dir("sbom")?;
        let cache = Cache {
            dir: self.paths.root.join("cache").join("sbom"),
            tmp: tmp.path().to_path_buf(),
        };
        let sbom = supply::scan_image(info, &layers, Some(&cache), &Default::default())?;
        cache.prune(&|hex| layers_dir.join(hex).is_dir());
        Ok(sbom)
    }
}
