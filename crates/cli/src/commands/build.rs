//! `build` and `builder prune`.
use std::collections::BTreeMap;
use std::io::Write;

use clap::Args;
use engine::Engine;

use crate::format;
use crate::Failure;

fn bad(what: &str, reason: impl std::fmt::Display) -> Failure {
    Failure::msg(125, format!("invalid {what}: {reason}"))
}

/// `build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be repeated.
    #[arg(short = 't', long = "tag")]
    tag: Vec<String>,
    /// The Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Build-time variables (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long)]
    target: Option<String>,
    /// Skip the image policy (policy.toml) for the FROM images; logged as an event.
    #[arg(long)]
    disable_policy: bool,
    /// Do not use the cache.
    #[arg(long = "no-cache")]
    no_cache: bool,
    /// Set metadata on the image (KEY=VALUE).
    #[arg(long = "label")]
    label: Vec<String>,
    /// Network for RUN steps: default, none, host.
    #[arg(long)]
    network: Option<String>,
    /// Grant the Dockerfile an entitlement: network.host (RUN --network=host), security.insecure.
    #[arg(long)]
    allow: Vec<String>,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Only check the Dockerfile (lint rules, BuildKit's report); exit 1 if anything is found.
    #[arg(long)]
    check: bool,
    /// Write the image id to this file.
    #[arg(long)]
    iidfile: Option<String>,
    /// A secret for RUN --mount=type=secret: id=NAME,src=FILE or id=NAME,env=VAR.
    #[arg(long)]
    secret: Vec<String>,
    /// More contexts: name=DIR (for COPY --from=name) or name=docker-image://REF.
    #[arg(long = "build-context")]
    build_context: Vec<String>,
    /// Stages to build without the cache.
    #[arg(long = "no-cache-filter", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Pull FROM images even when they are in the store (docker's boolean
    /// flag: `--pull`, `--pull=true`, `--pull=false`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pull: bool,
    /// Push the image (its -t names) once built: -o type=image,push=true.
    #[arg(long)]
    push: bool,
    /// Import a build cache: type=local,src=DIR, or an image built with
    /// an inline cache (REF or type=registry,ref=REF).
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// Export the build cache: type=local,dest=DIR, or type=inline (into
    /// the image's config).
    #[arg(long = "cache-to")]
    cache_to: Option<String>,
    /// Target platform, os/arch[/variant] (default: this machine's). A
    /// RUN step for another architecture needs the host's binfmt_misc
    /// emulation (qemu-user-static).
    #[arg(long)]
    platform: Option<String>,
    /// Output: type=local,dest=DIR | type=tar,dest=FILE | type=docker|oci,dest=FILE
    /// (dest=- for stdout) | a directory; default: the image in the store.
    #[arg(short = 'o', long = "output")]
    output: Option<String>,
    /// Attach an SPDX 2.3 SBOM to the image as an OCI referrer (docker
    /// buildx's flag: `--sbom`, `--sbom=true|false`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    sbom: bool,
    /// Attach SLSA provenance (an in-toto statement) as an OCI referrer:
    /// `--provenance` (mode=min), `=true|false`, `=mode=min|max`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_name = "true|false|mode=min|max")]
    provenance: Option<String>,
    /// Progress output: auto, plain, tty (berth prints plain lines).
    #[arg(long, default_value = "auto")]
    progress: String,
    /// The build context directory.
    path: String,
}

fn pairs(
    flag: &str,
    items: &[String],
    from_env: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut m = BTreeMap::new();
    for i in items {
        match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                m.insert(k.to_string(), v.to_string());
            }
            None if from_env && !i.is_empty() => {
                if let Ok(v) = std::env::var(i) {
                    m.insert(i.clone(), v);
                }
            }
            _ => return Err(bad(flag, format!("{i:?}: use KEY=VALUE"))),
        }
    }
    Ok(m)
}

/// `--provenance` as buildx takes it: `true` (mode=min, buildx's
/// default), `false`, or `mode=min|max` (other `key=value` options of
/// buildx are refused).
fn provenance_mode(v: &str) -> Result<Option<engine::build::ProvenanceMode>, Failure> {
    match v {
        "true" | "1" => return Ok(Some(Default::default())),
        "false" | "0" => return Ok(None),
        _ => {}
    }
    let mut mode = Default::default();
    for part in v.split(',') {
        match part.split_once('=') {
            Some(("mode", m)) => mode = m.parse().map_err(|e| bad("--provenance", e))?,
            _ => {
                return Err(bad(
                    "--provenance",
                    format!("{part:?}: use true, false, mode=min or mode=max"),
                ))
            }
        }
    }
    Ok(Some(mode))
}

/// `--cache-from REF` or `type=registry,ref=REF`: an image to take an
/// inline cache from.
fn cache_image(spec: &str) -> Option<String> {
    if !spec.contains('=') {
        return Some(spec.to_string());
    }
    let mut kind = None;
    let mut reference = None;
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v),
            Some(("ref", v)) => reference = Some(v.to_string()),
            _ => {}
        }
    }
    (kind == Some("registry")).then_some(reference).flatten()
}

