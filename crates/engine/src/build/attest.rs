//! `build --sbom --provenance`: after the build, the image's SPDX SBOM and
//! an in-toto SLSA provenance statement, each stored as an OCI 1.1
//! referrer of the image (an artifact manifest whose `subject` is the
//! manifest `push` sends for it), so `push` sends them along and a
//! registry lists them under `GET /v2/<name>/referrers/<digest>`.
//!
//! The subject is the manifest a push with the default (gzip) compression
//! makes: its layers are compressed now, once, and the result cached for
//! that push. A push with another compression rewrites the subject.
use std::os::fd::AsFd;

use model::Digest;
use registry::manifest::Descriptor;
use registry::referrers::{artifact_manifest, Artifact};
use sha2::Digest as _;
use supply::provenance::{self, BuildFacts, Material, Mode};

use super::copy::{self, Source};
use super::{ignore::Ignore, platform_string, Builder};
use crate::error::{EngineError, Result};
use crate::Engine;

pub use store::ReferrerRecord;
pub use supply::provenance::Mode as ProvenanceMode;

/// `--sbom` and `--provenance`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attestations {
    /// Attach the SPDX 2.3 SBOM.
    pub sbom: bool,
    /// Attach SLSA provenance in this mode.
    pub provenance: Option<Mode>,
}

impl Attestations {
    /// Anything to attach?
    pub fn any(&self) -> bool {
        self.sbom || self.provenance.is_some()
    }
}

/// The artifact type (and layer media type) of an attached SBOM.
pub const SBOM_ARTIFACT_TYPE: &str = "application/spdx+json";
/// The artifact type (and layer media type) of attached provenance.
pub const PROVENANCE_ARTIFACT_TYPE: &str = "application/vnd.in-toto+json";

/// A base image the build used (FROM), as resolved.
#[derive(Debug, Clone)]
pub(super) struct BaseUse {
    /// The name as the Dockerfile gave it, variables expanded.
    pub name: String,
    /// The image.
    pub id: Digest,
}

/// When the build ran.
pub(super) struct Times {
    pub started: chrono::DateTime<chrono::Utc>,
    pub finished: chrono::DateTime<chrono::Utc>,
}

fn rfc3339(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Builder<'_> {
    /// The build context's hash: every file `.dockerignore` keeps, with
    /// its name, kind, mode and content (COPY's cache-key hash of `.`).
    fn context_sha256(&mut self) -> Result<String> {
        let root = store::fsops::open_dir(&self.req.context)
            .map_err(|e| EngineError::io("opening the build context", e))?;
        let ignore = self.ignore.clone();
        let cache = self.stat_cache();
        copy::hash_sources(
            root.as_fd(),
            &[Source::Path(".".into())],
            &ignore,
            &Ignore::parse(""),
            Some(cache),
        )
        .map_err(|e| EngineError::io("hashing the build context", e))
    }

    /// Attach what `req.attest` asks for to `image`; a line per artifact
    /// to the progress.
    pub(super) fn attach(&mut self, image: &Digest, times: Times) -> Result<()> {
        let want = self.req.attest;
        if !want.any() {
            return Ok(());
        }
        let engine = self.engine;
        let subject = engine.push_manifest(image)?;
        let created = rfc3339(&times.finished);
        if want.sbom {
            let sbom = engine.sbom(&image.to_string())?;
            let doc = sbom
                .render(supply::Format::SpdxJson)
                .map_err(|e| EngineError::Build(format!("the SBOM: {e}")))?;
            let a = Artifact {
                artifact_type: SBOM_ARTIFACT_TYPE,
                media_type: SBOM_ARTIFACT_TYPE,
                data: doc.as_bytes(),
                layer_annotations: vec![
                    (
                        "in-toto.io/predicate-type",
                        provenance::SPDX_PREDICATE_TYPE.into(),
                    ),
                    ("org.opencontainers.image.title", "sbom.spdx.json".into()),
                ],
                created: created.clone(),
            };
            let rec = engine.attach_artifact(image, &a, &subject)?;
            let _ = writeln!(
                self.out,
                "#attest sbom {} ({} packages) attached as {}",
                SBOM_ARTIFACT_TYPE,
                sbom.packages.len(),
                rec.digest
            );
        }
        if let Some(mode) = want.provenance {
            let facts = self.facts(image, &subject, &times)?;
            let statement = provenance::statement(&facts, mode);
            let mut doc = serde_json::to_vec_pretty(&statement)
                .map_err(|e| EngineError::Build(format!("the provenance: {e}")))?;
            doc.push(b'\n');
            let a = Artifact {
                artifact_type: PROVENANCE_ARTIFACT_TYPE,
                media_type: PROVENANCE_ARTIFACT_TYPE,
                data: &doc,
                layer_annotations: vec![
                    (
                        "in-toto.io/predicate-type",
                        provenance::PREDICATE_TYPE.into(),
                    ),
                    ("org.opencontainers.image.title", "provenance.json".into()),
                ],
                created,
            };
            let rec = engine.attach_artifact(image, &a, &subject)?;
            let _ = writeln!(
                self.out,
                "#attest provenance {} (mode={}) attached as {}",
                PROVENANCE_ARTIFACT_TYPE,
                if mode == Mode::Max { "max" } else { "min" },
                rec.digest
            );
        }
        Ok(())
    }

    fn facts(&mut self, image: &Digest, subject: &Descriptor, times: &Times) -> Result<BuildFacts> {
        let platform = platform_string(&self.target());
        let hex = subject.digest.trim_start_matches("sha256:").to_string();
        let mut subject_names: Vec<String> = self
            .req
            .tags
            .iter()
            .map(|t| provenance::docker_purl(&t.name(), t.tag().unwrap_or("latest"), &platform))
            .collect();
        if subject_names.is_empty() {
            subject_names.push(provenance::docker_purl(
                &format!("sha256:{}", image.hex()),
                "",
                &platform,
            ));
        }
        let mut materials = Vec::new();
        let bases = self.bases.clone();
        for b in &bases {
            let (version, digest) = self.engine.base_digest(&b.name, &b.id)?;
            let m = Material {
                uri: provenance::docker_purl(&base_name(&b.name), &version, &platform),
                digest: [("sha256".to_string(), digest.hex().to_string())].into(),
            };
            if !materials.contains(&m) {
                materials.push(m);
            }
        }
        materials.push(Material {
            uri: "context".into(),
            digest: [("sha256".to_string(), self.context_sha256()?)].into(),
        });
        let dockerfile = match &self.req.dockerfile {
            Some(p) => p
                .strip_prefix(&self.req.context)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned(),
            None => "Dockerfile".into(),
        };
        Ok(BuildFacts {
            subject_names,
            subject_sha256: hex,
            builder_id: String::new(),
            dockerfile,
            build_args: self.req.build_args.clone(),
            labels: self.req.labels.clone(),
            target: self.req.target.clone(),
            // Ids only: a secret's value never leaves the RUN that mounts it.
            secret_ids: self.req.secrets.0.keys().cloned().collect(),
            platform,
            materials,
            invocation_id: format!(
                "{:x}",
                sha2::Sha256::digest(format!("{image}{}", rfc3339(&times.started)).as_bytes())
            )[..25]
                .to_string(),
            started: rfc3339(&times.started),
            finished: rfc3339(&times.finished),
        })
    }
}

