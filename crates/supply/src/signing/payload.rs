//! What is signed: cosign's simple-signing payload for an image signature,
//! and in-toto statements in DSSE envelopes for attestations.
use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::key::{PrivateKey, PublicKey};
use super::SignError;

/// The `type` of a cosign image signature's claim.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// DSSE's payload type for in-toto statements.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type cosign writes.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// cosign's predicate type for `--type custom`.
pub const CUSTOM_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/v1";

/// The simple-signing claim of a cosign signature
/// (<https://github.com/containers/image/blob/main/docs/containers-signature.5.md>,
/// as cosign writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimpleSigning {
    /// What is claimed.
    pub critical: Critical,
    /// The `-a key=value` annotations (`null` without any, as cosign).
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The critical part of the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository the image was signed as.
    pub identity: Identity,
    /// The manifest digest signed.
    pub image: ImageClaim,
    /// [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// `registry/repository` (cosign writes the repository, no tag).
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageClaim {
    /// `sha256:…` of the signed manifest.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigning {
    /// The claim for `digest` of `repository` with `annotations`.
    pub fn new(
        repository: &str,
        digest: &str,
        annotations: &BTreeMap<String, String>,
    ) -> SimpleSigning {
        SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: ImageClaim {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_string(),
            },
            optional: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                    .collect()
            }),
        }
    }

    /// The bytes signed (compact JSON, fields in cosign's order).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a claim always serializes")
    }

    /// Parse and check a payload against the image `digest` and the
    /// `annotations` asked for.
    pub fn check(
        payload: &[u8],
        digest: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<SimpleSigning, SignError> {
        let s: SimpleSigning = serde_json::from_slice(payload).map_err(|e| {
            SignError::BadSignature(format!("its payload is not a simple-signing claim: {e}"))
        })?;
        if s.critical.kind != SIGNATURE_TYPE {
            return Err(SignError::BadSignature(format!(
                "its claim is of type {:?}, not {SIGNATURE_TYPE:?}",
                s.critical.kind
            )));
        }
        if s.critical.image.docker_manifest_digest != digest {
            return Err(SignError::DigestMismatch {
                signed: s.critical.image.docker_manifest_digest.clone(),
                actual: digest.to_string(),
            });
        }
        for (k, v) in annotations {
            let has = s
                .optional
                .as_ref()
                .and_then(|o| o.get(k))
                .and_then(|x| x.as_str());
            if has != Some(v.as_str()) {
                return Err(SignError::BadSignature(format!(
                    "its claim lacks the annotation {k}={v}"
                )));
            }
        }
        Ok(s)
    }
}

/// A DSSE envelope (<https://github.com/secure-systems-lab/dsse>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The payload's type.
    pub payload_type: String,
    /// The payload, standard base64.
    pub payload: String,
    /// Its signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Key id (empty, as cosign writes it for a key pair).
    #[serde(default)]
    pub keyid: String,
    /// The signature over the PAE, standard base64.
    pub sig: String,
}

