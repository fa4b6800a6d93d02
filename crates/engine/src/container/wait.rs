//! `wait` with Docker's conditions: `not-running`, `next-exit` (what
//! `docker run` asks for before it starts the container) and `removed`
//! (`docker run --rm`).
use std::str::FromStr;
use std::time::Duration;

use crate::error::{EngineError, Result};
use crate::events::Tail;
use crate::Engine;

/// When a wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// At once if the container is not running, else when it stops.
    #[default]
    NotRunning,
    /// When the container next exits, even if it has not started yet.
    NextExit,
    /// When the container is removed.
    Removed,
}

impl FromStr for WaitCondition {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::invalid(
                "wait",
                format!("invalid condition: \"{other}\""),
            )),
        }
    }
}

/// How often the container's record is looked at besides the events
/// (a monitor killed with SIGKILL emits none).
const POLL: Duration = Duration::from_millis(100);

impl Engine {
    /// Block until `cond` holds for the container and return its exit
    /// code; stop early (with the last known code) once `keep_waiting`
    /// says no (the client went away).
    pub fn wait_for(
        &self,
        name_or_id: &str,
        cond: WaitCondition,
        keep_waiting: &dyn Fn() -> bool,
    ) -> Result<i32> {
        // Events from now on: an exit between here and the first look at
        // the record is not missed.
        let mut tail = Tail::at_end(&self.paths().root);
        let c = self.container(name_or_id)?;
        let id = c.id().as_str().to_string();
        let mut code = c.state.exit_code;
        if cond == WaitCondition::NotRunning && !c.is_running() {
            return Ok(code);
        }
        let first_finish = c.state.finished_at;
        // The record went away: a `--rm` monitor forgets the container
        // before it writes the `die` and `destroy` events; wait a little
        // for them (they carry the exit code).
        let mut gone: Option<std::time::Instant> = None;
        let began = std::time::Instant::now();
        loop {
            let monitor: i32;
            for e in tail.poll() {
                if e.kind != "container" || e.actor.id != id {
                    continue;
                }
                match e.action.as_str() {
                    "die" => {
                        code = e
                            .actor
                            .attributes
                            .get("exitCode")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(code);
                        if cond != WaitCondition::Removed {
                            return Ok(code);
                        }
                    }
                    "destroy" => return Ok(code),
                    _ => {}
                }
            }
            if let Some(at) = gone {
                if at.elapsed() > Duration::from_secs(2) {
                    return Ok(code);
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match self.container(&id) {
                Ok(now) => {
                    monitor = if now.state.monitor_alive() {
                        now.state.monitor_pid
                    } else {
                        0
                    };
                    let exited =
                        !now.is_running() && now.state.status != crate::config::Status::Restarting;
                    let finished_again =
                        now.state.finished_at.is_some() && now.state.finished_at != first_finish;
                    match cond {
                        WaitCondition::NotRunning if exited => return Ok(now.state.exit_code),
                        WaitCondition::NextExit if exited && finished_again => {
                            return Ok(now.state.exit_code)
                        }
                        _ => {}
                    }
                    if finished_again || exited {
                        code = now.state.exit_code;
                    }
                }
                Err(e) if e.is_not_found() => {
                    gone = Some(std::time::Instant::now());
                    continue;
                }
                Err(e) => return Err(e),
            }
            if !keep_waiting() {
                return Ok(code);
            }
            // Briskly at first (`docker run` waits before the start), and
            // woken at once when a running container's monitor ends.
            let pause = if began.elapsed() < Duration::from_secs(2) {
                Duration::from_millis(10)
            } else {
                POLL
            };
            if monitor > 0 {
                super::ops::wait_pid_exit(monitor, Some(pause));
            } else {
                std::thread::sleep(pause);
            }
        }
    }
}
