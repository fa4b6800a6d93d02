//! Restart policies (`--restart`) and Docker's back-off: the monitor asks
//! [`decide`] when the container's init exits.
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// First back-off delay.
pub const FIRST_DELAY_MS: u64 = 100;
/// The back-off never waits longer than this.
pub const MAX_DELAY_MS: u64 = 60_000;
/// A run at least this long resets the back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

/// `--restart no|always|unless-stopped|on-failure[:max]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never restart (the default).
    #[default]
    No,
    /// Always restart, unless stopped by a user.
    Always,
    /// As `always`, and a user's stop also holds across `system boot`.
    UnlessStopped,
    /// Restart when the exit code is not 0, at most `max` times (0: no limit).
    OnFailure {
        /// Docker's `MaximumRetryCount`.
        #[serde(default)]
        max: u32,
    },
}

impl RestartPolicy {
    /// Parse a `--restart` value; a bad one is refused in Docker's words
    /// (its CLI's for the retry count, dockerd's for the name).
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        let (name, max) = match s.split_once(':') {
            Some((_, m)) if m.contains(':') => {
                return Err("invalid restart policy format".to_string())
            }
            Some((n, m)) => (n, Some(m)),
            None => (s, None),
        };
        let max = match max {
            Some(m) => Some(
                m.parse::<i64>()
                    .map_err(|_| "maximum retry count must be an integer".to_string())?,
            ),
            None => None,
        };
        let policy = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max: 0 },
            _ => return Err(format!("invalid restart policy '{name}'")),
        };
        match (policy, max) {
            (p, None) => Ok(p),
            (RestartPolicy::OnFailure { .. }, Some(m)) => u32::try_from(m)
                .map(|max| RestartPolicy::OnFailure { max })
                .map_err(|_| "maximum retry count cannot be negative".to_string()),
            (_, Some(_)) => Err(format!(
                "maximum retry count cannot be used with restart policy '{name}'"
            )),
        }
    }

    /// Docker's `RestartPolicy.Name`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }

    /// Docker's `RestartPolicy.MaximumRetryCount`.
    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => *max,
            _ => 0,
        }
    }

    /// Is this any policy but `no`?
    pub fn is_set(&self) -> bool {
        *self != RestartPolicy::No
    }
}

/// What the monitor does after the init exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Start it again.
    pub restart: bool,
    /// The back-off before that start (kept for the next decision too).
    pub delay_ms: u64,
}

/// Docker's restart manager: the back-off grows on every exit (reset by a
/// run of 10 s or more) whether or not the policy restarts.
pub fn decide(
    policy: RestartPolicy,
    exit_code: i32,
    manually_stopped: bool,
    restart_count: u32,
    previous_delay_ms: u64,
    ran_for: Duration,
) -> Decision {
    let mut delay = if ran_for >= RESET_AFTER {
        0
    } else {
        previous_delay_ms
    };
    delay = if delay == 0 {
        FIRST_DELAY_MS
    } else {
        (delay * 2).min(MAX_DELAY_MS)
    };
    let restart = !manually_stopped
        && match policy {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => exit_code != 0 && (max == 0 || restart_count < max),
        };
    Decision {
        restart,
        delay_ms: delay,
    }
}

/// Should `system boot` start this container (its monitor died with the
/// machine)? `always` always does (as Docker on daemon start), even after a
/// manual stop; `unless-stopped` unless a user stopped it; `on-failure` if
/// it was running when the machine went down.
pub fn start_at_boot(policy: RestartPolicy, manually_stopped: bool, was_running: bool) -> bool {
    match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !manually_stopped,
        RestartPolicy::OnFailure { .. } => was_running && !manually_stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_spellings() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped").unwrap(),
            RestartPolicy::UnlessStopped
        );
        for (bad, why) in [
            ("sometimes", "invalid restart policy 'sometimes'"),
            ("sometimes:3", "invalid restart policy 'sometimes'"),
            (
                "always:3",
                "maximum retry count cannot be used with restart policy 'always'",
            ),
            ("on-failure:x", "maximum retry count must be an integer"),
            ("on-failure:-1", "maximum retry count cannot be negative"),
            ("on-failure:1:2", "invalid restart policy format"),
        ] {
            assert_eq!(RestartPolicy::parse(bad).unwrap_err(), why, "{bad}");
        }
        let json = serde_json::to_value(RestartPolicy::OnFailure { max: 2 }).unwrap();
        assert_eq!(json, serde_json::json!({"name": "on-failure", "max": 2}));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let quick = Duration::from_millis(5);
        let mut delay = 0;
        let mut seen = Vec::new();
        for i in 0..12 {
            let d = decide(RestartPolicy::Always, 1, false, i, delay, quick);
            assert!(d.restart);
            delay = d.delay_ms;
            seen.push(delay);
        }
        assert_eq!(&seen[..4], &[100, 200, 400, 800]);
        assert_eq!(*seen.last().unwrap(), MAX_DELAY_MS);
        let d = decide(RestartPolicy::Always, 1, false, 12, delay, RESET_AFTER);
        assert_eq!(d.delay_ms, FIRST_DELAY_MS);
    }

    #[test]
    fn policies() {
        let q = Duration::ZERO;
        let on3 = RestartPolicy::OnFailure { max: 3 };
        assert!(decide(on3, 1, false, 2, 0, q).restart);
        assert!(!decide(on3, 1, false, 3, 0, q).restart);
        assert!(!decide(on3, 0, false, 0, 0, q).restart);
        assert!(decide(RestartPolicy::OnFailure { max: 0 }, 2, false, 99, 0, q).restart);
        assert!(!decide(RestartPolicy::Always, 0, true, 0, 0, q).restart);
        assert!(!decide(RestartPolicy::No, 1, false, 0, 0, q).restart);
        assert!(decide(RestartPolicy::UnlessStopped, 0, false, 0, 0, q).restart);
        assert!(start_at_boot(RestartPolicy::Always, true, false));
        assert!(!start_at_boot(RestartPolicy::UnlessStopped, true, true));
        assert!(start_at_boot(RestartPolicy::UnlessStopped, false, true));
        assert!(!start_at_boot(RestartPolicy::No, false, true));
    }
}
