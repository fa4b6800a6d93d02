//! berth's registry client: the OCI distribution protocol (Docker registry
//! v2) over `reqwest`'s blocking client, written for this engine rather
//! than taken from `oci-client` (whose pull holds layers in memory and
//! whose auth does not read Docker's `config.json`; see
//! docs/architecture.md).
//!
//! - [`config`]: registries.toml (insecure registries, mirrors) and
//!   per-registry CA certificates.
//! - [`auth`]: docker-compatible credentials and `WWW-Authenticate`.
//! - [`client`]: one registry endpoint: scheme, TLS, the basic and bearer
//!   flows with tokens cached per scope, errors.
//! - [`manifest`]: manifest and index parsing, platform selection.
//! - [`pull`] / [`push`]: the pipelines.
//! - [`server`]: the other side, `berth registry serve`.
#![forbid(unsafe_code)]

/// Signatures, attestations and referrers: small artifacts beside images.
pub mod artifact;
pub mod auth;
/// Stopping a transfer whose requester went away.
pub mod cancel;
pub mod client;
pub mod config;
/// `ADD <url>` downloads.
pub mod fetch;
pub mod manifest;
pub mod pull;
pub mod push;
/// Pushing a local image's OCI 1.1 referrers after it.
pub mod referrers;
/// `berth registry serve`: an OCI distribution registry; `berth registry gc`.
pub mod server;

use std::path::PathBuf;

pub use auth::{Credential, Credentials};
pub use cancel::Cancel;
pub use client::Registry;
pub use config::Config;
pub use manifest::Platform;
pub use pull::{list_tags, pull, PullOptions, PullOutcome};
pub use push::{push, PushOptions, PushOutcome};

/// Why a registry operation failed. Every variant leaves the store as it
/// was.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A config or credentials file is wrong.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Could not reach the registry.
    #[error("cannot reach {host}: {reason}")]
    Connect {
        /// `host[:port]`.
        host: String,
        /// What failed.
        reason: String,
    },
    /// The peer sent nothing (or, while we upload, took nothing) for the
    /// idle timeout: a stalled or trickling server.
    #[error("{peer} {host} {} nothing for {secs} s (a stalled or trickling server; if it is only slow, raise `idle_timeout` in registries.toml)", if *.sending { "took" } else { "sent" })]
    Stalled {
        /// What it is: `registry`, `token server`, `server`.
        peer: &'static str,
        /// `host[:port]`.
        host: String,
        /// The idle timeout, in seconds.
        secs: u64,
        /// We were uploading (the peer stopped reading).
        sending: bool,
    },
    /// A bearer challenge names a token server whose URL would carry the
    /// credentials in clear text (or is no http(s) URL at all).
    #[error("{host} asks for tokens at {realm:?}, which is not https: berth will not send credentials there in clear text (if {host} is a trusted registry on your network, list it with `insecure = true` in registries.toml)")]
    InsecureRealm {
        /// The registry, `host[:port]`.
        host: String,
        /// The challenge's realm.
        realm: String,
    },
    /// TLS failed.
    #[error("TLS with {host} failed: {reason} (trust its CA in {certs_dir}/ca.crt, or list it with `insecure = true` in registries.toml)")]
    Tls {
        /// `host[:port]`.
        host: String,
        /// What failed.
        reason: String,
        /// Where a CA certificate would be read.
        certs_dir: String,
    },
    /// 401/403.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Details.
        reason: String,
    },
    /// A tag or digest that the registry does not have.
    #[error("manifest unknown: {reference} not found (check the name and tag)")]
    ManifestUnknown {
        /// The reference.
        reference: String,
    },
    /// Any other HTTP error status.
    #[error("{what}: the registry answered {status}{detail}")]
    Status {
        /// What we were doing.
        what: String,
        /// The status.
        status: u16,
        /// The registry's error text, if any.
        detail: String,
    },
    /// The registry sent something malformed or unexpected.
    #[error("bad response from the registry: {0}")]
    Protocol(String),
    /// Content did not match its digest or size.
    #[error("{what} is corrupt: {reason}")]
    Corrupt {
        /// The blob or manifest.
        what: String,
        /// How it differs.
        reason: String,
    },
    /// Not something we pull.
    #[error("{0}")]
    Unsupported(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Local I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The registry server cannot listen.
    #[error("registry serve: cannot listen on {addr}: {reason} (pick another --addr)")]
    Listen {
        /// The address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// `registry serve`'s options are wrong: a file that does not load,
    /// flags that do not go together (the message names them).
    #[error("{0}")]
    ServeOptions(String),
    /// Interrupted by a signal.
    #[error("interrupted")]
    Interrupted,
    /// Stopped through its [`Cancel`] (the client of `berth serve` went
    /// away); nothing was registered.
    #[error("cancelled: the transfer's client went away")]
    Cancelled,
}

impl RegistryError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RegistryError {
        let path = path.into();
        move |source| RegistryError::Io { path, source }
    }
}

/// What `host` means as an API endpoint (`docker.io` is served by
/// `registry-1.docker.io`).
pub fn api_host(host: &str) -> &str {
    if host == model::reference::DEFAULT_REGISTRY {
        "registry-1.docker.io"
    } else {
        host
    }
}
