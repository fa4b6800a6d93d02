//! Docker's `--filter key=value` sets (`ps`, `images`, `network ls`,
//! `volume ls`), with Docker's semantics: values of one key are
//! alternatives, different keys must all hold; most keys match a value
//! exactly or as a regular expression (Go's RE2 syntax, which the `regex`
//! crate shares); `label` filters must all hold. One type for the CLI and
//! the Engine API, so `ps --filter` and `GET /containers/json?filters=`
//! cannot drift apart.
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{EngineError, Result};

/// Parsed filters: key → the values given for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

impl Filters {
    /// From the API's `filters` query parameter, in either of dockerd's
    /// encodings: `{"label":{"a=b":true}}` or the old `{"label":["a=b"]}`.
    pub fn from_json(text: &str, accepted: &[&str]) -> Result<Filters> {
        if text.trim().is_empty() {
            return Ok(Filters::default());
        }
        let bad = |why: String| EngineError::BadFilter(format!("invalid filter: {why}"));
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        let mut args = Vec::new();
        for (k, v) in obj {
            let values: Vec<String> = match v {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(x, _)| x.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| bad(format!("{k}: expected strings")))
                    })
                    .collect::<Result<_>>()?,
                _ => return Err(bad(format!("{k}: expected an object or a list"))),
            };
            args.extend(values.into_iter().map(|v| format!("{k}={v}")));
        }
        Filters::parse(&args, accepted)
    }

    /// From `--filter` arguments (`key=value`), refusing keys not in
    /// `accepted` with Docker's message.
    pub fn parse(args: &[String], accepted: &[&str]) -> Result<Filters> {
        let mut f = Filters::default();
        for a in args {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                EngineError::BadFilter(format!("bad format of filter (expected name=value): {a}"))
            })?;
            let k = k.trim().to_ascii_lowercase();
            if !accepted.contains(&k.as_str()) {
                return Err(EngineError::BadFilter(format!("Invalid filter '{k}'")));
            }
            f.fields.entry(k).or_default().insert(v.to_string());
        }
        Ok(f)
    }

    /// Was `key` given?
    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    /// The values of `key`.
    pub fn values(&self, key: &str) -> impl Iterator<Item = &str> {
        self.fields
            .get(key)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// No `key` filter, or one of its values equals `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        match self.fields.get(key) {
            None => true,
            Some(vs) => vs.contains(source),
        }
    }

    /// No `key` filter, or one of its values equals `source` or is a
    /// regular expression found in it (Docker's `Match`).
    pub fn matches(&self, key: &str, source: &str) -> bool {
        if self.exact(key, source) {
            return true;
        }
        self.values(key).any(|v| {
            regex::Regex::new(v)
                .map(|re| re.is_match(source))
                .unwrap_or(false)
        })
    }

    /// No `key` filter, or every value (`k` or `k=v`) holds in `labels`
    /// (Docker's `MatchKVList`).
    pub fn labels(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(vs) = self.fields.get(key) else {
            return true;
        };
        vs.iter().all(|v| match v.split_once('=') {
            Some((k, want)) => labels.get(k).is_some_and(|have| have == want),
            None => labels.contains_key(v.as_str()),
        })
    }

    /// A boolean filter (`dangling=true`): None when not given, an error
    /// for anything but true/false (1/0).
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        let mut out = None;
        for v in self.values(key) {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(EngineError::BadFilter(format!(
                        "Invalid filter '{key}={v}'"
                    )))
                }
            };
            out = Some(b);
        }
        Ok(out)
    }
}

