use crate::ParseError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A signal number (1..=64), parsed from `SIGTERM`, `TERM`, `term` or `15`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Signal(pub i32);

const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

impl Signal {
    pub const TERM: Signal = Signal(15);
    pub const KILL: Signal = Signal(9);

    pub fn number(self) -> i32 {
        self.0
    }
}

impl FromStr for Signal {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let err = || ParseError::Signal(s.to_string());
        if let Ok(n) = s.parse::<i32>() {
            return if (1..=64).contains(&n) {
                Ok(Signal(n))
            } else {
                Err(err())
            };
        }
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(rt) = bare.strip_prefix("RTMIN") {
            let off: i32 = if rt.is_empty() {
                0
            } else {
                rt.strip_prefix('+')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(err)?
            };
            return if (0..=30).contains(&off) {
                Ok(Signal(34 + off))
            } else {
                Err(err())
            };
        }
        if let Some(rt) = bare.strip_prefix("RTMAX") {
            let off: i32 = if rt.is_empty() {
                0
            } else {
                rt.strip_prefix('-')
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(err)?
            };
            return if (0..=30).contains(&off) {
                Ok(Signal(64 - off))
            } else {
                Err(err())
            };
        }
        NAMES
            .iter()
            .find(|(n, _)| *n == bare)
            .map(|(_, v)| Signal(*v))
            .ok_or_else(err)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.iter().find(|(_, v)| *v == self.0) {
            Some((n, _)) => write!(f, "SIG{n}"),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!("SIGTERM".parse::<Signal>().unwrap(), Signal(15));
        assert_eq!("term".parse::<Signal>().unwrap(), Signal(15));
        assert_eq!("9".parse::<Signal>().unwrap(), Signal(9));
        assert_eq!("SIGRTMIN+3".parse::<Signal>().unwrap(), Signal(37));
        assert_eq!("RTMAX".parse::<Signal>().unwrap(), Signal(64));
        for bad in ["", "0", "65", "SIGFOO", "RTMIN+40"] {
            assert!(bad.parse::<Signal>().is_err(), "{bad}");
        }
        assert_eq!(Signal(15).to_string(), "SIGTERM");
    }
}
