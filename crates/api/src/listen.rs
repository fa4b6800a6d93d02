//! Where the server listens and how it stops.
//!
//! Listeners: Unix sockets of our own (root and the socket's group may
//! connect, as dockerd's `0660 root:docker`), TCP only when asked (with
//! TLS from `--tls`/`--tlsverify`, else dockerd's warnings), and sockets
//! systemd passed (`-H fd://`, socket activation). Each connection is a
//! task of its own; a TLS handshake happens in it, with a time limit, so a
//! slow or hostile client holds up nobody else.
//!
//! Stopping (SIGINT, SIGTERM): stop accepting, remove our socket files
//! (not passed ones: systemd owns those), end the long polls (`wait`,
//! `logs -f`, `events`, `stats`: see [`Stopping`]), let other requests
//! under way finish for at most [`GRACE`] (dockerd gives its HTTP server
//! 5 s more once the daemon is down), then close what is left — hijacked
//! attach and exec streams included. Containers are not touched: they
//! belong to their monitors.
use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::tls::{Tls, TlsFiles};

/// How long requests under way may run on once the server is told to
/// stop (dockerd: 5 s).
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// How long a client has to complete its TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// `berth serve`'s options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-H`: `unix:///path`, `tcp://127.0.0.1:2376`, `fd://` or `fd://3`.
    pub hosts: Vec<String>,
    /// The group the Unix sockets belong to (`--group`; default `docker`
    /// when that group exists, else root's).
    pub group: Option<String>,
    /// TLS on the TCP listeners (`--tls`, `--tlsverify`); Unix sockets are
    /// guarded by their owner and mode instead.
    pub tls: Option<TlsFiles>,
}

/// An `-H` value.
#[derive(Debug, PartialEq)]
enum Host {
    Unix(PathBuf),
    Tcp(String),
    /// `fd://`: every socket systemd passed.
    AllPassed,
    /// `fd://N`: that one.
    Passed(RawFd),
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
    if let Some(n) = h.strip_prefix("fd://") {
        if n.is_empty() || n == "*" {
            return Ok(Host::AllPassed);
        }
        return n.parse().map(Host::Passed).map_err(|_| {
            format!("-H {h}: failed to parse systemd fd address: should be a number: {n}")
        });
    }
    Err(format!(
        "-H {h}: use unix:///path/to/socket, tcp://ADDRESS:PORT or fd:// (systemd socket activation)"
    ))
}

/// What to listen on, decided before the server's threads start.
enum Source {
    Unix(PathBuf),
    Tcp(String),
    /// A listening socket systemd passed: (its fd number, the socket).
    Passed(RawFd, OwnedFd),
}

/// The listeners to open and the TLS setup, read before the runtime
/// starts: taking socket-activated fds changes the environment, which is
/// only sound while the process has one thread.
pub(crate) struct Plan {
    sources: Vec<Source>,
    group: Option<String>,
    tls: Option<Tls>,
    /// The service manager to tell when we are ready and when we stop.
    notify: Option<crate::notify::Notify>,
}

