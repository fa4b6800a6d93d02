use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::str::FromStr;

/// A sha256 content digest. Only sha256 is accepted: it is what every
/// registry and image format in use produces, and what berth's store keys
/// its blobs and image ids by. The registry server, which keeps what
/// clients push under the digests they name, uses [`AnyDigest`].
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

/// A digest algorithm the OCI image spec registers
/// (<https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#registered-algorithms>).
/// sha256 is the default everywhere; sha512 is taken where the
/// distribution spec lets a client choose (berth's registry server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`: 64 hex digits.
    Sha256,
    /// `sha512`: 128 hex digits.
    Sha512,
}

impl Algorithm {
    /// As a digest spells it (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex digits its digests have.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm whose digests have `n` hex digits (their lengths
    /// differ, so a bare hex file name tells its algorithm).
    pub fn by_hex_len(n: usize) -> Option<Algorithm> {
        [Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.hex_len() == n)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A content digest of any [`Algorithm`]: `sha256:<64 hex>` or
/// `sha512:<128 hex>`, lowercase. What the registry server stores and
/// serves; convert to [`Digest`] with [`AnyDigest::sha256`] where berth's
/// store is reached.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnyDigest {
    algorithm: Algorithm,
    hex: String,
}

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl AnyDigest {
    /// The digest of `data` with `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Self {
        let mut h = AnyHasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// Builds a digest from its algorithm and hex digits.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Self, ParseError> {
        if hex.len() == algorithm.hex_len() && lower_hex(hex) {
            Ok(AnyDigest {
                algorithm,
                hex: hex.to_string(),
            })
        } else {
            Err(ParseError::Digest(format!("{algorithm}:{hex}")))
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The same digest as berth's store names it, if it is a sha256 one.
    pub fn sha256(&self) -> Option<Digest> {
        (self.algorithm == Algorithm::Sha256).then(|| Digest {
            hex: self.hex.clone(),
        })
    }
}

impl From<Digest> for AnyDigest {
    fn from(d: Digest) -> Self {
        AnyDigest {
            algorithm: Algorithm::Sha256,
            hex: d.hex,
        }
    }
}

impl From<&Digest> for AnyDigest {
    fn from(d: &Digest) -> Self {
        AnyDigest::from(d.clone())
    }
}

impl FromStr for AnyDigest {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Digest(s.to_string());
        let (alg, hex) = s.split_once(':').ok_or_else(bad)?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad()),
        };
        AnyDigest::from_hex(algorithm, hex).map_err(|_| bad())
    }
}

impl fmt::Display for AnyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for AnyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for AnyDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AnyDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Streaming hash of any [`Algorithm`].
#[derive(Clone)]
pub enum AnyHasher {
    /// sha256.
    Sha256(Sha256),
    /// sha512.
    Sha512(Sha512),
}

impl AnyHasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => AnyHasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => AnyHasher::Sha512(Sha512::new()),
        }
    }
    /// Hash `data` too.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            AnyHasher::Sha256(h) => h.update(data),
            AnyHasher::Sha512(h) => h.update(data),
        }
    }
    /// The digest of everything hashed.
    pub fn finish(self) -> AnyDigest {
        let (algorithm, hex) = match self {
            AnyHasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            AnyHasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        AnyDigest { algorithm, hex }
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

    #[test]
    fn any_digest_takes_sha256_and_sha512() {
        let d = AnyDigest::of(Algorithm::Sha512, b"");
        assert_eq!(d.algorithm(), Algorithm::Sha512);
        assert_eq!(d.hex().len(), 128);
        assert!(d.to_string().starts_with("sha512:cf83e1357eefb8bd"));
        assert_eq!(d.to_string().parse::<AnyDigest>().unwrap(), d);
        assert_eq!(d.sha256(), None);
        // sha256 is the same digest as berth's store names it.
        let s = AnyDigest::of(Algorithm::Sha256, b"");
        assert_eq!(s.sha256(), Some(Digest::of(b"")));
        assert_eq!(AnyDigest::from(Digest::of(b"")), s);
        assert_eq!(s.to_string(), Digest::of(b"").to_string());
        let mut h = AnyHasher::new(Algorithm::Sha512);
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), AnyDigest::of(Algorithm::Sha512, b"hello world"));
        assert_eq!(Algorithm::by_hex_len(128), Some(Algorithm::Sha512));
        assert_eq!(Algorithm::by_hex_len(96), None);
        for bad in [
            "",
            "sha512:",
            // a sha256-long hex under sha512, and the other way round
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            &format!("sha256:{}", d.hex()),
            &format!("sha384:{}", &d.hex()[..96]),
            &d.to_string().to_uppercase(),
            d.hex(),
        ] {
            assert!(bad.parse::<AnyDigest>().is_err(), "{bad}");
        }
        // berth's store digest stays sha256-only.
        assert!(d.to_string().parse::<Digest>().is_err());
    }
}
