//! Container rows. The engine owns the JSON inside `config` and `state`;
//! the store persists it and keeps names unique.
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use model::{ContainerId, Digest};
use rusqlite::{params, OptionalExtension};

use crate::{Store, StoreError};

/// A stored container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerRecord {
    /// Its id.
    pub id: ContainerId,
    /// Its name (without the leading `/`).
    pub name: String,
    /// The image it was created from.
    pub image_id: Digest,
    /// The image as the user named it.
    pub image_ref: String,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Engine-owned configuration.
    pub config: serde_json::Value,
    /// Engine-owned state.
    pub state: serde_json::Value,
}

const HINT: &str = ": check the name or id with berth ps -a";

fn row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, String, String, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode(
    t: (String, String, String, String, String, String, String),
) -> Result<ContainerRecord, StoreError> {
    let (id, name, image_id, image_ref, created, config, state) = t;
    let text = ContainerText {
        id: &id,
        name: &name,
        image_id: &image_id,
        image_ref: &image_ref,
        created: &created,
        config: &config,
        state: &state,
    };
    let mut rec = text.record_without_documents()?;
    rec.config = serde_json::from_str(&config).map_err(|_| text.bad("config"))?;
    rec.state = serde_json::from_str(&state).map_err(|_| text.bad("state"))?;
    Ok(rec)
}

/// A container row as stored, borrowed from the database while
/// [`Store::visit_containers`] visits it: nothing decoded yet, so a
/// caller that keeps decoded containers can tell which changed.
#[derive(Debug, Clone, Copy)]
pub struct ContainerText<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its image's id.
    pub image_id: &'a str,
    /// The image as the user named it.
    pub image_ref: &'a str,
    /// Creation time (RFC 3339).
    pub created: &'a str,
    /// The engine's configuration document (JSON).
    pub config: &'a str,
    /// The engine's state document (JSON).
    pub state: &'a str,
}

impl ContainerText<'_> {
    fn bad(&self, what: &str) -> StoreError {
        StoreError::corrupt(format!("container {}", self.id), format!("bad {what}"))
    }

    /// The record with `config` and `state` left `Null`: for a caller that
    /// decodes those texts into its own types.
    pub fn record_without_documents(&self) -> Result<ContainerRecord, StoreError> {
        Ok(ContainerRecord {
            id: self.id.parse().map_err(|_| self.bad("id"))?,
            name: self.name.to_string(),
            image_id: self.image_id.parse().map_err(|_| self.bad("image id"))?,
            image_ref: self.image_ref.to_string(),
            created: DateTime::parse_from_rfc3339(self.created)
                .map_err(|_| self.bad("created"))?
                .with_timezone(&Utc),
            config: serde_json::Value::Null,
            state: serde_json::Value::Null,
        })
    }
}

/// [`Store::create_container_with`]'s hook: the new config, every other
/// container's config; an `Err` says why the create cannot be.
pub type Amend<'a> =
    dyn FnMut(&mut serde_json::Value, &[serde_json::Value]) -> Result<(), String> + 'a;

const COLS: &str = "id, name, image_id, image_ref, created, config, state";

