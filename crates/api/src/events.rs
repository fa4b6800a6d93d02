//! `GET /events`: the stored events from `since`, then the live ones until
//! `until` or until the client goes, one JSON object a line in dockerd's
//! shape (`engine::events::Event`).
//!
//! Recorded from dockerd 20.10: `200`, `Content-Type: application/json`,
//! chunked, the headers sent before any event; unknown filter keys are
//! ignored; a bad `since` is a 400 with Go's `strconv.ParseInt` words.
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{ApiError, AppState};

/// `GET /events` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// How often the follower looks at the log (and at the client).
const POLL: Duration = Duration::from_millis(50);

/// dockerd's timestamps: `seconds[.nanoseconds]` since the epoch.
pub(crate) fn api_time(s: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let bad =
        |v: &str| ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"));
    let secs: i64 = secs.parse().map_err(|_| bad(secs))?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        digits.parse().map_err(|_| bad(frac))?
    };
    DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(|| bad(s))
}

/// `GET /events`.
pub(crate) async fn events(
    State(st): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let since = api_time(&q.since)?;
    let until = api_time(&q.until)?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.since.as_deref().unwrap_or_default(),
                q.until.as_deref().unwrap_or_default()
            )));
        }
    }
    let filter = engine::events::Filter::from_api(q.filters.as_deref().unwrap_or(""))?;
    let root = st.paths.root.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    // A thread of its own, named so that one left behind would show: it
    // ends at `until` or once the client has gone (the channel closes).
    std::thread::Builder::new()
        .name("berth-events".into())
        .spawn(move || {
            let send = |e: &engine::events::Event| -> bool {
                if !filter.matches(e) {
                    return true;
                }
                let mut line = serde_json::to_vec(e).unwrap_or_default();
                line.push(b'\n');
                tx.blocking_send(line).is_ok()
            };
            // Follow from now first, so nothing written meanwhile is lost.
            let mut tail = engine::events::Tail::at_end(&root);
            let started = Utc::now();
            if let Some(s) = since {
                for e in engine::events::read_stored(&root) {
                    let t = e.when();
                    if t >= s && t < started && until.is_none_or(|u| t <= u) && !send(&e) {
                        return;
                    }
                }
            }
            loop {
                if until.is_some_and(|u| Utc::now() > u) || tx.is_closed() {
                    return;
                }
                for e in tail.poll() {
                    if until.is_some_and(|u| e.when() > u) {
                        return;
                    }
                    if !send(&e) {
                        return;
                    }
                }
                std::thread::sleep(POLL);
            }
        })
        .map_err(|e| ApiError::internal(format!("starting the events follower: {e}")))?;
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from_stream(
            st.stopping.cut(crate::stats::channel_stream(rx)),
        ))
        .map_err(|e| ApiError::internal(e.to_string()))
}
