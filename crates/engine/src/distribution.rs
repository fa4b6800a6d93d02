//! Pull, push and login: the registry client with this engine's store
//! and config dir.
use model::Reference;
use registry::pull::Progress;
use registry::{
    Config, Credential, Credentials, PullOptions, PullOutcome, PushOptions, PushOutcome,
};

use crate::{Engine, Result};

impl Engine {
    /// registries.toml and certs.d under the config dir.
    pub fn registries(&self) -> Result<Config> {
        Ok(Config::load(&self.paths.config)?)
    }

    /// Saved credentials (ours, then Docker's).
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.paths.config)
    }

    /// Pull `r` into the store.
    pub fn pull(
        &self,
        r: &Reference,
        opts: &PullOptions,
        progress: Progress,
    ) -> Result<PullOutcome> {
        let cfg = self.registries()?;
        let store = self.store();
        let out = registry::pull(&store, &cfg, &self.credentials(), r, opts, progress)?;
        drop(store);
        let name = r.to_string();
        self.emit("image", "pull", &name, &[("name", &name)]);
        Ok(out)
    }

    /// Every tag of `r`'s repository in its registry.
    pub fn list_tags(&self, r: &Reference) -> Result<Vec<String>> {
        let cfg = self.registries()?;
        Ok(registry::list_tags(&cfg, &self.credentials(), r)?)
    }

    /// Push the local image `r` to its registry.
    pub fn push(
        &self,
        r: &Reference,
        opts: &PushOptions,
        progress: Progress,
    ) -> Result<PushOutcome> {
        let cfg = self.registries()?;
        let store = self.store();
        let out = registry::push(&store, &cfg, &self.credentials(), r, opts, progress)?;
        drop(store);
        let name = r.to_string();
        self.emit("image", "push", &name, &[("name", &name)]);
        Ok(out)
    }

    /// Check `cred` against `host` and save it.
    pub fn login(&self, host: &str, cred: Credential) -> Result<()> {
        let cfg = self.registries()?;
        let creds = self.credentials();
        registry::client::Registry::new(&cfg, &creds, host)?
            .with_credential(Some(cred.clone()))
            .login()?;
        creds.save(host, &cred)?;
        Ok(())
    }

    /// Forget the credentials for `host`; false if there were none.
    pub fn logout(&self, host: &str) -> Result<bool> {
        Ok(self.credentials().remove(host)?)
    }
}

impl Engine {
    /// The id (`sha256:…`) of the local image `name`, if there is one.
    pub fn image_id(&self, name: &str) -> Option<String> {
        self.store()
            .resolve_image(name)
            .ok()
            .map(|r| r.id.to_string())
    }

    /// Push `r` with the default options and no progress (compose, the API).
    pub fn push_quietly(&self, r: &Reference) -> Result<PushOutcome> {
        self.push(r, &PushOptions::default(), &|_| {})
    }

    /// Make sure `image` is in the store: pull it when it is missing (or,
    /// with `always`, in any case), with the default options and no
    /// progress. Returns whether it pulled.
    pub fn ensure_image(&self, image: &str, always: bool) -> Result<bool> {
        if !always && self.image_id(image).is_some() {
            return Ok(false);
        }
        let r: Reference = image.parse().map_err(|e| {
            crate::EngineError::invalid("image reference", format!("{image:?}: {e}"))
        })?;
        self.pull(&r, &registry::PullOptions::default(), &|_| {})?;
        Ok(true)
    }
}

impl Engine {
    /// `rmi`: untag `name` (and delete the image when no tag is left),
    /// recording the events. Returns what happened, in order.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<store::RemoveEvent>> {
        let events = self.store().remove_image(name, force)?;
        for e in &events {
            match e {
                store::RemoveEvent::Untagged(r) => {
                    let n = r.to_string();
                    self.emit("image", "untag", &n, &[("name", &n)]);
                }
                store::RemoveEvent::Deleted(d) => self.emit("image", "delete", &d.to_string(), &[]),
            }
        }
        Ok(events)
    }
}
