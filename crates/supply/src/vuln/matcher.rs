//! Matching an image's packages against the database: each package looked
//! up under its OSV ecosystem and name (a Debian or Alpine package under
//! its source package and the release, `Debian:12`, `Alpine:v3.19`), each
//! advisory's ranges evaluated with the ecosystem's version order as the
//! OSV schema defines it (events sorted by version; `introduced` opens,
//! `fixed` and `last_affected` close, `limit` bounds), and its `versions`
//! list checked too.
use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde::Serialize;

use super::db::{Candidate, Db, DbError};
use super::osv::{Event, Range, RangeKind};
use super::severity::Severity;
use super::version::Scheme;
use crate::purl::Distro;
use crate::{Ecosystem, Package, Sbom};

/// One advisory affecting one installed package.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The OSV id (`DSA-5678-1`, `GHSA-…`, `CVE-…`).
    pub id: String,
    /// Its aliases (CVE ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Its summary.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// The installed package's name.
    pub package: String,
    /// The name it was matched by when not its own (a Debian source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_name: Option<String>,
    /// The package's type (`deb`, `python`…).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The OSV ecosystem it was matched in.
    pub ecosystem: String,
    /// The installed version.
    pub installed: String,
    /// The first version that fixes it, if there is one.
    pub fixed: Option<String>,
    /// Its severity.
    pub severity: Severity,
    /// The CVSS base score, when it was rated by one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The vector or word the severity came from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub severity_source: String,
    /// The package's purl.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub purl: String,
    /// The layer that brought the package.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// Where in the image it was found.
    pub locations: Vec<String>,
}

/// The findings of one image and what could not be matched.
#[derive(Debug, Clone, Default)]
pub struct Matched {
    /// The findings, one per (package, advisory).
    pub findings: Vec<Finding>,
    /// Packages looked up.
    pub packages_checked: usize,
    /// Why some packages or ranges were not evaluated.
    pub notes: Vec<String>,
}

/// Debian's release numbers for the codenames os-release gives instead
/// of a VERSION_ID on testing and unstable.
fn debian_release(v: &str) -> String {
    match v {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        other => other.split('.').next().unwrap_or(other),
    }
    .to_string()
}

/// The OSV ecosystems (tried in order) and the name a package is looked
/// up by, or why it cannot be.
pub fn osv_keys(p: &Package, distro: Option<&Distro>) -> Result<(Vec<String>, String), String> {
    let distro_version = || {
        let d = distro.ok_or("the image has no /etc/os-release")?;
        let v = d
            .version
            .clone()
            .ok_or_else(|| format!("its os-release ({}) has no VERSION_ID", d.id))?;
        Ok::<_, String>((d.id.as_str(), v))
    };
    let source = || p.source.clone().unwrap_or_else(|| p.name.clone());
    Ok(match p.ecosystem {
        Ecosystem::Deb => {
            let (id, v) = distro_version()?;
            let ecos = match id {
                "debian" => vec![format!("Debian:{}", debian_release(&v))],
                "ubuntu" => vec![
                    format!("Ubuntu:{v}"),
                    format!("Ubuntu:{v}:LTS"),
                    format!("Ubuntu:Pro:{v}:LTS"),
                ],
                other => return Err(format!("no OSV ecosystem for {other}'s Debian packages")),
            };
            (ecos, source())
        }
        Ecosystem::Apk => {
            let (id, v) = distro_version()?;
            if id != "alpine" {
                return Err(format!("no OSV ecosystem for {id}'s apk packages"));
            }
            let mm: Vec<&str> = v.split('.').take(2).collect();
            (vec![format!("Alpine:v{}", mm.join("."))], source())
        }
        Ecosystem::Rpm => {
            let (id, v) = distro_version()?;
            let major = v.split('.').next().unwrap_or(&v).to_string();
            let eco = match id {
                "rocky" => format!("Rocky Linux:{major}"),
                "almalinux" => format!("AlmaLinux:{major}"),
                other => return Err(format!("no OSV ecosystem for {other}'s RPM packages")),
            };
            (vec![eco], p.name.clone())
        }
        Ecosystem::Python => (vec!["PyPI".into()], p.name.clone()),
        Ecosystem::Npm => (vec!["npm".into()], p.name.clone()),
        Ecosystem::Go => (vec!["Go".into()], p.name.clone()),
        Ecosystem::Cargo => (vec!["crates.io".into()], p.name.clone()),
        Ecosystem::Maven => {
            let name = match &p.group {
                Some(g) => format!("{g}:{}", p.name),
                None => return Err("a Java archive without a group id".into()),
            };
            (vec!["Maven".into()], name)
        }
    })
}

/// The version order of OSV ecosystem `eco`.
pub fn scheme_of(eco: &str) -> Option<Scheme> {
    let base = eco.split(':').next().unwrap_or(eco);
    Some(match base {
        "Debian" | "Ubuntu" => Scheme::Dpkg,
        "Alpine" => Scheme::Apk,
        "Rocky Linux" | "AlmaLinux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia" => Scheme::Rpm,
        "PyPI" => Scheme::Pep440,
        "Maven" => Scheme::Maven,
        "npm" | "Go" | "crates.io" | "NuGet" | "Hex" | "Pub" => Scheme::Semver,
        _ => return None,
    })
}

