//! Healthchecks: the image's `HEALTHCHECK` or `--health-*`, probed by the
//! container's monitor (see `monitor::Supervisor`), with Docker's rules for
//! the start period, retries and the kept log, and `--health-on-failure`.
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Docker's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default probe timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval during the start period.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// Default consecutive failures before unhealthy.
pub const DEFAULT_RETRIES: u32 = 3;
/// Probe results kept in the state.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of probe output kept per result.
pub const MAX_OUTPUT: usize = 4096;

/// Docker's `Config.Healthcheck` (durations in nanoseconds; 0 = default or
/// inherited from the image).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args...]` or `["CMD-SHELL", command]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Between probes.
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// A probe running longer is killed and counts as a failure.
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Failures during this time after start do not count.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Between probes during the start period.
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Consecutive failures that make the container unhealthy.
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

/// Docker leaves zero durations and counts out (`omitempty`).
fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn dur(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

impl HealthConfig {
    /// The command a probe runs, or `None` when the check is disabled.
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD") if self.test.len() > 1 => Some(self.test[1..].to_vec()),
            Some("CMD-SHELL") if self.test.len() > 1 => Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                self.test[1..].join(" "),
            ]),
            _ => None,
        }
    }

    /// What a probe does: a command (`CMD`, `CMD-SHELL`), or berth's own
    /// network probes (`TCP PORT`, `HTTP-GET PORT PATH`: Kubernetes'
    /// tcpSocket and httpGet, made by `kube play`), which the monitor runs
    /// itself in the container's network namespace without needing any
    /// program in the image. `None`: disabled.
    pub fn probe(&self) -> Option<ProbeKind> {
        if let Some(cmd) = self.command() {
            return Some(ProbeKind::Exec(cmd));
        }
        let port = |s: &String| s.parse::<u16>().ok().filter(|p| *p != 0);
        match self.test.as_slice() {
            [kind, p] if kind == "TCP" => port(p).map(|port| ProbeKind::Tcp { port }),
            [kind, p, path] if kind == "HTTP-GET" && path.starts_with('/') => {
                port(p).map(|port| ProbeKind::HttpGet {
                    port,
                    path: path.clone(),
                })
            }
            _ => None,
        }
    }

    /// Interval between probes.
    pub fn interval(&self) -> Duration {
        dur(self.interval, DEFAULT_INTERVAL)
    }

    /// Probe timeout.
    pub fn timeout(&self) -> Duration {
        dur(self.timeout, DEFAULT_TIMEOUT)
    }

    /// Start period.
    pub fn start_period(&self) -> Duration {
        dur(self.start_period, Duration::ZERO)
    }

    /// Interval during the start period.
    pub fn start_interval(&self) -> Duration {
        dur(self.start_interval, DEFAULT_START_INTERVAL)
    }

    /// Retries.
    pub fn retries(&self) -> u32 {
        if self.retries > 0 {
            self.retries as u32
        } else {
            DEFAULT_RETRIES
        }
    }

    /// The delay before the next probe, `since_start` after the start:
    /// the start interval while the container is still `starting` within
    /// its start period (as Docker: once healthy, the interval), else the
    /// interval.
    pub fn next_delay(&self, since_start: Duration, starting: bool) -> Duration {
        if starting && since_start < self.start_period() {
            self.start_interval()
        } else {
            self.interval()
        }
    }

    /// The image's check with the `--health-*` flags laid over it: a
    /// field given on the command line wins, an unset one is inherited.
    pub fn merge(image: Option<&HealthConfig>, flags: &HealthConfig) -> Option<HealthConfig> {
        let base = image.cloned().unwrap_or_default();
        let pick = |f: i64, b: i64| if f != 0 { f } else { b };
        let merged = HealthConfig {
            test: if flags.test.is_empty() {
                base.test
            } else {
                flags.test.clone()
            },
            interval: pick(flags.interval, base.interval),
            timeout: pick(flags.timeout, base.timeout),
            start_period: pick(flags.start_period, base.start_period),
            start_interval: pick(flags.start_interval, base.start_interval),
            retries: pick(flags.retries, base.retries),
        };
        if merged.test.is_empty() {
            None
        } else {
            Some(merged)
        }
    }
}

/// What a probe does ([`HealthConfig::probe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Run this command in the container; exit 0 is healthy.
    Exec(Vec<String>),
    /// Connect to this TCP port on the container's 127.0.0.1; a
    /// connection is healthy.
    Tcp {
        /// The port.
        port: u16,
    },
    /// `GET path` (HTTP/1.0) on the container's 127.0.0.1:port; a status
    /// from 200 to 399 is healthy, as the kubelet's httpGet.
    HttpGet {
        /// The port.
        port: u16,
        /// The path (starts with `/`).
        path: String,
    },
}

