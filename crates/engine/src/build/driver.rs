//! The build driver: which stages the target needs, in what order, built
//! in parallel by forked builders, and the progress lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use dockerfile::{Dockerfile, Instruction, Stage};
use model::Digest;
use serde_json::{json, Value};

use crate::error::{EngineError, Result};

use super::{invalid, mounts, Builder, Built};

/// The stage `--target` names (default: the last).
pub(super) fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize> {
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

impl Builder<'_> {
    pub(super) fn now(&self) -> String {
        let t: DateTime<Utc> = match self.epoch {
            Some(e) => DateTime::from_timestamp(e, 0).unwrap_or_else(Utc::now),
            None => Utc::now(),
        };
        t.to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    /// The stages the target needs, in an order that builds dependencies first.
    pub(super) fn plan(&self) -> Result<Vec<usize>> {
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

    pub(super) fn run(&mut self) -> Result<Digest> {
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

    pub(super) fn begin(
        &mut self,
        stage: &Stage,
        index: usize,
        count: usize,
        text: &str,
    ) -> (usize, Instant) {
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

    pub(super) fn done(&mut self, step: usize, started: Instant) {
        let secs = started.elapsed().as_secs_f64();
        let _ = writeln!(self.out, "#{step} DONE {secs:.1}s");
    }

    pub(super) fn cached(&mut self, step: usize) {
        let _ = writeln!(self.out, "#{step} CACHED");
    }
}
