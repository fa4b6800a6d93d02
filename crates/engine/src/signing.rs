//! `key generate`, `sign`, `verify`, `attest`, `verify-attestation`:
//! cosign-compatible key-based signatures of images in a registry.
//!
//! A signature is stored twice: as cosign stores it (a manifest tagged
//! `sha256-<hex>.sig` whose layers are simple-signing payloads, each with
//! its signature in the `dev.cosignproject.cosign/signature` annotation; a
//! new signature is appended to the layers already there), and as an OCI
//! 1.1 referrer (a manifest with that one layer and `subject` = the image),
//! so `cosign verify --key` and referrer-aware tools (oras, notation's
//! discovery) both find it. Attestations are the same with `.att`, DSSE
//! envelopes and a `predicateType` annotation. `verify` reads the tag
//! first and then the referrers, and accepts an image if one signature
//! verifies with the key and names the image's digest.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use model::{Digest, Reference};
use registry::artifact::{self, ArtifactManifest, RawManifest};
use registry::client::Registry;
use registry::manifest::{Descriptor, OCI_CONFIG, OCI_MANIFEST};
use supply::signing::payload::{self, Envelope, SimpleSigning};
use supply::signing::SignError;

use crate::{Engine, EngineError, Result};

pub use supply::signing::{PrivateKey, PublicKey};

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's signature (base64 DER).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of an attestation layer.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The artifact type of a signature referrer (cosign's, in its OCI 1.1
/// mode).
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The artifact type of an attestation referrer.
pub const ATTESTATION_ARTIFACT: &str = "application/vnd.dsse.envelope.v1+json";
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const PREDICATE_ANNOTATION: &str = "predicateType";

/// What `sign` and `attest` pushed.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The image's manifest digest (what was signed).
    pub digest: Digest,
    /// `registry/repo:sha256-<hex>.sig` (or `.att`).
    pub tag: String,
    /// The digest of the manifest at that tag.
    pub tag_manifest: Digest,
    /// The digest of the referrer manifest.
    pub referrer: Digest,
}

/// A verified signature.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    /// The payload as signed (cosign prints these).
    pub payload: Vec<u8>,
    /// Its signature (DER).
    pub signature: Vec<u8>,
    /// Where it was found: `tag` or `referrer`.
    pub source: &'static str,
}

/// What `verify` found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The image's manifest digest.
    pub digest: Digest,
    /// The signatures that verified (deduplicated by payload).
    pub signatures: Vec<VerifiedSignature>,
}

/// A verified attestation.
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    /// The envelope, as stored.
    pub envelope: Envelope,
    /// Its predicate type.
    pub predicate_type: String,
}

/// `sha256-<hex>.<suffix>`: cosign's tag for what is attached to `d`.
pub fn attached_tag(d: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", d.hex())
}

fn read_key_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        EngineError::invalid(
            what,
            format!(
                "cannot read {}: {e} (give the path of a key made by `berth key generate` or `cosign generate-key-pair`)",
                path.display()
            ),
        )
    })
}

fn key_error(path: &Path, e: SignError) -> EngineError {
    match e {
        SignError::Password => EngineError::Signing(SignError::Key(format!(
            "{}: the password does not decrypt it (set BERTH_PASSWORD or COSIGN_PASSWORD to the password it was generated with)",
            path.display()
        ))),
        SignError::Key(m) => EngineError::Signing(SignError::Key(format!("{}: {m}", path.display()))),
        e => EngineError::Signing(e),
    }
}

/// Read and decrypt the private key file `path`.
pub fn load_private_key(path: &Path, password: &[u8]) -> Result<PrivateKey> {
    let text = read_key_file(path, "--key")?;
    PrivateKey::from_encrypted_pem(&text, password).map_err(|e| key_error(path, e))
}

/// Read the public key file `path`.
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let text = read_key_file(path, "--key")?;
    PublicKey::from_pem(&text).map_err(|e| key_error(path, e))
}

