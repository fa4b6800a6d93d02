//! `berth registry`: the built-in OCI distribution registry.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Failure;

/// `registry` subcommands.
#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Serve an OCI distribution registry (Docker's `registry:2`), in the
    /// foreground, logging each request as a JSON line on stderr.
    Serve(ServeArgs),
}

/// `registry serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen (host:port; port 0 picks a free one, named in the
    /// first log line).
    #[arg(long, default_value = engine::registry_server::DEFAULT_ADDR)]
    addr: String,
    /// The registry's directory (default: <root>/registry).
    #[arg(long, conflicts_with = "store")]
    root: Option<PathBuf>,
    /// Serve berth's own image store (not yet).
    #[arg(long)]
    store: bool,
    /// Require these users (an htpasswd file, bcrypt) (not yet).
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Bearer tokens from this realm (not yet).
    #[arg(long)]
    token_realm: Option<String>,
    /// TLS certificate (not yet).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS key (not yet).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Pull-through cache of this upstream registry (not yet).
    #[arg(long)]
    proxy: Option<String>,
    /// Refuse every write (405 UNSUPPORTED).
    #[arg(long)]
    read_only: bool,
    /// Allow deleting manifests, tags and blobs (DELETE answers 405
    /// UNSUPPORTED without it, as distribution's storage.delete.enabled).
    #[arg(long)]
    delete: bool,
}

/// Run a `registry` subcommand. Its failures keep docker's engine-error
/// status, 125.
pub fn dispatch(paths: engine::Paths, c: RegistryCommand) -> Result<(), Failure> {
    match c {
        RegistryCommand::Serve(a) => {
            let opts = engine::registry_server::ServeOptions {
                addr: a.addr,
                root: a
                    .root
                    .unwrap_or_else(|| engine::registry_server::default_root(&paths)),
                store: a.store,
                htpasswd: a.htpasswd,
                token_realm: a.token_realm,
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                proxy: a.proxy,
                read_only: a.read_only,
                delete: a.delete,
            };
            engine::registry_server::serve(opts).map_err(|e| Failure {
                usage: true,
                ..Failure::from(e)
            })
        }
    }
}
