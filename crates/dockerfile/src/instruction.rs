//! Instructions: their arguments and flags, parsed but not expanded (the
//! builder expands them with the stage's ARGs and ENV, BuildKit's rules).
use crate::Heredoc;

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The image (unexpanded).
    pub image: String,
    /// `AS name`.
    pub name: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// Its name.
    pub name: String,
    /// Its default, unexpanded (quotes still in place).
    pub default: Option<String>,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["a", "b"]`.
    Exec(Vec<String>),
    /// `a b` (run by the stage's SHELL).
    Shell(String),
}

/// `RUN [--mount=...] [--network=] [--security=] COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// Heredocs on the RUN line.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values, unexpanded.
    pub mounts: Vec<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--security`.
    pub security: Option<String>,
}

/// `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `ADD` (URLs and local tar archives handled) rather than `COPY`.
    pub add: bool,
    /// Sources, unexpanded (`<<NAME` names a heredoc).
    pub sources: Vec<String>,
    /// Destination, unexpanded.
    pub dest: String,
    /// Heredocs on the line.
    pub heredocs: Vec<Heredoc>,
    /// JSON form (no word splitting of the arguments).
    pub json: bool,
    /// `--from=stage|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `ADD --checksum=sha256:...`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [OPTIONS] CMD ...` (durations in ns, 0 = default).
    Check {
        /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
        test: Vec<String>,
        /// `--interval`.
        interval: i64,
        /// `--timeout`.
        timeout: i64,
        /// `--start-period`.
        start_period: i64,
        /// `--start-interval`.
        start_interval: i64,
        /// `--retries`.
        retries: i64,
    },
}

