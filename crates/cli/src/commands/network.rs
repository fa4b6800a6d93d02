//! `network create|ls|inspect|rm|prune|connect|disconnect`.
use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use engine::networks::NetworkCreate;
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
    /// Subnet in CIDR notation.
    #[arg(long)]
    subnet: Option<String>,
    /// Gateway (the bridge's address).
    #[arg(long)]
    gateway: Option<String>,
    /// Sub-range containers get addresses from.
    #[arg(long)]
    ip_range: Option<String>,
    /// No outbound route.
    #[arg(long)]
    internal: bool,
    /// key=value labels.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Driver options (com.docker.network.bridge.name=NAME).
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

/// Run a `network` subcommand.
pub fn dispatch(engine: &Engine, c: NetworkCommand) -> Result<(), Failure> {
    match c {
        NetworkCommand::Create(a) => {
            let rec = engine.network_create(&NetworkCreate {
                name: a.name,
                driver: a.driver,
                subnet: a.subnet,
                gateway: a.gateway,
                ip_range: a.ip_range,
                internal: a.internal,
                labels: kv(&a.labels, "--label")?,
                options: kv(&a.opts, "--opt")?,
            })?;
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
