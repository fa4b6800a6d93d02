//! `network prune`.
use std::collections::HashSet;

use crate::{Engine, Result};

impl Engine {
    /// `network prune`: remove the networks no container uses (a stopped
    /// one counts as a user) and no lease holds. Returns the names of the
    /// removed networks; a network that cannot be removed is left alone.
    pub fn network_prune(&self) -> Result<Vec<String>> {
        let mut used: HashSet<String> = self
            .store()
            .leases(None)?
            .into_iter()
            .map(|l| l.network)
            .collect();
        for c in self.containers()? {
            used.extend(c.config.networks.iter().cloned());
        }
        let list = self.store().networks()?;
        let mut removed = Vec::new();
        for n in list
            .iter()
            .filter(|n| !used.contains(&n.id) && !used.contains(&n.name))
        {
            if self.network_remove(&n.id).is_ok() {
                removed.push(n.name.clone());
            }
        }
        Ok(removed)
    }
}
