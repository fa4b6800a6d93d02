//! The image policy: `policy.toml` in the config dir, a table per scope,
//! enforced by `pull`, `create`/`run` and `build`'s FROM.
//!
//! ```toml
//! ["127.0.0.1:5000/app"]          # one repository
//! signed_by = ["keys/team.pub"]   # a signature by one of these keys
//! max_severity = "HIGH"           # no finding above HIGH (the local OSV db)
//! require_sbom = true             # a signed SBOM attestation
//!
//! ["127.0.0.1:5000"]              # a whole registry (or "host/namespace")
//! signed_by = ["keys/ops.pub"]
//!
//! ["*"]                           # everything else
//! ```
//!
//! The most specific scope that covers the image's `registry/repository`
//! is its rule, alone (rules are not merged): the repository itself, then
//! its longest namespace prefix, then its registry, then `*`. Key paths
//! are relative to the config dir.
//!
//! Signatures are checked against the registry at pull time. The verified
//! signatures (and the SBOM attestation) are kept in the state root under
//! `supply/signatures/<manifest digest hex>.json`; `create`/`run` and
//! `build`'s FROM of a local image verify those again, offline, with the
//! rule's keys as they are now, against the digest the image was pulled
//! by. An image that was not pulled under the rule (imported, built,
//! pulled before the policy) has nothing kept and is refused until pulled
//! again. `--disable-policy` skips the checks for one command and leaves
//! an event (`policy disable`) in `berth events`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use model::{Digest, Reference};
use serde::{Deserialize, Serialize};
use supply::signing::payload::{Envelope, SimpleSigning};
use supply::vuln::Severity;

use crate::signing::PublicKey;
use crate::{Engine, EngineError, Result};

/// The policy file's name in the config dir.
pub const FILE: &str = "policy.toml";

/// SBOM predicate types an `require_sbom` rule accepts.
const SBOM_PREDICATES: [&str; 2] = ["https://spdx.dev/Document", "https://cyclonedx.org/bom"];

/// One rule as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    signed_by: Vec<PathBuf>,
    #[serde(default)]
    max_severity: Option<String>,
    #[serde(default)]
    require_sbom: bool,
}

/// The rule that applies to an image.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its scope as written (`registry/repo`, `registry`, `*`).
    pub scope: String,
    /// The policy file.
    pub file: PathBuf,
    /// Public keys, one of which must have signed the image.
    pub signed_by: Vec<PathBuf>,
    /// Findings above this severity are refused.
    pub max_severity: Option<Severity>,
    /// A signed SBOM attestation is required.
    pub require_sbom: bool,
}

impl Rule {
    fn refuse(&self, image: &str, why: impl std::fmt::Display) -> EngineError {
        EngineError::Policy {
            image: image.to_string(),
            rule: self.scope.clone(),
            file: self.file.clone(),
            reason: why.to_string(),
        }
    }

    fn keys(&self, image: &str) -> Result<Vec<(PathBuf, PublicKey)>> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        self.signed_by
            .iter()
            .map(|p| {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                };
                crate::signing::load_public_key(&path)
                    .map(|k| (path.clone(), k))
                    .map_err(|e| self.refuse(image, format!("its key cannot be used: {e}")))
            })
            .collect()
    }
}

/// The policy file, parsed.
#[derive(Debug, Clone)]
pub struct Policy {
    file: PathBuf,
    rules: BTreeMap<String, RuleSpec>,
}

