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
    summaries: HashMap<String, Value>,
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

    /// The API summaries of `list` (containers of the current snapshot),
    /// rendered once per snapshot; the status line is always fresh.
    /// `from` is the snapshot `list` was taken from: summaries are kept
    /// only with the snapshot they were rendered from.
    pub(crate) fn summaries(
        &self,
        e: &Engine,
        from: &Arc<Vec<Container>>,
        list: &[Container],
    ) -> Vec<Value> {
        let same = |s: &Snapshot| Arc::ptr_eq(&s.containers, from);
        let mut known: Vec<Option<Value>> = {
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
            .map(|(c, _)| c.clone())
            .collect();
        if !missing.is_empty() {
            let fresh = e.container_summaries(&missing);
            let mut snap = self.snap.lock().unwrap_or_else(|p| p.into_inner());
            let mut fresh = fresh.into_iter();
            for (c, k) in list.iter().zip(known.iter_mut()) {
                if k.is_none() {
                    let v = fresh.next().unwrap_or(Value::Null);
                    if let Some(s) = snap.as_mut().filter(|s| same(s)) {
                        s.summaries.insert(c.id().as_str().to_string(), v.clone());
                    }
                    *k = Some(v);
                }
            }
        }
        list.iter()
            .zip(known)
            .map(|(c, v)| {
                let mut v = v.unwrap_or(Value::Null);
                v["Status"] = Value::String(engine::container::summary::status_text(c));
                v
            })
            .collect()
    }
}
