//! The `berth` binary: parses Docker-compatible command lines and calls the
//! engine. No container logic lives here.
#![forbid(unsafe_code)]

mod commands;
mod format;
mod progress;
mod terminal;

use std::path::PathBuf;

use clap::Parser;

/// A container engine that does what Docker and Podman do, daemonless.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container engine that does what Docker and Podman do, without a daemon",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Persistent state directory.
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = engine::DEFAULT_ROOT
    )]
    root: PathBuf,
    /// Runtime state directory.
    #[arg(
        long,
        global = true,
        env = "BERTH_RUNROOT",
        default_value = "/run/berth"
    )]
    runroot: PathBuf,
    /// Configuration directory (registries.toml, certs.d/, config.json);
    /// default ~/.config/berth.
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "BERTH_LOG", default_value = "warn")]
    log_level: String,
    #[command(subcommand)]
    command: commands::Command,
}

/// A failure with the exit code Docker would give it.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: i32,
    /// The message (printed after `berth: `), if any.
    pub message: Option<String>,
}

impl Failure {
    /// An engine error (125 unless the engine says otherwise).
    pub fn msg(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: Some(message.into()),
        }
    }
    /// Exit with `code` and print nothing (the container's own status).
    pub fn silent(code: i32) -> Failure {
        Failure {
            code,
            message: None,
        }
    }
}

impl From<engine::EngineError> for Failure {
    fn from(e: engine::EngineError) -> Failure {
        Failure::msg(e.exit_code(), e.to_string())
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Failure {
        Failure::msg(125, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::msg(125, e.to_string())
    }
}

/// `$XDG_CONFIG_HOME/berth`, `~/.config/berth`, else `/etc/berth`.
fn default_config_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".config/berth"),
        None => PathBuf::from("/etc/berth"),
    }
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                // docker: `"docker run" requires at least 1 argument.`, status 1.
                clap::error::ErrorKind::MissingRequiredArgument => 1,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // A plain level (an EnvFilter costs ~0.5 ms to build on every command).
    let level: tracing_subscriber::filter::LevelFilter = cli
        .log_level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let paths = engine::Paths {
        root: cli.root.clone(),
        runroot: cli.runroot.clone(),
        config: cli.config.clone().unwrap_or_else(default_config_dir),
    };
    match commands::dispatch(paths, cli.command) {
        Ok(()) => std::process::exit(0),
        Err(f) => {
            if let Some(m) = f.message {
                eprintln!("berth: {m}");
            }
            std::process::exit(f.code);
        }
    }
}
