//! Alpine's version order, as apk-tools compares versions (Gentoo's
//! scheme, `{digit}{.digit}…{letter}{_suffix{#}}…{-r#}`): numbers compare
//! as numbers except that a component after a `.` with leading zeros sorts
//! below the unpadded ones (`1.05 < 1.4`), one lowercase letter may follow
//! the numbers, the suffixes `_alpha < _beta < _pre < _rc` sort before the
//! release and `_cvs < _svn < _git < _hg < _p` after it, and `-rN` is the
//! package revision.
use std::cmp::Ordering;

/// What comes next in a version, in the order apk ranks the kinds when
/// one version has a part the other has not (a later kind is smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

struct Tokens<'a> {
    s: &'a [u8],
    kind: Kind,
}

impl Tokens<'_> {
    /// The kind of the part after a separator at the current position.
    fn advance_kind(&mut self) {
        let prev = self.kind;
        let c = self.s.first().copied();
        let mut n = match c {
            None | Some(0) => Kind::End,
            Some(c)
                if matches!(prev, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() =>
            {
                Kind::Letter
            }
            Some(c) if prev == Kind::Letter && c.is_ascii_digit() => Kind::Digit,
            Some(c) if prev == Kind::Suffix && c.is_ascii_digit() => Kind::SuffixNo,
            Some(c) => {
                let k = match c {
                    b'.' => Kind::DigitOrZero,
                    b'_' => Kind::Suffix,
                    b'-' if self.s.get(1) == Some(&b'r') => {
                        self.s = &self.s[1..];
                        Kind::RevisionNo
                    }
                    _ => Kind::Invalid,
                };
                self.s = &self.s[1..];
                k
            }
        };
        // Parts come in order; going back is only allowed from a number
        // to the next dotted number, from a suffix number to the next
        // suffix, and from a letter to a number.
        if n < prev
            && !matches!(
                (n, prev),
                (Kind::DigitOrZero, Kind::Digit)
                    | (Kind::Suffix, Kind::SuffixNo)
                    | (Kind::Digit, Kind::Letter)
            )
        {
            n = Kind::Invalid;
        }
        self.kind = n;
    }

    /// The value of the current part, moving past it.
    fn next_value(&mut self) -> i64 {
        if self.s.is_empty() {
            self.kind = Kind::End;
            return 0;
        }
        let mut i = 0;
        let mut v: i64 = 0;
        let mut then = None;
        match self.kind {
            Kind::DigitOrZero if self.s[0] == b'0' => {
                while i < self.s.len() && self.s[i] == b'0' {
                    i += 1;
                }
                then = Some(Kind::Digit);
                v = -(i as i64);
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                while i < self.s.len() && self.s[i].is_ascii_digit() {
                    v = v
                        .saturating_mul(10)
                        .saturating_add(i64::from(self.s[i] - b'0'));
                    i += 1;
                }
            }
            Kind::Letter => {
                v = i64::from(self.s[0]);
                i = 1;
            }
            Kind::Suffix => {
                if let Some(n) = PRE.iter().position(|p| self.s.starts_with(p.as_bytes())) {
                    i = PRE[n].len();
                    v = n as i64 - PRE.len() as i64;
                } else if let Some(n) = POST.iter().position(|p| self.s.starts_with(p.as_bytes())) {
                    i = POST[n].len();
                    v = n as i64;
                } else {
                    self.kind = Kind::Invalid;
                    return -1;
                }
            }
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return -1;
            }
        }
        self.s = &self.s[i..];
        if self.s.is_empty() {
            self.kind = Kind::End;
        } else if let Some(k) = then {
            self.kind = k;
        } else {
            self.advance_kind();
        }
        v
    }
}

/// `a` against `b` in apk's order.
pub fn compare(a: &str, b: &str) -> Ordering {
    let mut a = Tokens {
        s: a.trim().as_bytes(),
        kind: Kind::Digit,
    };
    let mut b = Tokens {
        s: b.trim().as_bytes(),
        kind: Kind::Digit,
    };
    let (mut av, mut bv) = (0, 0);
    while a.kind == b.kind && !matches!(a.kind, Kind::End | Kind::Invalid) && av == bv {
        av = a.next_value();
        bv = b.next_value();
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if a.kind == b.kind {
        return Ordering::Equal;
    }
    // Equal so far: the longer version is larger, unless what it has more
    // of is a pre-release suffix.
    if a.kind == Kind::Suffix && a.next_value() < 0 {
        return Ordering::Less;
    }
    if b.kind == Kind::Suffix && b.next_value() < 0 {
        return Ordering::Greater;
    }
    b.kind.cmp(&a.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn pairs_in_apk_order() {
        let pairs = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0", "1", Greater),
            ("1.0-r0", "1.0", Greater),
            ("1.0-r1", "1.0-r2", Less),
            ("1.0-r10", "1.0-r9", Greater),
            ("1.0_alpha", "1.0_beta", Less),
            ("1.0_beta", "1.0_pre", Less),
            ("1.0_pre", "1.0_rc", Less),
            ("1.1_rc1", "1.1", Less),
            // apk-tools 2 reads a zero component as a leading-zero run and
            // does not look at a suffix after it: 1.0_rc1 sorts after 1.0.
            ("1.0_rc1", "1.0", Greater),
            ("1.0_rc1", "1.0_rc2", Less),
            ("1.0", "1.0_p1", Less),
            ("1.0_p1", "1.0_p2", Less),
            ("1.0_p1", "1.0.1", Less),
            ("1.0_cvs", "1.0_p", Less),
            ("1.0_git20230101", "1.0_p1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0b", Less),
            ("1.0a", "1.0.1", Less),
            ("3.1.4-r5", "3.1.4-r6", Less),
            ("1.05", "1.4", Less),
            ("1.00", "1.0", Less),
            ("2.40.1-r0", "2.40.0-r2", Greater),
            ("1.36.1-r15", "1.36.1-r2", Greater),
            ("3.0.12-r4", "3.0.13-r0", Less),
            ("9.4_p1-r5", "9.4_p1-r6", Less),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            // From apk-tools' test/version.data.
            ("2.34", "0.1.0_alpha", Greater),
            ("0.1.0_alpha2", "0.1.0_alpha", Greater),
            ("1.1", "1.1_alpha1", Greater),
            ("2.3.0b-r1", "2.3.0b-r2", Less),
            ("0.12.3", "0.12", Greater),
            ("1.06-r6", "006", Less),
            ("3.0.20060720", "20060720", Less),
            ("2.5.1-r8", "2.5.1a-r1", Less),
            ("4.5_p1-r1", "4.5_p1", Greater),
            ("0.9.8c-r1", "0.9.8d", Less),
            ("1.7", "1.7b", Less),
            ("1.8.5", "1.8.5_p2", Less),
            ("2.9.11_pre20051101-r3", "2.9.11_pre20051101", Greater),
            ("0.20070207_rc1", "1.0", Less),
            ("1.0_p10-r0", "1.0_p9-r0", Greater),
            ("0.1.0_alpha_pre2", "0.1.0_alpha", Less),
            ("1.3_pre1-r1", "1.3.2", Less),
            (
                "1.0.0_pre20191002222144-r0",
                "1.0.0_pre20210530193627-r0",
                Less,
            ),
        ];
        for (a, b, want) in pairs {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }
}
