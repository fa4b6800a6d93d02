//! Ports: what a container exposes and publishes, as Docker shows it
//! (`Config.ExposedPorts`, `HostConfig.PortBindings`,
//! `NetworkSettings.Ports`, the `PORTS` column of `ps`), and the host
//! ports a running container holds so nothing else can take them.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::config::PortMapping;
use crate::container::Container;
use crate::error::{EngineError, Result};

/// Docker's `Config.ExposedPorts` keys (`80/tcp`): the image's, `--expose`
/// (`PORT[-END][/PROTO]`) and every published port, sorted as Docker's JSON
/// map is.
pub(crate) fn exposed(
    image: &[(u16, String)],
    expose: &[String],
    published: &[PortMapping],
) -> Result<Vec<String>> {
    let mut out: BTreeSet<String> = image.iter().map(|(p, t)| format!("{p}/{t}")).collect();
    for e in expose {
        let bad = |why: &str| EngineError::invalid("--expose", format!("{e:?}: {why}"));
        let (range, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if proto != "tcp" && proto != "udp" {
            return Err(bad("the protocol must be tcp or udp"));
        }
        let (a, b) = range.split_once('-').unwrap_or((range, range));
        let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else {
            return Err(bad("expected PORT[-END][/PROTO]"));
        };
        if a == 0 || b < a {
            return Err(bad("not a port range"));
        }
        out.extend((a..=b).map(|p| format!("{p}/{proto}")));
    }
    out.extend(
        published
            .iter()
            .map(|p| format!("{}/{}", p.container_port, p.proto)),
    );
    Ok(out.into_iter().collect())
}

/// One entry of Docker's API `Ports` list (`GET /containers/json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPort {
    /// Host address ("" for an exposed, unpublished port).
    pub ip: String,
    /// The container's port.
    pub private_port: u16,
    /// The host port (0: not published).
    pub public_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
}

fn key_of(port: &str) -> Option<(u16, &str)> {
    let (p, t) = port.split_once('/')?;
    Some((p.parse().ok()?, t))
}

/// The host address Docker reports for a binding: `0.0.0.0` for all.
fn shown_ip(p: &PortMapping) -> &str {
    if p.host_ip.is_empty() {
        "0.0.0.0"
    } else {
        &p.host_ip
    }
}

impl Container {
    /// Docker's API `Ports`: the published ports and the exposed ones without
    /// a binding, while the container runs (none otherwise, as Docker).
    pub fn api_ports(&self) -> Vec<ApiPort> {
        if !self.is_running() {
            return Vec::new();
        }
        let mut out: Vec<ApiPort> = self
            .config
            .ports
            .iter()
            .map(|p| ApiPort {
                ip: shown_ip(p).to_string(),
                private_port: p.container_port,
                public_port: p.host_port,
                proto: p.proto.clone(),
            })
            .collect();
        for e in &self.config.exposed_ports {
            let Some((port, proto)) = key_of(e) else {
                continue;
            };
            if !out
                .iter()
                .any(|a| a.private_port == port && a.proto == proto)
            {
                out.push(ApiPort {
                    ip: String::new(),
                    private_port: port,
                    public_port: 0,
                    proto: proto.to_string(),
                });
            }
        }
        out
    }

    /// Docker's `NetworkSettings.Ports`: every exposed port of a running
    /// container with its bindings (`null` when unpublished); `{}` when it
    /// is not running.
    pub fn network_settings_ports(&self) -> Value {
        let mut map = serde_json::Map::new();
        if self.is_running() {
            for e in &self.config.exposed_ports {
                map.insert(e.clone(), Value::Null);
            }
            let mut bound: BTreeMap<String, Vec<&PortMapping>> = BTreeMap::new();
            for p in &self.config.ports {
                bound
                    .entry(format!("{}/{}", p.container_port, p.proto))
                    .or_default()
                    .push(p);
            }
            for (k, mut ps) in bound {
                ps.sort_by(|a, b| (shown_ip(a), a.host_port).cmp(&(shown_ip(b), b.host_port)));
                let list: Vec<Value> = ps
                    .iter()
                    .map(|p| json!({"HostIp": shown_ip(p), "HostPort": p.host_port.to_string()}))
                    .collect();
                map.insert(k, Value::Array(list));
            }
        }
        Value::Object(map)
    }

    /// Docker's `HostConfig.PortBindings`: the ports as they were asked for
    /// (`HostPort` "" when berth picked it), `{}` without any.
    pub fn port_bindings(&self) -> Value {
        let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for p in self
            .config
            .ports
            .iter()
            .filter(|p| !self.config.publish_all || !p.picked)
        {
            let port = if p.picked {
                String::new()
            } else {
                p.host_port.to_string()
            };
            map.entry(format!("{}/{}", p.container_port, p.proto))
                .or_default()
                .push(json!({"HostIp": p.host_ip, "HostPort": port}));
        }
        json!(map)
    }
}

