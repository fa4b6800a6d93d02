//! `berth build`: a Dockerfile (the `dockerfile` crate parses it) and a
//! context directory become an image in the store.
//!
//! Each stage starts from its `FROM` (`scratch`, an earlier stage, or an
//! image: local, else pulled) and applies its instructions to an image
//! config; `RUN` runs as a container through the engine (same isolation and
//! networking as `berth run`) and its changes become a layer; `COPY`/`ADD`
//! write their layer directly from the context (or a stage's root). Only
//! the stages the target needs are built. Every step has a cache key: the
//! previous key, the expanded instruction, and for `COPY`/`ADD` the hash of
//! the files it reads (contents, names, modes; not times), so a `touch`
//! changes nothing and an edit re-runs only the steps after it. A step
//! that made a layer is kept as an image under its key (hidden from
//! `images`, removed by `builder prune`).
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use dockerfile::Dockerfile;
use model::{Digest, Reference};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{EngineError, Result};
use crate::Engine;
use registry::manifest::Platform;

pub mod attest;
mod cache;
/// Stopping a build from outside.
pub mod cancel;
mod commit;
mod context;
/// COPY and ADD.
pub mod copy;
mod driver;
mod external_cache;
/// `.dockerignore`.
pub mod ignore;
mod instruction;
mod layers;
/// RUN --mount.
pub mod mounts;
mod options;
mod output;
mod plan;
mod platform;
mod stage;
mod steps;

pub use attest::{Attestations, ProvenanceMode, ReferrerRecord};
use context::load_dockerfile;
pub use context::{context_from_stdin, git_context};
use driver::target_index;
use layers::{NewLayer, Pending};
pub use options::{parse_cache_spec, NamedContext, Output};
pub use platform::parse_platform;
use platform::{config_platform, platform_args, platform_string};
pub use steps::is_git_url;

/// Options of `berth build`.
/// A right a Dockerfile gets only when the build grants it (`--allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `RUN --network=host`.
    NetworkHost,
    /// `RUN --security=insecure`.
    SecurityInsecure,
}

