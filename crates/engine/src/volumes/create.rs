//! `volume create`.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::error::{EngineError, Result};

use super::{bad, check_driver_options, valid_volume_name, VolumeRecord};

/// A new volume record.
pub fn new_record(
    name: &str,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
    anonymous: bool,
) -> VolumeRecord {
    VolumeRecord {
        name: name.to_string(),
        driver: "local".to_string(),
        created: Utc::now(),
        labels,
        options,
        anonymous,
    }
}

impl crate::Engine {
    /// `volume create`: a new volume, or the existing one of that name
    /// when its options are the same (Docker's behaviour).
    pub fn volume_create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeRecord> {
        // As dockerd: a volume created without a name is anonymous (volume
        // prune takes it without --all).
        let anonymous = name.is_none();
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| model::ContainerId::random().as_str().to_string());
        if let Some(d) = driver.filter(|d| *d != "local") {
            // dockerd's words (berth has the local driver only).
            return Err(EngineError::Refused(format!(
                "create {name}: error looking up volume plugin {d}: plugin \"{d}\" not found"
            )));
        }
        check_driver_options(&options)?;
        if !anonymous && !valid_volume_name(&name) {
            return Err(bad(
                "volume name",
                format!("{name:?} includes invalid characters for a local volume name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ));
        }
        let rec = new_record(&name, labels, options, anonymous);
        let made = self.store().create_volumes(std::slice::from_ref(&rec))?;
        if made.first() == Some(&true) {
            self.emit("volume", "create", &rec.name, &[("driver", "local")]);
            return Ok(rec);
        }
        let existing = self.store().volume(&name)?;
        if existing.options != rec.options {
            return Err(EngineError::Store(store::StoreError::Conflict(format!(
                "a volume named {name} already exists with other options: remove it first (berth volume rm {name}) or pick another name"
            ))));
        }
        Ok(existing)
    }
}
