//! `pull`, `push`, `login`, `logout`, with Docker's output: one line per
//! layer (a live bar on a terminal, one line per state change otherwise),
//! then `Digest:` and `Status:`.
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;

use clap::Args;
use engine::distribution::{
    Compression, Credential, Event, LayerStatus, Platform, PullOptions, PullOutcome, PushOptions,
};
use engine::Engine;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::Reference;

use crate::Failure;

/// `pull` arguments.
#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG|@DIGEST].
    pub image: String,
    /// Platform of a multi-platform image (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image reference.
    #[arg(short, long)]
    pub quiet: bool,
    /// Layers downloaded at once (default: registries.toml, else 4).
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// Pull every tag of the repository.
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Skip the image policy (policy.toml) for this pull; logged as an event.
    #[arg(long)]
    pub disable_policy: bool,
}

/// `push` arguments.
#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image to push: NAME[:TAG].
    pub image: String,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// Compression of layers stored uncompressed: gzip or zstd.
    #[arg(long, default_value = "gzip")]
    pub compression_format: String,
    /// Blobs uploaded at once (default: registries.toml, else 5).
    #[arg(long)]
    pub max_concurrent_uploads: Option<usize>,
    /// Upload in chunks of this many bytes (default: one request per blob).
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// Push every local tag of the repository.
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
}

/// `login` arguments.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry (default: Docker Hub).
    pub server: Option<String>,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `logout` arguments.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default: Docker Hub).
    pub server: Option<String>,
}

fn parse_ref(s: &str) -> Result<Reference, Failure> {
    s.parse::<Reference>().map_err(|e| {
        Failure::msg(
            125,
            format!("invalid reference format {s:?}: {e} (expected NAME[:TAG|@DIGEST])"),
        )
    })
}

pub(crate) fn registry_failure(e: engine::EngineError) -> Failure {
    // Docker's pull and push exit 1 on registry errors.
    let registry = matches!(
        e.kind(),
        engine::ErrorKind::Unavailable | engine::ErrorKind::Unauthorized
    ) || matches!(e, engine::EngineError::Registry(_));
    let mut f = Failure::from(e);
    if registry {
        f.code = 1;
    }
    f
}

/// Renders progress events the way Docker does.
struct Renderer {
    quiet: bool,
    /// Lines go to stderr (`run` keeps stdout for the container).
    stderr: bool,
    tty: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    verb: &'static str,
}

impl Renderer {
    fn new(quiet: bool, verb: &'static str) -> Renderer {
        let tty = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Renderer {
            quiet,
            stderr: false,
            tty,
            bars: Mutex::new(HashMap::new()),
            verb,
        }
    }

    fn line(&self, s: String) {
        if self.quiet {
            return;
        }
        match &self.tty {
            Some(m) => {
                let _ = m.println(s);
            }
            None if self.stderr => eprintln!("{s}"),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{s}");
            }
        }
    }

    fn bar(&self, id: &str, total: u64) -> Option<ProgressBar> {
        let m = self.tty.as_ref()?;
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            bars.entry(id.to_string())
                .or_insert_with(|| {
                    let b = m.add(ProgressBar::new(total));
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b.set_prefix(id.to_string());
                    b
                })
                .clone(),
        )
    }

    fn event(&self, e: Event) {
        match e {
            Event::Resolved {
                reference,
                repository,
                layers,
            } => {
                if self.verb == "pull" {
                    self.line(format!("{reference}: Pulling from {repository}"));
                }
                for (id, size) in layers {
                    if let Some(b) = self.bar(&id, size) {
                        b.set_message("Waiting");
                    }
                }
            }
            Event::PushStarted { repository } => {
                self.line(format!("The push refers to repository [{repository}]"));
            }
            Event::MirrorFailed { mirror, reason } => {
                eprintln!("berth: mirror {mirror} failed ({reason}); trying the next endpoint");
            }
            Event::Layer { id, status } => {
                let text = match &status {
                    LayerStatus::AlreadyExists if self.verb == "pull" => "Already exists".into(),
                    LayerStatus::AlreadyExists => "Layer already exists".into(),
                    LayerStatus::Progress(..) if self.verb == "pull" => "Downloading".into(),
                    LayerStatus::Progress(..) => "Pushing".into(),
                    LayerStatus::Resuming(n) => format!("Resuming from byte {n}"),
                    LayerStatus::Retrying(why) => format!("Retrying ({why})"),
                    LayerStatus::Complete if self.verb == "pull" => "Pull complete".into(),
                    LayerStatus::Complete => "Pushed".into(),
                    LayerStatus::Mounted(from) => format!("Mounted from {from}"),
                    LayerStatus::Compressing => "Compressing".into(),
                };
                match (&self.tty, &status) {
                    (Some(_), LayerStatus::Progress(done, total)) => {
                        if let Some(b) = self.bar(&id, *total) {
                            b.set_length(*total);
                            b.set_position(*done);
                            b.set_message(text);
                        }
                    }
                    (Some(_), _) => {
                        if let Some(b) = self.bar(&id, 0) {
                            let finished = matches!(
                                status,
                                LayerStatus::Complete
                                    | LayerStatus::AlreadyExists
                                    | LayerStatus::Mounted(_)
                            );
                            if finished {
                                b.finish_and_clear();
                                self.line(format!("{id}: {text}"));
                            } else {
                                b.set_message(text);
                            }
                        }
                    }
                    // Plain output: state changes only, not every chunk.
                    (None, LayerStatus::Progress(done, _)) if *done > 0 => {}
                    (None, _) => self.line(format!("{id}: {text}")),
                }
            }
        }
    }

    fn finish(&self) {
        for b in self.bars.lock().unwrap_or_else(|e| e.into_inner()).values() {
            b.finish_and_clear();
        }
    }
}

