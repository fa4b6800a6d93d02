//! A stage: its `FROM` (`scratch`, an earlier stage, or an image) and
//! its instructions in turn.

use std::collections::BTreeMap;
use std::time::Instant;

use dockerfile::{Instruction, Stage};
use model::{Digest, Reference};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};
use registry::manifest::Platform;

use super::{
    config_platform, invalid, json_strings, key_of, parse_platform, platform_args, platform_string,
    Builder, NamedContext, StageState,
};

impl Builder<'_> {
    /// Global ARGs (before the first FROM) with build args and the
    /// platform ARGs: what FROM lines expand with.
    /// The platform the build is for.
    pub(super) fn target(&self) -> Platform {
        self.req.platform.clone().unwrap_or_else(Platform::host)
    }

    pub(super) fn global_env(&self) -> BTreeMap<String, String> {
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
                    self.engine.policy_for_local(&base)?;
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
                            if matches!(e, crate::EngineError::Policy { .. }) {
                                return e;
                            }
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
            self.bases.push(super::attest::BaseUse {
                name: base.clone(),
                id: id.clone(),
            });
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
        // As Docker's builders: a base without PATH gets the default one,
        // so an image built FROM it has it (FROM scratch too).
        if config["os"].as_str().unwrap_or("linux") == "linux" {
            let mut env = json_strings(&config["config"]["Env"]);
            if !env.iter().any(|e| e.starts_with("PATH=")) {
                env.push(format!("PATH={}", crate::spec::DEFAULT_PATH));
                config["config"]["Env"] = json!(env);
            }
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

    pub(super) fn image_config(&self, id: &Digest) -> Result<Value> {
        let raw = self.engine.store().image_config_raw(id)?;
        serde_json::from_slice(&raw)
            .map_err(|e| EngineError::io("reading an image config", std::io::Error::other(e)))
    }

    pub(super) fn history(&self, st: &mut StageState, created_by: &str, empty: bool) {
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

    /// The stage's image after a step, for [`super::BuildRequest::step_images`]:
    /// a layer being digested is waited for; config changes are
    /// registered as an image (found in the cache if the same step made
    /// one before: then true).
    fn step_image(&mut self, st: &mut StageState) -> Result<(bool, Option<Digest>)> {
        self.settle(st)?;
        if !st.dirty {
            return Ok((false, st.image.clone()));
        }
        let (hit, id) = match self.lookup(&st.key) {
            Some(id) => (true, id),
            None => (false, self.register(st, Vec::new())?),
        };
        st.image = Some(id.clone());
        st.dirty = false;
        Ok((hit, Some(id)))
    }

    /// `#N image <id>` (empty for no image: `FROM scratch`).
    fn image_line(&mut self, step: usize, id: Option<&Digest>) {
        let id = id.map(|d| d.to_string()).unwrap_or_default();
        let _ = writeln!(self.out, "#{step} image {id}");
    }

    /// Build a stage.
    pub(super) fn build_stage(&mut self, index: usize) -> Result<Digest> {
        let stage = self.df.stages[index].clone();
        self.current_stage = Some(stage.name.clone().unwrap_or_else(|| index.to_string()));
        let count = stage.instructions.len() + 1;
        let (step, started) = self.begin(&stage, 1, count, &stage.original);
        let mut st = self.base_state(&stage)?;
        self.done(step, started);
        if self.req.step_images {
            self.image_line(step, st.image.as_ref());
        }
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
                    // Not the Dockerfile's fault: the disk is full.
                    e if e.is_disk_full() => EngineError::Build(format!(
                        "line {}: {}: {e}",
                        ins.line,
                        ins.instruction.keyword()
                    )),
                    // Not the Dockerfile's fault either: the step's
                    // container could not be made or started.
                    e @ (EngineError::Runtime(_)
                    | EngineError::Forked(_)
                    | EngineError::Cgroup(_)
                    | EngineError::Seccomp(_)
                    | EngineError::Rootless(_)
                    | EngineError::Io { .. }) => {
                        EngineError::Build(format!("{where_}: {}: {e}", ins.instruction.keyword()))
                    }
                    e => invalid(
                        "Dockerfile",
                        format!("line {}: {}: {e}", ins.line, ins.instruction.keyword()),
                    ),
                }
            };
            let mut cached = self
                .instruction(&mut st, &ins.instruction, step)
                .map_err(at)?;
            let image = if self.req.step_images {
                let (hit, id) = self.step_image(&mut st)?;
                cached |= hit;
                Some(id)
            } else {
                None
            };
            if cached {
                self.cached(step);
            } else {
                self.done(step, started);
            }
            if let Some(id) = image {
                self.image_line(step, id.as_ref());
            }
            crate::faults::point("build.step-done");
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
}
