//! Filling empty volumes from the image (copy-up).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::config::MountType;
use crate::error::Result;

impl crate::Engine {
    /// Fill empty volumes from the image's content at their mount points
    /// (Docker's copy-up): `jobs` are (mount point, volume data dir).
    pub(crate) fn copy_up(&self, lower: &[PathBuf], jobs: &[(String, PathBuf)]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let view = crate::rootfs::View {
            lower: lower.to_vec(),
            upper: None,
            copy: None,
        };
        self.in_rootfs(&view, |root| {
            for (target, data) in jobs {
                let src = match store::fsops::dir_in_root(root, Path::new(target)) {
                    Ok(fd) => fd,
                    // Nothing (or not a directory) there in the image.
                    Err(_) => continue,
                };
                let dst = store::fsops::open_dir(data)?;
                if !store::fsops::is_empty_dir(dst.as_fd())? {
                    continue;
                }
                store::fsops::copy_contents(src.as_fd(), dst.as_fd(), &Default::default())?;
                // The volume's root takes the owner and mode of the image's
                // directory (a postgres data dir owned by postgres).
                let st = nix::sys::stat::fstat(src.as_fd()).map_err(std::io::Error::from)?;
                std::os::unix::fs::chown(data, Some(st.st_uid), Some(st.st_gid))?;
                std::fs::set_permissions(
                    data,
                    std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
                )?;
            }
            Ok(())
        })
    }
}

impl crate::Engine {
    /// Copy-up at create: each empty volume the container mounts (without
    /// `nocopy`) gets the image's content at its mount point.
    pub(crate) fn fill_volumes(
        &self,
        config: &crate::config::ContainerConfig,
        layers_top_first: &[PathBuf],
    ) -> Result<()> {
        let mut jobs = Vec::new();
        // Two creates filling one new volume at once: the second waits for
        // the first and then finds it full (the helper checks again).
        let mut locks = Vec::new();
        let mut names: Vec<&str> = config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume && !m.nocopy && m.subpath.is_empty())
            .map(|m| m.source.as_str())
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            let dir = self.store().volume_dir(n);
            if let Ok(f) = std::fs::File::open(&dir) {
                if let Ok(l) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive) {
                    locks.push(l);
                }
            }
        }
        for m in config
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume && !m.nocopy)
        {
            let rec = self.store().volume(&m.source)?;
            let data = self.volume_path(&rec)?;
            let empty = store::fsops::open_dir(&data)
                .and_then(|fd| store::fsops::is_empty_dir(fd.as_fd()))
                .unwrap_or(false);
            if empty {
                jobs.push((m.target.clone(), data));
            }
        }
        let lower: Vec<PathBuf> = layers_top_first.iter().rev().cloned().collect();
        let done = self.copy_up(&lower, &jobs);
        drop(locks);
        done
    }
}
