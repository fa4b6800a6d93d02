//! Pod rows: a pod's name (unique among pods) and the engine's JSON
//! document about it (its infra container, shared namespaces, ports). The
//! containers of a pod name it in their own config; the store keeps the
//! pod row and nothing else.
use rusqlite::{params, OptionalExtension};

use crate::{Store, StoreError};

/// A stored pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique among pods.
    pub name: String,
    /// Engine-owned configuration.
    pub config: serde_json::Value,
}

fn not_found(what: &str) -> StoreError {
    StoreError::NotFound {
        kind: "pod",
        what: what.to_string(),
        hint: ": list pods with berth pod ls",
    }
}

fn decode(id: String, name: String, config: String) -> Result<PodRecord, StoreError> {
    let config = serde_json::from_str(&config).map_err(|_| {
        StoreError::Conflict(format!(
            "the record of pod {name} ({id}) is damaged: remove it with berth pod rm -f {id}"
        ))
    })?;
    Ok(PodRecord { id, name, config })
}

impl Store {
    /// Record a new pod; its name must be free among pods.
    pub fn create_pod(&self, rec: &PodRecord) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let taken: Option<String> = tx
            .query_row("SELECT id FROM pods WHERE name = ?1", [&rec.name], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_some() {
            // podman's words.
            return Err(StoreError::Conflict(format!(
                "adding pod to state: name \"{}\" is in use: pod already exists",
                rec.name
            )));
        }
        tx.execute(
            "INSERT INTO pods (id, name, config) VALUES (?1, ?2, ?3)",
            params![
                rec.id,
                rec.name,
                serde_json::to_string(&rec.config).unwrap_or_default()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every pod, oldest first.
    pub fn pods(&self) -> Result<Vec<PodRecord>, StoreError> {
        let mut st = self
            .conn()
            .prepare_cached("SELECT id, name, config FROM pods ORDER BY rowid")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, config) = row?;
            out.push(decode(id, name, config)?);
        }
        Ok(out)
    }

    /// A pod by name, full id or unique id prefix.
    pub fn pod(&self, key: &str) -> Result<PodRecord, StoreError> {
        let exact: Option<(String, String, String)> = self
            .conn()
            .prepare_cached("SELECT id, name, config FROM pods WHERE id = ?1 OR name = ?1")?
            .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((id, name, config)) = exact {
            return decode(id, name, config);
        }
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found(key));
        }
        let mut st = self
            .conn()
            .prepare_cached("SELECT id, name, config FROM pods WHERE id LIKE ?1 LIMIT 2")?;
        let rows: Vec<(String, String, String)> = st
            .query_map([format!("{key}%")], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        match rows.len() {
            0 => Err(not_found(key)),
            1 => {
                let (id, name, config) = rows.into_iter().next().expect("one row");
                decode(id, name, config)
            }
            _ => Err(StoreError::Ambiguous {
                kind: "pod",
                prefix: key.to_string(),
            }),
        }
    }

    /// Replace a pod's document (read-modify-write in one transaction).
    pub fn update_pod(
        &self,
        id: &str,
        f: impl FnOnce(&mut serde_json::Value),
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        let text: Option<String> = tx
            .query_row("SELECT config FROM pods WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        let Some(text) = text else {
            return Err(not_found(id));
        };
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        f(&mut doc);
        tx.execute(
            "UPDATE pods SET config = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(&doc).unwrap_or_default()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forget a pod (its containers are removed by the engine first).
    pub fn remove_pod(&self, id: &str) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        tx.execute("DELETE FROM pods WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_found_by_name_id_and_prefix_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let rec = PodRecord {
            id: "ab".repeat(32),
            name: "web".into(),
            config: serde_json::json!({"hostname": "web"}),
        };
        s.create_pod(&rec).unwrap();
        assert_eq!(s.pod("web").unwrap(), rec);
        assert_eq!(s.pod("abab").unwrap(), rec);
        assert!(s
            .pod("nosuch")
            .unwrap_err()
            .to_string()
            .contains("No such pod"));
        let again = PodRecord {
            id: "cd".repeat(32),
            ..rec.clone()
        };
        assert!(s
            .create_pod(&again)
            .unwrap_err()
            .to_string()
            .contains("pod already exists"));
        s.update_pod(&rec.id, |d| d["hostname"] = "x".into())
            .unwrap();
        assert_eq!(s.pod("web").unwrap().config["hostname"], "x");
        s.remove_pod(&rec.id).unwrap();
        assert!(s.pods().unwrap().is_empty());
    }
}
