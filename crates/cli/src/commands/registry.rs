//! `berth registry`: the built-in OCI distribution registry.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Failure;

/// `registry` subcommands.
#[derive(Subcommand, Debug)]
pub enum RegistryCommand {
    /// Serve an OCI distribution registry (Docker's `registry:2`), in the
    /// foreground, logging each request as a JSON line on stderr.
    Serve(Box<ServeArgs>),
    /// Remove the blobs no repository reaches any more (safe beside a
    /// running server and pushes).
    Gc(GcArgs),
}

/// `registry gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// The registry's directory (default: <root>/registry).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep unreachable blobs younger than this (a push uploads its layers
    /// before its manifest), e.g. 30m, 0s.
    #[arg(long, default_value = "1h", value_parser = parse_grace)]
    grace: std::time::Duration,
}

fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    let ns = model::duration::parse(s)?;
    u64::try_from(ns)
        .map(std::time::Duration::from_nanos)
        .map_err(|_| format!("invalid duration {s:?}: it must not be negative"))
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
    /// Serve berth's own image store: each tagged image under its
    /// repository path (bb:1 as library/bb:1 and bb:1), the store's blobs
    /// as they are; a push (unless --read-only) lands in the store as
    /// HOST:PORT/repo:tag, as if pulled.
    #[arg(long)]
    store: bool,
    /// Require these users: an htpasswd file of bcrypt entries
    /// (`htpasswd -B`).
    #[arg(long)]
    htpasswd: Option<PathBuf>,
    /// Who may do what: a TOML file of `[[allow]]` rules (users,
    /// repositories, actions, catalog); without it every user may do all.
    #[arg(long)]
    access: Option<PathBuf>,
    /// Let clients without credentials pull (never push).
    #[arg(long)]
    anonymous_read: bool,
    /// Docker's token auth instead of Basic: tokens from this server's
    /// /token endpoint.
    #[arg(long)]
    token_auth: bool,
    /// The token realm to advertise (implies --token-auth): the URL at
    /// which clients reach this server's /token.
    #[arg(long)]
    token_realm: Option<String>,
    /// The token service name (the tokens' audience).
    #[arg(long)]
    token_service: Option<String>,
    /// The tokens' issuer (`iss`), written by the built-in token endpoint
    /// and required of every token.
    #[arg(long)]
    token_issuer: Option<String>,
    /// Verify tokens of an external token server (docker's token auth, at
    /// --token-realm) with its P-256 public key, PEM; no users here.
    #[arg(long, requires_all = ["token_realm", "token_service", "token_issuer"])]
    token_key: Option<PathBuf>,
    /// Sign the built-in endpoint's tokens with this P-256 key (PKCS#8
    /// PEM) instead of one made at start, so other registries can verify
    /// them (--token-key with its public half).
    #[arg(long)]
    token_signing_key: Option<PathBuf>,
    /// Serve HTTPS with this certificate (chain), PEM.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// A pull-through cache of this upstream registry (https://host[:port]).
    #[arg(long)]
    proxy: Option<String>,
    /// How long a cached tag is served before the upstream is asked again.
    #[arg(long, requires = "proxy", value_parser = parse_grace)]
    proxy_ttl: Option<std::time::Duration>,
    /// Refuse every write (405 UNSUPPORTED).
    #[arg(long)]
    read_only: bool,
    /// Allow deleting manifests, tags and blobs (DELETE answers 405
    /// UNSUPPORTED without it, as distribution's storage.delete.enabled).
    #[arg(long)]
    delete: bool,
    /// How long a client may take to send a request's headers (a client
    /// dribbling them, or idle between requests, is disconnected).
    #[arg(long, hide = true, value_parser = parse_grace)]
    header_timeout: Option<std::time::Duration>,
    /// How many connections are served at once (more wait to be accepted).
    #[arg(long, hide = true)]
    max_connections: Option<usize>,
}

/// Run a `registry` subcommand. Its failures keep docker's engine-error
/// status, 125.
pub fn dispatch(paths: engine::Paths, c: RegistryCommand) -> Result<(), Failure> {
    match c {
        RegistryCommand::Serve(a) => {
            let a = *a;
            let opts = engine::registry_server::ServeOptions {
                addr: a.addr,
                root: if a.store {
                    paths.root.clone()
                } else {
                    a.root
                        .unwrap_or_else(|| engine::registry_server::default_root(&paths))
                },
                store: a.store,
                auth: engine::registry_server::AuthOptions {
                    htpasswd: a.htpasswd,
                    access: a.access,
                    anonymous_read: a.anonymous_read,
                    token_realm: a.token_realm.or_else(|| a.token_auth.then(String::new)),
                    token_service: a.token_service,
                    token_issuer: a.token_issuer,
                    token_key: a.token_key,
                    token_signing_key: a.token_signing_key,
                },
                tls_cert: a.tls_cert,
                tls_key: a.tls_key,
                proxy: a.proxy,
                proxy_ttl: a.proxy_ttl,
                config_dir: paths.config.clone(),
                read_only: a.read_only,
                delete: a.delete,
                limits: {
                    let d = engine::registry_server::Limits::default();
                    engine::registry_server::Limits {
                        header_timeout: a.header_timeout.unwrap_or(d.header_timeout),
                        max_connections: a.max_connections.unwrap_or(d.max_connections),
                    }
                },
            };
            engine::registry_server::serve(opts).map_err(|e| Failure {
                usage: true,
                ..Failure::from(e)
            })
        }
        RegistryCommand::Gc(a) => {
            let opts = engine::registry_server::GcOptions {
                root: a
                    .root
                    .unwrap_or_else(|| engine::registry_server::default_root(&paths)),
                dry_run: a.dry_run,
                grace: a.grace,
            };
            let r = engine::registry_server::gc(&opts)?;
            print_gc(&r);
            Ok(())
        }
    }
}

fn print_gc(r: &engine::registry_server::GcReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for (d, size) in &r.blobs {
        println!("{verb} blob {d} ({size} bytes)");
    }
    for l in &r.links {
        println!("{verb} link {}", l.display());
    }
    for d in &r.missing {
        println!("missing blob {d}: a manifest names it but the registry does not have it (pulls of it fail; push the image again)");
    }
    println!(
        "{} {} blobs ({} bytes) and {} links; kept {} reachable and {} recent (younger than the grace time)",
        verb,
        r.blobs.len(),
        r.bytes,
        r.links.len(),
        r.reachable,
        r.young
    );
}
