//! User-defined bridge networks: create/list/remove, and attaching a
//! starting container (veth into its network namespace, an address leased
//! in the store, default route) from the monitor, before the container is
//! released to run its command.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use network::{Netlink, Subnet, Subnet6};
use store::Store;

use crate::{Engine, EngineError, Result};

mod prune;

/// A network as the store keeps it.
pub use store::NetworkRecord;

/// One `--subnet` with its `--gateway`, `--ip-range` and `--aux-address`es
/// (Docker's `IPAMConfig`).
#[derive(Debug, Clone, Default)]
pub struct IpamPool {
    /// `a.b.c.d/n` or an IPv6 prefix.
    pub subnet: String,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--aux-address name=ip`: addresses never handed out.
    pub aux_addresses: BTreeMap<String, String>,
}

/// `network create` options.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    /// Name.
    pub name: String,
    /// `-d` (only `bridge`).
    pub driver: Option<String>,
    /// `--subnet`s with what belongs to them: at most one per family.
    pub pools: Vec<IpamPool>,
    /// `--internal`.
    pub internal: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `-o`.
    pub options: BTreeMap<String, String>,
    /// `--ipv6`.
    pub enable_ipv6: bool,
    /// `--ipam-driver` (only `default`).
    pub ipam_driver: Option<String>,
    /// `--ipam-opt` (`None`: none given, as the API may say).
    pub ipam_options: Option<BTreeMap<String, String>>,
    /// `--attachable`.
    pub attachable: bool,
    /// `--scope` (only `local` without swarm).
    pub scope: Option<String>,
    /// `--ingress` (a swarm network).
    pub ingress: bool,
}

/// Docker's bridge driver options berth applies.
const ICC_OPT: &str = "com.docker.network.bridge.enable_icc";
const MASQ_OPT: &str = "com.docker.network.bridge.enable_ip_masquerade";
const HOST_BINDING_OPT: &str = "com.docker.network.bridge.host_binding_ipv4";
const MTU_OPT: &str = "com.docker.network.driver.mtu";

/// Go's `strconv.ParseBool`, which dockerd reads these options with.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A boolean driver option of `n` (true when not given, as Docker).
fn bool_opt(n: &NetworkRecord, key: &str) -> bool {
    n.options.get(key).and_then(|v| go_bool(v)).unwrap_or(true)
}

/// The MTU `-o com.docker.network.driver.mtu` asks for, if any.
fn mtu_opt(n: &NetworkRecord) -> Option<u32> {
    n.options
        .get(MTU_OPT)
        .and_then(|v| v.parse().ok())
        .filter(|m| *m > 0)
}

/// The host address ports published on `n` bind to when `-p` names none
/// (`-o com.docker.network.bridge.host_binding_ipv4`).
pub(crate) fn host_binding(n: &NetworkRecord) -> Option<std::net::IpAddr> {
    n.options
        .get(HOST_BINDING_OPT)
        .and_then(|v| v.parse().ok())
        .filter(|ip: &std::net::IpAddr| !ip.is_unspecified())
}

/// Check the driver options dockerd's bridge driver parses, with its
/// words.
fn check_options(options: &BTreeMap<String, String>) -> Result<()> {
    let refuse = |k: &str, v: &str, why: String| {
        Err(EngineError::Refused(format!(
            "failed to parse {k} value: {v} ({why})"
        )))
    };
    for (k, v) in options {
        match k.as_str() {
            ICC_OPT | MASQ_OPT if go_bool(v).is_none() => {
                return refuse(
                    k,
                    v,
                    format!("strconv.ParseBool: parsing {v:?}: invalid syntax"),
                )
            }
            MTU_OPT if v.parse::<i64>().is_err() => {
                return refuse(k, v, format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
            }
            HOST_BINDING_OPT if v.parse::<std::net::IpAddr>().is_err() => {
                return refuse(k, v, "nil ip".into())
            }
            _ => {}
        }
    }
    Ok(())
}

const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";

/// What `network connect` asks for on the network (Docker's
/// `EndpointSettings`).
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// More names for the container there (`--alias`).
    pub aliases: Vec<String>,
    /// Its IPv4 address there (`--ip`).
    pub ip: Option<String>,
    /// Its MAC address there.
    pub mac: Option<String>,
    /// `--link name:alias`: the alias names that container for this one.
    pub links: Vec<String>,
    /// `--ip6`, `--link-local-ip`, driver options.
    pub extra: crate::config::EndpointExtra,
}

fn invalid(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::invalid(what, reason)
}

impl Engine {
    /// `network create`.
    pub fn network_create(&self, o: &NetworkCreate) -> Result<NetworkRecord> {
        // dockerd 20.10 takes any name (spaces and slashes too): the
        // bridge and every file are named by the id.
        if o.name.is_empty() {
            return Err(EngineError::Refused(
                "network name must not be empty".into(),
            ));
        }
        if ["none", "host", "bridge", "default"].contains(&o.name.as_str()) {
            return Err(EngineError::Refused(format!(
                "operation is not permitted on predefined {} network ",
                o.name
            )));
        }
        const NO_SWARM: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
        match o.scope.as_deref() {
            None | Some("") | Some("local") => {}
            Some("swarm") => {
                return Err(EngineError::Refused(
                    "cannot create a swarm scoped network when swarm is not active".into(),
                ))
            }
            Some(_) => return Err(EngineError::Refused(NO_SWARM.into())),
        }
        if o.ingress {
            return Err(EngineError::Refused(
                "Ingress network can only be global scope network".into(),
            ));
        }
        match o.driver.as_deref() {
            None | Some("") | Some("bridge") => {}
            Some("overlay") => return Err(EngineError::Refused(NO_SWARM.into())),
            Some(d) => {
                return Err(invalid(
                    "--driver",
                    format!("{d:?}: berth supports the bridge driver"),
                ))
            }
        }
        match o.ipam_driver.as_deref() {
            None | Some("") | Some("default") => {}
            Some(d) => {
                return Err(EngineError::Store(store::StoreError::NotFound {
                    kind: "plugin",
                    what: d.to_string(),
                    hint: "",
                }))
            }
        }
        check_options(&o.options)?;
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for p in &o.pools {
            if p.subnet.contains(':') {
                v6.push(p);
            } else {
                v4.push(p);
            }
        }
        if v4.len() > 1 || v6.len() > 1 {
            return Err(EngineError::Refused(
                "bridge driver doesn't support multiple subnets".into(),
            ));
        }
        if o.enable_ipv6 && v6.is_empty() {
            return Err(EngineError::Refused("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into()));
        }
        let pool4 = v4.first().copied();
        let pool6 = v6.first().copied();
        let subnet = pool4
            .map(|p| {
                p.subnet
                    .parse::<Subnet>()
                    .map_err(|e| invalid("--subnet", e))
            })
            .transpose()?;
        let range = pool4
            .and_then(|p| p.ip_range.as_deref())
            .map(|s| s.parse::<Subnet>().map_err(|e| invalid("--ip-range", e)))
            .transpose()?;
        let gateway = pool4
            .and_then(|p| p.gateway.as_deref())
            .map(|g| {
                g.parse::<Ipv4Addr>()
                    .map_err(|_| invalid("--gateway", format!("{g:?} is not an IPv4 address")))
            })
            .transpose()?;
        let subnet6 = pool6
            .map(|p| {
                p.subnet
                    .parse::<Subnet6>()
                    .map_err(|e| invalid("--subnet", e))
            })
            .transpose()?;
        let range6 = pool6
            .and_then(|p| p.ip_range.as_deref())
            .map(|s| s.parse::<Subnet6>().map_err(|e| invalid("--ip-range", e)))
            .transpose()?;
        let gateway6 = pool6
            .and_then(|p| p.gateway.as_deref())
            .map(|g| {
                g.parse::<Ipv6Addr>()
                    .map_err(|_| invalid("--gateway", format!("{g:?} is not an IPv6 address")))
            })
            .transpose()?;
        if let Some(s6) = &subnet6 {
            if let Some(g) = gateway6.filter(|g| !s6.contains(*g)) {
                return Err(invalid("--gateway", format!("{g} is not inside {s6}")));
            }
            if let Some(r) = range6.filter(|r| !s6.contains(r.addr()) || r.prefix() < s6.prefix()) {
                return Err(invalid("--ip-range", format!("{r} is not inside {s6}")));
            }
        }
        let mut aux = BTreeMap::new();
        for p in &o.pools {
            for (k, v) in &p.aux_addresses {
                let ip: std::net::IpAddr = v.parse().map_err(|_| {
                    invalid(
                        "--aux-address",
                        format!("{k}={v}: {v:?} is not an IP address"),
                    )
                })?;
                let inside = match ip {
                    std::net::IpAddr::V4(a) => subnet.is_some_and(|s| s.contains(a)),
                    std::net::IpAddr::V6(a) => subnet6.is_some_and(|s| s.contains(a)),
                };
                if !inside {
                    return Err(invalid(
                        "--aux-address",
                        format!("no matching subnet for aux-address {v}"),
                    ));
                }
                aux.insert(k.clone(), v.clone());
            }
        }
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
        // Picking a subnet and making the bridge that claims it happen
        // under one host-wide lock, so that berth roots side by side
        // never pick the same one.
        let _claim = host_network_lock();
        let routes = network::subnet::host_taken();
        let id = model::ContainerId::random().as_str().to_string();
        let rec = self.store().create_network(|existing| {
            let taken: Vec<Subnet> = existing
                .iter()
                .filter_map(|n| n.subnet.parse().ok())
                .collect();
            if let Some(s6) = &subnet6 {
                let clash = existing.iter().any(|n| {
                    n.subnet6
                        .as_deref()
                        .and_then(|t| t.parse::<Subnet6>().ok())
                        .is_some_and(|t| t.overlaps(s6))
                });
                if clash {
                    return Err(store::StoreError::Conflict(
                        "Pool overlaps with other one on this address space".into(),
                    ));
                }
            }
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
                gateway_picked: pool4.is_some() && gateway.is_none(),
                enable_ipv6: o.enable_ipv6,
                subnet6: subnet6.map(|s| s.to_string()),
                gateway6: gateway6.map(|g| g.to_string()),
                ip_range6: range6.map(|r| r.to_string()),
                aux_addresses: aux.clone(),
                ipam_options: o.ipam_options.clone(),
                attachable: o.attachable,
            })
        })?;
        // Rootless: the bridge is made in the rootless network namespace
        // when the first container is attached (the namespace lives only
        // while containers use it).
        if !crate::rootless::active() {
            self.claim_subnet(&rec)?;
        }
        self.emit(
            "network",
            "create",
            &rec.id,
            &[("name", &rec.name), ("type", "bridge")],
        );
        Ok(rec)
    }

    /// `network rm`: refused while containers use it; the bridge and its
    /// firewall rules go.
    pub fn network_remove(&self, key: &str) -> Result<NetworkRecord> {
        let n = self.network(key)?;
        if is_default(&n) || is_builtin(&n) {
            return Err(EngineError::Refused(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        self.drop_network(&n)?;
        self.emit(
            "network",
            "destroy",
            &n.id,
            &[("name", &n.name), ("type", "bridge")],
        );
        Ok(n)
    }

    /// Remove a network record, its bridge and its firewall rules.
    fn drop_network(&self, n: &NetworkRecord) -> Result<()> {
        self.store().remove_network(&n.id)?;
        stop_dns(self.paths(), &n.id);
        // Rootless: its bridge and rules are in the rootless network
        // namespace, if that is up.
        let _rootless = rootless_lock(self.paths()).map_err(|e| invalid("network", e))?;
        let config = &self.paths().config;
        let _ = where_bridges_are(self.paths(), || {
            let fw = crate::settings::Settings::load(config)
                .and_then(|s| s.firewall())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            fw.network_down(&n.id, &n.bridge)
        });
        let _ = std::fs::remove_file(docker_path_mark(self.paths(), n));
        if let Ok(mut nl) = bridge_netlink(self.paths()) {
            let _ = nl.delete_link(&n.bridge);
        }
        if _rootless.is_some() {
            crate::rootlessnet::release_if_unused(self.paths(), &self.store());
        }
        Ok(())
    }

    /// `system reset`: every pod and container (killed), every network (the
    /// default one too) with its bridge and rules, then all of this
    /// berth's state on disk.
    pub fn system_reset(&self) -> Result<()> {
        // Pods first: their infra containers go only with them.
        for p in self.pods()? {
            self.pod_remove(&p.id, true)?;
        }
        for c in self.containers()? {
            self.remove(c.id().as_str(), true, true)?;
        }
        for n in self.store().networks()? {
            self.drop_network(&n)?;
        }
        for v in self.store().volumes()? {
            self.volume_remove(&v.name)?;
        }
        if let Ok(Some(_lock)) = rootless_lock(self.paths()) {
            crate::rootlessnet::teardown(self.paths());
        }
        Ok(())
    }

    /// `network connect`: add a network to a container; a running one gets
    /// its interface (the next free `ethN`) at once.
    pub fn network_connect(&self, net: &str, container: &str, ep: &Endpoint) -> Result<()> {
        let aliases = &ep.aliases[..];
        let ip = ep.ip.as_deref();
        let n = if net == "bridge" || net == "default" {
            self.default_network()?
        } else {
            self.network(net)?
        };
        let c = self.container(container)?;
        // dockerd's refusals, in its order: a shared namespace, the host
        // network, a private (none) one on either side.
        use crate::config::NetworkMode;
        let none = |n: &NetworkRecord| is_builtin(n) && n.name == "none";
        match &c.config.network_mode {
            NetworkMode::Container(_) => return Err(EngineError::Conflict(SHARED_NETNS.into())),
            _ if is_builtin(&n) && n.name == "host" => {
                return Err(EngineError::Conflict(HOST_NETWORK.into()))
            }
            NetworkMode::Host => return Err(EngineError::Conflict(SHARED_NETNS.into())),
            NetworkMode::None if c.config.network_none() || none(&n) => {
                return Err(EngineError::Conflict(PRIVATE_NETWORK.into()))
            }
            NetworkMode::None => {}
        }
        if c.config.networks.contains(&n.name) {
            return Err(invalid(
                "network connect",
                format!(
                    "container {} is already connected to network {}",
                    c.name(),
                    n.name
                ),
            ));
        }
        if !aliases.is_empty() && is_default(&n) {
            return Err(invalid(
                "--alias",
                "network-scoped aliases are supported only on user-defined networks",
            ));
        }
        if let Some(ip) = ip {
            crate::container::create::check_ip(&n, ip)?;
        }
        crate::container::create::check_endpoint(&n, &ep.extra)?;
        let mac = match ep.mac.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => {
                crate::container::create::parse_mac(m)?;
                Some(m.to_string())
            }
            None => None,
        };
        if !ep.links.is_empty() && is_default(&n) {
            return Err(invalid(
                "--link",
                "links on the default bridge are made with the container (--link at create)",
            ));
        }
        for l in &ep.links {
            crate::container::links::parse_link(l)?;
        }
        let name = n.name.clone();
        let cid = c.id().clone();
        self.store().update_container(&cid, |rec| {
            let mut cfg: crate::config::ContainerConfig =
                serde_json::from_value(rec.config.clone())
                    .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            if !cfg.networks.contains(&name) {
                cfg.networks.push(name.clone());
            }
            if !aliases.is_empty() {
                cfg.connect_aliases.insert(name.clone(), aliases.to_vec());
            }
            if let Some(ip) = ip {
                cfg.connect_ips.insert(name.clone(), ip.to_string());
            }
            if let Some(m) = &mac {
                cfg.connect_macs.insert(name.clone(), m.clone());
            }
            if !ep.links.is_empty() {
                cfg.network_links.insert(name.clone(), ep.links.clone());
            }
            if !ep.extra.is_empty() {
                cfg.endpoint_extras.insert(name.clone(), ep.extra.clone());
            }
            rec.config = serde_json::to_value(&cfg)
                .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            Ok(())
        })?;
        // As Docker's: a container whose networks so far had no name
        // service (the default bridge) asks the new network's from now on.
        let had_dns = c
            .config
            .networks
            .iter()
            .filter_map(|other| self.store().network(other).ok())
            .any(|r| !is_default(&r));
        if !is_default(&n) && !had_dns && c.config.dns.is_empty() {
            let path = self.store().container_dir(c.id()).join("resolv.conf");
            let text = crate::container::create::resolv_conf(&c.config, Some(&n.gateway));
            overwrite_in_place(&path, text.as_bytes())
                .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        }
        if !c.is_running() {
            return Ok(());
        }
        let has_way_out = c
            .config
            .networks
            .iter()
            .filter(|other| **other != name)
            .filter_map(|other| self.store().network(other).ok())
            .any(|r| !r.internal);
        // Rootless: the rootless network namespace is made if it is not up.
        let rootless = rootless_lock(self.paths()).map_err(|e| invalid("network connect", e))?;
        let live = || -> std::result::Result<(), String> {
            if rootless.is_some() {
                crate::rootlessnet::ensure(&self.paths().runroot, &self.paths().config)?;
            }
            let pid = self
                .live_pid(&c)
                .ok_or_else(|| "the container stopped".to_string())?;
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                .map_err(|e| format!("opening the container's network namespace: {e}"))?;
            let mut host = bridge_netlink(self.paths()).map_err(|e| format!("netlink: {e}"))?;
            let mut inside = Netlink::open_in(&ns).map_err(|e| format!("netlink: {e}"))?;
            let names = inside.link_names().map_err(|e| e.to_string())?;
            let dev = (0..)
                .map(|i| format!("eth{i}"))
                .find(|d| !names.contains(d))
                .expect("a free name");
            let p = Plug {
                n: &n,
                dev,
                requested: ip.map(str::to_string),
                requested6: ep.extra.ip6.clone(),
                link_local: link_local(&ep.extra),
                mac: mac
                    .as_deref()
                    .map(crate::container::create::parse_mac)
                    .transpose()
                    .map_err(|e| e.to_string())?,
                // The first network with a way out takes the default route
                // from internal ones.
                default_route: !n.internal && !has_way_out,
            };
            plug(
                self.paths(),
                &self.store(),
                &mut host,
                &mut inside,
                &ns,
                cid.as_str(),
                &p,
                host_mtu(),
            )
            .map(|_| ())
        };
        if let Err(e) = live() {
            // Leave the container as it was.
            let _ = self.store().release_lease(cid.as_str(), &n.id);
            if let Ok(mut nl) = bridge_netlink(self.paths()) {
                let _ = nl.delete_link(&host_veth(cid.as_str(), &n.id));
            }
            if rootless.is_some() {
                crate::rootlessnet::release_if_unused(self.paths(), &self.store());
            }
            let _ = self.forget_network(&cid, &name);
            return Err(invalid("network connect", e));
        }
        self.emit(
            "network",
            "connect",
            &n.id,
            &[
                ("name", &n.name),
                ("container", cid.as_str()),
                ("type", "bridge"),
            ],
        );
        Ok(())
    }

    /// `network disconnect`: take a network away from a container (its
    /// interface goes at once when it runs).
    pub fn network_disconnect(&self, net: &str, container: &str, force: bool) -> Result<()> {
        let c = self.container(container)?;
        let n = match self.network(net) {
            Ok(n) => n,
            Err(e) if !force => return Err(e),
            Err(_) => {
                // -f: forget a network that no longer exists.
                return self.forget_network(c.id(), net);
            }
        };
        match n.name.as_str() {
            "host"
                if is_builtin(&n) && c.config.network_mode == crate::config::NetworkMode::Host =>
            {
                return Err(EngineError::Conflict(HOST_NETWORK.into()));
            }
            // dockerd takes it (the container keeps its loopback only,
            // as before); berth still shows its `none` endpoint.
            "none" if is_builtin(&n) && c.config.network_none() => return Ok(()),
            _ => {}
        }
        if !c.config.networks.contains(&n.name) {
            return Err(invalid(
                "network disconnect",
                format!(
                    "container {} is not connected to network {}",
                    c.name(),
                    n.name
                ),
            ));
        }
        let rootless = rootless_lock(self.paths()).map_err(|e| invalid("network disconnect", e))?;
        if rootless.is_some() && c.config.networks.first() == Some(&n.name) {
            crate::rootlessnet::stop_proxy(&self.paths().runroot, c.id().as_str());
        }
        if c.config.networks.first() == Some(&n.name)
            && !c.config.ports.is_empty()
            && rootless.is_none()
        {
            if let Ok(fw) =
                crate::settings::Settings::load(&self.paths().config).and_then(|s| s.firewall())
            {
                let _ = fw.unpublish(c.id().as_str());
            }
        }
        if let Ok(mut nl) = bridge_netlink(self.paths()) {
            let _ = nl.delete_link(&host_veth(c.id().as_str(), &n.id));
        }
        self.store().release_lease(c.id().as_str(), &n.id)?;
        if rootless.is_some() {
            crate::rootlessnet::release_if_unused(self.paths(), &self.store());
        }
        self.forget_network(c.id(), &n.name)?;
        self.emit(
            "network",
            "disconnect",
            &n.id,
            &[
                ("name", &n.name),
                ("container", c.id().as_str()),
                ("type", "bridge"),
            ],
        );
        Ok(())
    }

    /// The pid of a running container's init (None if it is gone or the
    /// pid was reused).
    fn live_pid(&self, c: &crate::container::Container) -> Option<i32> {
        c.state.is_alive().then_some(c.state.pid)
    }

    fn forget_network(&self, id: &model::ContainerId, name: &str) -> Result<()> {
        self.store().update_container(id, |rec| {
            let mut cfg: crate::config::ContainerConfig =
                serde_json::from_value(rec.config.clone())
                    .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            cfg.networks.retain(|x| x != name);
            cfg.connect_aliases.remove(name);
            cfg.connect_ips.remove(name);
            cfg.connect_macs.remove(name);
            cfg.network_links.remove(name);
            cfg.endpoint_extras.remove(name);
            rec.config = serde_json::to_value(&cfg)
                .map_err(|e| store::StoreError::Conflict(format!("container config: {e}")))?;
            Ok(())
        })?;
        Ok(())
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

/// Docker's option marking the default bridge network.
pub const DEFAULT_BRIDGE_OPT: &str = "com.docker.network.bridge.default_bridge";

/// Whether `n` is the default bridge (`bridge`): no name resolution there,
/// as in Docker.
pub fn is_default(n: &NetworkRecord) -> bool {
    n.options.get(DEFAULT_BRIDGE_OPT).map(String::as_str) == Some("true")
}

/// dockerd's refusal to connect a container sharing another namespace.
const SHARED_NETNS: &str = "container sharing network namespace with another container or host cannot be connected to any other network";
/// dockerd's refusal to connect to (or disconnect from) `host`.
const HOST_NETWORK: &str =
    "container cannot be disconnected from host network or connected to host network";
/// dockerd's refusal to mix `none` with another network.
const PRIVATE_NETWORK: &str = "container cannot be connected to multiple networks with one of the networks in private (none) mode";

/// Docker's networks that are no bridge: `host` (driver `host`: the
/// host's namespace) and `none` (driver `null`: loopback only). They are
/// listed and inspected as Docker lists them, but never stored: nothing
/// is set up for them (no bridge, subnet, rules or leases).
pub const BUILTIN: [(&str, &str); 2] = [("host", "host"), ("none", "null")];

/// Whether `n` is `host` or `none` (see [`BUILTIN`]).
pub fn is_builtin(n: &NetworkRecord) -> bool {
    n.bridge.is_empty() && BUILTIN.contains(&(n.name.as_str(), n.driver.as_str()))
}

/// The Linux bridge of the default network: `berth0` for the default
/// store, another name per store otherwise (two berth roots on one host
/// must not share a bridge).
pub(crate) fn default_bridge_name(root: &std::path::Path) -> String {
    if root == std::path::Path::new(crate::DEFAULT_ROOT) {
        return "berth0".into();
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    format!("berth{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

impl Engine {
    /// The default bridge network (`bridge`), created on first use.
    pub fn default_network(&self) -> Result<NetworkRecord> {
        match self.store().network("bridge") {
            Ok(n) => return Ok(n),
            Err(store::StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let _claim = host_network_lock();
        let routes = network::subnet::host_taken();
        let bridge = default_bridge_name(&self.paths().root);
        let id = model::ContainerId::random().as_str().to_string();
        let made = self.store().create_network(|existing| {
            let mut taken: Vec<Subnet> = existing
                .iter()
                .filter_map(|n| n.subnet.parse().ok())
                .collect();
            taken.extend(routes.iter().copied());
            let subnet = network::subnet::pick(&taken).ok_or_else(|| {
                store::StoreError::Conflict(
                    "no free subnet left for the default bridge network".into(),
                )
            })?;
            let mut options = BTreeMap::new();
            options.insert(DEFAULT_BRIDGE_OPT.to_string(), "true".to_string());
            options.insert(BRIDGE_NAME_OPT.to_string(), bridge.clone());
            Ok(NetworkRecord {
                id: id.clone(),
                name: "bridge".into(),
                driver: "bridge".into(),
                subnet: subnet.to_string(),
                gateway: subnet.first_host().to_string(),
                ip_range: None,
                bridge: bridge.clone(),
                internal: false,
                labels: BTreeMap::new(),
                options,
                created: chrono::Utc::now(),
                ..NetworkRecord::default()
            })
        });
        match made {
            Ok(n) => {
                // Rootless: listed, never made (a plain run uses pasta).
                if !crate::rootless::active() {
                    self.claim_subnet(&n)?;
                }
                Ok(n)
            }
            // Made by a concurrent command.
            Err(store::StoreError::Conflict(_)) => Ok(self.store().network("bridge")?),
            Err(e) => Err(e.into()),
        }
    }
}

/// `/run/lock/berth-networks.lock`, held while a subnet is picked and its
/// bridge made: one for the host, whatever the root (None if it cannot be
/// had, e.g. a read-only /run: the pick then only sees what is there).
fn host_network_lock() -> Option<nix::fcntl::Flock<std::fs::File>> {
    // Rootless: the bridges live in berth's own network namespace, where
    // no other root's are (and /run/lock is not the user's to write in).
    if crate::rootless::active() {
        return None;
    }
    let dir = if std::path::Path::new("/run/lock").is_dir() {
        "/run/lock"
    } else {
        "/run"
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{dir}/berth-networks.lock"))
        .ok()?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok()
}

impl Engine {
    /// Make the bridge of a network just recorded, with its gateway
    /// address, as Docker does at `network create`: the address is the
    /// claim on the subnet that other roots and engines see. On failure
    /// the record goes again.
    fn claim_subnet(&self, n: &NetworkRecord) -> Result<()> {
        let made =
            Netlink::open().and_then(|mut nl| ensure_bridge(self.paths(), &mut nl, n, host_mtu()));
        if let Err(e) = made {
            let _ = self.store().remove_network(&n.id);
            return Err(EngineError::io(
                format!("making bridge {} of network {}", n.bridge, n.name),
                e,
            ));
        }
        Ok(())
    }
}

/// The bridge of `n`, created (with its gateway address, up, its firewall
/// rules) if missing: after a reboot networks come back on first use.
/// When it exists and so does a `docker0` it has not been checked
/// against, its accept rules in Docker's `FORWARD` path are checked
/// (dockerd may have started since the bridge came up) and the check
/// remembered ([`docker_path_mark`]); otherwise this costs one or two
/// netlink lookups.
fn ensure_bridge(
    paths: &crate::Paths,
    nl: &mut Netlink,
    n: &NetworkRecord,
    mtu: Option<u32>,
) -> std::io::Result<u32> {
    let bad = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    if let Some(i) = nl.link_index(&n.bridge)? {
        if let Some(docker0) = nl.link_index("docker0")? {
            let mark = docker_path_mark(paths, n);
            if std::fs::read_to_string(&mark).ok() != Some(docker0.to_string()) {
                let fw = crate::settings::Settings::load(&paths.config)
                    .and_then(|s| s.firewall())
                    .map_err(|e| bad(e.to_string()))?;
                where_bridges_are(paths, || fw.network_recheck(&n.id, &n.bridge, n.internal))
                    .map_err(|e| std::io::Error::new(e.kind(), format!("firewall: {e}")))?;
                remember(&mark, docker0);
            }
        }
        return Ok(i);
    }
    let subnet: Subnet = n.subnet.parse().map_err(bad)?;
    let gw: Ipv4Addr = n.gateway.parse().map_err(|_| bad("bad gateway".into()))?;
    let settings =
        crate::settings::Settings::load(&paths.config).map_err(|e| bad(e.to_string()))?;
    let firewall = settings.firewall().map_err(|e| bad(e.to_string()))?;
    let index = match nl.create_bridge(&n.bridge, mtu_opt(n).or(mtu)) {
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
    let gw6 = n
        .ipv6_gateway()
        .filter(|_| n.enable_ipv6)
        .and_then(|g| g.parse::<Ipv6Addr>().ok());
    if let (Some(gw6), Some(s6)) = (gw6, n.subnet6.as_deref()) {
        let prefix: u8 = s6
            .split_once('/')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(64);
        match nl.add_address6(index, gw6, prefix) {
            Ok(()) => {}
            Err(e) if e.to_string().contains("exists") => {}
            Err(e) => return Err(e),
        }
    }
    // The sysctls and `nft` are those of the namespace the bridge is in.
    let rules = network::firewall::NetworkRules {
        id: &n.id,
        bridge: &n.bridge,
        subnet: &n.subnet,
        internal: n.internal,
        icc: bool_opt(n, ICC_OPT),
        masquerade: bool_opt(n, MASQ_OPT),
        ipv6: gw6.is_some(),
    };
    where_bridges_are(paths, || {
        network::firewall::prepare_bridge(&n.bridge)?;
        firewall
            .network_up(&rules)
            .map_err(|e| std::io::Error::new(e.kind(), format!("firewall: {e}")))
    })?;
    // Rootless: the namespace forwards already (set when it was made).
    if !n.internal && settings.network.ip_forward && !crate::rootless::active() {
        network::firewall::enable_ip_forward()
            .map_err(|e| std::io::Error::new(e.kind(), format!("net.ipv4.ip_forward: {e}")))?;
    }
    if let Some(docker0) = nl.link_index("docker0")? {
        remember(&docker_path_mark(paths, n), docker0);
    }
    nl.set_up(index)?;
    Ok(index)
}

/// Rootless: [`crate::rootlessnet::lock`], held while the rootless
/// network namespace is made, used or taken down; `None` for rootful berth.
fn rootless_lock(
    paths: &crate::Paths,
) -> std::result::Result<Option<nix::fcntl::Flock<std::fs::File>>, String> {
    if crate::rootless::active() {
        crate::rootlessnet::lock(&paths.runroot).map(Some)
    } else {
        Ok(None)
    }
}

/// A netlink socket in the namespace berth's bridges are in: the host's,
/// or rootless berth's own (which must be up).
fn bridge_netlink(paths: &crate::Paths) -> std::io::Result<Netlink> {
    if crate::rootless::active() {
        let ns = std::fs::File::open(crate::rootlessnet::netns_file(&paths.runroot))?;
        Netlink::open_in(&ns)
    } else {
        Netlink::open()
    }
}

/// Run `f` in the namespace berth's bridges are in: the processes it
/// spawns (`nft`, the DNS responder) and the `/proc/sys/net` files it
/// writes are that namespace's. Rootless, on a thread in rootless berth's
/// namespace (which must be up).
fn where_bridges_are<T: Send>(
    paths: &crate::Paths,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    if crate::rootless::active() {
        crate::rootlessnet::run_in(&paths.runroot, || f().map_err(|e| e.to_string()))
            .map_err(std::io::Error::other)
    } else {
        f()
    }
}

/// `<runroot>/docker-path/<network id>`: the index of the `docker0` whose
/// dockerd's `FORWARD` path was last given the network's accept rules.
/// dockerd keeps `DOCKER-USER` across restarts and `docker0` with it, so
/// a new index means a new dockerd (or a reboot, which empties the
/// runroot) and another check. Rules flushed by hand come back when the
/// bridge is made again.
fn docker_path_mark(paths: &crate::Paths, n: &NetworkRecord) -> std::path::PathBuf {
    paths.runroot.join("docker-path").join(&n.id)
}

/// Best effort: without the mark the next attach checks again.
fn remember(mark: &std::path::Path, docker0: u32) {
    if let Some(dir) = mark.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(mark, docker0.to_string());
}

/// Replace the content of a small file without truncating it to zero
/// first: freeing its block would cost a synchronous discard on
/// filesystems mounted with `discard` (~15 ms on the start path here).
pub(crate) fn overwrite_in_place(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all_at(data, 0)?;
    f.set_len(data.len() as u64)
}

/// Name of a container's host-side veth on a network (15 characters,
/// stable, so it can be found again without state).
pub(crate) fn host_veth(container: &str, network: &str) -> String {
    format!(
        "vb{}{}",
        &container[..6.min(container.len())],
        &network[..7.min(network.len())]
    )
}

/// The `--link-local-ip`s of an endpoint (checked at create/connect).
fn link_local(e: &crate::config::EndpointExtra) -> Vec<std::net::IpAddr> {
    e.link_local_ips
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// One network to plug into a container's namespace.
struct Plug<'a> {
    n: &'a NetworkRecord,
    /// Interface name inside.
    dev: String,
    /// `--ip` / `connect --ip`.
    requested: Option<String>,
    /// `--ip6` / `connect --ip6`.
    requested6: Option<String>,
    /// `--link-local-ip` / `connect --link-local-ip`.
    link_local: Vec<std::net::IpAddr>,
    /// `--mac-address` (first network only).
    mac: Option<[u8; 6]>,
    /// The default route goes through this network (replacing one through
    /// an internal network).
    default_route: bool,
}

/// Plug the container `id` (namespace `ns`) into one network: lease, veth,
/// address, route. Returns the address.
#[allow(clippy::too_many_arguments)]
fn plug(
    paths: &crate::Paths,
    store: &Store,
    host: &mut Netlink,
    inside: &mut Netlink,
    ns: &std::fs::File,
    id: &str,
    p: &Plug<'_>,
    mtu: Option<u32>,
) -> std::result::Result<Ipv4Addr, String> {
    let n = p.n;
    let mtu = mtu_opt(n).or(mtu);
    let subnet: Subnet = n
        .subnet
        .parse()
        .map_err(|e| format!("network {}: {e}", n.name))?;
    let range: Option<Subnet> = n.ip_range.as_deref().and_then(|r| r.parse().ok());
    let gw: Ipv4Addr = n
        .gateway
        .parse()
        .map_err(|_| format!("network {}: bad gateway", n.name))?;
    let br = ensure_bridge(paths, host, n, mtu)
        .map_err(|e| format!("network {}: bridge {}: {e}", n.name, n.bridge))?;
    if !is_default(n) {
        where_bridges_are(paths, || {
            ensure_dns(paths, n).map_err(std::io::Error::other)
        })
        .map_err(|e| e.to_string())?;
    }
    let ip = store
        .lease(&n.id, id, |taken| {
            if let Some(r) = &p.requested {
                return if taken.contains(r) {
                    Err(format!(
                        "address {r} is already in use on network {}",
                        n.name
                    ))
                } else {
                    Ok(r.clone())
                };
            }
            let mut used: std::collections::HashSet<Ipv4Addr> =
                taken.iter().filter_map(|t| t.parse().ok()).collect();
            used.extend(
                n.aux_addresses
                    .values()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok()),
            );
            network::subnet::next_free(&subnet, range.as_ref(), gw, &used)
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("network {} has no free address left", n.name))
        })
        .map_err(|e| e.to_string())?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| "bad lease".to_string())?;
    let o = ip.octets();
    let mac = p.mac.unwrap_or([0x02, 0x42, o[0], o[1], o[2], o[3]]);
    let hv = host_veth(id, &n.id);
    host.create_veth(&hv, br, &p.dev, ns, mtu, Some(mac))
        .or_else(|e| {
            // Left over from a crash (its namespace kept alive): replace it.
            if e.raw_os_error() == Some(libc::EEXIST) || e.to_string().contains("exists") {
                let _ = host.delete_link(&hv);
                host.create_veth(&hv, br, &p.dev, ns, mtu, Some(mac))
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("network {}: {e}", n.name))?;
    let idx = inside
        .link_index(&p.dev)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} did not appear in the container", p.dev))?;
    inside
        .add_address(idx, ip, subnet.prefix())
        .map_err(|e| e.to_string())?;
    let v6 = lease_ipv6(store, id, p)?;
    if let Some((ip6, prefix6, _)) = v6 {
        Netlink::enable_ipv6_in(ns, &p.dev).map_err(|e| format!("network {}: {e}", n.name))?;
        inside
            .add_address6(idx, ip6, prefix6)
            .map_err(|e| e.to_string())?;
    }
    // `--link-local-ip`: as Docker, 169.254/16 and fe80::/64.
    for ll in &p.link_local {
        match ll {
            std::net::IpAddr::V4(a) => inside.add_address(idx, *a, 16),
            std::net::IpAddr::V6(a) => {
                Netlink::enable_ipv6_in(ns, &p.dev).and_then(|()| inside.add_address6(idx, *a, 64))
            }
        }
        .map_err(|e| format!("--link-local-ip {ll}: {e}"))?;
    }
    inside.set_up(idx).map_err(|e| e.to_string())?;
    // As Docker's: an internal network's gateway too (its bridge forwards
    // nothing), until a network with a way out comes.
    if p.default_route {
        inside
            .replace_default_route(gw)
            .map_err(|e| e.to_string())?;
        if let Some((_, _, gw6)) = v6 {
            inside
                .replace_default_route6(gw6)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(ip)
}

/// The IPv6 address of container `id` on a dual-stack network (`--ip6`
/// or the next free one), leased in the store; None on an IPv4 network.
/// Returns the address, its prefix length and the gateway.
fn lease_ipv6(
    store: &Store,
    id: &str,
    p: &Plug<'_>,
) -> std::result::Result<Option<(Ipv6Addr, u8, Ipv6Addr)>, String> {
    let n = p.n;
    let Some(subnet) = n
        .subnet6
        .as_deref()
        .filter(|_| n.enable_ipv6)
        .and_then(|s| s.parse::<Subnet6>().ok())
    else {
        return Ok(None);
    };
    let range: Option<Subnet6> = n.ip_range6.as_deref().and_then(|r| r.parse().ok());
    let gw: Ipv6Addr = n
        .ipv6_gateway()
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| format!("network {}: bad IPv6 gateway", n.name))?;
    let aux: Vec<Ipv6Addr> = n
        .aux_addresses
        .values()
        .filter_map(|a| a.parse().ok())
        .collect();
    let ip = store
        .lease6(&n.id, id, |taken| {
            if let Some(r) = &p.requested6 {
                return if taken.contains(r) {
                    Err("Address already in use".to_string())
                } else {
                    Ok(r.clone())
                };
            }
            let mut used: std::collections::HashSet<Ipv6Addr> =
                taken.iter().filter_map(|t| t.parse().ok()).collect();
            used.extend(aux.iter().copied());
            network::subnet::next_free6(&subnet, range.as_ref(), gw, &used)
                .map(|ip| ip.to_string())
                .ok_or_else(|| format!("network {} has no free IPv6 address left", n.name))
        })
        .map_err(|e| e.to_string())?;
    let ip: Ipv6Addr = ip.parse().map_err(|_| "bad lease".to_string())?;
    Ok(Some((ip, subnet.prefix(), gw)))
}

/// Bring up the loopback of the network namespace of `pid` (`--network
/// none`: Docker's container has `lo` up with 127.0.0.1).
pub(crate) fn loopback_up(pid: i32) -> std::result::Result<(), String> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("opening the container's network namespace: {e}"))?;
    let mut inside = Netlink::open_in(&ns).map_err(|e| format!("netlink: {e}"))?;
    if let Ok(Some(lo)) = inside.link_index("lo") {
        inside
            .set_up(lo)
            .map_err(|e| format!("bringing lo up: {e}"))?;
    }
    Ok(())
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
    // Rootless: in the rootless network namespace, made if it is not up;
    // published ports go through the container's port proxy.
    let rootless = rootless_lock(paths)?;
    if rootless.is_some() {
        crate::rootlessnet::ensure(&paths.runroot, &paths.config)?;
    }
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("opening the container's network namespace: {e}"))?;
    let mut host = bridge_netlink(paths).map_err(|e| format!("netlink: {e}"))?;
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
    // Networks with a way out first, as Docker orders a container's
    // endpoints: the first is eth0, the default route and the published
    // ports. `--ip` and `--mac-address` belong to the `--network` one.
    let created_on = cfg.networks.first();
    let mut nets: Vec<&NetworkRecord> = nets.iter().collect();
    nets.sort_by_key(|n| n.internal);
    for (i, n) in nets.into_iter().enumerate() {
        let first = i == 0;
        let given = created_on == Some(&n.name);
        let extra = cfg
            .endpoint_extras
            .get(&n.name)
            .cloned()
            .unwrap_or_default();
        let plugged = Plug {
            n,
            dev: format!("eth{i}"),
            requested: match cfg.connect_ips.get(&n.name) {
                Some(ip) => Some(ip.clone()),
                None if given => cfg.ip.clone(),
                None => None,
            },
            requested6: extra.ip6.clone(),
            link_local: link_local(&extra),
            mac: match cfg.connect_macs.get(&n.name) {
                Some(m) => Some(crate::container::create::parse_mac(m).map_err(|e| e.to_string())?),
                None if given => want_mac,
                None => None,
            },
            default_route: first,
        };
        let ip = plug(paths, store, &mut host, &mut inside, &ns, id, &plugged, mtu)?;
        if first {
            // /etc/hosts names the container by its address, as Docker's.
            let hosts = store.container_dir(&rec.id).join("hosts");
            if let Ok(text) = std::fs::read_to_string(&hosts) {
                let fixed = text.replace(
                    &format!("127.0.1.1\t{}\n", cfg.hostname),
                    &format!("{ip}\t{}\n", cfg.hostname),
                );
                if fixed != text {
                    let _ = overwrite_in_place(&hosts, fixed.as_bytes());
                }
            }
        }
        if first && !ports.is_empty() && rootless.is_some() {
            let specs: Vec<String> = ports
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    if p.host_ip.is_empty() {
                        if let Some(std::net::IpAddr::V4(a)) = host_binding(n) {
                            p.host_ip = a.to_string();
                        }
                    }
                    crate::rootlessnet::proxy_spec(&p, ip)
                })
                .collect();
            let netns = crate::rootlessnet::netns_file(&paths.runroot);
            crate::rootlessnet::start_proxy(paths, id, &netns, &specs)?;
            continue;
        }
        // Ports are published to the address on the first network.
        if first && !ports.is_empty() {
            let rules: Vec<network::nft::PortRule> = ports
                .iter()
                .map(|p| network::nft::PortRule {
                    // `-p PORT` without an address: the network's
                    // `host_binding_ipv4` if it has one.
                    host_ip: p.host_ip.parse().ok().or_else(|| match host_binding(n) {
                        Some(std::net::IpAddr::V4(a)) => Some(a),
                        _ => None,
                    }),
                    host_port: p.host_port,
                    proto: p.proto.clone(),
                    container_ip: ip,
                    container_port: p.container_port,
                })
                .collect();
            let fw = crate::settings::Settings::load(&paths.config)
                .and_then(|s| s.firewall())
                .map_err(|e| e.to_string())?;
            fw.publish(id, &rules)
                .map_err(|e| format!("publishing ports: {e}"))?;
        }
    }
    Ok(())
}