/// DSSE's pre-authentication encoding: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// `payload` of `payload_type` signed with `key`.
    pub fn sign(key: &PrivateKey, payload_type: &str, payload: &[u8]) -> Envelope {
        Envelope {
            payload_type: payload_type.to_string(),
            payload: B64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: B64.encode(key.sign(&pae(payload_type, payload))),
            }],
        }
    }

    /// The payload if one of the signatures is `key`'s.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>, SignError> {
        let payload = B64
            .decode(self.payload.as_bytes())
            .map_err(|e| SignError::BadSignature(format!("its payload is not base64: {e}")))?;
        let msg = pae(&self.payload_type, &payload);
        let mut last = SignError::BadSignature("the envelope has no signature".into());
        for s in &self.signatures {
            let Ok(sig) = B64.decode(s.sig.as_bytes()) else {
                last = SignError::BadSignature("a signature is not base64".into());
                continue;
            };
            match key.verify(&msg, &sig) {
                Ok(()) => return Ok(payload),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// cosign's `--type` names and the predicate type URI each stands for; any
/// other value must itself be a URI.
pub fn predicate_type(name: &str) -> Result<String, SignError> {
    let uri = match name {
        "custom" => CUSTOM_PREDICATE,
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "link" => "https://in-toto.io/Link/v1",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "openvex" => "https://openvex.dev/ns",
        other => {
            let scheme_ok = other.split_once(':').is_some_and(|(s, rest)| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
            });
            if !scheme_ok || other.chars().any(char::is_whitespace) {
                return Err(SignError::Invalid(format!(
                    "predicate type {other:?}: use slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, link, vuln, openvex, custom or a URI"
                )));
            }
            other
        }
    };
    Ok(uri.to_string())
}

/// The in-toto statement cosign writes for a predicate: `subject` is the
/// image (`repository`, `digest`); a `custom` predicate is wrapped as
/// `{"Data": <the file's text>, "Timestamp": <now>}`, any other must be
/// JSON and is embedded as it is.
pub fn statement(
    predicate_type: &str,
    predicate: &[u8],
    repository: &str,
    digest: &str,
    now: &str,
) -> Result<Vec<u8>, SignError> {
    let pred = if predicate_type == CUSTOM_PREDICATE {
        serde_json::json!({
            "Data": String::from_utf8_lossy(predicate),
            "Timestamp": now,
        })
    } else {
        serde_json::from_slice::<serde_json::Value>(predicate).map_err(|e| {
            SignError::Invalid(format!(
                "the predicate is not JSON ({e}); a predicate of type {predicate_type} must be a JSON document"
            ))
        })?
    };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let st = serde_json::json!({
        "_type": STATEMENT_V01,
        "predicateType": predicate_type,
        "subject": [{"name": repository, "digest": {"sha256": hex}}],
        "predicate": pred,
    });
    Ok(serde_json::to_vec(&st).expect("a statement always serializes"))
}

/// Check a statement from a verified envelope names `digest` among its
/// subjects; returns its predicate type.
pub fn check_statement(payload: &[u8], digest: &str) -> Result<String, SignError> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
        SignError::BadSignature(format!("its payload is not an in-toto statement: {e}"))
    })?;
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let subjects = v["subject"].as_array().cloned().unwrap_or_default();
    if !subjects
        .iter()
        .any(|s| s["digest"]["sha256"].as_str() == Some(hex))
    {
        let signed = subjects
            .iter()
            .filter_map(|s| s["digest"]["sha256"].as_str())
            .map(|h| format!("sha256:{h}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SignError::DigestMismatch {
            signed,
            actual: digest.to_string(),
        });
    }
    Ok(v["predicateType"].as_str().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cosigns_byte_for_byte() {
        let p = SimpleSigning::new("127.0.0.1:5000/app", "sha256:abc", &BTreeMap::new());
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"sha256:abc"},"type":"cosign container image signature"},"optional":null}"#
        );
        let a = BTreeMap::from([("team".to_string(), "web".to_string())]);
        let p = SimpleSigning::new("r", "sha256:abc", &a);
        assert!(String::from_utf8(p.to_bytes())
            .unwrap()
            .ends_with(r#""optional":{"team":"web"}}"#));
        assert!(SimpleSigning::check(&p.to_bytes(), "sha256:abc", &a).is_ok());
        assert!(matches!(
            SimpleSigning::check(&p.to_bytes(), "sha256:def", &a),
            Err(SignError::DigestMismatch { .. })
        ));
        let other = BTreeMap::from([("team".to_string(), "db".to_string())]);
        assert!(SimpleSigning::check(&p.to_bytes(), "sha256:abc", &other).is_err());
    }

    #[test]
    fn pae_is_dsse_v1() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn an_envelope_verifies_with_its_key_only() {
        let k = PrivateKey::generate();
        let e = Envelope::sign(&k, IN_TOTO_PAYLOAD_TYPE, b"{}");
        assert_eq!(e.verify(&k.public()).unwrap(), b"{}");
        assert!(e.verify(&PrivateKey::generate().public()).is_err());
        let mut t = e.clone();
        t.payload = B64.encode(b"{\"x\":1}");
        assert!(t.verify(&k.public()).is_err());
    }

    #[test]
    fn predicate_types_are_cosigns() {
        assert_eq!(
            predicate_type("slsaprovenance").unwrap(),
            "https://slsa.dev/provenance/v0.2"
        );
        assert_eq!(
            predicate_type("spdxjson").unwrap(),
            "https://spdx.dev/Document"
        );
        assert_eq!(
            predicate_type("https://example.com/p/v1").unwrap(),
            "https://example.com/p/v1"
        );
        assert!(predicate_type("nonsense").is_err());
        let st = statement(CUSTOM_PREDICATE, b"hi", "r", "sha256:ab", "t").unwrap();
        assert_eq!(check_statement(&st, "sha256:ab").unwrap(), CUSTOM_PREDICATE);
        assert!(check_statement(&st, "sha256:cd").is_err());
        assert!(statement("https://slsa.dev/provenance/v0.2", b"hi", "r", "d", "t").is_err());
    }
}
