//! `ps` (and later `GET /containers/json`): the containers, newest first,
//! filtered as dockerd 20.10's `includeContainerInList` does.
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::filters::Filters;
use crate::Engine;

/// The filter keys `ps` accepts (Docker's `acceptedPsFilterTags`).
pub const PS_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "exited",
    "id",
    "isolation",
    "label",
    "name",
    "status",
    "health",
    "since",
    "volume",
    "network",
    "is-task",
    "publish",
    "expose",
];

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Stopped containers too (`-a`).
    pub all: bool,
    /// At most this many, newest first, stopped ones included (`-n`, `-l`).
    pub limit: Option<usize>,
    /// `--filter`s.
    pub filters: Filters,
}

/// `PORT[-END][/PROTO]` of a publish/expose filter → (port, proto) pairs.
fn filter_ports(key: &str, value: &str) -> Result<Vec<(u16, String)>> {
    let bad = |why: String| EngineError::BadFilter(why);
    if value.contains(':') {
        return Err(bad(format!(
            "filter for '{key}' should not contain ':': {value}"
        )));
    }
    let (range, proto) = value.split_once('/').unwrap_or((value, "tcp"));
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let parse = |p: &str| {
        p.parse::<u16>().map_err(|_| {
            bad(format!(
                "error while looking up for {key} {value}: invalid port"
            ))
        })
    };
    let (a, b) = (parse(a)?, parse(b)?);
    Ok((a..=b).map(|p| (p, proto.to_ascii_lowercase())).collect())
}

impl Engine {
    /// The containers `req` selects, newest first.
    pub fn list_containers(&self, req: &ListRequest) -> Result<Vec<Container>> {
        let all = self.containers()?;
        Ok(self
            .filter_containers(&all, req)?
            .into_iter()
            .cloned()
            .collect())
    }

    /// `list_containers` over containers already read (a server's view
    /// of `containers()`), newest first.
    pub fn filter_containers<'a, C: std::borrow::Borrow<Container>>(
        &self,
        from: &'a [C],
        req: &ListRequest,
    ) -> Result<Vec<&'a C>> {
        select(from, req, self)
    }
}

impl ListRequest {
    /// Do its filters look anything up in the store (`ancestor`: the
    /// images; `network`: the networks)?
    pub fn needs_store(&self) -> bool {
        self.filters.contains("ancestor") || self.filters.contains("network")
    }
}

/// `filter_containers` for a request that needs nothing from the store
/// (`None` when it does, see [`ListRequest::needs_store`]): a server
/// answers it from its view without an engine.
pub fn filter_loaded<'a, C: std::borrow::Borrow<Container>>(
    from: &'a [C],
    req: &ListRequest,
) -> Option<Result<Vec<&'a C>>> {
    if req.needs_store() {
        return None;
    }
    Some(select(from, req, &NoStore))
}

/// What the `ancestor` and `network` filters look up.
trait Lookups {
    /// The ids of the images named and of every image built on them (their
    /// layers first in theirs).
    fn descendants(&self, names: &mut dyn Iterator<Item = &str>) -> Result<Vec<model::Digest>>;
    /// A network's name and id.
    fn network(&self, name: &str) -> Option<(String, String)>;
}

impl Lookups for Engine {
    fn descendants(&self, names: &mut dyn Iterator<Item = &str>) -> Result<Vec<model::Digest>> {
        let images = self.store().list_all_images()?;
        let mut ids = Vec::new();
        for a in names {
            let Ok(base) = self.store().resolve_image(a) else {
                continue;
            };
            for i in &images {
                if i.id == base.id
                    || (!base.diff_ids.is_empty() && i.diff_ids.starts_with(&base.diff_ids))
                {
                    ids.push(i.id.clone());
                }
            }
        }
        Ok(ids)
    }

    fn network(&self, name: &str) -> Option<(String, String)> {
        self.store().network(name).ok().map(|n| (n.name, n.id))
    }
}

/// For requests without `ancestor` and `network` filters.
struct NoStore;

impl Lookups for NoStore {
    fn descendants(&self, _: &mut dyn Iterator<Item = &str>) -> Result<Vec<model::Digest>> {
        Ok(Vec::new())
    }

    fn network(&self, _: &str) -> Option<(String, String)> {
        None
    }
}

