//! berth's image and container store (being built: see issue 3).
#![forbid(unsafe_code)]

/// Unpacking one layer tarball into a directory, safely (hostile tars stay contained).
pub mod layer;
