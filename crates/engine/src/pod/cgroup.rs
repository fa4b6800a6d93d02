//! A pod's cgroup (podman's, with the cgroupfs manager): `<parent>/<pod
//! id>` in every hierarchy (parent `/berth` unless `--cgroup-parent`), its
//! limits (`--cpus`, `--cpuset-cpus`, `--cpuset-mems`, `-m`,
//! `--memory-swap`, `--blkio-weight`, `--blkio-weight-device`,
//! `--device-read-bps`, `--device-write-bps`) written there, and the cgroups of its
//! infra container and members (unless `--share-parent=false`) made below
//! it, so the limits hold for the pod as a whole.
//!
//! Made at `pod create` and again whenever the pod's infra starts (a reboot
//! empties cgroupfs), removed at `pod rm`. A file in the run root
//! (`pod-cgroups/<pod id>`, naming the path) is written before the cgroup
//! and removed after it, so `system check` knows the cgroup of a pod whose
//! removal was cut short as this root's own.
use std::path::PathBuf;

use model::blkio::{ThrottleDevice, WeightDevice};
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::Pod;
use crate::error::{EngineError, Result};
use crate::Engine;

/// `pod create`'s limit flags, parsed by the front end (podman's names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodResources {
    /// `--cpus` (0 or less: no limit, as podman).
    pub cpus: Option<f64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `-m/--memory` in bytes.
    pub memory: Option<u64>,
    /// `--memory-swap` in bytes (memory plus swap; -1: unlimited).
    pub memory_swap: Option<i64>,
    /// `--blkio-weight` (10 to 1000; 0: none).
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Vec<WeightDevice>,
    /// `--device-read-bps`.
    pub device_read_bps: Vec<ThrottleDevice>,
    /// `--device-write-bps`.
    pub device_write_bps: Vec<ThrottleDevice>,
}

impl PodResources {
    /// Is any limit asked?
    pub fn any(&self) -> bool {
        *self != PodResources::default()
    }

    /// The limits to record, checked; podman's words where podman has
    /// them (its own checks leave most values to the kernel, and a refused
    /// write leaves its cgroup behind: berth checks first).
    pub fn limits(&self) -> Result<PodLimits> {
        let mut l = PodLimits::default();
        if let Some(c) = self.cpus.filter(|c| *c > 0.0) {
            l.cpu_period = 100_000;
            l.cpu_quota = (c * 100_000.0).round() as i64;
        }
        for (flag, v, out) in [
            ("--cpuset-cpus", &self.cpuset_cpus, &mut l.cpuset_cpus),
            ("--cpuset-mems", &self.cpuset_mems, &mut l.cpuset_mems),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                check_list(flag, v)?;
                *out = v.to_string();
            }
        }
        if let Some(m) = self.memory.filter(|m| *m > 0) {
            if m < 6 * 1024 * 1024 {
                return Err(EngineError::invalid(
                    "--memory",
                    "minimum memory limit allowed is 6MB",
                ));
            }
            l.memory_limit = m;
            l.memory_swap =
                match self.memory_swap {
                    // podman's (and Docker's) default: twice the memory.
                    None => (2 * m) as i64,
                    Some(-1) => -1,
                    Some(s) if s < 0 || (s as u64) < m => return Err(EngineError::Refused(
                        "minimum memoryswap limit should be larger than memory limit, see usage"
                            .into(),
                    )),
                    Some(s) => s,
                };
        } else if self.memory_swap.is_some_and(|s| s != -1) {
            return Err(EngineError::invalid(
                "--memory-swap",
                "you should always set the memory limit when using the memoryswap limit, see usage",
            ));
        }
        match self.blkio_weight {
            None | Some(0) => {}
            Some(w @ 10..=1000) => l.blkio_weight = w,
            Some(w) => {
                return Err(EngineError::invalid(
                    "--blkio-weight",
                    format!("{w}: a weight from 10 to 1000 (or 0 for none)"),
                ))
            }
        }
        // podman looks each device up at create, in its words.
        for w in &self.blkio_weight_device {
            device(&w.path, |e| {
                format!(
                    "failed to inspect '{}' in --blkio-weight-device: {e}",
                    w.path
                )
            })?;
        }
        for t in self.device_read_bps.iter().chain(&self.device_write_bps) {
            device(&t.path, |e| {
                format!("could not parse throttle device at {}: {e}", t.path)
            })?;
        }
        l.blkio_weight_device = self.blkio_weight_device.clone();
        l.device_read_bps = self.device_read_bps.clone();
        l.device_write_bps = self.device_write_bps.clone();
        Ok(l)
    }
}

