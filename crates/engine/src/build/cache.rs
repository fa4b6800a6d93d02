//! The build cache as `builder prune` and `system df` see it: the images
//! of cached steps, the `RUN --mount=type=cache` directories and the
//! context stat caches.
use std::collections::HashSet;

use crate::image::PruneReport;
use crate::{Engine, Result};

impl Engine {
    /// `builder prune`: the cached step images, and the `RUN
    /// --mount=type=cache` directories and context stat caches with them
    /// (a cache mount in use by a running build is left alone).
    pub fn builder_prune(&self) -> Result<PruneReport> {
        let mut report = self.store().builder_prune()?;
        let cache = self.paths().root.join("cache");
        let ctx = cache.join("context");
        if let Ok(rd) = std::fs::read_dir(&ctx) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mounts = cache.join("build-mounts");
        if let Ok(rd) = std::fs::read_dir(&mounts) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "lock") {
                    continue;
                }
                // A locked cache mount belongs to a build running now.
                let lock = p.with_extension("lock");
                let busy = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&lock)
                    .ok()
                    .map(|f| {
                        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
                            .is_err()
                    })
                    .unwrap_or(false);
                if busy {
                    continue;
                }
                if let Ok(m) = std::fs::symlink_metadata(&p) {
                    if m.is_dir() {
                        report.reclaimed += store::fsops::open_dir(&p)
                            .map(|fd| store::fsops::disk_usage(std::os::fd::AsFd::as_fd(&fd)))
                            .unwrap_or(0);
                        let _ = std::fs::remove_dir_all(&p);
                        let _ = std::fs::remove_file(&lock);
                    }
                }
            }
        }
        Ok(report)
    }

    /// `builder prune --keep-storage`: drop the oldest cache entries (and
    /// their images nothing else uses) until the cache holds at most `keep`
    /// bytes.
    pub fn builder_prune_to(&self, keep: u64) -> Result<PruneReport> {
        Ok(self.store().builder_prune_to(keep)?)
    }

    /// The ids (`sha256:…`) of the images the build cache holds.
    pub fn build_cache_images(&self) -> Result<HashSet<String>> {
        Ok(self.store().cache_images()?)
    }

    /// Bytes of the layers only the build cache's images hold (`system
    /// df`).
    pub fn build_cache_size(&self) -> Result<u64> {
        Ok(self.store().build_cache_size()?)
    }
}
