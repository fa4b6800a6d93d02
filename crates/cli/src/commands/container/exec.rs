//! `exec`.

use std::os::fd::{AsFd, OwnedFd};

use clap::Args;
use engine::Engine;

use crate::Failure;

use super::with_values_from_here;

/// `exec`.
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Environment variables.
    #[arg(short = 'e', long = "env")]
    pub(crate) env: Vec<String>,
    /// User (name or uid[:group]).
    #[arg(short = 'u', long)]
    pub(crate) user: Option<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    pub(crate) workdir: Option<String>,
    /// Container.
    pub(crate) container: String,
    /// Command and arguments.
    #[arg(required = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

fn dup_std(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, Failure> {
    fd.try_clone_to_owned().map_err(Failure::from)
}

fn devnull() -> Result<OwnedFd, Failure> {
    Ok(OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?,
    ))
}

/// A command the container cannot start, as docker's CLI shows dockerd's
/// answer: the OCI error on stdout, exit 126 (both for a missing and a
/// non-executable file).
fn not_started(e: engine::EngineError) -> Failure {
    match e.oci_exec_message() {
        Some(m) => {
            println!("{m}");
            Failure::silent(126)
        }
        None => e.into(),
    }
}

/// `exec`.
pub fn exec(engine: &Engine, a: ExecArgs) -> Result<(), Failure> {
    let req = engine::container::exec::ExecRequest {
        cmd: a.command.clone(),
        env: with_values_from_here(a.env.clone()),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
    };
    let code = if a.detach {
        let stdio = [devnull()?, devnull()?, devnull()?];
        engine.exec(&a.container, &req, stdio)?;
        0
    } else if a.tty {
        let (master, slave) = engine.container_pty(&a.container)?;
        let stdio = [slave.try_clone()?, slave.try_clone()?, slave];
        let _raw = (a.interactive && crate::terminal::stdin_is_tty())
            .then(crate::terminal::RawMode::enable);
        crate::terminal::sync_winsize(master.as_fd());
        let pid = engine
            .exec(&a.container, &req, stdio)
            .map_err(not_started)?;
        engine::term::pump_pty(master, true, true);
        engine::term::wait_child(pid)
    } else {
        let stdin = if a.interactive {
            dup_std(std::io::stdin().as_fd())?
        } else {
            devnull()?
        };
        let stdio = [
            stdin,
            dup_std(std::io::stdout().as_fd())?,
            dup_std(std::io::stderr().as_fd())?,
        ];
        let pid = engine
            .exec(&a.container, &req, stdio)
            .map_err(not_started)?;
        engine::term::wait_child(pid)
    };
    if code == 0 {
        Ok(())
    } else {
        Err(Failure::silent(code))
    }
}
