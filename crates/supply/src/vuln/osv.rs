//! OSV records (<https://ossf.github.io/osv-schema/>, schema 1.6) as
//! osv.dev publishes them: only the fields matching needs, unknown fields
//! ignored, so a newer schema still reads.
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One advisory.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// `CVE-2024-1234`, `GHSA-…`, `DSA-5678-1`, `PYSEC-…`.
    pub id: String,
    /// When it last changed (RFC 3339).
    #[serde(default)]
    pub modified: String,
    /// Set when the advisory was taken back: it is not reported.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// The long text (the summary's stand-in when there is none).
    #[serde(default)]
    pub details: Option<String>,
    /// CVSS vectors (and Ubuntu's ratings) for the whole advisory.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// The packages it affects.
    #[serde(default)]
    pub affected: Vec<Affected>,
    /// The database's own fields (GitHub: `severity`).
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// One `severity[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4`, `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector, or the rating word.
    pub score: String,
}

/// One affected package.
#[derive(Debug, Clone, Deserialize)]
pub struct Affected {
    /// Which package (absent in some GIT-only records).
    #[serde(default)]
    pub package: Option<PackageRef>,
    /// Severity for this package only (schema 1.6).
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// Version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Versions listed one by one.
    #[serde(default)]
    pub versions: Vec<String>,
    /// The ecosystem's own fields (Debian: `urgency`; others `severity`).
    #[serde(default)]
    pub ecosystem_specific: Option<Value>,
    /// The database's own fields for this package.
    #[serde(default)]
    pub database_specific: Option<Value>,
}

/// `affected[].package`.
#[derive(Debug, Clone, Deserialize)]
pub struct PackageRef {
    /// `Debian:12`, `Alpine:v3.19`, `PyPI`, `npm`, `Go`, `crates.io`, `Maven`.
    pub ecosystem: String,
    /// The package's name in that ecosystem (Debian: the source package).
    pub name: String,
}

/// A range's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RangeKind {
    /// Versions in the ecosystem's order.
    Ecosystem,
    /// Semantic versions.
    Semver,
    /// Commits (not evaluated: an image's packages have no commit).
    Git,
    /// A type this version does not know.
    #[serde(other)]
    Unknown,
}

/// One range: events in version order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// Its events.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event of a range; OSV writes each as an object with one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Versions from here on are affected (`0`: from the first).
    Introduced(String),
    /// Versions from here on are not.
    Fixed(String),
    /// The last affected version; the ones after it are not.
    LastAffected(String),
    /// Versions from here on are outside the range altogether.
    Limit(String),
}

impl Event {
    /// The event's version.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

impl Record {
    /// The summary, or the first line of the details.
    pub fn title(&self) -> String {
        let s = self
            .summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                self.details
                    .as_deref()
                    .and_then(|d| d.lines().find(|l| !l.trim().is_empty()))
            })
            .unwrap_or("");
        let s = s.trim();
        match s.char_indices().nth(200) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.to_string(),
        }
    }
}

/// A package name as the database indexes it: PyPI names normalized
/// (PEP 503: lowercase, runs of `-_.` as one `-`), others as written.
pub fn index_name(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        let mut out = String::with_capacity(name.len());
        let mut sep = false;
        for c in name.trim().chars() {
            if matches!(c, '-' | '_' | '.') {
                sep = true;
            } else {
                if sep && !out.is_empty() {
                    out.push('-');
                }
                sep = false;
                out.push(c.to_ascii_lowercase());
            }
        }
        out
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_record_with_unknown_fields() {
        let r: Record = serde_json::from_str(
            r#"{"schema_version":"1.6.0","id":"DSA-1-1","modified":"2024-01-02T03:04:05Z",
            "aliases":["CVE-2024-1"],"upstream":["x"],
            "affected":[{"package":{"ecosystem":"Debian:12","name":"glibc","purl":"pkg:deb/debian/glibc"},
              "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u4"}]},
                        {"type":"GIT","repo":"https://x","events":[{"introduced":"abc"},{"limit":"def"}]},
                        {"type":"NEW_KIND","events":[]}],
              "ecosystem_specific":{"urgency":"high"}}]}"#,
        )
        .unwrap();
        assert_eq!(r.id, "DSA-1-1");
        let a = &r.affected[0];
        assert_eq!(a.package.as_ref().unwrap().name, "glibc");
        assert_eq!(
            a.ranges[0].events,
            [
                Event::Introduced("0".into()),
                Event::Fixed("2.36-9+deb12u4".into())
            ]
        );
        assert_eq!(a.ranges[1].kind, RangeKind::Git);
        assert_eq!(a.ranges[2].kind, RangeKind::Unknown);
    }

    #[test]
    fn pypi_names_are_normalized() {
        assert_eq!(index_name("PyPI", "Flask_SQLAlchemy"), "flask-sqlalchemy");
        assert_eq!(index_name("PyPI", "zope.interface"), "zope-interface");
        assert_eq!(index_name("PyPI", "a__b--c"), "a-b-c");
        assert_eq!(index_name("npm", "@Scope/Pkg"), "@Scope/Pkg");
    }
}
