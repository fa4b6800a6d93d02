//! Docker's legacy links (`--link name:alias` on the default bridge): the
//! linking container gets its target's address in `ALIAS_*` variables and
//! an /etc/hosts entry, and the target answers to `container/alias` as a
//! second name. On user-defined networks a link is an alias the network's
//! DNS responder answers for the linking container only (`networks`).
use crate::config::{ContainerConfig, Link, NetworkMode};
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

/// `--link name[:alias]` as Docker's `opts.ParseLink` reads it (the alias
/// is the name when not given; `/target:/container/alias`, inspect's
/// spelling, is read back too). Returns (name, alias).
pub fn parse_link(l: &str) -> Result<(String, String)> {
    let bad = |why: &str| EngineError::invalid("--link", format!("{l:?}: {why}"));
    if l.is_empty() {
        return Err(bad("empty string specified for links"));
    }
    let parts: Vec<&str> = l.split(':').collect();
    let (name, alias) = match parts.as_slice() {
        [n] => (n.to_string(), n.to_string()),
        [n, a] if n.starts_with('/') => (
            n[1..].to_string(),
            a.rsplit('/').next().unwrap_or(a).to_string(),
        ),
        [n, a] => (n.to_string(), a.to_string()),
        _ => return Err(bad("bad format for links (expected name:alias)")),
    };
    if name.is_empty() || alias.is_empty() {
        return Err(bad("bad format for links (expected name:alias)"));
    }
    Ok((name, alias))
}

/// Docker's words for a link whose target cannot be used.
fn hosts_conflict() -> EngineError {
    EngineError::Refused(
        "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
            .into(),
    )
}

/// The variables a link gives (moby `daemon/links`): `ALIAS_PORT` (the
/// lowest exposed port), `ALIAS_PORT_<port>_<PROTO>[_ADDR|_PORT|_PROTO]`
/// per port, `_START`/`_END` forms for runs of three or more consecutive
/// ports, `ALIAS_NAME=/container/alias` and the target's environment as
/// `ALIAS_ENV_*` (but HOME and PATH).
pub fn link_env(
    link_name: &str,
    ip: &str,
    target_env: &[String],
    exposed: &[String],
) -> Vec<String> {
    let alias = link_name
        .rsplit('/')
        .next()
        .unwrap_or(link_name)
        .to_ascii_uppercase()
        .replace('-', "_");
    let mut ports: Vec<(u32, String)> = exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    // By number, tcp before others of the same number (Docker's order).
    ports.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| (a.1 != "tcp").cmp(&(b.1 != "tcp")))
    });
    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
    }
    let mut i = 0;
    while i < ports.len() {
        // The last index of the run of consecutive numbers from i.
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1].0 == ports[j].0 + 1 {
            j += 1;
        }
        if j > i + 1 {
            let (p, proto) = &ports[i];
            let (q, qproto) = &ports[j];
            let up = proto.to_ascii_uppercase();
            let key = format!("{alias}_PORT_{p}_{up}");
            env.push(format!("{key}_START={proto}://{ip}:{p}"));
            env.push(format!("{key}_ADDR={ip}"));
            env.push(format!("{key}_PROTO={proto}"));
            env.push(format!("{key}_PORT_START={p}"));
            let qkey = format!("{alias}_PORT_{p}_{}", qproto.to_ascii_uppercase());
            env.push(format!("{qkey}_END={qproto}://{ip}:{q}"));
            env.push(format!("{qkey}_PORT_END={q}"));
            i = j + 1;
        } else {
            i += 1;
        }
    }
    for (port, proto) in &ports {
        let key = format!("{alias}_PORT_{port}_{}", proto.to_ascii_uppercase());
        env.push(format!("{key}={proto}://{ip}:{port}"));
        env.push(format!("{key}_ADDR={ip}"));
        env.push(format!("{key}_PORT={port}"));
        env.push(format!("{key}_PROTO={proto}"));
    }
    env.push(format!("{alias}_NAME={link_name}"));
    for e in target_env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k == "HOME" || k == "PATH" {
            continue;
        }
        env.push(format!("{alias}_ENV_{k}={v}"));
    }
    env
}