/// `berth pull`.
pub fn pull(engine: &Engine, a: PullArgs) -> Result<(), Failure> {
    let r = parse_ref(&a.image)?;
    if a.disable_policy {
        engine.disable_policy("pull", &r.to_string());
    }
    let last = a.image.rsplit('/').next().unwrap_or(&a.image);
    if a.all_tags && (last.contains(':') || last.contains('@')) {
        return Err(Failure::msg(125, "tag can't be used with --all-tags/-a"));
    }
    let platform = a
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| Failure::msg(125, e))?;
    let opts = PullOptions {
        platform,
        max_concurrent: a.max_concurrent_downloads,
        ..Default::default()
    };
    if a.all_tags {
        // Every tag of the repository, one after the other (as Docker).
        let tags = engine.list_tags(&r).map_err(registry_failure)?;
        if tags.is_empty() {
            return Err(Failure::msg(
                1,
                format!("{}: the repository has no tags", r.familiar()),
            ));
        }
        for t in tags {
            let tagged = r
                .with_tag(&t)
                .map_err(|e| Failure::msg(1, format!("tag {t:?} of the registry: {e}")))?;
            pull_image(engine, &tagged, &opts, a.quiet, false)?;
            if a.quiet {
                println!("{}", tagged.familiar());
            }
        }
        return Ok(());
    }
    pull_image(engine, &r, &opts, a.quiet, false)?;
    if a.quiet {
        println!("{}", r.familiar());
    }
    Ok(())
}

/// Pull with Docker's output (also used by `run` for a missing image).
pub fn pull_image(
    engine: &Engine,
    r: &Reference,
    opts: &PullOptions,
    quiet: bool,
    for_run: bool,
) -> Result<PullOutcome, Failure> {
    let mut ui = Renderer::new(quiet, "pull");
    if for_run {
        ui.stderr = true;
        ui.tty = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    }
    let res = engine.pull(r, opts, &|e| ui.event(e));
    ui.finish();
    let out = res.map_err(registry_failure)?;
    ui.line(format!("Digest: {}", out.digest));
    let shown = r.familiar();
    if out.new {
        ui.line(format!("Status: Downloaded newer image for {shown}"));
    } else {
        ui.line(format!("Status: Image is up to date for {shown}"));
    }
    if !quiet && !for_run {
        println!("{r}");
    }
    Ok(out)
}

