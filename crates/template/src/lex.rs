//! The lexer: splits template text into text runs and action tokens, as Go's
//! `text/template/parse/lex.go` does (`{{-`/`-}}` trimming, comments, quoting).
use crate::error::ParseError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Text outside actions (already trimmed where `{{-`/`-}}` asked).
    Text(String),
    /// `{{`.
    Left,
    /// `}}`.
    Right,
    /// Spaces inside an action (they separate arguments).
    Space,
    /// A bare word: a function name or a keyword.
    Ident(String),
    /// `.Name` (one segment).
    Field(String),
    /// `$` or `$name`.
    Variable(String),
    /// `.` alone.
    Dot,
    /// A quoted string: the unquoted value and the source text.
    Str(String, String),
    /// A character constant, as its code point and source text.
    Char(i64, String),
    /// A number literal, as written.
    Number(String),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `|`.
    Pipe,
    /// `:=`.
    Declare,
    /// `=`.
    Assign,
    /// `,`.
    Comma,
    /// End of input.
    Eof,
}

/// A token and its byte offset in the template source.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Byte offset in the source.
    pub pos: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Tokenize `src`. Errors carry the line where they happened.
pub fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    let line_at = |p: usize| 1 + src[..p.min(src.len())].matches('\n').count();
    while i <= b.len() {
        // Text up to the next `{{`.
        let start = i;
        let next = src[i..].find("{{").map(|o| i + o);
        let end = next.unwrap_or(b.len());
        let mut text = &src[start..end];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            trim_next = false;
        }
        let Some(left) = next else {
            if !text.is_empty() {
                out.push(Token {
                    tok: Tok::Text(text.to_string()),
                    pos: start,
                });
            }
            break;
        };
        let mut j = left + 2;
        let trim_left = b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| is_space(*c));
        if trim_left {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            j += 2;
        }
        if !text.is_empty() {
            out.push(Token {
                tok: Tok::Text(text.to_string()),
                pos: start,
            });
        }
        // A comment: `{{/* … */}}`, possibly with trim markers.
        let mut k = j;
        while trim_left && k < b.len() && is_space(b[k]) {
            k += 1;
        }
        if src[k..].starts_with("/*") {
            let Some(close) = src[k + 2..].find("*/") else {
                return Err(ParseError::new(line_at(left), "unclosed comment"));
            };
            let mut e = k + 2 + close + 2;
            let mut trim_right = false;
            if src[e..].starts_with(" -}}") {
                trim_right = true;
                e += 1;
                while e < b.len() && is_space(b[e]) {
                    e += 1;
                }
                e += 1;
            }
            if !src[e..].starts_with("}}") {
                return Err(ParseError::new(
                    line_at(left),
                    "comment ends before closing delimiter",
                ));
            }
            trim_next = trim_right;
            i = e + 2;
            continue;
        }
        out.push(Token {
            tok: Tok::Left,
            pos: left,
        });
        i = lex_action(src, j, &mut out, &mut trim_next, line_at(left))?;
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