/// Docker's `PORTS` column: consecutive ports of a kind are grouped
/// (`0.0.0.0:9000-9001->9000-9001/udp`, `80-81/tcp`), mappings whose host
/// port differs from the container's follow, as docker's
/// `DisplayablePorts` prints them.
pub fn display_ports(ports: &[ApiPort]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, &a.proto).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port,
            &b.proto,
        ))
    });
    let form = |key: &str, first: u16, last: u16| -> String {
        let (ip, proto) = key.split_once('/').map_or(("", key), |(i, t)| (i, t));
        let (ip, proto) = if proto.is_empty() {
            ("", ip)
        } else {
            (ip, proto)
        };
        let mut group = first.to_string();
        if first != last {
            group = format!("{group}-{last}");
        }
        if !ip.is_empty() {
            group = format!("{ip}:{group}->{group}");
        }
        format!("{group}/{proto}")
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &ports {
        let key = if p.ip.is_empty() {
            p.proto.clone()
        } else if p.public_port != p.private_port {
            mappings.push(format!(
                "{}:{}->{}/{}",
                p.ip, p.public_port, p.private_port, p.proto
            ));
            continue;
        } else {
            format!("{}/{}", p.ip, p.proto)
        };
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private_port, p.private_port)),
            Some(g) if p.private_port == g.2.wrapping_add(1) => g.2 = p.private_port,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = p.private_port;
                g.2 = p.private_port;
            }
        }
    }
    result.extend(groups.iter().map(|g| form(&g.0, g.1, g.2)));
    result.extend(mappings);
    result.join(", ")
}

/// The host ports a running container holds: a listening TCP socket or a
/// bound UDP socket per published port, kept by its monitor. Traffic to
/// them is DNAT'd to the container before it could reach these sockets;
/// they are there so that another container or a host process cannot take
/// the port while the container runs (Docker's port allocator and
/// docker-proxy do the same).
pub(crate) struct Reservation {
    sockets: Vec<Held>,
}

/// One reserved host port's socket.
pub(crate) enum Held {
    /// A listening TCP socket.
    Tcp(std::net::TcpListener),
    /// A bound UDP socket.
    Udp(std::net::UdpSocket),
}

impl Reservation {
    /// The sockets, in the order of the ports reserved (the rootless port
    /// proxy serves on them).
    pub(crate) fn into_sockets(self) -> Vec<Held> {
        self.sockets
    }
}

/// Reserve `ports` for container `id`, or say who holds one, as Docker does.
pub(crate) fn reserve(
    store: &store::Store,
    id: &str,
    name: &str,
    ports: &[PortMapping],
) -> std::result::Result<Reservation, String> {
    let mut r = Reservation {
        sockets: Vec::new(),
    };
    for p in ports {
        let addr = std::net::SocketAddr::new(
            shown_ip(p).parse().unwrap_or([0, 0, 0, 0].into()),
            p.host_port,
        );
        let bound = if p.proto == "udp" {
            std::net::UdpSocket::bind(addr).map(|s| r.sockets.push(Held::Udp(s)))
        } else {
            std::net::TcpListener::bind(addr).map(|s| r.sockets.push(Held::Tcp(s)))
        };
        if let Err(e) = bound {
            let why = if held_by_another_container(store, id, p) {
                format!("Bind for {addr} failed: port is already allocated")
            } else {
                format!(
                    "Error starting userland proxy: listen {}4 {addr}: bind: {}",
                    p.proto,
                    if e.kind() == std::io::ErrorKind::AddrInUse {
                        "address already in use".to_string()
                    } else {
                        e.to_string()
                    }
                )
            };
            return Err(format!(
                "driver failed programming external connectivity on endpoint {name}: {why}"
            ));
        }
    }
    Ok(r)
}

/// Does another running container of this store publish `p`'s host port?
fn held_by_another_container(store: &store::Store, id: &str, p: &PortMapping) -> bool {
    let Ok(records) = store.list_containers() else {
        return false;
    };
    records
        .into_iter()
        .filter(|r| r.id.as_str() != id)
        .any(|r| {
            let Ok(c) = Container::decode(r, &|id| store.container(id.as_str()).ok()) else {
                return false;
            };
            c.is_running()
                && c.config.ports.iter().any(|q| {
                    q.host_port == p.host_port
                        && q.proto == p.proto
                        && (q.host_ip.is_empty() || p.host_ip.is_empty() || q.host_ip == p.host_ip)
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(ip: &str, private_port: u16, public_port: u16, proto: &str) -> ApiPort {
        ApiPort {
            ip: ip.into(),
            private_port,
            public_port,
            proto: proto.into(),
        }
    }

    #[test]
    fn ports_column_as_docker_prints_it() {
        // Recorded from docker 20.10: -p 127.0.0.1::80 -p 8080:80
        // -p 9000-9001:9000-9001/udp --expose 443.
        let ports = [
            api("127.0.0.1", 80, 32768, "tcp"),
            api("0.0.0.0", 80, 8080, "tcp"),
            api("0.0.0.0", 9000, 9000, "udp"),
            api("0.0.0.0", 9001, 9001, "udp"),
            api("", 443, 0, "tcp"),
        ];
        assert_eq!(
            display_ports(&ports),
            "443/tcp, 0.0.0.0:9000-9001->9000-9001/udp, 0.0.0.0:8080->80/tcp, 127.0.0.1:32768->80/tcp"
        );
        assert_eq!(display_ports(&[]), "");
        assert_eq!(
            display_ports(&[
                api("", 80, 0, "tcp"),
                api("", 81, 0, "tcp"),
                api("", 83, 0, "tcp")
            ]),
            "80-81/tcp, 83/tcp"
        );
        assert_eq!(
            display_ports(&[api("127.0.0.1", 18080, 18080, "tcp")]),
            "127.0.0.1:18080->18080/tcp"
        );
    }

    #[test]
    fn exposed_ports_merge_and_sort_like_dockers_map() {
        let published = PortMapping::parse("8080:80").unwrap();
        let e = exposed(
            &[(5432, "tcp".into())],
            &["443".into(), "9000-9001/udp".into()],
            &published,
        )
        .unwrap();
        assert_eq!(e, ["443/tcp", "5432/tcp", "80/tcp", "9000/udp", "9001/udp"]);
        for bad in ["x", "0", "80/sctp", "90-80"] {
            assert!(exposed(&[], &[bad.into()], &[]).is_err(), "{bad}");
        }
    }
}
