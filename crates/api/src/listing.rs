//! `GET /containers/json` from a view kept between requests: clients
//! (`docker ps` in a loop, compose, IDEs, 50 testcontainers at once) ask
//! far more often than anything changes. The engine's `ContainerView`
//! keeps every container decoded and decodes again only the records that
//! changed; this module keeps each container's rendered summary (as bytes
//! around its status line, rendered anew for each answer: "Up 3 minutes")
//! while the view's serial for it stays.
//!
//! The view is brought up to date when the store's stamp (SQLite's change
//! counter, see `engine::StoreStamp`) moves, and at least every second
//! (a monitor that died without a word changes no record; the view looks
//! at the processes of running containers then).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::container::list::{filter_loaded, ListRequest};
use engine::container::view::{ContainerView, Viewed};
use engine::Engine;
use serde_json::Value;

use crate::IDLE;

/// How long the view may serve without a look at the store.
const MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Snapshot {
    stamp: Vec<u8>,
    taken: Option<Instant>,
    view: ContainerView,
    containers: Arc<Vec<Viewed>>,
    /// Rendered summaries by container id, with the serial they were
    /// rendered from.
    rendered: HashMap<String, (u64, Rendered)>,
}

/// The server's view of the container list.
pub(crate) struct Listing {
    stamp: engine::StoreStamp,
    snap: Mutex<Snapshot>,
    /// Held by the request that brings the view up to date: those that
    /// come meanwhile wait for its result instead of each taking a
    /// blocking thread and an engine (a burst of 50 clients after a
    /// change).
    pub(crate) refresh: tokio::sync::Mutex<()>,
}

impl Listing {
    pub(crate) fn new(paths: &engine::Paths) -> Listing {
        Listing {
            stamp: engine::StoreStamp::new(paths),
            snap: Mutex::default(),
            refresh: tokio::sync::Mutex::default(),
        }
    }

    /// Every container, the view brought up to date first when the store
    /// changed or the view is a second old.
    pub(crate) fn containers(&self, e: &Engine) -> engine::Result<Arc<Vec<Viewed>>> {
        let stamp = self.stamp.read();
        let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = snap.stamp == stamp && snap.taken.is_some_and(|t| t.elapsed() < MAX_AGE);
        if !fresh {
            e.refresh_view(&mut snap.view)?;
            snap.stamp = stamp;
            snap.taken = Some(Instant::now());
            let containers = Arc::new(snap.view.containers());
            let live: std::collections::HashSet<&str> = containers
                .iter()
                .map(|v| v.container.id().as_str())
                .collect();
            snap.rendered.retain(|id, _| live.contains(id.as_str()));
            snap.containers = containers;
        }
        Ok(snap.containers.clone())
    }

    /// The answer to `req` when the view is up to date and holds every
    /// summary it needs: no engine, no blocking thread (the store's stamp
    /// is a 48-byte read and a stat). `None`: ask the engine.
    pub(crate) fn answer_fresh(&self, req: &ListRequest) -> Option<engine::Result<Vec<u8>>> {
        let stamp = self.stamp.read();
        let all = {
            let snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            if snap.stamp != stamp || snap.taken.is_none_or(|t| t.elapsed() >= MAX_AGE) {
                return None;
            }
            snap.containers.clone()
        };
        let list = match filter_loaded(&all, req)? {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let known: Vec<Rendered> = {
            let snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            list.iter()
                .map(|v| {
                    snap.rendered
                        .get(v.container.id().as_str())
                        .filter(|(serial, _)| *serial == v.serial)
                        .map(|(_, r)| r.clone())
                })
                .collect::<Option<_>>()?
        };
        Some(Ok(body(&list, known)))
    }

    /// The JSON array of the API summaries of `list`, each rendered once
    /// per serial.
    pub(crate) fn summaries(&self, e: &Engine, list: &[&Viewed]) -> Vec<u8> {
        let mut known: Vec<Rendered> = Vec::with_capacity(list.len());
        {
            let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            let missing: Vec<&Viewed> = list
                .iter()
                .copied()
                .filter(|v| {
                    snap.rendered
                        .get(v.container.id().as_str())
                        .is_none_or(|(serial, _)| *serial != v.serial)
                })
                .collect();
            if !missing.is_empty() {
                let containers: Vec<&engine::container::Container> =
                    missing.iter().map(|v| &*v.container).collect();
                let fresh = e.view_summaries(&snap.view, &containers);
                for (v, summary) in missing.iter().zip(fresh) {
                    snap.rendered.insert(
                        v.container.id().as_str().to_string(),
                        (v.serial, render(summary)),
                    );
                }
            }
            for v in list {
                known.push(
                    snap.rendered
                        .get(v.container.id().as_str())
                        .map(|(_, r)| r.clone())
                        .unwrap_or_default(),
                );
            }
        }
        body(list, known)
    }

    /// Drop the view when nobody listed for [`IDLE`] (an idle server stays
    /// small; the next request reads the containers again).
    pub(crate) fn forget_if_idle(&self) {
        let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
        if snap.taken.is_some_and(|t| t.elapsed() >= IDLE) {
            *snap = Snapshot::default();
        }
    }
}

/// The JSON array of `list`'s summaries (`known`, in the same order), each
/// with its status line rendered now.
fn body(list: &[&Viewed], known: Vec<Rendered>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        known
            .iter()
            .map(|r| r.0.len() + r.1.len() + 32)
            .sum::<usize>()
            + 2,
    );
    out.push(b'[');
    for (i, (v, r)) in list.iter().zip(known).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&r.0);
        let status = engine::container::summary::status_text(&v.container);
        out.extend_from_slice(
            serde_json::to_string(&status)
                .unwrap_or_default()
                .as_bytes(),
        );
        out.extend_from_slice(&r.1);
    }
    out.push(b']');
    out
}

/// A summary's JSON before and after its status line's value.
#[derive(Clone, Default)]
struct Rendered(Arc<[u8]>, Arc<[u8]>);

/// Marks where the status line goes.
const STATUS_MARK: &str = "\u{0}berth-status\u{0}";

fn render(mut v: Value) -> Rendered {
    v["Status"] = Value::String(STATUS_MARK.to_string());
    let text = serde_json::to_vec(&v).unwrap_or_default();
    let mark = serde_json::to_vec(&Value::String(STATUS_MARK.to_string())).unwrap_or_default();
    match text.windows(mark.len()).position(|w| w == mark.as_slice()) {
        Some(at) => Rendered(text[..at].into(), text[at + mark.len()..].into()),
        None => Rendered(text.as_slice().into(), Arc::from(&b""[..])),
    }
}
