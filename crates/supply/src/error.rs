//! The crate's error type. A package database that cannot be parsed is not
//! an error: it becomes a note on the SBOM (what was skipped and why).
use std::path::PathBuf;

/// Why an SBOM could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum SupplyError {
    /// A layer directory or the cache could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done ("reading layer", "writing cache").
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Writing a document failed.
    #[error("writing the SBOM document: {0}")]
    Json(#[from] serde_json::Error),
}

impl SupplyError {
    /// An I/O error on `path` while doing `what`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> SupplyError {
        SupplyError::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
