//! User-defined bridge networks: create/list/remove, and attaching a
//! starting container (veth into its network namespace, an address leased
//! in the store, default route) from the monitor, before the container is
//! released to run its command.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use network::{Netlink, Subnet};
use store::{NetworkRecord, Store};

use crate::{Engine, EngineError, Result};

/// `network create` options.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    /// Name.
    pub name: String,
    /// `-d` (only `bridge`).
    pub driver: Option<String>,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-o`.
    pub options: BTreeMap<String, String>,
}

const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";

fn invalid(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::invalid(what, reason)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Engine {
    /// `network create`.
    pub fn network_create(&self, o: &NetworkCreate) -> Result<NetworkRecord> {
        if !valid_name(&o.name) {
            return Err(invalid(
                "network name",
                format!(
                    "{:?}: use [a-zA-Z0-9][a-zA-Z0-9_.-], up to 64 characters",
                    o.name
                ),
            ));
        }
        if ["none", "host", "bridge", "default"].contains(&o.name.as_str()) {
            return Err(invalid("network name", format!("{:?} is reserved", o.name)));
        }
        match o.driver.as_deref() {
            None | Some("bridge") => {}
            Some(d) => {
                return Err(invalid(
                    "--driver",
                    format!("{d:?}: berth supports the bridge driver"),
                ))
            }
        }
        for k in o.options.keys() {
            if k != BRIDGE_NAME_OPT && k != "com.docker.network.driver.mtu" {
                return Err(invalid(
                    "--opt",
                    format!("{k:?} is not supported (supported: {BRIDGE_NAME_OPT}, com.docker.network.driver.mtu)"),
                ));
            }
        }
        let subnet = o
            .subnet
            .as_deref()
            .map(|s| s.parse::<Subnet>().map_err(|e| invalid("--subnet", e)))
            .transpose()?;
        let range = o
            .ip_range
            .as_deref()
            .map(|s| s.parse::<Subnet>().map_err(|e| invalid("--ip-range", e)))
            .transpose()?;
        let gateway = o
            .gateway
            .as_deref()
            .map(|g| {
                g.parse::<Ipv4Addr>()
                    .map_err(|_| invalid("--gateway", format!("{g:?} is not an IPv4 address")))
            })
            .transpose()?;
        if subnet.is_none() && (gateway.is_some() || range.is_some()) {
            return Err(invalid("--gateway/--ip-range", "they need --subnet"));
        }
        let bridge_opt = o.options.get(BRIDGE_NAME_OPT).cloned();
        if let Some(b) = &bridge_opt {
            if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) {
                return Err(invalid(
                    BRIDGE_NAME_OPT,
                    format!("{b:?} is not a valid interface name (1-15 characters)"),
                ));
            }
        }
        let routes = network::subnet::host_routes();
        let id = model::ContainerId::random().as_str().to_string();
        let rec = self.store().create_network(|existing| {
            let taken: Vec<Subnet> = existing
                .iter()
                .filter_map(|n| n.subnet.parse().ok())
                .collect();
            let subnet = match subnet {
                Some(s) => {
                    if let Some(t) = taken.iter().find(|t| t.overlaps(&s)) {
                        return Err(store::StoreError::Conflict(format!(
                            "subnet {s} overlaps {t} of another berth network: pick another --subnet"
                        )));
                    }
                    s
                }
                None => {
                    let mut all = taken.clone();
                    all.extend(routes.iter().copied());
                    network::subnet::pick(&all).ok_or_else(|| {
                        store::StoreError::Conflict(
                            "no free subnet left in the default pools: pass --subnet".into(),
                        )
                    })?
                }
            };
            let gw = gateway.unwrap_or_else(|| subnet.first_host());
            if !subnet.contains(gw) || gw == subnet.addr() || gw == subnet.broadcast() {
                return Err(store::StoreError::Conflict(format!(
                    "gateway {gw} is not a host address of {subnet}"
                )));
            }
            if let Some(r) = &range {
                if !subnet.contains(r.addr()) || r.prefix() < subnet.prefix() {
                    return Err(store::StoreError::Conflict(format!(
                        "ip range {r} is not inside {subnet}"
                    )));
                }
            }
            let bridge = match &bridge_opt {
                Some(b) => {
                    if existing.iter().any(|n| &n.bridge == b) {
                        return Err(store::StoreError::Conflict(format!(
                            "bridge {b} is used by another berth network"
                        )));
                    }
                    b.clone()
                }
                None => format!("br-{}", &id[..12]),
            };
            Ok(NetworkRecord {
                id: id.clone(),
                name: o.name.clone(),
                driver: "bridge".into(),
                subnet: subnet.to_string(),
                gateway: gw.to_string(),
                ip_range: range.map(|r| r.to_string()),
                bridge,
                internal: o.internal,
                labels: o.labels.clone(),
                options: o.options.clone(),
                created: chrono::Utc::now(),
            })
        })?;
        Ok(rec)
    }

    /// `network rm`: refused while containers use it; the bridge goes.
    pub fn network_remove(&self, key: &str) -> Result<NetworkRecord> {
        let n = self.store().network(key)?;
        self.store().remove_network(&n.id)?;
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.delete_link(&n.bridge);
        }
        Ok(n)
    }
}

/// The MTU of the host's default-route interface (Docker uses 1500; we
/// follow the host so tunnels and cloud networks work).
fn host_mtu() -> Option<u32> {
    let route = std::fs::read_to_string("/proc/net/route").ok()?;
    let dev = route.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000")).then(|| f[0].to_string())
    })?;
    std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The bridge of `n`, created (with its gateway address, up) if missing:
/// after a reboot networks come back on first use.
fn ensure_bridge(nl: &mut Netlink, n: &NetworkRecord, mtu: Option<u32>) -> std::io::Result<u32> {
    if let Some(i) = nl.link_index(&n.bridge)? {
        return Ok(i);
    }
    let subnet: Subnet = n
        .subnet
        .parse()
        .map_err(|e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let gw: Ipv4Addr = n
        .gateway
        .parse()
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad gateway"))?;
    let index = match nl.create_bridge(&n.bridge, mtu) {
        Ok(i) => i,
        // A concurrent start made it.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) || e.to_string().contains("exists") => {
            return nl.link_index(&n.bridge)?.ok_or(e);
        }
        Err(e) => return Err(e),
    };
    match nl.add_address(index, gw, subnet.prefix()) {
        Ok(()) => {}
        Err(e) if e.to_string().contains("exists") => {}
        Err(e) => return Err(e),
    }
    nl.set_up(index)?;
    Ok(index)
}

/// Name of a container's host-side veth on its `i`th network.
pub(crate) fn host_veth(id: &str, i: usize) -> String {
    format!("vb{}{i}", &id[..10.min(id.len())])
}

/// Attach the container whose init is `pid` to `nets`: called by the
/// monitor before the init is released.
pub(crate) fn attach(
    paths: &crate::Paths,
    store: &Store,
    id: &str,
    nets: &[NetworkRecord],
    ports: &[crate::config::PortMapping],
    pid: i32,
) -> std::result::Result<(), String> {
    if nets.is_empty() {
        return Ok(());
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("opening the container's network namespace: {e}"))?;
    let mut host = Netlink::open().map_err(|e| format!("netlink: {e}"))?;
    let mut inside = Netlink::open_in(&ns).map_err(|e| format!("netlink: {e}"))?;
    let mtu = host_mtu();
    let rec = store.container(id).map_err(|e| e.to_string())?;
    let cfg: crate::config::ContainerConfig =
        serde_json::from_value(rec.config.clone()).map_err(|e| e.to_string())?;
    let want_mac = cfg
        .mac_address
        .as_deref()
        .map(crate::container::create::parse_mac)
        .transpose()
        .map_err(|e| e.to_string())?;
    if let Ok(Some(lo)) = inside.link_index("lo") {
        let _ = inside.set_up(lo);
    }
    for (i, n) in nets.iter().enumerate() {
        let subnet: Subnet = n
            .subnet
            .parse()
            .map_err(|e| format!("network {}: {e}", n.name))?;
        let range: Option<Subnet> = n.ip_range.as_deref().and_then(|r| r.parse().ok());
        let gw: Ipv4Addr = n
            .gateway
            .parse()
            .map_err(|_| format!("network {}: bad gateway", n.name))?;
        let br = ensure_bridge(&mut host, n, mtu)
            .map_err(|e| format!("network {}: bridge {}: {e}", n.name, n.bridge))?;
        ensure_dns(paths, n)?;
        let requested = if i == 0 { cfg.ip.clone() } else { None };
        let ip = store
            .lease(&n.id, id, |taken| {
                if let Some(r) = &requested {
                    return if taken.contains(r) {
                        Err(format!(
                            "address {r} is already in use on network {}",
                            n.name
                        ))
                    } else {
                        Ok(r.clone())
                    };
                }
                let used = taken.iter().filter_map(|t| t.parse().ok()).collect();
                network::subnet::next_free(&subnet, range.as_ref(), gw, &used)
                    .map(|ip| ip.to_string())
                    .ok_or_else(|| format!("network {} has no free address left", n.name))
            })
            .map_err(|e| e.to_string())?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| "bad lease".to_string())?;
        let o = ip.octets();
        let mac = match (i, want_mac) {
            (0, Some(m)) => m,
            _ => [0x02, 0x42, o[0], o[1], o[2], o[3]],
        };
        if i == 0 {
            // /etc/hosts names the container by its address, as Docker's.
            let hosts = store.container_dir(&rec.id).join("hosts");
            if let Ok(text) = std::fs::read_to_string(&hosts) {
                let fixed = text.replace(
                    &format!("127.0.1.1\t{}\n", cfg.hostname),
                    &format!("{ip}\t{}\n", cfg.hostname),
                );
                let _ = std::fs::write(&hosts, fixed);
            }
        }
        let hv = host_veth(id, i);
        let _ = host.delete_link(&hv);
        let dev = format!("eth{i}");
        host.create_veth(&hv, br, &dev, &ns, mtu, Some(mac))
            .map_err(|e| format!("network {}: {e}", n.name))?;
        let idx = inside
            .link_index(&dev)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{dev} did not appear in the container"))?;
        inside
            .add_address(idx, ip, subnet.prefix())
            .map_err(|e| e.to_string())?;
        inside.set_up(idx).map_err(|e| e.to_string())?;
        if i == 0 && !n.internal {
            inside.add_default_route(gw).map_err(|e| e.to_string())?;
        }
        // Ports are published to the address on the first network.
        if i == 0 && !ports.is_empty() {
            network::nft::prepare_bridge(&n.bridge).map_err(|e| e.to_string())?;
            let rules: Vec<network::nft::PortRule> = ports
                .iter()
                .map(|p| network::nft::PortRule {
                    host_ip: p.host_ip.parse().ok(),
                    host_port: p.host_port,
                    proto: p.proto.clone(),
                    container_ip: ip,
                    container_port: p.container_port,
                })
                .collect();
            network::nft::publish(id, &rules).map_err(|e| format!("publishing ports: {e}"))?;
        }
    }
    Ok(())
}

/// Undo [`attach`]: host veths (gone already if the namespace died) and
/// leases.
pub(crate) fn detach(store: &Store, id: &str, count: usize, published: bool) {
    if published {
        let _ = network::nft::unpublish(id);
    }
    if let Ok(mut nl) = Netlink::open() {
        for i in 0..count {
            let _ = nl.delete_link(&host_veth(id, i));
        }
    }
    let _ = store.release_leases(id);
}

/// `<runroot>/dns/<network id>.lock`: held by the network's responder.
fn dns_lock_file(paths: &crate::Paths, id: &str) -> std::io::Result<std::fs::File> {
    let dir = paths.runroot.join("dns");
    std::fs::create_dir_all(&dir)?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{id}.lock")))
}

/// Make sure the DNS responder of network `n` runs: `berth dns-serve ID`,
/// detached, unless one holds the network's lock already.
fn ensure_dns(paths: &crate::Paths, n: &NetworkRecord) -> std::result::Result<(), String> {
    let f = dns_lock_file(paths, &n.id).map_err(|e| e.to_string())?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        // Running: it holds the lock.
        Err(_) => return Ok(()),
        Ok(held) => drop(held),
    }
    use std::os::unix::process::CommandExt;
    std::process::Command::new("/proc/self/exe")
        .arg("--root")
        .arg(&paths.root)
        .arg("--runroot")
        .arg(&paths.runroot)
        .arg("dns-serve")
        .arg(&n.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the DNS responder of {}: {e}", n.name))?;
    Ok(())
}

impl Engine {
    /// `berth dns-serve ID` (hidden): answer the names of the network's
    /// containers on its gateway, port 53, while it has containers (and
    /// 30 s after the last one left).
    pub fn serve_dns(&self, network_id: &str) -> Result<()> {
        let n = self.store().network(network_id)?;
        let f = dns_lock_file(self.paths(), &n.id)
            .map_err(|e| EngineError::io("opening the DNS responder's lock", e))?;
        let Ok(_held) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            return Ok(()); // another one serves
        };
        let gw: Ipv4Addr = n
            .gateway
            .parse()
            .map_err(|_| invalid("network", "bad gateway"))?;
        let mut sock = None;
        for _ in 0..50 {
            match std::net::UdpSocket::bind((gw, 53)) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        let sock = sock.ok_or_else(|| {
            EngineError::io(
                format!("binding {gw}:53"),
                std::io::Error::from(std::io::ErrorKind::AddrNotAvailable),
            )
        })?;
        let upstreams = network::dns::host_resolvers();
        let store = self.store();
        let mut idle_since: Option<std::time::Instant> = None;
        network::dns::serve(
            &sock,
            &upstreams,
            |name| lookup(&store, &n.id, name),
            || {
                let busy = store
                    .leases(Some(&n.id))
                    .map(|l| !l.is_empty())
                    .unwrap_or(false);
                let exists = store.network(&n.id).is_ok();
                if busy {
                    idle_since = None;
                    return exists;
                }
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                exists && since.elapsed() < std::time::Duration::from_secs(30)
            },
        )
        .map_err(|e| EngineError::io("serving DNS", e))
    }
}

/// The addresses of `name` on network `id`: container names, hostnames and
/// short ids of the containers leased there.
fn lookup(store: &Store, id: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
    let leases = store.leases(Some(id)).ok()?;
    let mut out = Vec::new();
    for l in leases {
        let Ok(c) = store.container(&l.container) else {
            continue;
        };
        let hostname = c.config["hostname"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        let alias = c.config["network_aliases"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(name)))
        });
        let matches = c.name.to_ascii_lowercase() == name
            || hostname == name
            || alias
            || (name.len() >= 12 && c.id.as_str().starts_with(name));
        if matches {
            if let Ok(ip) = l.ip.parse() {
                out.push(ip);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}
