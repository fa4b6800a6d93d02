//! Reading a Kubernetes object field by field: every key read is marked,
//! and when the reader is dropped each key nobody read is named on the
//! warnings list with its path (`Pod web: spec.containers[app].lifecycle`),
//! so nothing in the YAML is dropped silently.
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::Error;

/// The warnings of one play, shared by every reader.
pub(crate) type Warnings = Rc<RefCell<Vec<String>>>;

/// One mapping of the YAML being read.
pub(crate) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    used: RefCell<BTreeSet<String>>,
    warnings: Warnings,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Obj<'a> {
    /// A reader of `value` (a mapping, or null: an empty one) at `path`.
    pub fn new(path: String, value: &'a Value, warnings: Warnings) -> Result<Obj<'a>, Error> {
        let map = match value {
            Value::Object(m) => m,
            Value::Null => EMPTY.get_or_init(Map::new),
            other => {
                return Err(Error::Invalid(format!(
                    "{path}: expected a mapping, found {}",
                    kind_of(other)
                )))
            }
        };
        Ok(Obj {
            path,
            map,
            used: RefCell::new(BTreeSet::new()),
            warnings,
        })
    }

    /// `path.key` (or the path itself for an empty key).
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() || self.path.ends_with(": ") {
            format!("{}{key}", self.path)
        } else if key.is_empty() {
            self.path.clone()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A value, marked as read (null is absent).
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Is the key there (not null)? Does not mark it.
    pub fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// A string; numbers and booleans as YAML wrote them (Kubernetes
    /// refuses them where it wants strings; berth takes their text).
    pub fn str(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    /// An integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Ok(n.as_f64().map(|f| f as i64))
            }
            Some(Value::String(s)) if s.parse::<i64>().is_ok() => Ok(s.parse().ok()),
            Some(v) => Err(self.wrong(key, "an integer", v)),
        }
    }

    /// `port` as a number (1-65535).
    pub fn quiet_port(&self) -> Result<u16, Error> {
        match self.int("port")? {
            Some(n) if (1..=65535).contains(&n) => Ok(n as u16),
            Some(n) => Err(self.invalid("port", format!("{n} is not a port (1-65535)"))),
            None => Err(self.invalid("port", "missing")),
        }
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "true or false", v)),
        }
    }

    /// A nested mapping.
    pub fn obj(&self, key: &str) -> Result<Option<Obj<'a>>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(self.at(key), v, self.warnings.clone()).map(Some),
        }
    }

    /// A list of mappings, each read at `key[NAME]` (its `name`) or `key[i]`.
    pub fn list(&self, key: &str) -> Result<Vec<Obj<'a>>, Error> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let label = v
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string());
                    Obj::new(
                        format!("{}[{label}]", self.at(key)),
                        v,
                        self.warnings.clone(),
                    )
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "a list", v)),
        }
    }

    /// A list of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, Error> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                    other => Err(self.wrong(key, "a list of strings", other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "a list of strings", v)),
        }
    }

    /// A mapping of strings (labels, ConfigMap data).
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, Error> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                    Value::Null => Ok((k.clone(), String::new())),
                    other => Err(self.wrong(&format!("{key}.{k}"), "a string", other)),
                })
                .collect(),
            Some(v) => Err(self.wrong(key, "a mapping of strings", v)),
        }
    }

    /// A field berth reads but does not apply: named with why, when set.
    pub fn unapplied(&self, key: &str, why: &str) {
        if self.get(key).is_some() {
            self.warn(format!("{}: {why}; not applied", self.at(key)));
        }
    }

    /// A field whose value changes nothing on one host: read, no warning.
    pub fn quiet(&self, key: &str) {
        self.used.borrow_mut().insert(key.to_string());
    }

    /// Add a warning.
    pub fn warn(&self, w: String) {
        self.warnings.borrow_mut().push(w);
    }

    /// An error at `path.key`.
    pub fn invalid(&self, key: &str, why: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("{}: {why}", self.at(key)))
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> Error {
        self.invalid(
            key,
            format!("expected {expected}, found {}", kind_of(found)),
        )
    }
}

impl Drop for Obj<'_> {
    fn drop(&mut self) {
        let used = self.used.borrow();
        for (k, v) in self.map {
            if used.contains(k) || v.is_null() || is_empty(v) {
                continue;
            }
            self.warnings.borrow_mut().push(format!(
                "{}: berth does not apply this field; not applied",
                self.at(k)
            ));
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unread_fields_are_named_with_their_path() {
        let w: Warnings = Default::default();
        let v = json!({"a": 1, "b": {"c": "x", "d": true}, "e": [], "f": null});
        {
            let o = Obj::new("Pod p: spec".into(), &v, w.clone()).unwrap();
            assert_eq!(o.int("a").unwrap(), Some(1));
            let b = o.obj("b").unwrap().unwrap();
            assert_eq!(b.str("c").unwrap().as_deref(), Some("x"));
        }
        assert_eq!(
            w.borrow().as_slice(),
            ["Pod p: spec.b.d: berth does not apply this field; not applied"]
        );
        let o = Obj::new("x".into(), &v, w.clone()).unwrap();
        assert!(o.str("b").is_err());
        o.quiet("a");
        o.quiet("b");
    }
}
