//! ECDSA P-256 key pairs as cosign writes them.
//!
//! The private key is PKCS#8 DER, encrypted as go-securesystemslib's
//! `encrypted` package does (what `cosign generate-key-pair` uses): a key
//! from the password by scrypt (N = 2^16, r = 8, p = 1, 32 bytes, a random
//! 32-byte salt), NaCl's secretbox (XSalsa20-Poly1305, a random 24-byte
//! nonce) over the DER, and the JSON
//! `{"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":…},
//! "cipher":{"name":"nacl/secretbox","nonce":…},"ciphertext":…}` (byte
//! strings in standard base64, as Go's `encoding/json` writes `[]byte`) as
//! the body of a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
//! `ENCRYPTED COSIGN PRIVATE KEY`, read as well). The public key is a PKIX
//! `PUBLIC KEY` PEM block.
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::SignError;

/// The PEM type cosign writes today.
pub const SIGSTORE_PEM: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM type older cosign releases wrote.
pub const COSIGN_PEM: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt's N for new keys: go-securesystemslib's `Standard` strength
/// (its default, and so cosign's).
const NEW_LOG_N: u8 = 16;
/// The N values go-securesystemslib accepts (legacy, standard, OWASP);
/// anything else is refused as it refuses it, so a key file cannot make
/// us spend unbounded memory.
const ACCEPTED_N: [u64; 3] = [1 << 15, 1 << 16, 1 << 17];
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// An ECDSA P-256 private key.
pub struct PrivateKey(SigningKey);

/// An ECDSA P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(P-256, redacted)")
    }
}

#[derive(Serialize, Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

fn random(buf: &mut [u8]) {
    rand::rng().fill_bytes(buf);
}

fn scrypt_key(password: &[u8], salt: &[u8], log_n: u8) -> Result<[u8; 32], SignError> {
    let params = scrypt::Params::new(log_n, 8, 1, 32)
        .map_err(|e| SignError::Crypto(format!("scrypt parameters: {e}")))?;
    let mut key = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut key)
        .map_err(|e| SignError::Crypto(format!("scrypt: {e}")))?;
    Ok(key)
}

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> PrivateKey {
        loop {
            let mut bytes = [0u8; 32];
            random(&mut bytes);
            // Fails only for 0 or a value ≥ the group order (~2^-32).
            if let Ok(k) = SigningKey::from_slice(&bytes) {
                return PrivateKey(k);
            }
        }
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// ECDSA-SHA256 signature of `msg`, ASN.1 DER (what cosign stores,
    /// base64, and `openssl dgst -verify` reads).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(msg);
        sig.to_der().as_bytes().to_vec()
    }

    /// The key as cosign writes it: encrypted with `password` (may be
    /// empty) under the PEM type [`SIGSTORE_PEM`].
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<String, SignError> {
        let der = self
            .0
            .to_pkcs8_der()
            .map_err(|e| SignError::Crypto(format!("encoding the key as PKCS#8: {e}")))?;
        let mut salt = vec![0u8; SALT_LEN];
        random(&mut salt);
        let mut nonce = vec![0u8; NONCE_LEN];
        random(&mut nonce);
        let key = scrypt_key(password, &salt, NEW_LOG_N)?;
        let cipher = XSalsa20Poly1305::new(&key.into());
        let mut body = der.as_bytes().to_vec();
        let tag = cipher
            .encrypt_in_place_detached(nonce.as_slice().into(), b"", &mut body)
            .map_err(|_| SignError::Crypto("secretbox encryption failed".into()))?;
        // NaCl's box layout: the tag, then the ciphertext.
        let mut ciphertext = tag.to_vec();
        ciphertext.extend_from_slice(&body);
        let json = serde_json::to_vec(&Encrypted {
            kdf: Kdf {
                name: "scrypt".into(),
                params: KdfParams {
                    n: 1 << NEW_LOG_N,
                    r: 8,
                    p: 1,
                },
                salt,
            },
            cipher: Cipher {
                name: "nacl/secretbox".into(),
                nonce,
            },
            ciphertext,
        })
        .map_err(|e| SignError::Crypto(format!("encoding the key: {e}")))?;
        pem_rfc7468_encode(SIGSTORE_PEM, &json)
    }

    /// Read a cosign private key file's text (either PEM type), decrypting
    /// it with `password`.
    pub fn from_encrypted_pem(text: &[u8], password: &[u8]) -> Result<PrivateKey, SignError> {
        let (label, body) = pem_decode(text)?;
        if label != SIGSTORE_PEM && label != COSIGN_PEM {
            return Err(SignError::Key(format!(
                "it is a PEM block of type {label:?}, not a cosign private key ({SIGSTORE_PEM:?} or {COSIGN_PEM:?}); make one with `berth key generate`"
            )));
        }
        let e: Encrypted = serde_json::from_slice(&body)
            .map_err(|e| SignError::Key(format!("its encrypted body is not cosign's JSON: {e}")))?;
        if e.kdf.name != "scrypt" {
            return Err(SignError::Key(format!("unknown kdf {:?}", e.kdf.name)));
        }
        if e.cipher.name != "nacl/secretbox" {
            return Err(SignError::Key(format!(
                "unknown cipher {:?}",
                e.cipher.name
            )));
        }
        let p = &e.kdf.params;
        if !ACCEPTED_N.contains(&p.n) || p.r != 8 || p.p != 1 {
            return Err(SignError::Key(format!(
                "unsupported scrypt parameters N={} r={} p={}",
                p.n, p.r, p.p
            )));
        }
        if e.cipher.nonce.len() != NONCE_LEN {
            return Err(SignError::Key("its nonce is not 24 bytes".into()));
        }
        if e.ciphertext.len() < TAG_LEN {
            return Err(SignError::Key("its ciphertext is too short".into()));
        }
        let key = scrypt_key(password, &e.kdf.salt, p.n.trailing_zeros() as u8)?;
        let cipher = XSalsa20Poly1305::new(&key.into());
        let (tag, ct) = e.ciphertext.split_at(TAG_LEN);
        let mut der = ct.to_vec();
        cipher
            .decrypt_in_place_detached(e.cipher.nonce.as_slice().into(), b"", &mut der, tag.into())
            .map_err(|_| SignError::Password)?;
        let k = SigningKey::from_pkcs8_der(&der).map_err(|e| {
            SignError::Key(format!(
                "the decrypted key is not an ECDSA P-256 PKCS#8 key ({e}); berth signs with P-256 keys only"
            ))
        })?;
        Ok(PrivateKey(k))
    }
}

