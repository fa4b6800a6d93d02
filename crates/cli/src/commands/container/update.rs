//! `update`.

use clap::Args;
use engine::Engine;

use crate::Failure;

use super::{bad, each, parse_memory_flags};

/// `update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 512m).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// Process limit (-1: unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries].
    #[arg(long)]
    restart: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0).
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<String>,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `update`.
pub fn update(engine: &Engine, a: UpdateArgs) -> Result<(), Failure> {
    let restart = a
        .restart
        .as_deref()
        .map(engine::restart::RestartPolicy::parse)
        .transpose()
        .map_err(|e| bad("--restart", e))?;
    let (memory, memory_swap) = parse_memory_flags(a.memory.as_deref(), a.memory_swap.as_deref())?;
    let blkio_weight = a
        .blkio_weight
        .as_deref()
        .map(|v| super::run::parse_blkio_weight(v, "--blkio-weight"))
        .transpose()?;
    if memory.is_none()
        && memory_swap.is_none()
        && a.cpus.is_none()
        && a.cpu_shares.is_none()
        && a.pids_limit.is_none()
        && restart.is_none()
        && a.cpuset_cpus.is_none()
        && a.cpuset_mems.is_none()
        && blkio_weight.is_none()
    {
        return Err(bad(
            "update",
            "nothing to update: give --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus, --cpuset-mems, --blkio-weight, --pids-limit or --restart",
        ));
    }
    let req = engine::container::ops::UpdateRequest {
        memory,
        memory_swap,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        restart,
        cpuset_cpus: a.cpuset_cpus,
        cpuset_mems: a.cpuset_mems,
        blkio_weight,
    };
    let mut warnings = Vec::new();
    let done = each(&a.containers, |n| {
        let w = req.warnings()?;
        engine.update(n, &req)?;
        warnings.extend(w);
        Ok(())
    });
    // As docker's CLI: dockerd's warnings after the names, on stdout.
    warnings.dedup();
    if !warnings.is_empty() {
        println!("{}", warnings.join("\n"));
    }
    done
}
