//! The event log behind `berth events`. With no daemon, every berth process
//! (CLIs, monitors) appends its events to `<root>/events.log`, one JSON
//! object per line in Docker's event shape, with one `O_APPEND` write (so
//! lines from concurrent writers never interleave). The file is bounded:
//! past 1 MiB it moves to `events.log.1`, replacing the previous one.
//! `berth events` replays both from `--since` and follows the live file.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Rotate the log past this size.
pub const MAX_SIZE: u64 = 1 << 20;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    /// Its id (a container id, an image id or reference, a network id, a
    /// volume name).
    #[serde(rename = "ID")]
    pub id: String,
    /// Attributes (name, image, exitCode, signal...).
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as Docker's `/events` JSON (dockerd's field order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Event {
    /// Docker's legacy fields for containers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Legacy: the container id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Legacy: the container's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// `container`, `image`, `network` or `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `create`, `start`, `die`, `health_status: healthy`, `pull`...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it is about.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Always `local`.
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Nanoseconds since the epoch.
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// A new event happening now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        let now = Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default();
        let attributes: BTreeMap<String, String> = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (status, legacy_id, from) = if kind == "container" {
            (
                action.to_string(),
                id.to_string(),
                attributes.get("image").cloned().unwrap_or_default(),
            )
        } else {
            Default::default()
        };
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
            status,
            id: legacy_id,
            from,
        }
    }

    /// When it happened.
    pub fn when(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.time_nano)
    }

    /// Docker's text line:
    /// `<time> <type> <action> <id> (k=v, k=v)`.
    pub fn line(&self) -> String {
        let attrs: Vec<String> = self
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} {} {} {} ({})",
            self.when().to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.kind,
            self.action,
            self.actor.id,
            attrs.join(", ")
        )
    }
}

/// The log file under a state root.
pub fn log_path(root: &Path) -> PathBuf {
    root.join("events.log")
}

/// Append an event; best effort (an event that cannot be written must not
/// fail the operation it reports).
pub fn emit(root: &Path, event: &Event) {
    let Ok(mut line) = serde_json::to_vec(event) else {
        return;
    };
    line.push(b'\n');
    let path = log_path(root);
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    if f.write_all(&line).is_err() {
        return;
    }
    if f.metadata().map(|m| m.len() > MAX_SIZE).unwrap_or(false) {
        rotate(&path, &f);
    }
}

/// Move a full log aside, once: the writer that holds the lock on the
/// current file renames it, if it is still the file at `path`.
fn rotate(path: &Path, f: &std::fs::File) {
    let Ok(dup) = f.try_clone() else { return };
    let Ok(_guard) = nix::fcntl::Flock::lock(dup, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return;
    };
    let same = match (std::fs::metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    };
    if same {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = std::fs::rename(path, PathBuf::from(old));
    }
}

/// `--filter` of `events`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// key → accepted values (any of them).
    pub terms: BTreeMap<String, Vec<String>>,
}

