//! `pause` and `unpause`.

use engine::Engine;

use crate::Failure;

use super::{each, NamesArgs};

/// `pause`.
pub fn pause(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    each(&a.containers, |n| {
        engine.pause(n)?;
        Ok(())
    })
}

/// `unpause`.
pub fn unpause(engine: &Engine, a: NamesArgs) -> Result<(), Failure> {
    each(&a.containers, |n| {
        engine.unpause(n)?;
        Ok(())
    })
}
