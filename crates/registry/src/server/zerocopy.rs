//! Blobs sent with `sendfile(2)`, as distribution sends them, while the
//! server stays an ordinary hyper service.
//!
//! A blob's body is a mapping of its file, handed to hyper in slices
//! (`blobs::get`). Each mapping is registered here by its address range.
//! Plain TCP connections run over [`Conn`], whose vectored write looks at
//! what hyper asks it to write: bytes inside a registered mapping are sent
//! from the file with `sendfile` at the matching offset (the page cache
//! goes to the socket without a copy through user memory, and the mapping
//! itself is never touched, so never faulted in); anything else (headers,
//! JSON) is written as it is. The bytes are the same either way: a blob
//! file is never rewritten in place (see `sys::mmap::MappedFile`).
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Mappings being sent: start address → (length, the file).
static MAPPED: RwLock<BTreeMap<usize, (usize, Arc<File>)>> = RwLock::new(BTreeMap::new());
/// How many there are: a write with none registered skips the lookup.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// A registered mapping; unregistered before it is unmapped.
struct Sendable {
    map: sys::mmap::MappedFile,
}

impl AsRef<[u8]> for Sendable {
    fn as_ref(&self) -> &[u8] {
        self.map.as_ref()
    }
}

impl Drop for Sendable {
    fn drop(&mut self) {
        let start = self.map.as_ref().as_ptr() as usize;
        let mut m = MAPPED.write().unwrap_or_else(|e| e.into_inner());
        if m.remove(&start).is_some() {
            COUNT.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `file`'s bytes, mapped and registered so that a [`Conn`] sends them
/// with `sendfile`; on any other connection they are plain bytes.
pub(crate) fn bytes_of(file: File) -> io::Result<Bytes> {
    let map = sys::mmap::MappedFile::map(&file)?;
    let (start, len) = (map.as_ref().as_ptr() as usize, map.as_ref().len());
    if len > 0 {
        let mut m = MAPPED.write().unwrap_or_else(|e| e.into_inner());
        m.insert(start, (len, Arc::new(file)));
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Bytes::from_owner(Sendable { map }))
}

/// The file and offset behind `buf`, if it lies in a registered mapping.
fn lookup(buf: &[u8]) -> Option<(Arc<File>, u64)> {
    if buf.is_empty() || COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let at = buf.as_ptr() as usize;
    let m = MAPPED.read().unwrap_or_else(|e| e.into_inner());
    let (&start, (len, file)) = m.range(..=at).next_back()?;
    (at + buf.len() <= start + len).then(|| (file.clone(), (at - start) as u64))
}

/// A plain TCP connection whose writes of registered blob bytes go out
/// with `sendfile`.
pub(crate) struct Conn(pub(crate) TcpStream);

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else {
            return Poll::Ready(Ok(0));
        };
        if let Some((file, offset)) = lookup(&bufs[first]) {
            let len = bufs[first].len();
            loop {
                ready!(self.0.poll_write_ready(cx))?;
                let sock = &self.0;
                match sock.try_io(Interest::WRITABLE, || {
                    sys::socket::send_file(sock.as_fd(), file.as_fd(), offset, len)
                }) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return Poll::Ready(r),
                }
            }
        }
        // Up to the next blob slice, written as it is.
        let end = bufs[first..]
            .iter()
            .position(|b| lookup(b).is_some())
            .map_or(bufs.len(), |k| first + k);
        Pin::new(&mut self.0).poll_write_vectored(cx, &bufs[first..end])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn blob_bytes_go_out_by_sendfile_and_arrive_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let bytes = bytes_of(File::open(&path).unwrap()).unwrap();
        let slice = bytes.slice(1000..2_500_000);
        assert_eq!(lookup(&slice).map(|(_, o)| o), Some(1000));
        assert!(lookup(b"not mapped").is_none());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut conn = Conn(TcpStream::connect(addr).await.unwrap());
        let head = b"head:".to_vec();
        let mut bufs: Vec<&[u8]> = vec![&head, &slice, b":tail"];
        // As hyper writes a queue: vectored, advancing by what was taken.
        while !bufs.is_empty() {
            let io: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
            let mut n = std::future::poll_fn(|cx| Pin::new(&mut conn).poll_write_vectored(cx, &io))
                .await
                .unwrap();
            while n > 0 {
                let take = n.min(bufs[0].len());
                bufs[0] = &bufs[0][take..];
                n -= take;
                if bufs[0].is_empty() {
                    bufs.remove(0);
                }
            }
        }
        conn.shutdown().await.unwrap();
        let got = reader.await.unwrap();
        let mut want = b"head:".to_vec();
        want.extend_from_slice(&data[1000..2_500_000]);
        want.extend_from_slice(b":tail");
        assert!(
            got == want,
            "{} bytes arrived, {} sent",
            got.len(),
            want.len()
        );
        let start = bytes.as_ptr() as usize;
        drop((slice, bytes));
        assert!(!MAPPED.read().unwrap().contains_key(&start), "unregistered");
    }
}
