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
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use dockerfile::{Command, Dockerfile, Healthcheck, Instruction, Stage};
use model::{Digest, Reference};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{EngineError, Result};
use crate::Engine;
use registry::manifest::Platform;

/// Stopping a build from outside.
pub mod cancel;
/// COPY and ADD.
pub mod copy;
/// `.dockerignore`.
pub mod ignore;
/// RUN --mount.
pub mod mounts;

/// Options of `berth build`.
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
}

/// The image config key of an inline build cache.
const INLINE_CACHE: &str = "berth.cache.v0";

/// Parse a `--cache-from`/`--cache-to` value (`type=local,src|dest=DIR`).
pub fn parse_cache_spec(spec: &str, key: &str) -> std::result::Result<PathBuf, String> {
    let mut kind = "local".to_string();
    let mut dir = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = v.to_string(),
            Some((k, v)) if k == key => dir = Some(PathBuf::from(v)),
            Some(("mode", _)) | Some(("compression", _)) => {}
            _ => return Err(format!("{spec:?}: use type=local,{key}=DIR")),
        }
    }
    if kind != "local" {
        return Err(format!(
            "{spec:?}: type={kind} is not supported by berth (type=local; --cache-to type=inline and --cache-from REF for an inline cache)"
        ));
    }
    dir.ok_or_else(|| format!("{spec:?}: {key}= is required"))
}

/// A `--build-context` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory (for `COPY --from=name`).
    Dir(PathBuf),
    /// An image (for `FROM name` and `COPY --from=name`).
    Image(String),
}

impl NamedContext {
    /// Parse `name=value`.
    pub fn parse(spec: &str) -> std::result::Result<(String, NamedContext), String> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec:?}: use name=DIR or name=docker-image://REF"))?;
        if name.is_empty() {
            return Err(format!("{spec:?}: the name is empty"));
        }
        let ctx = if let Some(r) = value.strip_prefix("docker-image://") {
            NamedContext::Image(r.to_string())
        } else if value.contains("://") {
            return Err(format!(
                "{value:?}: berth takes a directory or docker-image://REF"
            ));
        } else {
            NamedContext::Dir(PathBuf::from(value))
        };
        Ok((name.to_ascii_lowercase(), ctx))
    }
}

/// Parse `--platform` / `FROM --platform` (`os/arch[/variant]`; only
/// linux images run here).
pub fn parse_platform(p: &str) -> Result<Platform> {
    let parsed = Platform::parse(p).map_err(|e| invalid("--platform", e))?;
    if parsed.os != "linux" {
        return Err(invalid(
            "--platform",
            format!("{p}: berth builds linux images only"),
        ));
    }
    Ok(parsed)
}

fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The platform an image config says it is for.
fn config_platform(config: &Value) -> Platform {
    Platform {
        os: config["os"].as_str().unwrap_or("linux").to_string(),
        architecture: config["architecture"].as_str().unwrap_or("").to_string(),
        variant: config["variant"].as_str().map(str::to_string),
    }
}

/// Where `-o` sends the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `type=local,dest=DIR`: the target stage's files.
    Local(PathBuf),
    /// `type=tar,dest=FILE|-`: the files as a tar.
    Tar(String),
    /// `type=docker|oci,dest=FILE|-`: an image archive for `load`, its
    /// layers compressed (`Some(false)` gzip, the default; `Some(true)`
    /// zstd; `None` as stored).
    Archive(store::ArchiveFormat, String, Option<bool>),
    /// `type=image[,name=REF][,push=true]`: the image in the store (the
    /// default), also named `names`, and pushed when `push` (its layers
    /// compressed with zstd when `zstd`, else gzip).
    Image {
        names: Vec<String>,
        push: bool,
        zstd: bool,
    },
}

impl Output {
    /// Parse a `-o` value: `type=…,dest=…`, or a plain path (local).
    pub fn parse(spec: &str) -> std::result::Result<Option<Output>, String> {
        if !spec.contains('=') {
            return Ok(Some(Output::Local(PathBuf::from(spec))));
        }
        let mut kind = String::new();
        let mut dest = None;
        let mut compression = Some(false);
        let mut names = Vec::new();
        let mut push = false;
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{spec:?}: use type=TYPE,dest=PATH"))?;
            match k.trim() {
                "type" => kind = v.trim().to_string(),
                "dest" => dest = Some(v.trim().to_string()),
                "compression" => {
                    compression = match v.trim() {
                        "gzip" => Some(false),
                        "zstd" => Some(true),
                        "uncompressed" => None,
                        other => {
                            return Err(format!(
                                "compression={other}: use gzip, zstd or uncompressed"
                            ))
                        }
                    }
                }
                "name" => names.push(v.trim().to_string()),
                "push" => {
                    push = match v.trim() {
                        "true" => true,
                        "false" => false,
                        other => return Err(format!("push={other}: use true or false")),
                    }
                }
                "oci-mediatypes" | "tar" | "compression-level" => {}
                other => return Err(format!("unknown output option {other:?}")),
            }
        }
        let need = || {
            dest.clone()
                .ok_or_else(|| format!("{spec:?}: dest= is required"))
        };
        Ok(match kind.as_str() {
            "image" | "" if names.is_empty() && !push => None,
            "image" | "" => Some(Output::Image {
                names,
                push,
                zstd: match compression {
                    Some(z) => z,
                    None if push => {
                        return Err("push=true: layers are pushed compressed (gzip or zstd)".into())
                    }
                    None => false,
                },
            }),
            "local" => Some(Output::Local(PathBuf::from(need()?))),
            "tar" => Some(Output::Tar(need()?)),
            "docker" => Some(Output::Archive(
                store::ArchiveFormat::Docker,
                need()?,
                compression,
            )),
            "oci" => Some(Output::Archive(
                store::ArchiveFormat::Oci,
                need()?,
                compression,
            )),
            other => {
                return Err(format!(
                    "output type {other:?}: use image, local, tar, docker or oci"
                ))
            }
        })
    }
}

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

