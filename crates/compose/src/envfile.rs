//! `.env` and `env_file:` files, read by the rules of docker compose
//! (compose-go's `dotenv` package): `KEY=VAL` (or `KEY: VAL`) statements,
//! `#` comment lines, an optional `export ` prefix, single-quoted values
//! taken literally, double-quoted values with backslash escapes (`\n`,
//! `\t`, `\"`, `\\`, `\$`...) and both double-quoted and unquoted values
//! interpolated; an unquoted value ends at the line's end, with a ` #`
//! comment cut off. A quoted value may span lines. A bare `KEY` takes the
//! value of `KEY` from the lookup, and is left out when that has none.
use crate::interpolate::{self, InterpolateError};

/// Why an env file could not be parsed; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFileError {
    /// A character that may not appear in a variable name.
    #[error("line {line}: unexpected character {ch:?} in variable name {text:?}")]
    BadName {
        /// Where.
        line: usize,
        /// The offending character.
        ch: char,
        /// The statement's line.
        text: String,
    },
    /// `A B=1`.
    #[error("line {line}: key cannot contain a space")]
    SpaceInKey {
        /// Where.
        line: usize,
    },
    /// A quote that never closes.
    #[error("line {line}: unterminated quoted value {text}")]
    Unterminated {
        /// Where the value starts.
        line: usize,
        /// The rest of that line.
        text: String,
    },
    /// A value's `${...}` is wrong or a `${VAR:?}` is unset.
    #[error("line {line}: {source}")]
    Interpolation {
        /// Where.
        line: usize,
        /// What went wrong.
        source: InterpolateError,
    },
}

/// Parse the text of an env file into `(name, value)` pairs in file order
/// (a name set twice appears twice; the later one wins when collected into
/// a map). `lookup` resolves variables in values and bare names; names set
/// earlier in the same file are seen too, after `lookup`.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        line: 1,
        out: Vec::new(),
    };
    p.run(lookup)?;
    Ok(p.out)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    out: Vec<(String, String)>,
}

fn is_inline_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn lookup_with_own(&self, lookup: &dyn Fn(&str) -> Option<String>, k: &str) -> Option<String> {
        lookup(k).or_else(|| {
            self.out
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
    }

    fn interpolate(
        &self,
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        line: usize,
    ) -> Result<String, EnvFileError> {
        interpolate::substitute(value, &|k| self.lookup_with_own(lookup, k))
            .map(|s| s.value)
            .map_err(|source| EnvFileError::Interpolation { line, source })
    }

    /// Skip white space and comment lines; false at the end of the text.
    fn statement_start(&mut self) -> bool {
        loop {
            let rest = self.rest();
            let Some(off) = rest.find(|c: char| !c.is_whitespace()) else {
                self.line += rest.matches('\n').count();
                self.pos = self.src.len();
                return false;
            };
            self.line += rest[..off].matches('\n').count();
            self.pos += off;
            if !self.rest().starts_with('#') {
                return true;
            }
            match self.rest().find('\n') {
                Some(nl) => self.pos += nl,
                None => {
                    self.pos = self.src.len();
                    return false;
                }
            }
        }
    }

    fn run(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), EnvFileError> {
        while self.statement_start() {
            if let Some(after) = self.rest().strip_prefix("export") {
                if after.starts_with(is_inline_space) {
                    let trimmed = after.trim_start_matches(is_inline_space);
                    self.pos = self.src.len() - trimmed.len();
                }
            }
            let rest = self.rest();
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '=' | ':' | '\n' => {
                        end = Some((i, c));
                        break;
                    }
                    c if is_inline_space(c) => {}
                    '_' | '.' | '-' | '[' | ']' => {}
                    c if c.is_alphanumeric() => {}
                    c => {
                        return Err(EnvFileError::BadName {
                            line: self.line,
                            ch: c,
                            text: rest.lines().next().unwrap_or_default().to_string(),
                        })
                    }
                }
            }
            // A last line without `=` and without a newline names a variable too.
            let (key_end, term) = end.unwrap_or((rest.len(), '\n'));
            let key = rest[..key_end].trim_end().to_string();
            if key.contains(|c: char| c.is_whitespace()) {
                return Err(EnvFileError::SpaceInKey { line: self.line });
            }
            self.pos += (key_end + term.len_utf8()).min(rest.len());
            if term == '\n' {
                if let Some(v) = self.lookup_with_own(lookup, &key) {
                    self.out.push((key, v));
                }
                self.line += 1;
                continue;
            }
            let trimmed = self.rest().trim_start_matches(is_inline_space);
            self.pos = self.src.len() - trimmed.len();
            let value = self.value(lookup)?;
            self.out.push((key, value));
        }
        Ok(())
    }

    fn value(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvFileError> {
        let src = self.src;
        let rest = &src[self.pos..];
        let start_line = self.line;
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let (line, consumed) = match rest.find('\n') {
                    Some(nl) => (&rest[..nl], nl + 1),
                    None => (rest, rest.len()),
                };
                let line = line.split(" #").next().unwrap_or_default();
                let line = line.trim_end().to_string();
                self.pos += consumed;
                self.line += 1;
                return self.interpolate(&line, lookup, start_line);
            }
        };
        let mut chars = String::new();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            if c == '\n' {
                self.line += 1;
            }
            if c != quote {
                if !escaped && c == '\\' {
                    escaped = true;
                    continue;
                }
                if escaped {
                    escaped = false;
                    chars.push('\\');
                }
                chars.push(c);
                continue;
            }
            if escaped {
                escaped = false;
                chars.push(c);
                continue;
            }
            self.pos += i + 1;
            if quote == '"' {
                return self.interpolate(&unescape(&chars), lookup, start_line);
            }
            return Ok(chars);
        }
        Err(EnvFileError::Unterminated {
            line: start_line,
            text: rest.lines().next().unwrap_or_default().to_string(),
        })
    }
}

