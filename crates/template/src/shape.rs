//! From JSON documents to typed template values. Docker formats Go structs, so
//! the same document prints differently depending on types JSON does not carry:
//! a caller names the paths that are maps, durations and times; every other
//! object is a struct.
use std::collections::BTreeMap;

use crate::value::{Struct, Value};

/// Type information for a JSON document. Paths are dot-separated keys from the
/// root (`Config.Healthcheck.Interval`); arrays add no segment; `*` matches any key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape<'a> {
    /// Go's name of the root type, for `can't evaluate field X in type T`.
    pub type_name: &'a str,
    /// Objects that are Go maps (`Config.Labels`): a missing key is `<no value>`.
    pub maps: &'a [&'a str],
    /// Integers that are `time.Duration` nanoseconds: print as `30s`.
    pub durations: &'a [&'a str],
    /// RFC 3339 strings that are `time.Time`: print as Go's `Time.String()`.
    pub times: &'a [&'a str],
    /// Go type names of nested structs, by path.
    pub types: &'a [(&'a str, &'a str)],
    /// Pointer fields JSON omits when nil (`State.Health`): present as `<nil>`,
    /// so `{{if .State.Health}}` is false rather than an error.
    pub nils: &'a [&'a str],
    /// Go slices JSON shows as `null` when nil (an endpoint's `Aliases`):
    /// an empty list, printed `[]` as Go prints a nil slice.
    pub slices: &'a [&'a str],
}

fn matches(pattern: &str, path: &[&str]) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    p.len() == path.len() && p.iter().zip(path).all(|(a, b)| *a == "*" || a == b)
}

impl Shape<'_> {
    fn any(list: &[&str], path: &[&str]) -> bool {
        list.iter().any(|p| matches(p, path))
    }

    /// Convert `json` with this shape.
    pub fn apply(&self, json: &serde_json::Value) -> Value {
        let mut path = Vec::new();
        self.convert(json, &mut path)
    }

    fn convert<'j>(&self, json: &'j serde_json::Value, path: &mut Vec<&'j str>) -> Value {
        use serde_json::Value as J;
        match json {
            J::Number(n) if Self::any(self.durations, path) => {
                Value::Duration(n.as_i64().unwrap_or(0))
            }
            J::String(s) if Self::any(self.times, path) => {
                match chrono::DateTime::parse_from_rfc3339(s) {
                    Ok(t) => Value::Time(t),
                    Err(_) => Value::String(s.clone()),
                }
            }
            // A nil map prints `map[]` in Go.
            J::Null if Self::any(self.maps, path) => Value::Map(BTreeMap::new()),
            J::Null if Self::any(self.slices, path) => Value::List(Vec::new()),
            J::Array(items) => Value::List(items.iter().map(|i| self.convert(i, path)).collect()),
            J::Object(m) if path.is_empty() || !Self::any(self.maps, path) => {
                let mut fields = Vec::with_capacity(m.len());
                let mut json_null = Vec::new();
                for (k, v) in m {
                    path.push(k);
                    if v.is_null() && (Self::any(self.maps, path) || Self::any(self.slices, path)) {
                        json_null.push(k.clone());
                    }
                    fields.push((k.clone(), self.convert(v, path)));
                    path.pop();
                }
                let mut json_omitted = Vec::new();
                for n in self.nils {
                    let (parent, key) = n.rsplit_once('.').unwrap_or(("", n));
                    let here = parent.is_empty() && path.is_empty()
                        || !parent.is_empty() && matches(parent, path);
                    if here && !m.contains_key(key) {
                        fields.push((key.to_string(), Value::Nil));
                        json_omitted.push(key.to_string());
                    }
                }
                // Map fields JSON omits when empty (`omitempty`: Docker's
                // `HostConfig.Sysctls`): a nil map, `map[]`, JSON `null`.
                for n in self.maps {
                    let Some((parent, key)) = n.rsplit_once('.') else {
                        continue;
                    };
                    if matches(parent, path) && !m.contains_key(key) {
                        fields.push((key.to_string(), Value::Map(BTreeMap::new())));
                        json_omitted.push(key.to_string());
                        json_null.push(key.to_string());
                    }
                }
                let name = if path.is_empty() {
                    self.type_name.to_string()
                } else {
                    self.types
                        .iter()
                        .find(|(p, _)| matches(p, path))
                        .map_or_else(|| "struct".to_string(), |(_, t)| t.to_string())
                };
                let mut st = Struct::new(name, fields);
                st.json_omitted = json_omitted;
                st.json_null = json_null;
                Value::Struct(st)
            }
            J::Object(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    path.push(k);
                    out.insert(k.clone(), self.convert(v, path));
                    path.pop();
                }
                Value::Map(out)
            }
            other => raw(other),
        }
    }
}

/// Convert `json` as Go's `json.Unmarshal` into `interface{}` does: objects are
/// maps. Docker's inspect falls back to this when the typed run fails.
pub fn raw(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::List(items.iter().map(raw).collect()),
        J::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), raw(v))).collect()),
    }
}