/// `build -`: stdin is a context tar (plain, gzip or zstd) or a
/// Dockerfile alone. Makes the context in `dir` (an empty directory).
pub fn context_from_stdin(input: &[u8], dir: &std::path::Path) -> Result<()> {
    let is_tar = input.starts_with(&[0x1f, 0x8b])
        || input.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (input.len() >= 262 && &input[257..262] == b"ustar");
    if !is_tar {
        return std::fs::write(dir.join("Dockerfile"), input)
            .map_err(|e| EngineError::io("writing the Dockerfile from stdin", e));
    }
    let reader = store::layer::decompress(input)
        .map_err(|e| invalid("build context", format!("stdin: {e}")))?;
    let mut a = tar::Archive::new(Padded {
        inner: reader,
        read: 0,
        tail: None,
    });
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    // unpack_in refuses paths that leave `dir` (`..`, through symlinks).
    for e in a
        .entries()
        .map_err(|e| invalid("build context", format!("stdin: {e}")))?
    {
        let mut e = e.map_err(|e| invalid("build context", format!("stdin: {e}")))?;
        e.unpack_in(dir)
            .map_err(|e| invalid("build context", format!("stdin: {e}")))?;
    }
    Ok(())
}

/// A tar stream that may end early: the docker CLI (20.10, `-f` outside
/// the context) sends a context whose last entry is not padded and has no
/// end-of-archive blocks, which dockerd reads. At its end this reader
/// pads to the 512-byte block and adds the two zero blocks.
struct Padded<R> {
    inner: R,
    read: u64,
    /// Zero bytes still to give once `inner` has ended.
    tail: Option<u64>,
}

impl<R: std::io::Read> std::io::Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.tail.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.tail = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.tail.unwrap_or(0);
        let n = (left.min(buf.len() as u64)) as usize;
        buf[..n].fill(0);
        self.tail = Some(left - n as u64);
        Ok(n)
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

/// The context directory (canonical), the Dockerfile's path and the
/// parsed Dockerfile of a request.
fn load_dockerfile(req: &BuildRequest) -> Result<(PathBuf, PathBuf, Dockerfile)> {
    let context = req
        .context
        .canonicalize()
        .map_err(|e| invalid("build context", format!("{}: {e}", req.context.display())))?;
    if !context.is_dir() {
        return Err(invalid(
            "build context",
            format!("{} is not a directory", context.display()),
        ));
    }
    let df_path = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| context.join("Dockerfile"));
    let text = std::fs::read_to_string(&df_path)
        .map_err(|e| invalid("Dockerfile", format!("{}: {e}", df_path.display())))?;
    let df = dockerfile::parse(&text)
        .map_err(|e| invalid("Dockerfile", e.in_file(&df_path.display().to_string())))?;
    Ok((context, df_path, df))
}

/// The stage `--target` names (default: the last).
fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize> {
    match target {
        Some(t) => df.stage(t).map(|s| s.index).ok_or_else(|| {
            invalid(
                "--target",
                format!("no stage named {t:?} in the Dockerfile"),
            )
        }),
        None => Ok(df.stages.len() - 1),
    }
}

/// BuildKit's predefined platform ARGs: BUILD* is this machine, TARGET*
/// the platform the build is for.
fn platform_args(target: &Platform) -> Vec<(&'static str, String)> {
    let host = Platform::host();
    vec![
        ("BUILDPLATFORM", platform_string(&host)),
        ("BUILDOS", host.os.clone()),
        ("BUILDARCH", host.architecture.clone()),
        ("BUILDVARIANT", host.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM", platform_string(target)),
        ("TARGETOS", target.os.clone()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone().unwrap_or_default()),
    ]
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

/// Stages built at once, at most.
const MAX_PARALLEL: usize = 4;

/// A stage being built by a forked builder.
struct Child {
    stage: usize,
    pid: i32,
    output: Option<std::os::fd::OwnedFd>,
    result: Option<std::os::fd::OwnedFd>,
    pending: Vec<u8>,
    result_text: Vec<u8>,
}

/// An error as one line for the parent builder.
fn encode_error(e: &EngineError) -> String {
    match e {
        EngineError::BuildStep {
            step,
            command,
            code,
            tail,
        } => serde_json::json!({"step": step, "command": command, "code": code, "tail": tail})
            .to_string(),
        other => serde_json::json!({"message": other.to_string()}).to_string(),
    }
}

fn decode_error(s: &str) -> EngineError {
    let v: Value = serde_json::from_str(s).unwrap_or_else(|_| json!({"message": s}));
    if let Some(code) = v["code"].as_i64() {
        return EngineError::BuildStep {
            step: v["step"].as_str().unwrap_or_default().to_string(),
            command: v["command"].as_str().unwrap_or_default().to_string(),
            code: code as i32,
            tail: v["tail"].as_str().unwrap_or_default().to_string(),
        };
    }
    EngineError::Build(v["message"].as_str().unwrap_or(s).to_string())
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
        }
    }
}

impl Engine {
    /// `build --check`: the Dockerfile's findings, nothing built.
    pub fn check_dockerfile(&self, req: &BuildRequest) -> Result<Vec<dockerfile::lint::Warning>> {
        let (_, _, df) = load_dockerfile(req)?;
        let target = target_index(&df, req.target.as_deref())?;
        Ok(dockerfile::lint::lint(&df, target))
    }

