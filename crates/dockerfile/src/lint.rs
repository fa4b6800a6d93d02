//! Checks on a parsed Dockerfile, with BuildKit's rule names where they
//! exist (`FromAsCasing`, `StageNameCasing`, `DuplicateStageName`,
//! `MaintainerDeprecated`, `JSONArgsRecommended`, `WorkdirRelativePath`,
//! `SecretsUsedInArgOrEnv`) and berth's own from the seeds' checklist
//! (`FinalStageRunsAsRoot`, `NoHealthcheck`, `UnpinnedBaseImage`,
//! `AptNoInstallRecommends`, `AptListsNotCleaned`).
//! `# check=skip=Rule1,Rule2` (or `skip=all`) turns rules off.
//! [`report`] prints them as `docker build --check` does (BuildKit's
//! `frontend/subrequests/lint` and buildx's `printResult`).
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

/// BuildKit's rules (they have a page under
/// <https://docs.docker.com/go/dockerfile/rule/>); berth's own have none.
const BUILDKIT_RULES: &[&str] = &[
    "FromAsCasing",
    "StageNameCasing",
    "DuplicateStageName",
    "MaintainerDeprecated",
    "JSONArgsRecommended",
    "WorkdirRelativePath",
    "SecretsUsedInArgOrEnv",
    "UndefinedVar",
];

impl Warning {
    /// The rule's documentation page, for BuildKit's rules:
    /// `https://docs.docker.com/go/dockerfile/rule/<kebab-case name>/`.
    pub fn url(&self) -> Option<String> {
        if !BUILDKIT_RULES.contains(&self.rule) {
            return None;
        }
        let mut kebab = String::new();
        let chars: Vec<char> = self.rule.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            // "JSONArgs" -> "json-args": a capital starts a word when it
            // follows a lowercase letter or precedes one after a capital run.
            if c.is_ascii_uppercase()
                && i > 0
                && (chars[i - 1].is_ascii_lowercase()
                    || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()))
            {
                kebab.push('-');
            }
            kebab.push(c.to_ascii_lowercase());
        }
        Some(format!(
            "https://docs.docker.com/go/dockerfile/rule/{kebab}/"
        ))
    }
}

/// The findings as `docker build --check` prints them: the count first
/// (`Check complete, 1 warning has been found!`, `… N warnings have been
/// found!`, or `Check complete, no warnings found.`), then per warning a
/// blank line, `WARNING: Rule - URL`, the message and the lines around it
/// with `>>>` on the instruction (BuildKit's `errdefs.Source.Print`).
/// `docker build --check` exits 1 when anything was found.
pub fn report(warnings: &[Warning], filename: &str, source: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match warnings.len() {
        0 => {
            out.push_str("Check complete, no warnings found.\n");
            return out;
        }
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => {
            let _ = writeln!(out, "Check complete, {n} warnings have been found!");
        }
    }
    let lines: Vec<&str> = source.split('\n').collect();
    for w in warnings {
        let _ = write!(out, "\nWARNING: {}", w.rule);
        if let Some(u) = w.url() {
            let _ = write!(out, " - {u}");
        }
        let _ = writeln!(out, "\n{}", w.message);
        if w.line < 1 || w.line > lines.len() {
            continue;
        }
        // Four lines of context around a one-line range, as BuildKit pads.
        let (mut start, mut end, mut p) = (w.line, w.line, 0);
        while p < 4 {
            if start > 1 {
                start -= 1;
                p += 1;
            }
            if end != lines.len() {
                end += 1;
                p += 1;
            }
            p += 1;
        }
        let _ = writeln!(out, "{filename}:{}\n--------------------", w.line);
        for (i, text) in lines.iter().enumerate().take(end).skip(start - 1) {
            let pfx = if i + 1 == w.line { ">>>" } else { "   " };
            let _ = writeln!(out, " {:>3} | {pfx} {text}", i + 1);
        }
        out.push_str("--------------------\n");
    }
    out
}

/// The shell text of a RUN (exec form joined), for the apt rules.
fn run_text(run: &crate::instruction::Run) -> String {
    let mut t = match &run.command {
        crate::Command::Shell(s) => s.clone(),
        crate::Command::Exec(v) => v.join(" "),
    };
    for h in &run.heredocs {
        t.push('\n');
        t.push_str(&h.content);
    }
    t
}

