//! `pod logs`, `pod top`, `pod stats`: the members' own views, merged.
use super::Pod;
use crate::container::Container;
use crate::error::{EngineError, Result};
use crate::Engine;

impl Engine {
    /// The containers whose logs `pod logs` shows: the pod's members but
    /// its infra container, or the one `container` names (refused when it
    /// is not the pod's).
    pub fn pod_log_members(
        &self,
        name_or_id: &str,
        container: Option<&str>,
    ) -> Result<Vec<Container>> {
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
        Ok(members)
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