    /// Build an image; returns its id. Progress goes to `out` as
    /// BuildKit's plain output does (`#N [stage i/n] INSTRUCTION`, the
    /// RUN output, `CACHED` or `DONE`).
    pub fn build(&self, req: &BuildRequest, out: &mut dyn Write) -> Result<Digest> {
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

impl Engine {
    /// `--cache-to type=local,dest=DIR`: the images of the steps this
    /// build used (an OCI layout archive, `cache.tar`) and their keys
    /// (`keys.json`).
    fn export_cache(&self, dir: &std::path::Path, touched: &[(String, Digest)]) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let mut images: Vec<String> = touched.iter().map(|(_, d)| d.to_string()).collect();
        images.sort();
        images.dedup();
        let tmp = dir.join(".cache.tar.tmp");
        {
            let f =
                std::fs::File::create(&tmp).map_err(|e| EngineError::io("writing the cache", e))?;
            let mut w = std::io::BufWriter::new(f);
            self.store()
                .save(&images, store::ArchiveFormat::Oci, &mut w)?;
            w.flush()
                .map_err(|e| EngineError::io("writing the cache", e))?;
        }
        std::fs::rename(&tmp, dir.join("cache.tar"))
            .map_err(|e| EngineError::io("writing the cache", e))?;
        let keys: BTreeMap<&str, String> = touched
            .iter()
            .map(|(k, d)| (k.as_str(), d.to_string()))
            .collect();
        std::fs::write(
            dir.join("keys.json"),
            serde_json::to_vec_pretty(&keys).unwrap_or_default(),
        )
        .map_err(|e| EngineError::io("writing the cache keys", e))?;
        Ok(())
    }

    /// `--cache-from REF`: the steps an inline cache in REF's config
    /// records become cache entries again: each an image of REF's first
    /// layers and the step's config.
    fn import_inline_cache(&self, r: &str, out: &mut dyn Write) -> Result<()> {
        let id = match self.store().resolve_image(r) {
            Ok(img) => img.id,
            Err(store::StoreError::NotFound { .. }) => {
                let reference: Reference = r
                    .parse()
                    .map_err(|e| invalid("--cache-from", format!("{r:?}: {e}")))?;
                let _ = writeln!(out, "importing cache from {reference}");
                match self.pull(&reference, &Default::default(), &|_| {}) {
                    Ok(o) => o.id,
                    Err(e) => {
                        // As BuildKit: a cache that cannot be had is a warning.
                        let _ = writeln!(out, "WARN: --cache-from {r}: {e}");
                        return Ok(());
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        let config: Value = serde_json::from_slice(&self.store().image_config_raw(&id)?)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))?;
        let Some(entries) = config[INLINE_CACHE].as_array() else {
            let _ = writeln!(
                out,
                "note: {r} has no inline build cache (build it with --cache-to type=inline)"
            );
            return Ok(());
        };
        for e in entries {
            let (Some(key), Some(n)) = (e["key"].as_str(), e["layers"].as_u64()) else {
                continue;
            };
            let step = self
                .store()
                .register_prefix(&id, n as usize, e["config"].clone())?;
            self.store().cache_put(key, &step)?;
        }
        Ok(())
    }

    /// `--cache-from type=local,src=DIR`: load its images and keys.
    fn import_cache(&self, dir: &std::path::Path, out: &mut dyn Write) -> Result<()> {
        let keys_path = dir.join("keys.json");
        let Ok(keys) = std::fs::read(&keys_path) else {
            let _ = writeln!(out, "note: no build cache in {}", dir.display());
            return Ok(());
        };
        let keys: BTreeMap<String, String> = serde_json::from_slice(&keys)
            .map_err(|e| invalid("--cache-from", format!("{}: {e}", keys_path.display())))?;
        let f = std::fs::File::open(dir.join("cache.tar"))
            .map_err(|e| invalid("--cache-from", format!("{}: {e}", dir.display())))?;
        self.store().load(std::io::BufReader::new(f))?;
        for (k, v) in keys {
            if let Ok(d) = v.parse::<Digest>() {
                if self.store().resolve_image(&d.to_string()).is_ok() {
                    self.store().cache_put(&k, &d)?;
                }
            }
        }
        Ok(())
    }

    /// `--platform a,b,…`: the build once per platform, written as one
    /// result: an OCI layout whose index names one image index of the
    /// platforms' images (`-o type=oci`), or a directory per platform
    /// (`-o type=local`, `DIR/linux_arm64/…`). The images are not tagged:
    /// the store keeps one image per name.
    pub fn build_platforms(
        &self,
        req: &BuildRequest,
        platforms: &[Platform],
        out: &mut dyn Write,
    ) -> Result<Vec<Digest>> {
        let output = match &req.output {
            Some(o @ (Output::Archive(store::ArchiveFormat::Oci, ..) | Output::Local(_))) => o,
            _ => {
                return Err(invalid(
                    "--platform",
                    "a build for several platforms needs -o type=oci,dest=FILE or -o type=local,dest=DIR (the image store and docker archives keep one platform per name)",
                ))
            }
        };
        let mut ids = Vec::new();
        for p in platforms {
            let _ = writeln!(out, "building for {}", platform_string(p));
            let mut one = req.clone();
            one.platform = Some(p.clone());
            one.output = None;
            one.tags = Vec::new();
            ids.push(self.build(&one, out)?);
        }
        match output {
            Output::Archive(_, dest, compress) => {
                let mut w: Box<dyn Write> = if dest == "-" {
                    Box::new(std::io::stdout())
                } else {
                    Box::new(std::io::BufWriter::new(
                        std::fs::File::create(dest)
                            .map_err(|e| EngineError::io(format!("creating {dest}"), e))?,
                    ))
                };
                self.store()
                    .save_platforms(&ids, &req.tags, &mut w, *compress)?;
                w.flush()
                    .map_err(|e| EngineError::io("writing the archive", e))?;
            }
            Output::Local(dir) => {
                for (p, id) in platforms.iter().zip(&ids) {
                    let sub = platform_string(p).replace('/', "_");
                    self.export_build(id, &Output::Local(dir.join(sub)), &[])?;
                }
            }
            Output::Tar(_) | Output::Image { .. } => unreachable!("refused above"),
        }
        Ok(ids)
    }

    /// `-o`: write the built image's files or an archive of it.
    fn export_build(&self, image: &Digest, out: &Output, tags: &[Reference]) -> Result<()> {
        let to_writer = |dest: &str| -> Result<Box<dyn Write>> {
            Ok(if dest == "-" {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(dest)
                        .map_err(|e| EngineError::io(format!("creating {dest}"), e))?,
                ))
            })
        };
        match out {
            // Named and pushed by the caller.
            Output::Image { .. } => {}
            Output::Archive(format, dest, compress) => {
                let names: Vec<String> = if tags.is_empty() {
                    vec![image.to_string()]
                } else {
                    tags.iter().map(|t| t.to_string()).collect()
                };
                let mut w = to_writer(dest)?;
                self.store().save_with(&names, *format, &mut w, *compress)?;
                w.flush()
                    .map_err(|e| EngineError::io("writing the archive", e))?;
            }
            Output::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
                let view = crate::rootfs::View {
                    lower: self.store().layer_dirs(image)?,
                    upper: None,
                };
                let dir = dir.clone();
                self.in_rootfs(&view, move |root| {
                    let dst = store::fsops::open_dir(&dir)?;
                    store::fsops::copy_contents(
                        root,
                        std::os::fd::AsFd::as_fd(&dst),
                        &store::fsops::CopyOptions {
                            owner: None,
                            overwrite: true,
                        },
                    )
                })?;
            }
            Output::Tar(dest) => {
                let view = crate::rootfs::View {
                    lower: self.store().layer_dirs(image)?,
                    upper: None,
                };
                // The helper (a forked process) writes the tar itself.
                let dest = dest.clone();
                self.in_rootfs(&view, move |root| {
                    if dest == "-" {
                        let out = std::io::stdout();
                        let mut lock = out.lock();
                        store::fsops::tar_contents(root, &mut lock)?;
                        lock.flush()
                    } else {
                        let f = std::fs::File::create(&dest)?;
                        let mut w = std::io::BufWriter::new(f);
                        store::fsops::tar_contents(root, &mut w)?;
                        w.flush()
                    }
                })?;
            }
        }
        Ok(())
    }
}

