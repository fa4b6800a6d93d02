//! `pod start`, `pod stop`, `pod rm`: the infra container first up and
//! last down, the members in between (each a container's own start, stop
//! or removal, so a stop or a removal wins over restart policies as it
//! does for any container).
use model::Signal;

use super::Pod;
use crate::config::Status;
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

/// Join the failures of several containers into one error (podman:
/// `starting some containers`).
fn some_failed(what: &str, failures: Vec<(String, EngineError)>) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failures
        .into_iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    Err(EngineError::Conflict(format!(
        "{what} some containers: {}",
        list.join("; ")
    )))
}

impl Engine {
    /// `pod start`: the infra container, then every member not running
    /// (at once). Must be called while the process is single-threaded.
    pub fn pod_start(&self, name_or_id: &str) -> Result<Pod> {
        let pod = self.pod(name_or_id)?;
        self.ensure_pod_infra(&pod.id)?;
        let names: Vec<String> = self
            .pod_containers(&pod)?
            .into_iter()
            .filter(|c| !c.config.pod_infra && !c.is_running())
            .filter(|c| crate::container::start::startable(c.state.status))
            .map(|c| c.id().as_str().to_string())
            .collect();
        let failures = self
            .start_many(&names)
            .into_iter()
            .filter_map(|(n, r)| r.err().map(|e| (n, e)))
            .collect();
        some_failed("starting", failures)?;
        self.emit("pod", "start", &pod.id, &[("name", pod.name.as_str())]);
        Ok(pod)
    }

    /// Start the pod's infra container alone, unless it runs (`kube play`
    /// runs a pod's init containers in its namespaces before the others).
    pub fn pod_start_infra(&self, name_or_id: &str) -> Result<()> {
        let pod = self.pod(name_or_id)?;
        self.ensure_pod_infra(&pod.id)
    }

    /// `pod stop`: the members (at once, each within `timeout` seconds or
    /// its own stop timeout), then the infra container. Each stop is
    /// recorded before the signal, so no restart policy brings a member
    /// back. Must be called while the process is single-threaded.
    pub fn pod_stop(&self, name_or_id: &str, timeout: Option<i64>) -> Result<Pod> {
        let pod = self.pod(name_or_id)?;
        let all = self.pod_containers(&pod)?;
        let live = |c: &Container| !matches!(c.state.status, Status::Created | Status::Exited);
        let members: Vec<String> = all
            .iter()
            .filter(|c| !c.config.pod_infra && live(c))
            .map(|c| c.id().as_str().to_string())
            .collect();
        let mut failures: Vec<(String, EngineError)> = self
            .stop_many(&members, timeout)
            .into_iter()
            .filter_map(|(n, r)| r.err().map(|e| (n, e)))
            .collect();
        for infra in all.iter().filter(|c| c.config.pod_infra && live(c)) {
            if let Err(e) = self.stop(infra.id().as_str(), timeout) {
                failures.push((infra.name().to_string(), e));
            }
        }
        some_failed("stopping", failures)?;
        self.emit("pod", "stop", &pod.id, &[("name", pod.name.as_str())]);
        Ok(pod)
    }

