//! The infra container's image, `localhost/berth-pause:<version>-<hash>`:
//! one static binary, `/pause` (`crates/engine/pause/pause.c`, built by
//! build.rs), made on first use from the copy compiled into berth, as
//! podman builds its `localhost/podman-pause` image from catatonit. The tag
//! carries a hash of the binary, so a berth with another pause makes its
//! own image and containers of the old one keep theirs.
use sha2::Digest as _;

use crate::error::{EngineError, Result};
use crate::Engine;

/// The pause binary.
const PAUSE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// The image reference of this berth's pause.
pub fn reference() -> String {
    let hash = hex::encode(sha2::Sha256::digest(PAUSE));
    format!(
        "localhost/berth-pause:{}-{}",
        env!("CARGO_PKG_VERSION"),
        &hash[..12]
    )
}

/// The root filesystem: `/pause`, and the directories and files a
/// container's start mounts over.
fn rootfs_tar() -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let now = 0;
    for dir in ["dev", "etc", "proc", "sys"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(now);
        h.set_size(0);
        b.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    }
    for file in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(now);
        h.set_size(0);
        b.append_data(&mut h, file, std::io::empty())?;
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_mtime(now);
    h.set_size(PAUSE.len() as u64);
    b.append_data(&mut h, "pause", PAUSE)?;
    b.into_inner()
}

impl Engine {
    /// The pause image, made now if this store lacks it.
    pub(crate) fn pause_image(&self) -> Result<String> {
        let name = reference();
        if self.store().resolve_image(&name).is_ok() {
            return Ok(name);
        }
        let tar = rootfs_tar().map_err(|e| EngineError::io("writing the pause image", e))?;
        let opts = store::ImportOptions {
            reference: Some(
                name.parse()
                    .map_err(|e| EngineError::invalid("pause image", format!("{e}")))?,
            ),
            changes: vec![store::parse_change(r#"CMD ["/pause"]"#)?],
            message: Some("berth's pod infra process".into()),
            platform: None,
        };
        self.import_image(std::io::Cursor::new(tar), &opts)?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pause_binary_is_static_elf() {
        let b = super::PAUSE;
        assert_eq!(&b[..4], b"\x7fELF");
        assert_eq!(b[4], 2, "64-bit");
        // No program interpreter (PT_INTERP): it runs in an empty root
        // filesystem, without a dynamic loader or libraries.
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
        let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
        let (phentsize, phnum) = (u16_at(54), u16_at(56));
        for i in 0..phnum {
            let o = phoff + i * phentsize;
            let kind = u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
            assert_ne!(kind, 3, "the pause binary has an interpreter");
        }
        assert!(super::reference().starts_with("localhost/berth-pause:"));
    }
}
