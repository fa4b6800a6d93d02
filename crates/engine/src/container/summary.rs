//! A container as `GET /containers/json` lists it (Docker's
//! `types.Container`), and the status line `ps` shows: the daemon's words,
//! computed in one place for the CLI and the API.
use chrono::Utc;
use serde_json::{json, Value};

use crate::config::Status;
use crate::container::Container;
use crate::health::HealthStatus;
use crate::Engine;

/// Docker's `units.HumanDuration`: "Less than a second", "5 seconds",
/// "About a minute", "3 hours", "2 weeks"…
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = d.num_minutes();
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (d.num_seconds() as f64 / 3600.0).round() as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

/// The status line: "Up 5 minutes (healthy)", "Exited (3) 2 seconds ago",
/// "Created", "Restarting (1) 3 seconds ago", "Up 2 seconds (Paused)".
pub fn status_text(c: &Container) -> String {
    let now = Utc::now();
    let health = match c.state.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match c.state.status {
        Status::Running => format!(
            "Up {}{health}",
            human_duration(now - c.state.started_at.unwrap_or(now))
        ),
        Status::Restarting => match c.state.finished_at {
            Some(f) => format!(
                "Restarting ({}) {} ago",
                c.state.exit_code,
                human_duration(now - f)
            ),
            None => "Restarting".into(),
        },
        // No health while paused, as dockerd.
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - c.state.started_at.unwrap_or(now))
        ),
        Status::Created => "Created".into(),
        Status::Exited | Status::Dead => match c.state.finished_at {
            Some(f) => format!(
                "Exited ({}) {} ago",
                c.state.exit_code,
                human_duration(now - f)
            ),
            None => format!("Exited ({})", c.state.exit_code),
        },
        other => other.as_str().to_string(),
    }
}

/// The command as the daemon lists it: arguments holding a space in
/// single quotes.
pub fn command_line(c: &Container) -> String {
    c.args()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            if i > 0 && a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Engine {
    /// The image a listing shows for `c`, as dockerd: the name it was made
    /// from while that name still means its image, else the image's id
    /// (`sha256:…`; the tag was removed or moved to another image).
    pub fn listed_image(&self, c: &Container) -> String {
        let id = c.record.image_id.to_string();
        if c.record.image_ref == id {
            return id;
        }
        match self.store().resolve_image(&c.record.image_ref) {
            Ok(img) if img.id == c.record.image_id => c.record.image_ref.clone(),
            _ => id,
        }
    }

    /// `list` as entries of `GET /containers/json` (networks and leases
    /// read once for all of them).
    pub fn container_summaries(&self, list: &[Container]) -> Vec<Value> {
        let lookup = crate::container::inspect::NetLookup::load(self);
        let link_names = self.link_names();
        list.iter()
            .map(|c| {
                let mut v = self.summary_in(c, &lookup);
                // Its link names (`/container/alias`) first, as dockerd.
                if let Some(links) = link_names.get(c.id().as_str()) {
                    let mut names = links.clone();
                    names.push(format!("/{}", c.name()));
                    v["Names"] = json!(names);
                }
                v
            })
            .collect()
    }

    pub(crate) fn summary_in(
        &self,
        c: &Container,
        lookup: &crate::container::inspect::NetLookup,
    ) -> Value {
        let ports: Vec<Value> = c
            .api_ports()
            .iter()
            .map(|p| {
                let mut v = json!({});
                if !p.ip.is_empty() {
                    v["IP"] = json!(p.ip);
                }
                v["PrivatePort"] = json!(p.private_port);
                if p.public_port != 0 {
                    v["PublicPort"] = json!(p.public_port);
                }
                v["Type"] = json!(p.proto);
                v
            })
            .collect();
        let mounts = self.inspect_mounts(c);
        let settings = self.network_settings_in(c, lookup);
        json!({
            "Id": c.id().as_str(),
            "Names": [format!("/{}", c.name())],
            "Image": self.listed_image(c),
            "ImageID": c.record.image_id.to_string(),
            "Command": command_line(c),
            "Created": c.record.created.timestamp(),
            "Ports": ports,
            "Labels": c.config.labels,
            "State": c.state.status.as_str(),
            "Status": status_text(c),
            "HostConfig": {"NetworkMode": c.config.docker_network_mode()},
            "NetworkSettings": {"Networks": settings["Networks"]},
            "Mounts": mounts,
        })
    }
}
