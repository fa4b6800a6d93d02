//! An external OCI runtime binary (runc, crun), driven through the standard
//! runtime CLI with a bundle, for compatibility and as a side-by-side check
//! of the built-in path.
//!
//! Start sequence: mount the overlay on the host at the spec's root path,
//! write `config.json`, `<rt> create --pid-file` (the init inherits our
//! stdio pipes), then `<rt> start`. The caller becomes a child subreaper
//! first, so the init is re-parented to it when `create` exits and its exit
//! status can be reaped like the built-in runtime's.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{Runtime, RuntimeError, SpawnRequest, Spawned};

/// An OCI runtime binary and its state dir.
#[derive(Debug, Clone)]
pub struct External {
    binary: PathBuf,
    state: PathBuf,
    name: String,
}

impl External {
    /// Find `name` (a path, or a binary on `PATH`); its state goes under
    /// `state_root/<name>`.
    pub fn find(name: &str, state_root: &Path) -> Result<External, RuntimeError> {
        let binary = if name.contains('/') {
            PathBuf::from(name)
        } else {
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| RuntimeError::InvalidSpec {
                    field: "runtime",
                    reason: format!(
                        "unknown runtime {name:?}: use \"berth\" (built in) or install {name} (e.g. apt-get install {name}) or give its path"
                    ),
                })?
        };
        if !binary.is_file() {
            return Err(RuntimeError::InvalidSpec {
                field: "runtime",
                reason: format!("runtime binary {} does not exist", binary.display()),
            });
        }
        let short = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_string());
        Ok(External {
            state: state_root.join(&short),
            name: short,
            binary,
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.state);
        c
    }

    fn run_quiet(&self, args: &[&str]) -> Result<(), RuntimeError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RuntimeError::sys(format!("running {}", self.binary.display()), e))?;
        if !out.status.success() {
            return Err(RuntimeError::External {
                runtime: self.name.clone(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }
}

fn mount_overlay_on_host(req: &SpawnRequest<'_>, target: &Path) -> Result<(), RuntimeError> {
    // Absolute lower dirs: the caller's cwd is not ours to change.
    let (data, _) = req.overlay.mount_data(false);
    std::fs::create_dir_all(target)
        .map_err(|e| RuntimeError::sys(format!("creating {}", target.display()), e))?;
    if let Some(copy) = &req.overlay.copy {
        return mount(
            Some(copy.as_path()),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| {
            RuntimeError::sys(
                format!("binding {} on {}", copy.display(), target.display()),
                e,
            )
        });
    }
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| RuntimeError::sys(format!("mounting the overlay on {}", target.display()), e))
}

impl Runtime for External {
    fn name(&self) -> &str {
        &self.name
    }

    fn spawn(&self, req: SpawnRequest<'_>) -> Result<Spawned, RuntimeError> {
        let terminal = req
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let root = req
            .spec
            .root()
            .as_ref()
            .map(|r| r.path().clone())
            .ok_or_else(|| RuntimeError::InvalidSpec {
                field: "root",
                reason: "missing".into(),
            })?;
        std::fs::create_dir_all(&self.state)
            .map_err(|e| RuntimeError::sys(format!("creating {}", self.state.display()), e))?;
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| RuntimeError::sys("becoming a subreaper", e))?;
        mount_overlay_on_host(&req, &root)?;
        let config = req.bundle.join("config.json");
        let json = serde_json::to_vec_pretty(req.spec)
            .map_err(|e| RuntimeError::sys("encoding config.json", std::io::Error::other(e)))?;
        std::fs::write(&config, json)
            .map_err(|e| RuntimeError::sys(format!("writing {}", config.display()), e))?;
        let pid_file = req.bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        // A leftover container of the same id (a crash) would make create fail.
        let _ = self.run_quiet(&["delete", "--force", req.id]);

        let [stdin, stdout, stderr] = req.stdio;
        let log = req.bundle.join(format!("{}.log", self.name));
        let _ = std::fs::remove_file(&log);
        // With a terminal the runtime makes the pty inside the container and
        // hands us its master over a unix socket (--console-socket).
        // (Short path: unix socket names are limited to 108 bytes.)
        let console_path = self
            .state
            .join(format!("{}.console", &req.id[..req.id.len().min(12)]));
        let console_listener = if terminal {
            let _ = std::fs::remove_file(&console_path);
            Some(
                std::os::unix::net::UnixListener::bind(&console_path).map_err(|e| {
                    RuntimeError::sys(format!("binding {}", console_path.display()), e)
                })?,
            )
        } else {
            None
        };
        let mut create = self.command();
        create.arg("--log").arg(&log).arg("create");
        if terminal {
            create.arg("--console-socket").arg(&console_path);
        }
        let out = create
            .arg("--bundle")
            .arg(req.bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(req.id)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .status()
            .map_err(|e| RuntimeError::sys(format!("running {} create", self.binary.display()), e));
        let fail = |e: RuntimeError| {
            let _ = self.cleanup(req.id, &root);
            e
        };
        let status = out.map_err(fail)?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let last = text
                .lines()
                .rev()
                .find(|l| l.contains("error") || l.contains("level=fatal"))
                .map(|l| {
                    // JSON log lines carry the message in "msg".
                    serde_json::from_str::<serde_json::Value>(l)
                        .ok()
                        .and_then(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
                        .unwrap_or_else(|| l.to_string())
                })
                .unwrap_or_else(|| format!("create failed ({status})"));
            return Err(fail(RuntimeError::External {
                runtime: self.name.clone(),
                message: last,
            }));
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                fail(RuntimeError::External {
                    runtime: self.name.clone(),
                    message: "create wrote no pid file".into(),
                })
            })?;
        let console = match &console_listener {
            Some(l) => {
                l.set_nonblocking(true)
                    .map_err(|e| fail(RuntimeError::sys("console socket", e)))?;
                let (conn, _) = l.accept().map_err(|e| {
                    fail(RuntimeError::External {
                        runtime: self.name.clone(),
                        message: format!("it sent no console: {e}"),
                    })
                })?;
                conn.set_nonblocking(false)
                    .map_err(|e| fail(RuntimeError::sys("console socket", e)))?;
                let master = sys::socket::recv_fd(std::os::fd::AsFd::as_fd(&conn))
                    .map_err(|e| fail(RuntimeError::sys("receiving the console", e)))?;
                Some(master)
            }
            None => None,
        };
        drop(console_listener);
        let _ = std::fs::remove_file(&console_path);
        // The runtime's child cannot hold the gate: wait for it here.
        if let Some(gate) = req.exec_gate {
            crate::builtin::child::wait_gate(gate).map_err(|f| {
                fail(RuntimeError::Start {
                    code: f.code,
                    message: f.message,
                })
            })?;
        }
        (req.before_release)(pid).map_err(fail)?;
        self.run_quiet(&["start", req.id]).map_err(fail)?;
        Ok(Spawned {
            wait_pid: pid,
            init_pid: pid,
            console,
        })
    }

    fn signal(&self, _id: &str, init_pid: i32, signal: i32) -> Result<(), RuntimeError> {
        let sig = Signal::try_from(signal)
            .map_err(|e| RuntimeError::sys(format!("signal {signal}"), e))?;
        kill(Pid::from_raw(init_pid), sig)
            .map_err(|e| RuntimeError::sys(format!("sending {sig} to pid {init_pid}"), e))
    }

    fn cleanup(&self, id: &str, rootfs: &Path) -> Result<(), RuntimeError> {
        let deleted = self.run_quiet(&["delete", "--force", id]);
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
        deleted
    }
}
