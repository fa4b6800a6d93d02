//! `stop`, `restart` and `kill`.

use clap::Args;
use engine::container::start::AttachMode;
use engine::Engine;

use crate::Failure;

use super::{bad, each};

/// `stop` and `restart`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing.
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    time: Option<i64>,
    /// Signal to send (instead of the container's stop signal).
    #[arg(short = 's', long)]
    signal: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `stop` / `restart`.
pub fn stop(engine: &Engine, a: StopArgs, restart: bool) -> Result<(), Failure> {
    if let Some(s) = &a.signal {
        s.parse::<model::Signal>()
            .map_err(|_| bad("--signal", format!("{s:?} is not a signal")))?;
    }
    each(&a.containers, |n| {
        if let Some(s) = &a.signal {
            let c = engine.container(n)?;
            if c.is_running() {
                engine.kill(n, s.parse().unwrap_or(model::Signal::TERM))?;
            }
        }
        engine.stop(n, a.time)?;
        if restart {
            engine.start(n, AttachMode::Detached)?;
        }
        Ok(())
    })
}

/// `kill`.
#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `kill`.
pub fn kill(engine: &Engine, a: KillArgs) -> Result<(), Failure> {
    let sig: model::Signal = a
        .signal
        .parse()
        .map_err(|_| bad("--signal", format!("{:?} is not a signal", a.signal)))?;
    each(&a.containers, |n| {
        engine
            .kill(n, sig)
            .map_err(|e| Failure::msg(1, format!("Cannot kill container: {n}: {e}")))?;
        Ok(())
    })
}