/// A Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM`.
    From(From),
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `ENV k=v ...` (unexpanded).
    Env(Vec<(String, String)>),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...` (unexpanded).
    Label(Vec<(String, String)>),
    /// `EXPOSE` (unexpanded words).
    Expose(Vec<String>),
    /// `COPY` / `ADD`.
    Copy(Copy),
    /// `WORKDIR` (unexpanded).
    Workdir(String),
    /// `USER` (unexpanded).
    User(String),
    /// `VOLUME` (unexpanded).
    Volume(Vec<String>),
    /// `STOPSIGNAL` (unexpanded).
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
    /// `ONBUILD INSTRUCTION ...` (the trigger as written).
    Onbuild(String),
    /// `MAINTAINER` (deprecated).
    Maintainer(String),
}

impl Instruction {
    /// The keyword, uppercase.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Copy(c) if c.add => "ADD",
            Instruction::Copy(_) => "COPY",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Shell(_) => "SHELL",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// (column, message).
type Fail = (usize, String);

fn fail<T>(column: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err((column, message.into()))
}

/// Parsed leading `--flag[=value]` options.
struct Flags {
    values: Vec<(String, Option<String>, usize)>,
}

impl Flags {
    /// Take the flags off the front of `args` (column `base` is where
    /// `args` starts in the line). Quotes in values are removed.
    fn take(args: &str, base: usize, escape: char) -> Result<(Flags, String, usize), Fail> {
        let mut values = Vec::new();
        let chars: Vec<char> = args.chars().collect();
        let mut i = 0;
        loop {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if !(i + 1 < chars.len() && chars[i] == '-' && chars[i + 1] == '-') {
                break;
            }
            let col = base + i;
            i += 2;
            let mut word = String::new();
            let mut quote: Option<char> = None;
            while i < chars.len() {
                let c = chars[i];
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => word.push(c),
                    None if c == '"' || c == '\'' => quote = Some(c),
                    None if c.is_whitespace() => break,
                    None if c == escape && i + 1 < chars.len() => {
                        i += 1;
                        word.push(chars[i]);
                    }
                    None => word.push(c),
                }
                i += 1;
            }
            if quote.is_some() {
                return fail(col, "unterminated quote in a flag");
            }
            if word.is_empty() {
                // `--` alone ends the flags.
                break;
            }
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word, None),
            };
            values.push((name, value, col));
        }
        let rest: String = chars[i..].iter().collect();
        Ok((Flags { values }, rest, base + i))
    }

    fn check(&self, keyword: &str, allowed: &[&str]) -> Result<(), Fail> {
        for (name, _, col) in &self.values {
            if !allowed.contains(&name.as_str()) {
                return fail(*col, format!("unknown flag: --{name} (for {keyword})"));
            }
        }
        Ok(())
    }

    fn string(&self, name: &str) -> Result<Option<String>, Fail> {
        let mut out = None;
        for (n, v, col) in &self.values {
            if n == name {
                match v {
                    Some(v) => out = Some(v.clone()),
                    None => return fail(*col, format!("missing a value on flag: --{name}")),
                }
            }
        }
        Ok(out)
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, Fail> {
        let mut out = Vec::new();
        for (n, v, col) in &self.values {
            if n == name {
                match v {
                    Some(v) => out.push(v.clone()),
                    None => return fail(*col, format!("missing a value on flag: --{name}")),
                }
            }
        }
        Ok(out)
    }

    fn bool(&self, name: &str) -> Result<bool, Fail> {
        let mut out = false;
        for (n, v, col) in &self.values {
            if n == name {
                out = match v.as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => {
                        return fail(
                            *col,
                            format!("expecting boolean value for flag --{name}, not {other:?}"),
                        )
                    }
                };
            }
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// `["a", "b"]` if `s` is a JSON array of strings.
fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Split at unquoted whitespace, keeping quotes and escapes in the words
/// (BuildKit's `parseWords`: expansion removes them later).
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c.is_whitespace() {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    continue;
                }
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `k=v k2="v 2"`, or the legacy `k v` (one pair, the rest of the line).
fn name_values(
    keyword: &str,
    args: &str,
    escape: char,
    col: usize,
) -> Result<Vec<(String, String)>, Fail> {
    let words = split_words(args, escape);
    let Some(first) = words.first() else {
        return fail(col, format!("{keyword} requires at least one argument"));
    };
    if !first.contains('=') {
        let rest = args.trim_start()[first.len()..].trim_start();
        if rest.is_empty() {
            return fail(
                col,
                format!("{keyword} names can not be blank: {keyword} {first} needs a value"),
            );
        }
        return Ok(vec![(first.clone(), rest.to_string())]);
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => fail(col, format!("{keyword} names can not be blank")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => fail(
                col,
                format!("syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ),
        })
        .collect()
}

fn command(keyword: &str, args: &str, col: usize) -> Result<Command, Fail> {
    if let Some(v) = json_array(args) {
        return Ok(Command::Exec(v));
    }
    if args.trim().is_empty() {
        return fail(col, format!("{keyword} requires at least one argument"));
    }
    Ok(Command::Shell(args.trim().to_string()))
}

fn duration(flags: &Flags, name: &str) -> Result<i64, Fail> {
    match flags.string(name)? {
        None => Ok(0),
        Some(v) => {
            let ns = model::duration::parse(&v).map_err(|e| (1, format!("--{name}: {e}")))?;
            if ns != 0 && ns < 1_000_000 {
                return fail(1, format!("--{name} cannot be less than 1ms"));
            }
            Ok(ns)
        }
    }
}

fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parse one logical line.
pub(crate) fn parse_instruction(
    text: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
) -> Result<Instruction, Fail> {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let keyword = word.to_ascii_uppercase();
    let args_col = lead + word.len() + 2;
    let (flags, args, col) = Flags::take(rest, args_col, escape)?;
    let args = args.trim();
    let no_flags = |flags: &Flags| -> Result<(), Fail> { flags.check(&keyword, &[]) };
    Ok(match keyword.as_str() {
        "FROM" => {
            flags.check("FROM", &["platform"])?;
            let words: Vec<&str> = args.split_whitespace().collect();
            let (image, name) = match words.as_slice() {
                [image] => (image.to_string(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    if !valid_stage_name(name) {
                        return fail(
                            col,
                            format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                        );
                    }
                    (image.to_string(), Some(name.to_string()))
                }
                [] => return fail(col, "FROM requires an image: FROM image[:tag] [AS name]"),
                _ => {
                    return fail(
                        col,
                        "FROM requires either one or three arguments: FROM image [AS name]",
                    )
                }
            };
            Instruction::From(From {
                image,
                name,
                platform: flags.string("platform")?,
            })
        }
        "RUN" => {
            flags.check("RUN", &["mount", "network", "security"])?;
            let command = if heredocs.is_empty() {
                command("RUN", args, col)?
            } else {
                Command::Shell(args.to_string())
            };
            Instruction::Run(Run {
                command,
                heredocs,
                mounts: flags.strings("mount")?,
                network: flags.string("network")?,
                security: flags.string("security")?,
            })
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(&flags)?;
            let c = command(&keyword, args, col)?;
            if keyword == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "ENV" => {
            no_flags(&flags)?;
            Instruction::Env(name_values("ENV", args, escape, col)?)
        }
        "LABEL" => {
            no_flags(&flags)?;
            Instruction::Label(name_values("LABEL", args, escape, col)?)
        }
        "ARG" => {
            no_flags(&flags)?;
            let words = split_words(args, escape);
            if words.is_empty() {
                return fail(col, "ARG requires at least one argument");
            }
            Instruction::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => ArgDecl {
                            name: k.to_string(),
                            default: Some(v.to_string()),
                        },
                        None => ArgDecl {
                            name: w,
                            default: None,
                        },
                    })
                    .collect(),
            )
        }
        "EXPOSE" => {
            no_flags(&flags)?;
            let words = split_words(args, escape);
            if words.is_empty() {
                return fail(col, "EXPOSE requires at least one argument");
            }
            Instruction::Expose(words)
        }
        "COPY" | "ADD" => {
            let add = keyword == "ADD";
            if add {
                flags.check(
                    "ADD",
                    &[
                        "chown",
                        "chmod",
                        "link",
                        "exclude",
                        "checksum",
                        "keep-git-dir",
                    ],
                )?;
            } else {
                flags.check(
                    "COPY",
                    &["from", "chown", "chmod", "link", "parents", "exclude"],
                )?;
            }
            let (mut words, json) = match json_array(args) {
                Some(v) => (v, true),
                None => (split_words(args, escape), false),
            };
            if words.len() < 2 {
                return fail(
                    col,
                    format!("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"),
                );
            }
            let dest = words.pop().unwrap_or_default();
            Instruction::Copy(Copy {
                add,
                sources: words,
                dest,
                heredocs,
                json,
                from: flags.string("from")?,
                chown: flags.string("chown")?,
                chmod: flags.string("chmod")?,
                link: flags.bool("link")?,
                parents: flags.bool("parents")?,
                exclude: flags.strings("exclude")?,
                checksum: flags.string("checksum")?,
                keep_git_dir: flags.bool("keep-git-dir")?,
            })
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags(&flags)?;
            if args.is_empty() {
                return fail(col, format!("{keyword} requires exactly one argument"));
            }
            if keyword != "MAINTAINER"
                && keyword != "WORKDIR"
                && split_words(args, escape).len() != 1
            {
                return fail(col, format!("{keyword} requires exactly one argument"));
            }
            let a = args.to_string();
            match keyword.as_str() {
                "WORKDIR" => Instruction::Workdir(a),
                "USER" => Instruction::User(a),
                "STOPSIGNAL" => Instruction::StopSignal(a),
                _ => Instruction::Maintainer(a),
            }
        }
        "VOLUME" => {
            no_flags(&flags)?;
            let v = json_array(args).unwrap_or_else(|| split_words(args, escape));
            if v.is_empty() || v.iter().any(|p| p.trim().is_empty()) {
                return fail(col, "VOLUME specified can not be an empty string");
            }
            Instruction::Volume(v)
        }
        "SHELL" => {
            no_flags(&flags)?;
            match json_array(args) {
                Some(v) if !v.is_empty() => Instruction::Shell(v),
                _ => return fail(col, "SHELL requires the arguments to be in JSON form: SHELL [\"executable\", \"parameters\"]"),
            }
        }
        "HEALTHCHECK" => {
            flags.check(
                "HEALTHCHECK",
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
            )?;
            let (first, cmd) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            if first.eq_ignore_ascii_case("NONE") {
                if !cmd.trim().is_empty() || !flags.is_empty() {
                    return fail(col, "HEALTHCHECK NONE takes no other arguments");
                }
                Instruction::Healthcheck(Healthcheck::None)
            } else if first.eq_ignore_ascii_case("CMD") {
                let test = match command("HEALTHCHECK CMD", cmd, col)? {
                    Command::Exec(v) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v);
                        t
                    }
                    Command::Shell(s) => vec!["CMD-SHELL".to_string(), s],
                };
                let retries = match flags.string("retries")? {
                    None => 0,
                    Some(r) => match r.parse::<i64>() {
                        Ok(n) if n >= 0 => n,
                        _ => {
                            return fail(
                                col,
                                format!("--retries {r:?}: must be a number of 0 or more"),
                            )
                        }
                    },
                };
                let at = |e: Fail| (col, e.1);
                Instruction::Healthcheck(Healthcheck::Check {
                    test,
                    interval: duration(&flags, "interval").map_err(at)?,
                    timeout: duration(&flags, "timeout").map_err(at)?,
                    start_period: duration(&flags, "start-period").map_err(at)?,
                    start_interval: duration(&flags, "start-interval").map_err(at)?,
                    retries,
                })
            } else {
                return fail(
                    col,
                    "HEALTHCHECK needs CMD or NONE: HEALTHCHECK [OPTIONS] CMD command",
                );
            }
        }
        "ONBUILD" => {
            no_flags(&flags)?;
            let inner = args
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match inner.as_str() {
                "" => return fail(col, "ONBUILD requires an instruction"),
                "ONBUILD" => {
                    return fail(col, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
                }
                "FROM" | "MAINTAINER" => {
                    return fail(col, format!("{inner} isn't allowed as an ONBUILD trigger"))
                }
                _ => {}
            }
            // The trigger must itself parse.
            parse_instruction(args, Vec::new(), escape).map_err(|(c, m)| (col + c - 1, m))?;
            Instruction::Onbuild(args.to_string())
        }
        "" => return fail(1, "empty instruction"),
        other => return fail(lead + 1, format!("unknown instruction: {other}")),
    })
}