impl Policy {
    /// `dir/policy.toml`, or `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<Policy>> {
        let file = dir.join(FILE);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(format!("reading {}", file.display()), e)),
        };
        let rules: BTreeMap<String, RuleSpec> = toml::from_str(&text).map_err(|e| {
            EngineError::invalid(
                file.display().to_string(),
                format!("{e}(see \"Policy\" in README.md for its format)"),
            )
        })?;
        for (scope, r) in &rules {
            if let Some(s) = &r.max_severity {
                s.parse::<Severity>().map_err(|e| {
                    EngineError::invalid(
                        file.display().to_string(),
                        format!("rule [{scope:?}]: max_severity: {e}"),
                    )
                })?;
            }
        }
        Ok(Some(Policy { file, rules }))
    }

    /// The most specific rule for `name` (`registry/repository`).
    pub fn rule_for(&self, name: &str) -> Option<Rule> {
        let covers =
            |scope: &str| scope == "*" || name == scope || name.starts_with(&format!("{scope}/"));
        let (scope, spec) = self
            .rules
            .iter()
            .filter(|(s, _)| covers(s))
            .max_by_key(|(s, _)| if *s == "*" { 0 } else { s.len() + 1 })?;
        Some(Rule {
            scope: scope.clone(),
            file: self.file.clone(),
            signed_by: spec.signed_by.clone(),
            max_severity: spec.max_severity.as_deref().and_then(|s| s.parse().ok()),
            require_sbom: spec.require_sbom,
        })
    }
}

