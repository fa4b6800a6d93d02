//! `rename`.

use clap::Args;
use engine::Engine;

use crate::Failure;

/// `rename`.
#[derive(Args, Debug)]
pub struct RenameArgs {
    /// Container.
    container: String,
    /// New name.
    new_name: String,
}

/// `rename`: as docker's CLI, the daemon's refusal, then which rename
/// failed (exit 1).
pub fn rename(engine: &Engine, a: RenameArgs) -> Result<(), Failure> {
    engine.rename(&a.container, &a.new_name).map_err(|e| {
        eprintln!("berth: {e}");
        Failure::msg(
            1,
            format!("failed to rename container named {}", a.container),
        )
    })
}
