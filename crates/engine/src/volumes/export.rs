//! `volume export` and `volume import`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;

use crate::error::{EngineError, Result};

impl crate::Engine {
    /// `volume export`: the volume's content as a tar stream.
    pub fn volume_export(&self, name: &str, out: impl Write) -> Result<()> {
        let rec = self.store().volume(name)?;
        let data = self.volume_path(&rec)?;
        let fd = store::fsops::open_dir(&data)
            .map_err(|e| EngineError::io(format!("opening volume {name}"), e))?;
        store::fsops::tar_contents(fd.as_fd(), None, out)
            .map_err(|e| EngineError::io(format!("exporting volume {name}"), e))
    }

    /// `volume import`: unpack a tar stream (plain, gzip or zstd) into the
    /// volume (created if missing), safely: entries never leave it.
    pub fn volume_import(&self, name: &str, input: impl Read) -> Result<u64> {
        let created = self.store().volume(name).is_err();
        if created {
            self.volume_create(Some(name), None, BTreeMap::new(), BTreeMap::new())?;
        }
        let rec = self.store().volume(name)?;
        let data = self.volume_path(&rec)?;
        crate::faults::point("volume-import.created");
        let done = store::layer::unpack_with(
            PointAfterFirstRead {
                inner: input,
                read: false,
            },
            &data,
            &store::layer::UnpackOptions {
                plain_names: true,
                ..Default::default()
            },
        )
        .map_err(|e| {
            EngineError::io(
                format!("importing into volume {name}"),
                std::io::Error::other(e),
            )
        });
        match done {
            Ok(done) => Ok(done.entries),
            Err(e) => {
                // A failed import leaves no volume it made (a full disk,
                // a bad tar). What was written goes first: removing the
                // record is a database write, which needs the space back.
                if created {
                    empty_dir(&data);
                    let _ = self.volume_remove(name);
                }
                Err(e)
            }
        }
    }
}

/// Remove what is in `dir` (best effort; links are removed, not followed).
fn empty_dir(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => {
                let _ = std::fs::remove_dir_all(&p);
            }
            _ => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// The import's input, announcing the fault point
/// `volume-import.unpacking` once its first bytes have been unpacked
/// (at its second read).
struct PointAfterFirstRead<R> {
    inner: R,
    read: bool,
}

impl<R: Read> Read for PointAfterFirstRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read {
            crate::faults::point("volume-import.unpacking");
        }
        self.read = true;
        self.inner.read(buf)
    }
}
