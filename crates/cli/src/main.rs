//! The `berth` binary: parses Docker-compatible command lines and calls the
//! engine. No container logic lives here.
#![forbid(unsafe_code)]

mod commands;
mod format;
mod progress;
mod terminal;

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

/// A container engine that does what Docker and Podman do, daemonless.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container engine that does what Docker and Podman do, without a daemon",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Persistent state directory [default: /var/lib/berth; rootless:
    /// $XDG_DATA_HOME/berth, ~/.local/share/berth].
    #[arg(long, global = true, env = "BERTH_ROOT")]
    root: Option<PathBuf>,
    /// Runtime state directory [default: /run/berth; rootless:
    /// $XDG_RUNTIME_DIR/berth, /tmp/berth-run-$UID].
    #[arg(long, global = true, env = "BERTH_RUNROOT")]
    runroot: Option<PathBuf>,
    /// Configuration directory (registries.toml, certs.d/, config.json);
    /// default $XDG_CONFIG_HOME/berth, ~/.config/berth.
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    /// How containers' root filesystems are made: overlay (default) or vfs
    /// (a copy of the image per container, podman's; where overlayfs
    /// cannot be mounted rootless, vfs is chosen by itself).
    #[arg(long, global = true, env = "BERTH_STORAGE_DRIVER")]
    storage_driver: Option<String>,
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
    /// A bad flag or argument (or an image the policy refuses): docker's
    /// CLI refuses those itself, with 125, whatever the command (other
    /// engine errors are 125 for `run` only).
    pub usage: bool,
    /// Printed as it is, without `berth: ` (how docker's CLI words a flag
    /// value its flag parser refuses).
    pub bare: bool,
}

impl Failure {
    /// An engine error (125 unless the engine says otherwise).
    pub fn msg(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: Some(message.into()),
            usage: false,
            bare: false,
        }
    }
    /// A bad flag or argument value (125 for every command).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 125,
            message: Some(message.into()),
            usage: true,
            bare: false,
        }
    }
    /// A flag value docker's CLI refuses itself, in its words: the message,
    /// a period, then where to find help (125).
    pub fn with_help(message: impl std::fmt::Display) -> Failure {
        Failure::usage(format!("{message}.\nSee '{} --help'.", command_path()))
    }
    /// A flag value docker's flag parser refuses, in its words: `invalid
    /// argument "lots" for "-m, --memory" flag: invalid size: 'lots'`, then
    /// where to find help (125).
    pub fn flag_value(value: &str, flag: &str, why: &str) -> Failure {
        Failure {
            code: 125,
            message: Some(format!(
                "invalid argument \"{value}\" for \"{flag}\" flag: {why}\nSee '{} --help'.",
                command_path()
            )),
            usage: true,
            bare: true,
        }
    }
    /// Exit with `code` and print nothing (the container's own status).
    pub fn silent(code: i32) -> Failure {
        Failure {
            code,
            message: None,
            usage: false,
            bare: false,
        }
    }
}

impl From<engine::EngineError> for Failure {
    /// What the engine refuses, docker's daemon refuses: 125 for `run`, 1
    /// for the other commands (see `commands::dispatch`); a command that
    /// cannot be run 126 or 127, a failed build step 1. The one place an
    /// engine failure becomes an exit code.
    fn from(e: engine::EngineError) -> Failure {
        use engine::ErrorKind as K;
        let code = match e.kind() {
            K::CannotInvoke => 126,
            K::CommandNotFound => 127,
            K::BuildFailed => match e {
                engine::EngineError::BuildStep { .. } => 1,
                _ => 125,
            },
            _ => 125,
        };
        let policy = matches!(e, engine::EngineError::Policy { .. });
        let mut f = Failure::msg(code, e.to_string());
        // A policy refusal is 125 for every command (pull, create, build).
        f.usage = policy;
        f
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

/// The words of the command line that name the (sub)command: `berth`,
/// `berth ps`, `berth network ls`.
fn command_path() -> String {
    let mut cmd = Cli::command();
    let mut path = vec!["berth".to_string()];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            if matches!(
                a.as_str(),
                "--root" | "--runroot" | "--config" | "--log-level" | "--storage-driver"
            ) {
                args.next();
            }
            continue;
        }
        let Some(sub) = cmd.find_subcommand(&a).cloned() else {
            break;
        };
        path.push(sub.get_name().to_string());
        cmd = sub;
    }
    path.join(" ")
}

