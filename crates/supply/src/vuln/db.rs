//! The local OSV database: one SQLite file, `<dir>/osv.db`, holding each
//! advisory once (by id) and an index from (ecosystem, package name) to
//! the advisory's ranges for that package, already rated, so a scan reads
//! only the rows of the image's packages (a few hundred indexed lookups
//! even with half a million advisories).
//!
//! An import never changes the database in place: it works on a copy in
//! a scratch directory on the same filesystem and renames it over the old
//! file once complete and synced, under an exclusive lock on
//! `<dir>/lock`, so a failed or interrupted import leaves the previous
//! database as it was and a scan never reads a half-written one.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::osv::{self, Range, RangeKind, Record};
use super::severity::{self, Rating, Severity};

/// The database file's name in its directory.
pub const FILE: &str = "osv.db";
/// The layout version; a database of another one is imported again.
const SCHEMA: i64 = 1;
/// The largest OSV record read (the largest on osv.dev are a few MB).
const MAX_RECORD: u64 = 32 << 20;
/// Directory depth looked into when importing a directory.
const MAX_DEPTH: usize = 8;

/// Why the database cannot be used or imported.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// There is none yet.
    #[error("no vulnerability database at {}: run \"berth scan db update\" to download one, or \"berth scan db import FILE\" with an OSV archive (osv.dev's <ecosystem>/all.zip) on a host without network", path.display())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// It cannot be read.
    #[error("the vulnerability database {} is damaged ({reason}): replace it with \"berth scan db update\" or \"berth scan db import FILE\"", path.display())]
    Corrupt {
        /// Its path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Its data is older than the scan allows.
    #[error("the vulnerability database is {age_days} days old (its newest advisory changed {newest}), more than the {max_days} days allowed: refresh it with \"berth scan db update\" (or \"berth scan db import FILE\" with a newer archive), or allow an older one with --db-max-age DAYS (0: any age)")]
    TooOld {
        /// Its age in days.
        age_days: i64,
        /// When its newest advisory changed.
        newest: String,
        /// The most allowed.
        max_days: i64,
    },
    /// What was given to import is not OSV data.
    #[error("{source_name}: {reason}; nothing was imported (the database is unchanged)")]
    Input {
        /// The archive, directory or file (and entry).
        source_name: String,
        /// What was wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Downloading an archive failed.
    #[error("downloading {url}: {reason}; the database is unchanged")]
    Download {
        /// What was asked for.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl DbError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DbError {
        let path = path.to_path_buf();
        move |source| DbError::Io { what, path, source }
    }
}

/// What the database holds and how old it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbInfo {
    /// Its file.
    pub path: PathBuf,
    /// When it was last imported into.
    pub imported_at: DateTime<Utc>,
    /// The newest `modified` of its advisories: how current the data is.
    pub newest_modified: Option<DateTime<Utc>>,
    /// Advisories (withdrawn ones not counted).
    pub advisories: u64,
    /// Withdrawn advisories (kept so an older copy does not bring them back).
    pub withdrawn: u64,
    /// Advisories per ecosystem (`Debian:12`, `PyPI`…).
    pub ecosystems: BTreeMap<String, u64>,
    /// What was imported, newest last.
    pub sources: Vec<String>,
}

impl DbInfo {
    /// The data's age at `now`: from its newest advisory change (from the
    /// import when it has none).
    pub fn age(&self, now: DateTime<Utc>) -> chrono::Duration {
        now - self.newest_modified.unwrap_or(self.imported_at)
    }
}

/// What one import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// Records read.
    pub read: u64,
    /// Added or replaced by a newer version.
    pub stored: u64,
    /// Of those, withdrawn.
    pub withdrawn: u64,
    /// Skipped: the database had a newer version.
    pub older: u64,
}

/// One advisory's ranges for one package.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The OSV id.
    pub id: String,
    /// Its aliases.
    pub aliases: Vec<String>,
    /// Its summary.
    pub summary: String,
    /// How it rates this package.
    pub rating: Rating,
    /// Ranges (ECOSYSTEM and SEMVER).
    pub ranges: Vec<Range>,
    /// Versions listed one by one.
    pub versions: Vec<String>,
}