/// `--health-on-failure` (Podman's): what the monitor does when the
/// container turns unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Only report it (Docker's behaviour).
    #[default]
    None,
    /// SIGKILL the container (the restart policy then applies).
    Kill,
    /// Restart it (stop signal, SIGKILL after the stop timeout, start).
    Restart,
    /// Stop it (as `berth stop`: the restart policy does not apply).
    Stop,
}

impl OnFailure {
    /// Parse a `--health-on-failure` value.
    pub fn parse(s: &str) -> Result<OnFailure, String> {
        match s {
            "none" => Ok(OnFailure::None),
            "kill" => Ok(OnFailure::Kill),
            "restart" => Ok(OnFailure::Restart),
            "stop" => Ok(OnFailure::Stop),
            _ => Err(format!(
                "invalid value {s:?}: use none, kill, restart or stop"
            )),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::None => "none",
            OnFailure::Kill => "kill",
            OnFailure::Restart => "restart",
            OnFailure::Stop => "stop",
        }
    }
}

/// Docker's health statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// No probe has succeeded yet.
    #[default]
    Starting,
    /// The last probe succeeded.
    Healthy,
    /// `retries` consecutive probes failed.
    Unhealthy,
}

impl HealthStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe, as Docker's `State.Health.Log[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProbeResult {
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// Its exit code (-1: it could not run or timed out).
    pub exit_code: i32,
    /// Its stdout and stderr (the first 4096 bytes).
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HealthState {
    /// starting, healthy, unhealthy.
    pub status: HealthStatus,
    /// Consecutive failures counted.
    pub failing_streak: u32,
    /// The last probes, oldest first.
    pub log: Vec<ProbeResult>,
}

impl HealthState {
    /// Record a probe; returns the new status if it changed. Failures
    /// within the start period do not count (Docker's rule).
    pub fn record(
        &mut self,
        result: ProbeResult,
        in_start_period: bool,
        retries: u32,
    ) -> Option<HealthStatus> {
        let before = self.status;
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !in_start_period {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(result);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
        (self.status != before).then_some(self.status)
    }
}

pub use model::duration::parse as parse_duration;

/// Keep the first [`MAX_OUTPUT`] bytes of probe output, as text.
pub fn clip_output(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_OUTPUT)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_commands_or_berths_network_probes() {
        let t = |v: &[&str]| HealthConfig {
            test: v.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            t(&["CMD", "true"]).probe(),
            Some(ProbeKind::Exec(vec!["true".into()]))
        );
        assert_eq!(
            t(&["TCP", "6379"]).probe(),
            Some(ProbeKind::Tcp { port: 6379 })
        );
        assert_eq!(
            t(&["HTTP-GET", "80", "/healthz"]).probe(),
            Some(ProbeKind::HttpGet {
                port: 80,
                path: "/healthz".into()
            })
        );
        for bad in [
            &["TCP", "0"][..],
            &["TCP", "x"],
            &["HTTP-GET", "80", "x"],
            &["NONE"],
        ] {
            assert_eq!(t(bad).probe(), None, "{bad:?}");
        }
        // Docker's command() knows only commands.
        assert_eq!(t(&["TCP", "6379"]).command(), None);
    }

    fn result(code: i32) -> ProbeResult {
        ProbeResult {
            start: Utc::now(),
            end: Utc::now(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn commands_and_defaults() {
        let c = HealthConfig {
            test: vec!["CMD-SHELL".into(), "test -f /ok".into()],
            ..Default::default()
        };
        assert_eq!(c.command().unwrap(), ["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(c.interval(), DEFAULT_INTERVAL);
        assert_eq!(c.retries(), 3);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(none.command().is_none());
        let exec = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        assert_eq!(exec.command().unwrap(), ["true"]);
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "a".into()],
            interval: 5,
            retries: 7,
            ..Default::default()
        };
        let flags = HealthConfig {
            interval: 9,
            ..Default::default()
        };
        let m = HealthConfig::merge(Some(&image), &flags).unwrap();
        assert_eq!((m.test[1].as_str(), m.interval, m.retries), ("a", 9, 7));
        assert!(HealthConfig::merge(None, &flags).is_none());
    }

    #[test]
    fn status_follows_docker_rules() {
        let mut h = HealthState::default();
        // Failures in the start period do not count.
        assert_eq!(h.record(result(1), true, 2), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(0), true, 2), Some(HealthStatus::Healthy));
        assert_eq!(h.record(result(1), false, 2), None);
        assert_eq!(h.record(result(1), false, 2), Some(HealthStatus::Unhealthy));
        assert_eq!(h.failing_streak, 2);
        for _ in 0..10 {
            h.record(result(1), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        assert_eq!(h.record(result(0), false, 2), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
    }
}
