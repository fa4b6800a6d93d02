//! The scan's report: the findings filtered (`--severity`,
//! `--ignore-unfixed`, an ignore file as trivy's `.trivyignore`), sorted by
//! severity, and written as a table, JSON (with the OSV ids) or SARIF 2.1.0
//! (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>).
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::db::DbInfo;
use super::matcher::{Finding, Matched};
use super::severity::Severity;
use crate::ImageInfo;

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// Columns for people.
    Table,
    /// One JSON document.
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

impl std::str::FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<ReportFormat, String> {
        match s {
            "table" => Ok(ReportFormat::Table),
            "json" => Ok(ReportFormat::Json),
            "sarif" => Ok(ReportFormat::Sarif),
            other => Err(format!(
                "unknown format {other:?}: use table, json or sarif"
            )),
        }
    }
}

/// Which findings are kept.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these severities (all when empty).
    pub severities: Vec<Severity>,
    /// Drop findings with no fixed version.
    pub ignore_unfixed: bool,
    /// Ids (or aliases) to drop.
    pub ignore: IgnoreList,
}

/// An ignore file: one id per line, `#` comments, an optional
/// `exp:YYYY-MM-DD` after the id (the entry lapses that day), as trivy's
/// `.trivyignore`.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    ids: HashMap<String, Option<NaiveDate>>,
}

impl IgnoreList {
    /// Parse an ignore file's text.
    pub fn parse(text: &str) -> Result<IgnoreList, String> {
        let mut ids = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            let Some(id) = words.next() else { continue };
            let mut exp = None;
            for w in words {
                match w.strip_prefix("exp:") {
                    Some(d) => {
                        exp =
                            Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                                format!("line {}: {w:?} is not exp:YYYY-MM-DD", n + 1)
                            })?)
                    }
                    None => return Err(format!("line {}: unexpected {w:?} after the id", n + 1)),
                }
            }
            ids.insert(id.to_string(), exp);
        }
        Ok(IgnoreList { ids })
    }

    fn ignores(&self, f: &Finding, today: NaiveDate) -> bool {
        std::iter::once(&f.id).chain(&f.aliases).any(|id| {
            self.ids
                .get(id)
                .is_some_and(|exp| exp.is_none_or(|d| today < d))
        })
    }
}

impl Filter {
    fn keeps(&self, f: &Finding, today: NaiveDate) -> bool {
        (self.severities.is_empty() || self.severities.contains(&f.severity))
            && !(self.ignore_unfixed && f.fixed.is_none())
            && !self.ignore.ignores(f, today)
    }
}

/// A scan's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The image.
    pub image: ImageInfo,
    /// Its distribution (`debian 12`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// The database used.
    pub database: DbInfo,
    /// Packages looked up.
    pub packages_checked: usize,
    /// The findings kept, most severe first.
    pub findings: Vec<Finding>,
    /// Findings the filter dropped.
    pub filtered: usize,
    /// What was not matched and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// A report of the findings of `matched` kept by `filter`, sorted.
    pub fn new(
        image: ImageInfo,
        distro: Option<String>,
        database: DbInfo,
        matched: Matched,
        filter: &Filter,
        now: DateTime<Utc>,
    ) -> Report {
        let Matched {
            findings,
            packages_checked,
            notes,
        } = matched;
        let total = findings.len();
        let today = now.date_naive();
        let mut findings: Vec<Finding> = findings
            .into_iter()
            .filter(|f| filter.keeps(f, today))
            .collect();
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.package.cmp(&b.package))
                .then_with(|| a.installed.cmp(&b.installed))
                .then_with(|| a.id.cmp(&b.id))
        });
        Report {
            filtered: total - findings.len(),
            image,
            distro,
            database,
            packages_checked,
            findings,
            notes,
        }
    }

    /// Findings per severity, most severe first.
    pub fn counts(&self) -> Vec<(Severity, usize)> {
        let mut m: BTreeMap<Severity, usize> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for f in &self.findings {
            *m.entry(f.severity).or_default() += 1;
        }
        m.into_iter().rev().collect()
    }

    /// `Total: 3 (CRITICAL: 1, HIGH: 2, MEDIUM: 0, LOW: 0, UNKNOWN: 0)`.
    pub fn total_line(&self) -> String {
        let parts: Vec<String> = self
            .counts()
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!("Total: {} ({})", self.findings.len(), parts.join(", "))
    }

    /// The table: PACKAGE, INSTALLED, FIXED, SEVERITY, ID, TITLE.
    pub fn table(&self) -> String {
        let head = ["PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "ID", "TITLE"];
        let rows: Vec<[String; 6]> = self
            .findings
            .iter()
            .map(|f| {
                [
                    f.package.clone(),
                    f.installed.clone(),
                    f.fixed.clone().unwrap_or_default(),
                    f.severity.to_string(),
                    f.id.clone(),
                    short(&f.summary, 60),
                ]
            })
            .collect();
        let mut w = head.map(|h| h.chars().count());
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(w[i] - c.chars().count() + 3));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&head.map(String::from));
        out.push('\n');
        for r in &rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }

    /// The JSON document.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The SARIF 2.1.0 log: one rule per advisory, one result per finding
    /// located at the package database or file that declared it.
    pub fn sarif(&self) -> Value {
        let mut rules: Vec<Value> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for f in &self.findings {
            if index.contains_key(f.id.as_str()) {
                continue;
            }
            index.insert(&f.id, rules.len());
            let mut props = json!({
                "tags": ["vulnerability", "security", f.severity.as_str()],
            });
            if let Some(s) = f.score {
                props["security-severity"] = json!(format!("{s:.1}"));
            }
            let text = if f.summary.is_empty() {
                f.id.clone()
            } else {
                f.summary.clone()
            };
            rules.push(json!({
                "id": f.id,
                "name": "OsvAdvisory",
                "shortDescription": {"text": text},
                "fullDescription": {"text": text},
                "helpUri": format!("https://osv.dev/vulnerability/{}", f.id),
                "help": {"text": format!("{}: {} (aliases: {})", f.id, text, f.aliases.join(", "))},
                "defaultConfiguration": {"level": level(f.severity)},
                "properties": props,
            }));
        }
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let loc = f.locations.first().map(|l| l.trim_start_matches('/')).unwrap_or("");
                json!({
                    "ruleId": f.id,
                    "ruleIndex": index[f.id.as_str()],
                    "level": level(f.severity),
                    "message": {"text": format!(
                        "Package: {}\nInstalled version: {}\nFixed version: {}\nSeverity: {}\nImage: {}",
                        f.package, f.installed, f.fixed.as_deref().unwrap_or("none"), f.severity, self.image.name
                    )},
                    "locations": [{
                        "physicalLocation": {
                            "artifactLocation": {"uri": loc, "uriBaseId": "ROOTPATH"},
                            "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
                        },
                        "message": {"text": format!("{}@{}", f.package, f.installed)},
                    }],
                })
            })
            .collect();
        json!({
            "version": "2.1.0",
            "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
            "runs": [{
                "tool": {"driver": {
                    "name": "berth",
                    "informationUri": "https://osv.dev",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }},
                "results": results,
                "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
                "properties": {
                    "imageName": self.image.name,
                    "imageID": self.image.id,
                    "repoTags": self.image.repo_tags,
                    "repoDigests": self.image.repo_digests,
                },
            }],
        })
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Unknown => "note",
    }
}

fn short(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