/// `env` laid over `base`: a variable set in both takes `env`'s value in
/// `base`'s place (Docker's `ReplaceOrAppendEnvValues`).
pub fn replace_or_append(base: Vec<String>, env: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out = base;
    for e in env {
        match out.iter_mut().find(|b| key(b) == key(e)) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// What a container's links give it at start: variables and /etc/hosts
/// lines.
#[derive(Debug, Default)]
pub struct LinkSetup {
    /// `ALIAS_*` variables, before the container's own.
    pub env: Vec<String>,
    /// `IP\talias hostname name` lines.
    pub hosts: Vec<String>,
}

impl Engine {
    /// `HostConfig.Links` at create: on the default bridge (or `none`)
    /// each must name a container now (one sharing another's network
    /// stands for that one); refused with the host's or another
    /// container's network; on a user-defined network dropped, as dockerd
    /// drops them (links there are the endpoint's).
    pub(crate) fn resolve_links(
        &self,
        given: &[String],
        mode: &NetworkMode,
        networks: &[String],
    ) -> Result<Vec<Link>> {
        if given.is_empty() {
            return Ok(Vec::new());
        }
        match mode {
            NetworkMode::Host => return Err(hosts_conflict()),
            NetworkMode::Container(_) => return Err(EngineError::Refused(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior".into(),
            )),
            NetworkMode::None => {}
        }
        if networks.first().is_some_and(|n| n != "bridge") {
            return Ok(Vec::new());
        }
        // dockerd's words; a bad request, not a missing object (a client
        // would say the image is missing).
        let missing = |name: &str, e: EngineError| {
            if e.is_not_found() {
                EngineError::Refused(format!(
                    "could not get container for {name}: No such container: {name}"
                ))
            } else {
                e
            }
        };
        let mut links: Vec<Link> = Vec::new();
        for l in given {
            let (name, alias) = parse_link(l)?;
            let mut target = self.container(&name).map_err(|e| missing(&name, e))?;
            let mut hops = 0;
            while let NetworkMode::Container(next) = &target.config.network_mode {
                hops += 1;
                if hops > 8 {
                    break;
                }
                let next = next.clone();
                target = self.container(&next).map_err(|e| missing(&next, e))?;
            }
            if target.config.network_mode == NetworkMode::Host {
                return Err(hosts_conflict());
            }
            if links.iter().any(|x| x.alias == alias) {
                return Err(EngineError::invalid(
                    "--link",
                    format!("the alias {alias:?} is given twice"),
                ));
            }
            links.push(Link {
                target: target.id().as_str().to_string(),
                name: target.name().to_string(),
                alias,
            });
        }
        Ok(links)
    }

    /// The links of `c` at start, as dockerd sets them up: only on the
    /// default bridge, each target running and on it too.
    pub(crate) fn link_setup(&self, c: &Container) -> Result<LinkSetup> {
        let mut out = LinkSetup::default();
        if c.config.links.is_empty() || !c.config.networks.iter().any(|n| n == "bridge") {
            return Ok(out);
        }
        let bridge = self.default_network()?;
        let leases = self.store().leases(Some(&bridge.id))?;
        for l in &c.config.links {
            let link_name = format!("/{}/{}", c.name(), l.alias);
            let target = self.container(&l.target).ok();
            let Some(t) = target.filter(|t| t.is_running()) else {
                return Err(EngineError::Conflict(format!(
                    "Cannot link to a non running container: /{} AS {link_name}",
                    l.name
                )));
            };
            let Some(lease) = leases.iter().find(|x| x.container == l.target) else {
                return Err(EngineError::Conflict(format!(
                    "container {} not attached to default bridge network",
                    l.target
                )));
            };
            out.env.extend(link_env(
                &link_name,
                &lease.ip,
                &t.config.env,
                &t.config.exposed_ports,
            ));
            // The alias, its hostname, and its name unless that is the alias.
            let mut names = format!("{}\t{} {}", lease.ip, l.alias, t.config.hostname);
            if l.alias != t.name() {
                names.push(' ');
                names.push_str(t.name());
            }
            out.hosts.push(names);
        }
        Ok(out)
    }

    /// The container a link name (`container/alias`) stands for.
    pub(crate) fn link_target(&self, name: &str) -> Option<Container> {
        let (parent, alias) = name.trim_start_matches('/').rsplit_once('/')?;
        let p = self.store().container(parent).ok()?;
        if p.name.trim_start_matches('/') != parent.trim_start_matches('/') {
            return None;
        }
        let cfg: ContainerConfig = serde_json::from_value(p.config).ok()?;
        let link = cfg.links.iter().find(|l| l.alias == alias)?;
        let store = self.store();
        let rec = store.container(&link.target).ok()?;
        Container::decode(rec, &|id| store.container(id.as_str()).ok()).ok()
    }

    /// `rm --link container/alias`: remove the link (the containers stay).
    pub fn remove_link(&self, name: &str) -> Result<()> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let (parent, alias) = full.rsplit_once('/').unwrap_or(("", ""));
        if parent.is_empty() {
            return Err(EngineError::Conflict(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        }
        if self.link_target(&full).is_none() {
            return Err(EngineError::Store(store::StoreError::NotFound {
                kind: "container",
                what: name.to_string(),
                hint: "",
            }));
        }
        let p = self.container(parent)?;
        self.store().update_container(p.id(), |rec| {
            let mut cfg: ContainerConfig = serde_json::from_value(rec.config.clone())
                .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            cfg.links.retain(|l| l.alias != alias);
            rec.config = serde_json::to_value(&cfg)
                .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            Ok(())
        })?;
        Ok(())
    }

    /// Every link name (`/container/alias`) that stands for a container,
    /// by the target's id (the API's container list shows them in `Names`).
    pub fn link_names(&self) -> std::collections::HashMap<String, Vec<String>> {
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for rec in self.store().list_containers().unwrap_or_default() {
            let Some(links) = rec.config.get("links").and_then(|l| l.as_array()) else {
                continue;
            };
            for l in links {
                let (Some(target), Some(alias)) = (l["target"].as_str(), l["alias"].as_str())
                else {
                    continue;
                };
                out.entry(target.to_string())
                    .or_default()
                    .push(format!("/{}/{alias}", rec.name.trim_start_matches('/')));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_links() {
        assert_eq!(parse_link("web").unwrap(), ("web".into(), "web".into()));
        assert_eq!(parse_link("web:w").unwrap(), ("web".into(), "w".into()));
        assert_eq!(
            parse_link("/web:/app/w").unwrap(),
            ("web".into(), "w".into())
        );
        assert!(parse_link("a:b:c").is_err());
        assert!(parse_link("").is_err());
        assert!(parse_link(":a").is_err());
    }

    #[test]
    fn link_variables_as_docker_sets_them() {
        // Recorded from dockerd 20.10: `--expose 80 --expose 53/udp
        // --expose 8000-8001`, `-e FOO=1`.
        let env = link_env(
            "/app/my-link",
            "172.17.0.2",
            &["PATH=/bin".into(), "FOO=1".into(), "HOME=/root".into()],
            &[
                "53/udp".into(),
                "80/tcp".into(),
                "8000/tcp".into(),
                "8001/tcp".into(),
            ],
        );
        assert_eq!(env[0], "MY_LINK_PORT=udp://172.17.0.2:53");
        assert!(env.contains(&"MY_LINK_PORT_8001_TCP_ADDR=172.17.0.2".to_string()));
        assert!(env.contains(&"MY_LINK_NAME=/app/my-link".to_string()));
        assert!(env.contains(&"MY_LINK_ENV_FOO=1".to_string()));
        assert!(!env
            .iter()
            .any(|e| e.contains("_START") || e.contains("ENV_PATH")));
        assert_eq!(env.len(), 1 + 4 * 4 + 1 + 1);
        // Three or more consecutive ports are a range too.
        let env = link_env(
            "/a/db",
            "10.0.0.2",
            &[],
            &["5000/tcp".into(), "5001/tcp".into(), "5002/tcp".into()],
        );
        assert!(env.contains(&"DB_PORT_5000_TCP_START=tcp://10.0.0.2:5000".to_string()));
        assert!(env.contains(&"DB_PORT_5000_TCP_END=tcp://10.0.0.2:5002".to_string()));
        assert!(env.contains(&"DB_PORT_5000_TCP_PORT_END=5002".to_string()));
        assert!(env.contains(&"DB_PORT_5002_TCP=tcp://10.0.0.2:5002".to_string()));
    }

    #[test]
    fn own_variables_win() {
        let env = replace_or_append(
            vec!["W_NAME=/a/w".into(), "W_ENV_FOO=1".into()],
            &["W_NAME=mine".into(), "X=1".into()],
        );
        assert_eq!(env, vec!["W_NAME=mine", "W_ENV_FOO=1", "X=1"]);
    }
}
