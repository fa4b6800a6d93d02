//! `GET /containers/json` from a snapshot: reading and decoding every
//! container record is most of a listing's cost, and clients (`docker ps`
//! in a loop, compose, IDEs, 50 testcontainers at once) ask far more often
//! than anything changes. The snapshot holds the decoded containers and
//! their rendered summaries; it is used while the store's stamp (SQLite's
//! change counter, see `Engine::store_stamp`) is unchanged and for at most
//! a second (a monitor that died without a word changes no record; the
//! decode notices it). The status line ("Up 3 minutes") is rendered anew
//! for each answer.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::container::Container;
use engine::Engine;
use serde_json::Value;

/// How long a snapshot may serve at most.
const MAX_AGE: Duration = Duration::from_secs(1);

struct Snapshot {
    stamp: Vec<u8>,
    taken: Instant,
    containers: Arc<Vec<Container>>,
    /// Rendered summaries by container id (filled as asked for).
    summaries: HashMap<String, Rendered>,
}

/// The server's snapshot of the container list.
#[derive(Default)]
pub(crate) struct Listing {
    snap: Mutex<Option<Snapshot>>,
}

impl Listing {
    /// Every container, from the snapshot when it is still good.
    pub(crate) fn containers(&self, e: &Engine) -> engine::Result<Arc<Vec<Container>>> {
        let stamp = e.store_stamp();
        {
            let snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = snap.as_ref() {
                if s.stamp == stamp && s.taken.elapsed() < MAX_AGE {
                    return Ok(s.containers.clone());
                }
            }
        }
        let containers = Arc::new(e.containers()?);
        let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
        *snap = Some(Snapshot {
            stamp,
            taken: Instant::now(),
            containers: containers.clone(),
            summaries: HashMap::new(),
        });
        Ok(containers)
    }

    /// The JSON array of the API summaries of `list` (containers of the
    /// snapshot `from`), each rendered once per snapshot and kept as bytes
    /// around its status line, which is always fresh.
    pub(crate) fn summaries(
        &self,
        e: &Engine,
        from: &Arc<Vec<Container>>,
        list: &[&Container],
    ) -> Vec<u8> {
        let same = |s: &Snapshot| Arc::ptr_eq(&s.containers, from);
        let mut known: Vec<Option<Rendered>> = {
            let snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            list.iter()
                .map(|c| {
                    snap.as_ref()
                        .filter(|s| same(s))
                        .and_then(|s| s.summaries.get(c.id().as_str()).cloned())
                })
                .collect()
        };
        let missing: Vec<Container> = list
            .iter()
            .zip(&known)
            .filter(|(_, k)| k.is_none())
            .map(|(c, _)| (*c).clone())
            .collect();
        if !missing.is_empty() {
            let mut fresh = e.container_summaries(&missing).into_iter().map(render);
            let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            for (c, k) in list.iter().zip(known.iter_mut()) {
                if k.is_none() {
                    let r = fresh.next().unwrap_or_default();
                    if let Some(s) = snap.as_mut().filter(|s| same(s)) {
                        s.summaries.insert(c.id().as_str().to_string(), r.clone());
                    }
                    *k = Some(r);
                }
            }
        }
        let mut out = Vec::with_capacity(
            known
                .iter()
                .flatten()
                .map(|r| r.0.len() + r.1.len() + 32)
                .sum::<usize>()
                + 2,
        );
        out.push(b'[');
        for (i, (c, r)) in list.iter().zip(known).enumerate() {
            let r = r.unwrap_or_default();
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&r.0);
            let status = engine::container::summary::status_text(c);
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
