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
    /// How the container's copy compares with its image: keep-id's
    /// shifted owners, and when the copy was finished (containers made
    /// before berth wrote that are compared by stat alone).
    fn copy_diff_opts(&self, c: &Container) -> CopyDiffOpts {
        use std::os::unix::fs::MetadataExt;
        let made =
            std::fs::symlink_metadata(self.store().container_dir(c.id()).join(copyroot::MADE))
                .ok()
                .map(|m| (m.mtime(), m.mtime_nsec()));
        CopyDiffOpts {
            keep_id: copyroot::keep_id_of(&c.config.userns),
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
        // Rootless `--uidmap`/`--gidmap`/`auto`/`nomap`: the copy's owners
        // went through the container's maps, which the walk does not
        // undo yet (keep-id's shift it does).
        let u = &c.config.userns;
        if crate::rootless::active() && u.is_private() && copyroot::keep_id_of(u).is_none() {
            return Err(EngineError::Refused(
                "diff and commit of a rootless container with id maps of its own (--uidmap, --gidmap, --userns=auto or nomap) are not supported yet: its copied root's owners are shifted through them; copy files out with \"berth cp\", or commit a container without them".into(),
            ));
        }
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
            keep_id: copyroot::keep_id_of(&c.config.userns),
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