impl Store {
    /// A container's dir (`upper`, `work`, its /etc files, logs).
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.root().join("containers").join(id.as_str())
    }

    /// Record a new container: the image must exist and the name be free.
    /// The `volumes` it mounts that do not exist yet are created in the
    /// same transaction. Returns its dir, created with `upper/` and `work/`.
    pub fn create_container(
        &self,
        rec: &ContainerRecord,
        volumes: &[crate::VolumeRecord],
    ) -> Result<PathBuf, StoreError> {
        let mut rec = rec.clone();
        self.create_container_with(&mut rec, volumes, &mut |_, _| Ok(()))
    }

    /// [`Store::create_container`], with `amend` run inside its write
    /// transaction on the new record's config and every other container's
    /// config: what must be unique among containers (a user namespace's
    /// id range) is chosen there, so no concurrent create chooses it too.
    /// An `Err` from `amend` ends the create with [`StoreError::Conflict`].
    pub fn create_container_with(
        &self,
        rec: &mut ContainerRecord,
        volumes: &[crate::VolumeRecord],
        amend: &mut Amend<'_>,
    ) -> Result<PathBuf, StoreError> {
        let tx = self.write_tx()?;
        let image = tx
            .query_row(
                "SELECT 1 FROM images WHERE id = ?1",
                [rec.image_id.to_string()],
                |_| Ok(()),
            )
            .optional()?;
        if image.is_none() {
            return Err(StoreError::NotFound {
                kind: "image",
                what: rec.image_ref.clone(),
                hint: " locally (it was removed meanwhile)",
            });
        }
        let owner: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [&rec.name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(owner) = owner {
            return Err(StoreError::NameInUse {
                name: rec.name.clone(),
                owner,
            });
        }
        let others: Vec<serde_json::Value> = {
            let mut stmt = tx.prepare_cached("SELECT config FROM containers")?;
            let texts: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            texts
                .iter()
                .filter_map(|t| serde_json::from_str(t).ok())
                .collect()
        };
        amend(&mut rec.config, &others).map_err(StoreError::Conflict)?;
        tx.execute(
            &format!("INSERT INTO containers ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                rec.id.as_str(),
                rec.name,
                rec.image_id.to_string(),
                rec.image_ref,
                rec.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                rec.config.to_string(),
                rec.state.to_string(),
            ],
        )?;
        self.insert_volumes(&tx, volumes)?;
        let dir = self.container_dir(&rec.id);
        for sub in ["upper", "work"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(StoreError::io(&p))?;
        }
        tx.commit()?;
        Ok(dir)
    }

    /// Find a container by full id, name (with or without `/`) or unique id prefix.
    pub fn container(&self, s: &str) -> Result<ContainerRecord, StoreError> {
        let name = s.trim_start_matches('/');
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLS} FROM containers WHERE id = ?1 OR name = ?1"
        ))?;
        if let Some(t) = stmt.query_row([name], row).optional()? {
            return decode(t);
        }
        let not_found = || StoreError::NotFound {
            kind: "container",
            what: s.to_string(),
            hint: HINT,
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLS} FROM containers WHERE id LIKE ?1 LIMIT 2"
        ))?;
        let rows: Vec<_> = stmt
            .query_map([format!("{name}%")], row)?
            .collect::<Result<_, _>>()?;
        match rows.len() {
            0 => Err(not_found()),
            1 => decode(rows.into_iter().next().expect("one row")),
            _ => Err(StoreError::Ambiguous {
                kind: "container",
                prefix: s.to_string(),
            }),
        }
    }

    /// Read the schema now (SQLite does at a connection's first
    /// statement) and prepare the container lookup: for a process that
    /// opens the store ahead of its work.
    pub fn warm(&self) -> Result<(), StoreError> {
        self.conn().prepare_cached(&format!(
            "SELECT {COLS} FROM containers WHERE id = ?1 OR name = ?1"
        ))?;
        Ok(())
    }

    /// Every container.
    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {COLS} FROM containers"))?;
        let rows: Vec<_> = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
        rows.into_iter().map(decode).collect()
    }

    /// Visit every container's stored text, undecoded.
    pub fn visit_containers<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&ContainerText<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let db = |e: rusqlite::Error| E::from(StoreError::from(e));
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {COLS} FROM containers"))
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            let text = |i: usize| -> Result<&str, E> {
                r.get_ref(i)
                    .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                    .map_err(db)
            };
            f(&ContainerText {
                id: text(0)?,
                name: text(1)?,
                image_id: text(2)?,
                image_ref: text(3)?,
                created: text(4)?,
                config: text(5)?,
                state: text(6)?,
            })?;
        }
        Ok(())
    }

    /// Read-modify-write a container in one transaction.
    pub fn update_container(
        &self,
        id: &ContainerId,
        f: impl FnOnce(&mut ContainerRecord) -> Result<(), StoreError>,
    ) -> Result<ContainerRecord, StoreError> {
        let tx = self.write_tx()?;
        let t = tx
            .query_row(
                &format!("SELECT {COLS} FROM containers WHERE id = ?1"),
                [id.as_str()],
                row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "container",
                what: id.as_str().to_string(),
                hint: HINT,
            })?;
        let mut rec = decode(t)?;
        f(&mut rec)?;
        tx.execute(
            "UPDATE containers SET config = ?2, state = ?3 WHERE id = ?1",
            params![id.as_str(), rec.config.to_string(), rec.state.to_string()],
        )?;
        tx.commit()?;
        Ok(rec)
    }

    /// Rename a container (the new name must be free).
    pub fn rename_container(&self, id: &ContainerId, new_name: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let owner: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [new_name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(owner) = owner {
            return Err(StoreError::NameInUse {
                name: new_name.to_string(),
                owner,
            });
        }
        let n = tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id.as_str(), new_name],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound {
                kind: "container",
                what: id.as_str().to_string(),
                hint: HINT,
            });
        }
        tx.commit()?;
        Ok(())
    }

    /// Remove a container's row and dir (the dir best effort).
    pub fn remove_container(&self, id: &ContainerId) -> Result<(), StoreError> {
        drop(self.forget_container(id)?);
        Ok(())
    }

    /// Remove a container's row and move its dir out of the way, into a
    /// work dir under `tmp/` that is deleted when the returned value is
    /// dropped (when convenient for the caller); while it lives its lock
    /// says a command is at work there, and if the caller dies the next
    /// `open` deletes it.
    pub fn forget_container(&self, id: &ContainerId) -> Result<Option<crate::TmpDir>, StoreError> {
        let dir = self.container_dir(id);
        // The work dir names the container before its row goes: if this
        // command dies between the row's delete and the dir's move, the
        // next open finishes the move (`Store::recover`).
        let work = if dir.exists() {
            self.tmp_dir("rm").ok().filter(|t| {
                std::fs::write(t.path().join(crate::FORGET_CONTAINER), id.as_str()).is_ok()
            })
        } else {
            None
        };
        let n = {
            let tx = self.write_tx()?;
            let n = tx.execute("DELETE FROM containers WHERE id = ?1", [id.as_str()])?;
            tx.commit()?;
            n
        };
        sys::faults::point("rm.row-deleted");
        let mut trash = None;
        if dir.exists() {
            let moved = work
                .ok_or(())
                .or_else(|()| self.tmp_dir("rm"))
                .and_then(|t| {
                    std::fs::rename(&dir, t.path().join(id.as_str()))
                        .map_err(StoreError::io(&dir))
                        .map(|()| t)
                });
            match moved {
                Ok(t) => trash = Some(t),
                Err(_) => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        if n == 0 {
            drop(trash);
            return Err(StoreError::NotFound {
                kind: "container",
                what: id.as_str().to_string(),
                hint: HINT,
            });
        }
        Ok(trash)
    }
}