/// What pull kept of an image's verified signatures and SBOM attestation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Kept {
    /// `registry/repository@sha256:…` verified.
    image: String,
    /// Simple-signing payloads and their signatures (base64).
    signatures: Vec<KeptSignature>,
    /// SBOM attestation envelopes.
    #[serde(default)]
    sbom: Vec<Envelope>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptSignature {
    payload: String,
    signature: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Engine {
    /// Skip the policy for the rest of this command (`--disable-policy`),
    /// leaving an event that says so.
    pub fn disable_policy(&self, command: &str, image: &str) {
        self.policy_off.set(true);
        self.emit(
            "policy",
            "disable",
            image,
            &[("command", command), ("image", image)],
        );
    }

    fn policy_rule(&self, name: &str) -> Result<Option<Rule>> {
        if self.policy_off.get() {
            return Ok(None);
        }
        Ok(Policy::load(&self.paths.config)?.and_then(|p| p.rule_for(name)))
    }

    fn kept_path(&self, d: &Digest) -> PathBuf {
        self.paths
            .root
            .join("supply")
            .join("signatures")
            .join(format!("{}.json", d.hex()))
    }

    /// Before a pull of `r`: its signature and SBOM attestation in the
    /// registry. Returns the rule and what to keep once pulled.
    pub(crate) fn policy_before_pull(&self, r: &Reference) -> Result<Option<(Rule, PrePull)>> {
        let Some(rule) = self.policy_rule(&r.name())? else {
            return Ok(None);
        };
        let shown = r.to_string();
        let mut kept = Kept::default();
        let mut digest = None;
        if !rule.signed_by.is_empty() {
            let keys = rule.keys(&shown)?;
            let mut last = None;
            for (_, k) in &keys {
                match self.verify_image(r, k, &BTreeMap::new()) {
                    Ok(v) => {
                        digest = Some(v.digest.clone());
                        kept.signatures
                            .extend(v.signatures.iter().map(|s| KeptSignature {
                                payload: b64().encode(&s.payload),
                                signature: b64().encode(&s.signature),
                            }));
                    }
                    Err(EngineError::Signing(e)) => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if digest.is_none() {
                let why = last.map(|e| e.to_string()).unwrap_or_default();
                return Err(rule.refuse(
                    &shown,
                    format!(
                        "it must be signed by one of {} and is not: {why}",
                        list(&rule.signed_by)
                    ),
                ));
            }
        }
        if rule.require_sbom {
            if rule.signed_by.is_empty() {
                return Err(rule.refuse(
                    &shown,
                    "require_sbom needs signed_by keys to verify the SBOM attestation with",
                ));
            }
            for (_, k) in rule.keys(&shown)? {
                for t in SBOM_PREDICATES {
                    match self.verify_attestations(r, &k, Some(t)) {
                        Ok(found) => {
                            kept.sbom.extend(found.into_iter().map(|a| a.envelope));
                        }
                        Err(EngineError::Signing(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if kept.sbom.is_empty() {
                return Err(rule.refuse(
                    &shown,
                    format!(
                        "it must carry an SBOM attestation (spdxjson or cyclonedx) signed by one of {} and has none: attach one with `berth attest --type spdxjson --predicate SBOM.json --key KEY {shown}`",
                        list(&rule.signed_by)
                    ),
                ));
            }
        }
        Ok(Some((rule, PrePull { kept })))
    }

    /// After a pull of `r` (`out`): the severity check on the pulled image,
    /// and keeping the verified signatures. A refused image that the pull
    /// brought is untagged again.
    pub(crate) fn policy_after_pull(
        &self,
        r: &Reference,
        rule: &Rule,
        pre: PrePull,
        out: &crate::distribution::PullOutcome,
    ) -> Result<()> {
        let shown = r.to_string();
        let check = (|| -> Result<()> {
            if !pre.kept.signatures.is_empty() || !pre.kept.sbom.is_empty() {
                let mut kept = pre.kept;
                kept.image = format!("{}@{}", r.name(), out.digest);
                // The claims must name what was pulled (the tag may have
                // moved between the check and the pull).
                let keys = rule.keys(&shown)?;
                self.check_kept(rule, &shown, &kept, &out.digest, &keys)?;
                let path = self.kept_path(&out.digest);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
                }
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, serde_json::to_vec_pretty(&kept).expect("json"))
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
            }
            self.check_severity(rule, &shown, &out.id.to_string())
        })();
        if let Err(e) = check {
            if out.new {
                let _ = self.remove_image(&shown, false);
            }
            return Err(e);
        }
        Ok(())
    }

    /// `create`/`run` and `build`'s FROM of the local image `name`.
    pub fn policy_for_local(&self, name: &str) -> Result<()> {
        if self.policy_off.get() {
            return Ok(());
        }
        let Some(policy) = Policy::load(&self.paths.config)? else {
            return Ok(());
        };
        let img = self.image(name)?;
        // The repository it is known by: the name given, else its first
        // tag or repo digest.
        let given: Option<Reference> = name.parse().ok();
        let by_name = given
            .as_ref()
            .filter(|g| img.repo_tags.iter().any(|t| t == *g))
            .map(|g| g.name());
        let repo = by_name
            .or_else(|| img.repo_tags.first().map(|t| t.name()))
            .or_else(|| {
                img.repo_digests
                    .first()
                    .and_then(|d| d.split_once('@').map(|(n, _)| n.to_string()))
            });
        let Some(rule) = policy.rule_for(repo.as_deref().unwrap_or("")) else {
            return Ok(());
        };
        let shown = name.to_string();
        if !rule.signed_by.is_empty() || rule.require_sbom {
            let pulled = repo.as_ref().and_then(|n| {
                img.repo_digests
                    .iter()
                    .find_map(|d| d.strip_prefix(&format!("{n}@")))
                    .and_then(|d| d.parse::<Digest>().ok())
            });
            let again = format!(
                "pull it with `berth pull {}` so berth verifies it and keeps its signatures",
                repo.as_deref().unwrap_or(name)
            );
            let Some(d) = pulled else {
                return Err(rule.refuse(
                    &shown,
                    format!("it was not pulled from its registry (imported, loaded or built here), so nothing attests it: {again}"),
                ));
            };
            let path = self.kept_path(&d);
            let kept: Kept = match std::fs::read(&path) {
                Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                    rule.refuse(&shown, format!("{} is damaged ({e}): {again}", path.display()))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(rule.refuse(
                        &shown,
                        format!("it was pulled without this rule, so no verified signature was kept: {again}"),
                    ))
                }
                Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
            };
            let keys = rule.keys(&shown)?;
            self.check_kept(&rule, &shown, &kept, &d, &keys)
                .map_err(|e| match e {
                    EngineError::Policy { .. } => e,
                    other => rule.refuse(&shown, format!("{other}: {again}")),
                })?;
        }
        self.check_severity(&rule, &shown, &img.id.to_string())
    }

    /// The kept signatures and SBOM envelopes verified again with `keys`
    /// against the digest `d`.
    fn check_kept(
        &self,
        rule: &Rule,
        shown: &str,
        kept: &Kept,
        d: &Digest,
        keys: &[(PathBuf, PublicKey)],
    ) -> Result<()> {
        let digest = d.to_string();
        if !rule.signed_by.is_empty() {
            let ok = kept.signatures.iter().any(|s| {
                let (Ok(p), Ok(sig)) = (b64().decode(&s.payload), b64().decode(&s.signature))
                else {
                    return false;
                };
                keys.iter().any(|(_, k)| k.verify(&p, &sig).is_ok())
                    && SimpleSigning::check(&p, &digest, &BTreeMap::new()).is_ok()
            });
            if !ok {
                return Err(rule.refuse(
                    shown,
                    format!(
                        "no signature of {digest} by one of {} (the image changed, or the keys did)",
                        list(&rule.signed_by)
                    ),
                ));
            }
        }
        if rule.require_sbom {
            let ok = kept.sbom.iter().any(|env| {
                keys.iter().any(|(_, k)| {
                    env.verify(k)
                        .ok()
                        .and_then(|st| supply::signing::payload::check_statement(&st, &digest).ok())
                        .is_some_and(|t| SBOM_PREDICATES.contains(&t.as_str()))
                })
            });
            if !ok {
                return Err(rule.refuse(
                    shown,
                    format!(
                        "no SBOM attestation of {digest} signed by one of {}",
                        list(&rule.signed_by)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_severity(&self, rule: &Rule, shown: &str, id: &str) -> Result<()> {
        let Some(max) = rule.max_severity else {
            return Ok(());
        };
        let out = self.scan(id, &Default::default()).map_err(|e| match e {
            EngineError::Vuln(e) => rule.refuse(
                shown,
                format!(
                    "max_severity = {max:?} needs the vulnerability database: {e}",
                    max = max.as_str()
                ),
            ),
            e => e,
        })?;
        let above: Vec<String> = out
            .report
            .findings
            .iter()
            .filter(|f| f.severity > max)
            .map(|f| format!("{} {} ({} {})", f.severity, f.id, f.package, f.installed))
            .collect();
        if !above.is_empty() {
            let n = above.len();
            let mut shown_findings: Vec<String> = above.into_iter().take(5).collect();
            if n > 5 {
                shown_findings.push(format!("and {} more", n - 5));
            }
            return Err(rule.refuse(
                shown,
                format!(
                    "{n} finding(s) above max_severity = \"{}\": {} (see `berth scan {shown}`)",
                    max.as_str(),
                    shown_findings.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

/// What a pull's policy check found before the pull.
#[derive(Debug)]
pub(crate) struct PrePull {
    kept: Kept,
}

fn list(keys: &[PathBuf]) -> String {
    keys.iter()
        .map(|k| k.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), text).unwrap();
        Policy::load(dir.path()).unwrap().unwrap()
    }

    #[test]
    fn the_most_specific_scope_wins() {
        let p = policy(
            r#"
["*"]
require_sbom = false
["reg.example:5000"]
max_severity = "HIGH"
["reg.example:5000/team"]
signed_by = ["team.pub"]
["reg.example:5000/team/app"]
signed_by = ["app.pub"]
"#,
        );
        assert_eq!(
            p.rule_for("reg.example:5000/team/app").unwrap().scope,
            "reg.example:5000/team/app"
        );
        assert_eq!(
            p.rule_for("reg.example:5000/team/web").unwrap().scope,
            "reg.example:5000/team"
        );
        assert_eq!(
            p.rule_for("reg.example:5000/teamster").unwrap().scope,
            "reg.example:5000"
        );
        assert_eq!(p.rule_for("docker.io/library/busybox").unwrap().scope, "*");
        let r = p.rule_for("reg.example:5000/x").unwrap();
        assert_eq!(r.max_severity, Some(Severity::High));
        assert!(r.signed_by.is_empty());
    }

    #[test]
    fn no_catch_all_means_no_rule_and_bad_files_are_named() {
        let p = policy("[\"a.example\"]\nrequire_sbom = true\n");
        assert!(p.rule_for("b.example/x").is_none());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            "[\"x\"]\nmax_severity = \"SEVERE\"\n",
        )
        .unwrap();
        let e = Policy::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("policy.toml") && e.contains("unknown severity"),
            "{e}"
        );
        std::fs::write(dir.path().join(FILE), "[\"x\"]\nsigned = []\n").unwrap();
        let e = Policy::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
    }
}