/// `run`/`create --pull missing|always|never`: pull as Docker does, the
/// output on stderr. A name that is not a valid reference (an image id)
/// is left to the store lookup.
pub fn pull_for_run(
    engine: &Engine,
    image: &str,
    policy: &str,
    platform: Option<&str>,
    quiet: bool,
) -> Result<(), Failure> {
    let missing = || engine.image(image).is_err();
    let pull = match policy {
        "always" => true,
        "missing" => missing(),
        "never" => false,
        other => {
            return Err(Failure::msg(
                125,
                format!("invalid --pull {other:?}: use missing, always or never"),
            ))
        }
    };
    if !pull {
        return Ok(());
    }
    let Ok(r) = image.parse::<Reference>() else {
        return Ok(());
    };
    if policy == "missing" && !quiet {
        eprintln!("Unable to find image '{}' locally", r.familiar());
    }
    let platform = platform
        .map(Platform::parse)
        .transpose()
        .map_err(|e| Failure::msg(125, e))?;
    let opts = PullOptions {
        platform,
        ..Default::default()
    };
    pull_image(engine, &r, &opts, quiet, true).map_err(|mut f| {
        // Docker's run exits 125 when the pull fails.
        f.code = 125;
        f
    })?;
    Ok(())
}

/// `berth push`.
pub fn push(engine: &Engine, a: PushArgs) -> Result<(), Failure> {
    let r = parse_ref(&a.image)?;
    let compression = match a.compression_format.as_str() {
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        other => {
            return Err(Failure::msg(
                125,
                format!("invalid --compression-format {other:?}: use gzip or zstd"),
            ))
        }
    };
    if a.chunk_size == Some(0) {
        return Err(Failure::msg(125, "--chunk-size must be more than 0"));
    }
    let opts = PushOptions {
        compression,
        max_concurrent: a.max_concurrent_uploads,
        chunk_size: a.chunk_size,
        ..Default::default()
    };
    let refs = if a.all_tags {
        let last = a.image.rsplit('/').next().unwrap_or(&a.image);
        if last.contains(':') || last.contains('@') {
            return Err(Failure::msg(125, "tag can't be used with --all-tags/-a"));
        }
        // Every local tag of the repository, in tag order (as Docker).
        let mut tags: Vec<model::Reference> = engine
            .list_images(false, &engine::filters::Filters::default())?
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter(|t| t.repository() == r.repository())
            .collect();
        tags.sort_by(|x, y| x.tag().cmp(&y.tag()));
        tags.dedup();
        if tags.is_empty() {
            return Err(Failure::msg(
                1,
                format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                ),
            ));
        }
        tags
    } else {
        vec![r]
    };
    for r in &refs {
        let ui = Renderer::new(a.quiet, "push");
        let res = engine.push(r, &opts, &|e| ui.event(e));
        ui.finish();
        let out = res.map_err(registry_failure)?;
        if a.quiet {
            println!("{}", out.digest);
        } else {
            ui.line(format!(
                "{}: digest: {} size: {}",
                r.tag().unwrap_or("latest"),
                out.digest,
                out.size
            ));
            for d in &out.referrers {
                ui.line(format!("referrer: {d}"));
            }
        }
    }
    Ok(())
}

fn server_host(server: Option<&str>) -> String {
    let s = server.unwrap_or(model::reference::DEFAULT_REGISTRY);
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => model::reference::DEFAULT_REGISTRY.into(),
        h => h.to_string(),
    }
}

/// `berth login`.
pub fn login(engine: &Engine, a: LoginArgs) -> Result<(), Failure> {
    let host = server_host(a.server.as_deref());
    let username = match a.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() && !a.password_stdin => {
            eprint!("Username: ");
            let mut u = String::new();
            std::io::stdin().read_line(&mut u)?;
            u.trim().to_string()
        }
        None => {
            return Err(Failure::msg(
                125,
                "a user name is needed: pass --username (-u)",
            ))
        }
    };
    if username.is_empty() {
        return Err(Failure::msg(125, "the user name is empty"));
    }
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(Failure::msg(
                125,
                "--password and --password-stdin are mutually exclusive",
            ))
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(Failure::msg(
                125,
                "a password is needed: pass --password-stdin (or --password)",
            ))
        }
    };
    if password.is_empty() {
        return Err(Failure::msg(125, "the password is empty"));
    }
    engine
        .login(&host, Credential { username, password })
        .map_err(registry_failure)?;
    println!("Login Succeeded");
    Ok(())
}

/// `berth logout`.
pub fn logout(engine: &Engine, a: LogoutArgs) -> Result<(), Failure> {
    let host = server_host(a.server.as_deref());
    if engine.logout(&host).map_err(registry_failure)? {
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(())
}
