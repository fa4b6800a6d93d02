//! The Dockerfile language, parsed as BuildKit parses it: parser directives
//! (`# syntax=`, `# escape=`, `# check=`), line continuations with comments
//! and blank lines inside them, heredocs (`<<EOF`, `<<-EOF`, quoted
//! delimiters, several on one line), every instruction with its flags, and
//! the expansion rules (`expand`). Pure: no I/O; errors carry the line and
//! column they point at.
#![forbid(unsafe_code)]

/// Variable expansion and word splitting.
pub mod expand;
mod instruction;
/// Checks (BuildKit's rule names and berth's).
pub mod lint;

pub use instruction::*;

/// A parse error at a position of the Dockerfile (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// `file:line:column: message`.
    pub fn in_file(&self, file: &str) -> String {
        format!("{file}:{self}")
    }
}

/// Parser directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` (accepted and ignored: berth has one frontend).
    pub syntax: Option<String>,
    /// `# escape=` (default `\`).
    pub escape: char,
    /// `# check=` (lint configuration, e.g. `skip=JSONArgsRecommended`).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// Its delimiter word (`EOF`).
    pub name: String,
    /// The lines between the instruction and the delimiter, each ending
    /// with `\n` (leading tabs removed for `<<-`).
    pub content: String,
    /// Unquoted delimiter: `$VAR`s in the content are expanded.
    pub expand: bool,
}

/// One instruction where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// First line (1-based).
    pub line: usize,
    /// Last line of the instruction itself (heredoc bodies follow).
    pub end_line: usize,
    /// The instruction as written (continuations joined), for history and
    /// error messages.
    pub original: String,
    /// The instruction.
    pub instruction: Instruction,
}

/// A build stage: `FROM` and what follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Position among the stages.
    pub index: usize,
    /// `AS name` (lowercased, as BuildKit compares them).
    pub name: Option<String>,
    /// The `FROM` image, unexpanded (`scratch`, a stage name, an image).
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Where `FROM` is.
    pub line: usize,
    /// The `FROM` line as written.
    pub original: String,
    /// The instructions after it.
    pub instructions: Vec<Located>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub global_args: Vec<(usize, ArgDecl)>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// Parse-time warnings (line, message): empty continuation lines...
    pub warnings: Vec<(usize, String)>,
}

impl Dockerfile {
    /// The stage a name (or index) refers to.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// A logical line: an instruction with its continuations joined.
struct Logical {
    line: usize,
    /// Columns of indentation before the keyword.
    indent: usize,
    end_line: usize,
    text: String,
    heredocs: Vec<Heredoc>,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column,
        message: message.into(),
    }
}

/// Read the directives at the top of the file; returns them and the
/// index of the first line that is not one.
fn directives(lines: &[&str]) -> Result<(Directives, usize), ParseError> {
    let mut d = Directives::default();
    let mut seen = std::collections::BTreeSet::new();
    for (i, raw) in lines.iter().enumerate() {
        let t = raw.trim();
        let Some(body) = t.strip_prefix('#') else {
            return Ok((d, i));
        };
        let Some((k, v)) = body.split_once('=') else {
            return Ok((d, i));
        };
        let key = k.trim().to_ascii_lowercase();
        let value = v.trim().to_string();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok((d, i));
        }
        match key.as_str() {
            "syntax" | "escape" | "check" => {
                if !seen.insert(key.clone()) {
                    return Err(err(
                        i + 1,
                        1,
                        format!("only one {key} parser directive can be used"),
                    ));
                }
            }
            // An unknown directive is a comment and ends the directives.
            _ => return Ok((d, i)),
        }
        match key.as_str() {
            "syntax" => d.syntax = Some(value),
            "check" => d.check = Some(value),
            _ => {
                d.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            i + 1,
                            1,
                            format!("invalid escape token {value:?} does not match ` or \\"),
                        ))
                    }
                }
            }
        }
    }
    Ok((d, lines.len()))
}

/// Instructions whose lines may start heredocs.
fn heredoc_capable(keyword: &str) -> bool {
    matches!(keyword, "RUN" | "COPY" | "ADD")
}

