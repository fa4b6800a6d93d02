//! `berth compose`: docker compose's verbs over the `compose` crate (which
//! talks to the engine). This file parses flags, prints progress and logs
//! as docker compose does, and maps failures to its exit codes (1).
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Subcommand};
use compose::model::Project;
use engine::Engine;

use crate::format::{self, Format, Row};
use crate::terminal::Interrupts;
use crate::Failure;

/// `compose` and its global flags.
#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Compose configuration files (several: merged in order).
    #[arg(short = 'f', long = "file")]
    file: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Alternate working directory (default: the first file's directory).
    #[arg(long = "project-directory")]
    project_directory: Option<PathBuf>,
    /// Alternate environment files (default: .env in the project directory).
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Profiles to enable.
    #[arg(long = "profile")]
    profile: Vec<String>,
    /// Control ANSI output (never, always, auto).
    #[arg(long, default_value = "auto")]
    ansi: String,
    /// Progress output (auto, tty, plain, quiet).
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Execute command in dry run mode (up, create and down).
    #[arg(long = "dry-run")]
    dry_run: bool,
    #[command(subcommand)]
    command: ComposeCommand,
}

/// `compose` subcommands.
#[derive(Subcommand, Debug)]
pub enum ComposeCommand {
    /// Create and start containers.
    Up(UpArgs),
    /// Create containers without starting them.
    Create(UpArgs),
    /// Stop and remove containers, networks (and volumes with -v).
    Down(DownArgs),
    /// List containers.
    Ps(PsArgs),
    /// View output from containers.
    Logs(LogsArgs),
    /// Parse, resolve and render the compose file in canonical format.
    Config(ConfigArgs),
    /// Start services.
    Start(ServicesArgs),
    /// Stop services.
    Stop(StopArgs),
    /// Restart services.
    Restart(StopArgs),
    /// Force stop services.
    Kill(KillArgs),
    /// Remove stopped service containers.
    Rm(RmArgs),
    /// Pause services.
    Pause(ServicesArgs),
    /// Unpause services.
    Unpause(ServicesArgs),
    /// List running compose projects.
    Ls(LsArgs),
    /// Build or rebuild services.
    Build(ServicesArgs),
    /// Pull service images.
    Pull(ServicesArgs),
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Run a one-off command on a service.
    Run(RunArgs),
    /// Print the public port for a port binding.
    Port(PortArgs),
    /// Display the running processes.
    Top(ServicesArgs),
    /// List images used by the created containers.
    Images(ImagesArgs),
    /// Block until the first service container stops.
    Wait(WaitArgs),
    /// Receive real time events from containers.
    Events(EventsArgs),
    /// Copy files/folders between a service container and the local filesystem.
    Cp(CpArgs),
    /// Push service images.
    Push(PushArgs),
    /// Watch the build context and sync, restart or rebuild services on changes.
    Watch(WatchArgs),
    /// Scale services (SERVICE=REPLICAS).
    Scale(ScaleArgs),
    /// Attach local standard input, output, and error streams to a service's running container.
    Attach(AttachArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(StatsArgs),
    /// Create a new image from a service container's changes.
    Commit(CommitArgs),
    /// Export a service container's filesystem as a tar archive.
    Export(ExportArgs),
    /// Show the compose version.
    Version(VersionArgs),
}

/// `up` and `create`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// Detached mode: run containers in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Build images before starting containers.
    #[arg(long)]
    build: bool,
    /// Don't build an image, even if it's missing.
    #[arg(long = "no-build")]
    no_build: bool,
    /// Pull image before running (always, missing, never).
    #[arg(long)]
    pull: Option<String>,
    /// Recreate containers even if their configuration hasn't changed.
    #[arg(long = "force-recreate")]
    force_recreate: bool,
    /// If containers already exist, don't recreate them.
    #[arg(long = "no-recreate")]
    no_recreate: bool,
    /// Don't start linked services.
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Don't start the services after creating them.
    #[arg(long = "no-start")]
    no_start: bool,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Scale SERVICE to NUM instances (SERVICE=NUM).
    #[arg(long)]
    scale: Vec<String>,
    /// Wait for services to be running|healthy. Implies detached mode.
    #[arg(long)]
    wait: bool,
    /// Maximum duration to wait for the project to be running|healthy (seconds).
    #[arg(long = "wait-timeout")]
    wait_timeout: Option<u64>,
    /// Stops all containers if any container was stopped.
    #[arg(long = "abort-on-container-exit")]
    abort_on_container_exit: bool,
    /// Return the exit code of the selected service container.
    #[arg(long = "exit-code-from")]
    exit_code_from: Option<String>,
    /// Use this timeout in seconds for container shutdown.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<i64>,
    /// Produce monochrome output.
    #[arg(long = "no-color")]
    no_color: bool,
    /// Don't print a prefix in logs.
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
    /// Services.
    services: Vec<String>,
}

/// `down`.
#[derive(Args, Debug)]
pub struct DownArgs {
    /// Remove named volumes declared in the volumes section and anonymous volumes.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Remove images used by services ("local": only those without an image name, "all").
    #[arg(long)]
    rmi: Option<String>,
    /// Specify a shutdown timeout in seconds.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<i64>,
}

/// `ps`.
#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all stopped containers too.
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display services.
    #[arg(long)]
    services: bool,
    /// Format output (table, json, or a Go template).
    #[arg(long)]
    format: Option<String>,
    /// Filter services by status (running, exited, ...).
    #[arg(long)]
    status: Vec<String>,
    /// Don't truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Services.
    names: Vec<String>,
}

/// `logs`.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Number of lines to show from the end of the logs for each container.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Produce monochrome output.
    #[arg(long = "no-color")]
    no_color: bool,
    /// Don't print a prefix in logs.
    #[arg(long = "no-log-prefix")]
    no_log_prefix: bool,
    /// Show logs since timestamp (RFC 3339) or relative (e.g. 42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp (RFC 3339) or relative (e.g. 42m).
    #[arg(long)]
    until: Option<String>,
    /// Services.
    services: Vec<String>,
}