/// The installed version as the ecosystem's advisories write it: Go's
/// toolchain `go1.21.5` is `1.21.5`.
fn installed_version(p: &Package) -> &str {
    if p.ecosystem == Ecosystem::Go && p.name == "stdlib" {
        p.version.strip_prefix("go").unwrap_or(&p.version)
    } else {
        &p.version
    }
}

/// Is `v` in `range`? `Some(fix)` when it is (with the first fixing
/// version above it), `None` when not; `Err` when a version does not
/// parse in the range's order.
pub fn in_range(scheme: Scheme, v: &str, range: &Range) -> Result<Option<Option<String>>, String> {
    let scheme = if range.kind == RangeKind::Semver {
        Scheme::Semver
    } else {
        scheme
    };
    let cmp = |a: &str, b: &str| {
        scheme
            .compare(a, b)
            .ok_or_else(|| format!("{a:?} or {b:?} is not a version in {scheme:?} order"))
    };
    let is_zero = |e: &Event| matches!(e, Event::Introduced(x) if x == "0");
    let mut events = range.events.clone();
    // Sort by version, "introduced: 0" first; a version that does not parse
    // makes the range unusable.
    let mut err = None;
    events.sort_by(|a, b| match (is_zero(a), is_zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => cmp(a.version(), b.version()).unwrap_or_else(|e| {
            err.get_or_insert(e);
            Ordering::Equal
        }),
    });
    if let Some(e) = err {
        return Err(e);
    }
    let limits: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(l) if l != "*" => Some(l.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty() {
        let mut below_one = false;
        for l in &limits {
            below_one |= cmp(v, l)? == Ordering::Less;
        }
        if !below_one {
            return Ok(None);
        }
    }
    let mut affected = false;
    let mut fix = None;
    for e in &events {
        match e {
            Event::Introduced(x) => {
                if x == "0" || cmp(v, x)? != Ordering::Less {
                    affected = true;
                    fix = None;
                }
            }
            Event::Fixed(x) => {
                if cmp(v, x)? != Ordering::Less {
                    affected = false;
                } else if affected && fix.is_none() {
                    fix = Some(x.clone());
                }
            }
            Event::LastAffected(x) => {
                if cmp(v, x)? == Ordering::Greater {
                    affected = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    Ok(affected.then_some(fix))
}

/// Does candidate `c` affect version `v`? With the fix when it does.
fn affects(
    scheme: Scheme,
    v: &str,
    c: &Candidate,
    notes: &mut BTreeSet<String>,
) -> Option<Option<String>> {
    let mut hit: Option<Option<String>> = None;
    for r in &c.ranges {
        match in_range(scheme, v, r) {
            Ok(Some(fix)) => {
                // Several ranges: keep the lowest fix.
                hit = Some(match (hit.flatten(), fix) {
                    (Some(a), Some(b)) => Some(if scheme.compare(&b, &a) == Some(Ordering::Less) {
                        b
                    } else {
                        a
                    }),
                    (a, b) => a.or(b),
                });
            }
            Ok(None) => {}
            Err(e) => {
                notes.insert(format!("{}: a range was not evaluated: {e}", c.id));
            }
        }
    }
    if hit.is_none()
        && c.versions
            .iter()
            .any(|x| x == v || scheme.compare(x, v) == Some(Ordering::Equal))
    {
        hit = Some(None);
    }
    hit
}

/// Match every package of `sbom` against `db`.
pub fn match_sbom(sbom: &Sbom, db: &Db) -> Result<Matched, DbError> {
    let mut out = Matched::default();
    let mut notes = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for p in &sbom.packages {
        let (ecos, name) = match osv_keys(p, sbom.distro.as_ref()) {
            Ok(k) => k,
            Err(why) => {
                notes.insert(format!(
                    "{} packages not matched: {why}",
                    p.ecosystem.type_name()
                ));
                continue;
            }
        };
        out.packages_checked += 1;
        let v = installed_version(p);
        for eco in &ecos {
            let Some(scheme) = scheme_of(eco) else {
                continue;
            };
            for c in db.lookup(eco, &name)? {
                let Some(fixed) = affects(scheme, v, &c, &mut notes) else {
                    continue;
                };
                let key = (
                    p.ecosystem,
                    p.name.clone(),
                    p.version.clone(),
                    p.locations.clone(),
                    c.id.clone(),
                );
                if !seen.insert(key) {
                    continue;
                }
                out.findings.push(Finding {
                    id: c.id.clone(),
                    aliases: c.aliases.clone(),
                    summary: c.summary.clone(),
                    package: p.name.clone(),
                    matched_name: (name != p.name).then(|| name.clone()),
                    kind: p.ecosystem.type_name(),
                    ecosystem: eco.clone(),
                    installed: p.version.clone(),
                    fixed,
                    severity: c.rating.severity,
                    score: c.rating.score,
                    severity_source: c.rating.source.clone(),
                    purl: p.purl.clone(),
                    layer: p.layer.clone(),
                    locations: p.locations.clone(),
                });
            }
        }
    }
    out.notes = notes.into_iter().collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: RangeKind, events: &[Event]) -> Range {
        Range {
            kind,
            events: events.to_vec(),
        }
    }
    use Event::*;

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn ranges_per_the_osv_algorithm() {
        let r = range(
            RangeKind::Ecosystem,
            &[Introduced(s("0")), Fixed(s("1:2.0-1"))],
        );
        // An epoch: 1:1.9 is below 1:2.0, 3.0 (epoch 0) is below too.
        assert_eq!(
            in_range(Scheme::Dpkg, "1:1.9-1", &r),
            Ok(Some(Some(s("1:2.0-1"))))
        );
        assert_eq!(
            in_range(Scheme::Dpkg, "3.0-1", &r),
            Ok(Some(Some(s("1:2.0-1"))))
        );
        assert_eq!(in_range(Scheme::Dpkg, "1:2.0-1", &r), Ok(None));
        // ~ sorts before the release.
        let r = range(
            RangeKind::Ecosystem,
            &[Introduced(s("0")), Fixed(s("2.0-1"))],
        );
        assert_eq!(
            in_range(Scheme::Dpkg, "2.0~rc1-1", &r),
            Ok(Some(Some(s("2.0-1"))))
        );
        // Two intervals, out of order in the record.
        let r = range(
            RangeKind::Semver,
            &[
                Fixed(s("2.0.1")),
                Introduced(s("1.0.0")),
                Introduced(s("2.0.0")),
                Fixed(s("1.2.3")),
            ],
        );
        assert_eq!(in_range(Scheme::Semver, "0.9.0", &r), Ok(None));
        assert_eq!(
            in_range(Scheme::Semver, "1.2.2", &r),
            Ok(Some(Some(s("1.2.3"))))
        );
        assert_eq!(in_range(Scheme::Semver, "1.5.0", &r), Ok(None));
        assert_eq!(
            in_range(Scheme::Semver, "2.0.0", &r),
            Ok(Some(Some(s("2.0.1"))))
        );
        assert_eq!(in_range(Scheme::Semver, "2.0.1", &r), Ok(None));
        // last_affected and no fix.
        let r = range(
            RangeKind::Ecosystem,
            &[Introduced(s("1.0")), LastAffected(s("1.4"))],
        );
        assert_eq!(in_range(Scheme::Pep440, "1.4", &r), Ok(Some(None)));
        assert_eq!(in_range(Scheme::Pep440, "1.4.post1", &r), Ok(None));
        // limit.
        let r = range(RangeKind::Ecosystem, &[Introduced(s("0")), Limit(s("3.0"))]);
        assert_eq!(in_range(Scheme::Pep440, "2.9", &r), Ok(Some(None)));
        assert_eq!(in_range(Scheme::Pep440, "3.0", &r), Ok(None));
        // A version that is not one.
        let r = range(
            RangeKind::Semver,
            &[Introduced(s("0")), Fixed(s("not-a-version"))],
        );
        assert!(in_range(Scheme::Semver, "1.0.0", &r).is_err());
    }

    #[test]
    fn packages_map_to_osv_ecosystems() {
        let deb = Distro {
            id: "debian".into(),
            version: Some("12".into()),
        };
        let mut p = Package::new(Ecosystem::Deb, "libc6", "2.36-9", "/var/lib/dpkg/status");
        p.source = Some("glibc".into());
        assert_eq!(
            osv_keys(&p, Some(&deb)),
            Ok((vec![s("Debian:12")], s("glibc")))
        );
        let sid = Distro {
            id: "debian".into(),
            version: Some("trixie".into()),
        };
        assert_eq!(osv_keys(&p, Some(&sid)).unwrap().0, [s("Debian:13")]);
        assert!(osv_keys(&p, None).unwrap_err().contains("os-release"));
        let alpine = Distro {
            id: "alpine".into(),
            version: Some("3.19.1".into()),
        };
        let mut a = Package::new(
            Ecosystem::Apk,
            "libssl3",
            "3.1.4-r5",
            "/lib/apk/db/installed",
        );
        a.source = Some("openssl".into());
        assert_eq!(
            osv_keys(&a, Some(&alpine)),
            Ok((vec![s("Alpine:v3.19")], s("openssl")))
        );
        let mut j = Package::new(Ecosystem::Maven, "jackson-databind", "2.13.4", "/app.jar");
        j.group = Some("com.fasterxml.jackson.core".into());
        assert_eq!(
            osv_keys(&j, None).unwrap().1,
            "com.fasterxml.jackson.core:jackson-databind"
        );
        let g = Package::new(Ecosystem::Go, "stdlib", "go1.21.5", "/app");
        assert_eq!(installed_version(&g), "1.21.5");
    }
}
