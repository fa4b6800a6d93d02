//! `network create|ls|inspect|rm|prune|connect|disconnect`.
use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use engine::networks::{IpamPool, NetworkCreate};
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

/// `network` subcommands.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks in detail.
    Inspect(InspectArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove networks no container uses.
    Prune(PruneArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

/// `network connect`.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Another name for the container on this network.
    #[arg(long = "alias")]
    aliases: Vec<String>,
    /// IPv4 address on this network.
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address on this network.
    #[arg(long)]
    ip6: Option<String>,
    /// Link-local addresses on this network.
    #[arg(long = "link-local-ip")]
    link_local_ips: Vec<String>,
    /// Endpoint driver options.
    #[arg(long = "driver-opt")]
    driver_opts: Vec<String>,
    /// Add a link to another container (`name:alias`): the alias names it
    /// for this container on this network.
    #[arg(long = "link")]
    links: Vec<String>,
    /// Network.
    network: String,
    /// Container.
    container: String,
}

/// `network disconnect`.
#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Also when the network is gone.
    #[arg(short, long)]
    force: bool,
    /// Network.
    network: String,
    /// Container.
    container: String,
}

/// `network create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver (bridge).
    #[arg(short, long)]
    driver: Option<String>,
    /// Subnets in CIDR notation (one IPv4 and one IPv6).
    #[arg(long = "subnet")]
    subnets: Vec<String>,
    /// IPv4 or IPv6 gateway of a subnet.
    #[arg(long = "gateway")]
    gateways: Vec<String>,
    /// Sub-range of a subnet containers get addresses from.
    #[arg(long = "ip-range")]
    ip_ranges: Vec<String>,
    /// Addresses the network must not hand out (name=ip).
    #[arg(long = "aux-address")]
    aux_addresses: Vec<String>,
    /// Enable IPv6 (needs an IPv6 --subnet).
    #[arg(long)]
    ipv6: bool,
    /// IP address management driver (default).
    #[arg(long)]
    ipam_driver: Option<String>,
    /// IPAM driver options.
    #[arg(long = "ipam-opt")]
    ipam_opts: Vec<String>,
    /// Allow manual container attachment.
    #[arg(long)]
    attachable: bool,
    /// Scope (local; swarm scopes need a swarm).
    #[arg(long)]
    scope: Option<String>,
    /// Swarm routing-mesh network (needs a swarm).
    #[arg(long)]
    ingress: bool,
    /// No outbound route.
    #[arg(long)]
    internal: bool,
    /// key=value labels.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Driver options (com.docker.network.bridge.name=NAME, ...enable_icc,
    /// ...enable_ip_masquerade, ...host_binding_ipv4, com.docker.network.driver.mtu).
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// Name.
    name: String,
}

/// `network ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only ids.
    #[arg(short, long)]
    quiet: bool,
    /// Full ids.
    #[arg(long)]
    no_trunc: bool,
    /// Filters: name=, id=, label=, driver=.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
}

/// `network inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Go template.
    #[arg(short, long)]
    format: Option<String>,
    /// Networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `network rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Ignore missing networks.
    #[arg(short, long)]
    force: bool,
    /// Networks.
    #[arg(required = true)]
    networks: Vec<String>,
}

/// `network prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not ask.
    #[arg(short, long)]
    force: bool,
}

fn kv(items: &[String], what: &str) -> Result<BTreeMap<String, String>, Failure> {
    items
        .iter()
        .map(|i| {
            i.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    Failure::msg(125, format!("invalid {what} {i:?}: expected key=value"))
                })
        })
        .collect()
}

