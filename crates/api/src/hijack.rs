//! A hijacked stream (attach, exec start) answered as dockerd answers it:
//! `101` and the raw connection when the client asked to upgrade
//! (`Connection: Upgrade`, `Upgrade: tcp`: the docker CLI, docker-py,
//! bollard), `200 OK` with the stream as the response body when it did
//! not (dockerode without `hijack`, curl): moby's `postContainersAttach`
//! and `postContainerExecStart` do the same. Either way the handler gets
//! one duplex stream to bridge.
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::ApiError;

/// The client's side of a hijacked request.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The answer to send now, and the client's stream once it is there
/// (`None`: the upgrade failed, the client is gone).
pub(crate) struct Hijacked {
    pub(crate) response: Response,
    pub(crate) client: BoxFuture<'static, Option<Box<dyn Io>>>,
    /// The client upgraded the connection (it may have read past the
    /// headers: see `attach::reads_past_the_headers`).
    pub(crate) upgraded: bool,
    /// The unix socket under the connection, when it is one.
    peer: Option<crate::listen::UnixPeer>,
}

impl Hijacked {
    /// Wait, after the 101 went out, until the client has read it, so that
    /// what follows is not taken in the read that takes the headers (a
    /// client that reads the stream from the socket under its HTTP buffer,
    /// docker-py, would lose it). On a unix socket the kernel says when
    /// the client has read everything (bounded: a client that never reads
    /// gets the stream after 5 s); over TCP it cannot, and the client gets
    /// dockerd's head start of about 100 ms.
    /// Whether to hold the stream until the client has read the 101: on
    /// a unix socket always (the kernel says when, at no cost to a client
    /// that reads at once, and clients built on docker-py do not all say
    /// so: testcontainers names itself `tc-python`); over TCP only for the
    /// clients known to read past the headers, as the wait there is blind.
    pub(crate) fn holds_until_read(&self, req: &Request) -> bool {
        self.upgraded && (self.peer.is_some() || crate::attach::reads_past_the_headers(req))
    }

    pub(crate) fn until_read(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let peer = self.peer;
        async move {
            let Some(peer) = peer else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                return;
            };
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            while tokio::time::Instant::now() < deadline {
                match engine::term::unread_bytes(peer.0) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(2)).await,
                }
            }
        }
    }
}

/// The answer and the stream for `req`, whose stream is `content_type`.
pub(crate) fn hijack(req: &mut Request, content_type: &str) -> Result<Hijacked, ApiError> {
    let asked = req.headers().contains_key(header::UPGRADE);
    let peer = req.extensions().get::<crate::listen::UnixPeer>().copied();
    if asked {
        let on = hyper::upgrade::on(req);
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let client = async move {
            on.await
                .ok()
                .map(|u| Box::new(TokioIo::new(u)) as Box<dyn Io>)
        };
        return Ok(Hijacked {
            response,
            client: client.boxed(),
            upgraded: true,
            peer,
        });
    }
    // The handler writes into one end of a pipe; the body reads the other
    // until the handler shuts its side. That end is never written to: the
    // handler reads no input from such a client (dockerd's read from the
    // connection waits, as this one does), and a client that goes away
    // drops the body, so the handler's next write fails and it ends.
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let body = futures_util::stream::unfold(theirs, |mut r| async move {
        let mut buf = vec![0u8; 16 * 1024];
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), r))
            }
        }
    });
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Hijacked {
        response,
        client: futures_util::future::ready(Some(Box::new(ours) as Box<dyn Io>)).boxed(),
        upgraded: false,
        peer,
    })
}
