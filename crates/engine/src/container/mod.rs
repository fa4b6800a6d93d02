//! Container operations, one file per verb (youki's layout).

/// `HEAD|GET|PUT …/archive`: a path's stat, its tar, a tar extracted.
pub mod archive;
/// `attach`: connecting to a monitor, terminal sizes.
pub mod attach;
/// `diff`/`commit` of copied roots.
mod copydiff;
/// Copied root filesystems (podman's `vfs` storage driver).
pub mod copyroot;
/// `create`: validate options, merge the image config, record the container.
pub mod create;
/// `exec`: run a process in a running container.
pub mod exec;
/// `diff`, `export`, `commit`, `cp`.
pub mod fs;
/// `inspect`: Docker-shaped JSON.
pub mod inspect;
/// Docker's legacy links: variables, hosts entries, link names.
pub mod links;
/// `ps`: the containers, filtered as Docker.
pub mod list;
/// `stop`, `kill`, `wait`, `rm`, `rename`, `top`, `ps`.
pub mod ops;
/// A container's processes where it has no cgroup.
pub(crate) mod procs;
/// `container prune`: stopped containers, filtered.
pub mod prune;
/// The disk space a container's writable layer takes (`system df`).
mod size;
/// `start`/`run`: prepare the spec and fork the monitor.
pub mod start;
/// A container as the API lists it; the status line.
pub mod summary;
/// `top`: the host's `ps`, kept to the container's processes.
pub mod top;
/// A server's view of every container, kept up to date between listings.
pub mod view;
/// `wait` with Docker's conditions.
pub mod wait;

use crate::config::{ContainerConfig, ContainerState, Status};
use crate::error::{EngineError, Result};

/// A container record with its config and state decoded.
#[derive(Debug, Clone)]
pub struct Container {
    /// The stored row.
    pub record: store::ContainerRecord,
    /// Its configuration.
    pub config: ContainerConfig,
    /// Its state, corrected for a dead monitor (a running container whose
    /// init no longer exists reads as exited).
    pub state: ContainerState,
}

impl Container {
    /// Decode a record.
    pub fn from_record(record: store::ContainerRecord) -> Result<Container> {
        Container::decode(record, &|_| None)
    }

    /// Decode a record; when it looks dead (see below), read it once more
    /// through `reread` before believing that: the monitor may have
    /// recorded the exit and gone between our read and our look at /proc.
    pub(crate) fn decode(
        record: store::ContainerRecord,
        reread: &dyn Fn(&model::ContainerId) -> Option<store::ContainerRecord>,
    ) -> Result<Container> {
        let config: ContainerConfig = serde_json::from_value(record.config.clone())
            .map_err(|e| EngineError::io("decoding container config", std::io::Error::other(e)))?;
        let state: ContainerState = serde_json::from_value(record.state.clone())
            .map_err(|e| EngineError::io("decoding container state", std::io::Error::other(e)))?;
        Container::settle(record, config, state, reread)
    }

    /// Decode a row's text straight into the typed config and state, as
    /// `decode` does; the record's raw `config` and `state` documents are
    /// not kept (`Null`): for a listing's copy, not a read-modify-write.
    pub(crate) fn decode_text(
        text: &store::ContainerText<'_>,
        reread: &dyn Fn(&model::ContainerId) -> Option<store::ContainerRecord>,
    ) -> Result<Container> {
        let config: ContainerConfig = serde_json::from_str(text.config)
            .map_err(|e| EngineError::io("decoding container config", std::io::Error::other(e)))?;
        let state: ContainerState = serde_json::from_str(text.state)
            .map_err(|e| EngineError::io("decoding container state", std::io::Error::other(e)))?;
        Container::settle(text.record_without_documents()?, config, state, reread)
    }

    /// Does it read as running (or about to run again) while neither its
    /// init nor its monitor is alive? Such a record is stale: the monitor
    /// died without recording the end.
    pub(crate) fn looks_dead(state: &ContainerState) -> bool {
        matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && !state.is_alive()
            && !state.monitor_alive()
    }