/// A block device named by a pod's flag: a missing one in podman's words
/// (`why` words the error), a node that is not a block device (which the
/// kernel would refuse at the cgroup write) in berth's.
fn device(path: &str, why: impl Fn(String) -> String) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) => Err(EngineError::Refused(why(match e.raw_os_error() {
            Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
            None => e.to_string(),
        }))),
        Ok(md) if !std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type()) => {
            Err(EngineError::Refused(why(format!(
                "{path} is not a block device; name one of this host's (lsblk lists them)"
            ))))
        }
        Ok(_) => Ok(()),
    }
}

/// A cpuset list (`0-3,5`), or podman's words.
fn check_list(flag: &str, v: &str) -> Result<()> {
    let bad = || EngineError::Refused(format!("could not parse list: invalid format: {v}"));
    for part in v.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = (
            a.trim().parse::<u32>().map_err(|_| bad())?,
            b.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if a > b {
            return Err(EngineError::invalid(
                flag,
                format!("{v}: the range {part} runs backwards"),
            ));
        }
    }
    Ok(())
}

/// The limits a pod keeps, in podman's `pod inspect` names and units
/// (0 or empty: none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodLimits {
    /// CFS period, µs.
    pub cpu_period: u64,
    /// CFS quota, µs per period.
    pub cpu_quota: i64,
    /// CPUs.
    pub cpuset_cpus: String,
    /// Memory nodes.
    pub cpuset_mems: String,
    /// Bytes.
    pub memory_limit: u64,
    /// Memory plus swap, bytes (-1: unlimited).
    pub memory_swap: i64,
    /// Block I/O weight.
    pub blkio_weight: u16,
    /// Block I/O weight per device (podman 4.3's `pod inspect` does not
    /// show it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blkio_weight_device: Vec<WeightDevice>,
    /// Read bytes per second per device (not in podman 4.3's `pod inspect`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Write bytes per second per device (not in podman 4.3's `pod inspect`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
}

impl PodLimits {
    /// The limits as OCI resources (what the cgroup module writes), each
    /// device's numbers looked up now.
    pub fn resources(&self) -> Result<LinuxResources> {
        let mut r = serde_json::json!({});
        if self.memory_limit > 0 {
            r["memory"] = serde_json::json!({"limit": self.memory_limit, "swap": self.memory_swap});
        }
        let mut cpu = serde_json::json!({});
        if self.cpu_quota > 0 {
            cpu["period"] = self.cpu_period.into();
            cpu["quota"] = self.cpu_quota.into();
        }
        if !self.cpuset_cpus.is_empty() {
            cpu["cpus"] = self.cpuset_cpus.clone().into();
        }
        if !self.cpuset_mems.is_empty() {
            cpu["mems"] = self.cpuset_mems.clone().into();
        }
        if cpu.as_object().is_some_and(|c| !c.is_empty()) {
            r["cpu"] = cpu;
        }
        let blkio = crate::blkio::BlkioLimits {
            weight: self.blkio_weight,
            weight_device: self.blkio_weight_device.clone(),
            read_bps: self.device_read_bps.clone(),
            write_bps: self.device_write_bps.clone(),
            ..Default::default()
        };
        if let Some(b) = blkio.resources()? {
            r["blockIO"] = b;
        }
        serde_json::from_value(r)
            .map_err(|e| EngineError::io("encoding a pod's limits", std::io::Error::other(e)))
    }
}

impl Engine {
    /// The run-root file that marks `pod`'s cgroup as this root's.
    pub(crate) fn pod_cgroup_marker(&self, pod: &str) -> PathBuf {
        self.paths().runroot.join("pod-cgroups").join(pod)
    }

    /// Make the pod's cgroup (again) and write its limits; nothing for a
    /// pod without one (`--share-parent=false`, rootless without a
    /// delegated cgroup).
    pub(crate) fn pod_cgroup_ensure(&self, pod: &Pod) -> Result<()> {
        let path = &pod.config.cgroup_path;
        if path.is_empty() {
            return Ok(());
        }
        let Some(h) = crate::rootless::cgroup_hierarchy()? else {
            return Ok(());
        };
        let marker = self.pod_cgroup_marker(&pod.id);
        if !marker.exists() {
            if let Some(d) = marker.parent() {
                std::fs::create_dir_all(d)
                    .map_err(|e| EngineError::io(format!("creating {}", d.display()), e))?;
            }
            std::fs::write(&marker, format!("{path}\n"))
                .map_err(|e| EngineError::io(format!("writing {}", marker.display()), e))?;
        }
        runtime::cgroup::Cgroup::create(&h, path, &pod.config.limits.resources()?)
            .map(|_| ())
            .map_err(|e| {
                let hint = match e {
                    runtime::cgroup::CgroupError::Unsupported { what, .. } => match what {
                        "Block I/O weight" => ": leave --blkio-weight out",
                        "Block I/O weight_device" => ": leave --blkio-weight-device out",
                        _ => ": leave --device-read-bps/--device-write-bps out",
                    },
                    _ => {
                        ": check the pod's limits against the host (its CPUs, memory nodes, memory)"
                    }
                };
                EngineError::Refused(format!(
                    "setting the limits of pod {} in its cgroup {path}: {e}{hint}",
                    pod.name
                ))
            })
    }