/// `config`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Print the service names, one per line.
    #[arg(long)]
    services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    networks: bool,
    /// Print the profile names, one per line.
    #[arg(long)]
    profiles: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    images: bool,
    /// Print the service config hash, one per line ("*" for all).
    #[arg(long)]
    hash: Option<String>,
    /// Only validate the configuration, don't print anything.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output (yaml or json).
    #[arg(long, default_value = "yaml")]
    format: String,
    /// Save to file (default: stdout).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
}

/// Verbs that take services.
#[derive(Args, Debug)]
pub struct ServicesArgs {
    /// Services.
    services: Vec<String>,
}

/// `stop` and `restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Specify a shutdown timeout in seconds.
    #[arg(short = 't', long = "timeout")]
    timeout: Option<i64>,
    /// Services.
    services: Vec<String>,
}

/// `kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// SIGNAL to send to the container.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    signal: String,
    /// Remove containers for services not defined in the Compose file.
    #[arg(long = "remove-orphans")]
    remove_orphans: bool,
    /// Services.
    services: Vec<String>,
}

/// `rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    stop: bool,
    /// Remove any anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Services.
    services: Vec<String>,
}

/// `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// Show all stopped Compose projects.
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display project names.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output (table or json).
    #[arg(long, default_value = "table")]
    format: String,
}

/// `exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Disable pseudo-TTY allocation.
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Run the command as this user.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Path to workdir directory for this command.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Service.
    service: String,
    /// Command and arguments.
    #[arg(required = true, allow_hyphen_values = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print its name.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Add or override a label.
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Run as specified username or uid.
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Override the entrypoint of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Don't start linked services.
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// Run command with the service's ports enabled and mapped to the host.
    #[arg(long = "service-ports")]
    service_ports: bool,
    /// Use the service's network aliases in the network(s) the container connects to.
    #[arg(long = "use-aliases")]
    use_aliases: bool,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Disable pseudo-TTY allocation (default: auto-detected).
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open even if not attached (default true).
    #[arg(short = 'i', long, default_value_t = true)]
    interactive: bool,
    /// Build image before starting container.
    #[arg(long)]
    build: bool,
    /// Service.
    service: String,
    /// Command and arguments.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    command: Vec<String>,
}

/// `port`.
#[derive(Args, Debug)]
pub struct PortArgs {
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Service.
    service: String,
    /// Private port.
    private_port: u16,
}

/// `images`.
#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Only display IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Format the output (table or json).
    #[arg(long, default_value = "table")]
    format: String,
    /// Services.
    services: Vec<String>,
}

/// `wait`.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Drops the project when the first container stops.
    #[arg(long = "down-project")]
    down_project: bool,
    /// Services.
    #[arg(required = true)]
    services: Vec<String>,
}

/// `events`.
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Output events as a stream of json objects.
    #[arg(long)]
    json: bool,
    /// Services.
    services: Vec<String>,
}

/// `cp`.
#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long = "follow-link")]
    follow_link: bool,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// SERVICE:SRC_PATH or a local path.
    source: String,
    /// SERVICE:DEST_PATH or a local path.
    destination: String,
}

/// `push`.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push what it can and ignore images with push failures.
    #[arg(long = "ignore-push-failures")]
    ignore_push_failures: bool,
    /// Services.
    services: Vec<String>,
}

/// `attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    /// Proxy all received signals to the process.
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set)]
    sig_proxy: bool,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Service.
    service: String,
}

/// `stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Do not truncate output.
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Format output (table, json or a Go template).
    #[arg(long)]
    format: Option<String>,
    /// Service.
    service: Option<String>,
}

/// `commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short = 'c', long = "change")]
    change: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Author.
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Pause container during commit.
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Service.
    service: String,
    /// Repository[:tag].
    reference: Option<String>,
}

/// `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
    /// Index of the container if the service has multiple replicas.
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Service.
    service: String,
}

/// `scale`.
#[derive(Args, Debug)]
pub struct ScaleArgs {
    /// Don't start linked services.
    #[arg(long = "no-deps")]
    no_deps: bool,
    /// SERVICE=REPLICAS.
    #[arg(required = true)]
    scale: Vec<String>,
}

/// `watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Do not build & start services before watching.
    #[arg(long = "no-up")]
    no_up: bool,
    /// Hide build output.
    #[arg(long)]
    quiet: bool,
    /// Services.
    services: Vec<String>,
}

/// `version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Shows only the version number.
    #[arg(long)]
    short: bool,
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::msg(1, e.to_string())
}

impl From<compose::Error> for Failure {
    fn from(e: compose::Error) -> Failure {
        failed(e)
    }
}

