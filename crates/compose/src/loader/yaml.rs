//! The untyped tree of a Compose file: what serde-saphyr parses (anchors,
//! aliases and `<<` merge keys already expanded), with the file and line of
//! every node, so that the later stages (interpolation, merging, typing)
//! can name `file:line` and the key path of whatever they reject.
use std::fmt;
use std::path::PathBuf;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

/// Where a node comes from: an index into [`Sources`] and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub source: usize,
    pub line: u64,
}

/// A YAML value. Numbers and booleans are kept apart from strings so that
/// interpolation leaves `80` a number and `"80"` a string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A value and where it was written (for an alias: where it was used).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Pos,
    /// Compose's `!reset` or `!override` on this value.
    pub tag: Option<MergeTag>,
}

/// The YAML tags of the Compose Specification's merge rules: `!reset`
/// removes the value (and what earlier files set there), `!override`
/// replaces the earlier value instead of merging with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeTag {
    Reset,
    Override,
}

/// A mapping, in file order, with string keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Map {
    pub entries: Vec<Entry>,
}

/// One `key: value` of a [`Map`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Map {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// Set `key`, keeping its place when it exists.
    pub fn insert(&mut self, key: String, key_pos: Pos, value: Node) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => e.value = value,
            None => self.entries.push(Entry {
                key,
                key_pos,
                value,
            }),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(i))
    }

    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }
}

impl Node {
    pub fn new(value: Value, pos: Pos) -> Node {
        Node {
            value,
            pos,
            tag: None,
        }
    }

    pub fn str(s: impl Into<String>, pos: Pos) -> Node {
        Node::new(Value::Str(s.into()), pos)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text (`80`, `true`, `0.5`); `None` for null and collections.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(float_text(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The value as JSON (for `x-` extensions, kept as written).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(
                m.entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// What kind of value this is, for messages (`expected a string, got a list`).
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Equal values, wherever they were written.
    pub fn same(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.entries.len() == b.entries.len()
                    && a.entries
                        .iter()
                        .all(|e| b.get(&e.key).is_some_and(|v| v.same(&e.value)))
            }
            (a, b) => a == b,
        }
    }
}

/// A float as YAML would show it (`1.0`, `0.5`).
pub(crate) fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// One file the loader has read.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path as given to the user in messages (relative to the working
    /// directory when under it).
    pub display: String,
    /// Absolute path (`-` for stdin).
    pub path: PathBuf,
    /// What relative paths written in this file are relative to: the
    /// project directory for the project's own files, the file's own
    /// directory for an `extends` file, the include's project directory for
    /// an included file.
    pub base_dir: PathBuf,
}

/// Every file read, indexed by [`Pos::source`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub list: Vec<Source>,
}

impl Sources {
    pub fn add(&mut self, source: Source) -> usize {
        self.list.push(source);
        self.list.len() - 1
    }

    pub fn get(&self, i: usize) -> &Source {
        &self.list[i]
    }
}

/// A key path such as `services.web.ports[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn root() -> KeyPath {
        KeyPath::default()
    }

    pub fn of(keys: &[&str]) -> KeyPath {
        KeyPath(keys.iter().map(|k| Seg::Key(k.to_string())).collect())
    }

    pub fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// Whether the keys match `pattern` (`*` matches any one key); indexes
    /// never match.
    pub fn matches(&self, pattern: &[&str]) -> bool {
        self.0.len() == pattern.len()
            && self.0.iter().zip(pattern).all(|(s, p)| match s {
                Seg::Key(k) => *p == "*" || k == p,
                Seg::Index(_) => false,
            })
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A YAML syntax error: line (0 when unknown) and message.
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: u64,
    pub message: String,
}

/// Parse one YAML document. An empty document is `Null`.
pub(crate) fn parse(text: &str, source: usize) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    // YAML 1.2 booleans (`yes` stays a string, as in docker compose) and
    // go-yaml's octal `0755`.
    options.strict_booleans = true;
    options.legacy_octal_numbers = true;
    options.with_snippet = false;
    let raw: RawNode = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        let mut message = e.to_string();
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        SyntaxError { line, message }
    })?;
    convert(raw, source)
}

