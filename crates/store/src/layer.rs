//! Layer unpacking. API contract (implementation in progress):
//! `unpack(reader, dest)` auto-detects gzip/zstd/plain tar, writes the layer
//! into the empty directory `dest` in overlayfs format and returns the
//! diff-id (sha256 of the uncompressed tar) and unpacked size.
use std::io::Read;
use std::path::Path;

use model::Digest;

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// sha256 of the uncompressed tar stream (the OCI diff-id).
    pub diff_id: Digest,
    /// Sum of the regular file sizes written.
    pub size: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading the stream or writing the tree failed.
    #[error("layer i/o error at {path}: {source}")]
    Io {
        /// The path inside the layer (or the destination) involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Unpack a layer (gzip, zstd or plain tar, detected from the magic bytes)
/// into `dest`, an existing empty directory.
pub fn unpack(_reader: impl Read, dest: &Path) -> Result<Unpacked, LayerError> {
    Err(LayerError::Io {
        path: dest.display().to_string(),
        source: std::io::Error::other("layer unpacking is not built yet"),
    })
}
