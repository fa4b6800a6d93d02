//! The store's error type.
use std::path::PathBuf;

use model::Digest;

/// Why a store operation failed. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such image/container/network/volume: Docker's words, which
    /// scripts look for (`No such container: web`).
    #[error("No such {kind}: {what}")]
    NotFound {
        /// "image" or "container".
        kind: &'static str,
        /// What the user asked for.
        what: String,
        /// What to do about it (may be empty); not shown, Docker's message
        /// is kept word for word.
        hint: &'static str,
    },
    /// The operation conflicts with the current state (message says how).
    #[error("{0}")]
    Conflict(String),
    /// An id prefix matches several objects.
    #[error("{kind} id prefix \"{prefix}\" is ambiguous: give more characters")]
    Ambiguous {
        /// "image" or "container".
        kind: &'static str,
        /// The prefix.
        prefix: String,
    },
    /// A container name is taken (in dockerd's words).
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse {
        /// The name.
        name: String,
        /// The id of the container holding it (whole, as dockerd says it).
        owner: String,
    },
    /// An image is used by a container.
    #[error("unable to remove image {image}: it is used by container {container} (remove the container first, or use -f to untag only)")]
    ImageInUse {
        /// Short image id.
        image: String,
        /// Short container id.
        container: String,
    },
    /// Deleting by id an image with several tags needs -f.
    #[error("unable to delete {image} (must be forced): the image is referenced in multiple repositories; remove the tags or use -f")]
    MultipleTags {
        /// Short image id.
        image: String,
    },
    /// Content does not match its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual} (the archive is corrupt or truncated)")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// The digest it should have.
        expected: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// An archive or stored object is malformed.
    /// An image with more layers than can be stacked.
    #[error("max depth exceeded: the image has {layers} layers, more than the {} an overlay can stack (dockerd's limit too): make it with fewer steps", crate::MAX_LAYERS)]
    TooDeep {
        /// How many it has.
        layers: usize,
    },
    #[error("{what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("{path}: {}", io_text(source))]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error("metadata database: {}", db_text(.0))]
    Db(#[from] rusqlite::Error),
    /// A layer could not be unpacked.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// An `--change` instruction is invalid.
    #[error("invalid change {change:?}: {reason}")]
    Change {
        /// The instruction.
        change: String,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| {
            if source.raw_os_error() == Some(libc::ENOSPC) {
                return StoreError::Io {
                    path,
                    source: std::io::Error::new(source.kind(), DISK_FULL),
                };
            }
            StoreError::Io { path, source }
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// What a full disk is called wherever it shows up (a write, the
/// database, an unpack): what happened and what to do.
pub const DISK_FULL: &str = "no space left on device: the filesystem of berth's state is full; \
free space (berth system prune, berth image prune -a, or remove other files) and try again";

/// Is this error a full disk (or an exhausted quota)?
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// An I/O error's words: a full disk says what to do.
pub fn io_text(e: &std::io::Error) -> String {
    if is_disk_full(e) {
        DISK_FULL.to_string()
    } else {
        e.to_string()
    }
}

/// A database error's words: SQLite's "database or disk is full" says
/// what to do.
fn db_text(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => format!("database or disk is full: {DISK_FULL}"),
        _ => e.to_string(),
    }
}

/// Does this error (or one it wraps) come from a full disk?
pub fn error_is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if is_disk_full(io) {
                return true;
            }
        }
        if let Some(db) = e.downcast_ref::<rusqlite::Error>() {
            if db.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                return true;
            }
        }
        if let Some(crate::layer::Refusal::DiskFull { .. }) = e.downcast_ref() {
            return true;
        }
        if e.to_string().contains(DISK_FULL) {
            return true;
        }
        cur = e.source();
    }
    false
}
