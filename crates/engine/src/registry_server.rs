//! `berth registry serve`: the OCI distribution registry of crate
//! `registry` ([`registry::server`]), with berth's defaults.
use std::path::PathBuf;

use crate::{EngineError, Paths, Result};

pub use registry::server::ServeOptions;

/// The registry's default root: `registry/` beside the store, in the
/// state root.
pub fn default_root(paths: &Paths) -> PathBuf {
    paths.root.join("registry")
}

/// Docker's registry listens on port 5000; berth's on loopback unless told.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5000";

/// Serve until SIGINT or SIGTERM.
pub fn serve(opts: ServeOptions) -> Result<()> {
    registry::server::serve(opts).map_err(EngineError::from)
}
