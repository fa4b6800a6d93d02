//! `ps`.

use chrono::Utc;
use clap::Args;
use engine::config::NetworkMode;
use engine::container::Container;
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

use super::daemon_error;

/// `ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default: running only).
    #[arg(short = 'a', long)]
    all: bool,
    /// Only ids.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Show the latest created container.
    #[arg(short = 'l', long)]
    latest: bool,
    /// Show the n last created containers (all states).
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    last: Option<i64>,
    /// Filter (ancestor, before, exited, expose, health, id, is-task,
    /// isolation, label, name, network, publish, since, status, volume).
    #[arg(short = 'f', long)]
    filter: Vec<String>,
    /// Output format: table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Show each container's size: its writable layer, and with its
    /// image (virtual). Also when the format uses .Size, as docker's.
    #[arg(short = 's', long)]
    size: bool,
    /// Add each container's pod (podman's POD ID and PODNAME columns).
    #[arg(short = 'p', long)]
    pod: bool,
}

pub(crate) fn container_row(c: &Container, no_trunc: bool) -> Row {
    let mut r = Row::new();
    let id = if no_trunc {
        c.id().as_str().to_string()
    } else {
        c.id().short().to_string()
    };
    // As the daemon lists it: arguments holding a space in single quotes.
    let mut command = engine::container::summary::command_line(c);
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    r.insert("ID", id);
    r.insert("Image", c.record.image_ref.clone());
    r.insert("Command", format!("\"{command}\""));
    r.insert(
        "CreatedAt",
        c.record
            .created
            .format("%Y-%m-%d %H:%M:%S %z UTC")
            .to_string(),
    );
    r.insert(
        "RunningFor",
        format!(
            "{} ago",
            format::human_duration(Utc::now() - c.record.created)
        ),
    );
    r.insert("Status", engine::container::summary::status_text(c));
    r.insert("State", c.state.status.as_str().to_string());
    r.insert("Ports", engine::ports::display_ports(&c.api_ports()));
    r.insert("Names", c.name().to_string());
    r.insert(
        "Labels",
        c.config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    r.insert(
        "Networks",
        match &c.config.network_mode {
            NetworkMode::None if !c.config.networks.is_empty() => c.config.networks.join(","),
            other => other.docker_name(&c.config.networks),
        },
    );
    // Docker's Mounts: volume names (binds: their source), each cut to 15
    // characters unless --no-trunc; LocalVolumes: how many are volumes.
    let mounts: Vec<String> = c
        .config
        .mounts
        .iter()
        .filter(|m| m.kind != engine::config::MountType::Tmpfs)
        .map(|m| {
            if no_trunc || m.source.chars().count() <= 15 {
                m.source.clone()
            } else {
                m.source.chars().take(14).collect::<String>() + "…"
            }
        })
        .collect();
    r.insert("Mounts", mounts.join(","));
    r.insert(
        "LocalVolumes",
        c.config
            .mounts
            .iter()
            .filter(|m| m.kind == engine::config::MountType::Volume)
            .count()
            .to_string(),
    );
    r
}

/// `ps`.
pub fn ps(engine: &Engine, a: PsArgs) -> Result<(), Failure> {
    let req = engine::container::list::ListRequest {
        all: a.all,
        limit: if a.latest {
            Some(1)
        } else {
            a.last.filter(|&n| n >= 0).map(|n| n as usize)
        },
        filters: engine::filters::Filters::parse(&a.filter, engine::container::list::PS_FILTERS)
            .map_err(daemon_error)?,
    };
    // Untruncated, a container's names include its link names
    // (`app/db,web`), as docker's.
    let link_names = if a.no_trunc {
        engine.link_names()
    } else {
        Default::default()
    };
    // docker's CLI asks for sizes with -s, or when the template reads
    // .Size (a whole row, `{{json .}}`, reads every field).
    let with_size = a.size
        || a.format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.contains("json .}}") || f.contains("{{.}}"));
    let pods: std::collections::BTreeMap<String, (String, String)> = if a.pod {
        engine
            .pods()?
            .into_iter()
            .map(|p| {
                let short = if a.no_trunc {
                    p.id.clone()
                } else {
                    p.short_id().to_string()
                };
                (p.id, (short, p.name))
            })
            .collect()
    } else {
        Default::default()
    };
    let rows: Vec<Row> = engine
        .list_containers(&req)
        .map_err(daemon_error)?
        .iter()
        .map(|c| {
            let mut r = container_row(c, a.no_trunc);
            // An id when the name no longer means its image, short unless
            // --no-trunc (docker's CLI).
            let image = engine.listed_image(c);
            let image = match image.strip_prefix("sha256:") {
                Some(hex) if !a.no_trunc => hex.chars().take(12).collect(),
                _ => image,
            };
            r.insert("Image", image);
            r.insert(
                "Size",
                if with_size {
                    let (rw, root) = engine.container_sizes(c);
                    format!(
                        "{} (virtual {})",
                        format::human_size(rw),
                        format::human_size(root)
                    )
                } else {
                    "0B".to_string()
                },
            );
            if a.pod {
                let (id, name) = pods.get(&c.config.pod).cloned().unwrap_or_default();
                r.insert("Pod", id);
                r.insert("PodName", name);
            }
            if let Some(links) = link_names.get(c.id().as_str()) {
                let mut names: Vec<String> = links
                    .iter()
                    .map(|l| l.trim_start_matches('/').to_string())
                    .collect();
                names.push(c.name().to_string());
                r.insert("Names", names.join(","));
            }
            r
        })
        .collect();
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"]);
        }
        return Ok(());
    }
    const COLS: &[(&str, &str)] = &[
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    const SIZE_COLS: &[(&str, &str)] = &[
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
        ("SIZE", "Size"),
    ];
    let mut cols: Vec<(&str, &str)> = if a.size { SIZE_COLS } else { COLS }.to_vec();
    if a.pod {
        cols.extend([("POD ID", "Pod"), ("PODNAME", "PodName")]);
    }
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), &cols),
            &rows,
            &format::PS
        )?
    );
    Ok(())
}
