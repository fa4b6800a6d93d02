//! Stopping a transfer from outside: `berth serve` ends a pull or push
//! whose client went away (as dockerd cancels the request's context).
use std::sync::Arc;

/// Asked between blobs and on every read or write of one; `None` never
/// cancels.
#[derive(Clone, Default)]
pub struct Cancel(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

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
    /// Cancelled once `gone` says so.
    pub fn when(gone: impl Fn() -> bool + Send + Sync + 'static) -> Cancel {
        Cancel(Some(Arc::new(gone)))
    }

    /// Can anything cancel it?
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Has it been cancelled?
    pub fn cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f())
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<(), crate::RegistryError> {
        if self.cancelled() {
            Err(crate::RegistryError::Cancelled)
        } else {
            Ok(())
        }
    }
}
