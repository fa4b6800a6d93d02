//! Typed reads of the untyped tree: each helper takes a node and its key
//! path, and turns a value of the wrong kind into an error naming
//! `file:line` and the path. Values written as strings are accepted where a
//! number or boolean is expected (they usually come from `${VAR}`), and
//! scalars are accepted where a string is expected.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::yaml::{KeyPath, Map, Node, Pos, Sources, Value};
use super::{LoadError, Location};
use crate::model::GoDuration;

/// What normalization reads besides the tree.
pub(crate) struct Cx<'a> {
    pub sources: &'a Sources,
    /// The interpolation environment (process environment over `.env`).
    pub env: &'a BTreeMap<String, String>,
    pub home: Option<PathBuf>,
    pub warnings: RefCell<Vec<String>>,
}

pub(crate) type Result<T, E = LoadError> = std::result::Result<T, E>;

/// The location of `pos` for messages.
pub(crate) fn location(sources: &Sources, pos: Pos) -> Location {
    Location {
        file: sources
            .list
            .get(pos.source)
            .map(|s| s.display.clone())
            .unwrap_or_default(),
        line: pos.line,
    }
}

/// An error about the value at `pos`, whose key path is `path`.
pub(crate) fn invalid(
    sources: &Sources,
    pos: Pos,
    path: &KeyPath,
    message: impl Into<String>,
) -> LoadError {
    LoadError::Invalid {
        location: location(sources, pos),
        key: path.to_string(),
        message: message.into(),
    }
}

