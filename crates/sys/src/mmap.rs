//! Read-only file mappings: blob uploads hand the registry a mapping
//! instead of copying the file through small buffers.
use std::fs::File;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// A whole file mapped read-only and private.
///
/// Only map files that nobody truncates while mapped (the store's blobs
/// are written once, renamed into place and only ever unlinked, which
/// keeps a mapping valid): reading a truncated page raises SIGBUS.
pub struct MappedFile {
    ptr: Option<NonNull<libc::c_void>>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; reading
// it from several threads is reading immutable memory.
unsafe impl Send for MappedFile {}
// SAFETY: as above, shared access is read-only.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Map `file` (its current length).
    pub fn map(file: &File) -> std::io::Result<MappedFile> {
        let len = file.metadata()?.len() as usize;
        let Some(nz) = NonZeroUsize::new(len) else {
            return Ok(MappedFile { ptr: None, len: 0 });
        };
        // SAFETY: a fresh read-only private mapping of a file we hold
        // open; no other memory is aliased, and the caller guarantees the
        // file is not truncated while mapped (see the type's docs).
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                nz,
                nix::sys::mman::ProtFlags::PROT_READ,
                nix::sys::mman::MapFlags::MAP_PRIVATE,
                file,
                0,
            )
        }?;
        Ok(MappedFile {
            ptr: Some(ptr),
            len,
        })
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: `ptr` maps `len` readable bytes for as long as self
            // lives (unmapped only in Drop).
            Some(p) => unsafe { std::slice::from_raw_parts(p.as_ptr().cast::<u8>(), self.len) },
            None => &[],
        }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: the mapping was made by `map` with this length and
            // no slice of it outlives self.
            let _ = unsafe { nix::sys::mman::munmap(p, self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_contents_and_empty_files() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello blob").unwrap();
        let m = MappedFile::map(&f).unwrap();
        assert_eq!(m.as_ref(), b"hello blob");
        let e = tempfile::tempfile().unwrap();
        assert!(MappedFile::map(&e).unwrap().as_ref().is_empty());
    }
}
