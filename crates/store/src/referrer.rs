//! OCI 1.1 referrers of local images: artifact manifests (an SBOM, a
//! provenance statement, later signatures) whose `subject` is an image's
//! manifest. Each is kept as blobs (the manifest, its config and layers)
//! and a row tying it to the local image it is about, so `push` sends it
//! after the image, `rmi` and `prune` remove it with the image, and `gc`
//! and `system check` count its blobs as referenced.
use std::path::PathBuf;

use model::Digest;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::{Store, StoreError};

/// One referrer of a local image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrerRecord {
    /// The referrer's manifest (a blob).
    pub digest: Digest,
    /// The local image it is about.
    pub image_id: Digest,
    /// The manifest digest its `subject` names.
    pub subject: Digest,
    /// Its `artifactType` (`application/spdx+json`, …).
    pub artifact_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Its config and layer blobs.
    pub blobs: Vec<Digest>,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// The fields of a referrer manifest the store checks and records.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    artifact_type: Option<String>,
    config: Desc,
    #[serde(default)]
    layers: Vec<Desc>,
    subject: Option<Desc>,
}

#[derive(Deserialize)]
struct Desc {
    digest: String,
    #[serde(default, rename = "mediaType")]
    media_type: String,
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        what: "referrer manifest".into(),
        reason,
    }
}

impl Store {
    /// Record `manifest` (an OCI image manifest with a `subject`) as a
    /// referrer of the local image `image`; `blobs` are its config and
    /// layer contents (any already in the store may be left out). The
    /// blobs are written under the write lock, so a concurrent `gc` never
    /// sees them unreferenced. It replaces the image's referrer of the
    /// same artifact type, if any.
    pub fn add_referrer(
        &self,
        image: &Digest,
        manifest: &[u8],
        blobs: &[&[u8]],
    ) -> Result<ReferrerRecord, StoreError> {
        let m: Manifest = serde_json::from_slice(manifest)
            .map_err(|e| corrupt(format!("not an OCI manifest: {e}")))?;
        let subject: Digest = m
            .subject
            .ok_or_else(|| corrupt("it has no subject".into()))?
            .digest
            .parse()
            .map_err(|e| corrupt(format!("its subject digest: {e}")))?;
        let artifact_type = m
            .artifact_type
            .filter(|t| !t.is_empty())
            .unwrap_or(m.config.media_type.clone());
        let mut parts = Vec::new();
        for d in std::iter::once(&m.config).chain(&m.layers) {
            let d: Digest = d
                .digest
                .parse()
                .map_err(|e| corrupt(format!("a blob digest: {e}")))?;
            parts.push(d);
        }
        let tx = self.write_tx()?;
        let exists: bool = tx.query_row(
            "SELECT COUNT(*) FROM images WHERE id = ?1",
            [image.to_string()],
            |r| r.get::<_, i64>(0),
        )? > 0;
        if !exists {
            return Err(StoreError::NotFound {
                kind: "image",
                what: image.to_string(),
                hint: "",
            });
        }
        for b in blobs {
            self.put_blob_verified(b, None)?;
        }
        if let Some(missing) = parts.iter().find(|d| !self.has_blob(d)) {
            return Err(corrupt(format!(
                "its blob {missing} was neither given nor in the store"
            )));
        }
        let digest = Digest::of(manifest);
        self.put_blob_verified(manifest, Some(&digest))?;
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rec = ReferrerRecord {
            digest,
            image_id: image.clone(),
            subject,
            artifact_type,
            size: manifest.len() as u64,
            blobs: parts,
            created,
        };
        tx.execute(
            "INSERT OR REPLACE INTO referrers (digest, image_id, subject, artifact_type, blobs, size, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                rec.digest.to_string(),
                rec.image_id.to_string(),
                rec.subject.to_string(),
                rec.artifact_type,
                serde_json::to_string(&rec.blobs).unwrap_or_else(|_| "[]".into()),
                rec.size as i64,
                rec.created,
            ],
        )?;
        // One referrer of a type per image: a rebuild's or a push's
        // replaces the one before, and its blobs go unless still held.
        let old: Vec<ReferrerRecord> = referrer_rows(&tx, Some(image))?
            .into_iter()
            .filter(|r| r.artifact_type == rec.artifact_type && r.digest != rec.digest)
            .collect();
        if !old.is_empty() {
            for r in &old {
                tx.execute(
                    "DELETE FROM referrers WHERE digest = ?1",
                    [r.digest.to_string()],
                )?;
            }
            let held = crate::audit::references(&tx, &self.root().join("blobs/sha256"))?.blobs;
            for r in &old {
                for d in std::iter::once(&r.digest).chain(&r.blobs) {
                    if !held.contains_key(d.hex()) {
                        let _ = std::fs::remove_file(self.blob_path(d));
                    }
                }
            }
        }
        tx.commit()?;
        Ok(rec)
    }

    /// The referrers of the local image `image`, oldest first.
    pub fn referrers(&self, image: &Digest) -> Result<Vec<ReferrerRecord>, StoreError> {
        referrer_rows(&self.conn, Some(image))
    }
}