    /// Remove the pod's cgroup in every hierarchy, with whatever is left
    /// below it (a process still in it is killed: every container of the
    /// pod is gone by now), then its mark.
    pub(crate) fn pod_cgroup_remove(&self, pod_id: &str, path: &str) -> Result<()> {
        // Only ever a pod's own cgroup, named by its id: never a parent,
        // whatever a damaged record or mark says.
        let own = pod_id.len() == 64
            && pod_id.bytes().all(|b| b.is_ascii_hexdigit())
            && !path.split('/').any(|c| c == ".." || c == ".")
            && std::path::Path::new(path)
                .file_name()
                .is_some_and(|n| n == std::ffi::OsStr::new(pod_id));
        if !path.is_empty() && !own {
            return Err(EngineError::invalid(
                "pod cgroup",
                format!("{path:?} is not the cgroup of pod {pod_id}: left alone"),
            ));
        }
        if !path.is_empty() {
            if let Some(h) = crate::rootless::cgroup_hierarchy()? {
                let cg = runtime::cgroup::Cgroup::open(&h, path);
                for pid in cg.tree_pids() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                cg.destroy_tree()?;
            }
        }
        match std::fs::remove_file(self.pod_cgroup_marker(pod_id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io("removing a pod's cgroup mark", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_podman() {
        let r = PodResources {
            cpus: Some(0.5),
            memory: Some(64 << 20),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let l = r.limits().unwrap();
        assert_eq!((l.cpu_period, l.cpu_quota), (100_000, 50_000));
        assert_eq!((l.memory_limit, l.memory_swap), (64 << 20, 128 << 20));
        let res = l.resources().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        // podman takes --cpus 0 and -1 as no limit.
        for c in [0.0, -1.0] {
            let l = PodResources {
                cpus: Some(c),
                ..Default::default()
            };
            assert_eq!(l.limits().unwrap(), PodLimits::default());
        }
        let swap = |m: u64, s: i64| {
            PodResources {
                memory: Some(m),
                memory_swap: Some(s),
                ..Default::default()
            }
            .limits()
        };
        assert_eq!(swap(64 << 20, -1).unwrap().memory_swap, -1);
        assert_eq!(
            swap(64 << 20, 0).unwrap_err().to_string(),
            "minimum memoryswap limit should be larger than memory limit, see usage"
        );
        let list = PodResources {
            cpuset_cpus: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(
            list.limits().unwrap_err().to_string(),
            "could not parse list: invalid format: abc"
        );
        let w = |w| PodResources {
            blkio_weight: Some(w),
            ..Default::default()
        };
        assert!(w(5).limits().is_err());
        assert_eq!(w(0).limits().unwrap(), PodLimits::default());
        assert_eq!(w(300).limits().unwrap().blkio_weight, 300);
        // podman's words for a device that is not there.
        let missing = PodResources {
            device_read_bps: vec![ThrottleDevice {
                path: "/dev/berth-no-such-disk".into(),
                rate: 1,
            }],
            ..Default::default()
        };
        assert_eq!(
            missing.limits().unwrap_err().to_string(),
            "could not parse throttle device at /dev/berth-no-such-disk: no such file or directory"
        );
        let missing = PodResources {
            blkio_weight_device: vec![WeightDevice {
                path: "/dev/berth-no-such-disk".into(),
                weight: 100,
            }],
            ..Default::default()
        };
        assert_eq!(
            missing.limits().unwrap_err().to_string(),
            "failed to inspect '/dev/berth-no-such-disk' in --blkio-weight-device: no such file or directory"
        );
    }

    #[test]
    fn only_a_pods_own_cgroup_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(crate::Paths {
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            config: dir.path().join("config"),
        })
        .unwrap();
        let id = "a".repeat(64);
        let up = format!("/../{id}");
        for path in ["/", "/berth", "/berth/other", "/berth/../x", up.as_str()] {
            let e = engine.pod_cgroup_remove(&id, path).unwrap_err();
            assert!(e.to_string().contains("left alone"), "{path}: {e}");
        }
    }
}