fn convert(raw: RawNode, source: usize) -> Result<Node, SyntaxError> {
    let pos = Pos {
        source,
        line: raw.referenced.line(),
    };
    let Tagged(raw_value, tag) = raw.value;
    let tag = match tag.as_deref() {
        Some("!reset") => Some(MergeTag::Reset),
        Some("!override") => Some(MergeTag::Override),
        _ => None,
    };
    let value = match raw_value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|i| convert(i, source))
                .collect::<Result<_, _>>()?,
        ),
        Raw::Map(pairs) => {
            let mut map = Map::default();
            for (k, v) in pairs {
                let key_pos = Pos {
                    source,
                    line: k.referenced.line(),
                };
                let key = match convert(k, source)? {
                    Node {
                        value: Value::Null, ..
                    } => "null".to_string(),
                    n => n.scalar_text().ok_or_else(|| SyntaxError {
                        line: key_pos.line,
                        message: "a mapping key must be a scalar".into(),
                    })?,
                };
                map.insert(key, key_pos, convert(v, source)?);
            }
            Value::Map(map)
        }
    };
    Ok(Node { value, pos, tag })
}

/// A node as serde-saphyr gives it: with its span and tag.
type RawNode = Spanned<Tagged<Raw>>;

/// serde's view of any YAML node, with the spans and tags of its children.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Raw, E> {
                Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
                Raw::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(x) = a.next_element::<RawNode>()? {
                    items.push(x);
                }
                Ok(Raw::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut pairs = Vec::new();
                while let Some(k) = a.next_key::<RawNode>()? {
                    let v = a.next_value::<RawNode>()?;
                    pairs.push((k, v));
                }
                Ok(Raw::Map(pairs))
            }
        }
        d.deserialize_any(RawVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
        path.iter()
            .fold(n, |n, k| n.as_map().unwrap().get(k).unwrap())
    }

    #[test]
    fn scalars_keep_their_kind_and_line() {
        let n = parse(
            "a: 80\nb: \"80\"\nc: yes\nd: true\ne: 0.5\nf: 0755\ng:\nh: ~\n",
            0,
        )
        .unwrap();
        assert_eq!(get(&n, &["a"]).value, Value::Int(80));
        assert_eq!(get(&n, &["b"]).value, Value::Str("80".into()));
        assert_eq!(get(&n, &["c"]).value, Value::Str("yes".into()));
        assert_eq!(get(&n, &["d"]).value, Value::Bool(true));
        assert_eq!(get(&n, &["e"]).value, Value::Float(0.5));
        assert_eq!(get(&n, &["f"]).value, Value::Int(0o755));
        assert!(get(&n, &["g"]).is_null());
        assert!(get(&n, &["h"]).is_null());
        assert_eq!(get(&n, &["e"]).pos.line, 5);
        assert_eq!(n.as_map().unwrap().entry("f").unwrap().key_pos.line, 6);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let text = "x-base: &base\n  image: a\n  environment:\n    A: 1\nservices:\n  web:\n    <<: *base\n    image: b\n  db: *base\n";
        let n = parse(text, 3).unwrap();
        assert_eq!(
            get(&n, &["services", "web", "image"]).value,
            Value::Str("b".into())
        );
        assert_eq!(
            get(&n, &["services", "web", "environment", "A"]).value,
            Value::Int(1)
        );
        let db = get(&n, &["services", "db", "image"]);
        assert_eq!(db.value, Value::Str("a".into()));
        assert_eq!(db.pos.source, 3);
        assert_eq!(db.pos.line, 9, "an alias is placed where it is used");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse("services:\n  web:\n    image: [a\n    x: 1\n", 0).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(!e.message.contains(" at line "), "{}", e.message);
        let e = parse("a: 1\na: 2\n", 0).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn key_paths_print_and_match() {
        let p = KeyPath::of(&["services", "web"]).key("ports").index(1);
        assert_eq!(p.to_string(), "services.web.ports[1]");
        assert!(KeyPath::of(&["services", "web", "ports"]).matches(&["services", "*", "ports"]));
        assert!(!p.matches(&["services", "*", "ports"]));
    }
}