/// The escapes of a double-quoted value. `\$` becomes `$$`, so that the
/// interpolation that follows leaves a literal `$`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&n) = it.peek() else {
            out.push('\\');
            break;
        };
        let rep = match n {
            'a' => "\u{7}",
            'b' => "\u{8}",
            'c' => "\\c",
            'f' => "\u{c}",
            'n' => "\n",
            'r' => "\r",
            't' => "\t",
            'v' => "\u{b}",
            '"' => "\"",
            '\\' => "\\",
            '$' => "$$",
            _ => {
                out.push('\\');
                continue;
            }
        };
        it.next();
        out.push_str(rep);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<Vec<(String, String)>, EnvFileError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(text, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn statements_comments_and_export() {
        let text =
            "# comment\n\nA=1\nexport B=two\n  C = spaced  \nD: yaml-style\nE=\nexported=x\n";
        assert_eq!(
            parse_with(text, &[]).unwrap(),
            pairs(&[
                ("A", "1"),
                ("B", "two"),
                ("C", "spaced"),
                ("D", "yaml-style"),
                ("E", ""),
                ("exported", "x")
            ])
        );
    }

    #[test]
    fn inline_comments_only_on_unquoted_values() {
        let text = "A=value # comment\nB=a#b\nC=\"q # kept\" # dropped\nD='x' # also\n";
        assert_eq!(
            parse_with(text, &[]).unwrap(),
            pairs(&[("A", "value"), ("B", "a#b"), ("C", "q # kept"), ("D", "x")])
        );
    }

    #[test]
    fn quoting() {
        let text =
            "S='lit $A \\n'\nD=\"l1\\nl2\\t\\\"q\\\" \\$A $A\"\nM=\"multi\nline\"\nN=after\n";
        assert_eq!(
            parse_with(text, &[("A", "va")]).unwrap(),
            pairs(&[
                ("S", "lit $A \\n"),
                ("D", "l1\nl2\t\"q\" $A va"),
                ("M", "multi\nline"),
                ("N", "after")
            ])
        );
    }

    #[test]
    fn values_interpolate_earlier_ones_and_the_lookup_first() {
        let text = "A=1\nB=${A}-$C\nC=${HOST_ONLY:-d}\nA=2\nE=$A\n";
        assert_eq!(
            parse_with(text, &[("C", "fromenv")]).unwrap(),
            pairs(&[
                ("A", "1"),
                ("B", "1-fromenv"),
                ("C", "d"),
                ("A", "2"),
                ("E", "2")
            ])
        );
    }

    #[test]
    fn bare_names_take_the_lookup() {
        let text = "HOME\nNOPE\nLAST";
        assert_eq!(
            parse_with(text, &[("HOME", "/root"), ("LAST", "l")]).unwrap(),
            pairs(&[("HOME", "/root"), ("LAST", "l")])
        );
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_with("A=1\nB C=2\n", &[]).unwrap_err().to_string(),
            "line 2: key cannot contain a space"
        );
        assert_eq!(
            parse_with("A=1\n\nB$=2\n", &[]).unwrap_err().to_string(),
            "line 3: unexpected character '$' in variable name \"B$=2\""
        );
        assert_eq!(
            parse_with("A=\"open\n", &[]).unwrap_err().to_string(),
            "line 1: unterminated quoted value \"open"
        );
        assert_eq!(
            parse_with("A=1\nB=${X:?needed}\n", &[])
                .unwrap_err()
                .to_string(),
            "line 2: required variable X is missing a value: needed"
        );
    }
}