/// Lex inside an action from `i`; returns the offset after `}}`.
fn lex_action(
    src: &str,
    mut i: usize,
    out: &mut Vec<Token>,
    trim_next: &mut bool,
    line: usize,
) -> Result<usize, ParseError> {
    let b = src.as_bytes();
    let mut parens = 0usize;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(ParseError::new(line, "unclosed action"));
        };
        // Right delimiter, possibly with a trim marker.
        if is_space(c) {
            let s = i;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if src[i..].starts_with("-}}") {
                *trim_next = true;
                out.push(Token {
                    tok: Tok::Right,
                    pos: i,
                });
                return Ok(i + 3);
            }
            out.push(Token {
                tok: Tok::Space,
                pos: s,
            });
            continue;
        }
        if src[i..].starts_with("}}") {
            if parens > 0 {
                return Err(ParseError::new(line, "unclosed left paren"));
            }
            out.push(Token {
                tok: Tok::Right,
                pos: i,
            });
            return Ok(i + 2);
        }
        let pos = i;
        let tok = match c {
            b'|' => {
                i += 1;
                Tok::Pipe
            }
            b'(' => {
                i += 1;
                parens += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                if parens == 0 {
                    return Err(ParseError::new(line, "unexpected right paren U+0029 ')'"));
                }
                parens -= 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b':' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(ParseError::new(line, "expected :="));
                }
                i += 2;
                Tok::Declare
            }
            b'=' => {
                i += 1;
                Tok::Assign
            }
            b'"' => {
                let (val, end) = lex_quote(src, i, line)?;
                let raw = src[i..end].to_string();
                i = end;
                Tok::Str(val, raw)
            }
            b'`' => {
                let Some(close) = src[i + 1..].find('`') else {
                    return Err(ParseError::new(line, "unterminated raw quoted string"));
                };
                let val = src[i + 1..i + 1 + close].to_string();
                let raw = src[i..i + close + 2].to_string();
                i += close + 2;
                Tok::Str(val, raw)
            }
            b'\'' => {
                let (val, end) = lex_quote(src, i, line)?;
                let mut chars = val.chars();
                let (Some(ch), None) = (chars.next(), chars.next()) else {
                    return Err(ParseError::new(
                        line,
                        format!("malformed character constant: {}", &src[i..end]),
                    ));
                };
                let raw = src[i..end].to_string();
                i = end;
                Tok::Char(ch as i64, raw)
            }
            b'$' => {
                i += 1;
                while i < b.len() && is_alnum(b[i]) {
                    i += 1;
                }
                Tok::Variable(src[pos..i].to_string())
            }
            b'.' => {
                if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    i = lex_number(b, i);
                    Tok::Number(src[pos..i].to_string())
                } else if b.get(i + 1).is_some_and(|d| is_alnum(*d)) {
                    i += 1;
                    while i < b.len() && is_alnum(b[i]) {
                        i += 1;
                    }
                    Tok::Field(src[pos + 1..i].to_string())
                } else {
                    i += 1;
                    Tok::Dot
                }
            }
            b'0'..=b'9' | b'+' | b'-' => {
                i = lex_number(b, i);
                if i == pos + 1 && !c.is_ascii_digit() {
                    return Err(ParseError::new(
                        line,
                        format!("bad number syntax: {:?}", &src[pos..i]),
                    ));
                }
                Tok::Number(src[pos..i].to_string())
            }
            c if is_alnum(c) || c >= 0x80 => {
                while i < b.len() && (is_alnum(b[i]) || b[i] >= 0x80) {
                    i += 1;
                }
                match &src[pos..i] {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    w => Tok::Ident(w.to_string()),
                }
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::new(
                    line,
                    format!("unrecognized character in action: {ch:?}"),
                ));
            }
        };
        out.push(Token { tok, pos });
    }
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn lex_number(b: &[u8], mut i: usize) -> usize {
    if matches!(b.get(i), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
        // An exponent sign belongs to the number.
        if matches!(b[i], b'e' | b'E' | b'p' | b'P') && matches!(b.get(i + 1), Some(b'+' | b'-')) {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Unquote a Go interpreted string or char literal starting at `i`.
fn lex_quote(src: &str, i: usize, line: usize) -> Result<(String, usize), ParseError> {
    let b = src.as_bytes();
    let q = b[i];
    let mut out = String::new();
    let mut j = i + 1;
    let unterminated = || {
        ParseError::new(
            line,
            if q == b'"' {
                "unterminated quoted string"
            } else {
                "unterminated character constant"
            },
        )
    };
    loop {
        let Some(ch) = src[j..].chars().next() else {
            return Err(unterminated());
        };
        if ch == '\n' {
            return Err(unterminated());
        }
        if ch as u32 == q as u32 {
            return Ok((out, j + 1));
        }
        if ch != '\\' {
            out.push(ch);
            j += ch.len_utf8();
            continue;
        }
        let Some(&e) = b.get(j + 1) else {
            return Err(unterminated());
        };
        j += 2;
        let simple = match e {
            b'n' => Some('\n'),
            b't' => Some('\t'),
            b'r' => Some('\r'),
            b'a' => Some('\u{7}'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'v' => Some('\u{b}'),
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            b'\'' => Some('\''),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let digits = match e {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            b'0'..=b'7' => 0,
            _ => return Err(ParseError::new(line, "invalid syntax")),
        };
        let code = if digits == 0 {
            let s = src.get(j - 1..j + 2).ok_or_else(unterminated)?;
            j += 2;
            u32::from_str_radix(s, 8).map_err(|_| ParseError::new(line, "invalid syntax"))?
        } else {
            let s = src.get(j..j + digits).ok_or_else(unterminated)?;
            j += digits;
            u32::from_str_radix(s, 16).map_err(|_| ParseError::new(line, "invalid syntax"))?
        };
        out.push(char::from_u32(code).ok_or_else(|| ParseError::new(line, "invalid syntax"))?);
    }
}