/// A command line clap refused, reported in docker's words and with its exit
/// status (125 for a bad flag, 1 for a missing argument or command).
fn usage_error(e: &clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let path = command_path();
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.first().cloned().unwrap_or_default(),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            let flag = arg.split('=').next().unwrap_or(&arg);
            if flag.starts_with("--") {
                eprintln!("unknown flag: {flag}");
            } else {
                let c = flag.chars().nth(1).unwrap_or('-');
                eprintln!("unknown shorthand flag: '{c}' in {flag}");
            }
            eprintln!("See '{path} --help'.");
            125
        }
        ErrorKind::InvalidSubcommand => {
            let word = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => arg,
            };
            eprintln!("berth: '{word}' is not a berth command.\nSee 'berth --help'");
            1
        }
        ErrorKind::MissingRequiredArgument => {
            let mut cmd = Cli::command();
            for w in path.split(' ').skip(1) {
                if let Some(sub) = cmd.find_subcommand(w).cloned() {
                    cmd = sub;
                }
            }
            let usage = cmd.render_usage().to_string();
            let usage = usage.trim_start_matches("Usage: ").trim();
            // clap names the subcommand alone: the whole path, as docker.
            let usage = match usage.split_once(' ') {
                Some((_, rest)) => format!("{path} {rest}"),
                None => path.clone(),
            };
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            eprintln!(
                "\"{path}\" requires at least 1 argument.\nSee '{path} --help'.\n\nUsage:  {usage}\n\n{}",
                about.trim_end_matches('.')
            );
            1
        }
        _ => {
            let _ = e.print();
            125
        }
    }
}

/// Output into a pipe whose reader went away (`berth ps | head -1`) ends
/// the command quietly, as SIGPIPE ends docker's CLI, instead of a panic
/// message: Rust ignores SIGPIPE, so `println!` panics on EPIPE. Exit 141
/// is what a shell reports for a command SIGPIPE killed. Other panics keep
/// the default report.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// The engine's log lines as podman prints its own (logrus' text form:
/// `WARN[0000] message`, seconds since the command started), the form
/// berth's other warnings take — never colours or module paths.
struct Logrus(std::time::Instant);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Logrus
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "ERRO",
            tracing::Level::WARN => "WARN",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBU",
            tracing::Level::TRACE => "TRAC",
        };
        let since = self.0.elapsed().as_secs();
        write!(w, "{level}[{since:04}] ")?;
        tracing_subscriber::fmt::FormatFields::format_fields(ctx, w.by_ref(), event)?;
        writeln!(w)
    }
}

fn main() {
    quiet_on_broken_pipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => std::process::exit(usage_error(&e)),
    };
    // A plain level (an EnvFilter costs ~0.5 ms to build on every command).
    let level: tracing_subscriber::filter::LevelFilter = cli
        .log_level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(Logrus(std::time::Instant::now()))
        .init();
    // The engine reads the driver from its variable (monitors and `serve`
    // inherit it); still single-threaded here.
    if let Some(d) = &cli.storage_driver {
        // Refused before anything runs, as podman refuses it.
        if let Err(e) = d.parse::<engine::container::copyroot::Driver>() {
            eprintln!("berth: {e}");
            std::process::exit(125);
        }
        std::env::set_var(engine::container::copyroot::ENV, d);
    }
    let rootless = engine::rootless::wanted();
    let paths = engine::Paths {
        root: cli.root.clone().unwrap_or_else(|| match rootless {
            true => engine::rootless::default_root(),
            false => PathBuf::from(engine::DEFAULT_ROOT),
        }),
        runroot: cli.runroot.clone().unwrap_or_else(|| match rootless {
            true => engine::rootless::default_runroot(),
            false => PathBuf::from("/run/berth"),
        }),
        config: cli.config.clone().unwrap_or_else(default_config_dir),
    };
    // An unprivileged user's berth works in its user namespace (podman's
    // rootless mode): joined, or made, before anything else runs (the
    // process is still single-threaded).
    if rootless {
        if let Err(e) = engine::rootless::enter(&paths.root, &paths.runroot) {
            eprintln!("berth: {e}");
            std::process::exit(125);
        }
    }
    match commands::dispatch(paths, cli.command) {
        Ok(()) => std::process::exit(0),
        Err(f) => {
            match f.message {
                Some(m) if f.bare => eprintln!("{m}"),
                Some(m) => eprintln!("berth: {m}"),
                None => {}
            }
            std::process::exit(f.code);
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every command (a short flag used
    /// twice in one command would otherwise panic only when run).
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
