//! Content-addressed blobs: written to a temp file while hashing, verified,
//! fsynced and renamed into `blobs/sha256/<hex>`.
use std::io::{Read, Write};
use std::path::PathBuf;

use model::digest::Hasher;
use model::Digest;

use crate::{Store, StoreError};

/// A blob being written.
pub struct BlobWriter {
    file: std::fs::File,
    tmp: PathBuf,
    hasher: Hasher,
    size: u64,
    /// The digest is known from elsewhere (an uncompressed layer's blob
    /// digest is its diff-id, hashed by the unpacker): do not hash twice.
    pub(crate) known_digest: bool,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if !self.known_digest {
            self.hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Store {
    /// Path of a blob.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root().join("blobs/sha256").join(d.hex())
    }

    /// Start writing a blob into `dir` (a tmp dir of the caller).
    pub(crate) fn blob_writer(&self, dir: &std::path::Path) -> Result<BlobWriter, StoreError> {
        let tmp = dir.join(format!(
            "blob-{}",
            &model::ContainerId::random().as_str()[..12]
        ));
        let file = std::fs::File::create(&tmp).map_err(StoreError::io(&tmp))?;
        Ok(BlobWriter {
            file,
            tmp,
            hasher: Hasher::new(),
            size: 0,
            known_digest: false,
        })
    }

    /// Finish a blob: verify against `expected` (if given), fsync, rename
    /// into place. Returns its digest and size.
    pub(crate) fn commit_blob(
        &self,
        w: BlobWriter,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        self.commit_blob_as(w, expected, None)
    }

    /// [`Store::commit_blob`], with the digest computed by the caller when
    /// the writer was told not to hash (`known_digest`).
    pub(crate) fn commit_blob_as(
        &self,
        mut w: BlobWriter,
        expected: Option<&Digest>,
        known: Option<Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        w.file.flush().map_err(StoreError::io(&w.tmp))?;
        let hasher = std::mem::take(&mut w.hasher);
        let digest = match known {
            Some(d) if w.known_digest => d,
            _ => hasher.finish(),
        };
        if let Some(e) = expected {
            if *e != digest {
                return Err(StoreError::DigestMismatch {
                    what: format!("blob {e}"),
                    expected: e.clone(),
                    actual: digest,
                });
            }
        }
        w.file.sync_all().map_err(StoreError::io(&w.tmp))?;
        let dest = self.blob_path(&digest);
        if !dest.exists() {
            std::fs::rename(&w.tmp, &dest).map_err(StoreError::io(&dest))?;
        }
        Ok((digest, w.size))
    }

    /// Store bytes as a blob.
    pub(crate) fn put_blob(
        &self,
        dir: &std::path::Path,
        data: &[u8],
    ) -> Result<Digest, StoreError> {
        let mut w = self.blob_writer(dir)?;
        w.write_all(data).map_err(StoreError::io(dir))?;
        Ok(self.commit_blob(w, None)?.0)
    }

    /// Read a whole blob.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let p = self.blob_path(d);
        let mut v = Vec::new();
        std::fs::File::open(&p)
            .and_then(|mut f| f.read_to_end(&mut v))
            .map_err(StoreError::io(&p))?;
        Ok(v)
    }
}
