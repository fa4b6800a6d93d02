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
}