/// `--cache-to type=inline`.
fn is_inline(spec: &str) -> bool {
    spec.split(',').any(|p| p == "type=inline")
}

/// `build`.
pub fn build(engine: &Engine, a: BuildArgs) -> Result<(), Failure> {
    if a.disable_policy {
        engine.disable_policy("build", &a.path);
    }
    if !matches!(a.progress.as_str(), "auto" | "plain" | "tty" | "quiet") {
        return Err(bad(
            "--progress",
            format!("{:?}: use auto, plain or tty", a.progress),
        ));
    }
    let git = engine::build::is_git_url(&a.path);
    if !git
        && a.path.contains("://")
        && !(a.path.starts_with("http://") || a.path.starts_with("https://"))
    {
        return Err(bad(
            "build context",
            "give a directory, - (stdin), a git repository (URL ending in .git, git://, git@) or an http(s) URL of a tarball",
        ));
    }
    // `-`: a context tar or a Dockerfile on stdin; `-f -`: the Dockerfile.
    let mut _work = None;
    let mut context_path = a.path.clone();
    let mut dockerfile_override = None;
    if git {
        let (tmp, dir) = engine::build::git_context(engine, &a.path)?;
        context_path = dir.to_string_lossy().into_owned();
        _work = Some(tmp);
    } else if a.path.starts_with("http://") || a.path.starts_with("https://") {
        // A tarball (or a Dockerfile) at a URL, as `docker build URL`.
        let mut body = Vec::new();
        engine
            .fetch_url(&a.path, &mut body, 2 << 30)
            .map_err(|e| bad("build context", e))?;
        let tmp = engine.tmp_dir("build-url")?;
        let dir = tmp.path().join("context");
        std::fs::create_dir(&dir)?;
        engine::build::context_from_stdin(&body, &dir)?;
        context_path = dir.to_string_lossy().into_owned();
        _work = Some(tmp);
    }
    if a.path == "-" || a.file.as_deref() == Some("-") {
        if a.path == "-" && a.file.as_deref() == Some("-") {
            return Err(bad(
                "-f",
                "stdin cannot be both the context and the Dockerfile",
            ));
        }
        let mut input = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut input)?;
        let tmp = engine.tmp_dir("build-stdin")?;
        let dir = tmp.path().join("context");
        std::fs::create_dir(&dir)?;
        if a.path == "-" {
            engine::build::context_from_stdin(&input, &dir)?;
            context_path = dir.to_string_lossy().into_owned();
        } else {
            let f = tmp.path().join("Dockerfile");
            std::fs::write(&f, &input)?;
            dockerfile_override = Some(f);
        }
        _work = Some(tmp);
    }
    let mut tags = Vec::new();
    for t in &a.tag {
        let r: model::Reference = t.parse().map_err(|e| bad("tag", format!("{t:?}: {e}")))?;
        tags.push(r);
    }
    let mut req = engine::build::BuildRequest {
        context: context_path.clone().into(),
        dockerfile: dockerfile_override.or_else(|| {
            a.file.as_ref().map(|f| {
                let p = std::path::PathBuf::from(f);
                if p.is_absolute() || std::path::Path::new(f).exists() {
                    p
                } else {
                    std::path::Path::new(&context_path).join(f)
                }
            })
        }),
        tags,
        build_args: pairs("--build-arg", &a.build_arg, true)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels: pairs("--label", &a.label, false)?,
        network: a.network.clone(),
        allow: a
            .allow
            .iter()
            .flat_map(|v| v.split(','))
            .map(|e| e.parse().map_err(|why| bad("--allow", why)))
            .collect::<Result<_, _>>()?,
        secrets: {
            let mut m = std::collections::BTreeMap::new();
            for s in &a.secret {
                let (id, v) =
                    engine::build::mounts::parse_secret(s).map_err(|e| bad("--secret", e))?;
                m.insert(id, v);
            }
            engine::build::Secrets(m)
        },
        contexts: {
            let mut m = std::collections::BTreeMap::new();
            for c in &a.build_context {
                let (k, v) =
                    engine::build::NamedContext::parse(c).map_err(|e| bad("--build-context", e))?;
                m.insert(k, v);
            }
            m
        },
        no_cache_stages: a.no_cache_filter.clone(),
        pull: a.pull,
        cache_from: a
            .cache_from
            .iter()
            .filter(|s| cache_image(s).is_none())
            .map(|s| engine::build::parse_cache_spec(s, "src"))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("--cache-from", e))?,
        cache_from_images: a.cache_from.iter().filter_map(|s| cache_image(s)).collect(),
        cache_to: a
            .cache_to
            .as_deref()
            .filter(|s| !is_inline(s))
            .map(|s| engine::build::parse_cache_spec(s, "dest"))
            .transpose()
            .map_err(|e| bad("--cache-to", e))?,
        inline_cache: a.cache_to.as_deref().is_some_and(is_inline),
        output: match &a.output {
            Some(o) => engine::build::Output::parse(o).map_err(|e| bad("--output", e))?,
            None => None,
        },
        platform: None,
        cancel: Default::default(),
        step_images: false,
        attest: engine::build::Attestations {
            sbom: a.sbom,
            provenance: match a.provenance.as_deref() {
                None => None,
                Some(p) => provenance_mode(p)?,
            },
        },
    };
    // `-o type=image,name=…,push=true` and `--push`: more names, and a
    // push of every name once built.
    let mut push = a.push.then_some(false);
    if let Some(engine::build::Output::Image {
        names,
        push: p,
        zstd,
    }) = req
        .output
        .take_if(|o| matches!(o, engine::build::Output::Image { .. }))
    {
        for n in names {
            req.tags.push(
                n.parse()
                    .map_err(|e| bad("--output", format!("name={n:?}: {e}")))?,
            );
        }
        if p {
            push = Some(zstd);
        }
    }
    if push.is_some() && req.tags.is_empty() {
        return Err(bad(
            "--push",
            "nothing to push to: name the image with -t or -o type=image,name=REF",
        ));
    }
    // `--platform a,b`: one build per platform.
    let mut platforms = Vec::new();
    for p in a.platform.iter().flat_map(|p| p.split(',')) {
        platforms.push(engine::build::parse_platform(p.trim())?);
    }
    if platforms.len() == 1 {
        req.platform = platforms.pop();
    }
    // With the result on stdout, progress stays on stderr and no id is printed.
    let to_stdout = matches!(
        &req.output,
        Some(engine::build::Output::Tar(d)) | Some(engine::build::Output::Archive(_, d, _)) if d == "-"
    );
    if a.check {
        // BuildKit's report; `docker build --check` exits 1 on a finding.
        let (warnings, report) = engine.check_dockerfile(&req)?;
        print!("{report}");
        if warnings.is_empty() {
            return Ok(());
        }
        return Err(Failure::silent(1));
    }
    let tty = a.progress == "tty"
        || (a.progress == "auto" && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let mut sink = std::io::sink();
    let stderr = std::io::stderr();
    // The live view draws from its own process: the builder forks and
    // must stay single-threaded.
    let mut view = if tty && !a.quiet {
        crate::progress::TtyView::start()
    } else {
        None
    };
    let mut err = stderr.lock();
    let out: &mut dyn Write = match (&mut view, a.quiet) {
        (Some(v), _) => &mut v.writer,
        (None, true) => &mut sink,
        (None, false) => &mut err,
    };
    let started = std::time::Instant::now();
    let built = if platforms.len() > 1 {
        engine
            .build_platforms(&req, &platforms, out)
            .map(|ids| ids[0].clone())
    } else {
        engine.build(&req, out)
    };
    if let Some(v) = view {
        v.finish();
    }
    let id = built?;
    let out: &mut dyn Write = if a.quiet { &mut sink } else { &mut err };
    if tty {
        let _ = writeln!(
            out,
            "[+] Building {:.1}s FINISHED",
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, id.to_string()).map_err(|e| bad("--iidfile", format!("{f}: {e}")))?;
    }
    if platforms.len() > 1 {
        // Nothing is tagged: the result is the archive or the directories.
        let names: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "exported {}", names.join(", "));
    } else if a.quiet && !to_stdout {
        println!("{id}");
    } else {
        let _ = writeln!(out, "writing image {id} done");
        for t in &req.tags {
            let _ = writeln!(out, "naming to {t} done");
        }
    }
    if let Some(zstd) = push {
        let opts = engine::distribution::PushOptions {
            compression: if zstd {
                engine::distribution::Compression::Zstd
            } else {
                engine::distribution::Compression::Gzip
            },
            ..Default::default()
        };
        for t in &req.tags {
            let _ = writeln!(out, "pushing {t}");
            let pushed = engine
                .push(t, &opts, &|_| {})
                .map_err(crate::commands::distribution::registry_failure)?;
            let _ = writeln!(
                out,
                "pushed {t}: digest: {} size: {}",
                pushed.digest, pushed.size
            );
        }
    }
    Ok(())
}

/// `builder` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum BuilderCommand {
    /// Build an image (same as `berth build`).
    Build(Box<BuildArgs>),
    /// Remove the build cache.
    Prune(PruneArgs),
}

/// `builder prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all the cache (berth's cache has no shared parts to keep).
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not ask.
    #[arg(short = 'f', long)]
    force: bool,
    /// Keep this much cache (e.g. 1g), removing the oldest first.
    #[arg(long = "keep-storage")]
    keep_storage: Option<String>,
}

/// `builder prune`.
pub fn prune(engine: &Engine, a: PruneArgs) -> Result<(), Failure> {
    let _ = (a.all, a.force);
    let report = match &a.keep_storage {
        Some(k) => {
            let keep = model::size::parse_bytes(k)
                .map_err(|_| bad("--keep-storage", format!("{k:?}: use a size like 1g")))?;
            engine.builder_prune_to(keep)?
        }
        None => engine.builder_prune()?,
    };
    for d in &report.deleted {
        println!("Deleted build cache objects: {d}");
    }
    println!(
        "Total reclaimed space: {}",
        format::human_size(report.reclaimed)
    );
    Ok(())
}