/// Parse the hosts, load the TLS files, take the passed sockets.
pub(crate) fn plan(opts: Options) -> Result<Plan, String> {
    let hosts = opts
        .hosts
        .iter()
        .map(|h| parse_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = opts.tls.as_ref().map(Tls::load).transpose()?;
    let mut passed: Option<Vec<Option<OwnedFd>>> = None;
    let mut sources = Vec::new();
    for h in hosts {
        let (fds, which) = match h {
            Host::Unix(p) => {
                sources.push(Source::Unix(p));
                continue;
            }
            Host::Tcp(a) => {
                sources.push(Source::Tcp(a));
                continue;
            }
            Host::AllPassed => (&mut passed, None),
            Host::Passed(n) => (&mut passed, Some(n)),
        };
        if fds.is_none() {
            let taken = engine::activation::listen_fds()
                .map_err(|e| format!("-H fd://: socket activation: {e}"))?;
            *fds = Some(taken.into_iter().map(Some).collect());
        }
        let fds = fds.as_mut().map(|v| v.as_mut_slice()).unwrap_or_default();
        if fds.is_empty() {
            return Err(
                "-H fd://: no sockets found via socket activation: make sure the service was started by systemd (LISTEN_PID and LISTEN_FDS name this process)"
                    .into(),
            );
        }
        let start = engine::activation::LISTEN_FDS_START;
        match which {
            None => {
                for (i, slot) in fds.iter_mut().enumerate() {
                    if let Some(fd) = slot.take() {
                        sources.push(Source::Passed(start + i as RawFd, fd));
                    }
                }
            }
            Some(n) => {
                let last = start + fds.len() as RawFd - 1;
                let slot = usize::try_from(n - start)
                    .ok()
                    .and_then(|i| fds.get_mut(i))
                    .ok_or_else(|| {
                        format!(
                            "-H fd://{n}: too few socket activated files passed in by systemd (fds {start}..{last})"
                        )
                    })?;
                let fd = slot
                    .take()
                    .ok_or_else(|| format!("-H fd://{n}: named twice"))?;
                sources.push(Source::Passed(n, fd));
            }
        }
    }
    // Passed sockets no -H names are closed here, as dockerd does.
    drop(passed);
    Ok(Plan {
        sources,
        group: opts.group,
        tls,
        notify: crate::notify::Notify::from_env(),
    })
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

/// A listening socket.
enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener, Option<Tls>),
}

/// An accepted connection, before any TLS handshake.
enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream, Option<Tls>),
}

impl Listener {
    async fn accept(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Listener::Unix(l) => Conn::Unix(l.accept().await?.0),
            Listener::Tcp(l, tls) => Conn::Tcp(l.accept().await?.0, tls.clone()),
        })
    }
}

/// A passed socket as a listener: a listening stream socket, Unix or
/// TCP; TLS applies to a TCP one. Its description for the log.
fn adopt(n: RawFd, fd: OwnedFd, tls: Option<&Tls>) -> Result<(Listener, String), String> {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, AddressFamily, SockType};
    use nix::sys::socket::{SockaddrLike, SockaddrStorage};
    let bad = |what: &str| format!("-H fd://{n}: the passed fd {what}");
    let listening =
        getsockopt(&fd, sockopt::AcceptConn).map_err(|e| bad(&format!("is not a socket: {e}")))?;
    let ty = getsockopt(&fd, sockopt::SockType).map_err(|e| bad(&e.to_string()))?;
    if ty != SockType::Stream || !listening {
        return Err(bad(
            "is not a listening stream socket (a systemd .socket with ListenStream= and Accept=no)",
        ));
    }
    let addr: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(|e| bad(&e.to_string()))?;
    let tokio_err = |e: std::io::Error| bad(&format!("cannot be used: {e}"));
    match addr.family() {
        Some(AddressFamily::Unix) => {
            let l = std::os::unix::net::UnixListener::from(fd);
            l.set_nonblocking(true).map_err(tokio_err)?;
            let l = tokio::net::UnixListener::from_std(l).map_err(tokio_err)?;
            let path = addr
                .as_unix_addr()
                .and_then(|u| u.path())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "an unnamed socket".into());
            Ok((Listener::Unix(l), path))
        }
        Some(AddressFamily::Inet | AddressFamily::Inet6) => {
            let l = std::net::TcpListener::from(fd);
            l.set_nonblocking(true).map_err(tokio_err)?;
            let l = tokio::net::TcpListener::from_std(l).map_err(tokio_err)?;
            let a = l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into());
            Ok((Listener::Tcp(l, tls.cloned()), a))
        }
        _ => Err(bad("is neither a Unix nor a TCP socket")),
    }
}

