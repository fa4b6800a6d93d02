//! Variable expansion and word splitting as BuildKit's shell lexer does it:
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`,
//! `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`,
//! `${VAR%pat}`, `${VAR%%pat}`, `${VAR/pat/repl}`, `${VAR//pat/repl}`;
//! single quotes are literal, double quotes expand, the escape character
//! (`\` or the `# escape=` one) escapes the next character (inside double
//! quotes only `"`, `$` and itself). Unset variables expand to nothing.
use std::collections::BTreeSet;

/// An expansion that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError(pub String);

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ExpandError {}

/// The lexer, for one escape character.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// `\` unless a `# escape=` directive says otherwise.
    pub escape: char,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer { escape: '\\' }
    }
}

/// The result of expanding a word, with the names it used that were unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expanded {
    /// The words (one for [`Lexer::word`]).
    pub words: Vec<String>,
    /// Variables referenced but not set (for the `UndefinedVar` check).
    pub unset: BTreeSet<String>,
}

struct State<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: &'a dyn Fn(&str) -> Option<String>,
    unset: BTreeSet<String>,
}

impl Lexer {
    /// Expand one word (quotes removed, no splitting).
    pub fn word(
        &self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ExpandError> {
        let e = self.expand(text, env, false)?;
        Ok(e.words.into_iter().next().unwrap_or_default())
    }

    /// Expand and split into words at unquoted whitespace.
    pub fn words(
        &self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ExpandError> {
        Ok(self.expand(text, env, true)?.words)
    }

    /// The full result: words (split when `split`) and unset names.
    pub fn expand(
        &self,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        split: bool,
    ) -> Result<Expanded, ExpandError> {
        let mut st = State {
            chars: text.chars().collect(),
            pos: 0,
            escape: self.escape,
            env,
            unset: BTreeSet::new(),
        };
        let words = st.process(split)?;
        Ok(Expanded {
            words,
            unset: st.unset,
        })
    }
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// The top level: words separated by unquoted whitespace (when
    /// splitting). A word that was quoted but empty still counts.
    fn process(&mut self, split: bool) -> Result<Vec<String>, ExpandError> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if split && c.is_whitespace() {
                self.pos += 1;
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            if c != '$' {
                in_word = true;
            }
            match c {
                '\'' => {
                    self.pos += 1;
                    cur.push_str(&self.single_quoted()?);
                }
                '"' => {
                    self.pos += 1;
                    cur.push_str(&self.double_quoted()?);
                }
                '$' => {
                    self.pos += 1;
                    let v = self.dollar()?;
                    if !split {
                        cur.push_str(&v);
                        continue;
                    }
                    // An unquoted expansion is split too.
                    for ch in v.chars() {
                        if ch.is_whitespace() {
                            if in_word {
                                words.push(std::mem::take(&mut cur));
                            }
                            in_word = false;
                        } else {
                            cur.push(ch);
                            in_word = true;
                        }
                    }
                }
                c if c == self.escape => {
                    self.pos += 1;
                    match self.next() {
                        // A lone escape at the end is kept.
                        None => cur.push(c),
                        Some(n) => cur.push(n),
                    }
                }
                _ => {
                    self.pos += 1;
                    cur.push(c);
                }
            }
        }
        if in_word || !split {
            words.push(cur);
        }
        Ok(words)
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    ))
                }
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    ))
                }
                Some('"') => return Ok(s),
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    None => {}
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        s.push(n);
                    }
                    Some(_) => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        // A positional/special parameter is one character.
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.pos += 1;
                n.push(c);
                return n;
            }
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// A value for a form that handles "unset" itself (`${V:-x}`, `${V+x}`,
    /// `${V?msg}`): not reported as unset.
    fn lookup_quiet(&mut self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let v = (self.env)(name);
        if v.is_none() {
            self.unset.insert(name.to_string());
        }
        v
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError(
                "bad substitution: missing variable name in ${}".into(),
            ));
        }
        let bad = |what: &str| ExpandError(format!("bad substitution: {what} in ${{{name}}}"));
        match self.next() {
            None => Err(ExpandError(
                "missing '}' at the end of a ${...} substitution".into(),
            )),
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => {
                let op = self.next().ok_or_else(|| bad("missing modifier"))?;
                if !matches!(op, '-' | '+' | '?') {
                    return Err(ExpandError(format!(
                        "unsupported modifier ({op}) in substitution"
                    )));
                }
                let word = self.until_brace()?;
                let v = self.lookup_quiet(&name);
                let set = v.as_deref().is_some_and(|s| !s.is_empty());
                self.modifier(&name, op, v, set, word)
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.until_brace()?;
                let v = self.lookup_quiet(&name);
                let set = v.is_some();
                self.modifier(&name, op, v, set, word)
            }
            Some(op @ ('#' | '%')) => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pat = self.until_brace()?;
                let v = self.lookup(&name).unwrap_or_default();
                Ok(if op == '#' {
                    strip_prefix(&v, &pat, longest)
                } else {
                    strip_suffix(&v, &pat, longest)
                })
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pat = self.until(&['/', '}'])?;
                let repl = if self.chars.get(self.pos.wrapping_sub(1)) == Some(&'/') {
                    self.until_brace()?
                } else {
                    String::new()
                };
                let v = self.lookup(&name).unwrap_or_default();
                Ok(replace(&v, &pat, &repl, all))
            }
            Some(c) => Err(ExpandError(format!(
                "unsupported modifier ({c}) in substitution"
            ))),
        }
    }

    fn modifier(
        &self,
        name: &str,
        op: char,
        value: Option<String>,
        set: bool,
        word: String,
    ) -> Result<String, ExpandError> {
        Ok(match op {
            '-' => {
                if set {
                    value.unwrap_or_default()
                } else {
                    word
                }
            }
            '+' => {
                if set {
                    word
                } else {
                    String::new()
                }
            }
            _ => {
                if set {
                    value.unwrap_or_default()
                } else {
                    let msg = if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    };
                    return Err(ExpandError(format!("{name}: {msg}")));
                }
            }
        })
    }

    /// A modifier's word up to the closing `}` (expanding inside it).
    fn until_brace(&mut self) -> Result<String, ExpandError> {
        self.until(&['}'])
    }

    /// Expand up to (and consume) one of `stops`.
    fn until(&mut self, stops: &[char]) -> Result<String, ExpandError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError(
                        "missing '}' at the end of a ${...} substitution".into(),
                    ))
                }
                Some(c) if stops.contains(&c) => return Ok(s),
                Some('\'') => s.push_str(&self.single_quoted()?),
                Some('"') => s.push_str(&self.double_quoted()?),
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        s.push(n);
                    }
                }
                Some(c) => s.push(c),
            }
        }
    }
}