/// Go's `path.Match` as Docker's `reference` filter uses it: `*` and `?`
/// never match `/`, `[...]` classes (with `^`/`!` and ranges).
pub fn glob(pattern: &str, text: &str) -> bool {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, length consumed incl. ']').
        let mut i = 0;
        let negate = matches!(p.first(), Some('^') | Some('!'));
        if negate {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((hit != negate, i + 1));
            }
            first = false;
            let lo = p[i];
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hit |= lo <= c && c <= p[i + 2];
                i += 3;
            } else {
                hit |= lo == c;
                i += 1;
            }
        }
        None
    }
    fn rec(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => rec(&p[1..], t) || (!t.is_empty() && t[0] != '/' && rec(p, &t[1..])),
            Some('?') => !t.is_empty() && t[0] != '/' && rec(&p[1..], &t[1..]),
            Some('[') => match (t.first(), class(&p[1..], t.first().copied().unwrap_or('/'))) {
                (Some(_), Some((true, n))) => rec(&p[1 + n..], &t[1..]),
                _ => false,
            },
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && rec(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && rec(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    rec(&p, &t)
}

/// The filter keys of `images` (Docker's `acceptedImageFilterTags`).
pub const IMAGE_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference"];
/// The filter keys of `network ls`.
pub const NETWORK_FILTERS: &[&str] =
    &["driver", "id", "label", "name", "scope", "type", "dangling"];
/// The filter keys of `volume ls`.
pub const VOLUME_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];

/// Docker's predefined networks (never dangling, `type=builtin`).
fn predefined(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
}

impl crate::Engine {
    /// `images [-a] [--filter]`: newest first.
    pub fn list_images(&self, all: bool, f: &Filters) -> Result<Vec<store::ImageRecord>> {
        let mut list = if all {
            self.store().list_all_images()?
        } else {
            self.store().list_images()?
        };
        list.sort_by_key(|i| std::cmp::Reverse(i.created));
        let dangling = f.boolean("dangling")?;
        let time_of = |key: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>> {
            match f.values(key).next() {
                None => Ok(None),
                Some(r) => Ok(self
                    .store()
                    .resolve_image(r)
                    .map_err(|_| EngineError::BadFilter(format!("No such image: {r}")))?
                    .created),
            }
        };
        let (before, since) = (time_of("before")?, time_of("since")?);
        list.retain(|img| {
            dangling.is_none_or(|d| img.repo_tags.is_empty() == d)
                && f.labels("label", &img.labels)
                && before.is_none_or(|b| img.created.is_some_and(|c| c < b))
                && since.is_none_or(|s| img.created.is_some_and(|c| c > s))
                && (!f.contains("reference")
                    || f.values("reference").any(|pat| {
                        img.repo_tags
                            .iter()
                            .any(|r| glob(pat, &r.familiar_name()) || glob(pat, &r.familiar()))
                    }))
        });
        Ok(list)
    }

    /// `network ls [--filter]`, by name.
    pub fn list_networks(&self, f: &Filters) -> Result<Vec<store::NetworkRecord>> {
        let mut list = self.store().networks()?;
        list.extend(self.builtin_networks());
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let dangling = f.boolean("dangling")?;
        for t in f.values("type") {
            if t != "builtin" && t != "custom" {
                return Err(EngineError::BadFilter(format!(
                    "invalid filter: 'type'='{t}'"
                )));
            }
        }
        let in_use: std::collections::BTreeSet<String> = self
            .containers()?
            .iter()
            .filter(|c| c.is_running())
            .flat_map(|c| c.config.networks.clone())
            .collect();
        list.retain(|n| {
            f.exact("driver", &n.driver)
                && f.matches("name", &n.name)
                && f.matches("id", &n.id)
                && f.labels("label", &n.labels)
                && f.exact("scope", "local")
                && dangling.is_none_or(|d| {
                    let dangles = !predefined(&n.name) && !in_use.contains(&n.name);
                    dangles == d
                })
                && (!f.contains("type")
                    || f.values("type")
                        .any(|t| (t == "builtin") == predefined(&n.name)))
        });
        Ok(list)
    }

    /// `volume ls [--filter]`, by name.
    pub fn list_volumes(&self, f: &Filters) -> Result<Vec<store::VolumeRecord>> {
        let mut list = self.store().volumes()?;
        let dangling = f.boolean("dangling")?;
        let used = if dangling.is_some() {
            self.store().volumes_in_use()?
        } else {
            Default::default()
        };
        list.retain(|v| {
            f.exact("driver", &v.driver)
                && f.matches("name", &v.name)
                && f.labels("label", &v.labels)
                && dangling.is_none_or(|d| used.contains(&v.name) != d)
        });
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(args: &[&str]) -> Filters {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        Filters::parse(&args, &["name", "label", "status", "dangling"]).unwrap()
    }

    #[test]
    fn dockers_semantics() {
        let name = f(&["name=^web-", "name=db"]);
        assert!(name.matches("name", "web-1"));
        assert!(name.matches("name", "mydb2"), "values are alternatives");
        assert!(!name.matches("name", "api"));
        assert!(f(&[]).matches("name", "anything"));
        // A value that is not a valid expression still matches exactly.
        assert!(f(&["name=a(b"]).matches("name", "a(b"));
        let labels: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into();
        assert!(f(&["label=a", "label=b=2"]).labels("label", &labels));
        assert!(
            !f(&["label=a", "label=c"]).labels("label", &labels),
            "all must hold"
        );
        assert!(!f(&["label=a=2"]).labels("label", &labels));
        assert_eq!(
            f(&["dangling=true"]).boolean("dangling").unwrap(),
            Some(true)
        );
        assert!(f(&["dangling=maybe"]).boolean("dangling").is_err());
        assert!(glob("bb*", "bb"));
        assert!(glob("*box:1.?", "busybox:1.2"));
        assert!(!glob("alpine*", "busybox"));
        assert!(glob("*/app", "me/app"));
        assert!(!glob("*", "me/app"), "* stops at /");
        assert!(glob("b[a-c]?:1", "bbx:1"));
        assert!(!glob("b[!b]", "bb"));
        let err = Filters::parse(&["foo=bar".to_string()], &["name"]).unwrap_err();
        assert!(err.to_string().contains("Invalid filter 'foo'"), "{err}");
        assert!(Filters::parse(&["name".to_string()], &["name"]).is_err());
    }
}
