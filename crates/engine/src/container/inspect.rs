//! `berth inspect` for containers: the fields of Docker's
//! `ContainerInspect` that berth has, with Docker's names.
use chrono::SecondsFormat;
use serde_json::{json, Value};

use crate::container::Container;
use crate::Engine;

fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
}

impl Engine {
    /// Docker-shaped JSON for one container.
    pub fn inspect_container(&self, c: &Container) -> Value {
        let dir = self.store().container_dir(c.id());
        let cfg = &c.config;
        let st = &c.state;
        let args = c.args();
        let lower = self
            .lower_dirs(c)
            .unwrap_or_default()
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mounts: Vec<Value> = cfg
            .mounts
            .iter()
            .map(|m| {
                let source = match m.kind {
                    crate::config::MountType::Volume => self.store().volume_data(&m.source),
                    _ => std::path::PathBuf::from(&m.source),
                };
                crate::volumes::inspect_mount(m, &source)
            })
            .collect();
        let binds: Vec<&str> = cfg
            .mounts
            .iter()
            .filter(|m| !m.bind_spec.is_empty() && !m.anonymous)
            .map(|m| m.bind_spec.as_str())
            .collect();
        let host_mounts: Vec<Value> = cfg
            .mounts
            .iter()
            .filter(|m| m.bind_spec.is_empty() && !(m.anonymous && m.kind == crate::config::MountType::Volume))
            .map(|m| json!({"Type": m.kind.as_str(), "Source": m.source, "Target": m.target, "ReadOnly": m.readonly}))
            .collect();
        let image_volumes: serde_json::Map<String, Value> = cfg
            .mounts
            .iter()
            .filter(|m| m.anonymous)
            .map(|m| (m.target.clone(), json!({})))
            .collect();
        let caps = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
        json!({
            "Id": c.id().as_str(),
            "Created": c.record.created.to_rfc3339_opts(SecondsFormat::Nanos, true),
            "Path": args.first().cloned().unwrap_or_default(),
            "Args": args.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": st.status.as_str(),
                "Running": c.is_running(),
                "Paused": st.status == crate::config::Status::Paused,
                "Restarting": st.status == crate::config::Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": st.status == crate::config::Status::Dead,
                "Pid": if c.is_running() { st.pid } else { 0 },
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": time(st.started_at),
                "FinishedAt": time(st.finished_at),
                "Health": st.health,
            },
            "Image": c.record.image_id.to_string(),
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": self.log_path(&dir),
            "Name": format!("/{}", c.name()),
            "RestartCount": st.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "HostConfig": {
                "NetworkMode": cfg.network_mode.docker_name(&cfg.networks),
                "RestartPolicy": {"Name": cfg.restart_policy.name(), "MaximumRetryCount": cfg.restart_policy.max_retries()},
                "LogConfig": {"Type": cfg.log_config.driver(), "Config": cfg.log_config.config},
                "HealthOnFailure": cfg.health_on_failure.as_str(),
                "AutoRemove": cfg.auto_remove,
                "Privileged": cfg.privileged,
                "ReadonlyRootfs": cfg.read_only,
                "Tmpfs": cfg.tmpfs,
                "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
                "Mounts": if host_mounts.is_empty() { Value::Null } else { json!(host_mounts) },
                "Memory": cfg.memory,
                "MemorySwap": cfg.memory_swap,
                "NanoCpus": cfg.nano_cpus,
                "CpuShares": cfg.cpu_shares,
                "PidsLimit": if cfg.pids_limit == 0 { Value::Null } else { json!(cfg.pids_limit) },
                "Ulimits": cfg.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
                "CapAdd": caps(&cfg.cap_add),
                "CapDrop": caps(&cfg.cap_drop),
                "SecurityOpt": caps(&cfg.security_opt),
                "Init": cfg.init,
                "Runtime": cfg.runtime,
                "MaskedPaths": crate::spec::MASKED_PATHS,
                "ReadonlyPaths": crate::spec::READONLY_PATHS,
            },
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": lower,
                    "UpperDir": dir.join("upper"),
                    "WorkDir": dir.join("work"),
                    "MergedDir": dir.join("rootfs"),
                },
            },
            "Mounts": mounts,
            "Config": {
                "Volumes": if image_volumes.is_empty() { Value::Null } else { json!(image_volumes) },
                "Hostname": cfg.hostname,
                "User": cfg.user,
                "Tty": cfg.tty,
                "OpenStdin": cfg.open_stdin,
                "Env": cfg.env,
                "Cmd": cfg.cmd,
                "Image": cfg.image,
                "WorkingDir": cfg.working_dir,
                "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
                "Labels": cfg.labels,
                "StopSignal": cfg.stop_signal,
                "StopTimeout": cfg.stop_timeout,
                "Healthcheck": cfg.healthcheck,
            },
            "NetworkSettings": {"Networks": {}},
        })
    }
}
