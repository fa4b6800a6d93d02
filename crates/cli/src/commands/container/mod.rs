//! Container verbs: run, create, start, ps, logs, exec, stop, kill,
//! restart, wait, rm, inspect, attach, rename, top.

use clap::{Args, Subcommand};
use engine::Engine;

use crate::Failure;

mod attach;
mod exec;
mod inspect;
mod logs;
mod pause;
mod port;
mod ps;
mod rename;
mod rm;
mod run;
mod stop;
mod top;
mod update;
mod wait;

pub use attach::{attach, AttachArgs};
pub use exec::{exec, ExecArgs};
pub use inspect::{inspect, print_inspect};
pub use logs::{follow_logs, logs, parse_time, LogsArgs};
pub use pause::{pause, unpause};
pub use port::{port, PortArgs};
pub(crate) use ps::container_row;
pub use ps::{ps, PsArgs};
pub use rename::{rename, RenameArgs};
pub use rm::{rm, RmArgs};
pub(crate) use run::{attached_exit, with_values_from_here};
pub use run::{run, start, CreateArgs, StartArgs};
pub use stop::{kill, stop, KillArgs, StopArgs};
pub(crate) use top::print_processes;
pub use top::{top, TopArgs};
pub use update::{update, UpdateArgs};
pub use wait::wait;

/// A request docker's daemon refuses: docker's CLI exits 1 for those
/// (125 is for `run`'s own failures).
pub(crate) fn daemon_error(e: engine::EngineError) -> Failure {
    Failure::msg(1, e.to_string())
}

pub(crate) fn bad(what: &str, reason: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("invalid {what}: {reason}"))
}

fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), Failure>) -> Result<(), Failure> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                if let Some(m) = e.message {
                    eprintln!("berth: {m}");
                }
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

/// Container names.
#[derive(Args, Debug)]
pub struct NamesArgs {
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `--memory` and `--memory-swap` (`-1`: unlimited) of `run` and `update`.
fn parse_memory_flags(
    memory: Option<&str>,
    swap: Option<&str>,
) -> Result<(Option<u64>, Option<i64>), Failure> {
    // docker's flag parser refuses these (go-units' words).
    let invalid =
        |m: &str, flag: &str| Failure::flag_value(m, flag, &format!("invalid size: '{m}'"));
    let memory = memory
        .map(|m| model::size::parse_bytes(m).map_err(|_| invalid(m, "-m, --memory")))
        .transpose()?;
    let swap = swap
        .map(|m| {
            if m == "-1" {
                Ok(-1)
            } else {
                model::size::parse_bytes(m)
                    .map(|v| v as i64)
                    .map_err(|_| invalid(m, "--memory-swap"))
            }
        })
        .transpose()?;
    Ok((memory, swap))
}

/// `inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output with a Go template (e.g. {{.State.Status}}).
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Only look at this kind of object (container or image).
    #[arg(long = "type")]
    kind: Option<String>,
    /// Add a container's SizeRw and SizeRootFs.
    #[arg(short = 's', long)]
    size: bool,
    /// Names or ids.
    #[arg(required = true)]
    names: Vec<String>,
}

/// `container …` subcommands (Docker's management-command spelling).
#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers.
    #[command(alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Create and run a container.
    Run(CreateArgs),
    /// Create a container.
    Create(CreateArgs),
    /// Start containers.
    Start(StartArgs),
    /// Stop containers.
    Stop(StopArgs),
    /// Restart containers.
    Restart(StopArgs),
    /// Kill containers.
    Kill(KillArgs),
    /// Remove containers.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List a container's published ports.
    Port(PortArgs),
    /// Live resource use of containers.
    Stats(super::system::StatsArgs),
    /// Wait for containers.
    Wait(NamesArgs),
    /// Inspect containers.
    Inspect(ContainerArgs),
    /// Show logs.
    Logs(LogsArgs),
    /// Run a command in a container.
    Exec(ExecArgs),
    /// Show processes.
    Top(TopArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Attach to a container.
    Attach(AttachArgs),
    /// Remove all stopped containers.
    Prune(super::system::ContainerPruneArgs),
    /// Freeze every process of containers.
    Pause(NamesArgs),
    /// Change containers' limits (live when running).
    Update(UpdateArgs),
    /// Thaw paused containers.
    Unpause(NamesArgs),
    /// Copy files between a container and the host.
    Cp(super::fs::CpArgs),
    /// List the changes to a container's filesystem.
    Diff(super::fs::DiffArgs),
    /// Write a container's filesystem as a tar archive.
    Export(super::fs::ExportArgs),
    /// Create a new image from a container's changes.
    Commit(super::fs::CommitArgs),
}

/// `container inspect` arguments.
#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// Go template.
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Add SizeRw and SizeRootFs.
    #[arg(short = 's', long)]
    size: bool,
    /// Containers.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Run a `container …` subcommand.
pub fn dispatch(engine: &Engine, c: ContainerCommand) -> Result<(), Failure> {
    match c {
        ContainerCommand::Ls(a) => ps(engine, a),
        ContainerCommand::Prune(a) => super::system::container_prune(engine, a),
        ContainerCommand::Pause(a) => pause(engine, a),
        ContainerCommand::Update(a) => update(engine, a),
        ContainerCommand::Unpause(a) => unpause(engine, a),
        ContainerCommand::Cp(a) => super::fs::cp(engine, a),
        ContainerCommand::Diff(a) => super::fs::diff(engine, a),
        ContainerCommand::Export(a) => super::fs::export(engine, a),
        ContainerCommand::Commit(a) => super::fs::commit(engine, a),
        ContainerCommand::Run(a) => run(engine, a, true),
        ContainerCommand::Create(a) => run(engine, a, false),
        ContainerCommand::Start(a) => start(engine, a),
        ContainerCommand::Stop(a) => stop(engine, a, false),
        ContainerCommand::Restart(a) => stop(engine, a, true),
        ContainerCommand::Kill(a) => kill(engine, a),
        ContainerCommand::Rm(a) => rm(engine, a),
        ContainerCommand::Port(a) => port(engine, a),
        ContainerCommand::Stats(a) => super::system::stats(engine, a),
        ContainerCommand::Wait(a) => wait(engine, a),
        ContainerCommand::Inspect(a) => inspect(
            engine,
            InspectArgs {
                format: a.format,
                kind: Some("container".into()),
                size: a.size,
                names: a.names,
            },
        ),
        ContainerCommand::Logs(a) => logs(engine, a),
        ContainerCommand::Exec(a) => exec(engine, a),
        ContainerCommand::Top(a) => top(engine, a),
        ContainerCommand::Rename(a) => rename(engine, a),
        ContainerCommand::Attach(a) => attach(engine, a),
    }
}
