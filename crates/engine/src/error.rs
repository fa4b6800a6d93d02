//! The engine's error type.
use std::io;

/// Why an engine operation failed. `Display` is the one line the CLI
/// prints after `berth: `.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// From the image/container store.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// From the runtime (start failures carry 126/127).
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// Compiling or loading a seccomp profile failed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] runtime::seccomp::SeccompError),
    /// Reading or writing cgroups failed.
    #[error("cgroups: {0}")]
    Cgroup(#[from] runtime::cgroup::CgroupError),
    /// Talking to a registry failed.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// A user-supplied value is invalid.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which option or argument.
        what: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// `rm` of a running (or restarting) container without `-f`.
    #[error("You cannot remove a {state} container {id}. Stop the container before attempting removal or force remove")]
    CannotRemove {
        /// `running` or `restarting`.
        state: &'static str,
        /// The container's id.
        id: String,
    },
    /// A `--filter` the engine refuses, in Docker's words (`Invalid filter
    /// 'foo'`).
    #[error("{0}")]
    BadFilter(String),
    /// The container is in the wrong state for the operation, in Docker's
    /// words (`Container <id> is not running`).
    #[error("Container {name} {problem}")]
    State {
        /// The container's id (or name).
        name: String,
        /// E.g. "is running: stop it first or use -f".
        problem: String,
    },
    /// The request conflicts with the state of another object, in Docker's
    /// words (`container <id> is not running`).
    #[error("{0}")]
    Conflict(String),
    /// A build step failed (a RUN exited non-zero): docker build exits 1.
    #[error("{step}: process {command:?} did not complete successfully: exit code: {code}{tail}")]
    BuildStep {
        /// `[stage 3/5] RUN make` and the Dockerfile line.
        step: String,
        /// The command.
        command: String,
        /// Its exit code.
        code: i32,
        /// Its last lines of output (with a leading newline), if any.
        tail: String,
    },
    /// A build failed in a stage built by another process (its message).
    #[error("{0}")]
    Build(String),
    /// An operation done by a forked copy of this process failed (its message).
    #[error("{0}")]
    Forked(String),
    /// A file or syscall operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl EngineError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        EngineError::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: impl Into<io::Error>) -> Self {
        EngineError::Io {
            what: what.into(),
            source: source.into(),
        }
    }

    /// Docker's exit code for this failure: 126/127 for a command that
    /// could not be executed, 125 for everything the engine rejects.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Runtime(e) => e.exit_code(),
            EngineError::BuildStep { .. } => 1,
            _ => 125,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
