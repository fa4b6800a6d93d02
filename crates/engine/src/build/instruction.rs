//! One Dockerfile instruction applied to a stage: variables expanded, the
//! config changed, or a layer made.

use dockerfile::{Command, Healthcheck, Instruction};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};

use super::{copy, ignore, invalid, key_of, Builder, NewLayer, StageState};

impl Builder<'_> {
    pub(super) fn expand(&self, st: &StageState, word: &str) -> Result<String> {
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
    pub(super) fn instruction(
        &mut self,
        st: &mut StageState,
        ins: &Instruction,
        step: usize,
    ) -> Result<bool> {
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
    pub(super) fn layer_step(
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
