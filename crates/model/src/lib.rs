//! berth's shared vocabulary: the types every other crate passes around.
//!
//! Everything here is parsed once at the edge (`FromStr`) and then used as a
//! type: digests, image references, container ids, byte sizes, signals,
//! capabilities. This crate does no I/O and has no knowledge of the store,
//! the runtime or the CLI.
#![forbid(unsafe_code)]

/// Block-I/O limits per device (`--device-read-bps /dev/sda:1mb`).
pub mod blkio;
/// Linux capability names and Docker's default set.
pub mod capability;
/// Content digests (`sha256:<hex>`), as used by OCI for blobs and image ids; `sha512` for the registry server.
pub mod digest;
/// Go-style durations (`30s`, `1m30s`).
pub mod duration;
/// Errors from parsing any of the above.
pub mod error;
/// Container and object ids: 64 hex chars, shown truncated to 12.
pub mod id;
/// Image references (`[registry/]repo[:tag][@digest]`) with Docker's normalisation.
pub mod reference;
/// Signals by name or number (`SIGTERM`, `TERM`, `15`).
pub mod signal;
/// Human byte sizes (`512m`, `1g`) as Docker's `--memory` accepts them.
pub mod size;

pub use digest::{Algorithm, AnyDigest, AnyHasher, Digest};
pub use error::ParseError;
pub use id::ContainerId;
pub use reference::Reference;
pub use signal::Signal;
