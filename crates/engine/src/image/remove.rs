//! `rmi`.
use super::RemoveEvent;
use crate::{Engine, Result};

impl Engine {
    /// `rmi`: untag `name` (and delete the image when no tag is left),
    /// recording the events. Returns what happened, in order.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        let events = self.store().remove_image(name, force)?;
        for e in &events {
            match e {
                RemoveEvent::Untagged(r) => {
                    let n = r.to_string();
                    self.emit("image", "untag", &n, &[("name", &n)]);
                }
                RemoveEvent::Deleted(d) => self.emit("image", "delete", &d.to_string(), &[]),
            }
        }
        Ok(events)
    }
}