impl std::str::FromStr for Entitlement {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(format!(
                "invalid entitlement {other:?}: use network.host or security.insecure"
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile's path (default: `Dockerfile` in the context).
    pub dockerfile: Option<PathBuf>,
    /// `-t`.
    pub tags: Vec<Reference>,
    /// `--build-arg`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--network` for RUN steps (default: the default bridge).
    pub network: Option<String>,
    /// `--allow`: entitlements the Dockerfile may use (`network.host` for
    /// `RUN --network=host`), as BuildKit asks for them.
    pub allow: Vec<Entitlement>,
    /// `--secret`: id → value, for `RUN --mount=type=secret`.
    pub secrets: Secrets,
    /// `-o/--output` (default: the image in the store).
    pub output: Option<Output>,
    /// `--build-context name=DIR|docker-image://REF`.
    pub contexts: BTreeMap<String, NamedContext>,
    /// `--no-cache-filter`: stages built without the cache.
    pub no_cache_stages: Vec<String>,
    /// `--pull`: pull FROM images even when they are in the store.
    pub pull: bool,
    /// `--cache-from type=local,src=DIR`.
    pub cache_from: Vec<PathBuf>,
    /// `--cache-to type=local,dest=DIR`.
    pub cache_to: Option<PathBuf>,
    /// `--cache-to type=inline`: the cache of the steps the result is made
    /// of goes into its config (`berth.cache.v0`).
    pub inline_cache: bool,
    /// `--cache-from REF` (or `type=registry,ref=REF`): an image built
    /// with an inline cache, local or pulled.
    pub cache_from_images: Vec<String>,
    /// `--platform`: the target platform (default: this machine's).
    pub platform: Option<Platform>,
    /// Stops the build from outside (the API's client went away).
    pub cancel: cancel::Cancel,
    /// The classic builder's step images (`POST /build`, which prints
    /// ` ---> <id>` after every step): each step leaves an image — one
    /// that only changed the config is registered (or found in the cache)
    /// at once, a layer being digested is waited for — and its progress
    /// has two more lines: `#N image <id>` after the step (`#N image ` for
    /// `FROM scratch`) and `#N container <id>` when a RUN's container is
    /// made.
    pub step_images: bool,
    /// `--sbom`, `--provenance`: documents attached to the image as OCI
    /// referrers (when it goes to the store).
    pub attest: Attestations,
}

/// The image config key of an inline build cache.
const INLINE_CACHE: &str = "berth.cache.v0";

/// Secret values by id (their `Debug` shows the ids only).
#[derive(Clone, Default)]
pub struct Secrets(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// A secret by id.
    pub fn get(&self, id: &str) -> Option<&Vec<u8>> {
        self.0.get(id)
    }
}

/// The strings of a JSON array (config `Env`, `Shell`, `OnBuild`); none
/// for anything else.
fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// ARGs usable in RUN without being declared (proxies).
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn invalid(what: &str, why: impl Into<String>) -> EngineError {
    EngineError::invalid(what, why.into())
}

fn key_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// A stage being built.
struct StageState {
    /// What the stage is for (FROM --platform, else the build's target).
    platform: Platform,
    /// The last image registered for this stage (the layers so far).
    image: Option<Digest>,
    /// The whole image config as it stands.
    config: Value,
    /// The cache key chain.
    key: String,
    /// The config changed since `image` was registered.
    dirty: bool,
    /// ARGs declared in the stage, with their values.
    args: BTreeMap<String, Option<String>>,
    /// `SHELL`.
    shell: Vec<String>,
    /// CMD was set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
    /// Layer dirs, top first (for users and existing paths).
    layer_dirs: Vec<PathBuf>,
    /// The last layer step, while its layer is being digested.
    pending: Option<Pending>,
}

impl StageState {
    fn env(&self) -> Vec<String> {
        json_strings(&self.config["config"]["Env"])
    }

    /// Variables for expansion: declared ARGs, overridden by ENV.
    fn lookup(&self, name: &str) -> Option<String> {
        for e in self.env().iter().rev() {
            if let Some(v) = e.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_string());
            }
        }
        self.args.get(name).cloned().flatten()
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.env();
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k));
        env.push(format!("{k}={v}"));
        self.config["config"]["Env"] = json!(env);
    }

    fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }
}

/// A layer ingested in a work dir (kept until the image is registered).
/// Where a stage's result is.
#[derive(Debug, Clone)]
struct Built {
    image: Digest,
}

/// The build: its inputs and what it printed.
struct Builder<'a> {
    engine: &'a Engine,
    req: &'a BuildRequest,
    df: Dockerfile,
    lexer: dockerfile::expand::Lexer,
    ignore: ignore::Ignore,
    out: &'a mut dyn Write,
    step: usize,
    built: BTreeMap<usize, Built>,
    epoch: Option<i64>,
    used_args: std::collections::BTreeSet<String>,
    /// Content hashes of context files (loaded at first use).
    stat_cache: Option<copy::StatCache>,
    /// The stage being built (its name, or its index).
    current_stage: Option<String>,
    /// Cache keys this build used or made, with their images
    /// (`--cache-to`).
    touched: std::cell::RefCell<Vec<(String, Digest)>>,
    /// The line being built, and variables it used that nothing defines.
    line: usize,
    undefined: std::cell::RefCell<std::collections::BTreeSet<(usize, String)>>,
    /// Images the stages were built FROM (for the provenance).
    bases: Vec<attest::BaseUse>,
}

