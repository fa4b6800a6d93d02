//! A long-lived process's view of every container (`berth serve` answering
//! `GET /containers/json` again and again, 50 clients at once): each
//! record is decoded once and kept while its stored text stays the same,
//! so bringing the view up to date after a change costs one read of the
//! rows and the decoding of what changed, not of every container.
//!
//! Each container comes with a serial that changes whenever anything its
//! summary is made of changes (its record, its address leases, the
//! networks): a caller may keep what it rendered from a container while
//! the serial stays.
//!
//! The processes of a container that reads as running are looked at
//! again (`/proc`, as every read of a record does) at most every
//! [`RECHECK`]: a monitor that died without recording the end (killed,
//! a crash) changes no record, so only that look notices it.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::container::inspect::NetLookup;
use crate::container::Container;
use crate::error::Result;
use crate::Engine;

/// How long the processes of an unchanged running container are believed
/// alive without a new look.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The containers as last read, with what they were decoded from.
#[derive(Default)]
pub struct ContainerView {
    entries: HashMap<String, Entry>,
    /// Networks and leases as last read.
    lookup: NetLookup,
    /// When the processes were last looked at.
    checked: Option<Instant>,
    /// Legacy link names (`/container/alias`) by target id, from the
    /// linking containers' configs.
    link_names: HashMap<String, Vec<String>>,
    next_serial: u64,
}

struct Entry {
    /// The stored name, config and state it was decoded from.
    name: Box<str>,
    config: Box<str>,
    state: Box<str>,
    viewed: Viewed,
}

/// A container of the view.
#[derive(Clone)]
pub struct Viewed {
    /// The container. Its record's raw `config` and `state` documents are
    /// `Null` (the typed `config` and `state` are what the view keeps).
    pub container: Arc<Container>,
    /// Changes whenever its summary's sources change.
    pub serial: u64,
}

impl ContainerView {
    /// Every container of the view, in no particular order.
    pub fn containers(&self) -> Vec<Viewed> {
        self.entries.values().map(|e| e.viewed.clone()).collect()
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }
}

impl Engine {
    /// Bring `view` up to the store's present: read every row, decode
    /// those whose text changed (and, every [`RECHECK`], those whose
    /// processes are found gone), drop the removed ones, read the
    /// networks and leases again.
    pub fn refresh_view(&self, view: &mut ContainerView) -> Result<()> {
        let recheck = view.checked.is_none_or(|t| t.elapsed() >= RECHECK);
        if recheck {
            view.checked = Some(Instant::now());
        }
        let store = self.store();
        let lookup = NetLookup::load(self);
        let networks_changed = lookup.networks != view.lookup.networks;
        let mut old = std::mem::take(&mut view.entries);
        let mut fresh = HashMap::with_capacity(old.len());
        store.visit_containers(|t| -> Result<()> {
            let kept = old.remove(t.id).filter(|e| {
                *e.name == *t.name
                    && *e.config == *t.config
                    && *e.state == *t.state
                    && !(recheck && Container::looks_dead(&e.viewed.container.state))
            });
            let entry = match kept {
                Some(e) => e,
                None => {
                    let c = Container::decode_text(t, &|id| store.container(id.as_str()).ok())?;
                    Entry {
                        name: t.name.into(),
                        config: t.config.into(),
                        state: t.state.into(),
                        viewed: Viewed {
                            container: Arc::new(c),
                            serial: 0,
                        },
                    }
                }
            };
            fresh.insert(t.id.to_string(), entry);
            Ok(())
        })?;
        drop(store);
        let link_names = link_names_of(fresh.values().map(|e| &*e.viewed.container));
        // A new serial for what was decoded now, for those whose leases
        // or link names changed, and for all when a network did.
        for (id, e) in fresh.iter_mut() {
            let leases_changed = || lookup.leases_of(id).ne(view.lookup.leases_of(id));
            let links_changed = || link_names.get(id) != view.link_names.get(id);
            if e.viewed.serial == 0 || networks_changed || leases_changed() || links_changed() {
                e.viewed.serial = view.serial();
            }
        }
        view.entries = fresh;
        view.lookup = lookup;
        view.link_names = link_names;
        Ok(())
    }

    /// `list` (containers of `view`) as entries of `GET /containers/json`,
    /// as [`Engine::container_summaries`] gives them, from the view's
    /// networks and leases.
    pub fn view_summaries(&self, view: &ContainerView, list: &[&Container]) -> Vec<Value> {
        list.iter()
            .map(|c| {
                let mut v = self.summary_in(c, &view.lookup);
                // Its link names first, as dockerd (and `container_summaries`).
                if let Some(links) = view.link_names.get(c.id().as_str()) {
                    let mut names = links.clone();
                    names.push(format!("/{}", c.name()));
                    v["Names"] = serde_json::json!(names);
                }
                v
            })
            .collect()
    }
}

/// Link names by target id: `/LINKER/ALIAS` for each legacy link of each
/// container.
fn link_names_of<'a>(
    containers: impl Iterator<Item = &'a Container>,
) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for c in containers {
        for l in &c.config.links {
            out.entry(l.target.clone()).or_default().push(format!(
                "/{}/{}",
                c.name().trim_start_matches('/'),
                l.alias
            ));
        }
    }
    for names in out.values_mut() {
        names.sort();
    }
    out
}

impl std::borrow::Borrow<Container> for Viewed {
    fn borrow(&self) -> &Container {
        &self.container
    }
}
