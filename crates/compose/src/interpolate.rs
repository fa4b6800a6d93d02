//! Variable substitution in Compose files and `.env` values, with the
//! syntax of the Compose Specification's
//! [interpolation](https://github.com/compose-spec/compose-spec/blob/main/12-interpolation.md):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
//! `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`.
//! Defaults and messages are themselves interpolated, so `${A:-${B}}` works.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR?msg}` or `${VAR:?msg}` with the variable unset (or empty).
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    Missing {
        /// The variable's name.
        variable: String,
        /// The message written after `?` (interpolated), possibly empty.
        reason: String,
    },
    /// A `${` without a closing brace or with something other than a name
    /// and one of the operators inside.
    #[error("invalid template: {template:?}")]
    InvalidTemplate {
        /// The whole string being interpolated.
        template: String,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// The result of [`substitute`]: the new text and the variables that were
/// referenced without a default while unset (docker compose warns about
/// them: `The "VAR" variable is not set. Defaulting to a blank string.`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Substituted {
    /// The interpolated text.
    pub value: String,
    /// Variables used plainly (`$VAR`, `${VAR}`) while unset, in order.
    pub unset: Vec<String>,
}

/// Replace the variables in `template`, looking values up with `lookup`.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Substituted, InterpolateError> {
    let mut unset = Vec::new();
    let value = expand(template, template, lookup, &mut unset)?;
    Ok(Substituted { value, unset })
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

fn name_len(s: &[u8]) -> usize {
    if s.first().is_some_and(|c| is_name_start(*c)) {
        s.iter().take_while(|c| is_name_char(**c)).count()
    } else {
        0
    }
}

/// `whole` is the outermost template, named in errors.
fn expand(
    text: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&text[literal_start..i]);
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = closing_brace(bytes, i + 2).ok_or_else(|| invalid(whole))?;
                out.push_str(&braced(&text[i + 2..close], whole, lookup, unset)?);
                i = close + 1;
            }
            Some(c) if is_name_start(*c) => {
                let n = name_len(&bytes[i + 1..]);
                let name = &text[i + 1..i + 1 + n];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name.to_string()),
                }
                i += 1 + n;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal_start = i;
    }
    out.push_str(&text[literal_start..]);
    Ok(out)
}

/// The index of the `}` closing a `${` whose content starts at `from`,
/// counting nested `${...}`.
fn closing_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn invalid(whole: &str) -> InterpolateError {
    InterpolateError::InvalidTemplate {
        template: whole.to_string(),
    }
}

/// The inside of `${...}`.
fn braced(
    inner: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, InterpolateError> {
    let n = name_len(inner.as_bytes());
    if n == 0 {
        return Err(invalid(whole));
    }
    let (name, rest) = inner.split_at(n);
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_else(|| {
            unset.push(name.to_string());
            String::new()
        }));
    }
    let (op, word) = ["-", ":-", "?", ":?", "+", ":+"]
        .iter()
        .filter_map(|op| rest.strip_prefix(op).map(|w| (*op, w)))
        .max_by_key(|(op, _)| op.len())
        .ok_or_else(|| invalid(whole))?;
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        "-" | ":-" => {
            let use_default = if op == "-" { !set } else { !non_empty };
            if use_default {
                expand(word, whole, lookup, unset)
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        "?" | ":?" => {
            let missing = if op == "?" { !set } else { !non_empty };
            if missing {
                Err(InterpolateError::Missing {
                    variable: name.to_string(),
                    reason: expand(word, whole, lookup, unset)?,
                })
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        _ => {
            let use_alt = if op == "+" { set } else { non_empty };
            if use_alt {
                expand(word, whole, lookup, unset)
            } else {
                Ok(String::new())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(t: &str) -> Result<Substituted, InterpolateError> {
        let env: BTreeMap<&str, &str> = [("A", "a"), ("EMPTY", ""), ("B", "b"), ("PORT", "8080")]
            .into_iter()
            .collect();
        substitute(t, &|k| env.get(k).map(|v| v.to_string()))
    }

    fn ok(t: &str) -> String {
        run(t).unwrap().value
    }

    #[test]
    fn plain_and_braced_forms() {
        assert_eq!(ok("$A"), "a");
        assert_eq!(ok("${A}"), "a");
        assert_eq!(ok("x$A-y"), "xa-y");
        assert_eq!(ok("${A}${B}"), "ab");
        assert_eq!(ok("nginx:${PORT}"), "nginx:8080");
        assert_eq!(ok("no vars"), "no vars");
        assert_eq!(ok("ünï$A©"), "ünïa©");
    }

    #[test]
    fn dollar_escapes_and_lone_dollars() {
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("cost: 5$"), "cost: 5$");
        assert_eq!(ok("$1 $ -"), "$1 $ -");
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${A:-d}"), "a");
        assert_eq!(ok("${UNSET:-}"), "");
        assert_eq!(ok("${UNSET:-a b:c}"), "a b:c");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(ok("${UNSET:-${A}}"), "a");
        assert_eq!(ok("${UNSET:-${NOPE:-${B}x}}"), "bx");
        assert_eq!(ok("${UNSET:-$A}"), "a");
        assert_eq!(ok("${A:-${NOPE}}"), "a");
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${A:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${UNSET+alt}"), "");
        assert_eq!(ok("${A:+${B}}"), "b");
    }

    #[test]
    fn required() {
        assert_eq!(ok("${A:?boom}"), "a");
        assert_eq!(ok("${EMPTY?boom}"), "");
        let e = run("${UNSET:?set it}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable UNSET is missing a value: set it"
        );
        let e = run("${EMPTY:?}").unwrap_err();
        assert_eq!(e.to_string(), "required variable EMPTY is missing a value");
        let e = run("${UNSET?need $A}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable UNSET is missing a value: need a"
        );
    }

    #[test]
    fn unset_variables_are_reported() {
        let s = run("$NOPE ${ALSO_NOT} ${NOT_WARNED:-x}").unwrap();
        assert_eq!(s.value, "  x");
        assert_eq!(s.unset, vec!["NOPE".to_string(), "ALSO_NOT".to_string()]);
    }

    #[test]
    fn invalid_templates() {
        for t in ["${", "${A", "${}", "${1A}", "${A:x}", "${A/b}", "a ${-x}"] {
            let e = run(t).unwrap_err();
            assert_eq!(
                e,
                InterpolateError::InvalidTemplate {
                    template: t.to_string()
                },
                "{t}"
            );
        }
    }
}