impl PublicKey {
    /// PKIX `PUBLIC KEY` PEM, as cosign writes `cosign.pub`.
    pub fn to_pem(&self) -> Result<String, SignError> {
        self.0
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .map_err(|e| SignError::Crypto(format!("encoding the public key: {e}")))
    }

    /// Read a `PUBLIC KEY` PEM file's text (an ECDSA P-256 key).
    pub fn from_pem(text: &[u8]) -> Result<PublicKey, SignError> {
        let (label, der) = pem_decode(text)?;
        if label != "PUBLIC KEY" {
            return Err(SignError::Key(format!(
                "it is a PEM block of type {label:?}, not a \"PUBLIC KEY\" (give the .pub file of the pair)"
            )));
        }
        VerifyingKey::from_public_key_der(&der)
            .map(PublicKey)
            .map_err(|e| {
                SignError::Key(format!(
                    "not an ECDSA P-256 public key ({e}); berth verifies P-256 keys only"
                ))
            })
    }

    /// Check a DER (or, as some signers write, raw r‖s) ECDSA-SHA256
    /// signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignError> {
        let sig = Signature::from_der(sig)
            .or_else(|_| Signature::from_slice(sig))
            .map_err(|_| SignError::BadSignature("it is not an ECDSA signature".into()))?;
        self.0.verify(msg, &sig).map_err(|_| {
            SignError::BadSignature("it was not made by this key over this payload".into())
        })
    }
}

fn pem_rfc7468_encode(label: &str, body: &[u8]) -> Result<String, SignError> {
    p256::pkcs8::der::pem::encode_string(label, p256::pkcs8::LineEnding::LF, body)
        .map_err(|e| SignError::Crypto(format!("encoding PEM: {e}")))
}

