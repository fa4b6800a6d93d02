//! The layer byte stream: compression detected from magic bytes, and the
//! sha256 of the uncompressed tar (the OCI diff-id) taken while reading.
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use model::digest::Hasher;
use model::Digest;

use super::guard::{Counting, Guard, Limits};

/// Buffer size for reading compressed input and decoded tar data.
pub(super) const BUF_SIZE: usize = 128 * 1024;

/// Layer compression, from the magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
}

/// Detect the compression of a stream from its first bytes (at least 4 to
/// recognise zstd; fewer bytes give [`Compression::None`]).
pub fn detect(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    hash: bool,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(),
            count: 0,
            hash: true,
        }
    }
    /// Wrap `inner`, counting bytes without hashing them ([`Self::finish`]
    /// is then the digest of nothing).
    pub fn counting(inner: R) -> Self {
        HashingReader {
            hash: false,
            ..HashingReader::new(inner)
        }
    }
    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The digest of everything read.
    pub fn finish(self) -> Digest {
        self.hasher.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.hash {
            self.hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// The input, buffered in large blocks, and its compression. The magic
/// bytes are read first by hand: a stream may hand out fewer bytes per read
/// than the magic number has.
fn sniff<'a>(mut reader: impl Read + 'a) -> io::Result<(Compression, impl BufRead + 'a)> {
    let mut magic = [0u8; 4];
    let mut len = 0;
    while len < magic.len() {
        match reader.read(&mut magic[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let kind = detect(&magic[..len]);
    let input = io::Cursor::new(magic).take(len as u64).chain(reader);
    Ok((kind, BufReader::with_capacity(BUF_SIZE, input)))
}

/// The decoder for `reader`'s compression. Its output is not buffered:
/// callers reading small pieces (a tar parser reads 512-byte headers) put a
/// [`BufReader`] on top.
pub(super) fn decoder_of<'a>(
    reader: impl Read + 'a,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let (kind, input) = sniff(reader)?;
    Ok((kind, decode(kind, input)?))
}

fn decode<'a>(kind: Compression, input: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match kind {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// A buffered, decompressing reader for any supported compression
/// (detected from the first bytes).
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let (kind, input) = sniff(reader)?;
    Ok(match kind {
        Compression::None => Box::new(input),
        _ => Box::new(BufReader::with_capacity(BUF_SIZE, decode(kind, input)?)),
    })
}

/// [`decompress`], bounded by `limits` (expansion only: the caller writes
/// the output, and a full disk fails its writes): the error of a refused
/// stream carries a [`Refusal`] (`io::Error::get_ref`). `compressed_size`
/// is the stream's size if known.
pub fn decompress_bounded<'a>(
    reader: impl Read + 'a,
    limits: Limits,
    compressed_size: Option<u64>,
) -> io::Result<Box<dyn Read + 'a>> {
    let input = Rc::new(Cell::new(0u64));
    let counted = Counting {
        inner: reader,
        count: input.clone(),
    };
    let (kind, decoded) = decoder_of(counted)?;
    if kind == Compression::None {
        return Ok(decoded);
    }
    let guarded = Guard::new(decoded, Some(input), compressed_size, limits, None)?;
    Ok(Box::new(BufReader::with_capacity(BUF_SIZE, guarded)))
}

/// The output of `decode` (a decompressor over the reader it is given),
/// bounded by `limits` like [`decompress_bounded`]: for formats the store
/// does not decode itself (bzip2 in `ADD`).
pub fn bounded<'a, R: Read + 'a>(
    reader: R,
    limits: Limits,
    compressed_size: Option<u64>,
    decode: impl FnOnce(Counting<R>) -> Box<dyn Read + 'a>,
) -> io::Result<Box<dyn Read + 'a>> {
    let input = Rc::new(Cell::new(0u64));
    let counted = Counting {
        inner: reader,
        count: input.clone(),
    };
    let guarded = Guard::new(decode(counted), Some(input), compressed_size, limits, None)?;
    Ok(Box::new(guarded))
}

/// What the tar parser may read to find the next entry: its header and
/// the PAX / GNU long-name records before it, which the `tar` crate holds
/// in memory. Go's archive/tar allows 1 MiB of PAX records; a hostile
/// layer could otherwise declare gigabytes (of well-compressing zeros).
pub(super) const MAX_HEADER_BYTES: u64 = 4 << 20;

/// A reader that fails once `left` bytes have been read; the unpack loop
/// sets `left` to [`MAX_HEADER_BYTES`] before asking for the next entry
/// and lifts it while an entry's data is read.
pub(super) struct Budget<R> {
    pub inner: R,
    pub left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the headers of one tar entry take more than {} MiB",
                    MAX_HEADER_BYTES >> 20
                ),
            ));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_split_over_reads_is_detected() {
        /// Hands out one byte per read.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let data = b"hello layer".repeat(1000);
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        let mut out = Vec::new();
        decompress(Trickle(&zst))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let mut out = Vec::new();
        decompress(Trickle(b"ab"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn detects_compression() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(b"ustar"), Compression::None);
        assert_eq!(detect(b""), Compression::None);
    }
}
