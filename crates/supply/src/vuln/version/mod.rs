//! Version order per ecosystem, as OSV's `ECOSYSTEM` and `SEMVER` ranges
//! are evaluated: each ecosystem's own rules, never a string compare.
//! Debian, Alpine and RPM orders are written here from their tools'
//! definitions (checked against `dpkg --compare-versions`); semver 2 comes
//! from the `semver` crate and PEP 440 from `pep440_rs` (uv's).
use std::cmp::Ordering;
use std::str::FromStr;

/// Alpine's apk order.
pub mod apk;
/// Debian's dpkg order.
pub mod dpkg;
/// Maven's ComparableVersion order.
pub mod maven;
/// RPM's rpmvercmp order.
pub mod rpm;

/// How an ecosystem orders its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu packages.
    Dpkg,
    /// Alpine packages.
    Apk,
    /// RPM-based distributions.
    Rpm,
    /// Semantic Versioning 2.0 (npm, crates.io; Go with its `v`).
    Semver,
    /// Python's PEP 440.
    Pep440,
    /// Maven's ComparableVersion.
    Maven,
}

impl Scheme {
    /// `a` against `b`, or `None` when either is not a version of the
    /// scheme (a range with such a version is not evaluated).
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Scheme::Dpkg => Some(dpkg::compare(a, b)),
            Scheme::Apk => Some(apk::compare(a, b)),
            Scheme::Rpm => Some(rpm::compare(a, b)),
            Scheme::Maven => Some(maven::compare(a, b)),
            Scheme::Semver => Some(semver(a)?.cmp_precedence(&semver(b)?)),
            Scheme::Pep440 => Some(pep440(a)?.cmp(&pep440(b)?)),
        }
    }
}

/// A semantic version, leniently: a `v` prefix (Go) is dropped and a
/// missing minor or patch counts as 0 (`1.2` is `1.2.0`), as OSV's Go and
/// npm data sometimes write them.
pub fn semver(v: &str) -> Option<semver::Version> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    if let Ok(p) = semver::Version::parse(v) {
        return Some(p);
    }
    let cut = v.find(['-', '+']).unwrap_or(v.len());
    let (core, rest) = v.split_at(cut);
    let dots = core.matches('.').count();
    if dots >= 2 || core.is_empty() || !core.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let padded = format!("{core}{}{rest}", ".0".repeat(2 - dots));
    semver::Version::parse(&padded).ok()
}

/// A PEP 440 version.
pub fn pep440(v: &str) -> Option<pep440_rs::Version> {
    pep440_rs::Version::from_str(v.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(s: Scheme, pairs: &[(&str, &str, Ordering)]) {
        for &(a, b, want) in pairs {
            assert_eq!(s.compare(a, b), Some(want), "{s:?}: {a} vs {b}");
            assert_eq!(s.compare(b, a), Some(want.reverse()), "{s:?}: {b} vs {a}");
        }
    }

    #[test]
    fn semver_precedence() {
        // semver.org §11, Go's v prefix, pseudo-versions and +incompatible.
        check(
            Scheme::Semver,
            &[
                ("1.0.0-alpha", "1.0.0-alpha.1", Less),
                ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
                ("1.0.0-alpha.beta", "1.0.0-beta", Less),
                ("1.0.0-beta", "1.0.0-beta.2", Less),
                ("1.0.0-beta.2", "1.0.0-beta.11", Less),
                ("1.0.0-beta.11", "1.0.0-rc.1", Less),
                ("1.0.0-rc.1", "1.0.0", Less),
                ("1.0.0+build.1", "1.0.0+build.2", Equal),
                ("2.0.0", "10.0.0", Less),
                ("v1.2.3", "1.2.3", Equal),
                ("v0.0.0-20191109021931-daa7c04131f5", "0.1.0", Less),
                (
                    "v0.0.0-20191109021931-daa7c04131f5",
                    "0.0.0-20200101000000-aaaaaaaaaaaa",
                    Less,
                ),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "1.2.3", Greater),
                ("v1.2.4-0.20191109021931-daa7c04131f5", "1.2.4", Less),
                ("v2.0.0+incompatible", "2.0.0", Equal),
                ("1.2", "1.2.0", Equal),
            ],
        );
        assert_eq!(Scheme::Semver.compare("not a version", "1.0.0"), None);
    }

    #[test]
    fn pep440_order() {
        // PEP 440's own examples of the summary order.
        check(
            Scheme::Pep440,
            &[
                ("1.0.dev456", "1.0a1", Less),
                ("1.0a1", "1.0a2.dev456", Less),
                ("1.0a2.dev456", "1.0a12.dev456", Less),
                ("1.0a12", "1.0b1.dev456", Less),
                ("1.0b2.post345.dev456", "1.0b2.post345", Less),
                ("1.0rc1", "1.0", Less),
                ("1.0", "1.0+abc.5", Less),
                ("1.0+abc.5", "1.0+abc.7", Less),
                ("1.0+abc.7", "1.0+5", Less),
                ("1.0+5", "1.0.post456.dev34", Less),
                ("1.0.post456.dev34", "1.0.post456", Less),
                ("1.0.post456", "1.1.dev1", Less),
                ("1!0.1", "2.0", Greater),
                ("1.0", "1.0.0", Equal),
                ("1.0C1", "1.0rc1", Equal),
                ("2.28.1", "2.31.0", Less),
            ],
        );
    }
}