impl Cx<'_> {
    pub fn invalid(&self, pos: Pos, path: &KeyPath, message: impl Into<String>) -> LoadError {
        invalid(self.sources, pos, path, message)
    }

    pub fn warn(&self, message: String) {
        let mut w = self.warnings.borrow_mut();
        if !w.contains(&message) {
            w.push(message);
        }
    }

    /// `p` made absolute against the directory relative paths of the file
    /// holding `pos` are relative to; `~` is the home directory.
    pub fn resolve_path(&self, pos: Pos, p: &str) -> String {
        let base = self
            .sources
            .list
            .get(pos.source)
            .map(|s| s.base_dir.as_path())
            .unwrap_or(Path::new("/"));
        resolve_path(base, self.home.as_deref(), p)
    }

    fn expected(&self, n: &Node, path: &KeyPath, what: &str) -> LoadError {
        self.invalid(n.pos, path, format!("expected {what}, got {}", n.kind()))
    }

    pub fn string(&self, n: &Node, path: &KeyPath) -> Result<String> {
        n.scalar_text()
            .ok_or_else(|| self.expected(n, path, "a string"))
    }

    pub fn boolean(&self, n: &Node, path: &KeyPath) -> Result<bool> {
        match &n.value {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) => {
                let b = parse_bool(s)
                    .ok_or_else(|| self.invalid(n.pos, path, format!("invalid boolean {s:?}")))?;
                if !matches!(s.to_ascii_lowercase().as_str(), "true" | "false") {
                    self.warn(format!(
                        "{path}: {s:?} for boolean is not supported by YAML 1.2, please use `{b}`"
                    ));
                }
                Ok(b)
            }
            _ => Err(self.expected(n, path, "a boolean")),
        }
    }

    pub fn int(&self, n: &Node, path: &KeyPath) -> Result<i64> {
        match &n.value {
            Value::Int(i) => Ok(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e18 => Ok(*f as i64),
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(n.pos, path, format!("invalid integer {s:?}"))),
            _ => Err(self.expected(n, path, "an integer")),
        }
    }

    /// An integer that must fit `T` (a port, a count...).
    pub fn int_in<T: TryFrom<i64>>(&self, n: &Node, path: &KeyPath) -> Result<T> {
        let i = self.int(n, path)?;
        T::try_from(i).map_err(|_| self.invalid(n.pos, path, format!("{i} is out of range")))
    }

    pub fn float(&self, n: &Node, path: &KeyPath) -> Result<f64> {
        match &n.value {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| self.invalid(n.pos, path, format!("invalid number {s:?}"))),
            _ => Err(self.expected(n, path, "a number")),
        }
    }

    pub fn duration(&self, n: &Node, path: &KeyPath) -> Result<GoDuration> {
        let s = self.string(n, path)?;
        GoDuration::parse(&s).map_err(|e| self.invalid(n.pos, path, e))
    }

    /// A size in bytes: an integer or `512m`, `1g`, `100k`, `1024b` (binary
    /// multiples, as docker's `RAMInBytes`).
    pub fn bytes(&self, n: &Node, path: &KeyPath) -> Result<u64> {
        match &n.value {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            _ => {
                let s = self.string(n, path)?;
                parse_bytes(&s)
                    .ok_or_else(|| self.invalid(n.pos, path, format!("invalid size {s:?}")))
            }
        }
    }

    pub fn list<'n>(&self, n: &'n Node, path: &KeyPath) -> Result<&'n [Node]> {
        match &n.value {
            Value::Seq(items) => Ok(items),
            _ => Err(self.expected(n, path, "a list")),
        }
    }

    pub fn strings(&self, n: &Node, path: &KeyPath) -> Result<Vec<String>> {
        self.list(n, path)?
            .iter()
            .enumerate()
            .map(|(i, item)| self.string(item, &path.index(i)))
            .collect()
    }

    /// A string or a list of strings.
    pub fn string_or_list(&self, n: &Node, path: &KeyPath) -> Result<Vec<String>> {
        match &n.value {
            Value::Seq(_) => self.strings(n, path),
            _ => Ok(vec![self.string(n, path)?]),
        }
    }

    /// Compose's `list_or_dict`: `{A: 1, B: null}` or `["A=1", "B"]`; a
    /// name without a value is `None`.
    pub fn dict(&self, n: &Node, path: &KeyPath) -> Result<Vec<(String, Option<String>, Pos)>> {
        match &n.value {
            Value::Map(m) => m
                .entries
                .iter()
                .map(|e| {
                    let p = path.key(&e.key);
                    let v = match &e.value.value {
                        Value::Null => None,
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(self.expected(&e.value, &p, "a string, number or null"))
                        }
                        _ => e.value.scalar_text(),
                    };
                    Ok((e.key.clone(), v, e.key_pos))
                })
                .collect(),
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let s = self.string(item, &path.index(i))?;
                    Ok(match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string()), item.pos),
                        None => (s, None, item.pos),
                    })
                })
                .collect(),
            _ => Err(self.expected(n, path, "a mapping or a list")),
        }
    }

    /// A `list_or_dict` with every name given a value (`""` when none).
    pub fn labels(&self, n: &Node, path: &KeyPath) -> Result<BTreeMap<String, String>> {
        Ok(self
            .dict(n, path)?
            .into_iter()
            .map(|(k, v, _)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// A mapping with keys of the user's choosing.
    pub fn map<'n>(&self, n: &'n Node, path: &KeyPath) -> Result<&'n Map> {
        match &n.value {
            Value::Map(m) => Ok(m),
            _ => Err(self.expected(n, path, "a mapping")),
        }
    }

    /// A mapping whose keys are all in `allowed` (or start with `x-`).
    pub fn obj<'n>(&self, n: &'n Node, path: &KeyPath, allowed: &[&str]) -> Result<Obj<'n>> {
        let Value::Map(map) = &n.value else {
            return Err(self.expected(n, path, "a mapping"));
        };
        for e in &map.entries {
            if !e.key.starts_with("x-") && !allowed.contains(&e.key.as_str()) {
                return Err(self.invalid(
                    e.key_pos,
                    path,
                    format!("additional property {} is not allowed", e.key),
                ));
            }
        }
        Ok(Obj {
            map,
            path: path.clone(),
            pos: n.pos,
        })
    }
}

/// A mapping being read field by field.
pub(crate) struct Obj<'n> {
    pub map: &'n Map,
    pub path: KeyPath,
    pub pos: Pos,
}

