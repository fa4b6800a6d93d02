//! The build context: from stdin, a directory or a git repository, its
//! Dockerfile, and the stat cache of its files.

use std::path::PathBuf;

use dockerfile::Dockerfile;
use sha2::{Digest as _, Sha256};

use crate::error::{EngineError, Result};
use crate::Engine;

use super::{copy, invalid, steps, BuildRequest, Builder};

/// `build -`: stdin is a context tar (plain, gzip or zstd) or a
/// Dockerfile alone. Makes the context in `dir` (an empty directory).
pub fn context_from_stdin(input: &[u8], dir: &std::path::Path) -> Result<()> {
    let is_tar = input.starts_with(&[0x1f, 0x8b])
        || input.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (input.len() >= 262 && &input[257..262] == b"ustar");
    if !is_tar {
        return std::fs::write(dir.join("Dockerfile"), input)
            .map_err(|e| EngineError::io("writing the Dockerfile from stdin", e));
    }
    let limits = store::layer::Limits::default();
    let reader = store::layer::decompress_bounded(input, limits, Some(input.len() as u64))
        .map_err(|e| invalid("build context", format!("stdin: {e}")))?;
    let mut a = tar::Archive::new(Padded {
        inner: reader,
        read: 0,
        tail: None,
    });
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    // unpack_in refuses paths that leave `dir` (`..`, through symlinks).
    for e in a
        .entries()
        .map_err(|e| invalid("build context", format!("stdin: {e}")))?
    {
        let mut e = e.map_err(|e| invalid("build context", format!("stdin: {e}")))?;
        e.unpack_in(dir)
            .map_err(|e| invalid("build context", format!("stdin: {e}")))?;
    }
    Ok(())
}

/// A tar stream that may end early: the docker CLI (20.10, `-f` outside
/// the context) sends a context whose last entry is not padded and has no
/// end-of-archive blocks, which dockerd reads. At its end this reader
/// pads to the 512-byte block and adds the two zero blocks.
struct Padded<R> {
    inner: R,
    read: u64,
    /// Zero bytes still to give once `inner` has ended.
    tail: Option<u64>,
}

impl<R: std::io::Read> std::io::Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.tail = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.tail.unwrap_or(0);
        let n = (left.min(buf.len() as u64)) as usize;
        buf[..n].fill(0);
        self.tail = Some(left - n as u64);
        Ok(n)
    }
}

/// The context directory (canonical), the Dockerfile's path and the
/// parsed Dockerfile of a request.
pub(super) fn load_dockerfile(req: &BuildRequest) -> Result<(PathBuf, PathBuf, Dockerfile)> {
    let context = req
        .context
        .canonicalize()
        .map_err(|e| invalid("build context", format!("{}: {e}", req.context.display())))?;
    if !context.is_dir() {
        return Err(invalid(
            "build context",
            format!("{} is not a directory", context.display()),
        ));
    }
    let df_path = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let text = std::fs::read_to_string(&df_path)
        .map_err(|e| invalid("Dockerfile", format!("{}: {e}", df_path.display())))?;
    let df = dockerfile::parse(&text)
        .map_err(|e| invalid("Dockerfile", e.in_file(&df_path.display().to_string())))?;
    Ok((context, df_path, df))
}

impl Builder<'_> {
    fn stat_cache_path(&self) -> PathBuf {
        Self::path_for(self.engine, &self.req.context)
    }

    /// The context's stat cache.
    pub(crate) fn stat_cache(&mut self) -> &mut copy::StatCache {
        self.stat_cache.get_or_insert_with(|| {
            copy::StatCache::load(&Self::path_for(self.engine, &self.req.context))
        })
    }

    fn path_for(engine: &Engine, context: &std::path::Path) -> PathBuf {
        let id = hex::encode(Sha256::digest(context.as_os_str().as_encoded_bytes()));
        engine
            .paths()
            .root
            .join("cache")
            .join("context")
            .join(format!("{id}.json"))
    }

    pub(super) fn save_stat_cache(&mut self) {
        // A context unpacked from stdin lives in a temp dir: nothing to keep.
        if self
            .req
            .context
            .starts_with(self.engine.paths().root.join("tmp"))
        {
            return;
        }
        let path = self.stat_cache_path();
        if let Some(c) = self.stat_cache.as_mut() {
            c.save(&path);
        }
    }
}

/// A git repository as a build context (`URL[#ref[:dir]]`, as `docker
/// build`): cloned and checked out in a work dir; the context is `dir` of
/// the checkout, without `.git`. Returns the work dir (removed on drop)
/// and the context.
pub fn git_context(engine: &Engine, url: &str) -> Result<(store::TmpDir, PathBuf)> {
    let (tmp, checkout, _) = steps::git_checkout(&engine.store(), url, "build context")?;
    let _ = std::fs::remove_dir_all(checkout.join(".git"));
    let sub = url
        .split_once('#')
        .and_then(|(_, f)| f.split_once(':'))
        .map(|(_, d)| d.trim_matches('/'))
        .unwrap_or("");
    if sub.split('/').any(|c| c == "..") {
        return Err(invalid(
            "build context",
            format!("{url}: the subdirectory {sub:?} leaves the repository"),
        ));
    }
    let dir = if sub.is_empty() {
        checkout
    } else {
        checkout.join(sub)
    };
    // A link in the repository must not take the context outside it.
    let real = dir
        .canonicalize()
        .ok()
        .filter(|d| d.starts_with(tmp.path()));
    match real {
        Some(d) if d.is_dir() => Ok((tmp, d)),
        _ => Err(invalid(
            "build context",
            format!("{url}: no directory {sub:?} in the repository"),
        )),
    }
}