impl Builder<'_> {
    fn stat_cache_path(&self) -> PathBuf {
        Self::path_for(self.engine, &self.req.context)
    }

    /// The context's stat cache.
    pub(crate) fn stat_cache(&mut self) -> &mut copy::StatCache {
        self.stat_cache.get_or_insert_with(|| {
            copy::StatCache::load(&Self::path_for(self.engine, &self.req.context))
        })
    }

    fn path_for(engine: &Engine, context: &std::path::Path) -> PathBuf {
        let id = hex::encode(Sha256::digest(context.as_os_str().as_encoded_bytes()));
        engine
            .paths()
            .root
            .join("cache")
            .join("context")
            .join(format!("{id}.json"))
    }

    fn save_stat_cache(&mut self) {
        // A context unpacked from stdin lives in a temp dir: nothing to keep.
        if self
            .req
            .context
            .starts_with(self.engine.paths().root.join("tmp"))
        {
            return;
        }
        let path = self.stat_cache_path();
        if let Some(c) = self.stat_cache.as_mut() {
            c.save(&path);
        }
    }

    fn now(&self) -> String {
        let t: DateTime<Utc> = match self.epoch {
            Some(e) => DateTime::from_timestamp(e, 0).unwrap_or_else(Utc::now),
            None => Utc::now(),
        };
        t.to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// The stages the target needs, in an order that builds dependencies first.
    fn plan(&self) -> Result<Vec<usize>> {
        let target = match &self.req.target {
            Some(t) => self.df.stage(t).map(|s| s.index).ok_or_else(|| {
                invalid(
                    "--target",
                    format!("no stage named {t:?} in the Dockerfile"),
                )
            })?,
            None => self.df.stages.len() - 1,
        };
        let mut order = Vec::new();
        let mut state = vec![0u8; self.df.stages.len()];
        self.visit(target, &mut state, &mut order)?;
        Ok(order)
    }

    fn deps(&self, stage: &Stage) -> Vec<usize> {
        let mut d = Vec::new();
        let globals = self.global_env();
        let base = self
            .lexer
            .word(&stage.base, &|n| globals.get(n).cloned())
            .unwrap_or_default();
        if let Some(s) = self.df.stage(&base) {
            if s.index < stage.index {
                d.push(s.index);
            }
        }
        for ins in &stage.instructions {
            // Stages that COPY --from and RUN --mount=…,from= name.
            let froms: Vec<String> = match &ins.instruction {
                Instruction::Copy(c) => c.from.iter().cloned().collect(),
                Instruction::Run(r) => r
                    .mounts
                    .iter()
                    .filter_map(|m| mounts::parse(m).ok())
                    .filter_map(|m| m.from)
                    .collect(),
                _ => Vec::new(),
            };
            for f in froms {
                if let Some(s) = self.df.stage(&f) {
                    if s.index < stage.index {
                        d.push(s.index);
                    }
                }
            }
        }
        d
    }

    fn visit(&self, i: usize, state: &mut [u8], order: &mut Vec<usize>) -> Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                return Err(invalid(
                    "Dockerfile",
                    "the stages depend on each other in a circle",
                ))
            }
            _ => {}
        }
        state[i] = 1;
        for d in self.deps(&self.df.stages[i]) {
            self.visit(d, state, order)?;
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }

    /// Global ARGs (before the first FROM) with build args and the
    /// platform ARGs: what FROM lines expand with.
    /// The platform the build is for.
    fn target(&self) -> Platform {
        self.req.platform.clone().unwrap_or_else(Platform::host)
    }

    fn global_env(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = platform_args(&self.target())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (_, a) in &self.df.global_args {
            let v = match self.req.build_args.get(&a.name) {
                Some(v) => Some(v.clone()),
                None => a.default.as_ref().map(|d| {
                    let snapshot = env.clone();
                    self.lexer
                        .word(d, &|n| snapshot.get(n).cloned())
                        .unwrap_or_default()
                }),
            };
            if let Some(v) = v {
                env.insert(a.name.clone(), v);
            }
        }
        env
    }

    fn run(&mut self) -> Result<Digest> {
        let order = self.plan()?;
        let target = *order
            .last()
            .ok_or_else(|| invalid("Dockerfile", "nothing to build"))?;
        // Step numbers are fixed per stage (in plan order), so they do not
        // depend on which stage finishes first.
        let mut first_step = BTreeMap::new();
        let mut n = 0;
        for &i in &order {
            first_step.insert(i, n);
            n += self.df.stages[i].instructions.len() + 1;
        }
        let deps: BTreeMap<usize, Vec<usize>> = order
            .iter()
            .map(|&i| (i, self.deps(&self.df.stages[i])))
            .collect();
        let mut pending: Vec<usize> = order.clone();
        let mut running: Vec<Child> = Vec::new();
        let mut failure: Option<EngineError> = None;
        while !pending.is_empty() || !running.is_empty() {
            let ready: Vec<usize> = if failure.is_some() {
                Vec::new()
            } else {
                pending
                    .iter()
                    .copied()
                    .filter(|i| deps[i].iter().all(|d| self.built.contains_key(d)))
                    .collect()
            };
            if running.is_empty() && ready.len() == 1 {
                // One stage at a time: build it here, no process needed.
                let i = ready[0];
                pending.retain(|x| *x != i);
                self.step = first_step[&i];
                match self.build_stage(i) {
                    Ok(d) => {
                        self.built.insert(i, Built { image: d });
                    }
                    Err(e) => failure = Some(e),
                }
                continue;
            }
            for i in ready {
                if running.len() >= MAX_PARALLEL {
                    break;
                }
                pending.retain(|x| *x != i);
                running.push(self.fork_stage(i, first_step[&i])?);
            }
            if running.is_empty() {
                break;
            }
            self.pump(&mut running, &mut failure)?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let image = self
            .built
            .get(&target)
            .map(|b| b.image.clone())
            .ok_or_else(|| invalid("Dockerfile", "the target stage was not built"))?;
        let image = if self.req.inline_cache {
            self.embed_cache(&image)?
        } else {
            image
        };
        if !self.req.tags.is_empty() {
            for t in &self.req.tags {
                self.engine.store().tag(&image, t)?;
                let name = t.to_string();
                self.engine
                    .emit("image", "tag", &image.to_string(), &[("name", &name)]);
            }
        }
        Ok(image)
    }

    /// Build stage `i` in a forked copy of this process (independent
    /// stages run at once); its progress comes back on a pipe, its result
    /// as the last line: `ok <digest>` or `err <message>`.
    fn fork_stage(&mut self, i: usize, first_step: usize) -> Result<Child> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("creating a pipe", e))?;
        let (res_r, res_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("creating a pipe", e))?;
        let _ = self.out.flush();
        self.engine.close_store_for_fork();
        match sys::process::fork().map_err(|e| EngineError::io("forking a stage builder", e))? {
            sys::process::Forked::Child => {
                drop(r);
                drop(res_r);
                let out: &'static mut std::fs::File = Box::leak(Box::new(std::fs::File::from(w)));
                self.out = out;
                self.step = first_step;
                let line = match self.build_stage(i) {
                    Ok(d) => {
                        let keys: Vec<String> = self
                            .touched
                            .borrow()
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        format!("ok {d} {}", keys.join(","))
                    }
                    Err(e) => format!("err {}", encode_error(&e)),
                };
                self.save_stat_cache();
                let _ = self.out.flush();
                let _ = std::fs::File::from(res_w).write_all(line.as_bytes());
                sys::process::exit_now(0)
            }
            sys::process::Forked::Parent(pid) => {
                drop(w);
                drop(res_w);
                Ok(Child {
                    stage: i,
                    pid,
                    output: Some(r),
                    result: Some(res_r),
                    pending: Vec::new(),
                    result_text: Vec::new(),
                })
            }
        }
    }

    /// Record every child that has finished (both pipes closed); true if
    /// there was one.
    fn reap(&mut self, running: &mut Vec<Child>, failure: &mut Option<EngineError>) -> bool {
        let mut any = false;
        while let Some(n) = running
            .iter()
            .position(|c| c.output.is_none() && c.result.is_none())
        {
            any = true;
            let c = running.remove(n);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(c.pid), None);
            if !c.pending.is_empty() {
                let _ = self.out.write_all(&c.pending);
                let _ = writeln!(self.out);
            }
            let text = String::from_utf8_lossy(&c.result_text).into_owned();
            let ok = text.strip_prefix("ok ").map(|r| {
                let (d, keys) = r.split_once(' ').unwrap_or((r, ""));
                (d.parse::<Digest>().ok(), keys.to_string())
            });
            match ok {
                Some((Some(d), keys)) => {
                    self.built.insert(c.stage, Built { image: d });
                    for kv in keys.split(',').filter(|s| !s.is_empty()) {
                        if let Some((k, v)) = kv.split_once('=') {
                            if let Ok(v) = v.parse::<Digest>() {
                                self.touched.borrow_mut().push((k.to_string(), v));
                            }
                        }
                    }
                }
                _ => {
                    let e = decode_error(
                        text.strip_prefix("err ")
                            .unwrap_or("the stage builder process died without a result"),
                    );
                    failure.get_or_insert(e);
                }
            }
        }
        any
    }

    /// Copy the children's progress to our output line by line until one
    /// of them finishes; record its result.
    fn pump(&mut self, running: &mut Vec<Child>, failure: &mut Option<EngineError>) -> Result<()> {
        use std::os::fd::AsFd;
        loop {
            if self.reap(running, failure) {
                return Ok(());
            }
            let mut fds = Vec::new();
            let mut who = Vec::new();
            for (n, c) in running.iter().enumerate() {
                if let Some(o) = &c.output {
                    fds.push(nix::poll::PollFd::new(
                        o.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    ));
                    who.push((n, true));
                }
                if let Some(r) = &c.result {
                    fds.push(nix::poll::PollFd::new(
                        r.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    ));
                    who.push((n, false));
                }
            }
            if fds.is_empty() {
                break;
            }
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(EngineError::io("waiting for stage builders", e)),
            }
            let ready: Vec<(usize, bool)> = fds
                .iter()
                .zip(&who)
                .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, w)| *w)
                .collect();
            drop(fds);
            let mut buf = [0u8; 16 * 1024];
            for (n, is_output) in ready {
                let c = &mut running[n];
                let fd = if is_output {
                    &mut c.output
                } else {
                    &mut c.result
                };
                let Some(f) = fd.as_ref() else { continue };
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => *fd = None,
                    Ok(k) => {
                        if is_output {
                            c.pending.extend_from_slice(&buf[..k]);
                            while let Some(p) = c.pending.iter().position(|&b| b == b'\n') {
                                let line: Vec<u8> = c.pending.drain(..=p).collect();
                                let _ = self.out.write_all(&line);
                            }
                        } else {
                            c.result_text.extend_from_slice(&buf[..k]);
                        }
                    }
                }
            }
            // Children whose pipes are both closed are done: all of them
            // (several may finish in one round).
            if self.reap(running, failure) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn begin(&mut self, stage: &Stage, index: usize, count: usize, text: &str) -> (usize, Instant) {
        self.step += 1;
        let name = stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index));
        // A heredoc's body is not part of the step's line.
        let text = text.lines().next().unwrap_or("");
        let _ = writeln!(self.out, "#{} [{name} {index}/{count}] {text}", self.step);
        (self.step, Instant::now())
    }

    fn done(&mut self, step: usize, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        let _ = writeln!(self.out, "#{step} DONE {secs:.1}s");
    }

    fn cached(&mut self, step: usize) {
        let _ = writeln!(self.out, "#{step} CACHED");
    }

    fn base_state(&mut self, stage: &Stage) -> Result<StageState> {
        let globals = self.global_env();
        let base = self
            .lexer
            .word(&stage.base, &|n| globals.get(n).cloned())
            .map_err(|e| invalid("FROM", format!("line {}: {e}", stage.line)))?;
        if base.is_empty() {
            return Err(invalid(
                "FROM",
                format!("line {}: the image name is empty", stage.line),
            ));
        }
        let platform = match &stage.platform {
            Some(p) => {
                let globals = self.global_env();
                let p = self
                    .lexer
                    .word(p, &|n| globals.get(n).cloned())
                    .map_err(|e| invalid("FROM --platform", e.0))?;
                parse_platform(&p)?
            }
            None => self.target(),
        };
        // --build-context name=docker-image://REF replaces a FROM name.
        let base = match self.req.contexts.get(&base.to_ascii_lowercase()) {
            Some(NamedContext::Image(r)) => r.clone(),
            Some(NamedContext::Dir(d)) => {
                return Err(invalid(
                    "FROM",
                    format!(
                        "{base} is a directory build context ({}): FROM needs an image",
                        d.display()
                    ),
                ))
            }
            None => base,
        };
        let (image, config) = if base.eq_ignore_ascii_case("scratch") {
            let mut c = json!({"architecture": platform.architecture, "os": platform.os, "config": {}, "history": []});
            if let Some(v) = &platform.variant {
                c["variant"] = json!(v);
            }
            (None, c)
        } else if let Some(s) = self.df.stage(&base).filter(|s| s.index < stage.index) {
            let built = self
                .built
                .get(&s.index)
                .ok_or_else(|| invalid("FROM", format!("stage {base} was not built")))?
                .image
                .clone();
            let cfg = self.image_config(&built)?;
            (Some(built), cfg)
        } else {
            let local = if self.req.pull {
                Err(store::StoreError::NotFound {
                    kind: "image",
                    what: base.clone(),
                    hint: "",
                })
            } else {
                self.engine.store().resolve_image(&base)
            };
            let id = match local {
                Ok(img) => {
                    let have = config_platform(&self.image_config(&img.id)?);
                    if !platform.matches(&have) {
                        return Err(invalid(
                            "FROM",
                            format!(
                                "line {}: {base} is {}, the stage is for {}: pull it with --platform {} (or import it with --platform)",
                                stage.line,
                                platform_string(&have),
                                platform_string(&platform),
                                platform_string(&platform),
                            ),
                        ));
                    }
                    img.id
                }
                Err(store::StoreError::NotFound { .. }) => {
                    let r: Reference = base.parse().map_err(|e| {
                        invalid("FROM", format!("line {}: {base:?}: {e}", stage.line))
                    })?;
                    let _ = writeln!(self.out, "pulling {r}");
                    self.engine
                        .pull(
                            &r,
                            &registry::pull::PullOptions {
                                platform: Some(platform.clone()),
                                ..Default::default()
                            },
                            &|_| {},
                        )
                        .map_err(|e| {
                            invalid(
                                "FROM",
                                format!(
                                    "line {}: {base} is not in the store and pulling it failed: {e} (import, load or pull it first)",
                                    stage.line
                                ),
                            )
                        })?
                        .id
                }
                Err(e) => return Err(e.into()),
            };
            let cfg = self.image_config(&id)?;
            (Some(id), cfg)
        };
        // Keyed by what the base is made of — its layers and its runtime
        // config, not its id (which changes with history times): a stage
        // rebuilt with the same files and settings keeps the steps of the
        // stages built FROM it cached.
        let key = match &image {
            None => key_of(&["FROM", "scratch", &platform_string(&platform)]),
            Some(i) => {
                let diffs: Vec<String> = self
                    .engine
                    .store()
                    .resolve_image(&i.to_string())?
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect();
                let mut runtime = config.clone();
                if let Some(o) = runtime.as_object_mut() {
                    o.remove("history");
                    o.remove("created");
                    o.remove("rootfs");
                }
                key_of(&["FROM", &diffs.join(","), &runtime.to_string()])
            }
        };
        let layer_dirs = match &image {
            Some(i) => {
                let mut d = self.engine.store().layer_dirs(i)?;
                d.reverse();
                d
            }
            None => Vec::new(),
        };
        let mut config = config;
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        if !config["history"].is_array() {
            config["history"] = json!([]);
        }
        // Not part of a new image.
        if let Some(o) = config.as_object_mut() {
            o.remove("container_config");
            o.remove("container");
        }
        let mut shell = json_strings(&config["config"]["Shell"]);
        if shell.is_empty() {
            shell = vec!["/bin/sh".to_string(), "-c".to_string()];
        }
        Ok(StageState {
            platform,
            image,
            config,
            key,
            dirty: false,
            args: BTreeMap::new(),
            shell,
            cmd_set: false,
            layer_dirs,
            pending: None,
        })
    }

    fn image_config(&self, id: &Digest) -> Result<Value> {
        let raw = self.engine.store().image_config_raw(id)?;
        serde_json::from_slice(&raw)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))
    }

    fn history(&self, st: &mut StageState, created_by: &str, empty: bool) {
        let mut h = json!({
            "created": self.now(),
            "created_by": created_by,
            "comment": "buildkit.dockerfile.v0",
        });
        if empty {
            h["empty_layer"] = json!(true);
        }
        if let Some(a) = st.config["history"].as_array_mut() {
            a.push(h);
        }
    }

    /// Build a stage.
    fn build_stage(&mut self, index: usize) -> Result<Digest> {
        let stage = self.df.stages[index].clone();
        self.current_stage = Some(stage.name.clone().unwrap_or_else(|| index.to_string()));
        let count = stage.instructions.len() + 1;
        let (step, started) = self.begin(&stage, 1, count, &stage.original);
        let mut st = self.base_state(&stage)?;
        self.done(step, started);
        // ONBUILD triggers of the base run first, then leave the config.
        let triggers: Vec<String> = json_strings(&st.config["config"]["OnBuild"]);
        if !triggers.is_empty() {
            st.config["config"]["OnBuild"] = Value::Null;
            st.dirty = true;
            for t in triggers {
                let ins = dockerfile::parse_line(&t, self.df.directives.escape).map_err(|e| {
                    invalid(
                        "ONBUILD trigger",
                        format!("{t:?} of the base image: {}", e.message),
                    )
                })?;
                if matches!(ins, Instruction::Onbuild(_) | Instruction::From(_)) {
                    return Err(invalid("ONBUILD trigger", format!("{t:?} is not allowed")));
                }
                self.step += 1;
                let step = self.step;
                let _ = writeln!(
                    self.out,
                    "#{step} [{} ONBUILD] {t}",
                    stage
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("stage-{}", stage.index))
                );
                let started = Instant::now();
                let cached = self
                    .instruction(&mut st, &ins, step)
                    .map_err(|e| invalid("ONBUILD trigger", format!("{t}: {e}")))?;
                if cached {
                    self.cached(step);
                } else {
                    self.done(step, started);
                }
            }
        }
        for (n, ins) in stage.instructions.iter().enumerate() {
            self.req.cancel.check()?;
            self.line = ins.line;
            let (step, started) = self.begin(&stage, n + 2, count, &ins.original);
            let where_ = format!(
                "[{} {}/{count}] line {}",
                stage
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("stage-{}", stage.index)),
                n + 2,
                ins.line
            );
            let at = |e: EngineError| -> EngineError {
                match e {
                    EngineError::BuildStep {
                        command,
                        code,
                        tail,
                        ..
                    } => EngineError::BuildStep {
                        step: where_.clone(),
                        command,
                        code,
                        tail,
                    },
                    e => invalid(
                        "Dockerfile",
                        format!("line {}: {}: {e}", ins.line, ins.instruction.keyword()),
                    ),
                }
            };
            let cached = self
                .instruction(&mut st, &ins.instruction, step)
                .map_err(at)?;
            if cached {
                self.cached(step);
            } else {
                self.done(step, started);
            }
        }
        self.settle(&mut st)?;
        // The stage's image: the last layer's, or a new one for config changes.
        if st.dirty || st.image.is_none() {
            if let Some(id) = self.lookup(&st.key) {
                return Ok(id);
            }
            let id = self.register(&st, Vec::new())?;
            return Ok(id);
        }
        st.image
            .clone()
            .ok_or_else(|| invalid("Dockerfile", "the stage made no image"))
    }

    /// `--cache-to type=inline`: the result again, its config recording
    /// the steps this build used whose images are made of the result's
    /// first layers (their key, how many layers, their config).
    fn embed_cache(&self, image: &Digest) -> Result<Digest> {
        let store = self.engine.store();
        let top = store.resolve_image(&image.to_string())?;
        let mut entries = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (key, id) in self.touched.borrow().iter() {
            if !seen.insert(key.clone()) {
                continue;
            }
            let Ok(step) = store.resolve_image(&id.to_string()) else {
                continue;
            };
            if !top.diff_ids.starts_with(&step.diff_ids) {
                continue;
            }
            let mut config: Value =
                serde_json::from_slice(&store.image_config_raw(id)?).map_err(|e| {
                    EngineError::io("reading an image config", std::io::Error::other(e))
                })?;
            if let Some(o) = config.as_object_mut() {
                o.remove("rootfs");
                o.remove(INLINE_CACHE);
            }
            entries.push(json!({"key": key, "layers": step.diff_ids.len(), "config": config}));
        }
        let mut config: Value = serde_json::from_slice(&store.image_config_raw(image)?)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))?;
        config[INLINE_CACHE] = json!(entries);
        let n = top.diff_ids.len();
        drop(store);
        Ok(self.engine.store().register_prefix(image, n, config)?)
    }

    fn lookup(&self, key: &str) -> Option<Digest> {
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
    fn register(&self, st: &StageState, layers: Vec<store::IngestedLayer>) -> Result<Digest> {
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
    fn adopt(&self, st: &mut StageState, id: Digest) -> Result<()> {
        st.config = self.image_config(&id)?;
        let mut d = self.engine.store().layer_dirs(&id)?;
        d.reverse();
        st.layer_dirs = d;
        st.image = Some(id);
        st.dirty = false;
        Ok(())
    }

    fn expand(&self, st: &StageState, word: &str) -> Result<String> {
        Ok(self
            .expand_split(st, word, false)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    fn expand_words(&self, st: &StageState, word: &str) -> Result<Vec<String>> {
        self.expand_split(st, word, true)
    }

    /// Expand, remembering the variables nothing defined (`UndefinedVar`).
    fn expand_split(&self, st: &StageState, word: &str, split: bool) -> Result<Vec<String>> {
        let e = self
            .lexer
            .expand(word, &|n| st.lookup(n), split)
            .map_err(|e| invalid("expansion", e.0))?;
        let mut u = self.undefined.borrow_mut();
        for name in e.unset {
            u.insert((self.line, name));
        }
        Ok(e.words)
    }

    /// Apply one instruction; true if its result came from the cache.
    fn instruction(&mut self, st: &mut StageState, ins: &Instruction, step: usize) -> Result<bool> {
        // A RUN runs over a layer still being digested; anything else
        // waits for it.
        if !matches!(ins, Instruction::Run(_)) {
            self.settle(st)?;
        }
        match ins {
            Instruction::Env(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    st.set_env(&k, &v);
                    shown.push(format!("{k}={v}"));
                }
                self.config_step(st, &format!("ENV {}", shown.join(" ")));
            }
            Instruction::Arg(decls) => {
                for a in decls {
                    let value = match self.req.build_args.get(&a.name) {
                        Some(v) => Some(v.clone()),
                        None => match &a.default {
                            Some(d) => Some(self.expand(st, d)?),
                            // Re-declared global ARG: its global value.
                            None => self.global_env().get(&a.name).cloned(),
                        },
                    };
                    self.used_args.insert(a.name.clone());
                    st.args.insert(a.name.clone(), value.clone());
                    st.key = key_of(&[&st.key, "ARG", &a.name, value.as_deref().unwrap_or("")]);
                }
            }
            Instruction::Label(pairs) => {
                let mut shown = Vec::new();
                for (k, v) in pairs {
                    let k = self.expand(st, k)?;
                    let v = self.expand(st, v)?;
                    st.config["config"]["Labels"][&k] = json!(v);
                    shown.push(format!("{k}={v}"));
                }
                self.config_step(st, &format!("LABEL {}", shown.join(" ")));
            }
            Instruction::Expose(words) => {
                let mut shown = Vec::new();
                for w in words {
                    for p in self.expand_words(st, w)? {
                        let p = if p.contains('/') {
                            p
                        } else {
                            format!("{p}/tcp")
                        };
                        st.config["config"]["ExposedPorts"][&p] = json!({});
                        shown.push(p);
                    }
                }
                self.config_step(st, &format!("EXPOSE map[{}]", shown.join(" ")));
            }
            Instruction::Workdir(w) => {
                let w = self.expand(st, w)?;
                let path = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{}", st.workdir().trim_end_matches('/'), w)
                };
                let path = format!("/{}", ignore::clean(&path));
                st.config["config"]["WorkingDir"] = json!(path);
                if copy::lookup(&st.layer_dirs, &path).is_none() {
                    // Created as a layer, as BuildKit does.
                    return self.layer_step(st, &format!("WORKDIR {path}"), "", |b, st| {
                        b.mkdir_layer(st, &path)
                    });
                }
                self.config_step(st, &format!("WORKDIR {path}"));
            }
            Instruction::User(u) => {
                let u = self.expand(st, u)?;
                st.config["config"]["User"] = json!(u);
                self.config_step(st, &format!("USER {u}"));
            }
            Instruction::Volume(vs) => {
                let mut shown = Vec::new();
                for v in vs {
                    for p in self.expand_words(st, v)? {
                        st.config["config"]["Volumes"][&p] = json!({});
                        shown.push(p);
                    }
                }
                self.config_step(st, &format!("VOLUME [{}]", shown.join(" ")));
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(st, s)?;
                s.parse::<model::Signal>()
                    .map_err(|_| invalid("STOPSIGNAL", format!("{s:?} is not a signal")))?;
                st.config["config"]["StopSignal"] = json!(s);
                self.config_step(st, &format!("STOPSIGNAL {s}"));
            }
            Instruction::Healthcheck(h) => {
                let (v, text) = match h {
                    Healthcheck::None => {
                        (json!({"Test": ["NONE"]}), "HEALTHCHECK NONE".to_string())
                    }
                    Healthcheck::Check {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => {
                        let mut v = json!({"Test": test});
                        for (k, n) in [
                            ("Interval", interval),
                            ("Timeout", timeout),
                            ("StartPeriod", start_period),
                            ("StartInterval", start_interval),
                            ("Retries", retries),
                        ] {
                            if *n != 0 {
                                v[k] = json!(n);
                            }
                        }
                        (v, format!("HEALTHCHECK &{{{:?}}}", test))
                    }
                };
                st.config["config"]["Healthcheck"] = v;
                self.config_step(st, &text);
            }
            Instruction::Shell(s) => {
                st.shell = s.clone();
                st.config["config"]["Shell"] = json!(s);
                self.config_step(st, &format!("SHELL {}", json!(s)));
            }
            Instruction::Cmd(c) => {
                let v = self.command(st, c);
                st.config["config"]["Cmd"] = json!(v);
                st.cmd_set = true;
                self.config_step(st, &format!("CMD {}", json!(v)));
            }
            Instruction::Entrypoint(c) => {
                let v = self.command(st, c);
                st.config["config"]["Entrypoint"] = json!(v);
                if !st.cmd_set {
                    // Docker: an ENTRYPOINT resets a CMD inherited from the base.
                    st.config["config"]["Cmd"] = Value::Null;
                }
                self.config_step(st, &format!("ENTRYPOINT {}", json!(v)));
            }
            Instruction::Maintainer(m) => {
                st.config["author"] = json!(m);
                self.config_step(st, &format!("MAINTAINER {m}"));
            }
            Instruction::Onbuild(t) => {
                let mut v = st.config["config"]["OnBuild"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                v.push(json!(t));
                st.config["config"]["OnBuild"] = json!(v);
                self.config_step(st, &format!("ONBUILD {t}"));
            }
            Instruction::Run(r) => return self.run_step(st, r, step),
            Instruction::Copy(c) => return self.copy_step(st, c, step),
            Instruction::From(_) => {
                return Err(invalid("FROM", "a FROM inside a stage"));
            }
        }
        Ok(false)
    }

    fn command(&self, st: &StageState, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = st.shell.clone();
                v.push(s.clone());
                v
            }
        }
    }

    /// A step that only changes the config.
    fn config_step(&self, st: &mut StageState, created_by: &str) {
        st.key = key_of(&[&st.key, created_by]);
        self.history(st, created_by, true);
        st.dirty = true;
    }

    /// A step that makes a layer: looked up in the cache by its key, else
    /// `make` writes the layer (a tar stream ingested into the store).
    fn layer_step(
        &mut self,
        st: &mut StageState,
        created_by: &str,
        key_extra: &str,
        make: impl FnOnce(&mut Self, &mut StageState) -> Result<NewLayer>,
    ) -> Result<bool> {
        let prev_key = st.key.clone();
        st.key = key_of(&[&st.key, created_by, key_extra]);
        if let Some(id) = self.lookup(&st.key) {
            self.settle(st)?;
            self.adopt(st, id)?;
            return Ok(true);
        }
        let new = make(self, st)?;
        // A RUN over a pending layer: that layer's step comes first.
        self.settle(st)?;
        self.finish_layer_step(st, new, created_by, prev_key)?;
        Ok(false)
    }

    fn mkdir_layer(&self, st: &StageState, path: &str) -> Result<NewLayer> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut missing = Vec::new();
        let mut cur = String::new();
        for c in ignore::clean(path).split('/') {
            cur = if cur.is_empty() {
                c.to_string()
            } else {
                format!("{cur}/{c}")
            };
            if copy::lookup(&st.layer_dirs, &cur).is_none() {
                missing.push(cur.clone());
            }
        }
        for m in missing {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_mtime(self.epoch.unwrap_or(0).max(0) as u64);
            h.set_size(0);
            tar.append_data(&mut h, format!("{m}/"), std::io::empty())
                .map_err(|e| EngineError::io("writing a layer", e))?;
        }
        let bytes = tar
            .into_inner()
            .map_err(|e| EngineError::io("writing a layer", e))?;
        NewLayer::unpack(self.engine, "build-layer", &bytes[..])
    }
}