/// Undo [`attach`] for a container that stopped: published ports and
/// leases go. Its veths go with its network namespace (the kernel removes
/// them when the namespace dies, off the exit path); they are deleted here
/// only when `delete_links` (the namespace lives on: containers joined it
/// with `--network container:`).
pub(crate) fn detach(paths: &crate::Paths, store: &Store, id: &str, published: bool) {
    // Rootless: the container's pasta or its port proxy, if it has one;
    // no rules are ours.
    if crate::rootless::active() {
        crate::usernet::stop(&paths.runroot, id, published);
        crate::rootlessnet::stop_proxy(&paths.runroot, id);
    }
    let rootless = rootless_lock(paths).ok().flatten();
    if published && !crate::rootless::active() {
        if let Ok(fw) = crate::settings::Settings::load(&paths.config).and_then(|s| s.firewall()) {
            let _ = fw.unpublish(id);
        }
    }
    let leases = store.leases(None).unwrap_or_default();
    let mine: Vec<_> = leases.into_iter().filter(|l| l.container == id).collect();
    if !mine.is_empty()
        && store
            .containers_joining(id)
            .map(|j| !j.is_empty())
            .unwrap_or(true)
    {
        if let Ok(mut nl) = bridge_netlink(paths) {
            for l in &mine {
                let _ = nl.delete_link(&host_veth(id, &l.network));
            }
        }
    }
    let _ = store.release_leases(id);
    // The rootless network namespace goes with the last container in it.
    if rootless.is_some() && !mine.is_empty() {
        crate::rootlessnet::release_if_unused(paths, store);
    }
}

