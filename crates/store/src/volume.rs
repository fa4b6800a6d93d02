//! Named volumes: a row each, data in `volumes/<name>/_data` (Docker's
//! layout). A volume is created and removed inside a write transaction
//! that also sees the containers using it, so `volume rm` never removes a
//! volume a concurrent `create` just took.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Unique name (64 hex digits for an anonymous volume).
    pub name: String,
    /// `local`.
    pub driver: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o` driver options (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image `VOLUME`): removed
    /// with it by `rm -v` / `--rm`, and by a plain `volume prune`.
    #[serde(default)]
    pub anonymous: bool,
}

const HINT: &str = ": list volumes with berth volume ls";

/// The containers (ids) whose config mounts the volume `name`. The
/// engine's container config keeps mounts at `$.mounts[*]` with
/// `type` and `source`.
fn users_in(conn: &rusqlite::Connection, name: &str) -> Result<Vec<String>, StoreError> {
    let mut st = conn.prepare(
        "SELECT DISTINCT containers.id FROM containers, json_each(containers.config, '$.mounts') AS m
         WHERE json_extract(m.value, '$.type') = 'volume' AND json_extract(m.value, '$.source') = ?1",
    )?;
    let rows = st.query_map([name], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn get_in(conn: &rusqlite::Connection, name: &str) -> Result<Option<VolumeRecord>, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT config FROM volumes WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::corrupt("volume record", e.to_string()))
    })
    .transpose()
}

impl Store {
    /// The volume's dir (`_data` below it holds the content).
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.root().join("volumes").join(name)
    }

    /// Where the volume's content lives (and what is bind-mounted).
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// Create the volumes in `recs` that do not exist yet, in one
    /// transaction; returns for each whether it was created now. An
    /// existing volume is kept as it is (Docker's `volume create` of an
    /// existing name succeeds, and `-v name:/p` takes the existing one).
    pub fn create_volumes(&self, recs: &[VolumeRecord]) -> Result<Vec<bool>, StoreError> {
        let tx = self.write_tx()?;
        let made = self.insert_volumes(&tx, recs)?;
        tx.commit()?;
        Ok(made)
    }

    /// Insert the volumes of `recs` that do not exist yet (inside the
    /// caller's transaction) and make their dirs.
    pub(crate) fn insert_volumes(
        &self,
        tx: &rusqlite::Transaction<'_>,
        recs: &[VolumeRecord],
    ) -> Result<Vec<bool>, StoreError> {
        let mut made = Vec::new();
        let mut dirs = Vec::new();
        for rec in recs {
            if get_in(tx, &rec.name)?.is_some() {
                made.push(false);
                continue;
            }
            tx.execute(
                "INSERT INTO volumes (name, config) VALUES (?1, ?2)",
                params![rec.name, serde_json::to_string(rec).unwrap_or_default()],
            )?;
            let data = self.volume_data(&rec.name);
            match std::fs::create_dir_all(&data) {
                Ok(()) => dirs.push(self.volume_dir(&rec.name)),
                Err(e) => {
                    for d in dirs {
                        let _ = std::fs::remove_dir_all(d);
                    }
                    return Err(StoreError::io(&data)(e));
                }
            }
            made.push(true);
        }
        Ok(made)
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        let mut st = self
            .conn()
            .prepare("SELECT config FROM volumes ORDER BY name")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(
                serde_json::from_str(&r?)
                    .map_err(|e| StoreError::corrupt("volume record", e.to_string()))?,
            );
        }
        Ok(out)
    }

    /// A volume by its exact name.
    pub fn volume(&self, name: &str) -> Result<VolumeRecord, StoreError> {
        get_in(self.conn(), name)?.ok_or_else(|| StoreError::NotFound {
            kind: "volume",
            what: name.to_string(),
            hint: HINT,
        })
    }

    /// The containers (ids) that mount the volume.
    pub fn volume_users(&self, name: &str) -> Result<Vec<String>, StoreError> {
        users_in(self.conn(), name)
    }

    /// Every volume name mounted by some container.
    pub fn volumes_in_use(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut st = self.conn().prepare(
            "SELECT DISTINCT json_extract(m.value, '$.source') FROM containers, json_each(containers.config, '$.mounts') AS m
             WHERE json_extract(m.value, '$.type') = 'volume'",
        )?;
        let rows = st.query_map([], |r| r.get::<_, Option<String>>(0))?;
        let mut out = std::collections::BTreeSet::new();
        for r in rows {
            if let Some(n) = r? {
                out.insert(n);
            }
        }
        Ok(out)
    }

    /// Remove a volume no container mounts. `release` runs inside the
    /// transaction once the volume is known to be unused (to unmount a
    /// device the volume had mounted); the dir is moved under `tmp/` before
    /// the commit and deleted after it.
    pub fn remove_volume(
        &self,
        name: &str,
        release: impl FnOnce(&VolumeRecord, &Path) -> Result<(), StoreError>,
    ) -> Result<VolumeRecord, StoreError> {
        let tx = self.write_tx()?;
        let rec = get_in(&tx, name)?.ok_or_else(|| StoreError::NotFound {
            kind: "volume",
            what: name.to_string(),
            hint: HINT,
        })?;
        let users = users_in(&tx, name)?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "remove {name}: volume is in use - [{}]: remove those containers first (berth rm)",
                users
                    .iter()
                    .map(|u| &u[..12.min(u.len())])
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let dir = self.volume_dir(name);
        release(&rec, &dir.join("_data"))?;
        tx.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        let trash = self.tmp_dir("volrm")?;
        let moved = trash.path().join("v");
        let renamed = match std::fs::rename(&dir, &moved) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(StoreError::io(&dir)(e)),
        };
        if let Err(e) = tx.commit() {
            if renamed {
                let _ = std::fs::rename(&moved, &dir);
            }
            return Err(e.into());
        }
        drop(trash);
        Ok(rec)
    }
}
