//! Pull, push and login: the registry client with this engine's store
//! and config dir.
use model::Reference;
use registry::{Config, Credentials};

use crate::{Engine, Result};

pub use registry::pull::{Event, LayerStatus, Progress};
pub use registry::push::Compression;
pub use registry::{
    Cancel, Credential, Platform, PullOptions, PullOutcome, PushOptions, PushOutcome,
};

impl Engine {
    /// registries.toml and certs.d under the config dir.
    pub fn registries(&self) -> Result<Config> {
        Ok(Config::load(&self.paths.config)?)
    }

    /// Saved credentials (ours, then Docker's).
    pub fn credentials(&self) -> Credentials {
        Credentials::new(&self.paths.config)
    }

    /// The saved credentials, with `given` used for `host` (the Docker
    /// API's `X-Registry-Auth`: the client sends what its login saved).
    fn credentials_for(&self, host: &str, given: Option<Credential>) -> Credentials {
        match given {
            Some(c) => self.credentials().with_given(host, c),
            None => self.credentials(),
        }
    }

    /// Pull `r` into the store.
    pub fn pull(
        &self,
        r: &Reference,
        opts: &PullOptions,
        progress: Progress,
    ) -> Result<PullOutcome> {
        self.pull_as(r, opts, None, progress)
    }

    /// Pull `r` with `cred` for its registry (else the saved credentials).
    pub fn pull_as(
        &self,
        r: &Reference,
        opts: &PullOptions,
        cred: Option<Credential>,
        progress: Progress,
    ) -> Result<PullOutcome> {
        let cfg = self.registries()?;
        let creds = self.credentials_for(r.registry(), cred);
        // The policy's registry-side checks (signatures, SBOM) come first:
        // a refused image is never downloaded.
        let policy = self.policy_before_pull(r)?;
        let store = self.store();
        let out = registry::pull(&store, &cfg, &creds, r, opts, progress)?;
        drop(store);
        if let Some((rule, pre)) = policy {
            self.policy_after_pull(r, &rule, pre, &out)?;
        }
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
        self.push_as(r, opts, None, progress)
    }

    /// Push `r` with `cred` for its registry (else the saved credentials).
    pub fn push_as(
        &self,
        r: &Reference,
        opts: &PushOptions,
        cred: Option<Credential>,
        progress: Progress,
    ) -> Result<PushOutcome> {
        let cfg = self.registries()?;
        let creds = self.credentials_for(r.registry(), cred);
        let store = self.store();
        let out = registry::push(&store, &cfg, &creds, r, opts, progress)?;
        drop(store);
        let name = r.to_string();
        self.emit("image", "push", &name, &[("name", &name)]);
        Ok(out)
    }

    /// Check `cred` against `host` and save it.
    pub fn login(&self, host: &str, cred: Credential) -> Result<()> {
        self.check_login(host, cred.clone())?;
        self.credentials().save(host, &cred)?;
        Ok(())
    }

    /// Check `cred` against `host` without saving it (the API's `/auth`:
    /// the client keeps its credentials).
    pub fn check_login(&self, host: &str, cred: Credential) -> Result<()> {
        let cfg = self.registries()?;
        registry::client::Registry::new(&cfg, &self.credentials(), host)?
            .with_credential(Some(cred))
            .login()?;
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
        self.pull(&r, &PullOptions::default(), &|_| {})?;
        Ok(true)
    }
}

impl Engine {
    /// Download `url` (http or https) into `out`, at most `limit` bytes:
    /// `build` from the URL of a tarball or a Dockerfile. Returns the bytes
    /// written.
    pub fn fetch_url(&self, url: &str, out: &mut dyn std::io::Write, limit: u64) -> Result<u64> {
        let idle = self.registries()?.idle_timeout();
        Ok(registry::fetch::fetch(url, out, limit, idle)?.size)
    }
}
