//! `pod logs`, `pod top`, `pod stats`: the members' own views, merged.
use super::Pod;
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::logs::Entry;
use crate::Engine;

/// One log entry of a pod's container.
#[derive(Debug, Clone)]
pub struct PodLogEntry {
    /// The container's id.
    pub id: String,
    /// The container's name.
    pub name: String,
    /// The entry.
    pub entry: Entry,
}

impl Engine {
    /// `pod logs`: the entries of the pod's containers (its infra left
    /// out; `container`: one of them by name or id), at most `tail` per
    /// container, merged in time order.
    pub fn pod_logs(
        &self,
        name_or_id: &str,
        container: Option<&str>,
        tail: Option<usize>,
    ) -> Result<Vec<PodLogEntry>> {
        let pod = self.pod(name_or_id)?;
        let mut members: Vec<Container> = self
            .pod_containers(&pod)?
            .into_iter()
            .filter(|c| !c.config.pod_infra)
            .collect();
        if let Some(want) = container {
            let c = self.container(want)?;
            if c.config.pod != pod.id {
                return Err(EngineError::Conflict(format!(
                    "container {} is not in pod {}",
                    c.name(),
                    pod.name
                )));
            }
            members.retain(|m| m.id() == c.id());
        }
        let mut out = Vec::new();
        for c in &members {
            let mut entries = crate::logs::read_all(&self.container_log(c))
                .map_err(|e| EngineError::io(format!("reading the log of {}", c.name()), e))?;
            if let Some(n) = tail {
                let skip = entries.len().saturating_sub(n);
                entries.drain(..skip);
            }
            out.extend(entries.into_iter().map(|entry| PodLogEntry {
                id: c.id().as_str().to_string(),
                name: c.name().to_string(),
                entry,
            }));
        }
        // Stable: a container's own lines keep their order on equal times.
        out.sort_by_key(|e| e.entry.time);
        Ok(out)
    }

    /// `pod top` and `pod stats`: the pod's running containers (its
    /// infra's pause included, as podman lists it), refused when none runs.
    pub fn pod_running(&self, name_or_id: &str) -> Result<(Pod, Vec<Container>)> {
        let pod = self.pod(name_or_id)?;
        let running: Vec<Container> = self
            .pod_containers(&pod)?
            .into_iter()
            .filter(|c| c.is_running())
            .collect();
        if running.is_empty() {
            return Err(EngineError::Conflict(format!(
                "pod {} is not running: start it with berth pod start {}",
                pod.name, pod.name
            )));
        }
        Ok((pod, running))
    }
}