/// What an `affected` row keeps of the record.
#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    r: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    v: Vec<String>,
}

/// An open database, for scans.
pub struct Db {
    conn: Connection,
    path: PathBuf,
    info: DbInfo,
}

fn corrupt(path: &Path) -> impl Fn(rusqlite::Error) -> DbError + '_ {
    move |e| DbError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn normalize_time(t: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(t.trim()).ok().map(|d| {
        d.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn read_info(conn: &Connection, path: &Path) -> Result<DbInfo, DbError> {
    let meta = |k: &str| -> Result<Option<String>, DbError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(corrupt(path))
    };
    let schema = meta("schema")?;
    if schema.as_deref() != Some(&SCHEMA.to_string()) {
        return Err(DbError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "layout {} where {SCHEMA} is expected",
                schema.unwrap_or_default()
            ),
        });
    }
    let bad = |what: &str| DbError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("its {what} cannot be read"),
    };
    let imported_at = meta("imported_at")?
        .as_deref()
        .and_then(parse_time)
        .ok_or_else(|| bad("import time"))?;
    let newest_modified = meta("newest_modified")?.as_deref().and_then(parse_time);
    let num = |k: &str| -> Result<u64, DbError> {
        Ok(meta(k)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    let ecosystems = match meta("ecosystems")? {
        Some(j) => serde_json::from_str(&j).map_err(|_| bad("ecosystem list"))?,
        None => BTreeMap::new(),
    };
    let sources = match meta("sources")? {
        Some(j) => serde_json::from_str(&j).map_err(|_| bad("source list"))?,
        None => Vec::new(),
    };
    Ok(DbInfo {
        path: path.to_path_buf(),
        imported_at,
        newest_modified,
        advisories: num("advisories")?,
        withdrawn: num("withdrawn")?,
        ecosystems,
        sources,
    })
}

impl Db {
    /// Open the database in `dir` for reading.
    pub fn open(dir: &Path) -> Result<Db, DbError> {
        let path = dir.join(FILE);
        if !path.is_file() {
            return Err(DbError::Missing { path });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(corrupt(&path))?;
        let info = read_info(&conn, &path)?;
        Ok(Db { conn, path, info })
    }

    /// What it holds.
    pub fn info(&self) -> &DbInfo {
        &self.info
    }

    /// The advisories naming package `name` in OSV ecosystem `ecosystem`.
    pub fn lookup(&self, ecosystem: &str, name: &str) -> Result<Vec<Candidate>, DbError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT v.id, v.aliases, v.summary, a.severity, a.score, a.source, a.data \
                 FROM affected a JOIN vuln v ON v.rowid = a.vuln \
                 WHERE a.ecosystem = ?1 AND a.name = ?2",
            )
            .map_err(corrupt(&self.path))?;
        let key = osv::index_name(ecosystem, name);
        let rows = st
            .query_map(params![ecosystem, key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(corrupt(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, aliases, summary, sev, score, source, data) =
                row.map_err(corrupt(&self.path))?;
            let bad = |what: &str| DbError::Corrupt {
                path: self.path.clone(),
                reason: format!("the {what} of {id} cannot be read"),
            };
            let stored: Stored = serde_json::from_str(&data).map_err(|_| bad("ranges"))?;
            out.push(Candidate {
                aliases: serde_json::from_str(&aliases).map_err(|_| bad("aliases"))?,
                summary,
                rating: Rating {
                    severity: sev.parse().unwrap_or(Severity::Unknown),
                    score,
                    source,
                },
                ranges: stored.r,
                versions: stored.v,
                id,
            });
        }
        Ok(out)
    }

    /// Import OSV data (zip archives as osv.dev publishes them, directories
    /// of OSV JSON files, or single JSON files) into the database in `dir`,
    /// working in `tmp` (on the same filesystem). A record replaces one of
    /// the same id unless that one is newer. All or nothing.
    pub fn import(dir: &Path, tmp: &Path, inputs: &[PathBuf]) -> Result<ImportSummary, DbError> {
        std::fs::create_dir_all(dir).map_err(DbError::io("creating", dir))?;
        let lock_path = dir.join("lock");
        let lock = std::fs::File::create(&lock_path).map_err(DbError::io("locking", &lock_path))?;
        lock.lock().map_err(DbError::io("locking", &lock_path))?;
        let path = dir.join(FILE);
        let work = tmp.join(FILE);
        // Start from the current database if it is sound, else afresh
        // (this is how a damaged one is replaced).
        let base_ok = path.is_file()
            && Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok()
                .is_some_and(|c| read_info(&c, &path).is_ok());
        if base_ok {
            std::fs::copy(&path, &work).map_err(DbError::io("copying the database to", &work))?;
        }
        let mut conn = Connection::open(&work).map_err(corrupt(&work))?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS vuln (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
                 modified TEXT NOT NULL, withdrawn TEXT, aliases TEXT NOT NULL, summary TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS affected (vuln INTEGER NOT NULL, ecosystem TEXT NOT NULL,
                 name TEXT NOT NULL, severity TEXT NOT NULL, score REAL, source TEXT NOT NULL,
                 data TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS affected_pkg ON affected (ecosystem, name);
             CREATE INDEX IF NOT EXISTS affected_vuln ON affected (vuln);",
        )
        .map_err(corrupt(&work))?;
        let mut summary = ImportSummary::default();
        let tx = conn.transaction().map_err(corrupt(&work))?;
        for input in inputs {
            let name = input.display().to_string();
            each_record(input, &mut |entry, bytes| {
                let rec: Record = serde_json::from_slice(bytes).map_err(|e| DbError::Input {
                    source_name: format!("{name}: {entry}"),
                    reason: format!("not an OSV record: {e}"),
                })?;
                store(&tx, &rec, &mut summary).map_err(|e| DbError::Input {
                    source_name: format!("{name}: {entry}"),
                    reason: e,
                })
            })?;
        }
        if summary.read == 0 {
            return Err(DbError::Input {
                source_name: inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: "no OSV records in it".into(),
            });
        }
        write_meta(&tx, inputs).map_err(corrupt(&work))?;
        tx.commit().map_err(corrupt(&work))?;
        drop(conn);
        let f = std::fs::File::open(&work).map_err(DbError::io("syncing", &work))?;
        f.sync_all().map_err(DbError::io("syncing", &work))?;
        std::fs::rename(&work, &path).map_err(DbError::io("replacing", &path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(summary)
    }
}

/// Store one record: replace an older one of the same id.
fn store(
    tx: &rusqlite::Transaction<'_>,
    rec: &Record,
    sum: &mut ImportSummary,
) -> Result<(), String> {
    sum.read += 1;
    if rec.id.trim().is_empty() {
        return Err("an OSV record without an id".into());
    }
    let modified = normalize_time(&rec.modified).ok_or_else(|| {
        format!(
            "{}: modified {:?} is not an RFC 3339 time",
            rec.id, rec.modified
        )
    })?;
    let sql = |e: rusqlite::Error| e.to_string();
    let old: Option<(i64, String)> = tx
        .prepare_cached("SELECT rowid, modified FROM vuln WHERE id = ?1")
        .map_err(sql)?
        .query_row([&rec.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql)?;
    if let Some((rowid, old_modified)) = old {
        if old_modified > modified {
            sum.older += 1;
            return Ok(());
        }
        tx.prepare_cached("DELETE FROM affected WHERE vuln = ?1")
            .map_err(sql)?
            .execute([rowid])
            .map_err(sql)?;
        tx.prepare_cached("DELETE FROM vuln WHERE rowid = ?1")
            .map_err(sql)?
            .execute([rowid])
            .map_err(sql)?;
    }
    let withdrawn = rec.withdrawn.as_deref().filter(|w| !w.trim().is_empty());
    tx.prepare_cached(
        "INSERT INTO vuln (id, modified, withdrawn, aliases, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(sql)?
    .execute(params![
        rec.id,
        modified,
        withdrawn,
        serde_json::to_string(&rec.aliases).map_err(|e| e.to_string())?,
        rec.title()
    ])
    .map_err(sql)?;
    let rowid = tx.last_insert_rowid();
    sum.stored += 1;
    if withdrawn.is_some() {
        sum.withdrawn += 1;
        return Ok(());
    }
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO affected (vuln, ecosystem, name, severity, score, source, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(sql)?;
    for a in &rec.affected {
        let Some(pkg) = &a.package else { continue };
        let ranges: Vec<Range> = a
            .ranges
            .iter()
            .filter(|r| matches!(r.kind, RangeKind::Ecosystem | RangeKind::Semver))
            .cloned()
            .collect();
        if ranges.is_empty() && a.versions.is_empty() {
            continue;
        }
        let rating = severity::rate(rec, a);
        let data = serde_json::to_string(&Stored {
            r: ranges,
            v: a.versions.clone(),
        })
        .map_err(|e| e.to_string())?;
        ins.execute(params![
            rowid,
            pkg.ecosystem,
            osv::index_name(&pkg.ecosystem, &pkg.name),
            rating.severity.as_str(),
            rating.score,
            rating.source,
            data
        ])
        .map_err(sql)?;
    }
    Ok(())
}

fn write_meta(tx: &rusqlite::Transaction<'_>, inputs: &[PathBuf]) -> rusqlite::Result<()> {
    let get = |k: &str| -> rusqlite::Result<Option<String>> {
        tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .optional()
    };
    let mut sources: Vec<String> = get("sources")?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    for i in inputs {
        sources.push(format!("{} ({now})", i.display()));
    }
    let keep = sources.len().saturating_sub(50);
    sources.drain(..keep);
    let newest: Option<String> =
        tx.query_row("SELECT max(modified) FROM vuln", [], |r| r.get(0))?;
    let (live, withdrawn): (i64, i64) = tx.query_row(
        "SELECT count(*) - count(withdrawn), count(withdrawn) FROM vuln",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut ecosystems = BTreeMap::new();
    {
        let mut st =
            tx.prepare("SELECT ecosystem, count(DISTINCT vuln) FROM affected GROUP BY ecosystem")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for r in rows {
            let (e, n) = r?;
            ecosystems.insert(e, n.max(0) as u64);
        }
    }
    let mut put = tx.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?;
    put.execute(params!["schema", SCHEMA.to_string()])?;
    put.execute(params!["imported_at", now])?;
    if let Some(n) = newest {
        put.execute(params!["newest_modified", n])?;
    }
    put.execute(params!["advisories", live.to_string()])?;
    put.execute(params!["withdrawn", withdrawn.to_string()])?;
    put.execute(params![
        "ecosystems",
        serde_json::to_string(&ecosystems).unwrap_or_default()
    ])?;
    put.execute(params![
        "sources",
        serde_json::to_string(&sources).unwrap_or_default()
    ])?;
    Ok(())
}

type Visit<'a> = dyn FnMut(&str, &[u8]) -> Result<(), DbError> + 'a;

/// Hand each OSV JSON document of `input` (a zip, a directory, a file)
/// to `f` with its name.
fn each_record(input: &Path, f: &mut Visit<'_>) -> Result<(), DbError> {
    let meta = std::fs::metadata(input).map_err(DbError::io("reading", input))?;
    if meta.is_dir() {
        return each_in_dir(input, input, 0, f);
    }
    let mut file = std::fs::File::open(input).map_err(DbError::io("reading", input))?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(DbError::io("reading", input))?;
    if n == 4 && &magic == b"PK\x03\x04" {
        return each_in_zip(input, f);
    }
    if meta.len() > MAX_RECORD {
        return Err(DbError::Input {
            source_name: input.display().to_string(),
            reason: format!(
                "neither a zip archive nor an OSV record ({} bytes, more than the {MAX_RECORD} read of one record)",
                meta.len()
            ),
        });
    }
    let bytes = std::fs::read(input).map_err(DbError::io("reading", input))?;
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    f(&name, &bytes)
}

fn each_in_dir(root: &Path, dir: &Path, depth: usize, f: &mut Visit<'_>) -> Result<(), DbError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(DbError::io("reading", dir))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            each_in_dir(root, &p, depth + 1, f)?;
        } else if ft.is_file() && p.extension().is_some_and(|x| x == "json") {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            if len > MAX_RECORD {
                return Err(DbError::Input {
                    source_name: format!("{}: {rel}", root.display()),
                    reason: format!("{len} bytes, more than the {MAX_RECORD} read of one record"),
                });
            }
            let bytes = std::fs::read(&p).map_err(DbError::io("reading", &p))?;
            f(&rel, &bytes)?;
        }
    }
    Ok(())
}

fn each_in_zip(input: &Path, f: &mut Visit<'_>) -> Result<(), DbError> {
    let bad = |reason: String| DbError::Input {
        source_name: input.display().to_string(),
        reason,
    };
    let file = std::fs::File::open(input).map_err(DbError::io("reading", input))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let mut buf = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(format!("entry {i} cannot be read: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| bad(format!("entry {i} has no readable name: {e}")))?
            .to_string();
        if entry.is_dir() || !name.ends_with(".json") {
            continue;
        }
        if entry.size() > MAX_RECORD {
            return Err(bad(format!(
                "{name}: {} bytes, more than the {MAX_RECORD} read of one record",
                entry.size()
            )));
        }
        buf.clear();
        (&mut entry)
            .take(MAX_RECORD + 1)
            .read_to_end(&mut buf)
            .map_err(|e| bad(format!("{name} cannot be read: {e}")))?;
        if buf.len() as u64 > MAX_RECORD {
            return Err(bad(format!(
                "{name}: more than the {MAX_RECORD} bytes read of one record"
            )));
        }
        f(&name, &buf)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// An OSV record for `pkg` in `eco` with one ECOSYSTEM range.
    pub(crate) fn record(
        id: &str,
        modified: &str,
        eco: &str,
        pkg: &str,
        fixed: Option<&str>,
    ) -> String {
        let mut events = vec![json_event("introduced", "0")];
        if let Some(f) = fixed {
            events.push(json_event("fixed", f));
        }
        serde_json::json!({
            "schema_version": "1.6.0",
            "id": id,
            "modified": modified,
            "aliases": [format!("CVE-{id}")],
            "summary": format!("{id} in {pkg}"),
            "affected": [{"package": {"ecosystem": eco, "name": pkg},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
        })
        .to_string()
    }

    fn json_event(k: &str, v: &str) -> serde_json::Value {
        serde_json::json!({ k: v })
    }

    pub(crate) fn write_zip(path: &Path, files: &[(&str, String)]) {
        let f = std::fs::File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, text) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }

    fn ids(db: &Db, eco: &str, name: &str) -> Vec<String> {
        let mut v: Vec<String> = db
            .lookup(eco, name)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn import_a_zip_then_a_directory_merging_by_id() {
        let d = tempfile::tempdir().unwrap();
        let (dir, tmp) = (d.path().join("osv"), d.path().join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        assert!(matches!(Db::open(&dir), Err(DbError::Missing { .. })));
        let zip = d.path().join("all.zip");
        let withdrawn = {
            let mut v: serde_json::Value = serde_json::from_str(&record(
                "W-1",
                "2024-03-01T00:00:00Z",
                "PyPI",
                "Flask",
                None,
            ))
            .unwrap();
            v["withdrawn"] = "2024-03-02T00:00:00Z".into();
            v.to_string()
        };
        write_zip(
            &zip,
            &[
                (
                    "A-1.json",
                    record("A-1", "2024-01-01T00:00:00Z", "PyPI", "Flask", Some("2.0")),
                ),
                (
                    "A-2.json",
                    record("A-2", "2024-02-01T10:00:00.5+02:00", "PyPI", "flask", None),
                ),
                ("W-1.json", withdrawn),
                ("README", "not json".into()),
            ],
        );
        let s = Db::import(&dir, &tmp, std::slice::from_ref(&zip)).unwrap();
        assert_eq!((s.read, s.stored, s.withdrawn, s.older), (3, 3, 1, 0));
        let db = Db::open(&dir).unwrap();
        // PyPI names are normalized on both sides; the withdrawn entry is
        // not there to match.
        assert_eq!(ids(&db, "PyPI", "FLASK"), ["A-1", "A-2"]);
        let info = db.info().clone();
        assert_eq!((info.advisories, info.withdrawn), (2, 1));
        assert_eq!(
            info.newest_modified.unwrap().to_rfc3339(),
            "2024-03-01T00:00:00+00:00"
        );
        assert_eq!(info.ecosystems.get("PyPI"), Some(&2));
        let c = &db.lookup("PyPI", "flask").unwrap()[0];
        assert_eq!(
            (c.rating.severity, c.rating.score),
            (Severity::Critical, Some(9.8))
        );
        drop(db);
        // A directory: A-1 again but older (kept as is), A-2 newer and
        // now withdrawn, a new ecosystem.
        let src = d.path().join("dir/sub");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("a1.json"),
            record("A-1", "2023-01-01T00:00:00Z", "npm", "x", None),
        )
        .unwrap();
        let mut a2: serde_json::Value = serde_json::from_str(&record(
            "A-2",
            "2024-05-01T00:00:00Z",
            "PyPI",
            "flask",
            None,
        ))
        .unwrap();
        a2["withdrawn"] = "2024-05-01T00:00:00Z".into();
        std::fs::write(src.join("a2.json"), a2.to_string()).unwrap();
        std::fs::write(
            src.join("g.json"),
            record(
                "G-1",
                "2024-04-01T00:00:00Z",
                "Go",
                "example.com/m",
                Some("1.2.0"),
            ),
        )
        .unwrap();
        let s = Db::import(&dir, &tmp, &[d.path().join("dir")]).unwrap();
        assert_eq!((s.read, s.stored, s.withdrawn, s.older), (3, 2, 1, 1));
        let db = Db::open(&dir).unwrap();
        assert_eq!(ids(&db, "PyPI", "flask"), ["A-1"]);
        assert!(ids(&db, "npm", "x").is_empty());
        assert_eq!(ids(&db, "Go", "example.com/m"), ["G-1"]);
        assert_eq!(db.info().sources.len(), 2);
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn a_bad_input_leaves_the_database_as_it_was() {
        let d = tempfile::tempdir().unwrap();
        let (dir, tmp) = (d.path().join("osv"), d.path().join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        let good = d.path().join("good.json");
        std::fs::write(
            &good,
            record("A-1", "2024-01-01T00:00:00Z", "npm", "x", Some("1.0.0")),
        )
        .unwrap();
        Db::import(&dir, &tmp, std::slice::from_ref(&good)).unwrap();
        let before = std::fs::read(dir.join(FILE)).unwrap();
        // A zip whose second record is broken: nothing of it is kept.
        let zip = d.path().join("bad.zip");
        write_zip(
            &zip,
            &[
                (
                    "B-1.json",
                    record("B-1", "2024-01-01T00:00:00Z", "npm", "x", None),
                ),
                ("B-2.json", "{\"id\": \"B-2\", \"affected\": 7}".into()),
            ],
        );
        let e = Db::import(&dir, &tmp, &[zip]).unwrap_err().to_string();
        assert!(e.contains("B-2.json: not an OSV record"), "{e}");
        assert!(e.contains("nothing was imported"), "{e}");
        // Not a zip, not JSON.
        let junk = d.path().join("junk.zip");
        std::fs::write(&junk, b"PK\x03\x04 truncated").unwrap();
        let e = Db::import(&dir, &tmp, &[junk]).unwrap_err().to_string();
        assert!(e.contains("not a readable zip archive"), "{e}");
        // An empty directory holds no record.
        let empty = d.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = Db::import(&dir, &tmp, &[empty]).unwrap_err().to_string();
        assert!(e.contains("no OSV records"), "{e}");
        assert_eq!(std::fs::read(dir.join(FILE)).unwrap(), before);
        assert_eq!(ids(&Db::open(&dir).unwrap(), "npm", "x"), ["A-1"]);
    }

    #[test]
    fn a_damaged_database_is_refused_and_replaced_by_an_import() {
        let d = tempfile::tempdir().unwrap();
        let (dir, tmp) = (d.path().join("osv"), d.path().join("tmp"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(dir.join(FILE), vec![0x5a; 8192]).unwrap();
        let e = Db::open(&dir).err().unwrap();
        assert!(matches!(e, DbError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("berth scan db update"), "{e}");
        let good = d.path().join("good.json");
        std::fs::write(
            &good,
            record("A-1", "2024-01-01T00:00:00Z", "npm", "x", None),
        )
        .unwrap();
        Db::import(&dir, &tmp, &[good]).unwrap();
        assert_eq!(ids(&Db::open(&dir).unwrap(), "npm", "x"), ["A-1"]);
    }
}
