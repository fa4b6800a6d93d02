//! The runtime's error type.
use std::io;

/// Why a container could not be started, signalled or joined.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The OCI spec asks for something this runtime cannot do.
    #[error("invalid container spec: {field}: {reason}")]
    InvalidSpec {
        /// Which part of the spec.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A syscall or file operation failed while preparing the container.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The container process failed before or at `execve`; `code` is the
    /// exit status Docker gives for it (126 not executable, 127 not found,
    /// 125 anything else).
    #[error("{message}")]
    Start {
        /// Docker-compatible exit code for this failure.
        code: i32,
        /// What went wrong, from inside the container's setup.
        message: String,
    },
    /// An external OCI runtime binary failed.
    #[error("{runtime}: {message}")]
    External {
        /// The runtime binary.
        runtime: String,
        /// Its error output.
        message: String,
    },
    /// A user namespace to join is not one, or cannot be joined.
    #[error("{}: {reason}", path.display())]
    UserNamespace {
        /// The path given.
        path: std::path::PathBuf,
        /// What it is instead, or why it cannot be joined.
        reason: String,
    },
    /// Putting the process into its cgroup (or another pre-start hook) failed.
    #[error("preparing the container process: {0}")]
    Hook(String),
}

impl RuntimeError {
    pub(crate) fn sys(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        RuntimeError::Sys {
            what: what.into(),
            source: source.into(),
        }
    }

    /// The exit code the CLI should return for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Start { code, .. } => *code,
            _ => 125,
        }
    }
}
