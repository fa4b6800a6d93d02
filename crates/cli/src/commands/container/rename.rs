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

/// `rename`.
pub fn rename(engine: &Engine, a: RenameArgs) -> Result<(), Failure> {
    engine.rename(&a.container, &a.new_name)?;
    Ok(())
}
