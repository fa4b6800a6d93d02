//! `berth compose`: the Compose Specification on berth's engine. The
//! loader reads and normalizes the files into [`model::Project`]; `up`,
//! `down` and the other operations work through the engine's own calls
//! (never the CLI), so the Engine API can serve `docker compose` with the
//! same code.
pub mod model;

/// `.env` and `env_file:` files.
pub mod envfile;
/// `${VAR:-default}` and the other forms of variable substitution.
pub mod interpolate;
/// Reading Compose files into the model: discovery, `.env`, interpolation,
/// `include`/`extends`, merging, normalization; and `compose config`.
pub mod loader;

/// A service as the engine's create request.
pub mod convert;
/// `down`, `stop`, `rm` and the other operations on a project's containers.
pub mod ops;
/// Names and labels of a project's objects.
pub mod project;
/// `up`: reconcile and start a project.
pub mod up;
/// `watch`: sync, restart or rebuild on file changes.
pub mod watch;

/// Why a compose operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// The project asks for something invalid or unsupported.
    #[error("{0}")]
    Invalid(String),
    /// A service named on the command line is not in the project.
    #[error("no such service: {0}")]
    NoSuchService(String),
    /// A dependency failed, a build failed, a container did not become healthy.
    #[error("{0}")]
    Failed(String),
}

/// Result alias of compose operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
