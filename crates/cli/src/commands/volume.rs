//! `volume create|ls|inspect|rm|prune|export|import`.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use clap::{Args, Subcommand};
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::Failure;

/// `volume` subcommands.
#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes in detail.
    Inspect(InspectArgs),
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes (anonymous ones; all unused with -a).
    Prune(PruneArgs),
    /// Write a volume's content to a tar archive (stdout by default).
    Export(ExportArgs),
    /// Unpack a tar archive into a volume (created if missing).
    Import(ImportArgs),
}

/// `volume create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver (local).
    #[arg(short, long)]
    driver: Option<String>,
    /// key=value labels.
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Driver options: type=, device=, o= (e.g. type=tmpfs,device=tmpfs,o=size=64m).
    #[arg(short = 'o', long = "opt")]
    opts: Vec<String>,
    /// Name (also accepted as the argument).
    #[arg(long = "name")]
    name_flag: Option<String>,
    /// Name (random if not given).
    name: Option<String>,
}

/// `volume ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only names.
    #[arg(short, long)]
    quiet: bool,
    /// Filters: dangling=true|false, label=KEY[=VALUE], name=, driver=.
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// table, json or a Go template.
    #[arg(long)]
    format: Option<String>,
}

/// `volume inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Go template.
    #[arg(short, long)]
    format: Option<String>,
    /// Volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// `volume rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not fail on missing volumes.
    #[arg(short, long)]
    force: bool,
    /// Volumes.
    #[arg(required = true)]
    volumes: Vec<String>,
}

/// `volume prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// All unused volumes, not just anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Filters: label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `volume export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// Volume.
    volume: String,
}

/// `volume import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Volume.
    volume: String,
    /// Tar archive (plain, gzip or zstd); `-` or nothing for stdin.
    source: Option<std::path::PathBuf>,
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

fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// Run a `volume` subcommand.
pub fn dispatch(engine: &Engine, c: VolumeCommand) -> Result<(), Failure> {
    match c {
        VolumeCommand::Create(a) => {
            let name = match (a.name_flag, a.name) {
                (Some(x), Some(y)) if x != y => {
                    return Err(Failure::msg(
                        125,
                        format!("conflicting names: --name {x} and argument {y}"),
                    ))
                }
                (x, y) => x.or(y),
            };
            let rec = engine.volume_create(
                name.as_deref(),
                a.driver.as_deref(),
                kv(&a.labels, "--label")?,
                kv(&a.opts, "--opt")?,
            )?;
            println!("{}", rec.name);
            Ok(())
        }
        VolumeCommand::Ls(a) => {
            let filters =
                engine::filters::Filters::parse(&a.filter, engine::filters::VOLUME_FILTERS)
                    .map_err(super::container::daemon_error)?;
            let list = engine
                .list_volumes(&filters)
                .map_err(super::container::daemon_error)?;
            if a.quiet {
                for v in &list {
                    println!("{}", v.name);
                }
                return Ok(());
            }
            const COLS: &[(&str, &str)] = &[("DRIVER", "Driver"), ("VOLUME NAME", "Name")];
            let rows: Vec<Row> = list
                .iter()
                .map(|v| {
                    let mut r = Row::new();
                    r.insert("Driver", v.driver.clone());
                    r.insert("Name", v.name.clone());
                    r.insert("Scope", "local".to_string());
                    // Counted by `system df -v` only, as dockerd's list.
                    r.insert("Links", "N/A".to_string());
                    r.insert("Size", "N/A".to_string());
                    r.insert(
                        "Mountpoint",
                        engine.volume_mountpoint(&v.name).display().to_string(),
                    );
                    r.insert(
                        "Labels",
                        v.labels
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
                    &format::VOLUMES
                )?
            );
            Ok(())
        }
        VolumeCommand::Inspect(a) => {
            let mut values = Vec::new();
            let mut failed = false;
            for n in &a.volumes {
                match engine.volume(n) {
                    Ok(rec) => values.push(engine::volumes::inspect_volume(
                        &rec,
                        &engine.volume_mountpoint(&rec.name),
                    )),
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
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.volumes {
                match engine.volume_remove(n) {
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
        VolumeCommand::Prune(a) => {
            let mut filters: Vec<(bool, String)> = Vec::new();
            for f in &a.filter {
                match f.split_once('=') {
                    Some(("label", v)) => filters.push((true, v.to_string())),
                    Some(("label!", v)) => filters.push((false, v.to_string())),
                    _ => {
                        return Err(Failure::msg(
                            125,
                            format!(
                                "invalid filter {f:?}: use label=KEY[=VALUE] or label!=KEY[=VALUE]"
                            ),
                        ))
                    }
                }
            }
            if !a.force && std::io::stdin().is_terminal() {
                let what = if a.all {
                    "all local volumes not used by at least one container"
                } else {
                    "anonymous local volumes not used by at least one container"
                };
                eprint!(
                    "WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] "
                );
                let mut answer = String::new();
                let _ = std::io::stdin().read_line(&mut answer);
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Ok(());
                }
            }
            let report = engine.volume_prune(a.all, |v| {
                filters
                    .iter()
                    .all(|(want, l)| label_matches(&v.labels, l) == *want)
            })?;
            if !report.removed.is_empty() {
                println!("Deleted Volumes:");
                for r in &report.removed {
                    println!("{r}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                format::human_size(report.reclaimed)
            );
            Ok(())
        }
        VolumeCommand::Export(a) => {
            match &a.output {
                Some(p) => super::write_file_atomically(p, |f| {
                    let mut w = std::io::BufWriter::new(f);
                    engine.volume_export(&a.volume, &mut w)?;
                    w.flush()
                        .map_err(|e| Failure::msg(125, format!("writing {}: {e}", p.display())))
                })?,
                None => {
                    let out = std::io::stdout();
                    if out.is_terminal() {
                        return Err(Failure::msg(
                            125,
                            "cowardly refusing to write a tar archive to a terminal: redirect stdout or use -o FILE",
                        ));
                    }
                    let mut w = std::io::BufWriter::new(out.lock());
                    engine.volume_export(&a.volume, &mut w)?;
                    w.flush()
                        .map_err(|e| Failure::msg(125, format!("writing: {e}")))?;
                }
            }
            Ok(())
        }
        VolumeCommand::Import(a) => {
            match a.source.as_deref() {
                None => {
                    engine.volume_import(&a.volume, std::io::stdin().lock())?;
                }
                Some(p) if p.as_os_str() == "-" => {
                    engine.volume_import(&a.volume, std::io::stdin().lock())?;
                }
                Some(p) => {
                    let f = std::fs::File::open(p).map_err(|e| {
                        Failure::msg(125, format!("cannot open {}: {e}", p.display()))
                    })?;
                    engine.volume_import(&a.volume, std::io::BufReader::new(f))?;
                }
            }
            Ok(())
        }
    }
}