impl<'n> Obj<'n> {
    /// The field's node and path; `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<(&'n Node, KeyPath)> {
        self.map
            .get(key)
            .filter(|n| !n.is_null())
            .map(|n| (n, self.path.key(key)))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The `x-` keys and their values, as written.
    pub fn extensions(&self) -> BTreeMap<String, serde_json::Value> {
        self.map
            .entries
            .iter()
            .filter(|e| e.key.starts_with("x-"))
            .map(|e| (e.key.clone(), e.value.to_json()))
            .collect()
    }

    /// Read the field with `f` when present.
    pub fn opt<T>(
        &self,
        key: &str,
        f: impl FnOnce(&'n Node, &KeyPath) -> Result<T>,
    ) -> Result<Option<T>> {
        self.get(key).map(|(n, p)| f(n, &p)).transpose()
    }

    pub fn string(&self, cx: &Cx, key: &str) -> Result<Option<String>> {
        self.opt(key, |n, p| cx.string(n, p))
    }

    pub fn boolean(&self, cx: &Cx, key: &str) -> Result<Option<bool>> {
        self.opt(key, |n, p| cx.boolean(n, p))
    }

    pub fn flag(&self, cx: &Cx, key: &str) -> Result<bool> {
        Ok(self.boolean(cx, key)?.unwrap_or(false))
    }

    pub fn strings(&self, cx: &Cx, key: &str) -> Result<Vec<String>> {
        Ok(self.opt(key, |n, p| cx.strings(n, p))?.unwrap_or_default())
    }

    pub fn string_or_list(&self, cx: &Cx, key: &str) -> Result<Vec<String>> {
        Ok(self
            .opt(key, |n, p| cx.string_or_list(n, p))?
            .unwrap_or_default())
    }

    pub fn labels(&self, cx: &Cx, key: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.opt(key, |n, p| cx.labels(n, p))?.unwrap_or_default())
    }

    pub fn duration(&self, cx: &Cx, key: &str) -> Result<Option<GoDuration>> {
        self.opt(key, |n, p| cx.duration(n, p))
    }
}

/// A boolean written as a string, as compose-go casts it after
/// interpolation (the YAML 1.1 spellings too).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "y" | "yes" | "on" => Some(true),
        "false" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// docker's `units.RAMInBytes` (`model::size::ram_in_bytes`), around
/// surrounding blanks.
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
    model::size::ram_in_bytes(s.trim())
}

/// `p` made absolute against `base` (`~` against `home`), cleaned lexically.
pub(crate) fn resolve_path(base: &Path, home: Option<&Path>, p: &str) -> String {
    let expanded = match (p.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            h.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(p),
    };
    let joined = if expanded.is_absolute() {
        expanded
    } else {
        base.join(expanded)
    };
    clean(&joined).to_string_lossy().into_owned()
}

/// `..` and `.` removed without touching the file system (Go's `filepath.Clean`).
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !p.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(if p.is_absolute() { "/" } else { "." });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("100k"), Some(100 << 10));
        assert_eq!(parse_bytes("1024b"), Some(1024));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("1.5g"), Some(3 << 29));
        assert_eq!(parse_bytes("64 MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("12q"), None);
        assert_eq!(parse_bytes(""), None);
    }

    #[test]
    fn paths() {
        let base = Path::new("/p/proj");
        let home = Some(Path::new("/home/u"));
        assert_eq!(resolve_path(base, home, "./data"), "/p/proj/data");
        assert_eq!(resolve_path(base, home, "../x/./y"), "/p/x/y");
        assert_eq!(resolve_path(base, home, "."), "/p/proj");
        assert_eq!(resolve_path(base, home, "/abs/../b"), "/b");
        assert_eq!(resolve_path(base, home, "~/c"), "/home/u/c");
        assert_eq!(resolve_path(base, home, "~"), "/home/u");
        assert_eq!(resolve_path(base, home, "~x"), "/p/proj/~x");
    }
}