/// The first PEM block of `text`: its label and body. Go's `pem.Decode`
/// skips text before the block; so do we.
fn pem_decode(text: &[u8]) -> Result<(String, Vec<u8>), SignError> {
    let s = std::str::from_utf8(text).map_err(|_| SignError::Key("it is not text".into()))?;
    let start = s
        .find("-----BEGIN ")
        .ok_or_else(|| SignError::Key("it has no PEM block (-----BEGIN …-----)".into()))?;
    let rest = &s[start + "-----BEGIN ".len()..];
    let label_end = rest
        .find("-----")
        .ok_or_else(|| SignError::Key("its PEM header is cut short".into()))?;
    let label = &rest[..label_end];
    let end_marker = format!("-----END {label}-----");
    let body_start = label_end + 5;
    let body_end = rest[body_start..]
        .find(&end_marker)
        .ok_or_else(|| SignError::Key(format!("its PEM block has no {end_marker:?} line")))?;
    let b64: String = rest[body_start..body_start + body_end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let body = B64
        .decode(b64.as_bytes())
        .map_err(|e| SignError::Key(format!("its PEM body is not base64: {e}")))?;
    Ok((label.to_string(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pemsigstorekey` of cosign's pkg/cosign/keys_test.go: a key cosign
    /// generated, encrypted with the password "hello" (scrypt N = 2^15).
    const COSIGN_SIGSTORE_KEY: &str = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
";

    /// `pemcosigneckey` of the same file: the older PEM type, N = 2^16,
    /// password "hello"; its plaintext is a SEC1 key, which cosign itself
    /// refuses after decrypting ("use ParseECPrivateKey instead").
    const COSIGN_LEGACY_SEC1_KEY: &str = "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
";

    #[test]
    fn decrypts_a_key_cosign_generated() {
        let k = PrivateKey::from_encrypted_pem(COSIGN_SIGSTORE_KEY.as_bytes(), b"hello").unwrap();
        let sig = k.sign(b"payload");
        k.public().verify(b"payload", &sig).unwrap();
        assert!(matches!(
            PrivateKey::from_encrypted_pem(COSIGN_SIGSTORE_KEY.as_bytes(), b"wrong"),
            Err(SignError::Password)
        ));
    }

    #[test]
    fn decrypts_the_older_cosign_type_and_names_a_non_pkcs8_plaintext() {
        let e = PrivateKey::from_encrypted_pem(COSIGN_LEGACY_SEC1_KEY.as_bytes(), b"hello")
            .unwrap_err();
        // The password was right (decryption passed): the plaintext is SEC1.
        assert!(
            matches!(e, SignError::Key(ref m) if m.contains("PKCS#8")),
            "{e}"
        );
        assert!(matches!(
            PrivateKey::from_encrypted_pem(COSIGN_LEGACY_SEC1_KEY.as_bytes(), b"nope"),
            Err(SignError::Password)
        ));
    }

    #[test]
    fn a_generated_key_round_trips_with_an_empty_password() {
        let k = PrivateKey::generate();
        let pem = k.to_encrypted_pem(b"").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        let (_, body) = pem_decode(pem.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kdf"]["params"]["N"], 65536);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        let back = PrivateKey::from_encrypted_pem(pem.as_bytes(), b"").unwrap();
        assert_eq!(back.public(), k.public());
        let pub_pem = k.public().to_pem().unwrap();
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(pub_pem.as_bytes()).unwrap(), k.public());
    }

    #[test]
    fn refuses_unbounded_scrypt_parameters() {
        let body = r#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}"#;
        let pem = pem_rfc7468_encode(SIGSTORE_PEM, body.as_bytes()).unwrap();
        let e = PrivateKey::from_encrypted_pem(pem.as_bytes(), b"").unwrap_err();
        assert!(
            e.to_string().contains("unsupported scrypt parameters"),
            "{e}"
        );
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let a = PrivateKey::generate();
        let b = PrivateKey::generate();
        let sig = a.sign(b"x");
        assert!(matches!(
            b.public().verify(b"x", &sig),
            Err(SignError::BadSignature(_))
        ));
        assert!(a.public().verify(b"y", &sig).is_err());
    }
}
