//! `compose config`: the normalized project printed as YAML, `name` first,
//! then `services`, `networks`, `volumes`, `secrets`, `configs`, keys
//! sorted inside every mapping, sequences indented under their key (as
//! docker compose prints them). Strings that YAML could read as something
//! else are double-quoted, and a `$` in a value is written `$$` (as docker
//! compose does) so that loading the output does not interpolate again.
use serde_json::Value;

use crate::model::Project;

const TOP_ORDER: &[&str] = &[
    "name", "services", "networks", "volumes", "secrets", "configs",
];

/// The project as YAML. Loading the result gives the same project.
pub fn to_yaml(project: &Project) -> String {
    let mut out = String::new();
    let Ok(Value::Object(top)) = serde_json::to_value(project) else {
        return out;
    };
    let mut rest: Vec<&String> = top
        .keys()
        .filter(|k| !TOP_ORDER.contains(&k.as_str()))
        .collect();
    rest.sort();
    for key in TOP_ORDER
        .iter()
        .copied()
        .chain(rest.iter().map(|k| k.as_str()))
    {
        if let Some(v) = top.get(key) {
            entry(&mut out, 0, key, v);
        }
    }
    out
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

fn entry(out: &mut String, indent: usize, key: &str, v: &Value) {
    let key = scalar_string(key);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(&format!("{}{key}:\n", pad(indent)));
            mapping(out, indent + 2, m);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str(&format!("{}{key}:\n", pad(indent)));
            for item in a {
                list_item(out, indent + 2, item);
            }
        }
        _ => out.push_str(&format!("{}{key}: {}\n", pad(indent), scalar(v))),
    }
}

fn mapping(out: &mut String, indent: usize, m: &serde_json::Map<String, Value>) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    for k in keys {
        entry(out, indent, k, &m[k]);
    }
}

/// `- item`, a nested collection starting on the dash's line.
fn list_item(out: &mut String, indent: usize, v: &Value) {
    let mut inner = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => mapping(&mut inner, indent + 2, m),
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                list_item(&mut inner, indent + 2, item);
            }
        }
        _ => {
            out.push_str(&format!("{}- {}\n", pad(indent), scalar(v)));
            return;
        }
    }
    out.push_str(&pad(indent));
    out.push_str("- ");
    out.push_str(&inner[indent + 2..]);
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(&s.replace('$', "$$")),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// `s` plain when YAML reads it back as the same string, else double-quoted.
fn scalar_string(s: &str) -> String {
    if plain_is_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    }
}

fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    if reserved.contains(&lower.as_str()) {
        return false;
    }
    // Numbers, and what YAML 1.1 reads as numbers or times (`8080:80`).
    if first.is_ascii_digit() || ((first == '-' || first == '+' || first == '.') && s.len() > 1) {
        let numeric_like = s
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "+-._:xXoO".contains(c));
        if numeric_like {
            return false;
        }
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        return false;
    }
    if s.ends_with(' ') || s.ends_with(':') || s.contains(": ") || s.contains(" #") {
        return false;
    }
    !s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_in_values_are_escaped_for_reloading() {
        assert_eq!(
            scalar(&Value::String("$5 and ${X}".into())),
            "$$5 and $${X}"
        );
        assert_eq!(scalar(&Value::String("-$HOME".into())), "\"-$$HOME\"");
        let mut out = String::new();
        entry(&mut out, 0, "a$b", &Value::String("$c".into()));
        assert_eq!(out, "a$b: $$c\n");
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        for plain in [
            "nginx:1.25",
            "/var/lib/data",
            "web",
            "CMD-SHELL",
            "a b",
            "1.25-alpine",
        ] {
            assert!(plain_is_safe(plain), "{plain}");
        }
        assert_eq!(scalar_string("nginx:latest"), "nginx:latest");
        assert_eq!(scalar_string("true"), "\"true\"");
        assert_eq!(scalar_string("8080"), "\"8080\"");
        assert_eq!(scalar_string("8080:80"), "\"8080:80\"");
        assert_eq!(scalar_string("0.5"), "\"0.5\"");
        assert_eq!(scalar_string(""), "\"\"");
        assert_eq!(scalar_string("a: b"), "\"a: b\"");
        assert_eq!(scalar_string("line\nbreak"), "\"line\\nbreak\"");
        assert_eq!(scalar_string("*star"), "\"*star\"");
        assert_eq!(scalar_string("- dash"), "\"- dash\"");
        assert_eq!(
            scalar_string("curl -f http://localhost"),
            "curl -f http://localhost"
        );
    }
}
