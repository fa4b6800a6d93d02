//! Step images: found by cache key, registered, and taken as a stage's
//! state.

use model::Digest;
use serde_json::json;

use crate::error::Result;

use super::{Builder, StageState};

impl Builder<'_> {
    pub(super) fn lookup(&self, key: &str) -> Option<Digest> {
        if self.req.no_cache {
            return None;
        }
        if let Some(name) = &self.current_stage {
            if self
                .req
                .no_cache_stages
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
            {
                return None;
            }
        }
        let hit = self.engine.store().cache_get(key).ok().flatten();
        if let Some(id) = &hit {
            self.touched
                .borrow_mut()
                .push((key.to_string(), id.clone()));
        }
        hit
    }

    /// Register the stage's current config on top of its image plus
    /// `layers`, cached under its key.
    pub(super) fn register(
        &self,
        st: &StageState,
        layers: Vec<store::IngestedLayer>,
    ) -> Result<Digest> {
        let mut config = st.config.clone();
        config["created"] = json!(self.now());
        for (k, v) in &self.req.labels {
            config["config"]["Labels"][k] = json!(v);
        }
        let id = self
            .engine
            .store()
            .register_built(st.image.as_ref(), layers, config, &[])?;
        self.engine.store().cache_put(&st.key, &id)?;
        self.touched.borrow_mut().push((st.key.clone(), id.clone()));
        Ok(id)
    }

    /// Take the result of a cached or new layer step as the stage's state.
    pub(super) fn adopt(&self, st: &mut StageState, id: Digest) -> Result<()> {
        st.config = self.image_config(&id)?;
        let mut d = self.engine.store().layer_dirs(&id)?;
        d.reverse();
        st.layer_dirs = d;
        st.image = Some(id);
        st.dirty = false;
        Ok(())
    }
}
