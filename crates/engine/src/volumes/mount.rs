//! Mounting volumes made with driver options, and the mounts a container
//! gets: OCI and `inspect` entries, sources resolved at start.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::{MountSpec, MountType};
use crate::error::{EngineError, Result};

use super::{bad, chown, new_record, VolumeRecord};

/// Is `path` a mount point (in this process's mount namespace)?
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|mp| unescape_mountinfo(mp) == want)
    })
}

pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount a volume made with driver options (`type=tmpfs`, `o=bind`...)
/// on its `_data` dir, unless it is mounted already. It stays mounted
/// (shared by the containers using it) until the volume is removed or the
/// host reboots.
pub fn ensure_mounted(rec: &VolumeRecord, data: &Path) -> Result<()> {
    let (Some(fstype), Some(device)) = (rec.options.get("type"), rec.options.get("device")) else {
        return Ok(());
    };
    if is_mount_point(data) {
        return Ok(());
    }
    std::fs::create_dir_all(data)
        .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
    let opts: Vec<String> = rec
        .options
        .get("o")
        .map(|o| o.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let (flags, _, data_opts, bind) = runtime::plan::parse_mount_options(&opts);
    let what = format!(
        "mounting volume {} ({fstype} {device}) on {}",
        rec.name,
        data.display()
    );
    let mount = |src: Option<&str>, fstype: Option<&str>, flags, d: Option<&str>| {
        nix::mount::mount(src, data, fstype, flags, d).map_err(|e| EngineError::io(&what, e))
    };
    if bind || fstype == "none" && opts.iter().any(|o| o == "bind" || o == "rbind") {
        if !Path::new(device).is_dir() {
            return Err(EngineError::invalid(
                "volume",
                format!("volume {}: device {device} is not a directory", rec.name),
            ));
        }
        let rec_flag = flags & nix::mount::MsFlags::MS_REC;
        mount(
            Some(device),
            None,
            nix::mount::MsFlags::MS_BIND | rec_flag,
            None,
        )?;
        let rest = flags - rec_flag;
        if !rest.is_empty() {
            mount(
                None,
                None,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REMOUNT | rest,
                None,
            )?;
        }
        return Ok(());
    }
    mount(
        Some(device),
        Some(fstype),
        flags,
        (!data_opts.is_empty()).then_some(data_opts.as_str()),
    )
}

/// Unmount what [`ensure_mounted`] mounted. An error if it stays mounted:
/// the volume's dir is deleted next, and must never take a bound host
/// directory's content with it.
pub fn release_mount(data: &Path) -> std::result::Result<(), store::StoreError> {
    if is_mount_point(data) {
        nix::mount::umount2(data, nix::mount::MntFlags::MNT_DETACH).map_err(|e| {
            store::StoreError::Conflict(format!(
                "cannot unmount {}: {e}; the volume is kept",
                data.display()
            ))
        })?;
        if is_mount_point(data) {
            return Err(store::StoreError::Conflict(format!(
                "{} is still mounted; the volume is kept",
                data.display()
            )));
        }
    }
    Ok(())
}

/// The OCI mount for one of a container's mounts, its source resolved.
pub fn oci_mount(m: &MountSpec, source: &Path) -> Value {
    match m.kind {
        MountType::Tmpfs => {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            if m.readonly {
                opts.push("ro".into());
            }
            if let Some(s) = m.tmpfs_size {
                opts.push(format!("size={s}"));
            }
            if let Some(mode) = m.tmpfs_mode {
                opts.push(format!("mode={mode:o}"));
            }
            json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        }
        _ => {
            let mut opts = vec![
                "rbind".to_string(),
                if m.propagation.is_empty() {
                    "rprivate".to_string()
                } else {
                    m.propagation.clone()
                },
            ];
            if m.readonly {
                opts.push("ro".into());
            }
            json!({"destination": m.target, "type": "bind", "source": source, "options": opts})
        }
    }
}

/// Docker's `Mounts` entry of `docker inspect` for one mount.
pub fn inspect_mount(m: &MountSpec, source: &Path) -> Value {
    // As Docker shows it: the -v options as given ("z" for a -v volume
    // without any), nothing for --mount.
    let mode = match m.bind_spec.splitn(3, ':').nth(2) {
        Some(o) => o.to_string(),
        None if !m.bind_spec.is_empty() && m.kind == MountType::Volume => "z".to_string(),
        None => String::new(),
    };
    let mut v = json!({
        "Type": m.kind.as_str(),
        "Source": if m.kind == MountType::Tmpfs { String::new() } else { source.display().to_string() },
        "Destination": m.target,
        "Mode": mode,
        "RW": !m.readonly,
        "Propagation": if m.kind == MountType::Bind { if m.propagation.is_empty() { "rprivate".to_string() } else { m.propagation.clone() } } else { String::new() },
    });
    if m.kind == MountType::Volume {
        v["Name"] = json!(m.source);
        v["Driver"] = json!("local");
    }
    v
}

impl crate::Engine {
    /// A volume's `_data`, mounted if it has driver options.
    pub fn volume_path(&self, rec: &VolumeRecord) -> Result<PathBuf> {
        let data = self.store().volume_data(&rec.name);
        ensure_mounted(rec, &data)?;
        if !data.exists() {
            std::fs::create_dir_all(&data)
                .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
        }
        Ok(data)
    }

    /// The host path behind a mount at start time: volumes exist (and
    /// are mounted), `:U` ones chowned to `uid:gid`, bind sources exist.
    pub(crate) fn mount_source(&self, m: &MountSpec, uid: u32, gid: u32) -> Result<PathBuf> {
        match m.kind {
            MountType::Tmpfs => Ok(PathBuf::new()),
            MountType::Bind => {
                let p = PathBuf::from(&m.source);
                if std::fs::symlink_metadata(&p).is_err() {
                    return Err(bad(
                        "--mount",
                        format!("bind source path does not exist: {}", p.display()),
                    ));
                }
                if m.chown {
                    chown(&p, uid, gid)?;
                }
                Ok(p)
            }
            MountType::Volume => {
                let rec = match self.store().volume(&m.source) {
                    Ok(r) => r,
                    Err(store::StoreError::NotFound { .. }) => {
                        // Gone behind our back (a reset store): made again empty.
                        let r =
                            new_record(&m.source, BTreeMap::new(), BTreeMap::new(), m.anonymous);
                        self.store().create_volumes(std::slice::from_ref(&r))?;
                        r
                    }
                    Err(e) => return Err(e.into()),
                };
                let data = self.volume_path(&rec)?;
                if !m.subpath.is_empty() {
                    return subpath_source(&data, &m.source, &m.subpath);
                }
                if m.chown {
                    chown(&data, uid, gid)?;
                }
                Ok(data)
            }
        }
    }
}

/// `volume-subpath`: `sub` inside the volume's `data` dir, resolved as if
/// `data` were the root (a symlink in the volume, which a container may
/// have made, cannot lead out of it), as the host path it is now.
fn subpath_source(data: &Path, volume: &str, sub: &str) -> Result<PathBuf> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let root = std::fs::File::open(data)
        .map_err(|e| EngineError::io(format!("opening volume {volume}"), e))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), sub, how).map_err(|e| {
        bad(
            "--mount",
            format!(
                "volume-subpath {sub:?} of volume {volume}: {}",
                std::io::Error::from(e)
            ),
        )
    })?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| EngineError::io("resolving the volume subpath", e))?;
    let data = std::fs::canonicalize(data)
        .map_err(|e| EngineError::io(format!("opening volume {volume}"), e))?;
    if !real.starts_with(&data) {
        return Err(bad(
            "--mount",
            format!("volume-subpath {sub:?} of volume {volume} leads out of the volume"),
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
