//! `berth scan IMAGE` (an image's packages against the local OSV database)
//! and `berth scan db update|import|info`. Exit codes: findings left after
//! the filters exit with `--exit-code` (0 by default, as trivy); a scan
//! that cannot be made (no database, a damaged or too old one, no such
//! image) exits 1, as trivy's fatal errors and docker's commands other
//! than `run`.
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use engine::scan::{Filter, IgnoreList, ReportFormat, ScanOptions, Severity};
use engine::Engine;

use crate::Failure;

/// `scan`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScanArgs {
    /// The vulnerability database.
    #[command(subcommand)]
    db: Option<ScanCommand>,
    /// Only these severities (comma-separated: UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL).
    #[arg(long, value_delimiter = ',', value_parser = parse_severity)]
    severity: Vec<Severity>,
    /// Exit with this code when findings remain after the filters.
    #[arg(long, default_value_t = 0)]
    exit_code: i32,
    /// Output format: table, json or sarif.
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: ReportFormat,
    /// Leave out findings that have no fixed version yet.
    #[arg(long)]
    ignore_unfixed: bool,
    /// A file of ids to leave out (one per line, # comments, `ID exp:YYYY-MM-DD`); default ./.trivyignore when it exists.
    #[arg(long, value_name = "FILE")]
    ignorefile: Option<PathBuf>,
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Warn when the database is older than DAYS (default 7, or berth.toml's [scan] db_warn_days).
    #[arg(long, value_name = "DAYS")]
    db_warn_age: Option<i64>,
    /// Refuse a database older than DAYS, 0 for any age (default 30, or [scan] db_max_days).
    #[arg(long, value_name = "DAYS")]
    db_max_age: Option<i64>,
    /// Image.
    image: Option<String>,
}

/// `scan db`.
#[derive(Subcommand, Debug)]
pub enum ScanCommand {
    /// Manage the local vulnerability database.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `scan db …`.
#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Download OSV archives (osv.dev's, or --from a mirror or file) and import them.
    Update {
        /// A mirror's base URL (<URL>/<Ecosystem>/all.zip), one .zip URL, or a local archive or directory.
        #[arg(long, value_name = "URL|FILE")]
        from: Option<String>,
        /// Ecosystems to download (default: Debian,Alpine,PyPI,npm,Go,crates.io).
        #[arg(long, value_delimiter = ',')]
        ecosystem: Vec<String>,
    },
    /// Import OSV archives (zip), directories of OSV JSON files or single files.
    Import {
        /// Files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what the database holds and how old it is.
    Info {
        /// Output format: table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn parse_format(s: &str) -> Result<ReportFormat, String> {
    s.parse()
}

fn write_out(output: Option<&PathBuf>, text: &str) -> Result<(), Failure> {
    match output {
        Some(path) => super::write_file_atomically(path, |mut f| {
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| Failure::msg(125, format!("cannot write {}: {e}", path.display())))
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Failure::msg(125, format!("writing the report: {e}")))
        }
    }
}

/// `scan …`.
pub fn scan(engine: &Engine, a: ScanArgs) -> Result<(), Failure> {
    match a.db {
        Some(ScanCommand::Db(c)) => db(engine, c),
        None => image(engine, a),
    }
}

fn db(engine: &Engine, c: DbCommand) -> Result<(), Failure> {
    let summary = match c {
        DbCommand::Update { from, ecosystem } => {
            engine.scan_db_update(from.as_deref(), &ecosystem)?
        }
        DbCommand::Import { files } => engine.scan_db_import(&files)?,
        DbCommand::Info { format } => {
            let info = engine.scan_db_info()?;
            let text = match format.as_str() {
                "json" => serde_json::to_string_pretty(&info).unwrap_or_default() + "\n",
                "table" => {
                    let mut s = format!(
                        "Path:            {}\nImported:        {}\nNewest change:   {}\nAdvisories:      {}\nWithdrawn:       {}\n",
                        info.path.display(),
                        info.imported_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        info.newest_modified
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_else(|| "-".into()),
                        info.advisories,
                        info.withdrawn
                    );
                    s.push_str("Ecosystems:\n");
                    for (e, n) in &info.ecosystems {
                        s.push_str(&format!("  {e:<24} {n}\n"));
                    }
                    s
                }
                other => {
                    return Err(Failure::msg(
                        125,
                        format!("unknown format {other:?}: use table or json"),
                    ))
                }
            };
            return write_out(None, &text);
        }
    };
    let info = engine.scan_db_info()?;
    println!(
        "imported {} records ({} new or newer, {} withdrawn, {} older than what the database had); the database holds {} advisories, newest change {}",
        summary.read,
        summary.stored,
        summary.withdrawn,
        summary.older,
        info.advisories,
        info.newest_modified
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "-".into())
    );
    Ok(())
}

fn image(engine: &Engine, a: ScanArgs) -> Result<(), Failure> {
    let Some(name) = a.image.as_deref() else {
        return Err(Failure::msg(
            125,
            "\"berth scan\" requires an image (berth scan IMAGE) or a db command (berth scan db update|import|info)",
        ));
    };
    let ignore_path = a.ignorefile.clone().or_else(|| {
        let p = PathBuf::from(".trivyignore");
        p.is_file().then_some(p)
    });
    let ignore = match &ignore_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                Failure::msg(
                    125,
                    format!("cannot read the ignore file {}: {e}", p.display()),
                )
            })?;
            IgnoreList::parse(&text)
                .map_err(|e| Failure::msg(125, format!("ignore file {}: {e}", p.display())))?
        }
        None => IgnoreList::default(),
    };
    let opts = ScanOptions {
        filter: Filter {
            severities: a.severity.clone(),
            ignore_unfixed: a.ignore_unfixed,
            ignore,
        },
        warn_days: a.db_warn_age,
        max_days: a.db_max_age,
    };
    let out = engine.scan(name, &opts)?;
    eprintln!("berth: scan: {}", out.db_line);
    if let Some(w) = &out.stale_warning {
        eprintln!("berth: scan: warning: {w}");
    }
    for n in out.sbom_notes.iter().chain(&out.report.notes) {
        eprintln!("berth: scan: {n}");
    }
    let r = &out.report;
    let text = match a.format {
        ReportFormat::Table => {
            let mut s = String::new();
            if !r.findings.is_empty() {
                s.push_str(&r.table());
                s.push('\n');
            }
            s.push_str(&r.total_line());
            s.push('\n');
            s
        }
        ReportFormat::Json => serde_json::to_string_pretty(&r.json()).unwrap_or_default() + "\n",
        ReportFormat::Sarif => serde_json::to_string_pretty(&r.sarif()).unwrap_or_default() + "\n",
    };
    write_out(a.output.as_ref(), &text)?;
    if !r.findings.is_empty() && a.exit_code != 0 {
        return Err(Failure::silent(a.exit_code));
    }
    Ok(())
}