impl Filter {
    /// Parse `key=value` filters.
    pub fn parse(specs: &[String]) -> Result<Filter, String> {
        let mut f = Filter::default();
        for s in specs {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| format!("bad filter {s:?}: use key=value"))?;
            if !matches!(
                k,
                "type" | "container" | "image" | "event" | "network" | "volume" | "label"
            ) {
                return Err(format!(
                    "invalid filter {k:?}: use type, container, image, event, network, volume or label"
                ));
            }
            f.terms.entry(k.into()).or_default().push(v.into());
        }
        Ok(f)
    }

    /// The API's `filters` parameter, in either of dockerd's encodings
    /// (`crate::filters::Filters::from_json`). dockerd ignores the keys it
    /// does not know for events (recorded from 20.10: `{"bogus":["x"]}`
    /// answers every event), and so does this.
    pub fn from_api(text: &str) -> crate::Result<Filter> {
        const KEYS: &[&str] = &[
            "type",
            "container",
            "image",
            "event",
            "network",
            "volume",
            "label",
        ];
        let mut doc: serde_json::Value = if text.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(text)
                .map_err(|e| crate::EngineError::BadFilter(format!("invalid filter: {e}")))?
        };
        if let Some(m) = doc.as_object_mut() {
            m.retain(|k, _| KEYS.contains(&k.as_str()));
        }
        let parsed = crate::filters::Filters::from_json(&doc.to_string(), KEYS)?;
        let mut f = Filter::default();
        for k in KEYS {
            let values: Vec<String> = parsed.values(k).map(str::to_string).collect();
            if !values.is_empty() {
                f.terms.insert(k.to_string(), values);
            }
        }
        Ok(f)
    }

    /// Does the event pass every given key?
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str);
        self.terms.iter().all(|(k, values)| {
            values.iter().any(|v| match k.as_str() {
                "type" => e.kind == *v,
                // "health_status" matches "health_status: healthy".
                "event" => e.action == *v || e.action.split(':').next().is_some_and(|a| a == v),
                "container" => {
                    e.kind == "container"
                        && (e.actor.id.starts_with(v.as_str()) || attr("name") == Some(v))
                }
                "image" => {
                    (e.kind == "image" && (e.actor.id == *v || attr("name") == Some(v)))
                        || (e.kind == "container" && attr("image") == Some(v))
                }
                "network" => {
                    e.kind == "network"
                        && (e.actor.id.starts_with(v.as_str()) || attr("name") == Some(v))
                }
                "volume" => e.kind == "volume" && e.actor.id == *v,
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => attr(lk) == Some(lv),
                    None => attr(v).is_some(),
                },
                _ => false,
            })
        })
    }
}

/// Every stored event (the rotated file, then the current one), oldest
/// first; lines that do not parse are skipped.
pub fn read_stored(root: &Path) -> Vec<Event> {
    let path = log_path(root);
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    let mut out = Vec::new();
    for p in [PathBuf::from(old), path] {
        if let Ok(text) = std::fs::read(&p) {
            out.extend(
                text.split(|&b| b == b'\n')
                    .filter_map(|l| serde_json::from_slice::<Event>(l).ok()),
            );
        }
    }
    out
}

/// Follows the live log from its current end (across rotations).
pub struct Tail {
    inner: crate::logs::LineTail,
}

impl Tail {
    /// Start at the current end of the log under `root`.
    pub fn at_end(root: &Path) -> Tail {
        Tail {
            inner: crate::logs::LineTail::at_end(&log_path(root)),
        }
    }

    /// Events written since the last call.
    pub fn poll(&mut self) -> Vec<Event> {
        self.inner
            .poll()
            .unwrap_or_default()
            .iter()
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_filter_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = Tail::at_end(dir.path());
        let e = Event::new(
            "container",
            "health_status: healthy",
            "abc123",
            &[("name", "web"), ("image", "bb")],
        );
        emit(dir.path(), &e);
        let got = tail.poll();
        assert_eq!(got, vec![e.clone()]);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["status"], "health_status: healthy");
        let f = |s: &[&str]| {
            Filter::parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&["event=health_status", "container=web"]).matches(&e));
        assert!(f(&["image=bb", "type=container"]).matches(&e));
        assert!(!f(&["type=image"]).matches(&e));
        assert!(!f(&["container=other"]).matches(&e));
        assert!(Filter::parse(&["colour=red".to_string()]).is_err());
        assert!(e
            .line()
            .contains("container health_status: healthy abc123 (image=bb, name=web)"));
        // Past MAX_SIZE the log moves aside; both parts stay readable and
        // the tail follows the new file.
        let big = Event::new("volume", "create", &"v".repeat(4000), &[]);
        for _ in 0..(MAX_SIZE / 4000 + 2) {
            emit(dir.path(), &big);
        }
        let after = Event::new("network", "create", "n1", &[]);
        emit(dir.path(), &after);
        assert!(log_path(dir.path()).with_extension("log.1").exists());
        let live = tail.poll();
        assert_eq!(live.last(), Some(&after));
        let stored = read_stored(dir.path());
        assert_eq!(stored.last(), Some(&after));
    }
}
