//! Files of one unpacked layer, read through the layer directory only.
//!
//! An image is hostile input: its symlinks may point anywhere on the host
//! (`/etc/shadow`, `../../..`). Nothing here follows a symlink: every
//! component of a path must be a real directory of the layer, the last one
//! a regular file opened with `O_NOFOLLOW`, and sizes are checked before
//! anything is read. Symlinks inside the image are resolved by
//! [`crate::image`] over the layers, as paths of the image, never as host
//! paths.
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a path is in one layer, looked at without following symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Not in this layer (or under something that is not a directory).
    Missing,
    /// An overlay whiteout (a 0/0 character device): deleted by this layer.
    Whiteout,
    /// A regular file of this size.
    File(u64),
    /// A directory.
    Dir,
    /// A symlink with this target.
    Symlink(PathBuf),
    /// Anything else (device, fifo, socket).
    Other,
}

/// One layer directory.
#[derive(Debug, Clone)]
pub struct LayerDir {
    root: PathBuf,
}

impl LayerDir {
    /// The layer unpacked at `root`.
    pub fn new(root: impl Into<PathBuf>) -> LayerDir {
        LayerDir { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of image path `rel` if every component before the
    /// last is a real directory of this layer (no symlink), else `None`.
    fn host_path(&self, rel: &str) -> Option<PathBuf> {
        let comps: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if comps.is_empty() || comps.contains(&"..") {
            return None;
        }
        let mut p = self.root.clone();
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            if i + 1 < comps.len() {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_dir() => {}
                    _ => return None,
                }
            }
        }
        Some(p)
    }

    /// What `rel` (an image path, leading `/` optional) is in this layer.
    pub fn lookup(&self, rel: &str) -> Entry {
        let Some(p) = self.host_path(rel) else {
            return Entry::Missing;
        };
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            return Entry::Missing;
        };
        let t = m.file_type();
        if t.is_file() {
            Entry::File(m.len())
        } else if t.is_dir() {
            Entry::Dir
        } else if t.is_symlink() {
            std::fs::read_link(&p)
                .map(Entry::Symlink)
                .unwrap_or(Entry::Other)
        } else if t.is_char_device() && std::os::unix::fs::MetadataExt::rdev(&m) == 0 {
            Entry::Whiteout
        } else {
            Entry::Other
        }
    }

    /// Open the regular file `rel` without following any symlink.
    /// `Ok(None)`: not a regular file of this layer.
    pub fn open(&self, rel: &str) -> std::io::Result<Option<(File, u64)>> {
        let Some(p) = self.host_path(rel) else {
            return Ok(None);
        };
        open_regular(&p)
    }

    /// The regular file `rel`, if it is one and at most `limit` bytes.
    /// `Err` is a note for the SBOM (too big, unreadable).
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let Some(p) = self.host_path(rel) else {
            return Ok(None);
        };
        read_regular(&p, rel, limit)
    }
}

/// Open `p` if it is a regular file, never following a symlink at its end.
pub fn open_regular(p: &Path) -> std::io::Result<Option<(File, u64)>> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Ok(None);
    }
    Ok(Some((f, m.len())))
}

/// Read the regular file `p` (shown as `shown`) if at most `limit` bytes.
pub fn read_regular(p: &Path, shown: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
    let (f, len) = match open_regular(p) {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{shown}: cannot read it: {e}")),
    };
    if len > limit {
        return Err(format!(
            "{shown}: skipped: {len} bytes, more than the {limit} bytes read of such a file"
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{shown}: cannot read it: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(format!(
            "{shown}: skipped: it grew past the {limit} bytes read of such a file"
        ));
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("host");
        std::fs::create_dir_all(host.join("dir")).unwrap();
        std::fs::write(host.join("secret"), "host secret").unwrap();
        std::fs::write(host.join("dir/file"), "host file").unwrap();
        let layer = d.path().join("layer");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::os::unix::fs::symlink(host.join("secret"), layer.join("etc/status")).unwrap();
        std::os::unix::fs::symlink(host.join("dir"), layer.join("var")).unwrap();
        std::fs::write(layer.join("etc/real"), "in the layer").unwrap();
        let l = LayerDir::new(&layer);
        assert_eq!(l.read("etc/status", 100), Ok(None));
        assert_eq!(l.read("/var/file", 100), Ok(None));
        assert_eq!(l.read("etc/../../host/secret", 100), Ok(None));
        assert_eq!(l.read("/etc/real", 100), Ok(Some(b"in the layer".to_vec())));
        assert_eq!(l.lookup("etc/status"), Entry::Symlink(host.join("secret")));
        assert_eq!(l.lookup("var/file"), Entry::Missing);
        assert!(l.read("etc/real", 4).unwrap_err().contains("skipped"));
    }
}
