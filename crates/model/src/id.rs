use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A container id: 64 lowercase hex characters, shown as the first 12.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// A fresh random id from the kernel's random source.
    pub fn random() -> Self {
        let mut buf = [0u8; 32];
        // getrandom(2) through std: /dev/urandom semantics, never blocks after boot.
        let f = std::fs::File::open("/dev/urandom").and_then(|mut f| {
            use std::io::Read;
            f.read_exact(&mut buf)
        });
        if f.is_err() {
            // Fall back on time and pid: ids only need to be unique, not secret.
            let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            buf.copy_from_slice(&sha2_bytes(seed.as_bytes()));
        }
        ContainerId(hex::encode(buf))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 12-character form `docker ps` shows.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

fn sha2_bytes(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

impl FromStr for ContainerId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ContainerId(s.to_string()))
        } else {
            Err(ParseError::Id(s.to_string()))
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

impl Serialize for ContainerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks a container name the way Docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_container_name(name: &str) -> bool {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = ContainerId::random();
        let b = ContainerId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<ContainerId>().unwrap(), a);
        assert_eq!(a.short().len(), 12);
    }

    #[test]
    fn names() {
        assert!(valid_container_name("web"));
        assert!(valid_container_name("web_1.a-b"));
        assert!(valid_container_name("/web"));
        assert!(!valid_container_name(""));
        assert!(!valid_container_name("-web"));
        assert!(!valid_container_name("we b"));
        assert!(!valid_container_name("a/b"));
    }
}
