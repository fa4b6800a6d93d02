//! `berth serve`: the Docker Engine API (crate `api`).
use std::path::{Path, PathBuf};

use clap::Args;

use crate::Failure;

/// `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: unix:///path (default: unix://<runroot>/docker.sock),
    /// tcp://ADDRESS:PORT (use --tlsverify: plain TCP gives root to anyone
    /// who reaches it) or fd:// / fd://N (sockets passed by systemd socket
    /// activation). Repeatable.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// The group of the Unix sockets (default: docker, when it exists).
    #[arg(long)]
    group: Option<String>,
    /// Use TLS on TCP; implied by --tlsverify. Alone, clients are not
    /// authenticated.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tls: Option<bool>,
    /// Use TLS and require client certificates signed by --tlscacert.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tlsverify: Option<bool>,
    /// Trust client certificates signed only by this CA (default:
    /// $DOCKER_CERT_PATH/ca.pem, else ~/.docker/ca.pem).
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// The server's TLS certificate (default: cert.pem beside ca.pem).
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// The server's TLS key (default: key.pem beside ca.pem).
    #[arg(long)]
    tlskey: Option<PathBuf>,
}

/// dockerd's default certificate directory: `$DOCKER_CERT_PATH`, else the
/// docker CLI's configuration directory.
fn cert_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CERT_PATH").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".docker")
}

/// TLS as dockerd decides it: `--tlsverify` (even `=false`) turns TLS on;
/// verification only with `--tlsverify`.
fn tls_files(a: &ServeArgs) -> Option<api::TlsFiles> {
    let tls = a.tlsverify.is_some() || a.tls == Some(true);
    if !tls {
        return None;
    }
    let file = |given: &Option<PathBuf>, name: &str| {
        given
            .clone()
            .unwrap_or_else(|| Path::new(&cert_dir()).join(name))
    };
    let clients = if a.tlsverify == Some(true) {
        api::ClientAuth::SignedBy(file(&a.tlscacert, "ca.pem"))
    } else {
        api::ClientAuth::Any
    };
    Some(api::TlsFiles {
        cert: file(&a.tlscert, "cert.pem"),
        key: file(&a.tlskey, "key.pem"),
        clients,
    })
}

/// `serve`: until SIGINT or SIGTERM.
pub fn serve(paths: engine::Paths, a: ServeArgs) -> Result<(), Failure> {
    let tls = tls_files(&a);
    let hosts = if a.hosts.is_empty() {
        vec![format!(
            "unix://{}",
            paths.runroot.join("docker.sock").display()
        )]
    } else {
        a.hosts
    };
    api::serve(
        paths,
        api::Options {
            hosts,
            group: a.group,
            tls,
        },
    )
    .map_err(|e| Failure::msg(1, e))
}
