//! Blobs being downloaded: `downloads/<hex>` keeps the bytes received so
//! far, so that a pull interrupted by a network cut, Ctrl-C or `kill -9`
//! resumes where it stopped. `downloads/<hex>.lock` is flock'ed by the one
//! command downloading the blob: a second pull of the same blob waits for
//! it and then replays the finished file from disk instead of the network.
//!
//! A partial file is only ever appended to, and its bytes are verified
//! with the rest of the blob (digest and size) by the caller. A verified
//! download stays in `downloads/` until the command registering the image
//! adopts it into `blobs/` ([`Blobs::adopt`]), so a pull that fails later
//! leaves `blobs/` untouched. A partial that fails verification is deleted.
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use model::Digest;

use crate::{Store, StoreError};

/// The blob directories of a store, without its database: `Send` and
/// `Sync`, for download and upload workers.
#[derive(Debug, Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// An exclusive claim on downloading one blob.
pub struct Download {
    /// The partial file, opened for reading and appending.
    pub file: File,
    /// Bytes already in it.
    pub len: u64,
    path: PathBuf,
    _lock: nix::fcntl::Flock<File>,
}

impl Download {
    /// Where the partial bytes live.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Throw away what was downloaded (it failed verification).
    pub fn discard(mut self) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(StoreError::io(&self.path))?;
        self.len = 0;
        std::fs::remove_file(&self.path).map_err(StoreError::io(&self.path))?;
        // The claim goes too (held until `self` drops: a waiter then finds
        // the file gone and takes a fresh one, as after `adopt`).
        let _ = std::fs::remove_file(self.path.with_extension("lock"));
        Ok(())
    }
}

impl Store {
    /// The blob directories, for worker threads.
    pub fn blobs(&self) -> Blobs {
        Blobs {
            root: self.root().to_path_buf(),
        }
    }

    /// Is the blob in the store?
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Store `data` as a blob (manifests and configs), verifying it if
    /// `expected` is given.
    pub fn put_blob_verified(
        &self,
        data: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        let tmp = self.tmp_dir("blob")?;
        let mut w = self.blob_writer(tmp.path())?;
        std::io::Write::write_all(&mut w, data).map_err(StoreError::io(tmp.path()))?;
        Ok(self.commit_blob(w, expected)?.0)
    }
}

impl Blobs {
    /// Path of a blob.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    /// Is the blob in the store?
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// Claim the download of blob `d`, waiting while another command
    /// downloads it. Returns `None` if the blob is (by then) in the store.
    pub fn start_download(&self, d: &Digest) -> Result<Option<Download>, StoreError> {
        let dir = self.root.join("downloads");
        std::fs::create_dir_all(&dir).map_err(StoreError::io(&dir))?;
        let lock_path = dir.join(format!("{}.lock", d.hex()));
        let lock = loop {
            let lock_file = File::create(&lock_path).map_err(StoreError::io(&lock_path))?;
            let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| StoreError::io(&lock_path)(e.into()))?;
            // The holder we waited for may have removed the lock file: a
            // lock on an unlinked file excludes nobody.
            use std::os::unix::fs::MetadataExt;
            let ours = lock.metadata().map_err(StoreError::io(&lock_path))?;
            match std::fs::metadata(&lock_path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => break lock,
                _ if self.has(d) => return Ok(None),
                _ => continue,
            }
        };
        if self.has(d) {
            return Ok(None);
        }
        let path = dir.join(d.hex());
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(StoreError::io(&path))?;
        let len = file.seek(SeekFrom::End(0)).map_err(StoreError::io(&path))?;
        Ok(Some(Download {
            file,
            len,
            path,
            _lock: lock,
        }))
    }

    /// The download is complete and verified by the caller: fsync it and
    /// release the claim. It stays in `downloads/` (a pull that fails
    /// later leaves `blobs/` as it was) until [`Blobs::adopt`].
    pub fn finish_download(&self, dl: Download) -> Result<(), StoreError> {
        dl.file.sync_all().map_err(StoreError::io(&dl.path))?;
        Ok(())
    }

    /// Move a finished download of `d` into `blobs/` (the command that
    /// registers the image does this just before it does).
    pub fn adopt(&self, d: &Digest) -> Result<(), StoreError> {
        let src = self.root.join("downloads").join(d.hex());
        let dest = self.path(d);
        match std::fs::rename(&src, &dest) {
            Ok(()) => {
                let _ = std::fs::remove_file(src.with_extension("lock"));
                Ok(())
            }
            // Another command adopted it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.has(d) => Ok(()),
            Err(e) => Err(StoreError::io(&src)(e)),
        }
    }
}