impl<'a> Builder<'a> {
    /// A builder of `req`'s Dockerfile `df`, its progress to `out`.
    fn new(
        engine: &'a Engine,
        req: &'a BuildRequest,
        df: Dockerfile,
        out: &'a mut dyn Write,
    ) -> Builder<'a> {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse::<i64>().ok());
        let lexer = dockerfile::expand::Lexer {
            escape: df.directives.escape,
        };
        Builder {
            engine,
            req,
            df,
            lexer,
            ignore: ignore::Ignore::parse(""),
            out,
            step: 0,
            built: BTreeMap::new(),
            epoch,
            used_args: Default::default(),
            stat_cache: None,
            current_stage: None,
            touched: Default::default(),
            line: 0,
            undefined: Default::default(),
            bases: Vec::new(),
        }
    }
}

impl Engine {
    /// `build --check`: the Dockerfile's findings, nothing built, and
    /// their report as `docker build --check` prints it.
    pub fn check_dockerfile(
        &self,
        req: &BuildRequest,
    ) -> Result<(Vec<dockerfile::lint::Warning>, String)> {
        let (_, df_path, df) = load_dockerfile(req)?;
        let target = target_index(&df, req.target.as_deref())?;
        let warnings = dockerfile::lint::lint(&df, target);
        let text = std::fs::read_to_string(&df_path).unwrap_or_default();
        let name = df_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into());
        let report = dockerfile::lint::report(&warnings, &name, &text);
        Ok((warnings, report))
    }

    /// Build an image; returns its id. Progress goes to `out` as
    /// BuildKit's plain output does (`#N [stage i/n] INSTRUCTION`, the
    /// RUN output, `CACHED` or `DONE`).
    pub fn build(&self, req: &BuildRequest, out: &mut dyn Write) -> Result<Digest> {
        let started = chrono::Utc::now();
        if req.attest.any() && !matches!(req.output, None | Some(Output::Image { .. })) {
            return Err(invalid(
                "--sbom/--provenance",
                "they are attached to the image in the store: drop -o, or use -o type=image",
            ));
        }
        let (context, df_path, df) = load_dockerfile(req)?;
        // Dockerfile.dockerignore beside a custom -f file wins.
        let mut ignore_text = String::new();
        if let Some(name) = df_path.file_name() {
            let beside = df_path.with_file_name(format!("{}.dockerignore", name.to_string_lossy()));
            if let Ok(t) = std::fs::read_to_string(&beside) {
                ignore_text = t;
            }
        }
        if ignore_text.is_empty() {
            ignore_text =
                std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
        }
        let mut req = req.clone();
        req.context = context;
        steps::sweep_orphans(self);
        let mut b = Builder::new(self, &req, df, out);
        b.ignore = ignore::Ignore::parse(&ignore_text);
        for w in dockerfile::lint::lint(&b.df, target_index(&b.df, req.target.as_deref())?) {
            let _ = writeln!(b.out, "WARN: {w}");
        }
        if b.df.directives.syntax.is_some() {
            let _ = writeln!(
                b.out,
                "note: the `# syntax=` directive is ignored: berth has its own Dockerfile frontend"
            );
        }
        for dir in &req.cache_from {
            self.import_cache(dir, b.out)?;
        }
        for r in &req.cache_from_images {
            self.import_inline_cache(r, b.out)?;
        }
        let image = b.run();
        b.save_stat_cache();
        let image = image?;
        if let Some(dir) = &req.cache_to {
            let touched = b.touched.borrow().clone();
            self.export_cache(dir, &touched)?;
        }
        if let Some(o) = &req.output {
            self.export_build(&image, o, &req.tags)?;
        }
        let times = attest::Times {
            started,
            finished: chrono::Utc::now(),
        };
        b.attach(&image, times)?;
        for (line, name) in b.undefined.borrow().iter() {
            let _ = writeln!(
                b.out,
                "WARN: UndefinedVar: usage of undefined variable '${name}' (line {line})"
            );
        }
        for unused in req.build_args.keys() {
            if !b.used_args.contains(unused) && !PROXY_ARGS.contains(&unused.as_str()) {
                let _ = writeln!(
                    b.out,
                    "warning: build argument {unused} was given but no ARG declares it"
                );
            }
        }
        Ok(image)
    }
}
