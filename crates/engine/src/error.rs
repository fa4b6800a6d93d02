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
    /// Reading an image's packages failed (its layers or the SBOM cache).
    #[error("sbom: {0}")]
    Supply(#[from] supply::SupplyError),
    /// The vulnerability database is missing, damaged or too old, or an
    /// import or download failed.
    #[error("scan: {0}")]
    Vuln(#[from] supply::vuln::DbError),
    /// A key could not be used, or a signature or attestation was refused.
    #[error("{0}")]
    Signing(#[from] supply::signing::SignError),
    /// The image policy (policy.toml) refuses an image.
    #[error("policy: {image} is refused by the rule [\"{rule}\"] of {}: {reason} (to skip the policy for one command, add --disable-policy; it is logged)", file.display())]
    Policy {
        /// The image as named.
        image: String,
        /// The rule's scope.
        rule: String,
        /// The policy file.
        file: std::path::PathBuf,
        /// What the image lacks.
        reason: String,
    },
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

    /// Bad input, worded whole (as dockerd words it).
    #[error("{0}")]
    Refused(String),
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
    /// A tar sent into a container (`PUT …/archive`) could not be
    /// extracted, in dockerd's words (its status: 500).
    #[error("Error processing tar file(exit status 1): {0}")]
    Extract(String),
    /// `top`: the host's `ps` failed or its output has no PID column, in
    /// dockerd's words.
    #[error("{0}")]
    Ps(String),
    /// A path in a container's filesystem does not exist (`cp`, the
    /// archive endpoints), in dockerd's words.
    #[error("Could not find the file {path} in container {container}")]
    PathNotFound {
        /// The path asked for, as given.
        path: String,
        /// The container's name as given.
        container: String,
    },
    /// No pod by that name or id, in podman's words.
    #[error("no pod with name or ID {0} found: no such pod")]
    NoSuchPod(String),
    /// Rootless berth cannot set up its user namespace.
    #[error(transparent)]
    Rootless(#[from] crate::rootless::RootlessError),
    /// A file or syscall operation failed.
    #[error("{what}: {}", store::error::io_text(source))]
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

    /// What kind of failure this is: the CLI words and exits by it, the API
    /// answers with its HTTP status (`ErrorKind::http_status`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Store(e) => store_kind(e),
            EngineError::Registry(e) => match e {
                registry::RegistryError::ManifestUnknown { .. } => ErrorKind::NotFound,
                registry::RegistryError::Unauthorized { .. } => ErrorKind::Unauthorized,
                registry::RegistryError::Store(s) => store_kind(s),
                registry::RegistryError::Unsupported(_)
                | registry::RegistryError::ServeOptions(_)
                | registry::RegistryError::Config { .. } => ErrorKind::InvalidArgument,
                _ => ErrorKind::Unavailable,
            },
            EngineError::Signing(e) => match e {
                supply::signing::SignError::NotFound(_) => ErrorKind::NotFound,
                supply::signing::SignError::Crypto(_) => ErrorKind::Internal,
                _ => ErrorKind::InvalidArgument,
            },
            EngineError::Runtime(e) => match e.exit_code() {
                126 => ErrorKind::CannotInvoke,
                127 => ErrorKind::CommandNotFound,
                _ => ErrorKind::Internal,
            },
            EngineError::Invalid { .. }
            | EngineError::Policy { .. }
            | EngineError::BadFilter(_)
            | EngineError::Refused(_)
            | EngineError::Seccomp(_) => ErrorKind::InvalidArgument,
            EngineError::CannotRemove { .. }
            | EngineError::State { .. }
            | EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::BuildStep { .. } | EngineError::Build(_) => ErrorKind::BuildFailed,
            EngineError::PathNotFound { .. } | EngineError::NoSuchPod(_) => ErrorKind::NotFound,
            EngineError::Cgroup(_)
            | EngineError::Forked(_)
            | EngineError::Ps(_)
            | EngineError::Extract(_)
            | EngineError::Supply(_)
            | EngineError::Vuln(_)
            | EngineError::Rootless(_)
            | EngineError::Io { .. } => ErrorKind::Internal,
        }
    }

    /// Did this fail because the disk is full (a write, the database, an
    /// unpack that keeps the reserve)?
    pub fn is_disk_full(&self) -> bool {
        store::error::error_is_disk_full(self)
    }

    /// An exec whose command could not be started (126/127), in dockerd's
    /// words: `OCI runtime exec failed: exec failed: unable to start
    /// container process: exec: "x": executable file not found in $PATH:
    /// unknown` (what docker's CLI prints on stdout, exiting 126).
    pub fn oci_exec_message(&self) -> Option<String> {
        matches!(self.kind(), ErrorKind::CannotInvoke | ErrorKind::CommandNotFound).then(|| {
            format!("OCI runtime exec failed: exec failed: unable to start container process: {self}: unknown")
        })
    }

    /// Is this "no such object"?
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Docker's exit code for this failure: 126/127 for a command that
    /// could not be executed, 125 for everything the engine rejects.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Runtime(e) => e.exit_code(),
            EngineError::BuildStep { .. } => 1,
            // cosign exits 1 when a verification fails.
            EngineError::Signing(e) if e.is_refusal() => 1,
            _ => 125,
        }
    }
}

fn store_kind(e: &store::StoreError) -> ErrorKind {
    use store::StoreError as S;
    match e {
        S::NotFound { .. } => ErrorKind::NotFound,
        S::Conflict(_) | S::NameInUse { .. } | S::ImageInUse { .. } | S::MultipleTags { .. } => {
            ErrorKind::Conflict
        }
        S::Ambiguous { .. } | S::Change { .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

/// The kinds of failure front ends tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No such container, image, network, volume or exec.
    NotFound,
    /// The request conflicts with the state of an object (a name in use,
    /// a running container, an image in use).
    Conflict,
    /// A bad value in the request.
    InvalidArgument,
    /// A registry refused the credentials.
    Unauthorized,
    /// A peer (a registry) cannot be reached or answered badly.
    Unavailable,
    /// The container's command cannot be executed (126).
    CannotInvoke,
    /// The container's command does not exist (127).
    CommandNotFound,
    /// A build step failed.
    BuildFailed,
    /// Anything else: the engine or the system failed.
    Internal,
}

impl ErrorKind {
    /// The HTTP status dockerd answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Unavailable => 502,
            // dockerd: a failed start of an unrunnable command is a 400
            // ("OCI runtime create failed …: executable file not found").
            ErrorKind::CannotInvoke | ErrorKind::CommandNotFound => 400,
            ErrorKind::BuildFailed | ErrorKind::Internal => 500,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