/// Shell glob match of the whole of `text` (`*`, `?`, `[...]`, `\x`).
pub fn glob_match(pat: &str, text: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&p, &t)
}

fn matches(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, len)) = class(&p[pi..], t[ti]) {
                        if ok {
                            pi += len;
                            ti += 1;
                            continue;
                        }
                    } else if t[ti] == '[' {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// `[...]` at the start of `p`: (matches `c`, length of the class).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((ok != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                ok = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                ok = true;
            }
            i += 1;
        }
    }
    None
}

fn char_boundaries(s: &str) -> Vec<usize> {
    let mut v: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    v.push(s.len());
    v
}

fn strip_prefix(v: &str, pat: &str, longest: bool) -> String {
    let b = char_boundaries(v);
    let order: Vec<usize> = if longest {
        b.iter().rev().copied().collect()
    } else {
        b.clone()
    };
    for i in order {
        if glob_match(pat, &v[..i]) {
            return v[i..].to_string();
        }
    }
    v.to_string()
}

fn strip_suffix(v: &str, pat: &str, longest: bool) -> String {
    let b = char_boundaries(v);
    let order: Vec<usize> = if longest {
        b.clone()
    } else {
        b.iter().rev().copied().collect()
    };
    for i in order {
        if glob_match(pat, &v[i..]) {
            return v[..i].to_string();
        }
    }
    v.to_string()
}