    /// The decoded record, its state corrected for dead processes.
    fn settle(
        record: store::ContainerRecord,
        config: ContainerConfig,
        mut state: ContainerState,
        reread: &dyn Fn(&model::ContainerId) -> Option<store::ContainerRecord>,
    ) -> Result<Container> {
        // A running container whose init and monitor are both gone (a
        // crash, a reboot) reads as exited. While the monitor lives it is
        // about to record the exit itself.
        if Container::looks_dead(&state) {
            // Both were seen gone after that read: a record read now is
            // final (a monitor writes its last state before it exits).
            if let Some(fresh) = reread(&record.id) {
                return Container::decode(fresh, &|_| None);
            }
            state.status = Status::Exited;
            state.pid = 0;
            if state.exit_code == 0 {
                state.exit_code = 255;
            }
        }
        Ok(Container {
            record,
            config,
            state,
        })
    }

    /// The name without the leading slash.
    pub fn name(&self) -> &str {
        self.record.name.trim_start_matches('/')
    }

    /// The id.
    pub fn id(&self) -> &model::ContainerId {
        &self.record.id
    }

    /// Is its init running?
    pub fn is_running(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Paused)
    }

    /// The command line (entrypoint + cmd).
    pub fn args(&self) -> Vec<String> {
        let mut a = self.config.entrypoint.clone();
        a.extend(self.config.cmd.iter().cloned());
        a
    }
}

impl crate::Engine {
    /// A container's read-only layer dirs, base first: its image's, then
    /// any the builder put over them.
    pub(crate) fn lower_dirs(&self, c: &Container) -> Result<Vec<std::path::PathBuf>> {
        let mut dirs = self.store().layer_dirs(&c.record.image_id)?;
        dirs.extend(c.config.extra_layers.iter().cloned());
        Ok(dirs)
    }

    /// Look a container up by id, name or id prefix.
    /// A link name (`container/alias`) stands for the link's target.
    pub fn container(&self, name_or_id: &str) -> Result<Container> {
        let store = self.store();
        let rec = match store.container(name_or_id) {
            Ok(r) => r,
            Err(e @ store::StoreError::NotFound { .. })
                if name_or_id.trim_start_matches('/').contains('/') =>
            {
                return self.link_target(name_or_id).ok_or_else(|| e.into());
            }
            Err(e) => return Err(e.into()),
        };
        Container::decode(rec, &|id| store.container(id.as_str()).ok())
    }

    /// Every container.
    pub fn containers(&self) -> Result<Vec<Container>> {
        let store = self.store();
        store
            .list_containers()?
            .into_iter()
            .map(|r| Container::decode(r, &|id| store.container(id.as_str()).ok()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: &ContainerState) -> store::ContainerRecord {
        store::ContainerRecord {
            id: model::ContainerId::random(),
            name: "x".into(),
            image_id: model::Digest::of(b"img"),
            image_ref: "img".into(),
            created: chrono::Utc::now(),
            config: serde_json::to_value(ContainerConfig::default()).unwrap(),
            state: serde_json::to_value(state).unwrap(),
        }
    }

    #[test]
    fn reused_pids_do_not_keep_a_dead_container_running() {
        let me = std::process::id() as i32;
        let start = crate::config::process_start_time(me).unwrap();
        // Init and monitor pids now belong to another process (this one):
        // their start times do not match, so the container reads as exited.
        let stale = ContainerState {
            status: Status::Running,
            pid: me,
            pid_start: start + 1,
            monitor_pid: me,
            monitor_start: start + 1,
            ..Default::default()
        };
        let c = Container::from_record(record(&stale)).unwrap();
        assert!(!c.is_running());
        assert_eq!(c.state.exit_code, 255);
        // A live monitor keeps it running until it records the exit.
        let live_monitor = ContainerState {
            monitor_start: start,
            ..stale
        };
        assert!(Container::from_record(record(&live_monitor))
            .unwrap()
            .is_running());
    }

    #[test]
    fn a_record_that_looks_dead_is_read_again_before_it_is_believed() {
        // The monitor recorded exit 0 and left between the first read and
        // the look at /proc: the second read's answer stands, not 255.
        let gone = ContainerState {
            status: Status::Running,
            pid: i32::MAX - 1,
            monitor_pid: i32::MAX - 2,
            ..Default::default()
        };
        let first = record(&gone);
        let mut fresh = first.clone();
        fresh.state = serde_json::to_value(ContainerState {
            status: Status::Exited,
            exit_code: 0,
            ..Default::default()
        })
        .unwrap();
        let c = Container::decode(first, &|_| Some(fresh.clone())).unwrap();
        assert_eq!((c.state.status, c.state.exit_code), (Status::Exited, 0));
    }
}
