//! `rm`.

use clap::Args;
use engine::Engine;

use crate::Failure;

use super::each;

/// `rm`.
#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short = 'v', long)]
    volumes: bool,
    /// Remove the link (container/alias), not a container.
    #[arg(short = 'l', long)]
    link: bool,
    /// Containers.
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `rm`.
pub fn rm(engine: &Engine, a: RmArgs) -> Result<(), Failure> {
    if a.link {
        return each(&a.containers, |n| {
            engine.remove_link(n)?;
            Ok(())
        });
    }
    // As docker: `rm -f` of a container that does not exist says so but
    // is no error.
    let names: Vec<String> = a
        .containers
        .iter()
        .filter(|n| match engine.container(n) {
            Err(e) if a.force => {
                eprintln!("berth: {e}");
                false
            }
            _ => true,
        })
        .cloned()
        .collect();
    each(&names, |n| {
        engine.remove(n, a.force, a.volumes)?;
        Ok(())
    })
}