mod cache;
mod layers;
mod plan;
mod steps;

pub use steps::is_git_url;

/// A git repository as a build context (`URL[#ref[:dir]]`, as `docker
/// build`): cloned and checked out in a work dir; the context is `dir` of
/// the checkout, without `.git`. Returns the work dir (removed on drop)
/// and the context.
pub fn git_context(engine: &Engine, url: &str) -> Result<(store::TmpDir, PathBuf)> {
    let (tmp, checkout, _) = steps::git_checkout(&engine.store(), url, "build context")?;
    let _ = std::fs::remove_dir_all(checkout.join(".git"));
    let sub = url
        .split_once('#')
        .and_then(|(_, f)| f.split_once(':'))
        .map(|(_, d)| d.trim_matches('/'))
        .unwrap_or("");
    if sub.split('/').any(|c| c == "..") {
        return Err(invalid(
            "build context",
            format!("{url}: the subdirectory {sub:?} leaves the repository"),
        ));
    }
    let dir = if sub.is_empty() {
        checkout
    } else {
        checkout.join(sub)
    };
    // A link in the repository must not take the context outside it.
    let real = dir
        .canonicalize()
        .ok()
        .filter(|d| d.starts_with(tmp.path()));
    match real {
        Some(d) if d.is_dir() => Ok((tmp, d)),
        _ => Err(invalid(
            "build context",
            format!("{url}: no directory {sub:?} in the repository"),
        )),
    }
}

use layers::{NewLayer, Pending};