/// The heredoc markers of a line, in order: (name, strip tabs, expand).
fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i + 1 < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c == '<'
            && chars[i + 1] == '<'
            && chars.get(i + 2) != Some(&'<')
            && (i == 0 || chars[i - 1] != '<')
        {
            let mut j = i + 2;
            let strip = chars.get(j) == Some(&'-');
            if strip {
                j += 1;
            }
            let q = chars.get(j).copied().filter(|c| *c == '"' || *c == '\'');
            if q.is_some() {
                j += 1;
            }
            let start = j;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j > start && !chars[start].is_ascii_digit() {
                let name: String = chars[start..j].iter().collect();
                let closed = match q {
                    Some(qc) => chars.get(j) == Some(&qc),
                    None => true,
                };
                if closed {
                    if q.is_some() {
                        j += 1;
                    }
                    out.push((name, strip, q.is_none()));
                    i = j;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// Split the text into logical lines (instructions), skipping comments
/// and blank lines, joining continuations and collecting heredocs.
fn logical_lines(
    lines: &[&str],
    start: usize,
    escape: char,
    warnings: &mut Vec<(usize, String)>,
) -> Result<Vec<Logical>, ParseError> {
    let mut out = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let raw = lines[i];
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let first = i;
        let indent = raw.len() - t.len();
        let mut text = String::new();
        let mut cur = raw.trim_start().to_string();
        loop {
            let trimmed = cur.trim_end();
            if let Some(body) = trimmed.strip_suffix(escape) {
                text.push_str(body);
                i += 1;
                // Comments and blank lines inside a continuation are skipped.
                let mut blank_run = false;
                loop {
                    if i >= lines.len() {
                        break;
                    }
                    let next = lines[i].trim_start();
                    if next.starts_with('#') {
                        i += 1;
                        continue;
                    }
                    if next.trim().is_empty() {
                        blank_run = true;
                        i += 1;
                        continue;
                    }
                    break;
                }
                if blank_run {
                    warnings.push((
                        i,
                        "empty continuation line (deprecated: remove the blank line)".into(),
                    ));
                }
                if i >= lines.len() {
                    break;
                }
                cur = lines[i].to_string();
                continue;
            }
            text.push_str(&cur);
            break;
        }
        let end_line = i.min(lines.len().saturating_sub(1));
        i = end_line + 1;
        let keyword = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let mut heredocs = Vec::new();
        if heredoc_capable(&keyword) {
            for (name, strip, expand) in heredoc_markers(&text) {
                let mut content = String::new();
                let mut found = false;
                while i < lines.len() {
                    let mut l = lines[i];
                    i += 1;
                    if strip {
                        l = l.trim_start_matches('\t');
                    }
                    if l == name {
                        found = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !found {
                    return Err(err(
                        first + 1,
                        1,
                        format!("unterminated heredoc: no line {name:?} closes it"),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        out.push(Logical {
            line: first + 1,
            indent,
            end_line: end_line + 1,
            text,
            heredocs,
        });
    }
    Ok(out)
}

/// Parse one instruction line (an `ONBUILD` trigger stored in an image).
pub fn parse_line(text: &str, escape: char) -> Result<Instruction, ParseError> {
    instruction::parse_instruction(text, Vec::new(), escape).map_err(|(col, m)| err(1, col, m))
}

/// Parse a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let (directives, start) = directives(&lines)?;
    let mut warnings = Vec::new();
    let logical = logical_lines(&lines, start, directives.escape, &mut warnings)?;
    let mut df = Dockerfile {
        directives,
        global_args: Vec::new(),
        stages: Vec::new(),
        warnings,
    };
    for l in logical {
        let instruction = instruction::parse_instruction(&l.text, l.heredocs, df.directives.escape)
            .map_err(|(col, m)| err(l.line, col + l.indent, m))?;
        match instruction {
            Instruction::From(from) => {
                let index = df.stages.len();
                df.stages.push(Stage {
                    index,
                    name: from.name.map(|n| n.to_ascii_lowercase()),
                    base: from.image,
                    platform: from.platform,
                    line: l.line,
                    original: l.text.clone(),
                    instructions: Vec::new(),
                });
            }
            Instruction::Arg(args) if df.stages.is_empty() => {
                df.global_args.extend(args.into_iter().map(|a| (l.line, a)));
            }
            other => {
                let Some(stage) = df.stages.last_mut() else {
                    return Err(err(
                        l.line,
                        1,
                        format!(
                            "{} before the first FROM: only ARG may come before FROM",
                            other.keyword()
                        ),
                    ));
                };
                stage.instructions.push(Located {
                    line: l.line,
                    end_line: l.end_line,
                    original: l.text.clone(),
                    instruction: other,
                });
            }
        }
    }
    if df.stages.is_empty() {
        return Err(err(1, 1, "the Dockerfile has no FROM instruction"));
    }
    Ok(df)
}

#[cfg(test)]
mod tests;
