//! `container prune`: remove every stopped container the filters keep
//! (dockerd's `ContainersPrune`: `until`, `label`, `label!`).
use chrono::{DateTime, Utc};

use crate::error::{EngineError, Result};
use crate::filters::Filters;

/// The filter keys of `container prune`.
pub const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The removed containers' ids.
    pub deleted: Vec<String>,
    /// The bytes their writable layers took.
    pub reclaimed: u64,
}

/// An `until` value: Unix seconds, RFC 3339, or a duration before now
/// (`10m`, `1h30m`), as dockerd takes it.
pub fn parse_until(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        if let Some(t) = DateTime::from_timestamp(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
        {
            return Ok(t);
        }
    }
    crate::health::parse_duration(s)
        .map(|ns| Utc::now() - chrono::Duration::nanoseconds(ns))
        .map_err(|_| EngineError::BadFilter(format!("invalid filter 'until={s}'")))
}

impl crate::Engine {
    /// Remove the stopped containers `f` keeps; a container that cannot be
    /// removed (one starting meanwhile) is left alone.
    pub fn prune_containers(&self, f: &Filters) -> Result<PruneReport> {
        let until = f.values("until").next().map(parse_until).transpose()?;
        let mut report = PruneReport::default();
        for c in self.containers()? {
            if c.is_running() || c.state.status == crate::config::Status::Restarting {
                continue;
            }
            if until.is_some_and(|u| c.record.created >= u)
                || !f.labels("label", &c.config.labels)
                || (f.contains("label!") && f.labels("label!", &c.config.labels))
            {
                continue;
            }
            let size = self.container_size_rw(c.id());
            if self.remove(c.id().as_str(), false, false).is_ok() {
                report.reclaimed += size;
                report.deleted.push(c.id().as_str().to_string());
            }
        }
        Ok(report)
    }
}
