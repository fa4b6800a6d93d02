//! `diff`, `commit` and a build's RUN layers of a container with a copied
//! root (the `vfs` driver): its copy walked beside its image's layer dirs
//! (`store::copydiff`), as containers/storage's vfs driver diffs.
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use store::copydiff::{self, CopyDiffOpts};
use store::fsops::{self, ChangeKind};

use crate::container::copyroot;
use crate::container::Container;
use crate::error::{EngineError, Result};

impl crate::Engine {
    /// How the container's copy compares with its image: owners shifted
    /// through the container's rootless maps, and when the copy was finished (containers made
    /// before berth wrote that are compared by stat alone).
    fn copy_diff_opts(&self, c: &Container) -> CopyDiffOpts {
        use std::os::unix::fs::MetadataExt;
        let made =
            std::fs::symlink_metadata(self.store().container_dir(c.id()).join(copyroot::MADE))
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec()));
        CopyDiffOpts {
            shift: copyroot::shift_of(&c.config.userns),
            made,
        }
    }

    /// Every change of the copy `copy` of the container `c` to its image
    /// (berth's own mount points and /etc files included).
    pub(crate) fn copy_changes(
        &self,
        c: &Container,
        copy: &Path,
    ) -> Result<Vec<(PathBuf, ChangeKind)>> {
        let layers = self.lower_dirs(c)?;
        let refs: Vec<&Path> = layers.iter().map(PathBuf::as_path).collect();
        let opts = self.copy_diff_opts(c);
        (|| {
            let fd = fsops::open_dir(copy)?;
            copydiff::copy_changes(fd.as_fd(), &refs, &opts)
        })()
        .map_err(|e| EngineError::io("comparing the container's copy with its image", e))
    }

    /// The changes of the copy `copy` of the container `c` as a layer tar
    /// at `path`, without what berth made in it (`made`, relative paths),
    /// times clamped to `mtime_clamp`.
    pub(crate) fn write_copy_changes(
        &self,
        c: &Container,
        copy: &Path,
        made: &[PathBuf],
        mtime_clamp: Option<u64>,
        path: &Path,
    ) -> Result<()> {
        let changes = self.copy_changes(c, copy)?;
        let skip: Vec<PathBuf> = changes
            .iter()
            .filter(|(p, k)| *k == ChangeKind::Added && made.iter().any(|m| p == m))
            .filter_map(|(p, _)| p.strip_prefix("/").ok().map(Path::to_path_buf))
            .collect();
        let opts = fsops::LayerOpts {
            skip,
            mtime_clamp,
            shift: copyroot::shift_of(&c.config.userns),
        };
        (|| -> std::io::Result<()> {
            let fd = fsops::open_dir(copy)?;
            let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
            copydiff::tar_copy_changes(fd.as_fd(), &changes, &opts, &mut w)?;
            w.flush()
        })()
        .map_err(|e| EngineError::io("writing the container's changes", e))
    }
}
