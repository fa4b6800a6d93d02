//! The accept loop of `berth registry serve`, plain HTTP or TLS: each
//! connection in a task of its own, served by hyper's HTTP/1.1 with
//! bounds a hostile client cannot stretch:
//!
//! - **Request headers** must arrive within [`Limits::header_timeout`]
//!   (hyper's `header_read_timeout`, 30 s as distribution's Go server
//!   effectively allows): a client that dribbles its headers a byte at a
//!   time (slowloris) or opens a connection and sends nothing is
//!   disconnected, and so is a keep-alive connection idle that long.
//!   Bodies are bounded by the handlers' own idle timeout
//!   ([`super::blobs::IDLE`]).
//! - **At most [`Limits::max_connections`] connections** are served at
//!   once; past that the loop stops accepting (new clients wait in the
//!   kernel's backlog) until one closes, so the process never runs out of
//!   descriptors for its blobs.
//! - **TLS handshakes** are bounded as well ([`super::tls::handshake`]).
//!
//! On stop, accepting ends and each connection finishes the request under
//! way (hyper's graceful shutdown).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How long a client may take to send a request's headers, by default.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections are served at once, by default.
pub const MAX_CONNECTIONS: usize = 512;

/// The bounds of every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// See the module's doc.
    pub header_timeout: Duration,
    /// See the module's doc.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Accept connections on `listener` (TLS ones when `tls` is given) and
/// serve `app` on each until `stop` turns true; then stop accepting and
/// let each connection finish the request under way. Returns once every
/// connection is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // A free slot first: at the limit, nothing more is accepted.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            r = stop.wait_for(|s| *s) => {
                let _ = r;
                break;
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            r = stop.wait_for(|s| *s) => {
                let _ = r;
                break;
            }
        };
        let (sock, peer) = match accepted {
            Ok(x) => x,
            // Out of descriptors and the like: wait a little, go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Reap the finished ones so the set does not grow.
        while conns.try_join_next().is_some() {}
        let _ = sock.set_nodelay(true);
        let (app, tls, stop) = (app.clone(), tls.clone(), stop.clone());
        conns.spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    let mut stop2 = stop.clone();
                    let tls = tokio::select! {
                        s = super::tls::handshake(&acceptor, sock, peer) => s,
                        _ = stop2.wait_for(|s| *s) => None,
                    };
                    if let Some(tls) = tls {
                        connection(tls, peer, app, stop, limits).await;
                    }
                }
                // Plain TCP: blobs go out with sendfile (`zerocopy`).
                None => {
                    let sock = super::zerocopy::Conn(sock);
                    connection(sock, peer, app, stop, limits).await
                }
            }
        });
    }
    while conns.join_next().await.is_some() {}
}

async fn connection<S>(
    io: S,
    peer: SocketAddr,
    app: Router,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                use tower_service::Service as _;
                app.call(req).await
            }
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