/// `apt-get install` without `--no-install-recommends` (or `apt install`),
/// and an install whose RUN does not remove `/var/lib/apt/lists`: the
/// image carries packages and package lists it does not need. An earlier
/// RUN of the stage that set `APT::Install-Recommends` (an apt.conf.d
/// file) turns the first rule off (`recommends_off`); a cache or tmpfs
/// mount on `/var/lib/apt` keeps the lists out of the layer.
fn apt_rules(
    run: &crate::instruction::Run,
    line: usize,
    recommends_off: &mut bool,
    out: &mut Vec<Warning>,
) {
    let text = run_text(run);
    let text = text.as_str();
    if text.contains("APT::Install-Recommends") && !text.contains("apt-get install") {
        *recommends_off = true;
    }
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .filter(|w| !w.is_empty())
        .collect();
    // `apt-get [-y -q …] install`: the first word after apt-get that is
    // not an option.
    let installs = words.iter().enumerate().any(|(i, w)| {
        let apt = *w == "apt-get" || *w == "apt" || w.ends_with("/apt-get");
        apt && words[i + 1..].iter().find(|w| !w.starts_with('-')) == Some(&"install")
    });
    if !installs {
        return;
    }
    let no_rec = words.iter().any(|w| {
        *w == "--no-install-recommends"
            || w.starts_with("-oAPT::Install-Recommends=")
            || w.starts_with("APT::Install-Recommends=")
    });
    if !no_rec && !*recommends_off {
        out.push(Warning {
            rule: "AptNoInstallRecommends",
            line,
            message: "apt-get install without --no-install-recommends installs recommended packages the image does not need: add --no-install-recommends".into(),
        });
    }
    let removes_lists =
        words.contains(&"rm") && words.iter().any(|w| w.starts_with("/var/lib/apt/lists"));
    let lists_mounted = run.mounts.iter().any(|m| {
        m.split(',').any(|kv| {
            matches!(kv.split_once('='), Some(("target" | "dst" | "destination", t)) if t.trim_end_matches('/') == "/var/lib/apt" || t.starts_with("/var/lib/apt/lists"))
        })
    });
    let cleaned = removes_lists || lists_mounted;
    if !cleaned {
        out.push(Warning {
            rule: "AptListsNotCleaned",
            line,
            message: "apt-get install leaves the package lists in the layer: end the same RUN with `&& rm -rf /var/lib/apt/lists/*`".into(),
        });
    }
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
        let mut recommends_off = false;
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
                Instruction::Run(run) => apt_rules(run, ins.line, &mut recommends_off, &mut out),
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

    #[test]
    fn apt_rules_fire_and_keep() {
        let base = "FROM debian:12\nUSER app\nHEALTHCHECK CMD true\n";
        let broken = rules(&format!(
            "{base}RUN apt-get update && apt-get -y install curl\n"
        ));
        assert!(broken.contains(&"AptNoInstallRecommends"), "{broken:?}");
        assert!(broken.contains(&"AptListsNotCleaned"), "{broken:?}");
        let kept = rules(&format!(
            "{base}RUN apt-get update \\\n && apt-get install -y --no-install-recommends curl \\\n && rm -rf /var/lib/apt/lists/*\n"
        ));
        assert!(kept.is_empty(), "{kept:?}");
        // apt.conf.d set by an earlier RUN; the lists on a cache mount.
        let conf = rules(&format!(
            "{base}RUN echo 'APT::Install-Recommends \"false\";' > /etc/apt/apt.conf.d/no-rec\nRUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked apt-get update && apt-get install -y curl\n"
        ));
        assert!(conf.is_empty(), "{conf:?}");
        // Naming the lists without removing them is no cleanup.
        let ls = rules(&format!(
            "{base}RUN apt-get install -y --no-install-recommends curl && ls /var/lib/apt/lists\n"
        ));
        assert_eq!(ls, ["AptListsNotCleaned"]);
        // Not an install: no finding.
        assert!(
            rules(&format!("{base}RUN apt-get update\nRUN apt-get -q clean\n"))
                .iter()
                .all(|r| !r.starts_with("Apt"))
        );
    }

    #[test]
    fn report_is_buildkits() {
        // BuildKit pads a one-line range with 4 lines, taken from both
        // sides while there are any: line 1 shows lines 1-3.
        let text =
            "FROM alpine:3.19 as base\nRUN true\nUSER app\nHEALTHCHECK CMD true\nCMD [\"x\"]\n";
        let df = crate::parse(text).unwrap();
        let w = lint(&df, 0);
        assert_eq!(w.len(), 1, "{w:?}");
        let r = report(&w, "Dockerfile", text);
        assert_eq!(
            r,
            "Check complete, 1 warning has been found!\n\
             \n\
             WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n\
             'as' and 'FROM' keywords' casing do not match\n\
             Dockerfile:1\n\
             --------------------\n   \
             1 | >>> FROM alpine:3.19 as base\n   \
             2 |     RUN true\n   \
             3 |     USER app\n\
             --------------------\n"
        );
        let json = Warning {
            rule: "JSONArgsRecommended",
            line: 1,
            message: String::new(),
        };
        assert_eq!(
            json.url().unwrap(),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            report(&[], "Dockerfile", ""),
            "Check complete, no warnings found.\n"
        );
    }
}
