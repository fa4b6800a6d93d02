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

pub use registry::server::auth::AuthOptions;
pub use registry::server::gc::{GcOptions, GcReport, DEFAULT_GRACE};
pub use registry::server::listen::Limits;
pub use registry::server::proxy::DEFAULT_TTL as DEFAULT_PROXY_TTL;

/// Remove what no repository of the registry at `opts.root` reaches.
pub fn gc(opts: &GcOptions) -> Result<GcReport> {
    use registry::server::gc::GcError;
    registry::server::gc::gc(opts).map_err(|e| match e {
        GcError::NotARoot(p) => EngineError::invalid(
            "--root",
            format!("{} is not a registry root (no blobs/sha256 or repositories in it); give the --root of `berth registry serve`", p.display()),
        ),
        GcError::Io { path, source } => {
            EngineError::io(format!("registry gc: {}", path.display()), source)
        }
    })
}
