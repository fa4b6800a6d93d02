//! `berth scan IMAGE` and `berth scan db …`: an image's SBOM (see
//! [`crate::sbom`]) matched against the local OSV database kept under
//! `<root>/supply/osv/osv.db` (the `supply` crate's `vuln` module). A scan
//! reads only that file and the image's layers, never the network; the
//! database is refreshed by `scan db update` (downloads) or `scan db
//! import` (files brought to an air-gapped host). Imports work in a
//! scratch directory under `<root>/tmp` and rename the finished database
//! into place.
use std::path::{Path, PathBuf};

use chrono::Utc;
use supply::vuln::{self, fetch, Db, DbError, DbInfo, ImportSummary};
pub use supply::vuln::{DbInfo as ScanDbInfo, Filter, ImportSummary as ScanImportSummary, Report};

use crate::{Engine, Result};

pub use supply::vuln::{IgnoreList, ReportFormat, Severity};

/// How a scan is asked for.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Which findings are kept.
    pub filter: Filter,
    /// A database older than this many days is warned about (default:
    /// berth.toml's `[scan] db_warn_days`, else 7).
    pub warn_days: Option<i64>,
    /// A database older than this many days is refused, 0 never (default:
    /// `[scan] db_max_days`, else 30).
    pub max_days: Option<i64>,
}

/// The ages in force: (warn, refuse).
struct Ages {
    warn: i64,
    max: i64,
}

/// A scan's report and what the user should hear besides.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// The report.
    pub report: Report,
    /// The database's age, said on every scan.
    pub db_line: String,
    /// Set when the database is older than the warning age.
    pub stale_warning: Option<String>,
    /// What the SBOM's scanners skipped.
    pub sbom_notes: Vec<String>,
}

fn days(d: chrono::Duration) -> i64 {
    d.num_days()
}

/// `1 day`, `8 days`.
fn days_text(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

impl Engine {
    /// Where the OSV database lives.
    pub fn osv_dir(&self) -> PathBuf {
        self.paths.root.join("supply").join("osv")
    }

    /// What the local database holds.
    pub fn scan_db_info(&self) -> Result<DbInfo> {
        Ok(Db::open(&self.osv_dir())?.info().clone())
    }

    /// Import OSV archives, directories or files into the database.
    pub fn scan_db_import(&self, inputs: &[PathBuf]) -> Result<ImportSummary> {
        let tmp = self.tmp_dir("osv-import")?;
        Ok(Db::import(&self.osv_dir(), tmp.path(), inputs)?)
    }

    /// Download OSV archives (`from`: a mirror's base URL, one `.zip` URL,
    /// or a local file or directory) and import them, all or nothing.
    pub fn scan_db_update(
        &self,
        from: Option<&str>,
        ecosystems: &[String],
    ) -> Result<ImportSummary> {
        let tmp = self.tmp_dir("osv-update")?;
        let inputs = match from {
            Some(f) if !f.contains("://") => vec![PathBuf::from(f)],
            _ => {
                let dl = tmp.path().join("download");
                std::fs::create_dir_all(&dl).map_err(|e| DbError::Io {
                    what: "creating",
                    path: dl.clone(),
                    source: e,
                })?;
                fetch::download_all(&fetch::archive_urls(from, ecosystems), &dl)?
            }
        };
        let work = tmp.path().join("db");
        std::fs::create_dir_all(&work).map_err(|e| DbError::Io {
            what: "creating",
            path: work.clone(),
            source: e,
        })?;
        Ok(Db::import(&self.osv_dir(), &work, &inputs)?)
    }

    /// Scan the local image `name` against the database.
    pub fn scan(&self, name: &str, opts: &ScanOptions) -> Result<ScanOutcome> {
        let s = crate::settings::Settings::load(&self.paths.config)?.scan;
        let ages = Ages {
            warn: opts.warn_days.or(s.db_warn_days).unwrap_or(7),
            max: opts.max_days.or(s.db_max_days).unwrap_or(30),
        };
        scan_with(&self.osv_dir(), || self.sbom(name), &opts.filter, &ages)
    }
}

/// The scan of the SBOM `sbom` gives, against the database in `dir`: the
/// database is opened (and its age checked) before the image is read.
fn scan_with(
    dir: &Path,
    sbom: impl FnOnce() -> Result<supply::Sbom>,
    filter: &Filter,
    ages: &Ages,
) -> Result<ScanOutcome> {
    let db = Db::open(dir)?;
    let info = db.info().clone();
    let now = Utc::now();
    let age = days(info.age(now));
    let newest = info
        .newest_modified
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into());
    if ages.max > 0 && age > ages.max {
        return Err(DbError::TooOld {
            age_days: age,
            newest,
            max_days: ages.max,
        }
        .into());
    }
    let db_line = format!(
        "vulnerability database: {} advisories, newest change {newest} ({} old), imported {}",
        info.advisories,
        days_text(age),
        info.imported_at.format("%Y-%m-%d %H:%M UTC")
    );
    let stale_warning = (age > ages.warn).then(|| {
        format!(
            "the vulnerability database is {} old (more than {}): findings published since are missing; refresh it with \"berth scan db update\" or \"berth scan db import FILE\"",
            days_text(age),
            days_text(ages.warn)
        )
    });
    let sbom = sbom()?;
    let matched = vuln::match_sbom(&sbom, &db)?;
    let distro = sbom.distro.as_ref().map(|d| match &d.version {
        Some(v) => format!("{} {v}", d.id),
        None => d.id.clone(),
    });
    let report = Report::new(sbom.image.clone(), distro, info, matched, filter, now);
    Ok(ScanOutcome {
        report,
        db_line,
        stale_warning,
        sbom_notes: sbom.notes,
    })
}
