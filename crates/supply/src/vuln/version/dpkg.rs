//! Debian's version order, as `dpkg --compare-versions` has it
//! (deb-version(7)): `[epoch:]upstream[-revision]`, the epoch compared as a
//! number, then upstream and revision each by alternating runs of
//! non-digits (letters sort before non-letters, `~` before everything,
//! even the end of the string) and digits (compared as numbers).
use std::cmp::Ordering;

/// The three parts of a Debian version.
fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, v),
    };
    match rest.rfind('-') {
        Some(i) => (epoch, &rest[..i], &rest[i + 1..]),
        None => (epoch, rest, ""),
    }
}

/// A character's weight in a non-digit run; the end of the string is 0.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// One part (upstream or revision) against another.
fn part(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit run, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number: leading zeros do not count, a longer
        // run is larger, else the first differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first == Ordering::Equal {
                first = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first != Ordering::Equal {
            return first;
        }
    }
    Ordering::Equal
}

/// `a` against `b` in Debian's order.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua.as_bytes(), ub.as_bytes()))
        .then_with(|| part(ra.as_bytes(), rb.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs with the order `dpkg --compare-versions` gives them
    /// (checked against dpkg 1.21 by `agrees_with_dpkg` when it is there).
    pub(crate) const PAIRS: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Ordering::Equal),
        ("1.0", "1.1", Ordering::Less),
        ("1.10", "1.9", Ordering::Greater),
        ("1:1.0", "2.0", Ordering::Greater),
        ("0:1.0", "1.0", Ordering::Equal),
        ("2:0.1", "1:9.9", Ordering::Greater),
        ("1.0~rc1", "1.0", Ordering::Less),
        ("1.0~~", "1.0~", Ordering::Less),
        ("1.0~~a", "1.0~~", Ordering::Greater),
        ("1.0~", "1.0", Ordering::Less),
        ("1.0", "1.0+b1", Ordering::Less),
        ("1.0a", "1.0+", Ordering::Less),
        ("1.0a", "1.0", Ordering::Greater),
        ("1.0-1", "1.0-1~bpo1", Ordering::Greater),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", Ordering::Less),
        ("2.36-9+deb12u4", "2.36-9", Ordering::Greater),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Ordering::Less),
        ("1.001", "1.1", Ordering::Equal),
        ("1.0-0", "1.0", Ordering::Equal),
        ("1.2.3-1", "1.2.3-1.1", Ordering::Less),
        ("1:2.30-1", "2.31-1", Ordering::Greater),
        ("3.0.11-1~deb12u2", "3.0.11-1", Ordering::Less),
        ("1.0-a", "1.0-1", Ordering::Greater),
        ("1.0.0-1", "1.0-1", Ordering::Greater),
        ("9.2p1-2+deb12u3", "9.2p1-2+deb12u2", Ordering::Greater),
        ("1.18.0-6.1+deb12u1", "1.18.0-6.1", Ordering::Greater),
        ("20230311", "20230311.1", Ordering::Less),
        ("1:9.18.24-1", "1:9.18.19-1~deb12u1", Ordering::Greater),
    ];

    #[test]
    fn pairs_in_debian_order() {
        for &(a, b, want) in PAIRS {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn agrees_with_dpkg() {
        // The machine's dpkg is the reference; a test that cannot run it
        // says so instead of passing.
        let dpkg = std::process::Command::new("dpkg").arg("--version").output();
        assert!(
            dpkg.is_ok_and(|o| o.status.success()),
            "dpkg is needed to check Debian's order (apt-get install dpkg)"
        );
        for &(a, b, _) in PAIRS {
            let lt = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .unwrap()
                .success();
            let eq = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "eq", b])
                .status()
                .unwrap()
                .success();
            let theirs = if lt {
                Ordering::Less
            } else if eq {
                Ordering::Equal
            } else {
                Ordering::Greater
            };
            assert_eq!(compare(a, b), theirs, "{a} vs {b} (dpkg says {theirs:?})");
        }
    }
}
