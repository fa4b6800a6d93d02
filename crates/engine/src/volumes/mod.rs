//! Volumes and mounts: `-v`/`--mount` parsing with Docker's rules, named
//! and anonymous volumes (`volume create|ls|inspect|rm|prune|export|
//! import`), filling an empty volume from the image (copy-up), `:U`, and
//! the OCI mounts a container gets at start.
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{EngineError, Result};

mod create;
mod export;
mod fill;
mod list;
mod mount;
mod parse;
mod plan;
mod remove;

/// A volume as the store keeps it.
pub use store::VolumeRecord;

pub use create::new_record;
pub(crate) use mount::unescape_mountinfo;
pub use mount::{ensure_mounted, inspect_mount, oci_mount, release_mount};
pub use parse::{check_driver_options, parse_mount_flag, parse_volume_flag, NewVolume};
pub(crate) use remove::remove_anonymous;
pub use remove::VolumePrune;

/// A volume name as Docker allows it.
pub fn valid_volume_name(name: &str) -> bool {
    model::id::valid_container_name(name)
}

fn bad(flag: &str, why: impl Into<String>) -> EngineError {
    EngineError::invalid(flag, why.into())
}

/// Docker's `docker volume inspect` JSON.
pub fn inspect_volume(rec: &VolumeRecord, mountpoint: &Path) -> Value {
    // `volume create` gives `{}` for both (recorded from dockerd 20.10).
    let options = json!(rec.options);
    let mut labels = json!(rec.labels);
    if rec.anonymous {
        let mut l = rec.labels.clone();
        l.insert("com.docker.volume.anonymous".into(), String::new());
        labels = json!(l);
    }
    json!({
        "CreatedAt": rec.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Driver": rec.driver,
        "Labels": labels,
        "Mountpoint": mountpoint,
        "Name": rec.name,
        "Options": options,
        "Scope": "local",
    })
}

impl crate::Engine {
    /// Bytes a volume's content takes on disk.
    pub fn volume_size(&self, rec: &VolumeRecord) -> u64 {
        match store::fsops::open_dir(&self.store().volume_data(&rec.name)) {
            Ok(fd) => store::fsops::disk_usage(fd.as_fd()),
            Err(_) => 0,
        }
    }
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let fd = store::fsops::open_dir(p)
        .map_err(|e| EngineError::io(format!("opening {}", p.display()), e))?;
    store::fsops::chown_tree(fd.as_fd(), uid, gid)
        .map_err(|e| EngineError::io(format!("chowning {} (:U)", p.display()), e))
}

impl crate::Engine {
    /// A volume by name.
    pub fn volume(&self, name: &str) -> Result<VolumeRecord> {
        Ok(self.store().volume(name)?)
    }
}
