//! The steps that make layers: `RUN` (a container) and `COPY`/`ADD`.
use std::io::Write;
use std::os::fd::AsFd;

use dockerfile::{Command, Copy, Run};
use serde_json::json;

use super::copy::{self, Plan, Source};
use super::{invalid, Builder, NewLayer, StageState, PROXY_ARGS};
use crate::config::NetworkMode;
use crate::container::create::CreateRequest;
use crate::container::start::AttachMode;
use crate::error::{EngineError, Result};
use crate::Engine;

/// Is `cmd` nothing but one heredoc marker (`<<EOF`, `<<-"EOF"`)?
fn only_heredoc(cmd: &str, name: &str) -> bool {
    let t = cmd.trim();
    let t = t.strip_prefix("<<").unwrap_or("");
    let t = t.strip_prefix('-').unwrap_or(t);
    let t = t.trim_matches(|c| c == '"' || c == '\'');
    t == name
}

/// Unpack a step's layer tar file.
fn ingest(engine: &crate::Engine, tar_path: &std::path::Path) -> Result<NewLayer> {
    let f = std::fs::File::open(tar_path).map_err(|e| EngineError::io("reading a layer", e))?;
    NewLayer::unpack(engine, "build-layer", std::io::BufReader::new(f))
}

/// Does an ADD source (or a build context) name a git repository?
pub fn is_git_url(s: &str) -> bool {
    let base = s.split('#').next().unwrap_or(s);
    s.starts_with("git@")
        || s.starts_with("git://")
        || s.starts_with("ssh://")
        || ((base.starts_with("http://") || base.starts_with("https://")) && base.ends_with(".git"))
}

