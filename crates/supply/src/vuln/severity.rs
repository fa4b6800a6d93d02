//! Severities: a distribution's own rating where it gives one (Debian's
//! urgency, Ubuntu's priority), else the base score of the advisory's CVSS
//! vector (v3.x, then v4.0, then v2, scored by the `cvss` crate and rated
//! as CVSS v3.1 §5 does), else the database's word (GitHub's `severity`).
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::osv::{Affected, Record, SeverityScore};

/// A finding's severity, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Nobody rated it.
    Unknown,
    /// CVSS 0.1–3.9, or a distribution's low/negligible.
    Low,
    /// CVSS 4.0–6.9.
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.0.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Unknown,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The word shown (`HIGH`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The rating of a CVSS base score (CVSS v3.1 specification §5).
    pub fn of_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Unknown
        }
    }

    /// A rating word as databases and distributions write it, any case:
    /// GitHub's `MODERATE`, Debian's urgencies (`unimportant`, `low**`),
    /// Ubuntu's priorities (`negligible`), Red Hat's `important`.
    pub fn parse_word(w: &str) -> Option<Severity> {
        let w = w.trim().trim_end_matches('*').to_ascii_lowercase();
        Some(match w.as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" => Severity::Low,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Severity, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown severity {s:?}: use UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL")
            })
    }
}

/// How an advisory rates one affected package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The severity.
    pub severity: Severity,
    /// The CVSS base score it came from, if it did.
    pub score: Option<f64>,
    /// The vector scored, or where the word came from.
    pub source: String,
}

/// The base score of a CVSS vector (`CVSS:3.1/AV:N/…`, `CVSS:4.0/…`, v2).
pub fn cvss_score(kind: &str, vector: &str) -> Option<f64> {
    let v = vector.trim();
    match kind {
        "CVSS_V3" => cvss::v3::Vector::from_str(v)
            .ok()
            .map(|b| b.base_score().value()),
        "CVSS_V4" => cvss::v4::Vector::from_str(v)
            .ok()
            .map(|b| b.score().value()),
        "CVSS_V2" => cvss::v2::Vector::from_str(v)
            .ok()
            .map(|b| b.score().value()),
        _ => None,
    }
}

fn word_in(v: Option<&Value>, keys: &[&str]) -> Option<(Severity, String)> {
    let obj = v?.as_object()?;
    keys.iter().find_map(|k| {
        let w = obj.get(*k)?.as_str()?;
        Some((Severity::parse_word(w)?, format!("{k}: {w}")))
    })
}

fn scored(list: &[SeverityScore]) -> Option<Rating> {
    for kind in ["CVSS_V3", "CVSS_V4", "CVSS_V2"] {
        for s in list.iter().filter(|s| s.kind == kind) {
            if let Some(score) = cvss_score(kind, &s.score) {
                return Some(Rating {
                    severity: Severity::of_score(score),
                    score: Some(score),
                    source: s.score.clone(),
                });
            }
        }
    }
    None
}

/// The rating of `affected` in `record`.
pub fn rate(record: &Record, affected: &Affected) -> Rating {
    // The distribution's own word for its package first.
    let own = word_in(
        affected.ecosystem_specific.as_ref(),
        &["severity", "urgency"],
    )
    .or_else(|| word_in(affected.database_specific.as_ref(), &["severity"]))
    .or_else(|| {
        affected
            .severity
            .iter()
            .chain(&record.severity)
            .filter(|s| s.kind == "Ubuntu")
            .find_map(|s| {
                Some((
                    Severity::parse_word(&s.score)?,
                    format!("Ubuntu: {}", s.score),
                ))
            })
    });
    if let Some((severity, source)) = own {
        return Rating {
            severity,
            score: None,
            source,
        };
    }
    if let Some(r) = scored(&affected.severity).or_else(|| scored(&record.severity)) {
        return r;
    }
    if let Some((severity, source)) = word_in(record.database_specific.as_ref(), &["severity"]) {
        return Rating {
            severity,
            score: None,
            source,
        };
    }
    Rating {
        severity: Severity::Unknown,
        score: None,
        source: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_base_scores() {
        // NVD's scores for these vectors.
        let s = cvss_score("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").unwrap();
        assert_eq!((s, Severity::of_score(s)), (9.8, Severity::Critical));
        let s = cvss_score("CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N").unwrap();
        assert_eq!((s, Severity::of_score(s)), (5.9, Severity::Medium));
        let s = cvss_score("CVSS_V3", "CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H").unwrap();
        assert_eq!((s, Severity::of_score(s)), (8.8, Severity::High));
        let s = cvss_score("CVSS_V3", "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N").unwrap();
        assert_eq!((s, Severity::of_score(s)), (1.6, Severity::Low));
        let s = cvss_score(
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        )
        .unwrap();
        assert_eq!(s, 9.3);
        assert_eq!(cvss_score("CVSS_V3", "garbage"), None);
    }

    #[test]
    fn a_distribution_word_wins_over_cvss() {
        let r: Record = serde_json::from_str(
            r#"{"id":"X","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
               "affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"ecosystem_specific":{"urgency":"low"}},
                           {"package":{"ecosystem":"Debian:12","name":"b"},"ecosystem_specific":{"urgency":"not yet assigned"}},
                           {"package":{"ecosystem":"npm","name":"c"}}],
               "database_specific":{"severity":"MODERATE"}}"#,
        )
        .unwrap();
        assert_eq!(rate(&r, &r.affected[0]).severity, Severity::Low);
        let b = rate(&r, &r.affected[1]);
        assert_eq!((b.severity, b.score), (Severity::Critical, Some(9.8)));
        let mut r2 = r.clone();
        r2.severity.clear();
        assert_eq!(rate(&r2, &r2.affected[2]).severity, Severity::Medium);
        assert_eq!("critical".parse::<Severity>(), Ok(Severity::Critical));
        assert!("urgent".parse::<Severity>().is_err());
    }
}