/// The docker CLI's `consolidateIpam`: each `--gateway`, `--ip-range` and
/// `--aux-address` goes with the `--subnet` that contains it, with its
/// messages.
fn pools(a: &CreateArgs) -> Result<Vec<IpamPool>, Failure> {
    let fail = |m: String| Failure::msg(1, m);
    if a.subnets.len() < a.ip_ranges.len() || a.subnets.len() < a.gateways.len() {
        return Err(fail(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let net = |s: &str| -> Result<(std::net::IpAddr, u8), Failure> {
        let (ip, p) = s
            .split_once('/')
            .and_then(|(ip, p)| Some((ip.parse().ok()?, p.parse().ok()?)))
            .ok_or_else(|| fail(format!("invalid CIDR address: {s}")))?;
        Ok((ip, p))
    };
    let contains = |(n, p): (std::net::IpAddr, u8), ip: std::net::IpAddr| match (n, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(ip)) => {
            let m = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
            u32::from(n) & m == u32::from(ip) & m
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(ip)) => {
            let m = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
            u128::from(n) & m == u128::from(ip) & m
        }
        _ => false,
    };
    let mut out: Vec<IpamPool> = Vec::new();
    let mut nets = Vec::new();
    for s in &a.subnets {
        let n = net(s)?;
        for (o, other) in nets.iter().zip(&out) {
            if contains(*o, n.0) || contains(n, o.0) {
                return Err(fail(format!("subnet {} overlaps with {}", other.subnet, s)));
            }
        }
        nets.push(n);
        out.push(IpamPool {
            subnet: s.clone(),
            ..IpamPool::default()
        });
    }
    for r in &a.ip_ranges {
        let rn = net(r)?;
        let i = nets
            .iter()
            .position(|n| contains(*n, rn.0))
            .ok_or_else(|| fail(format!("no matching subnet for range {r}")))?;
        if out[i].ip_range.is_some() {
            return Err(fail(format!(
                "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                out[i].ip_range.as_deref().unwrap_or_default(),
                out[i].subnet
            )));
        }
        out[i].ip_range = Some(r.clone());
    }
    for g in &a.gateways {
        let ip: std::net::IpAddr = g
            .parse()
            .map_err(|_| fail(format!("no matching subnet for gateway {g}")))?;
        let i = nets
            .iter()
            .position(|n| contains(*n, ip))
            .ok_or_else(|| fail(format!("no matching subnet for gateway {g}")))?;
        if out[i].gateway.is_some() {
            return Err(fail(format!(
                "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                out[i].gateway.as_deref().unwrap_or_default(),
                out[i].subnet
            )));
        }
        out[i].gateway = Some(g.clone());
    }
    for x in &a.aux_addresses {
        let (k, v) = x.split_once('=').unwrap_or(("", ""));
        let i = v
            .parse::<std::net::IpAddr>()
            .ok()
            .and_then(|ip| nets.iter().position(|n| contains(*n, ip)))
            .ok_or_else(|| fail(format!("no matching subnet for aux-address {v}")))?;
        out[i].aux_addresses.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Run a `network` subcommand.
pub fn dispatch(engine: &Engine, c: NetworkCommand) -> Result<(), Failure> {
    match c {
        NetworkCommand::Create(a) => {
            let pools = pools(&a)?;
            let rec = engine
                .network_create(&NetworkCreate {
                    pools,
                    internal: a.internal,
                    labels: kv(&a.labels, "--label")?,
                    options: kv(&a.opts, "--opt")?,
                    enable_ipv6: a.ipv6,
                    ipam_driver: a.ipam_driver,
                    ipam_options: Some(kv(&a.ipam_opts, "--ipam-opt")?),
                    attachable: a.attachable,
                    scope: a.scope,
                    ingress: a.ingress,
                    name: a.name,
                    driver: a.driver,
                })
                .map_err(super::container::daemon_error)?;
            println!("{}", rec.id);
            Ok(())
        }
        NetworkCommand::Ls(a) => {
            // The default network is always listed, as Docker's.
            engine.default_network()?;
            let filters =
                engine::filters::Filters::parse(&a.filter, engine::filters::NETWORK_FILTERS)
                    .map_err(super::container::daemon_error)?;
            let list = engine
                .list_networks(&filters)
                .map_err(super::container::daemon_error)?;
            if a.quiet {
                for n in &list {
                    println!("{}", if a.no_trunc { &n.id[..] } else { &n.id[..12] });
                }
                return Ok(());
            }
            const COLS: &[(&str, &str)] = &[
                ("NETWORK ID", "ID"),
                ("NAME", "Name"),
                ("DRIVER", "Driver"),
                ("SCOPE", "Scope"),
            ];
            let rows: Vec<Row> = list
                .iter()
                .map(|n| {
                    let mut r = Row::new();
                    r.insert(
                        "ID",
                        if a.no_trunc {
                            n.id.clone()
                        } else {
                            n.id[..12].to_string()
                        },
                    );
                    r.insert("Name", n.name.clone());
                    r.insert("Driver", n.driver.clone());
                    r.insert("Scope", "local".to_string());
                    r.insert("Internal", n.internal.to_string());
                    r.insert("Created", n.created.to_rfc3339());
                    r.insert(
                        "Labels",
                        n.labels
                            .iter()
                            .map(|(k, x)| format!("{k}={x}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    r
                })
                .collect();
            print!(
                "{}",
                format::print(
                    &Format::parse(a.format.as_deref(), COLS),
                    &rows,
                    &format::NETWORKS
                )?
            );
            Ok(())
        }
        NetworkCommand::Inspect(a) => {
            let mut values = Vec::new();
            let mut failed = false;
            for n in &a.networks {
                let found = if n == "bridge" {
                    engine.default_network()
                } else {
                    engine.network(n)
                };
                match found {
                    Ok(rec) => values.push(engine.inspect_network(&rec)),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = true;
                    }
                }
            }
            super::container::print_inspect(&values, a.format.as_deref())?;
            if failed {
                Err(Failure::silent(1))
            } else {
                Ok(())
            }
        }
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.networks {
                match engine.network_remove(n) {
                    Ok(_) => println!("{n}"),
                    Err(e) if a.force && e.is_not_found() => {}
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                Err(Failure::silent(1))
            } else {
                Ok(())
            }
        }
        NetworkCommand::Connect(a) => {
            engine.network_connect(
                &a.network,
                &a.container,
                &engine::networks::Endpoint {
                    aliases: a.aliases.clone(),
                    ip: a.ip.clone(),
                    mac: None,
                    links: a.links.clone(),
                    extra: engine::config::EndpointExtra {
                        ip6: a.ip6.clone(),
                        link_local_ips: a.link_local_ips.clone(),
                        driver_opts: (!a.driver_opts.is_empty())
                            .then(|| kv(&a.driver_opts, "--driver-opt"))
                            .transpose()?,
                    },
                },
            )?;
            Ok(())
        }
        NetworkCommand::Disconnect(a) => {
            engine.network_disconnect(&a.network, &a.container, a.force)?;
            Ok(())
        }
        NetworkCommand::Prune(_) => {
            let removed = engine.network_prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for r in removed {
                    println!("{r}");
                }
            }
            Ok(())
        }
    }
}
