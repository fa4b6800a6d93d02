//! Request bodies (tarballs to load, import or build from) read as a
//! `std::io::Read` by a blocking worker while the client still sends.
use std::io::Read;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// The blocking end of a request body.
pub(crate) struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    chunk: Bytes,
}

/// Start copying `body` from the connection; read it from the answer.
pub(crate) fn reader(body: Body) -> BodyReader {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut s = body.into_data_stream();
        while let Some(chunk) = s.next().await {
            let failed = chunk.is_err();
            if tx.send(chunk.map_err(|e| e.to_string())).await.is_err() || failed {
                break;
            }
        }
    });
    BodyReader {
        rx,
        chunk: Bytes::new(),
    }
}

/// Read and drop a body we answer without (see [`BodyReader::drain`]).
pub(crate) async fn discard(body: Body) {
    let mut s = body.into_data_stream();
    while let Some(Ok(_)) = s.next().await {}
}

impl BodyReader {
    /// Read what the client still sends: an answer given before the whole
    /// body was read ends the connection, and the client, still writing,
    /// sees a broken pipe instead of the answer.
    pub(crate) fn drain(&mut self) {
        let _ = std::io::copy(self, &mut std::io::sink());
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!(
                        "reading the request body: {e}"
                    )))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
