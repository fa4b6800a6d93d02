//! Where the server listens: Unix sockets (root and the socket's group may
//! connect, as dockerd's `0660 root:docker`) and, only when asked, TCP.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use axum::Router;

/// `berth serve`'s options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-H`: `unix:///path` or `tcp://127.0.0.1:2375`.
    pub hosts: Vec<String>,
    /// The group the Unix sockets belong to (`--group`; default `docker`
    /// when that group exists, else root's).
    pub group: Option<String>,
}

enum Host {
    Unix(PathBuf),
    Tcp(String),
}

fn parse_host(h: &str) -> Result<Host, String> {
    if let Some(p) = h.strip_prefix("unix://") {
        if !p.starts_with('/') {
            return Err(format!("-H {h}: the socket path must be absolute"));
        }
        return Ok(Host::Unix(PathBuf::from(p)));
    }
    if let Some(a) = h.strip_prefix("tcp://") {
        return Ok(Host::Tcp(a.trim_end_matches('/').to_string()));
    }
    Err(format!(
        "-H {h}: use unix:///path/to/socket or tcp://ADDRESS:PORT"
    ))
}

/// Bind a Unix socket at `path`: a leftover socket nobody answers on is
/// replaced; one that answers means another server runs there.
fn bind_unix(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{}: another server is listening there (stop it first)",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("removing {}: {e}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .map_err(|e| format!("listening on {}: {e}", path.display()))?;
    let gid = match group {
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| format!("--group {g}: no such group"))?
                .gid,
        ),
        None => nix::unistd::Group::from_name("docker")
            .ok()
            .flatten()
            .map(|g| g.gid),
    };
    nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), gid)
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(l)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Listen on every host until a signal, then finish the requests under way
/// and remove the sockets.
pub(crate) async fn run(app: Router, opts: Options) -> Result<(), String> {
    let mut sockets = Vec::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for h in &opts.hosts {
        let mut stop = stop_rx.clone();
        let wait = async move {
            let _ = stop.changed().await;
        };
        match parse_host(h)? {
            Host::Unix(path) => {
                let l = bind_unix(&path, opts.group.as_deref())?;
                sockets.push(path.clone());
                eprintln!("berth serve: API listening on {}", path.display());
                let app = app.clone();
                tasks.push(tokio::spawn(async move {
                    axum::serve(l, app).with_graceful_shutdown(wait).await
                }));
            }
            Host::Tcp(addr) => {
                let l = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("listening on {addr}: {e}"))?;
                eprintln!(
                    "berth serve: API listening on {addr} WITHOUT TLS: anyone who can reach it controls this host as root"
                );
                let app = app.clone();
                tasks.push(tokio::spawn(async move {
                    axum::serve(l, app).with_graceful_shutdown(wait).await
                }));
            }
        }
    }
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}