/// `<runroot>/dns/<network id>.lock`: held by the network's responder.
fn dns_lock_path(paths: &crate::Paths, id: &str) -> std::path::PathBuf {
    paths.runroot.join("dns").join(format!("{id}.lock"))
}

/// The network's responder lock file, made if missing.
fn dns_lock_file(paths: &crate::Paths, id: &str) -> std::io::Result<std::fs::File> {
    let path = dns_lock_path(paths, id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Stop the DNS responder of a removed network and wait until it is gone:
/// it holds the gateway's port 53, which a network made next with the same
/// subnet needs for its own responder. The responder wrote its pid into
/// its lock file; the lock is free once it has exited.
pub(crate) fn stop_dns(paths: &crate::Paths, id: &str) {
    let path = dns_lock_path(paths, id);
    let Ok(f) = std::fs::File::open(&path) else {
        return;
    };
    let pid: i32 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut f = f;
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(held) => {
                drop(held);
                break;
            }
            Err((back, _)) => f = back,
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        if pid > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&path);
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
        let Ok(held) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            return Ok(()); // another one serves
        };
        // Our pid, for `network rm` to stop us.
        {
            use std::io::Write;
            let mut w: &std::fs::File = &held;
            let _ = held.set_len(0);
            let _ = write!(w, "{}", std::process::id());
        }
        let served = self.serve_dns_locked(&n);
        // A `network rm` that came between our look at the network and
        // our open of the lock removed the file before we made it again:
        // the lock file of a removed network goes with its responder.
        if self.store().network(&n.id).is_err() {
            let _ = std::fs::remove_file(dns_lock_path(self.paths(), &n.id));
        }
        drop(held);
        served
    }

    /// [`Engine::serve_dns`] once it holds the network's lock.
    fn serve_dns_locked(&self, n: &NetworkRecord) -> Result<()> {
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
        // Rootless: the namespace's way out forwards DNS to the host's.
        let upstreams = if crate::rootless::active() {
            vec![crate::rootlessnet::dns_upstream(&self.paths().runroot)]
        } else {
            network::dns::host_resolvers()
        };
        let store = self.store();
        let mut idle_since: Option<std::time::Instant> = None;
        // An internal network's containers have no way out: by DNS neither.
        let others = if n.internal {
            network::dns::Others::Refuse
        } else {
            network::dns::Others::Relay(&upstreams)
        };
        network::dns::serve(
            &sock,
            others,
            |name, from| lookup(&store, n, name, from.ip()),
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

/// The addresses of `name` for the container asking from `from` on
/// network `net`: names on every network that container is connected to
/// (as Docker's embedded DNS), else on `net` alone.
fn lookup(
    store: &Store,
    net: &NetworkRecord,
    name: &str,
    from: std::net::IpAddr,
) -> Option<Vec<std::net::IpAddr>> {
    let leases = store.leases(Some(&net.id)).ok()?;
    let from = match from {
        std::net::IpAddr::V6(a) => a.to_ipv4_mapped().map_or(from, std::net::IpAddr::V4),
        v4 => v4,
    };
    let asker = leases
        .iter()
        .find(|l| l.ip == from.to_string())
        .and_then(|l| store.container(&l.container).ok())
        .and_then(|c| serde_json::from_value::<crate::config::ContainerConfig>(c.config).ok());
    let mut nets = vec![net.clone()];
    if let Some(cfg) = &asker {
        for other in cfg.networks.iter().filter(|o| **o != net.name) {
            if let Ok(n) = store.network(other) {
                if !is_default(&n) {
                    nets.push(n);
                }
            }
        }
    }
    let mut out = Vec::new();
    for n in &nets {
        // A link's alias names its target for the linking container only.
        let linked = asker
            .as_ref()
            .and_then(|cfg| cfg.network_links.get(&n.name))
            .into_iter()
            .flatten()
            .filter_map(|l| crate::container::links::parse_link(l).ok())
            .find(|(_, alias)| alias.eq_ignore_ascii_case(name));
        let target = linked.as_ref().map_or(name, |(target, _)| target.as_str());
        out.extend(lookup_on(store, n, target).unwrap_or_default());
    }
    (!out.is_empty()).then_some(out)
}

/// The addresses of `name` on network `net`: container names, hostnames,
/// aliases and short ids of the containers leased there.
fn lookup_on(store: &Store, net: &NetworkRecord, name: &str) -> Option<Vec<std::net::IpAddr>> {
    let leases = store.leases(Some(&net.id)).ok()?;
    let mut out = Vec::new();
    for l in leases {
        let Ok(c) = store.container(&l.container) else {
            continue;
        };
        let Ok(cfg) = serde_json::from_value::<crate::config::ContainerConfig>(c.config.clone())
        else {
            continue;
        };
        let same = |x: &String| x.eq_ignore_ascii_case(name);
        let alias = (cfg.networks.first() == Some(&net.name)
            && cfg.network_aliases.iter().any(same))
            || cfg
                .connect_aliases
                .get(&net.name)
                .is_some_and(|a| a.iter().any(same));
        let matches = c.name.eq_ignore_ascii_case(name)
            || cfg.hostname.eq_ignore_ascii_case(name)
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

impl Engine {
    /// A network by name, id or id prefix: a stored one, else `host` or
    /// `none`.
    pub fn network(&self, key: &str) -> Result<NetworkRecord> {
        match self.store().network(key) {
            Err(e @ store::StoreError::NotFound { .. }) => self
                .builtin_networks()
                .into_iter()
                .find(|n| n.name == key || (!key.is_empty() && n.id.starts_with(key)))
                .ok_or(e.into()),
            other => Ok(other?),
        }
    }

    /// `host` and `none` as records (see [`BUILTIN`]): their ids are
    /// stable for a state root (made from its path), their creation time
    /// the default bridge's (what dockerd shows: its first start).
    pub fn builtin_networks(&self) -> Vec<NetworkRecord> {
        let created = self
            .store()
            .network("bridge")
            .map(|n| n.created)
            .unwrap_or_else(|_| chrono::Utc::now());
        BUILTIN
            .iter()
            .map(|(name, driver)| {
                let seed = format!(
                    "berth builtin network\0{}\0{name}",
                    self.paths().root.display()
                );
                NetworkRecord {
                    id: model::Digest::of(seed.as_bytes()).hex().to_string(),
                    name: name.to_string(),
                    driver: driver.to_string(),
                    created,
                    ..NetworkRecord::default()
                }
            })
            .collect()
    }
}
