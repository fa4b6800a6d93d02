//! A build step's new layer: unpacked under a tmp dir without a blob, its
//! diff-id taken from the directory (`store::build::digest_layer_dir`).
//! A large layer is digested in a child process while the next step runs:
//! a `RUN` then sees its directory as an extra lower layer, and the step's
//! image is registered when the digest is in (before anything else needs
//! it).
use std::io::{Read, Write};

use model::Digest;

use super::{Builder, StageState};
use crate::error::{EngineError, Result};

/// Layers at least this large are digested while the next step runs.
const DEFER_BYTES: u64 = 8 << 20;

/// A step's layer, unpacked, not yet digested.
pub(super) struct NewLayer {
    pub(super) tmp: store::TmpDir,
    pub(super) layer: store::build::UnpackedBuildLayer,
}

impl NewLayer {
    /// Unpack a layer tar into a new tmp dir.
    pub(super) fn unpack(engine: &crate::Engine, what: &str, reader: impl Read) -> Result<Self> {
        Self::unpack_from(engine, what, reader, None)
    }

    /// [`NewLayer::unpack`], with the data of files the stream names by
    /// reference from `source`.
    pub(super) fn unpack_from(
        engine: &crate::Engine,
        what: &str,
        reader: impl Read,
        source: Option<store::layer::DataSource<'_>>,
    ) -> Result<Self> {
        let tmp = engine.store().tmp_dir(what)?;
        let layer = engine.store().unpack_build_layer(&tmp, reader, source)?;
        Ok(NewLayer { tmp, layer })
    }

    /// The step changed nothing (BuildKit's `empty_layer`).
    pub(super) fn is_empty(&self) -> bool {
        self.layer.entries == 0
    }
}

/// A layer step whose layer is being digested.
pub(super) struct Pending {
    /// First, so that it is dropped (killed) before its directory goes.
    child: DigestChild,
    new: NewLayer,
    /// The step's cache key and history line.
    key: String,
    created_by: String,
}

impl Pending {
    /// The layer's directory (a lower layer for the next RUN).
    pub(super) fn dir(&self) -> &std::path::Path {
        &self.new.layer.dir
    }
}

/// The child process digesting a layer dir; killed if dropped unread.
struct DigestChild {
    pid: i32,
    result: Option<std::fs::File>,
}

impl DigestChild {
    fn spawn(dir: &std::path::Path, clamp: u64) -> std::io::Result<DigestChild> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // Nothing in the child touches the store or prints: it hashes, writes
        // one line and exits without running destructors.
        match sys::process::fork()? {
            sys::process::Forked::Child => {
                drop(r);
                let line = match store::build::digest_layer_dir(dir, clamp) {
                    Ok((d, n)) => format!("ok {d} {n}"),
                    Err(e) => format!("err {e}"),
                };
                let _ = std::fs::File::from(w).write_all(line.as_bytes());
                sys::process::exit_now(0)
            }
            sys::process::Forked::Parent(pid) => {
                drop(w);
                Ok(DigestChild {
                    pid,
                    result: Some(std::fs::File::from(r)),
                })
            }
        }
    }

    fn wait(mut self) -> Result<(Digest, u64)> {
        let mut line = String::new();
        if let Some(mut f) = self.result.take() {
            let _ = f.read_to_string(&mut line);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        let fail = |why: String| EngineError::io("digesting a layer", std::io::Error::other(why));
        if let Some(err) = line.strip_prefix("err ") {
            return Err(fail(err.to_string()));
        }
        let mut words = line.strip_prefix("ok ").unwrap_or("").split(' ');
        let digest = words.next().and_then(|d| d.parse::<Digest>().ok());
        let size = words.next().and_then(|n| n.parse::<u64>().ok());
        match (digest, size) {
            (Some(d), Some(n)) => Ok((d, n)),
            _ => Err(fail("the digesting process ended without a result".into())),
        }
    }
}

impl Drop for DigestChild {
    fn drop(&mut self) {
        if self.result.is_some() {
            let pid = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

impl Builder<'_> {
    /// File times in layers are clamped to this.
    pub(super) fn clamp(&self) -> u64 {
        self.epoch.unwrap_or(0).max(0) as u64
    }

    /// Digest a new layer now and make it ready to register.
    fn digest_now(&self, new: NewLayer) -> Result<(store::TmpDir, store::IngestedLayer)> {
        let digest = store::build::digest_layer_dir(&new.layer.dir, self.clamp())
            .map_err(|e| EngineError::io("digesting a layer", e))?;
        let layer = self
            .engine
            .store()
            .build_layer(new.layer, digest, self.clamp())?;
        Ok((new.tmp, layer))
    }

    /// Finish a layer step with its new layer: registered now, or (a large
    /// layer) left pending while the next step runs. `prev_key` is the
    /// stage's key before this step.
    pub(super) fn finish_layer_step(
        &mut self,
        st: &mut StageState,
        new: NewLayer,
        created_by: &str,
        prev_key: String,
    ) -> Result<()> {
        if new.is_empty() {
            self.history(st, created_by, true);
            let id = self.register(st, Vec::new())?;
            drop(new.tmp);
            return self.adopt(st, id);
        }
        if new.layer.size >= DEFER_BYTES {
            // The next step's container runs on an image of the stage as
            // it stood before this step, plus this layer's directory.
            if st.dirty || st.image.is_none() {
                let key = std::mem::replace(&mut st.key, prev_key);
                let id = self.register(st, Vec::new());
                st.key = key;
                self.adopt(st, id?)?;
            }
            match DigestChild::spawn(&new.layer.dir, self.clamp()) {
                Ok(child) => {
                    st.pending = Some(Pending {
                        new,
                        key: st.key.clone(),
                        created_by: created_by.to_string(),
                        child,
                    });
                    return Ok(());
                }
                Err(e) => tracing::debug!("digesting a layer in this process: {e}"),
            }
        }
        let (tmp, layer) = self.digest_now(new)?;
        self.history(st, created_by, false);
        let id = self.register(st, vec![layer])?;
        drop(tmp);
        self.adopt(st, id)
    }

    /// Register the pending layer step, if any, once its digest is in.
    pub(super) fn settle(&mut self, st: &mut StageState) -> Result<()> {
        let Some(p) = st.pending.take() else {
            return Ok(());
        };
        let digest = p.child.wait()?;
        let layer = self
            .engine
            .store()
            .build_layer(p.new.layer, digest, self.clamp())?;
        let layer_known = layer.unpacked.is_none();
        let key = std::mem::replace(&mut st.key, p.key);
        self.history(st, &p.created_by, false);
        let id = self.register(st, vec![layer]);
        st.key = key;
        if layer_known {
            // The store had this layer: the copy made here goes, in the
            // background (a large tree).
            p.new.tmp.remove_in_background();
        }
        self.adopt(st, id?)
    }
}