/// `--dry-run` was given: progress lines say so.
static DRY_RUN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--progress quiet`: no progress lines (warnings still shown).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// docker compose's plain progress lines, on stderr.
fn report(kind: &str, name: &str, status: &str) {
    if QUIET.load(std::sync::atomic::Ordering::Relaxed) && kind != "Warning" {
        return;
    }
    if DRY_RUN.load(std::sync::atomic::Ordering::Relaxed) && kind != "Warning" {
        eprintln!(" DRY-RUN MODE -  {kind} {name}  {status}");
    } else if kind == "Warning" {
        eprintln!("WARN[0000] {status}");
    } else if kind == "Watch" {
        eprintln!("{status}");
    } else {
        eprintln!(" {kind} {name}  {status}");
    }
}

fn load_options(g: &ComposeArgs) -> Result<compose::loader::LoadOptions, Failure> {
    Ok(compose::loader::LoadOptions {
        files: g.file.clone(),
        project_name: g.project_name.clone(),
        project_directory: g.project_directory.clone(),
        env_files: g.env_file.clone(),
        profiles: g.profile.clone(),
        environment: std::env::vars().collect(),
        working_dir: std::env::current_dir()?,
    })
}

/// Read the project; services named on the command line are enabled even
/// when their profile is not.
fn load(g: &ComposeArgs, named: &[String]) -> Result<Project, Failure> {
    let mut p = compose::loader::load(&load_options(g)?).map_err(failed)?;
    for w in &p.warnings {
        eprintln!("WARN[0000] {w}");
    }
    for n in named {
        if let Some(s) = p.disabled.remove(n) {
            p.services.insert(n.clone(), s);
        }
    }
    Ok(p)
}

/// The project's name when there may be no file (`down -p NAME`, `ps -p`).
fn load_or_name(g: &ComposeArgs) -> Result<(String, Option<Project>), Failure> {
    match load(g, &[]) {
        Ok(p) => Ok((p.name.clone(), Some(p))),
        Err(e) => match (&g.project_name, g.file.is_empty()) {
            (Some(n), true) => Ok((n.clone(), None)),
            _ => Err(e),
        },
    }
}

/// Run a `compose` subcommand.
pub fn compose(engine: &Engine, g: ComposeArgs) -> Result<(), Failure> {
    match g.progress.as_str() {
        "quiet" => QUIET.store(true, std::sync::atomic::Ordering::Relaxed),
        "auto" | "tty" | "plain" | "json" => {}
        other => {
            return Err(Failure::usage(format!(
                "unsupported --progress value {other:?}: use auto, tty, plain, json or quiet"
            )))
        }
    }
    if g.dry_run {
        DRY_RUN.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    match &g.command {
        ComposeCommand::Up(a) => up(engine, &g, a, false),
        ComposeCommand::Create(a) => up(engine, &g, a, true),
        ComposeCommand::Down(a) => {
            let (name, project) = load_or_name(&g)?;
            compose::ops::down(
                engine,
                &name,
                project.as_ref(),
                &compose::ops::DownOptions {
                    volumes: a.volumes,
                    remove_orphans: a.remove_orphans,
                    timeout: a.timeout,
                    rmi: a.rmi.clone(),
                    dry_run: g.dry_run,
                },
                &report,
            )?;
            Ok(())
        }
        ComposeCommand::Ps(a) => ps(engine, &g, a),
        ComposeCommand::Logs(a) => logs(engine, &g, a),
        ComposeCommand::Config(a) => config(&g, a),
        ComposeCommand::Start(a) => act(engine, &g, &a.services, compose::ops::Action::Start, None),
        ComposeCommand::Stop(a) => act(
            engine,
            &g,
            &a.services,
            compose::ops::Action::Stop,
            a.timeout,
        ),
        ComposeCommand::Restart(a) => act(
            engine,
            &g,
            &a.services,
            compose::ops::Action::Restart,
            a.timeout,
        ),
        ComposeCommand::Pause(a) => act(engine, &g, &a.services, compose::ops::Action::Pause, None),
        ComposeCommand::Unpause(a) => {
            act(engine, &g, &a.services, compose::ops::Action::Unpause, None)
        }
        ComposeCommand::Kill(a) => {
            let sig = a
                .signal
                .parse::<model::Signal>()
                .map_err(|_| Failure::usage(format!("invalid signal {:?}", a.signal)))?;
            act(
                engine,
                &g,
                &a.services,
                compose::ops::Action::Kill(sig),
                None,
            )
        }
        ComposeCommand::Rm(a) if g.dry_run => {
            let p = load(&g, &a.services)?;
            let members = compose::project::members(engine, &p.name)?;
            for m in compose::ops::stop_order(Some(&p), &members, &a.services) {
                if !m.container.is_running() || a.stop {
                    report("Container", m.container.name(), "Removed");
                }
            }
            Ok(())
        }
        ComposeCommand::Rm(a) => {
            let p = load(&g, &a.services)?;
            let removed = compose::ops::rm(engine, &p, &a.services, a.stop, a.volumes, &report)?;
            if removed.is_empty() {
                eprintln!("No stopped containers");
            }
            Ok(())
        }
        ComposeCommand::Ls(a) => ls(engine, a),
        ComposeCommand::Build(a) => {
            let p = load(&g, &a.services)?;
            for name in compose::project::selection(&p, &a.services, true)? {
                let s = &p.services[&name];
                if s.build.is_none() {
                    continue;
                }
                if g.dry_run {
                    dry_build(&p, s)?;
                    continue;
                }
                compose::up::build_service(engine, &p, s, &mut std::io::stderr(), &report)?;
            }
            Ok(())
        }
        ComposeCommand::Pull(a) => {
            let p = load(&g, &a.services)?;
            for name in compose::project::selection(&p, &a.services, true)? {
                let s = &p.services[&name];
                let Some(image) = &s.image else { continue };
                if s.build.is_some() && engine.image_id(image).is_none() {
                    // docker compose leaves images it can build to `build`.
                    continue;
                }
                if g.dry_run {
                    image
                        .parse::<model::Reference>()
                        .map_err(|e| failed(format!("service {name:?}: image {image:?}: {e}")))?;
                } else {
                    report("Image", image, "Pulling");
                    engine.ensure_image(image, true).map_err(failed)?;
                }
                report("Image", image, "Pulled");
            }
            Ok(())
        }
        ComposeCommand::Exec(a) => exec(engine, &g, a),
        ComposeCommand::Run(a) => run(engine, &g, a),
        ComposeCommand::Port(a) => port(engine, &g, a),
        ComposeCommand::Top(a) => top(engine, &g, a),
        ComposeCommand::Images(a) => images(engine, &g, a),
        ComposeCommand::Wait(a) => wait(engine, &g, a),
        ComposeCommand::Events(a) => events(engine, &g, a),
        ComposeCommand::Cp(a) => cp(engine, &g, a),
        ComposeCommand::Push(a) => push(engine, &g, a),
        ComposeCommand::Watch(a) => watch(engine, &g, a),
        ComposeCommand::Attach(a) => {
            let p = load(&g, std::slice::from_ref(&a.service))?;
            let m = member(engine, &p, &a.service, a.index)?;
            super::container::attach(
                engine,
                super::container::AttachArgs {
                    no_stdin: a.no_stdin,
                    sig_proxy: a.sig_proxy,
                    container: m.container.name().to_string(),
                },
            )
        }
        ComposeCommand::Stats(a) => {
            let (name, _) = load_or_name(&g)?;
            let containers: Vec<String> = compose::project::members(engine, &name)?
                .into_iter()
                .filter(|m| a.service.as_ref().is_none_or(|s| *s == m.service))
                .filter(|m| a.all || m.container.is_running())
                .map(|m| m.container.name().to_string())
                .collect();
            if containers.is_empty() {
                return Ok(());
            }
            super::system::stats(
                engine,
                super::system::StatsArgs {
                    all: a.all,
                    no_stream: a.no_stream,
                    no_trunc: a.no_trunc,
                    format: a.format.clone(),
                    containers,
                },
            )
        }
        ComposeCommand::Commit(a) => {
            let p = load(&g, std::slice::from_ref(&a.service))?;
            let m = member(engine, &p, &a.service, a.index)?;
            super::fs::commit(
                engine,
                super::fs::CommitArgs {
                    change: a.change.clone(),
                    message: a.message.clone(),
                    author: a.author.clone(),
                    pause: a.pause,
                    container: m.container.name().to_string(),
                    reference: a.reference.clone(),
                },
            )
        }
        ComposeCommand::Export(a) => {
            let p = load(&g, std::slice::from_ref(&a.service))?;
            let m = member(engine, &p, &a.service, a.index)?;
            super::fs::export(
                engine,
                super::fs::ExportArgs {
                    output: a.output.clone(),
                    container: m.container.name().to_string(),
                },
            )
        }
        ComposeCommand::Scale(a) => {
            let scale = parse_scale(&a.scale)?;
            let services: Vec<String> = scale.keys().cloned().collect();
            let p = load(&g, &services)?;
            for s in &services {
                if !p.services.contains_key(s) {
                    return Err(failed(format!("no such service: {s}")));
                }
            }
            let opts = compose::up::UpOptions {
                services,
                no_deps: a.no_deps,
                scale,
                ..Default::default()
            };
            compose::up::up(engine, &p, &opts, &mut std::io::stderr(), &report)?;
            Ok(())
        }
        ComposeCommand::Version(a) => {
            if a.short {
                println!("{}", compose::project::COMPOSE_VERSION);
            } else {
                println!(
                    "Docker Compose version v{} (berth {})",
                    compose::project::COMPOSE_VERSION,
                    env!("CARGO_PKG_VERSION")
                );
            }
            Ok(())
        }
    }
}

fn act(
    engine: &Engine,
    g: &ComposeArgs,
    services: &[String],
    action: compose::ops::Action,
    timeout: Option<i64>,
) -> Result<(), Failure> {
    let p = load(g, services)?;
    if g.dry_run {
        use compose::ops::Action;
        let members = compose::project::members(engine, &p.name)?;
        let mut list = compose::ops::stop_order(Some(&p), &members, services);
        if matches!(action, Action::Start | Action::Unpause) {
            list.reverse();
        }
        for m in list.iter().filter(|m| !m.oneoff) {
            let running = m.container.is_running();
            let paused = m.container.state.status == engine::config::Status::Paused;
            let word = match action {
                Action::Stop if running => "Stopped",
                Action::Start if !running => "Started",
                Action::Restart => "Restarted",
                Action::Kill(_) if running => "Killed",
                Action::Pause if running && !paused => "Paused",
                Action::Unpause if paused => "Unpaused",
                _ => continue,
            };
            report("Container", m.container.name(), word);
        }
        return Ok(());
    }
    compose::ops::act(engine, &p, services, action, timeout, &report)?;
    Ok(())
}

fn parse_scale(specs: &[String]) -> Result<BTreeMap<String, u32>, Failure> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (svc, n) = s
            .split_once('=')
            .ok_or_else(|| Failure::usage(format!("invalid --scale {s:?}: use SERVICE=NUM")))?;
        let n: u32 = n
            .parse()
            .map_err(|_| Failure::usage(format!("invalid --scale {s:?}: NUM must be a number")))?;
        out.insert(svc.to_string(), n);
    }
    Ok(out)
}

fn up(engine: &Engine, g: &ComposeArgs, a: &UpArgs, create_only: bool) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    let scale = parse_scale(&a.scale)?;
    for s in scale.keys() {
        if !p.services.contains_key(s) {
            return Err(failed(format!("no such service: {s}")));
        }
    }
    if let Some(s) = &a.exit_code_from {
        if !p.services.contains_key(s) {
            return Err(failed(format!("no such service: {s}")));
        }
    }
    let opts = compose::up::UpOptions {
        services: a.services.clone(),
        no_deps: a.no_deps,
        force_recreate: a.force_recreate,
        no_recreate: a.no_recreate,
        build: a.build,
        no_build: a.no_build,
        pull: a.pull.clone(),
        remove_orphans: a.remove_orphans,
        scale,
        no_start: create_only || a.no_start,
        wait: a.wait,
        wait_timeout: a.wait_timeout.map(Duration::from_secs),
        dry_run: g.dry_run,
    };
    let out = compose::up::up(engine, &p, &opts, &mut std::io::stderr(), &report)?;
    if a.detach || a.wait || opts.no_start || opts.dry_run {
        return Ok(());
    }
    attached(engine, &p, a, &out)
}

/// A container's log prefix: `web-1` for `<project>-web-1`, else its name.
fn prefix_of(project: &str, name: &str) -> String {
    name.strip_prefix(&format!("{project}-"))
        .unwrap_or(name)
        .to_string()
}

/// docker compose's rotation of colours for log prefixes.
const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Prints log entries with a per-container prefix (`web-1  | `, the
/// names padded to the longest plus one, as docker compose pads them).
struct Printer {
    width: usize,
    colour: bool,
    prefix: bool,
    timestamps: bool,
}

impl Printer {
    /// One entry, to stdout or stderr as the container wrote it.
    fn line(&self, who: &str, index: usize, e: &engine::logs::Entry) {
        let mut out: Box<dyn Write> = match e.stream {
            engine::logs::Stream::Stdout => Box::new(std::io::stdout().lock()),
            engine::logs::Stream::Stderr => Box::new(std::io::stderr().lock()),
        };
        if self.prefix {
            let p = format!("{who:<w$} | ", w = self.width);
            if self.colour {
                let _ = write!(out, "\x1b[{}m{p}\x1b[0m", COLOURS[index % COLOURS.len()]);
            } else {
                let _ = write!(out, "{p}");
            }
        }
        let _ = engine::logs::print_entry(&mut out, e, self.timestamps, false);
        if !e.data.ends_with(b"\n") {
            let _ = writeln!(out);
        }
    }

    fn note(&self, who: &str, index: usize, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.colour {
            let _ = writeln!(
                out,
                "\x1b[{}m{who}\x1b[0m {text}",
                COLOURS[index % COLOURS.len()]
            );
        } else {
            let _ = writeln!(out, "{who} {text}");
        }
    }
}

fn colour_wanted(g: &ComposeArgs, no_color: bool) -> bool {
    !no_color
        && match g.ansi.as_str() {
            "never" => false,
            "always" => true,
            _ => std::io::stdout().is_terminal(),
        }
}

/// Foreground `up`: print every container's output, prefixed, until all
/// have exited (or one, with --abort-on-container-exit); Ctrl-C stops the
/// project (a second Ctrl-C kills it).
fn attached(
    engine: &Engine,
    p: &Project,
    a: &UpArgs,
    out: &compose::up::UpOutcome,
) -> Result<(), Failure> {
    let names = &out.containers;
    let prefixes: Vec<String> = names.iter().map(|n| prefix_of(&p.name, n)).collect();
    let printer = Printer {
        width: prefixes.iter().map(|s| s.len()).max().unwrap_or(0) + 1,
        colour: !a.no_color && std::io::stdout().is_terminal(),
        prefix: !a.no_log_prefix,
        timestamps: false,
    };
    println!("Attaching to {}", prefixes.join(", "));
    let mut followers = Vec::new();
    for n in names {
        let c = engine.container(n)?;
        let path = engine.container_log(&c);
        followers.push(if out.started.contains(n) {
            engine::logs::Follower::from_start(&path)
        } else {
            engine::logs::Follower::at_end(&path)
        });
    }
    let signals = Interrupts::catch();
    let mut exited: Vec<Option<i32>> = vec![None; names.len()];
    let mut code = 0;
    loop {
        let mut any = false;
        for (i, f) in followers.iter_mut().enumerate() {
            for e in f.poll().unwrap_or_default() {
                any = true;
                printer.line(&prefixes[i], i, &e);
            }
        }
        let _ = std::io::stdout().flush();
        let mut aborted = None;
        for (i, n) in names.iter().enumerate() {
            if exited[i].is_some() {
                continue;
            }
            let c = engine.container(n)?;
            if c.is_running() || c.state.status == engine::config::Status::Restarting {
                continue;
            }
            for e in followers[i].poll().unwrap_or_default() {
                printer.line(&prefixes[i], i, &e);
            }
            exited[i] = Some(c.state.exit_code);
            printer.note(
                &prefixes[i],
                i,
                &format!("exited with code {}", c.state.exit_code),
            );
            let svc = c
                .config
                .labels
                .get(compose::project::SERVICE)
                .cloned()
                .unwrap_or_default();
            if a.exit_code_from.as_deref() == Some(svc.as_str()) {
                code = c.state.exit_code;
            }
            if a.abort_on_container_exit || a.exit_code_from.is_some() {
                aborted = Some(c.state.exit_code);
            }
        }
        if let Some(c) = aborted {
            if a.exit_code_from.is_none() {
                code = c;
            }
            eprintln!("Aborting on container exit...");
            stop_all(engine, p, a.timeout, &signals)?;
            break;
        }
        if exited.iter().all(Option::is_some) {
            break;
        }
        if !any && signals.wait(Duration::from_millis(100)) {
            eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
            stop_all(engine, p, a.timeout, &signals)?;
            code = 130;
            break;
        }
    }
    // What the containers wrote while being stopped, and how they ended.
    for (i, n) in names.iter().enumerate() {
        for e in followers[i].poll().unwrap_or_default() {
            printer.line(&prefixes[i], i, &e);
        }
        if exited[i].is_none() {
            if let Ok(c) = engine.container(n) {
                if !c.is_running() {
                    printer.note(
                        &prefixes[i],
                        i,
                        &format!("exited with code {}", c.state.exit_code),
                    );
                }
            }
        }
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}

/// Stop the project's containers, dependants first; a second interrupt
/// kills what is left.
fn stop_all(
    engine: &Engine,
    p: &Project,
    timeout: Option<i64>,
    signals: &Interrupts,
) -> Result<(), Failure> {
    let members = compose::project::members(engine, &p.name)?;
    for m in compose::ops::stop_order(Some(p), &members, &[]) {
        let name = m.container.name();
        if !engine.container(name)?.is_running() {
            continue;
        }
        if signals.pending() {
            report("Container", name, "Killing");
            engine.kill(name, model::Signal::KILL)?;
            report("Container", name, "Killed");
            continue;
        }
        report("Container", name, "Stopping");
        engine.stop(name, timeout)?;
        report("Container", name, "Stopped");
    }
    Ok(())
}

fn logs(engine: &Engine, g: &ComposeArgs, a: &LogsArgs) -> Result<(), Failure> {
    let (name, project) = load_or_name(g)?;
    if let Some(p) = &project {
        for s in &a.services {
            if !p.services.contains_key(s) && !p.disabled.contains_key(s) {
                return Err(failed(format!("no such service: {s}")));
            }
        }
    }
    let members: Vec<compose::project::Member> = compose::project::members(engine, &name)?
        .into_iter()
        .filter(|m| a.services.is_empty() || a.services.contains(&m.service))
        .collect();
    let tail: Option<usize> =
        match a.tail.as_str() {
            "all" | "-1" => None,
            n => Some(n.parse().map_err(|_| {
                Failure::usage(format!("invalid --tail {n:?}: a number or \"all\""))
            })?),
        };
    let prefixes: Vec<String> = members
        .iter()
        .map(|m| prefix_of(&name, m.container.name()))
        .collect();
    let printer = Printer {
        width: prefixes.iter().map(|s| s.len()).max().unwrap_or(0) + 1,
        colour: colour_wanted(g, a.no_color),
        prefix: !a.no_log_prefix,
        timestamps: a.timestamps,
    };
    let since = a
        .since
        .as_deref()
        .map(|s| super::container::parse_time("--since", s))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| super::container::parse_time("--until", s))
        .transpose()?;
    let mut followers = Vec::new();
    let mut all: Vec<(chrono::DateTime<Utc>, usize, engine::logs::Entry)> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let path = engine.container_log(&m.container);
        let mut entries = if a.follow {
            let (entries, follower) = engine::logs::read_and_follow(&path)?;
            followers.push(follower);
            entries
        } else {
            engine::logs::read_all(&path).unwrap_or_default()
        };
        entries.retain(|e| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u));
        if let Some(n) = tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        all.extend(entries.into_iter().map(|e| (e.time, i, e)));
    }
    // Interleaved by time, as the lines were written.
    all.sort_by_key(|(t, i, _)| (*t, *i));
    for (_, i, e) in &all {
        printer.line(&prefixes[*i], *i, e);
    }
    if !a.follow || until.is_some_and(|u| u <= Utc::now()) {
        return Ok(());
    }
    let ids: Vec<&str> = members.iter().map(|m| m.container.id().as_str()).collect();
    super::container::follow_logs(engine, &ids, &mut followers, until, |i, e| {
        printer.line(&prefixes[i], i, e)
    })
}

fn ps(engine: &Engine, g: &ComposeArgs, a: &PsArgs) -> Result<(), Failure> {
    let (name, project) = load_or_name(g)?;
    if a.services {
        if let Some(p) = &project {
            for s in p.services.keys() {
                if a.names.is_empty() || a.names.contains(s) {
                    println!("{s}");
                }
            }
        }
        return Ok(());
    }
    let members: Vec<compose::project::Member> = compose::project::members(engine, &name)?
        .into_iter()
        .filter(|m| a.names.is_empty() || a.names.contains(&m.service))
        .filter(|m| {
            let state = m.container.state.status.as_str();
            if !a.status.is_empty() {
                return a.status.iter().any(|s| s == state);
            }
            a.all || m.container.is_running() || state == "restarting"
        })
        .collect();
    let rows: Vec<Row> = members
        .iter()
        .map(|m| {
            let mut r = super::container::container_row(&m.container, a.no_trunc);
            r.insert("Name", m.container.name().to_string());
            r.insert("Service", m.service.clone());
            r.insert("Project", name.clone());
            r.insert(
                "Health",
                m.container
                    .state
                    .health
                    .as_ref()
                    .map(|h| h.status.as_str().to_string())
                    .unwrap_or_default(),
            );
            r.insert("ExitCode", m.container.state.exit_code.to_string());
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
        ("NAME", "Name"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("SERVICE", "Service"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
    ];
    print!(
        "{}",
        format::print(
            &Format::parse(a.format.as_deref(), COLS),
            &rows,
            &format::COMPOSE_PS
        )?
    );
    Ok(())
}

fn ls(engine: &Engine, a: &LsArgs) -> Result<(), Failure> {
    let projects = compose::project::projects(engine)?;
    let mut rows = Vec::new();
    for (name, (running, total, files)) in projects {
        if running == 0 && !a.all {
            continue;
        }
        let mut parts = Vec::new();
        if running > 0 {
            parts.push(format!("running({running})"));
        }
        if total > running {
            parts.push(format!("exited({})", total - running));
        }
        rows.push((name, parts.join(", "), files));
    }
    if a.quiet {
        for (n, _, _) in rows {
            println!("{n}");
        }
        return Ok(());
    }
    if a.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, s, f)| serde_json::json!({"Name": n, "Status": s, "ConfigFiles": f}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(4);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
    println!("{:<w0$}   {:<w1$}   CONFIG FILES", "NAME", "STATUS");
    for (n, s, f) in rows {
        println!("{n:<w0$}   {s:<w1$}   {f}");
    }
    Ok(())
}

fn config(g: &ComposeArgs, a: &ConfigArgs) -> Result<(), Failure> {
    let p = load(g, &[])?;
    let mut text = String::new();
    if a.services {
        for s in p.services.keys() {
            text.push_str(&format!("{s}\n"));
        }
    } else if a.volumes {
        for v in p.volumes.keys() {
            text.push_str(&format!("{v}\n"));
        }
    } else if a.networks {
        for n in p.networks.keys() {
            text.push_str(&format!("{n}\n"));
        }
    } else if a.profiles {
        let mut all: Vec<&String> = p
            .services
            .values()
            .chain(p.disabled.values())
            .flat_map(|s| s.profiles.iter())
            .collect();
        all.sort();
        all.dedup();
        for x in all {
            text.push_str(&format!("{x}\n"));
        }
    } else if a.images {
        for s in p.services.values() {
            text.push_str(&format!("{}\n", compose::project::image_name(&p, s)));
        }
    } else if let Some(which) = &a.hash {
        for (n, s) in &p.services {
            if which == "*" || which.split(',').any(|w| w == n) {
                text.push_str(&format!("{n} {}\n", compose::project::config_hash(s)));
            }
        }
    } else if a.quiet {
        return Ok(());
    } else if a.format == "json" {
        text = serde_json::to_string_pretty(&p).map_err(failed)? + "\n";
    } else {
        text = compose::loader::to_yaml(&p);
    }
    match &a.output {
        Some(path) => std::fs::write(path, text)?,
        None => print!("{text}"),
    }
    Ok(())
}

fn exec(engine: &Engine, g: &ComposeArgs, a: &ExecArgs) -> Result<(), Failure> {
    let p = load(g, std::slice::from_ref(&a.service))?;
    if !p.services.contains_key(&a.service) {
        return Err(failed(format!("no such service: {}", a.service)));
    }
    let members = compose::project::members(engine, &p.name)?;
    let m = members
        .iter()
        .find(|m| m.service == a.service && m.number == a.index && !m.oneoff)
        .ok_or_else(|| {
            failed(format!(
                "service \"{}\" is not running container #{}",
                a.service, a.index
            ))
        })?;
    if !m.container.is_running() {
        return Err(failed(format!(
            "service \"{}\" is not running container #{}",
            a.service, a.index
        )));
    }
    if g.dry_run {
        report(
            "Container",
            m.container.name(),
            &format!("Exec {}", a.command.join(" ")),
        );
        return Ok(());
    }
    let tty = !a.no_tty && !a.detach && std::io::stdin().is_terminal();
    super::container::exec(
        engine,
        super::container::ExecArgs {
            interactive: !a.detach,
            tty,
            detach: a.detach,
            env: super::container::with_values_from_here(a.env.clone()),
            user: a.user.clone(),
            workdir: a.workdir.clone(),
            container: m.container.name().to_string(),
            command: a.command.clone(),
        },
    )
}

fn run(engine: &Engine, g: &ComposeArgs, a: &RunArgs) -> Result<(), Failure> {
    let p = load(g, std::slice::from_ref(&a.service))?;
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let stdin_tty = std::io::stdin().is_terminal();
    let tty = !a.no_tty && !a.detach && stdin_tty;
    let opts = compose::up::RunOptions {
        service: a.service.clone(),
        command: a.command.clone(),
        entrypoint: a.entrypoint.clone().map(|e| vec![e]),
        env: super::container::with_values_from_here(a.env.clone()),
        labels,
        name: a.name.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        no_deps: a.no_deps,
        service_ports: a.service_ports,
        publish: a.publish.clone(),
        volumes: a.volume.clone(),
        rm: a.rm,
        tty,
        interactive: a.interactive && !a.detach,
        build: a.build,
        use_aliases: a.use_aliases,
        dry_run: g.dry_run,
    };
    let name = compose::up::create_oneoff(engine, &p, &opts, &mut std::io::stderr(), &report)?;
    if g.dry_run {
        report("Container", &name, "Started");
        return Ok(());
    }
    if a.detach {
        engine.start(&name, engine::container::start::AttachMode::Detached)?;
        println!("{name}");
        return Ok(());
    }
    let _raw = (tty && opts.interactive).then(crate::terminal::RawMode::enable);
    let launched = engine.start(
        &name,
        engine::container::start::AttachMode::Foreground {
            stdin: opts.interactive,
        },
    )?;
    super::container::attached_exit(engine, launched)
}

/// The project's container `index` of `service`.
fn member(
    engine: &Engine,
    p: &Project,
    service: &str,
    index: u32,
) -> Result<compose::project::Member, Failure> {
    if !p.services.contains_key(service) {
        return Err(failed(format!("no such service: {service}")));
    }
    compose::project::members(engine, &p.name)?
        .into_iter()
        .find(|m| m.service == service && m.number == index && !m.oneoff)
        .ok_or_else(|| {
            failed(format!(
                "service \"{service}\" is not running container #{index}"
            ))
        })
}

fn port(engine: &Engine, g: &ComposeArgs, a: &PortArgs) -> Result<(), Failure> {
    let p = load(g, std::slice::from_ref(&a.service))?;
    let m = member(engine, &p, &a.service, a.index)?;
    let found =
        m.container.api_ports().into_iter().find(|x| {
            x.private_port == a.private_port && x.proto == a.protocol && x.public_port != 0
        });
    match found {
        Some(x) => {
            println!(
                "{}:{}",
                if x.ip.is_empty() { "0.0.0.0" } else { &x.ip },
                x.public_port
            );
            Ok(())
        }
        None => Err(failed(format!(
            "no port {}/{} for container {}",
            a.private_port,
            a.protocol,
            m.container.name()
        ))),
    }
}

fn top(engine: &Engine, g: &ComposeArgs, a: &ServicesArgs) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    let members = compose::project::members(engine, &p.name)?;
    for m in members
        .iter()
        .filter(|m| a.services.is_empty() || a.services.contains(&m.service))
        .filter(|m| m.container.is_running())
    {
        println!("{}", m.container.name());
        let pids = engine.container_pids(&m.container)?;
        println!("UID    PID    PPID   C    STIME   TTY   TIME       CMD");
        for pid in pids {
            if let Some(r) = engine::container::ops::process_row(pid) {
                println!(
                    "{:<6} {:<6} {:<6} {:<4} {:<7} {:<5} {:<10} {}",
                    r.uid, r.pid, r.ppid, 0, r.stime, r.tty, r.time, r.cmd
                );
            }
        }
        println!();
    }
    Ok(())
}

fn images(engine: &Engine, g: &ComposeArgs, a: &ImagesArgs) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    let members = compose::project::members(engine, &p.name)?;
    let mut rows = Vec::new();
    for m in members
        .iter()
        .filter(|m| a.services.is_empty() || a.services.contains(&m.service))
    {
        let image = m.container.record.image_ref.clone();
        let (repo, tag) = match image.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (image.clone(), "latest".to_string()),
        };
        let id = m.container.record.image_id.to_string();
        let short = id
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>();
        let size = engine
            .inspect_image(&id)
            .ok()
            .and_then(|v| v["Size"].as_u64())
            .unwrap_or(0);
        rows.push((m.container.name().to_string(), repo, tag, short, size));
    }
    if a.quiet {
        let mut ids: Vec<&String> = rows.iter().map(|r| &r.3).collect();
        ids.dedup();
        for i in ids {
            println!("{i}");
        }
        return Ok(());
    }
    if a.format == "json" {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(c, r, t, i, s)| {
                serde_json::json!({"ContainerName": c, "Repository": r, "Tag": t, "ID": i, "Size": s})
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(9);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(10);
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(3);
    println!(
        "{:<w0$}   {:<w1$}   {:<w2$}   {:<12}   SIZE",
        "CONTAINER", "REPOSITORY", "TAG", "IMAGE ID"
    );
    for (c, r, t, i, s) in rows {
        println!(
            "{c:<w0$}   {r:<w1$}   {t:<w2$}   {i:<12}   {}",
            format::human_size(s)
        );
    }
    Ok(())
}

fn wait(engine: &Engine, g: &ComposeArgs, a: &WaitArgs) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    for s in &a.services {
        if !p.services.contains_key(s) {
            return Err(failed(format!("no such service: {s}")));
        }
    }
    let members: Vec<compose::project::Member> = compose::project::members(engine, &p.name)?
        .into_iter()
        .filter(|m| a.services.contains(&m.service) && !m.oneoff)
        .collect();
    if members.is_empty() {
        return Err(failed("no containers for the services given"));
    }
    // The first of them to stop gives the exit code.
    let code = loop {
        let mut done = None;
        for m in &members {
            let c = engine.container(m.container.id().as_str())?;
            if !c.is_running() && c.state.status != engine::config::Status::Restarting {
                done = Some(c.state.exit_code);
                break;
            }
        }
        if let Some(c) = done {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if a.down_project {
        compose::ops::down(
            engine,
            &p.name,
            Some(&p),
            &compose::ops::DownOptions::default(),
            &report,
        )?;
    }
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}

fn events(engine: &Engine, g: &ComposeArgs, a: &EventsArgs) -> Result<(), Failure> {
    let (name, _) = load_or_name(g)?;
    let mut tail = engine::events::Tail::at_end(&engine.paths().root);
    // Container id → its service, when it is one of the project's.
    let mut services: BTreeMap<String, Option<String>> = BTreeMap::new();
    let signals = Interrupts::catch();
    loop {
        for e in tail.poll() {
            if e.kind != "container" {
                continue;
            }
            let id = e.actor.id.clone();
            let service = services
                .entry(id.clone())
                .or_insert_with(|| {
                    engine.container(&id).ok().and_then(|c| {
                        let l = &c.config.labels;
                        (l.get(compose::project::PROJECT) == Some(&name))
                            .then(|| l.get(compose::project::SERVICE).cloned())
                            .flatten()
                    })
                })
                .clone();
            let Some(service) = service else { continue };
            if !a.services.is_empty() && !a.services.contains(&service) {
                continue;
            }
            let mut out = std::io::stdout().lock();
            if a.json {
                let v = serde_json::json!({
                    "time": e.when().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    "type": "container",
                    "action": e.action,
                    "id": id,
                    "service": service,
                    "attributes": e.actor.attributes,
                });
                let _ = writeln!(out, "{v}");
            } else {
                let attrs: Vec<String> = e
                    .actor
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} container {} {} ({})",
                    e.when().format("%Y-%m-%d %H:%M:%S%.6f"),
                    e.action,
                    id,
                    attrs.join(", ")
                );
            }
            let _ = out.flush();
        }
        if signals.wait(Duration::from_millis(100)) {
            return Err(Failure::silent(130));
        }
    }
}

/// `SERVICE:PATH` of `cp` as the container's end, or a local path.
fn cp_end(
    engine: &Engine,
    p: &Project,
    spec: &str,
    index: u32,
) -> Result<engine::container::fs::CpEnd, Failure> {
    use engine::container::fs::CpEnd;
    match CpEnd::parse(spec) {
        CpEnd::Container(service, path) => {
            let m = member(engine, p, &service, index)?;
            Ok(CpEnd::Container(m.container.name().to_string(), path))
        }
        host => Ok(host),
    }
}

fn cp(engine: &Engine, g: &ComposeArgs, a: &CpArgs) -> Result<(), Failure> {
    let p = load(g, &[])?;
    let src = cp_end(engine, &p, &a.source, a.index)?;
    let dst = cp_end(engine, &p, &a.destination, a.index)?;
    if g.dry_run {
        use engine::container::fs::CpEnd;
        let show = |e: &CpEnd| match e {
            CpEnd::Container(c, path) => format!("{c}:{}", path.display()),
            CpEnd::Host(path) => path.display().to_string(),
        };
        match &src {
            CpEnd::Host(path) if path.as_os_str() != "-" => {
                std::fs::symlink_metadata(path)
                    .map_err(|e| failed(format!("cannot copy {}: {e}", path.display())))?;
            }
            _ => {}
        }
        report("Copy", &show(&src), &format!("to {}", show(&dst)));
        return Ok(());
    }
    engine.copy(
        &src,
        &dst,
        engine::container::fs::CpOptions {
            archive: a.archive,
            follow: a.follow_link,
        },
    )?;
    Ok(())
}

fn push(engine: &Engine, g: &ComposeArgs, a: &PushArgs) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    for name in compose::project::selection(&p, &a.services, true)? {
        let s = &p.services[&name];
        // As docker compose: the services with an image name that build it.
        let (Some(image), Some(_)) = (&s.image, &s.build) else {
            continue;
        };
        let r: model::Reference = image
            .parse()
            .map_err(|e| failed(format!("service {name:?}: image {image:?}: {e}")))?;
        if g.dry_run {
            if engine.image_id(image).is_none() {
                return Err(failed(format!(
                    "service {name:?}: no image {image} to push: build it first"
                )));
            }
            report("Image", image, "Pushed");
            continue;
        }
        report("Image", image, "Pushing");
        match engine.push_quietly(&r) {
            Ok(_) => report("Image", image, "Pushed"),
            Err(e) if a.ignore_push_failures => report("Image", image, &format!("Error: {e}")),
            Err(e) => return Err(failed(format!("service {name:?}: pushing {image}: {e}"))),
        }
    }
    Ok(())
}

fn watch(engine: &Engine, g: &ComposeArgs, a: &WatchArgs) -> Result<(), Failure> {
    let p = load(g, &a.services)?;
    let mut sink = std::io::sink();
    let mut err = std::io::stderr();
    let out: &mut dyn Write = if a.quiet { &mut sink } else { &mut err };
    if !a.no_up {
        let opts = compose::up::UpOptions {
            services: a.services.clone(),
            ..Default::default()
        };
        compose::up::up(engine, &p, &opts, out, &report)?;
    }
    let signals = Interrupts::catch();
    compose::watch::watch(engine, &p, &a.services, out, &report, &|d| signals.wait(d))?;
    Ok(())
}

/// `build --dry-run` of one service: its context and Dockerfile are there.
fn dry_build(p: &Project, s: &compose::model::Service) -> Result<(), Failure> {
    let Some(b) = &s.build else { return Ok(()) };
    let context = std::path::Path::new(&b.context);
    if !context.is_dir() {
        return Err(failed(format!(
            "service {:?}: build context {} is not a directory",
            s.name,
            context.display()
        )));
    }
    if b.dockerfile_inline.is_none() {
        let file = context.join(b.dockerfile.as_deref().unwrap_or("Dockerfile"));
        if !file.is_file() {
            return Err(failed(format!(
                "service {:?}: no Dockerfile at {}",
                s.name,
                file.display()
            )));
        }
    }
    report("Service", &s.name, "Building");
    report("Image", &compose::project::image_name(p, s), "Built");
    Ok(())
}