/// Say where we listen; on TCP without client verification, dockerd's
/// warnings (its words), for `--tls` alone as for no TLS at all.
fn announce_tcp(addr: &str, tls: Option<&Tls>, how: &str) {
    let host = format!("host=\"tcp://{addr}\"");
    match tls {
        Some(t) if t.verifies_clients => {
            eprintln!("berth serve: API listening on {addr}{how} with TLS, client certificates verified (--tlsverify)");
            return;
        }
        Some(_) => eprintln!(
            "berth serve: API listening on {addr}{how} with TLS but WITHOUT client verification (no --tlsverify): anyone who can reach it controls this host as root"
        ),
        None => eprintln!(
            "berth serve: API listening on {addr}{how} WITHOUT TLS: anyone who can reach it controls this host as root"
        ),
    }
    eprintln!("berth serve: Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.  {host}");
    eprintln!("berth serve: Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!  {host}");
}

/// The server's stop as handlers see it: long polls end when it comes
/// (their clients then see the stream end), so they do not hold the
/// server for its whole grace period.
#[derive(Clone)]
pub(crate) struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Resolves once the server stops.
    pub(crate) async fn wait(mut self) {
        stopped(&mut self.0).await
    }

    /// `s`, ending when the server stops.
    pub(crate) fn cut<S: futures_util::Stream>(
        &self,
        s: S,
    ) -> impl futures_util::Stream<Item = S::Item> {
        futures_util::StreamExt::take_until(s, Box::pin(self.clone().wait()))
    }
}

/// Resolves once `stop` turns true (never if its sender is gone: then the
/// whole server is).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await
    }
}

/// Our socket files, removed when dropped (on every way out of `run`).
struct OwnSockets(Vec<PathBuf>);

