//! An entry's metadata: owner, mode and times from its header and PAX
//! records, and the extended attributes a layer may set (PAX
//! `SCHILY.xattr.*` records, as Docker and Go's archive/tar write them).
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::{invalid_at, io_at, read_err, shown, tree, LayerError};

/// An entry's metadata, from its header and PAX records.
pub(super) struct Meta {
    pub uid: Uid,
    pub gid: Gid,
    pub mode: Mode,
    pub atime: TimeSpec,
    pub mtime: TimeSpec,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// A `BERTH.data` record: the file's data comes from the caller's
    /// [`super::DataSource`], not from the stream.
    pub data_ref: Option<Vec<u8>>,
}

impl Meta {
    pub fn read<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, LayerError> {
        let h = entry.header();
        // The tar crate has already applied PAX uid/gid records. An empty
        // numeric field reads as an error there and as 0 in Go's
        // archive/tar, which wrote most layers: 0 here too.
        let id = |v: io::Result<u64>| -> Result<u32, LayerError> {
            u32::try_from(v.unwrap_or(0))
                .map_err(|_| invalid_at(raw, "its uid or gid is not a 32-bit number"))
        };
        let uid = Uid::from_raw(id(h.uid())?);
        let gid = Gid::from_raw(id(h.gid())?);
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0) & 0o7777);
        let secs = h.mtime().unwrap_or(0);
        let mut mtime = TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0);
        let mut atime = None;
        let mut xattrs = Vec::new();
        let mut data_ref = None;
        if let Some(exts) = entry.pax_extensions().map_err(read_err)? {
            for ext in exts {
                let ext = ext.map_err(read_err)?;
                let Ok(key) = ext.key() else { continue };
                match key {
                    "mtime" => mtime = pax_time(ext.value_bytes()).unwrap_or(mtime),
                    "atime" => atime = pax_time(ext.value_bytes()),
                    super::DATA_REF => data_ref = Some(ext.value_bytes().to_vec()),
                    _ => {
                        if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                            if xattr_allowed(attr) {
                                xattrs.push((attr.to_string(), ext.value_bytes().to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(Meta {
            uid,
            gid,
            mode,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs,
            data_ref,
        })
    }
}

/// A PAX time record: decimal seconds with an optional fraction, possibly
/// negative.
fn pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let frac = &frac[..frac.len().min(9)];
    let nanos: i64 = format!("{frac:0<9}").parse().ok()?;
    Some(match (negative, nanos) {
        (false, n) => TimeSpec::new(secs, n),
        (true, 0) => TimeSpec::new(-secs, 0),
        (true, n) => TimeSpec::new(-secs - 1, 1_000_000_000 - n),
    })
}

/// Extended attributes a layer may set. Overlay's own (`trusted.overlay.*`,
/// and `user.overlay.*` of a `userxattr` mount) would change what the
/// overlay shows, so a layer may not set them; SELinux labels come from the
/// mount; other `security.*` and `system.*` names are not content.
fn xattr_allowed(name: &str) -> bool {
    if let Some(rest) = name
        .strip_prefix("user.")
        .or_else(|| name.strip_prefix("trusted."))
    {
        !rest.starts_with("overlay.") && !rest.is_empty()
    } else {
        matches!(
            name,
            "security.capability" | "system.posix_acl_access" | "system.posix_acl_default"
        )
    }
}

/// Whether a failed xattr write is one to ignore, as Docker does: the
/// filesystem has no xattrs, or does not allow this one on this file type.
fn xattr_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::ENOTSUP) | Some(Errno::EPERM)
    )
}

/// Where to write an entry's xattrs.
pub(super) enum XattrTarget<'a> {
    /// An open regular file or directory.
    Open(&'a File),
    /// A symlink, fifo or device node by name in its parent.
    At(BorrowedFd<'a>, &'a OsStr),
}

pub(super) fn set_xattrs(
    raw: &[u8],
    target: XattrTarget<'_>,
    xattrs: &[(String, Vec<u8>)],
) -> Result<(), LayerError> {
    for (key, value) in xattrs {
        let r = match &target {
            XattrTarget::Open(f) => xattr::FileExt::set_xattr(*f, key, value),
            XattrTarget::At(dir, name) => tree::set_xattr_at(*dir, name, key, value),
        };
        match r {
            Ok(()) => {}
            Err(e) if xattr_unsupported(&e) => {
                tracing::debug!(entry = %shown(raw), xattr = %key, error = %e, "xattr not set");
            }
            Err(e) => return Err(io_at(raw)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = |s: &str| pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
        assert_eq!(t("1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(t("1700000000.5"), Some((1_700_000_000, 500_000_000)));
        assert_eq!(t("1.1234567891"), Some((1, 123_456_789)));
        assert_eq!(t("-1.5"), Some((-2, 500_000_000)));
        assert_eq!(t("-3"), Some((-3, 0)));
        for bad in ["", ".5", "1e3", "1.-5", "x"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn xattr_names() {
        for ok in [
            "user.mime_type",
            "security.capability",
            "trusted.md5",
            "system.posix_acl_access",
        ] {
            assert!(xattr_allowed(ok), "{ok}");
        }
        for bad in [
            "trusted.overlay.opaque",
            "trusted.overlay.redirect",
            "user.overlay.opaque",
            "security.selinux",
            "security.ima",
            "system.nfs4_acl",
            "user.",
            "bogus",
        ] {
            assert!(!xattr_allowed(bad), "{bad}");
        }
    }
}