    /// `pod rm`: refused while a container of the pod runs unless
    /// `force`; then the members (with their anonymous volumes), the infra
    /// container and the pod's row. With `force` every container is
    /// killed first (its removal wins over its restart policy): nothing of
    /// the pod is left on the host.
    pub fn pod_remove(&self, name_or_id: &str, force: bool) -> Result<Pod> {
        let pod = self.pod(name_or_id)?;
        let all = self.pod_containers(&pod)?;
        if !force {
            let running: Vec<&str> = all
                .iter()
                .filter(|c| c.is_running() || c.state.status == Status::Restarting)
                .map(|c| c.name())
                .collect();
            if !running.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "pod {} has running containers ({}): stop it with berth pod stop {} or remove it with -f",
                    pod.id,
                    running.join(", "),
                    pod.name
                )));
            }
        }
        let (infra, members): (Vec<Container>, Vec<Container>) =
            all.into_iter().partition(|c| c.config.pod_infra);
        let mut failures = Vec::new();
        for c in members.into_iter().chain(infra) {
            let name = c.name().to_string();
            match self.remove_container(c, force, true) {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => failures.push((name, e)),
            }
        }
        some_failed("removing", failures)?;
        crate::faults::point("pod-rm.containers-removed");
        self.store().remove_pod(&pod.id)?;
        // The cgroup last: a removal cut short here leaves it marked as
        // this root's, and `system check --repair` removes it.
        crate::faults::point("pod-rm.row-removed");
        self.pod_cgroup_remove(&pod.id, &pod.config.cgroup_path)?;
        self.emit("pod", "remove", &pod.id, &[("name", pod.name.as_str())]);
        Ok(pod)
    }

    /// `pod kill`: `sig` to every running container of the pod, its
    /// members first (SIGKILL or a stop signal is a stop: it wins over
    /// restart policies, as `kill` does).
    pub fn pod_kill(&self, name_or_id: &str, sig: Signal) -> Result<Pod> {
        let pod = self.pod(name_or_id)?;
        let mut all = self.pod_containers(&pod)?;
        // Infra last: members first, as `pod stop`.
        all.sort_by_key(|c| c.config.pod_infra);
        let running: Vec<Container> = all.into_iter().filter(|c| c.is_running()).collect();
        if running.is_empty() {
            return Err(EngineError::Conflict(format!(
                "pod {} is not running: no container to signal",
                pod.name
            )));
        }
        let failures = running
            .iter()
            .filter_map(|c| {
                self.kill(c.id().as_str(), sig)
                    .err()
                    .map(|e| (c.name().to_string(), e))
            })
            .collect();
        some_failed("killing", failures)?;
        self.emit("pod", "kill", &pod.id, &[("name", pod.name.as_str())]);
        Ok(pod)
    }

    /// `pod pause`: every running container of the pod, its infra
    /// included, frozen (podman skips the others; none running is not an
    /// error).
    pub fn pod_pause(&self, name_or_id: &str) -> Result<Pod> {
        self.pod_each(name_or_id, Status::Running, ("pause", "pausing"), &|c| {
            self.pause(c)
        })
    }

    /// `pod unpause`: every paused container of the pod thawed; `None`
    /// (nothing done) for a pod that is not paused, which podman 4.3
    /// passes over without a word.
    pub fn pod_unpause(&self, name_or_id: &str) -> Result<Option<Pod>> {
        let pod = self.pod(name_or_id)?;
        if self.pod_status(&self.pod_containers(&pod)?) != super::PodStatus::Paused {
            return Ok(None);
        }
        self.pod_each(&pod.id, Status::Paused, ("unpause", "unpausing"), &|c| {
            self.unpause(c)
        })
        .map(Some)
    }

    /// `op` on each container of the pod in `status`; the pod's event
    /// `action` once all went, else an error naming what failed `doing`.
    fn pod_each(
        &self,
        name_or_id: &str,
        status: Status,
        (action, doing): (&str, &str),
        op: &dyn Fn(&str) -> Result<Container>,
    ) -> Result<Pod> {
        let pod = self.pod(name_or_id)?;
        let failures = self
            .pod_containers(&pod)?
            .iter()
            .filter(|c| c.state.status == status)
            .filter_map(|c| op(c.id().as_str()).err().map(|e| (c.name().to_string(), e)))
            .collect();
        some_failed(doing, failures)?;
        self.emit("pod", action, &pod.id, &[("name", pod.name.as_str())]);
        Ok(pod)
    }

    /// `pod prune`: remove every pod none of whose containers runs; the
    /// removed pods.
    pub fn pod_prune(&self) -> Result<Vec<Pod>> {
        let mut removed = Vec::new();
        for s in self.pod_list()? {
            let live = s
                .containers
                .iter()
                .any(|c| c.is_running() || c.state.status == Status::Restarting);
            if !live {
                removed.push(self.pod_remove(&s.pod.id, false)?);
            }
        }
        Ok(removed)
    }
}
