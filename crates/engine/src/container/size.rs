//! The disk space a container's writable layer takes.
use std::os::fd::AsFd;

use crate::Engine;

impl Engine {
    /// Bytes the container `id` has written to its writable layer (Docker's
    /// `SizeRw`); 0 when it has none (yet).
    pub fn container_size_rw(&self, id: &model::ContainerId) -> u64 {
        let upper = self.store().container_dir(id).join("upper");
        store::fsops::open_dir(&upper)
            .map(|fd| store::fsops::disk_usage(fd.as_fd()))
            .unwrap_or(0)
    }

    /// Docker's `SizeRw` and `SizeRootFs` of `c`: its writable layer, and
    /// that on top of its image's unpacked size (`ps -s`, `inspect -s`).
    pub fn container_sizes(&self, c: &crate::container::Container) -> (u64, u64) {
        let rw = self.container_size_rw(c.id());
        let image = self
            .store()
            .resolve_image(&c.record.image_id.to_string())
            .map(|i| i.size)
            .unwrap_or(0);
        (rw, image + rw)
    }
}