/// A reference's repository name, fully qualified (`docker.io/library/busybox`).
fn base_name(name: &str) -> String {
    match name.parse::<model::Reference>() {
        Ok(r) => r.name().to_string(),
        Err(_) => name.to_string(),
    }
}

impl Engine {
    /// The manifest `push` would send for the local image `id` (with the
    /// default compression): its descriptor.
    pub(crate) fn push_manifest(&self, id: &Digest) -> Result<Descriptor> {
        let store = self.store();
        let img = store.resolve_image(&id.to_string())?;
        let (_, raw, media_type) = registry::push::image_manifest(
            &store,
            &img,
            registry::push::Compression::Gzip,
            &mut |_| Ok(()),
        )?;
        Ok(Descriptor {
            media_type,
            digest: Digest::of(&raw).to_string(),
            size: raw.len() as u64,
            platform: None,
            annotations: None,
        })
    }

    /// A base image's version (tag) and digest for the provenance: the
    /// manifest it was pulled by (its repo digest), else the manifest a
    /// push of it would send.
    fn base_digest(&self, name: &str, id: &Digest) -> Result<(String, Digest)> {
        let r = name.parse::<model::Reference>().ok();
        // The purl's version: the tag, else the digest the FROM names.
        let version = r
            .as_ref()
            .and_then(|r| {
                r.tag()
                    .map(str::to_string)
                    .or_else(|| r.digest().map(|d| d.to_string()))
            })
            .unwrap_or_else(|| "latest".into());
        if let Some(d) = r.as_ref().and_then(|r| r.digest()) {
            return Ok((version, d.clone()));
        }
        let img = self.store().resolve_image(&id.to_string())?;
        let repo = r.as_ref().map(|r| r.name().to_string());
        let pulled = img.repo_digests.iter().find_map(|rd| {
            let (n, d) = rd.rsplit_once('@')?;
            (Some(n) == repo.as_deref()).then(|| d.parse::<Digest>().ok())?
        });
        if let Some(d) = pulled {
            return Ok((version, d));
        }
        let made = self.push_manifest(id)?;
        let d = made
            .digest
            .parse()
            .map_err(|_| EngineError::Build(format!("manifest digest {}", made.digest)))?;
        Ok((version, d))
    }

    /// Store `a` as a referrer of the local image `image` about `subject`.
    fn attach_artifact(
        &self,
        image: &Digest,
        a: &Artifact<'_>,
        subject: &Descriptor,
    ) -> Result<store::ReferrerRecord> {
        let manifest = artifact_manifest(a, subject);
        Ok(self.store().add_referrer(
            image,
            &manifest,
            &[registry::referrers::EMPTY_CONFIG, a.data],
        )?)
    }

    /// The referrers (SBOM, provenance) of the local image `name`.
    pub fn image_referrers(&self, name: &str) -> Result<Vec<store::ReferrerRecord>> {
        let store = self.store();
        let img = store.resolve_image(name)?;
        Ok(store.referrers(&img.id)?)
    }

    /// The document (the one layer) of the referrer `digest` of the local
    /// image `name`.
    pub fn referrer_document(&self, name: &str, digest: &str) -> Result<Vec<u8>> {
        let store = self.store();
        let img = store.resolve_image(name)?;
        let rec = store
            .referrers(&img.id)?
            .into_iter()
            .find(|r| r.digest.to_string() == digest || r.digest.hex().starts_with(digest))
            .ok_or_else(|| {
                EngineError::invalid(
                    "referrer",
                    format!("{digest}: image {name} has no such referrer (berth image referrers {name} lists them)"),
                )
            })?;
        let layer = rec.blobs.get(1).ok_or_else(|| {
            EngineError::invalid("referrer", format!("{digest} has no document layer"))
        })?;
        Ok(store.read_blob(layer)?)
    }
}
