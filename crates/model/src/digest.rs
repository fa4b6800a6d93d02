use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// A sha256 content digest. Only sha256 is accepted: it is what every
/// registry and image format in use produces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// Builds a digest from the raw 32 bytes of a finished hasher.
    pub fn from_sha256_bytes(bytes: &[u8]) -> Self {
        Digest {
            hex: hex::encode(bytes),
        }
    }

    /// Parses a bare 64-char hex string (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Self, ParseError> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(ParseError::Digest(hex.to_string()))
        }
    }

    /// The 64 hex characters, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex characters, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.strip_prefix("sha256:") {
            Some(hex) => Digest::from_hex(hex).map_err(|_| ParseError::Digest(s.to_string())),
            None => Err(ParseError::Digest(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Streaming sha256, for hashing while copying.
#[derive(Default, Clone)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn new() -> Self {
        Hasher(Sha256::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish(self) -> Digest {
        Digest::from_sha256_bytes(&self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert_eq!(d.short(), "e3b0c44298fc");
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "sha256:xyz",
            "md5:abcd",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn streaming_matches_one_shot() {
        let mut h = Hasher::new();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Digest::of(b"hello world"));
    }
}
