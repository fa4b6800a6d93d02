//! `berth exec`: a new process in a running container, with the
//! container's namespaces, cgroup, capabilities and seccomp filter.
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::error::{EngineError, Result};
use crate::Engine;

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command.
    pub cmd: Vec<String>,
    /// `-e` additions.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-t`.
    pub tty: bool,
}

impl Engine {
    /// A pty from the running container's own devpts (for `exec -t`), so
    /// the process sees a terminal that exists in its /dev/pts.
    pub fn container_pty(&self, name_or_id: &str) -> Result<(OwnedFd, OwnedFd)> {
        let c = self.container(name_or_id)?;
        if !c.is_running() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not running".into(),
            });
        }
        let root_path = format!("/proc/{}/root", c.state.pid);
        let root = std::fs::File::open(&root_path)
            .map_err(|e| EngineError::io(format!("opening {root_path}"), e))?;
        sys::tty::open_pty_in(std::os::fd::AsFd::as_fd(&root))
            .map_err(|e| EngineError::io("allocating a terminal in the container", e))
    }

    /// Start `req.cmd` in the container; returns the pid (a child of the
    /// caller) once it has been exec'd. Must be called single-threaded.
    pub fn exec(&self, name_or_id: &str, req: &ExecRequest, stdio: [OwnedFd; 3]) -> Result<i32> {
        let c = self.container(name_or_id)?;
        if !c.is_running() {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is not running".into(),
            });
        }
        if c.state.status == crate::config::Status::Paused {
            return Err(EngineError::State {
                name: c.id().as_str().to_string(),
                problem: "is paused, unpause the container before exec".into(),
            });
        }
        if req.cmd.is_empty() {
            return Err(EngineError::invalid("exec", "no command given"));
        }
        let id = c.id().clone();
        let dir = self.store().container_dir(&id);
        let layers = self.lower_dirs(&c)?;
        let mut search: Vec<PathBuf> = vec![dir.join("upper")];
        search.extend(layers.iter().rev().cloned());
        if let Some(copy) = self.copied_root(&id) {
            search = vec![copy];
        }
        let user_spec = req.user.clone().unwrap_or_else(|| c.config.user.clone());
        let mut user = crate::spec::resolve_user(&user_spec, &search)?;
        // The container's `--group-add` holds for its execs too (dockerd).
        crate::spec::add_groups(&mut user, &c.config.group_add, &search)?;
        let mut config = c.config.clone();
        // An exec sees the links' variables too (dockerd fails the exec
        // when a link's target stopped; here it goes without them).
        if let Ok(links) = self.link_setup(&c) {
            if !links.env.is_empty() {
                config.env = crate::container::links::replace_or_append(links.env, &c.config.env);
            }
        }
        config.tty = req.tty;
        config.init = false;
        for e in &req.env {
            let (key, value) = match e.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                // A bare name unsets the variable (the CLI filled in the
                // ones set where it runs, as docker's CLI does; the engine
                // never reads its own environment for a container).
                None => (e.clone(), None),
            };
            config
                .env
                .retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
            if let Some(v) = value {
                config.env.push(format!("{key}={v}"));
            }
        }
        if let Some(w) = &req.workdir {
            if !w.starts_with('/') {
                return Err(EngineError::invalid(
                    "-w",
                    format!("{w:?}: must be an absolute path"),
                ));
            }
            config.working_dir = w.clone();
        }
        // exec enters the init's namespaces; the spec gives the process.
        config.network_mode = crate::config::NetworkMode::None;
        let spec = crate::spec::build(&crate::spec::SpecInputs {
            id: id.as_str(),
            config: &config,
            rootfs: &dir.join("rootfs"),
            container_dir: &dir,
            joined: None,
            pid_ns: None,
            ipc_ns: None,
            shm: None,
            uts_ns: None,
            user_ns: None,
            user: &user,
            init_binary: None,
            args: &req.cmd,
            mounts: &[],
            ipv6: false,
        })?;
        let bpf = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => {
                Some(runtime::seccomp::BpfCache::new(self.seccomp_cache()).get_or_compile(s)?)
            }
            None => None,
        };
        let hierarchy = Self::container_hierarchy()?;
        let cg = runtime::cgroup::Cgroup::open(&hierarchy, &c.config.cgroup_path(id.as_str()));
        let join_cgroup = |pid: i32| -> Result<(), runtime::RuntimeError> {
            cg.add_pid(pid)
                .map_err(|e| runtime::RuntimeError::Hook(e.to_string()))
        };
        let pid = runtime::exec::spawn(runtime::exec::ExecRequest {
            init_pid: c.state.pid,
            spec: &spec,
            stdio,
            seccomp_bpf: bpf.as_deref(),
            before_release: &join_cgroup,
        })?;
        Ok(pid)
    }
}
