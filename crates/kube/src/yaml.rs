//! A YAML writer for JSON values: block style, keys in insertion order,
//! strings plain only when YAML 1.1 and 1.2 both read them back as the
//! same string (otherwise double-quoted, with JSON's escapes, which are
//! YAML's too).
use serde_json::Value;

/// The documents, each after a `---` line.
pub fn documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        node(&mut out, d, 0);
    }
    out
}

fn node(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                pad(out, indent);
                out.push_str(&scalar_str(k));
                out.push(':');
                child(out, v, indent);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for v in a {
                pad(out, indent);
                out.push('-');
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key on the dash's line, the rest under it.
                        let mut first = true;
                        for (k, v) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                pad(out, indent + 2);
                            }
                            out.push_str(&scalar_str(k));
                            out.push(':');
                            child(out, v, indent + 2);
                        }
                    }
                    _ => child(out, v, indent),
                }
            }
        }
        _ => {
            pad(out, indent);
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

/// What follows `key:` or `-`: an inline scalar or a nested block.
fn child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            node(out, v, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            node(out, v, indent + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar that reads back as that string.
fn scalar_str(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        return false;
    }
    // YAML 1.1 booleans and nulls, in any case.
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_what_would_change_type() {
        let y = documents(&[
            json!({"a": "80", "b": "yes", "c": "x y", "d": [{"e": 1, "f": ["g"]}], "h": {}, "i": "app"}),
        ]);
        assert_eq!(
            y,
            "---\na: \"80\"\nb: \"yes\"\nc: \"x y\"\nd:\n  - e: 1\n    f:\n      - g\nh: {}\ni: app\n"
        );
    }
}
