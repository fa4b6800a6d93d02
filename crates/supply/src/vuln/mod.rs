//! Vulnerability scanning: an image's packages (its SBOM) matched against
//! a local database of OSV advisories (<https://ossf.github.io/osv-schema/>),
//! each ecosystem's versions in its own order. A scan never touches the
//! network: the database is imported from OSV archives beforehand
//! ([`db::Db::import`], after [`fetch`] for `berth scan db update`).

/// The local OSV database: import, its index and metadata.
pub mod db;
/// Downloading OSV archives (`berth scan db update`).
pub mod fetch;
/// Matching an SBOM's packages against the database.
pub mod matcher;
/// OSV records (schema 1.6) as read from the archives.
pub mod osv;
/// The scan's report: filters and the table, JSON and SARIF forms.
pub mod report;
/// Severities: CVSS vectors scored, distributions' own ratings.
pub mod severity;
/// Version order per ecosystem.
pub mod version;

pub use db::{Db, DbError, DbInfo, ImportSummary};
pub use matcher::{match_sbom, Finding, Matched};
pub use report::{Filter, IgnoreList, Report, ReportFormat};
pub use severity::Severity;

#[cfg(test)]
mod tests {
    use super::db::tests::record;
    use super::*;
    use crate::purl::Distro;
    use crate::{Ecosystem, ImageInfo, Package, Sbom};

    fn pkg(e: Ecosystem, name: &str, version: &str, source: Option<&str>) -> Package {
        let mut p = Package::new(e, name, version, "/var/lib/dpkg/status");
        p.source = source.map(str::to_string);
        p
    }

    #[test]
    fn an_sbom_matched_filtered_and_reported() {
        let d = tempfile::tempdir().unwrap();
        let (dir, tmp, src) = (
            d.path().join("osv"),
            d.path().join("tmp"),
            d.path().join("src"),
        );
        for p in [&tmp, &src] {
            std::fs::create_dir_all(p).unwrap();
        }
        let t = "2024-06-01T00:00:00Z";
        let recs = [
            // Matches: the source package, with an epoch.
            record(
                "DSA-1",
                t,
                "Debian:12",
                "shadow",
                Some("1:4.13+dfsg1-1+deb12u1"),
            ),
            // Matches: a ~ version below the fix.
            record("DSA-2", t, "Debian:12", "openssl", Some("3.0.11-1")),
            // Not: fixed before the installed version.
            record("DSA-3", t, "Debian:12", "openssl", Some("3.0.11-1~deb12u1")),
            // Not: another release.
            record("DSA-4", t, "Debian:11", "openssl", None),
            // Matches, unfixed.
            record("DEBIAN-CVE-5", t, "Debian:12", "zlib", None),
            // PyPI with another spelling of the name.
            record("PYSEC-6", t, "PyPI", "Requests", Some("2.31.0")),
            record("GHSA-7", t, "npm", "left-pad", Some("1.3.0")),
        ];
        for (i, r) in recs.iter().enumerate() {
            std::fs::write(src.join(format!("{i}.json")), r).unwrap();
        }
        Db::import(&dir, &tmp, &[src]).unwrap();
        let db = Db::open(&dir).unwrap();
        let sbom = Sbom {
            image: ImageInfo {
                name: "app:1".into(),
                ..ImageInfo::default()
            },
            distro: Some(Distro {
                id: "debian".into(),
                version: Some("12".into()),
            }),
            layers: vec![],
            packages: vec![
                pkg(Ecosystem::Deb, "login", "1:4.13+dfsg1-1", Some("shadow")),
                pkg(
                    Ecosystem::Deb,
                    "passwd",
                    "1:4.13+dfsg1-1+deb12u1",
                    Some("shadow"),
                ),
                pkg(
                    Ecosystem::Deb,
                    "libssl3",
                    "3.0.11-1~deb12u2",
                    Some("openssl"),
                ),
                pkg(Ecosystem::Deb, "zlib1g", "1:1.2.13.dfsg-1", Some("zlib")),
                pkg(Ecosystem::Python, "requests", "2.28.1", None),
                pkg(Ecosystem::Npm, "left-pad", "1.3.0", None),
            ],
            notes: vec![],
            cached_layers: 0,
        };
        let m = match_sbom(&sbom, &db).unwrap();
        let mut got: Vec<(&str, &str, Option<&str>)> = m
            .findings
            .iter()
            .map(|f| (f.package.as_str(), f.id.as_str(), f.fixed.as_deref()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("libssl3", "DSA-2", Some("3.0.11-1")),
                ("login", "DSA-1", Some("1:4.13+dfsg1-1+deb12u1")),
                ("requests", "PYSEC-6", Some("2.31.0")),
                ("zlib1g", "DEBIAN-CVE-5", None),
            ]
        );
        let now = chrono::Utc::now();
        let mk = |filter: &Filter| {
            Report::new(
                sbom.image.clone(),
                None,
                db.info().clone(),
                m.clone(),
                filter,
                now,
            )
        };
        let all = mk(&Filter::default());
        assert_eq!(all.findings.len(), 4);
        assert!(all
            .total_line()
            .starts_with("Total: 4 (CRITICAL: 4, HIGH: 0"));
        let unfixed = mk(&Filter {
            ignore_unfixed: true,
            ..Filter::default()
        });
        assert_eq!((unfixed.findings.len(), unfixed.filtered), (3, 1));
        // By id or by alias; an expired entry no longer ignores.
        let ignore =
            IgnoreList::parse("# accepted\nDSA-1\nCVE-PYSEC-6  # an alias\nDSA-2 exp:2000-01-01\n")
                .unwrap();
        let r = mk(&Filter {
            ignore,
            ..Filter::default()
        });
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["DSA-2", "DEBIAN-CVE-5"]);
        assert!(IgnoreList::parse("X-1 until:2020").is_err());
        let high = mk(&Filter {
            severities: vec![Severity::High],
            ..Filter::default()
        });
        assert!(high.findings.is_empty());
        // The table, JSON and SARIF forms.
        let table = all.table();
        assert!(table.starts_with("PACKAGE"), "{table}");
        assert!(table.contains("zlib1g"), "{table}");
        let j = all.json();
        assert_eq!(j["findings"][0]["severity"], "CRITICAL");
        assert!(j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "PYSEC-6"));
        let s = all.sarif();
        assert_eq!(s["version"], "2.1.0");
        let run = &s["runs"][0];
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 4);
        let res = &run["results"][0];
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(run["tool"]["driver"]["rules"][idx]["id"], res["ruleId"]);
        assert_eq!(res["level"], "error");
    }
}
