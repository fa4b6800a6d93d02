//! Stopping a build from outside: the API's build ends when its client
//! goes away.
use std::sync::Arc;

use crate::error::{EngineError, Result};

/// Asked before each step and while a RUN step runs (every 100 ms): when
/// it answers true the build stops, its RUN container removed, with
/// [`EngineError::Build`]. Forked stage builders ask their copy, so the
/// check must work in a forked child (a poll of a descriptor, not a
/// thread's flag).
#[derive(Clone, Default)]
pub struct Cancel(pub Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Cancel(Some)"
        } else {
            "Cancel(None)"
        })
    }
}

impl Cancel {
    /// `Err` once the build is to stop.
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            Some(f) if f() => Err(EngineError::Build("the build was cancelled".into())),
            _ => Ok(()),
        }
    }
}