/// Rows of `referrers` (of one image, or all).
pub(crate) fn referrer_rows(
    conn: &rusqlite::Connection,
    image: Option<&Digest>,
) -> Result<Vec<ReferrerRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT digest, image_id, subject, artifact_type, blobs, size, created FROM referrers
         WHERE ?1 IS NULL OR image_id = ?1 ORDER BY created, digest",
    )?;
    let rows = stmt.query_map([image.map(|i| i.to_string())], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (digest, image_id, subject, artifact_type, blobs, size, created) = row?;
        let (Ok(digest), Ok(image_id), Ok(subject)) =
            (digest.parse(), image_id.parse(), subject.parse())
        else {
            continue;
        };
        out.push(ReferrerRecord {
            digest,
            image_id,
            subject,
            artifact_type,
            size: size.max(0) as u64,
            blobs: serde_json::from_str(&blobs).unwrap_or_default(),
            created,
        });
    }
    Ok(out)
}

/// Drop the referrers of `image` (being deleted in `tx`); the blobs no
/// remaining referrer holds, to remove once `tx` commits (the caller
/// checks them against the remaining images too).
pub(crate) fn forget_image(
    tx: &rusqlite::Transaction<'_>,
    image: &Digest,
) -> Result<Vec<Digest>, StoreError> {
    let mine = referrer_rows(tx, Some(image))?;
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    tx.execute(
        "DELETE FROM referrers WHERE image_id = ?1",
        [image.to_string()],
    )?;
    let rest = referrer_rows(tx, None)?;
    let held: std::collections::HashSet<&Digest> = rest
        .iter()
        .flat_map(|r| std::iter::once(&r.digest).chain(&r.blobs))
        .collect();
    let mut out = Vec::new();
    for r in &mine {
        for d in std::iter::once(&r.digest).chain(&r.blobs) {
            if !held.contains(d) && !out.contains(d) {
                out.push(d.clone());
            }
        }
    }
    Ok(out)
}

/// Blob paths of `digests` under `store`.
pub(crate) fn paths(store: &Store, digests: &[Digest]) -> Vec<PathBuf> {
    digests.iter().map(|d| store.blob_path(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(s: &Store, content: &[u8], tag: &str) -> crate::ImageRecord {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        b.append_data(&mut h, "file", content).unwrap();
        let opts = crate::ImportOptions {
            reference: Some(tag.parse().unwrap()),
            ..Default::default()
        };
        s.import(&b.into_inner().unwrap()[..], &opts).unwrap()
    }

    fn manifest(kind: &str, doc: &[u8], subject: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": kind, "digest": Digest::of(doc).to_string(), "size": doc.len()}],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": subject, "size": 1},
        }))
        .unwrap()
    }

    fn clean(s: &Store) {
        let a = s.audit(true).unwrap();
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }

    #[test]
    fn referrers_live_and_die_with_their_image() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let one = import(&s, b"one", "one:1");
        let two = import(&s, b"two", "two:1");
        let subj = format!("sha256:{}", "a".repeat(64));
        let sbom1 = s
            .add_referrer(
                &one.id,
                &manifest("application/spdx+json", b"sbom one", &subj),
                &[b"{}", b"sbom one"],
            )
            .unwrap();
        let sbom2 = s
            .add_referrer(
                &two.id,
                &manifest("application/spdx+json", b"sbom two", &subj),
                &[b"{}", b"sbom two"],
            )
            .unwrap();
        assert_eq!(sbom1.subject.to_string(), subj);
        assert_eq!(s.referrers(&one.id).unwrap(), vec![sbom1.clone()]);
        clean(&s);
        // A second one of the same type replaces the first, whose blobs go.
        let again = s
            .add_referrer(
                &one.id,
                &manifest("application/spdx+json", b"sbom one v2", &subj),
                &[b"sbom one v2"],
            )
            .unwrap();
        assert_eq!(s.referrers(&one.id).unwrap(), vec![again.clone()]);
        assert!(!s.has_blob(&sbom1.digest));
        assert!(!s.has_blob(&Digest::of(b"sbom one")));
        clean(&s);
        // A blob the manifest names that is neither given nor stored: refused.
        let e = s
            .add_referrer(&one.id, &manifest("application/x", b"absent", &subj), &[])
            .unwrap_err();
        assert!(
            e.to_string().contains("neither given nor in the store"),
            "{e}"
        );
        // rmi: its referrer goes, the shared empty config stays for two's.
        s.remove_image("one:1", false).unwrap();
        assert!(!s.has_blob(&again.digest));
        assert!(s.has_blob(&Digest::of(b"{}")));
        assert_eq!(s.referrers(&two.id).unwrap(), vec![sbom2.clone()]);
        clean(&s);
        s.remove_image("two:1", false).unwrap();
        assert!(!s.has_blob(&Digest::of(b"{}")));
        assert!(!s.has_blob(&sbom2.digest));
        clean(&s);
    }
}