/// `${v/pat/repl}`: the first (or with `all` every) longest match.
fn replace(v: &str, pat: &str, repl: &str, all: bool) -> String {
    if pat.is_empty() {
        return v.to_string();
    }
    let b = char_boundaries(v);
    let mut out = String::new();
    let mut i = 0usize; // index into b
    let mut replaced = false;
    while i < b.len() - 1 {
        let start = b[i];
        let found = if replaced && !all {
            None
        } else {
            (i + 1..b.len())
                .rev()
                .find(|&j| glob_match(pat, &v[start..b[j]]))
        };
        match found {
            Some(j) => {
                out.push_str(repl);
                i = j;
                replaced = true;
            }
            None => {
                out.push_str(&v[start..b[i + 1]]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "EMPTY" => Some(String::new()),
            "PATHS" => Some("/usr/local/bin:/usr/bin:/bin".into()),
            "FILE" => Some("archive.tar.gz".into()),
            "SPACED" => Some("a b  c".into()),
            _ => None,
        }
    }

    fn w(s: &str) -> String {
        Lexer::default().word(s, &env).unwrap()
    }

    fn ws(s: &str) -> Vec<String> {
        Lexer::default().words(s, &env).unwrap()
    }

    #[test]
    fn expansion_table() {
        let table: &[(&str, &str)] = &[
            ("$A", "apple"),
            ("${A}", "apple"),
            ("x${A}y", "xappley"),
            ("$A-$B", "apple-"),
            ("$UNSET", ""),
            ("${UNSET:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${UNSET-dflt}", "dflt"),
            ("${A:-dflt}", "apple"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-$A}", "apple"),
            ("${UNSET:-${EMPTY:-deep}}", "deep"),
            ("${FILE#*.}", "tar.gz"),
            ("${FILE##*.}", "gz"),
            ("${FILE%.*}", "archive.tar"),
            ("${FILE%%.*}", "archive"),
            ("${PATHS/bin/BIN}", "/usr/local/BIN:/usr/bin:/bin"),
            ("${PATHS//bin/BIN}", "/usr/local/BIN:/usr/BIN:/BIN"),
            ("${PATHS//:/ }", "/usr/local/bin /usr/bin /bin"),
            ("${FILE/.tar/}", "archive.gz"),
            ("${A/[ap]/X}", "Xpple"),
            ("${A//[ap]/X}", "XXXle"),
            ("'$A'", "$A"),
            ("\"$A\"", "apple"),
            ("\"'$A'\"", "'apple'"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("\"a\\\"b\"", "a\"b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("a$", "a$"),
            ("$1x", "x"),
            ("trailing\\", "trailing\\"),
        ];
        for (input, want) in table {
            assert_eq!(&w(input), want, "{input}");
        }
    }

    #[test]
    fn splitting() {
        assert_eq!(ws("a b  c"), ["a", "b", "c"]);
        assert_eq!(ws("\"a b\" c"), ["a b", "c"]);
        assert_eq!(ws("'' x"), ["", "x"]);
        assert_eq!(ws("$SPACED"), ["a", "b", "c"]);
        assert_eq!(ws("\"$SPACED\""), ["a b  c"]);
        assert_eq!(ws("x$SPACED"), ["xa", "b", "c"]);
        assert_eq!(ws("$UNSET y"), ["y"]);
        assert!(ws("").is_empty());
    }

    #[test]
    fn errors_and_unset_tracking() {
        let l = Lexer::default();
        for bad in [
            "'open",
            "\"open",
            "${A",
            "${A:3}",
            "${}",
            "${UNSET:?must be set}",
        ] {
            assert!(l.word(bad, &env).is_err(), "{bad}");
        }
        let err = l.word("${UNSET:?must be set}", &env).unwrap_err();
        assert_eq!(err.0, "UNSET: must be set");
        // A form with a default handles the unset case itself.
        let e = l.expand("$A $NOPE ${ALSO:-x} ${MORE}", &env, true).unwrap();
        assert_eq!(e.unset.into_iter().collect::<Vec<_>>(), ["MORE", "NOPE"]);
    }

    #[test]
    fn backtick_escape() {
        let l = Lexer { escape: '`' };
        assert_eq!(l.word("`$A c:\\path", &env).unwrap(), "$A c:\\path");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.gz", "a.tar.gz"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("[!x]*", "yes"));
        assert!(!glob_match("[!x]*", "xyz"));
        assert!(glob_match("[a-c]", "b"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
    }
}
