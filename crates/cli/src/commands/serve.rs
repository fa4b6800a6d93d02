//! `berth serve`: the Docker Engine API (crate `api`).
use clap::Args;

use crate::Failure;

/// `serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen: unix:///path (default: unix://<runroot>/docker.sock)
    /// or tcp://ADDRESS:PORT (no TLS: only on a trusted address). Repeatable.
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// The group of the Unix sockets (default: docker, when it exists).
    #[arg(long)]
    group: Option<String>,
}

/// `serve`: until SIGINT or SIGTERM.
pub fn serve(paths: engine::Paths, a: ServeArgs) -> Result<(), Failure> {
    let hosts = if a.hosts.is_empty() {
        vec![format!(
            "unix://{}",
            paths.runroot.join("docker.sock").display()
        )]
    } else {
        a.hosts
    };
    api::serve(
        paths,
        api::Options {
            hosts,
            group: a.group,
        },
    )
    .map_err(|e| Failure::msg(1, e))
}