fn select<'a, C: std::borrow::Borrow<Container>>(
    from: &'a [C],
    req: &ListRequest,
    store: &dyn Lookups,
) -> Result<Vec<&'a C>> {
    let f = &req.filters;
    let mut all = req.all || req.limit.is_some();
    for s in f.values("status") {
        if !matches!(
            s,
            "paused" | "restarting" | "removing" | "running" | "dead" | "created" | "exited"
        ) {
            return Err(EngineError::BadFilter(format!(
                "Invalid filter 'status={s}'"
            )));
        }
        all = true;
    }
    let mut exited = Vec::new();
    for v in f.values("exited") {
        exited.push(v.parse::<i32>().map_err(|_| {
            EngineError::BadFilter(format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
        })?);
    }
    for v in f.values("health") {
        if !matches!(v, "starting" | "healthy" | "unhealthy" | "none") {
            return Err(EngineError::BadFilter(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
    }
    let task = match f.values("is-task").next() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => {
            return Err(EngineError::BadFilter(format!(
                "Invalid filter 'is-task={v}'"
            )))
        }
    };
    let mut publish = Vec::new();
    for v in f.values("publish") {
        publish.extend(filter_ports("publish", v)?);
    }
    let mut expose = Vec::new();
    for v in f.values("expose") {
        expose.extend(filter_ports("expose", v)?);
    }
    // ancestor: the image and every image built on it (its layers
    // first in theirs).
    let ancestors: Option<Vec<model::Digest>> = if f.contains("ancestor") {
        Some(store.descendants(&mut f.values("ancestor"))?)
    } else {
        None
    };

    let mut list: Vec<&C> = from.iter().collect();
    list.sort_by_key(|c| std::cmp::Reverse(c.borrow().record.created));
    let by_name = |v: &str| {
        list.iter()
            .map(|c| (*c).borrow())
            .find(|c| c.name() == v || c.id().as_str().starts_with(v))
            .map(|c| c.id().clone())
            .ok_or_else(|| EngineError::BadFilter(format!("No such container: {v}")))
    };
    let mut before = f.values("before").next().map(by_name).transpose()?;
    let since = f.values("since").next().map(by_name).transpose()?;
    let mut out = Vec::new();
    for &item in &list {
        let c: &Container = item.borrow();
        if let Some(b) = &before {
            if c.id() == b {
                before = None;
            }
            continue;
        }
        if since.as_ref() == Some(c.id()) {
            break;
        }
        if !c.is_running() && !all {
            continue;
        }
        if !f.matches("name", &format!("/{}", c.name())) && !f.matches("name", c.name()) {
            continue;
        }
        if !f.matches("id", c.id().as_str()) || !f.labels("label", &c.config.labels) {
            continue;
        }
        if task == Some(true)
            || !f
                .values("isolation")
                .all(|v| v == "default" || v.is_empty())
        {
            continue;
        }
        if let Some(limit) = req.limit {
            if out.len() == limit {
                break;
            }
        }
        let started = c.state.started_at.is_some();
        let exit_matches = exited.contains(&c.state.exit_code) && !c.is_running() && started;
        if !exited.is_empty() && !exit_matches {
            continue;
        }
        if !f.matches("status", c.state.status.as_str()) {
            continue;
        }
        let health = match c.state.health.as_ref() {
            Some(h) if c.is_running() => h.status.as_str(),
            _ => "none",
        };
        if !f.exact("health", health) {
            continue;
        }
        if f.contains("volume")
            && !f.values("volume").any(|v| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.target == v || m.source == v)
            })
        {
            continue;
        }
        if let Some(ids) = &ancestors {
            if !ids.contains(&c.record.image_id) {
                continue;
            }
        }
        if f.contains("network") {
            let nets: Vec<(String, String)> = c
                .config
                .networks
                .iter()
                .filter_map(|n| store.network(n))
                .collect();
            if !f
                .values("network")
                .any(|v| nets.iter().any(|(name, id)| name == v || id.starts_with(v)))
            {
                continue;
            }
        }
        if !publish.is_empty() || !expose.is_empty() {
            let ports = c.api_ports();
            let hit = ports.iter().any(|p| {
                publish.contains(&(p.public_port, p.proto.clone()))
                    || expose.contains(&(p.private_port, p.proto.clone()))
            });
            if !hit {
                continue;
            }
        }
        out.push(item);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_filters() {
        assert_eq!(
            filter_ports("publish", "80").unwrap(),
            [(80, "tcp".to_string())]
        );
        assert_eq!(
            filter_ports("expose", "8000-8001/udp").unwrap(),
            [(8000, "udp".to_string()), (8001, "udp".to_string())]
        );
        assert!(filter_ports("publish", "127.0.0.1:80").is_err());
        assert!(filter_ports("publish", "x").is_err());
    }
}