/// Write a new key pair as `<prefix>.key` (encrypted with `password`) and
/// `<prefix>.pub`; refuses to overwrite either. Returns both paths.
pub fn generate_key_pair(prefix: &Path, password: &[u8]) -> Result<(PathBuf, PathBuf)> {
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    for p in [&key_path, &pub_path] {
        if p.exists() {
            return Err(EngineError::Refused(format!(
                "{} already exists: berth does not overwrite keys; move it away or choose another --output-key-prefix",
                p.display()
            )));
        }
    }
    let key = PrivateKey::generate();
    let private_pem = key.to_encrypted_pem(password)?;
    let public_pem = key.public().to_pem()?;
    write_new(&key_path, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((key_path, pub_path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let what = || format!("writing {}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| EngineError::io(what(), e))?;
    let done = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = done {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(EngineError::io(what(), e));
    }
    Ok(())
}

/// The registry endpoint and the image's manifest.
struct Target {
    reg: Registry,
    repo: String,
    /// `registry/repository`.
    name: String,
    manifest: RawManifest,
}

impl Engine {
    fn signing_target(&self, r: &Reference) -> Result<Target> {
        let cfg = self.registries()?;
        let reg = Registry::new(&cfg, &self.credentials(), r.registry())?;
        let repo = r.repository().to_string();
        let reference = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        };
        let manifest = artifact::get_manifest(&reg, &repo, &reference)?.ok_or_else(|| {
            registry::RegistryError::ManifestUnknown {
                reference: r.to_string(),
            }
        })?;
        Ok(Target {
            name: r.name(),
            reg,
            repo,
            manifest,
        })
    }

    /// Sign the image `r` (in its registry) with `key`: the simple-signing
    /// claim of its manifest digest, pushed as cosign stores it and as a
    /// referrer.
    pub fn sign_image(
        &self,
        r: &Reference,
        key: &PrivateKey,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Attached> {
        let t = self.signing_target(r)?;
        let d = t.manifest.digest.to_string();
        let claim = SimpleSigning::new(&t.name, &d, annotations).to_bytes();
        let sig = base64_encode(&key.sign(&claim));
        let mut layer = artifact::put_blob(&t.reg, &t.repo, SIMPLE_SIGNING, &claim)?;
        layer.annotations = Some(BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), sig)]));
        let out = self.attach(&t, layer, "sig", SIGNATURE_ARTIFACT)?;
        self.emit("image", "sign", &r.to_string(), &[("digest", &d)]);
        Ok(out)
    }

    /// Attest `predicate` (of `predicate_type`: a cosign `--type` name or a
    /// URI) about the image `r`: an in-toto statement in a DSSE envelope
    /// signed with `key`.
    pub fn attest_image(
        &self,
        r: &Reference,
        key: &PrivateKey,
        predicate_type: &str,
        predicate: &[u8],
    ) -> Result<Attached> {
        let uri = payload::predicate_type(predicate_type)?;
        let t = self.signing_target(r)?;
        let d = t.manifest.digest.to_string();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let statement = payload::statement(&uri, predicate, &t.name, &d, &now)?;
        let env = Envelope::sign(key, payload::IN_TOTO_PAYLOAD_TYPE, &statement);
        let bytes = serde_json::to_vec(&env).expect("an envelope always serializes");
        let mut layer = artifact::put_blob(&t.reg, &t.repo, DSSE_ENVELOPE, &bytes)?;
        layer.annotations = Some(BTreeMap::from([(PREDICATE_ANNOTATION.to_string(), uri)]));
        let out = self.attach(&t, layer, "att", ATTESTATION_ARTIFACT)?;
        self.emit("image", "attest", &r.to_string(), &[("digest", &d)]);
        Ok(out)
    }

    /// Append `layer` to the manifest at `sha256-<hex>.<suffix>` (made if
    /// missing) and push a referrer of `artifact_type` holding it.
    fn attach(
        &self,
        t: &Target,
        layer: Descriptor,
        suffix: &str,
        artifact_type: &str,
    ) -> Result<Attached> {
        let tag = attached_tag(&t.manifest.digest, suffix);
        let mut layers = match artifact::get_manifest(&t.reg, &t.repo, &tag)? {
            Some(m) => {
                let old: ArtifactManifest = serde_json::from_slice(&m.raw).map_err(|e| {
                    registry::RegistryError::Protocol(format!(
                        "{}:{tag} is not an OCI manifest ({e}); delete that tag to sign again",
                        t.name
                    ))
                })?;
                old.layers
            }
            None => Vec::new(),
        };
        if !layers.contains(&layer) {
            layers.push(layer.clone());
        }
        // A config as go-containerregistry writes for cosign's images: the
        // layers' digests as diff ids (cosign reads only the layers).
        let config = serde_json::json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
            "config": {},
        });
        let config = artifact::put_blob(
            &t.reg,
            &t.repo,
            OCI_CONFIG,
            &serde_json::to_vec(&config).expect("json"),
        )?;
        let m = ArtifactManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST.to_string(),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        };
        let raw = serde_json::to_vec(&m).expect("json");
        let tag_manifest = artifact::put_manifest(&t.reg, &t.repo, &tag, OCI_MANIFEST, &raw)?;

        let empty = artifact::put_blob(&t.reg, &t.repo, EMPTY_CONFIG, b"{}")?;
        let referrer = ArtifactManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST.to_string(),
            artifact_type: Some(artifact_type.to_string()),
            config: empty,
            layers: vec![layer],
            subject: Some(Descriptor {
                media_type: t.manifest.media_type.clone(),
                digest: t.manifest.digest.to_string(),
                size: t.manifest.raw.len() as u64,
                platform: None,
                annotations: None,
            }),
            annotations: None,
        };
        let raw = serde_json::to_vec(&referrer).expect("json");
        let d = Digest::of(&raw);
        let referrer = artifact::put_manifest(&t.reg, &t.repo, &d.to_string(), OCI_MANIFEST, &raw)?;
        Ok(Attached {
            digest: t.manifest.digest.clone(),
            tag: format!("{}:{tag}", t.name),
            tag_manifest,
            referrer,
        })
    }

    /// The layers attached to the image as `.<suffix>` and as referrers of
    /// `artifact_type`, each once, with where they were found.
    fn attached_layers(
        &self,
        t: &Target,
        suffix: &str,
        artifact_type: &str,
    ) -> Result<Vec<(Descriptor, &'static str)>> {
        let mut out: Vec<(Descriptor, &'static str)> = Vec::new();
        let tag = attached_tag(&t.manifest.digest, suffix);
        if let Some(m) = artifact::get_manifest(&t.reg, &t.repo, &tag)? {
            if let Ok(m) = serde_json::from_slice::<ArtifactManifest>(&m.raw) {
                out.extend(m.layers.into_iter().map(|l| (l, "tag")));
            }
        }
        for r in artifact::referrers(&t.reg, &t.repo, &t.manifest.digest, Some(artifact_type))? {
            let Some(m) = artifact::get_manifest(&t.reg, &t.repo, &r.digest)? else {
                continue;
            };
            if let Ok(m) = serde_json::from_slice::<ArtifactManifest>(&m.raw) {
                for l in m.layers {
                    if !out.iter().any(|(o, _)| *o == l) {
                        out.push((l, "referrer"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Verify the image `r` (in its registry) is signed by `key` (and
    /// its claim carries `annotations`).
    pub fn verify_image(
        &self,
        r: &Reference,
        key: &PublicKey,
        annotations: &BTreeMap<String, String>,
    ) -> Result<Verified> {
        let t = self.signing_target(r)?;
        let d = t.manifest.digest.to_string();
        let layers = self.attached_layers(&t, "sig", SIGNATURE_ARTIFACT)?;
        let mut found = 0;
        let mut errors: Vec<SignError> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut signatures = Vec::new();
        for (l, source) in layers {
            if l.media_type != SIMPLE_SIGNING {
                continue;
            }
            let Some(sig) = l
                .annotations
                .as_ref()
                .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            else {
                continue;
            };
            found += 1;
            let result = (|| -> Result<(Vec<u8>, Vec<u8>)> {
                let sig = base64_decode(sig).map_err(|_| {
                    SignError::BadSignature("its signature annotation is not base64".into())
                })?;
                let payload = artifact::get_blob(&t.reg, &t.repo, &l.parsed_digest()?)?;
                key.verify(&payload, &sig)?;
                SimpleSigning::check(&payload, &d, annotations)?;
                Ok((payload, sig))
            })();
            match result {
                Ok((payload, signature)) => {
                    if seen.insert(payload.clone()) {
                        signatures.push(VerifiedSignature {
                            payload,
                            signature,
                            source,
                        });
                    }
                }
                Err(EngineError::Signing(e)) => errors.push(e),
                Err(e) => return Err(e),
            }
        }
        if signatures.is_empty() {
            return Err(refusal(
                r,
                found,
                errors,
                "signatures",
                "berth sign --key cosign.key",
            ));
        }
        Ok(Verified {
            digest: t.manifest.digest,
            signatures,
        })
    }

    /// The attestations of the image `r` signed by `key` (of
    /// `predicate_type` if given: a cosign `--type` name or a URI).
    pub fn verify_attestations(
        &self,
        r: &Reference,
        key: &PublicKey,
        predicate_type: Option<&str>,
    ) -> Result<Vec<VerifiedAttestation>> {
        let want = predicate_type.map(payload::predicate_type).transpose()?;
        let t = self.signing_target(r)?;
        let d = t.manifest.digest.to_string();
        let layers = self.attached_layers(&t, "att", ATTESTATION_ARTIFACT)?;
        let mut found = 0;
        let mut errors = Vec::new();
        let mut out: Vec<VerifiedAttestation> = Vec::new();
        for (l, _) in layers {
            if l.media_type != DSSE_ENVELOPE {
                continue;
            }
            let annotated = l
                .annotations
                .as_ref()
                .and_then(|a| a.get(PREDICATE_ANNOTATION));
            if let (Some(w), Some(a)) = (&want, annotated) {
                if w != a {
                    continue;
                }
            }
            found += 1;
            let result = (|| -> Result<VerifiedAttestation> {
                let bytes = artifact::get_blob(&t.reg, &t.repo, &l.parsed_digest()?)?;
                let env: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
                    SignError::BadSignature(format!("it is not a DSSE envelope: {e}"))
                })?;
                let statement = env.verify(key)?;
                let pt = payload::check_statement(&statement, &d)?;
                Ok(VerifiedAttestation {
                    envelope: env,
                    predicate_type: pt,
                })
            })();
            match result {
                Ok(a) => {
                    if want.as_ref().is_some_and(|w| *w != a.predicate_type) {
                        continue;
                    }
                    if !out.iter().any(|o| o.envelope == a.envelope) {
                        out.push(a);
                    }
                }
                Err(EngineError::Signing(e)) => errors.push(e),
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            let what = match &want {
                Some(w) => format!("attestations of type {w}"),
                None => "attestations".to_string(),
            };
            return Err(refusal(
                r,
                found,
                errors,
                &what,
                "berth attest --key cosign.key --predicate FILE --type TYPE",
            ));
        }
        Ok(out)
    }
}

/// Why nothing verified: none found, or the most telling failure.
fn refusal(
    r: &Reference,
    found: usize,
    errors: Vec<SignError>,
    what: &str,
    how: &str,
) -> EngineError {
    if found == 0 {
        return EngineError::Signing(SignError::NotFound(format!(
            "no {what} found for {r}: it is not signed; sign it with `{how} {r}`, or check the name and tag"
        )));
    }
    let mismatch = errors
        .iter()
        .find(|e| matches!(e, SignError::DigestMismatch { .. }));
    let e = match mismatch {
        Some(SignError::DigestMismatch { signed, actual }) => SignError::DigestMismatch {
            signed: signed.clone(),
            actual: actual.clone(),
        },
        _ => SignError::BadSignature(format!(
            "none of the {found} {what} of {r} verifies with this key ({}): check that --key is the public key of the key that signed it",
            errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_default()
        )),
    };
    EngineError::Signing(e)
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn base64_decode(s: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s.trim())
}