impl Drop for OwnSockets {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Listen on the plan's sockets until SIGINT or SIGTERM, then stop as the
/// module's documentation says. `app` builds the service given the stop.
pub(crate) async fn run(plan: Plan, app: impl FnOnce(Stopping) -> Router) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    // Before binding: a signal from now on is a stop, not a default death.
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = app(Stopping(stop_rx.clone()));
    // Every connection task holds a receiver: none left, all are done.
    let conns = watch::Sender::new(());
    let mut ours = OwnSockets(Vec::new());
    let mut tls_used = false;
    let mut loops = Vec::new();
    for src in plan.sources {
        let listener = match src {
            Source::Unix(path) => {
                let l = bind_unix(&path, plan.group.as_deref())?;
                ours.0.push(path.clone());
                eprintln!("berth serve: API listening on {}", path.display());
                Listener::Unix(l)
            }
            Source::Tcp(addr) => {
                let l = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("listening on {addr}: {e}"))?;
                announce_tcp(&addr, plan.tls.as_ref(), "");
                tls_used |= plan.tls.is_some();
                Listener::Tcp(l, plan.tls.clone())
            }
            Source::Passed(n, fd) => {
                let (l, what) = adopt(n, fd, plan.tls.as_ref())?;
                match &l {
                    Listener::Tcp(_, tls) => {
                        announce_tcp(&what, tls.as_ref(), &format!(" (fd {n}, from systemd)"));
                        tls_used |= tls.is_some();
                    }
                    Listener::Unix(_) => {
                        eprintln!("berth serve: API listening on {what} (fd {n}, from systemd)")
                    }
                }
                l
            }
        };
        loops.push(tokio::spawn(accept_loop(
            listener,
            app.clone(),
            stop_rx.clone(),
            conns.clone(),
        )));
    }
    if plan.tls.is_some() && !tls_used {
        eprintln!("berth serve: --tls/--tlsverify: no TCP listener to use them on (Unix sockets are guarded by their owner and mode)");
    }
    // Every listener is bound: connections are queued from now on.
    if let Some(n) = &plan.notify {
        n.send("READY=1");
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Some(n) = &plan.notify {
        n.send("STOPPING=1");
    }
    eprintln!(
        "berth serve: stopping: no new connections; requests under way have {}s to finish (containers keep running)",
        GRACE.as_secs()
    );
    let _ = stop_tx.send(true);
    for l in loops {
        let _ = l.await;
    }
    drop(ours);
    tokio::select! {
        _ = conns.closed() => {}
        _ = tokio::time::sleep(GRACE) => {
            eprintln!(
                "berth serve: closing {} connection(s) still busy after {}s",
                conns.receiver_count(),
                GRACE.as_secs()
            );
        }
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Accept until the stop; each connection in a task of its own.
async fn accept_loop(
    l: Listener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    conns: watch::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut stop) => return,
            a = l.accept() => a,
        };
        match accepted {
            Ok(c) => {
                tokio::spawn(connection(c, app.clone(), stop.clone(), conns.subscribe()));
            }
            // Out of fds or a connection reset before it was taken: wait
            // a moment rather than spin (as axum and Go's net/http do).
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The unix socket a request came on, for the few handlers that must ask
/// the kernel about the connection (whether the client has read what was
/// sent: `hijack::wait_until_read`). Valid while the connection is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnixPeer(pub(crate) std::os::fd::RawFd);

/// One connection: the TLS handshake (bounded, abandoned at the stop),
/// then HTTP. `_busy` tells `run` the connection is not done.
async fn connection(
    c: Conn,
    app: Router,
    mut stop: watch::Receiver<bool>,
    _busy: watch::Receiver<()>,
) {
    match c {
        Conn::Unix(s) => {
            // Handlers that need the socket itself (see `UnixPeer`) find it
            // in the request; the stream outlives every request on it.
            let fd = UnixPeer(s.as_raw_fd());
            let app = tower::ServiceExt::map_request(app, move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(fd);
                req
            });
            http(s, app, stop).await
        }
        Conn::Tcp(s, None) => {
            let _ = s.set_nodelay(true);
            http(s, app, stop).await
        }
        Conn::Tcp(s, Some(tls)) => {
            let _ = s.set_nodelay(true);
            let peer = s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into());
            let handshake = tokio::time::timeout(HANDSHAKE, tls.acceptor.accept(s));
            let s = tokio::select! {
                r = handshake => r,
                _ = stopped(&mut stop) => return,
            };
            match s {
                Ok(Ok(s)) => http(s, app, stop).await,
                // Go's net/http words, which dockerd's log shows.
                Ok(Err(e)) => eprintln!("berth serve: http: TLS handshake error from {peer}: {e}"),
                Err(_) => eprintln!(
                    "berth serve: http: TLS handshake error from {peer}: no handshake within {}s",
                    HANDSHAKE.as_secs()
                ),
            }
        }
    }
}

/// HTTP/1.1 on `io` with upgrades (attach, exec); at the stop, the
/// connection closes once the request under way is answered.
async fn http<I, S>(io: I, app: S, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped(&mut stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_dockerd_names_them() {
        assert_eq!(
            parse_host("unix:///run/x.sock"),
            Ok(Host::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2376/"),
            Ok(Host::Tcp("127.0.0.1:2376".into()))
        );
        assert_eq!(parse_host("fd://"), Ok(Host::AllPassed));
        assert_eq!(parse_host("fd://*"), Ok(Host::AllPassed));
        assert_eq!(parse_host("fd://4"), Ok(Host::Passed(4)));
        assert!(parse_host("fd://x")
            .unwrap_err()
            .contains("should be a number"));
        assert!(parse_host("unix://rel.sock").is_err());
        assert!(parse_host("ssh://h").is_err());
    }

    #[test]
    fn fd_hosts_without_activation_say_what_is_missing() {
        // This test process was not socket-activated.
        let e = plan(Options {
            hosts: vec!["fd://".into()],
            ..Options::default()
        })
        .err()
        .unwrap();
        assert!(e.contains("no sockets found via socket activation"), "{e}");
    }
}
