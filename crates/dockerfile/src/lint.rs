//! Checks on a parsed Dockerfile, with BuildKit's rule names where they
//! exist (`FromAsCasing`, `StageNameCasing`, `DuplicateStageName`,
//! `MaintainerDeprecated`, `JSONArgsRecommended`, `WorkdirRelativePath`,
//! `SecretsUsedInArgOrEnv`) and berth's own from the seeds' checklist
//! (`FinalStageRunsAsRoot`, `NoHealthcheck`, `UnpinnedBaseImage`).
//! `# check=skip=Rule1,Rule2` (or `skip=all`) turns rules off.
use crate::{Dockerfile, Instruction};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The rule's name.
    pub rule: &'static str,
    /// Where (1-based line).
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (line {})", self.rule, self.message, self.line)
    }
}

const SECRET_WORDS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "credential",
    "private_key",
];

fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| n.contains(w))
}

/// The rules `# check=skip=` turns off (`all` for every rule).
fn skipped(df: &Dockerfile) -> Vec<String> {
    let Some(c) = &df.directives.check else {
        return Vec::new();
    };
    c.split(';')
        .filter_map(|part| part.trim().strip_prefix("skip="))
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect()
}

/// Run every check; `target` is the stage that becomes the image.
pub fn lint(df: &Dockerfile, target: usize) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut names = std::collections::BTreeMap::new();
    let stage_names: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
    for stage in &df.stages {
        let words: Vec<&str> = stage.original.split_whitespace().collect();
        if let (Some(from), Some(as_)) = (
            words.first(),
            words
                .iter()
                .rev()
                .nth(1)
                .filter(|w| w.eq_ignore_ascii_case("as")),
        ) {
            let upper = |s: &str| s.chars().all(|c| !c.is_ascii_lowercase());
            if upper(from) != upper(as_) {
                out.push(Warning {
                    rule: "FromAsCasing",
                    line: stage.line,
                    message: format!("'{as_}' and '{from}' keywords' casing do not match"),
                });
            }
            if let Some(raw) = words.last() {
                if raw.chars().any(|c| c.is_ascii_uppercase()) {
                    out.push(Warning {
                        rule: "StageNameCasing",
                        line: stage.line,
                        message: format!("stage name '{raw}' should be lowercase"),
                    });
                }
            }
        }
        if let Some(n) = &stage.name {
            if let Some(first) = names.insert(n.clone(), stage.line) {
                out.push(Warning {
                    rule: "DuplicateStageName",
                    line: stage.line,
                    message: format!("duplicate stage name {n:?}, first defined on line {first}"),
                });
            }
        }
        let base = stage.base.to_ascii_lowercase();
        let is_stage = stage_names.contains(&base);
        if !is_stage && base != "scratch" && !base.contains('$') && !base.contains('@') {
            let last = base.rsplit('/').next().unwrap_or(&base);
            match last.split_once(':') {
                None => out.push(Warning {
                    rule: "UnpinnedBaseImage",
                    line: stage.line,
                    message: format!(
                        "base image {} has no tag: pin a version (or a digest)",
                        stage.base
                    ),
                }),
                Some((_, "latest")) => out.push(Warning {
                    rule: "UnpinnedBaseImage",
                    line: stage.line,
                    message: format!(
                        "base image {} uses :latest: pin a version (or a digest)",
                        stage.base
                    ),
                }),
                _ => {}
            }
        }
        let mut workdir_absolute = false;
        for ins in &stage.instructions {
            match &ins.instruction {
                Instruction::Maintainer(_) => out.push(Warning {
                    rule: "MaintainerDeprecated",
                    line: ins.line,
                    message: "MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=…".into(),
                }),
                Instruction::Cmd(crate::Command::Shell(_))
                | Instruction::Entrypoint(crate::Command::Shell(_)) => out.push(Warning {
                    rule: "JSONArgsRecommended",
                    line: ins.line,
                    message: format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        ins.instruction.keyword()
                    ),
                }),
                Instruction::Workdir(w) => {
                    if w.starts_with('/') || w.starts_with('$') {
                        workdir_absolute = true;
                    } else if !workdir_absolute {
                        out.push(Warning {
                            rule: "WorkdirRelativePath",
                            line: ins.line,
                            message: format!(
                                "relative workdir {w:?} can have unexpected results if the base image changes"
                            ),
                        });
                    }
                }
                Instruction::Env(pairs) => {
                    for (k, _) in pairs {
                        if looks_secret(k) {
                            out.push(Warning {
                                rule: "SecretsUsedInArgOrEnv",
                                line: ins.line,
                                message: format!(
                                    "do not use ARG or ENV instructions for sensitive data (ENV {k:?}): use RUN --mount=type=secret"
                                ),
                            });
                        }
                    }
                }
                Instruction::Arg(decls) => {
                    for a in decls {
                        if looks_secret(&a.name) {
                            out.push(Warning {
                                rule: "SecretsUsedInArgOrEnv",
                                line: ins.line,
                                message: format!(
                                    "do not use ARG or ENV instructions for sensitive data (ARG {:?}): use RUN --mount=type=secret",
                                    a.name
                                ),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(stage) = df.stages.get(target) {
        let user = stage
            .instructions
            .iter()
            .rev()
            .find_map(|i| match &i.instruction {
                Instruction::User(u) => Some(u.clone()),
                _ => None,
            });
        let root = match &user {
            None => true,
            Some(u) => {
                let name = u.split(':').next().unwrap_or("");
                name == "root" || name == "0"
            }
        };
        if root {
            out.push(Warning {
                rule: "FinalStageRunsAsRoot",
                line: stage.line,
                message: "the final stage runs as root: add a USER (a non-root user)".into(),
            });
        }
        let has_health = stage
            .instructions
            .iter()
            .any(|i| matches!(i.instruction, Instruction::Healthcheck(_)));
        if !has_health {
            out.push(Warning {
                rule: "NoHealthcheck",
                line: stage.line,
                message: "the final stage has no HEALTHCHECK".into(),
            });
        }
    }
    let skip = skipped(df);
    if skip.iter().any(|s| s == "all") {
        return Vec::new();
    }
    out.retain(|w| !skip.iter().any(|s| s == w.rule));
    out.sort_by_key(|w| w.line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        let df = crate::parse(text).unwrap();
        let t = df.stages.len() - 1;
        lint(&df, t).into_iter().map(|w| w.rule).collect()
    }

    #[test]
    fn rules_fire_where_they_should() {
        let r = rules(
            "FROM alpine as Build\nMAINTAINER me\nWORKDIR app\nENV API_TOKEN=x\nARG DB_PASSWORD\nCMD echo hi\nFROM alpine:3.19 AS build\n",
        );
        for want in [
            "FromAsCasing",
            "StageNameCasing",
            "UnpinnedBaseImage",
            "MaintainerDeprecated",
            "WorkdirRelativePath",
            "SecretsUsedInArgOrEnv",
            "JSONArgsRecommended",
            "DuplicateStageName",
            "FinalStageRunsAsRoot",
            "NoHealthcheck",
        ] {
            assert!(r.contains(&want), "{want}: {r:?}");
        }
        let clean = rules(
            "FROM alpine:3.19 AS build\nWORKDIR /app\nFROM build\nUSER app\nHEALTHCHECK CMD true\nCMD [\"x\"]\n",
        );
        assert!(clean.is_empty(), "{clean:?}");
        let skipped = rules("# check=skip=NoHealthcheck,FinalStageRunsAsRoot\nFROM alpine:3.19\n");
        assert!(skipped.is_empty(), "{skipped:?}");
        assert!(rules("# check=skip=all\nFROM alpine\nMAINTAINER x\n").is_empty());
    }
}