/// Clone `url` (`repo[#ref[:dir]]`) with the host's git (network
/// protocols only: no `file://` or local paths, no prompts, no hooks run
/// on clone) and check out `ref` (default: HEAD). Returns the work dir,
/// the checkout and the commit.
pub(crate) fn git_checkout(
    store: &store::Store,
    url: &str,
    what: &str,
) -> Result<(store::TmpDir, std::path::PathBuf, String)> {
    let (repo, reference) = match url.split_once('#') {
        Some((r, f)) => (
            r,
            Some(f.split(':').next().unwrap_or(f)).filter(|r| !r.is_empty()),
        ),
        None => (url, None),
    };
    // Nothing from the URL may reach git as an option (`#--upload-pack=…`,
    // `ssh://-oProxyCommand=…`): the repository is passed after `--`, and
    // a ref or host that starts with `-` is refused.
    if let Some(r) = reference.filter(|r| r.starts_with('-')) {
        return Err(invalid(
            what,
            format!("{url}: the git ref {r:?} must not start with \"-\""),
        ));
    }
    let host = repo.split_once("://").map_or(repo, |(_, rest)| rest);
    if repo.starts_with('-') || host.starts_with('-') || host.contains("@-") {
        return Err(invalid(
            what,
            format!("{url}: a repository that starts with \"-\" is refused"),
        ));
    }
    let tmp = store.tmp_dir("build-git")?;
    let dir = tmp.path().join("checkout");
    let git = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "protocol.allow=never",
                "-c",
                "protocol.http.allow=always",
                "-c",
                "protocol.https.allow=always",
                "-c",
                "protocol.git.allow=always",
                "-c",
                "protocol.ssh.allow=always",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| invalid(what, format!("running git (apt-get install git): {e}")))?;
        if !out.status.success() {
            return Err(invalid(
                what,
                format!(
                    "git {}: {}",
                    args.first().copied().unwrap_or(""),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let dir_s = dir.to_string_lossy().into_owned();
    git(&["clone", "--quiet", "--no-checkout", "--", repo, &dir_s])?;
    let rev = reference.unwrap_or("HEAD");
    git(&["-C", &dir_s, "checkout", "--quiet", "--detach", rev])?;
    let commit = git(&["-C", &dir_s, "rev-parse", "HEAD"])?;
    Ok((tmp, dir, commit))
}

/// Why a RUN for another platform may fail here.
fn emulation_hint(platform: &str) -> String {
    format!(
        "(this stage is for {platform}: running its programs on this {} machine needs binfmt_misc emulation, e.g. apt-get install qemu-user-static)",
        super::platform_string(&registry::manifest::Platform::host())
    )
}

/// Downloads are kept in memory until their layer is written: at most this.
const MAX_DOWNLOAD: u64 = 512 << 20;

impl Builder<'_> {
    /// `ADD <url>`: the body as a file named after the URL's last path
    /// segment, mode 0600 (Docker's), checked against `--checksum`.
    fn download(&mut self, url: &str, checksum: Option<&str>) -> Result<Source> {
        let _ = writeln!(self.out, "downloading {url}");
        let mut data = Vec::new();
        let idle = self.engine.registries()?.idle_timeout();
        registry::fetch::fetch(url, &mut data, MAX_DOWNLOAD, idle)?;
        if let Some(sum) = checksum {
            let want = sum
                .strip_prefix("sha256:")
                .ok_or_else(|| invalid("ADD --checksum", format!("{sum:?}: use sha256:<hex>")))?;
            let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
            if !got.eq_ignore_ascii_case(want) {
                return Err(invalid(
                    "ADD --checksum",
                    format!("{url}: expected sha256:{want}, got sha256:{got}"),
                ));
            }
        }
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let name = path
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && !path.ends_with("://"))
            .unwrap_or("download")
            .to_string();
        if name.contains("..") {
            return Err(invalid("ADD", format!("{url}: bad file name {name:?}")));
        }
        Ok(Source::Inline {
            name,
            data,
            mode: 0o600,
        })
    }

    /// `ADD <git url>[#ref]` (see [`git_checkout`]); `--checksum` must
    /// name the commit.
    fn git_checkout(
        &mut self,
        url: &str,
        checksum: Option<&str>,
    ) -> Result<(store::TmpDir, std::path::PathBuf, String)> {
        let _ = writeln!(self.out, "cloning {}", url.split('#').next().unwrap_or(url));
        let (tmp, dir, commit) = git_checkout(&self.engine.store(), url, "ADD")?;
        if let Some(sum) = checksum {
            let want = sum.strip_prefix("sha256:").unwrap_or(sum);
            if !commit.starts_with(want) || want.len() < 7 {
                return Err(invalid(
                    "ADD --checksum",
                    format!("{url}: expected commit {want}, the checkout is {commit}"),
                ));
            }
        }
        Ok((tmp, dir, commit))
    }

    /// The network of a RUN step.
    fn run_network(&self, r: &Run) -> Result<(NetworkMode, Vec<String>)> {
        // The Dockerfile asking for the host's network needs the build's
        // grant (BuildKit's network.host entitlement); `build --network
        // host` is the user's own choice.
        if r.network.as_deref() == Some("host")
            && !self.req.allow.contains(&super::Entitlement::NetworkHost)
        {
            return Err(invalid(
                "RUN --network=host",
                "the network.host entitlement is not granted: build with --allow network.host",
            ));
        }
        let n = r
            .network
            .clone()
            .or_else(|| self.req.network.clone())
            .unwrap_or_else(|| "default".into());
        Ok(match n.as_str() {
            "default" | "bridge" => (NetworkMode::None, vec!["bridge".to_string()]),
            "none" => (NetworkMode::None, Vec::new()),
            "host" => (NetworkMode::Host, Vec::new()),
            other => {
                return Err(invalid(
                    "RUN --network",
                    format!("{other:?}: use default, none or host"),
                ))
            }
        })
    }

    pub(super) fn run_step(&mut self, st: &mut StageState, r: &Run, step: usize) -> Result<bool> {
        if let Some(s) = &r.security {
            if s == "insecure"
                && !self
                    .req
                    .allow
                    .contains(&super::Entitlement::SecurityInsecure)
            {
                return Err(invalid(
                    "RUN --security=insecure",
                    "the security.insecure entitlement is not granted: build with --allow security.insecure",
                ));
            }
            if s != "sandbox" {
                return Err(invalid(
                    "RUN --security",
                    format!("{s:?}: only sandbox is supported (insecure is not yet)"),
                ));
            }
        }
        // `RUN <<EOF` whose body starts with `#!`: the body is a script of
        // its own, run by its interpreter (BuildKit's rule), from a file
        // bound read-only into the container for the step.
        let mut script_file = None;
        let args: Vec<String> = match &r.command {
            Command::Exec(v) => v.clone(),
            Command::Shell(cmd)
                if r.heredocs.len() == 1
                    && only_heredoc(cmd, &r.heredocs[0].name)
                    && r.heredocs[0].content.starts_with("#!") =>
            {
                let h = &r.heredocs[0];
                let target = format!("/.berth-heredoc-{}", h.name);
                script_file = Some((h.content.clone(), target.clone()));
                vec![target]
            }
            Command::Shell(cmd)
                if r.heredocs.len() == 1 && only_heredoc(cmd, &r.heredocs[0].name) =>
            {
                let mut v = st.shell.clone();
                v.push(r.heredocs[0].content.clone());
                v
            }
            Command::Shell(cmd) => {
                let mut script = cmd.clone();
                for h in &r.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                let mut v = st.shell.clone();
                v.push(script);
                v
            }
        };
        if args.is_empty() {
            return Err(invalid("RUN", "an empty command"));
        }
        // ARGs reach RUN as environment (ENV wins), proxies without an ARG.
        let env_names: std::collections::BTreeSet<String> = st
            .env()
            .iter()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        let mut arg_env: Vec<String> = Vec::new();
        for (k, v) in &st.args {
            if let Some(v) = v {
                if !env_names.contains(k) {
                    arg_env.push(format!("{k}={v}"));
                }
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.req.build_args.get(*p) {
                if !st.args.contains_key(*p) {
                    arg_env.push(format!("{p}={v}"));
                }
            }
        }
        let (mode, networks) = self.run_network(r)?;
        let shown_args = if arg_env.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", arg_env.len(), arg_env.join(" "))
        };
        let created_by = match &r.command {
            Command::Exec(v) => format!("RUN {shown_args}{} # buildkit", json!(v)),
            Command::Shell(_) => format!("RUN {shown_args}{} # buildkit", args.join(" ")),
        };
        let mut mounts = self.prepare_mounts(st, &r.mounts)?;
        if let Some((content, target)) = &script_file {
            let dir = self.run_dir("build-script");
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io("writing a heredoc script", e))?;
            mounts.keep.push(super::mounts::Keep::Dir(dir.clone()));
            let file = dir.join("script");
            {
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o755)
                    .open(&file)
                    .map_err(|e| EngineError::io("writing a heredoc script", e))?;
                f.write_all(content.as_bytes())
                    .map_err(|e| EngineError::io("writing a heredoc script", e))?;
            }
            mounts.mounts.push(format!(
                "type=bind,source={},target={target},readonly",
                file.display()
            ));
        }
        let key_extra = format!(
            "{}\0{}\0{:?}{:?}\0{}\0{}",
            json!(args),
            arg_env.join("\0"),
            mode,
            networks,
            mounts.key,
            script_file.as_ref().map(|(c, _)| c.as_str()).unwrap_or("")
        );
        // The container runs on an image of the stage as it stands (with
        // the layer of the step before if that is still being digested).
        if st.pending.is_none() && (st.dirty || st.image.is_none()) {
            let id = self.register(st, Vec::new())?;
            self.adopt(st, id)?;
        }
        let base = st.image.clone().ok_or_else(|| invalid("RUN", "no image"))?;
        let step_name = format!("#{step}");
        let shown_cmd = args.join(" ");
        let container_mounts = mounts.mounts.clone();
        let extra_layers: Vec<std::path::PathBuf> =
            st.pending.iter().map(|p| p.dir().to_path_buf()).collect();
        let mut env = arg_env;
        env.extend(mounts.env.iter().cloned());
        let shown_for_error = shown_cmd.clone();
        let foreign = (!registry::manifest::Platform::host().matches(&st.platform))
            .then(|| super::platform_string(&st.platform));
        let cached = self.layer_step(st, &created_by, &key_extra, move |b, _st| {
            b.run_container(
                &base,
                args,
                env,
                container_mounts,
                extra_layers,
                (mode, networks),
                &step_name,
                &shown_cmd,
            )
            .map_err(|e| match (e, &foreign) {
                (
                    EngineError::BuildStep {
                        step,
                        command,
                        code,
                        tail,
                    },
                    Some(p),
                ) => EngineError::BuildStep {
                    step,
                    command,
                    code,
                    tail: format!("{tail}\n{}", emulation_hint(p)),
                },
                // The runtime could not even start the program.
                (e, Some(p)) if e.to_string().contains("exec format error") => {
                    EngineError::BuildStep {
                        step: String::new(),
                        command: shown_for_error.clone(),
                        code: 126,
                        tail: format!("\n{e}\n{}", emulation_hint(p)),
                    }
                }
                (e, _) => e,
            })
        });
        // Locks and throwaway dirs go after the step.
        drop(mounts);
        cached
    }

    #[allow(clippy::too_many_arguments)]
    fn run_container(
        &mut self,
        base: &model::Digest,
        args: Vec<String>,
        env: Vec<String>,
        mounts: Vec<String>,
        extra_layers: Vec<std::path::PathBuf>,
        (network, networks): (NetworkMode, Vec<String>),
        prefix: &str,
        shown: &str,
    ) -> Result<NewLayer> {
        let req = CreateRequest {
            image: base.to_string(),
            cmd: args,
            entrypoint: Some(Vec::new()),
            env,
            network,
            networks,
            mounts,
            extra_layers,
            labels: [(OWNER_LABEL.to_string(), owner())].into(),
            ..Default::default()
        };
        let c = self.engine.create_step(&req)?;
        let id = c.id().as_str().to_string();
        if self.req.step_images {
            let _ = writeln!(self.out, "{prefix} container {id}");
        }
        let result = self.run_and_capture(&id, prefix);
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                let _ = self.engine.remove(&id, true, false);
                return Err(e);
            }
        };
        if code != 0 {
            let log = self
                .engine
                .log_path(&self.engine.store().container_dir(c.id()));
            let entries = crate::logs::read_all(&log).unwrap_or_default();
            let tail: Vec<String> = entries
                .iter()
                .rev()
                .take(10)
                .rev()
                .map(|e| String::from_utf8_lossy(&e.data).trim_end().to_string())
                .collect();
            let _ = self.engine.remove(&id, true, false);
            return Err(EngineError::BuildStep {
                step: prefix.to_string(),
                command: shown.to_string(),
                code,
                tail: if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n{}", tail.join("\n"))
                },
            });
        }
        let tmp = self.engine.store().tmp_dir("build-run")?;
        let tar_path = tmp.path().join("layer.tar");
        let made = self.engine.changes_tar(&id, &tar_path, self.clamp());
        crate::faults::point("build.run-layer-written");
        if let Err(e) = made {
            // A full disk: free the half-written tar first, or removing
            // the container (a database write) fails too.
            drop(tmp);
            let _ = self.engine.remove(&id, true, false);
            return Err(e);
        }
        let _ = self.engine.remove(&id, true, false);
        ingest(self.engine, &tar_path)
    }

    /// Start the container, print its output as `#N <line>`, return its
    /// exit code.
    fn run_and_capture(&mut self, id: &str, prefix: &str) -> Result<i32> {
        let log = self.engine.log_path(
            &self.engine.store().container_dir(
                &id.parse::<model::ContainerId>()
                    .map_err(|e| invalid("container id", e.to_string()))?,
            ),
        );
        let mut follower = crate::logs::Follower::at_end(&log);
        let mut launched = self.engine.start(id, AttachMode::Detached)?;
        crate::faults::point("build.run-started");
        let started = std::time::Instant::now();
        let print = |out: &mut dyn Write, entries: Vec<crate::logs::Entry>| {
            for e in entries {
                let text = String::from_utf8_lossy(&e.data);
                let _ = writeln!(
                    out,
                    "{prefix} {:.3} {}",
                    started.elapsed().as_secs_f64(),
                    text.trim_end_matches('\n')
                );
            }
        };
        loop {
            let mut fds = [nix::poll::PollFd::new(
                launched.status_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ready =
                nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
            print(self.out, follower.poll().unwrap_or_default());
            // The caller removes the container.
            self.req.cancel.check()?;
            if ready > 0 {
                let code = launched.wait_exit().unwrap_or(255);
                print(self.out, follower.poll().unwrap_or_default());
                return Ok(code);
            }
        }
    }

    pub(super) fn copy_step(
        &mut self,
        st: &mut StageState,
        c: &Copy,
        _step: usize,
    ) -> Result<bool> {
        let what = if c.add { "ADD" } else { "COPY" };
        let mut sources = Vec::new();
        let mut raw_paths = Vec::new();
        // ADD <git repository>: its checkout (kept until the layer is written).
        let mut git: Option<(store::TmpDir, std::path::PathBuf, String)> = None;
        for s in &c.sources {
            if let Some(name) = s.strip_prefix("<<") {
                let name = name
                    .trim_start_matches('-')
                    .trim_matches(|c| c == '"' || c == '\'');
                let h = c
                    .heredocs
                    .iter()
                    .find(|h| h.name == name)
                    .ok_or_else(|| invalid(what, format!("no heredoc named {name}")))?;
                let data = if h.expand {
                    self.expand(st, &h.content)?
                } else {
                    h.content.clone()
                };
                sources.push(Source::Inline {
                    name: name.to_string(),
                    data: data.into_bytes(),
                    mode: 0o644,
                });
                continue;
            }
            let e = self.expand(st, s)?;
            if c.add && is_git_url(&e) {
                if c.sources.len() != 1 {
                    return Err(invalid("ADD", "a git repository must be ADD's only source"));
                }
                let (tmp, dir, commit) = self.git_checkout(&e, c.checksum.as_deref())?;
                git = Some((tmp, dir, commit));
                raw_paths.push(String::new());
                continue;
            }
            if c.add && (e.starts_with("http://") || e.starts_with("https://")) {
                sources.push(self.download(&e, c.checksum.as_deref())?);
                continue;
            }
            raw_paths.push(e);
        }
        if c.checksum.is_some() && !raw_paths.is_empty() && git.is_none() {
            return Err(invalid(
                "ADD --checksum",
                "only checks a URL source (http:// or https://)",
            ));
        }
        let dest_raw = self.expand(st, &c.dest)?;
        let dest_abs = if dest_raw.starts_with('/') {
            dest_raw.clone()
        } else {
            format!("{}/{}", st.workdir().trim_end_matches('/'), dest_raw)
        };
        let dest = format!("/{}", super::ignore::clean(&dest_abs));
        let owner = match &c.chown {
            Some(ch) => {
                let ch = self.expand(st, ch)?;
                let u = crate::spec::resolve_user(&ch, &st.layer_dirs)?;
                Some((u.uid, u.gid))
            }
            None => None,
        };
        let chmod = match &c.chmod {
            Some(m) => Some(copy::Chmod::parse(m).map_err(|e| invalid("--chmod", e))?),
            None => None,
        };
        let mut excludes = c.exclude.clone();
        if git.is_some() && !c.keep_git_dir {
            excludes.push(".git".into());
        }
        let exclude = super::ignore::Ignore::parse(&excludes.join("\n"));
        let mtime = self.epoch.unwrap_or(0).max(0) as u64;

        // The source root: the context, or a stage's / image's filesystem.
        // --build-context name=DIR: COPY --from=name reads that directory.
        let mut source_dir = match &git {
            Some((_, dir, _)) => dir.clone(),
            None => self.req.context.clone(),
        };
        let mut named_image = None;
        if let Some(f) = &c.from {
            let f = self.expand(st, f)?;
            match self.req.contexts.get(&f.to_ascii_lowercase()) {
                Some(super::NamedContext::Dir(d)) => {
                    source_dir = d
                        .canonicalize()
                        .map_err(|e| invalid("--build-context", format!("{}: {e}", d.display())))?;
                }
                Some(super::NamedContext::Image(r)) => named_image = Some(r.clone()),
                None => {}
            }
        }
        let from_dir = source_dir != self.req.context;
        let from_image = match &c.from {
            None => None,
            Some(_) if from_dir => None,
            Some(f) => {
                let f = named_image.clone().unwrap_or(self.expand(st, f)?);
                let id = match self.df.stage(&f) {
                    Some(s) => self
                        .built
                        .get(&s.index)
                        .map(|b| b.image.clone())
                        .ok_or_else(|| invalid("--from", format!("stage {f} was not built")))?,
                    None => {
                        let id = match self.engine.store().resolve_image(&f) {
                            Ok(i) => i.id,
                            Err(store::StoreError::NotFound { .. }) => {
                                let r: model::Reference = f
                                    .parse()
                                    .map_err(|e| invalid("--from", format!("{f:?}: {e}")))?;
                                self.engine.pull(&r, &Default::default(), &|_| {})?.id
                            }
                            Err(e) => return Err(e.into()),
                        };
                        // A material of the provenance, as a FROM image.
                        self.bases.push(super::attest::BaseUse {
                            name: f.clone(),
                            id: id.clone(),
                        });
                        id
                    }
                };
                Some(id)
            }
        };
        let context_ignore = if from_image.is_none() && !from_dir {
            self.ignore.clone()
        } else {
            Default::default()
        };
        let mut plan = Plan {
            sources: Vec::new(),
            dest: dest.clone(),
            dest_is_dir: false,
            owner,
            chmod: chmod.clone(),
            mtime,
            ignore: context_ignore,
            exclude,
            extract: c.add,
            missing_parents: Vec::new(),
            existing_dirs: Vec::new(),
            dest_exists: false,
            parents: c.parents,
            limits: self.engine.store().limits(),
        };
        let key_extra;
        let from_layers: Vec<std::path::PathBuf>;
        match &from_image {
            None => {
                let root = store::fsops::open_dir(&source_dir)
                    .map_err(|e| EngineError::io("opening the build context", e))?;
                for p in &raw_paths {
                    let found = copy::expand_source(root.as_fd(), p)
                        .map_err(|e| EngineError::io(format!("{what} {p}"), e))?;
                    let found: Vec<String> = found
                        .into_iter()
                        .filter(|f| !plan.ignore.excluded(f) || f.is_empty())
                        .collect();
                    if found.is_empty() {
                        return Err(invalid(
                            what,
                            format!("{p}: no such file or directory in the build context (or excluded by .dockerignore)"),
                        ));
                    }
                    sources.extend(found.into_iter().map(Source::Path));
                }
                plan.sources = sources;
                self.decide_dest(st, &mut plan, &dest_raw, root.as_fd(), what)?;
                let hash = copy::hash_sources(
                    root.as_fd(),
                    &plan.sources,
                    &plan.ignore,
                    &plan.exclude,
                    // The stat cache belongs to the main context.
                    if from_dir {
                        None
                    } else {
                        Some(self.stat_cache())
                    },
                )
                .map_err(|e| invalid(what, e.to_string()))?;
                key_extra = hash;
                from_layers = Vec::new();
            }
            Some(id) => {
                sources.extend(
                    raw_paths
                        .iter()
                        .map(|p| Source::Path(super::ignore::clean(p))),
                );
                plan.sources = sources;
                let dir_hint = dest_raw.ends_with('/') || plan.sources.len() > 1;
                plan.dest_is_dir = dir_hint || copy::lookup(&st.layer_dirs, &dest) == Some(true);
                if plan.sources.len() > 1 && !dest_raw.ends_with('/') {
                    return Err(invalid(what, "when using COPY with more than one source file, the destination must be a directory and end with a /"));
                }
                // Keyed by the source's layers (content), not its image id
                // (config and history times): a rebuilt stage with the
                // same files keeps the steps that copy from it cached.
                let diffs: Vec<String> = self
                    .engine
                    .store()
                    .resolve_image(&id.to_string())?
                    .diff_ids
                    .iter()
                    .map(|d| d.to_string())
                    .collect();
                key_extra = format!("from {}", diffs.join(","));
                from_layers = self.engine.store().layer_dirs(id)?;
            }
        }
        if plan.parents {
            plan.dest_is_dir = true;
        }
        self.missing_parents(st, &mut plan);
        let shown_sources: Vec<&str> = c.sources.iter().map(String::as_str).collect();
        let created_by = format!(
            "{what} {}{} {} # buildkit",
            c.from
                .as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            shown_sources.join(" "),
            c.dest
        );
        let key_extra = format!(
            "{key_extra}\0{dest}\0{:?}\0{:?}\0{}\0{:?}\0{}",
            owner, chmod, plan.dest_is_dir, c.exclude, c.parents
        );
        let context = source_dir.clone();
        self.layer_step(st, &created_by, &key_extra, move |b, _st| {
            if from_layers.is_empty() && from_image.is_none() {
                // From the context: the tar streams from a writer thread
                // straight into the store (nothing forks meanwhile).
                let root = store::fsops::open_dir(&context)
                    .map_err(|e| EngineError::io("opening the build context", e))?;
                let (reader, writer) =
                    std::io::pipe().map_err(|e| EngineError::io("creating a pipe", e))?;
                // A large pipe: fewer wake-ups between the two sides.
                let _ = nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
                // Large files are copied by the unpacker itself, in the
                // kernel; the stream carries their headers.
                let direct = std::sync::Arc::new(copy::Direct::default());
                let for_writer = direct.clone();
                let writer_thread = std::thread::spawn(move || {
                    copy::write_layer_with(
                        root.as_fd(),
                        &plan,
                        std::io::BufWriter::with_capacity(1 << 20, writer),
                        Some(&for_writer),
                    )
                });
                let mut source = |r: &[u8], dst: &std::fs::File| direct.copy_into(r, dst);
                let unpacked = NewLayer::unpack_from(
                    b.engine,
                    "build-copy",
                    std::io::BufReader::with_capacity(1 << 20, reader),
                    Some(&mut source),
                );
                direct.close();
                writer_thread
                    .join()
                    .map_err(|_| invalid(what, "the layer writer panicked"))?
                    .map_err(|e| invalid(what, e.to_string()))?;
                return unpacked;
            }
            let tmp = b.engine.store().tmp_dir("build-copy")?;
            let tar_path = tmp.path().join("layer.tar");
            {
                let view = crate::rootfs::View {
                    lower: from_layers,
                    upper: None,
                    copy: None,
                };
                let path = tar_path.clone();
                b.engine.in_rootfs(&view, move |root| {
                    let f = std::fs::File::create(&path)?;
                    copy::write_layer(root, &plan, std::io::BufWriter::new(f)).map(|_| ())
                })?;
            }
            ingest(b.engine, &tar_path)
        })
    }

    /// Docker's destination rules: a trailing slash, several sources or a
    /// directory already there make it a directory.
    fn decide_dest(
        &self,
        st: &StageState,
        plan: &mut Plan,
        dest_raw: &str,
        _root: std::os::fd::BorrowedFd<'_>,
        what: &str,
    ) -> Result<()> {
        let several = plan.sources.len() > 1;
        if several && !dest_raw.ends_with('/') {
            return Err(invalid(
                what,
                "when using COPY with more than one source file, the destination must be a directory and end with a /",
            ));
        }
        plan.dest_is_dir = dest_raw.ends_with('/')
            || several
            || copy::lookup(&st.layer_dirs, &plan.dest) == Some(true);
        Ok(())
    }

    /// Parent directories of the destination that do not exist yet.
    fn missing_parents(&self, st: &StageState, plan: &mut Plan) {
        let clean = super::ignore::clean(&plan.dest);
        let mut comps: Vec<&str> = clean.split('/').filter(|c| !c.is_empty()).collect();
        if plan.dest_is_dir {
            if let Some(a) = copy::lookup_dir(&st.layer_dirs, &plan.dest) {
                // Not re-created: its owner and mode stay.
                plan.dest_exists = true;
                let rel = clean.trim_start_matches('/');
                if !rel.is_empty() {
                    plan.existing_dirs.push((rel.to_string(), a));
                }
            }
        }
        comps.pop();
        let mut cur = String::new();
        for c in comps {
            cur = if cur.is_empty() {
                c.to_string()
            } else {
                format!("{cur}/{c}")
            };
            match copy::lookup(&st.layer_dirs, &cur) {
                None => plan.missing_parents.push(cur.clone()),
                Some(true) => {
                    if let Some(a) = copy::lookup_dir(&st.layer_dirs, &cur) {
                        plan.existing_dirs.push((cur.clone(), a));
                    }
                }
                Some(false) => {}
            }
        }
        // Parents first, as a tar lists them.
        plan.existing_dirs.sort_by(|a, b| a.0.cmp(&b.0));
    }
}

/// The label on a RUN step's container naming the build process that owns
/// it (`pid:start time`): a build killed while a step runs leaves its
/// container, and the next build removes it ([`sweep_orphans`]).
pub(super) const OWNER_LABEL: &str = "berth.build.owner";

fn owner() -> String {
    let pid = std::process::id() as i32;
    format!(
        "{pid}:{}",
        crate::config::process_start_time(pid).unwrap_or(0)
    )
}

/// Remove the RUN containers of builds that no longer run (killed mid-step,
/// or the machine went down): their owner process is gone, or its pid now
/// belongs to another process.
pub(super) fn sweep_orphans(engine: &Engine) {
    let Ok(all) = engine.containers() else {
        return;
    };
    for c in all {
        let Some(o) = c.config.labels.get(OWNER_LABEL) else {
            continue;
        };
        let alive = o
            .split_once(':')
            .and_then(|(pid, start)| Some((pid.parse::<i32>().ok()?, start.parse::<u64>().ok()?)))
            .is_some_and(|(pid, start)| crate::config::process_start_time(pid) == Some(start));
        if !alive {
            let _ = engine.remove(c.record.id.as_str(), true, false);
        }
    }
}
