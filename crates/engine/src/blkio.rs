//! Block-I/O limits of a container or pod: Docker's `--blkio-weight`,
//! `--blkio-weight-device`, `--device-read-bps`/`--device-write-bps`,
//! `--device-read-iops`/`--device-write-iops` (podman's `pod create` has
//! the weights and the bps pair). Kept by device path, as dockerd keeps
//! them (`HostConfig.BlkioDeviceReadBps` …); the path is stat'ed at create
//! (refused when it is not a block device of this host) and again at each
//! start, where its major:minor goes into the OCI spec's `blockIO` for the
//! runtime to write into the cgroup.
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use model::blkio::{ThrottleDevice, WeightDevice};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{EngineError, Result};

/// A container's (or pod's) block-I/O limits; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlkioLimits {
    /// `--blkio-weight` (10 to 1000; 0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub weight: u16,
    /// `--blkio-weight-device`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// `--device-read-bps`, bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_bps: Vec<ThrottleDevice>,
    /// `--device-write-bps`, bytes per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_bps: Vec<ThrottleDevice>,
    /// `--device-read-iops`, operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read_iops: Vec<ThrottleDevice>,
    /// `--device-write-iops`, operations per second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_iops: Vec<ThrottleDevice>,
}

fn is_zero(w: &u16) -> bool {
    *w == 0
}

/// dockerd's words for a limit the kernel has no file for (its create
/// warnings; the limit is discarded). Recorded from dockerd 20.10 on a
/// kernel with the throttle files and no weight files.
const WARN_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
const WARN_WEIGHT_DEVICE: &str = "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.";
const WARN_READ_BPS: &str = "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.";
const WARN_WRITE_BPS: &str = "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.";
const WARN_READ_IOPS: &str = "Your kernel does not support IOPS Block I/O read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.";
const WARN_WRITE_IOPS: &str = "Your kernel does not support IOPS Block I/O write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.";

/// An I/O error as the Go tools word it (`no such file or directory`).
fn reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// A block device's numbers, from `st_rdev` of its path.
pub fn device_numbers(flag: &str, path: &str) -> Result<(i64, i64)> {
    let md = std::fs::metadata(path).map_err(|e| {
        EngineError::invalid(
            flag,
            format!(
                "{path}: {}; name a block device of this host (lsblk lists them)",
                reason(&e)
            ),
        )
    })?;
    if !md.file_type().is_block_device() {
        return Err(EngineError::invalid(
            flag,
            format!("{path} is not a block device; name one of this host's (lsblk lists them)"),
        ));
    }
    let rdev = md.rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    // The kernel limits whole disks only (a partition's write fails with
    // ENODEV at start).
    if std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}/partition")).exists() {
        return Err(EngineError::invalid(
            flag,
            format!("{path} is a partition; the kernel limits whole disks: name its disk (lsblk lists them)"),
        ));
    }
    Ok((major as i64, minor as i64))
}

impl BlkioLimits {
    /// Is any limit asked?
    pub fn any(&self) -> bool {
        *self != BlkioLimits::default()
    }

    /// The lists by flag name.
    fn throttles(&self) -> [(&'static str, &Vec<ThrottleDevice>); 4] {
        [
            ("--device-read-bps", &self.read_bps),
            ("--device-write-bps", &self.write_bps),
            ("--device-read-iops", &self.read_iops),
            ("--device-write-iops", &self.write_iops),
        ]
    }

    /// dockerd's checks at create: the weight's range and every device a
    /// block device of this host.
    pub fn check(&self) -> Result<()> {
        if self.weight > 0 && !(10..=1000).contains(&self.weight) {
            // dockerd's words.
            return Err(EngineError::invalid(
                "--blkio-weight",
                "Range of blkio weight is from 10 to 1000",
            ));
        }
        for w in &self.weight_device {
            if w.weight > 0 && !(10..=1000).contains(&w.weight) {
                return Err(EngineError::invalid(
                    "--blkio-weight-device",
                    format!("invalid weight for device: {}:{}", w.path, w.weight),
                ));
            }
            device_numbers("--blkio-weight-device", &w.path)?;
        }
        for (flag, list) in self.throttles() {
            for t in list {
                device_numbers(flag, &t.path)?;
            }
        }
        Ok(())
    }

    /// Drop what this host's kernel cannot limit, as dockerd does, with
    /// its warning for each.
    pub fn discard_unsupported(&mut self, s: runtime::cgroup::BlkioSupport) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.weight > 0 && !s.weight {
            self.weight = 0;
            warnings.push(WARN_WEIGHT.to_string());
        }
        for (asked, ok, warning) in [
            (&mut self.read_bps, s.read_bps, WARN_READ_BPS),
            (&mut self.write_bps, s.write_bps, WARN_WRITE_BPS),
            (&mut self.read_iops, s.read_iops, WARN_READ_IOPS),
            (&mut self.write_iops, s.write_iops, WARN_WRITE_IOPS),
        ] {
            if !asked.is_empty() && !ok {
                asked.clear();
                warnings.push(warning.to_string());
            }
        }
        if !self.weight_device.is_empty() && !s.weight_device {
            self.weight_device.clear();
            warnings.push(WARN_WEIGHT_DEVICE.to_string());
        }
        warnings
    }

    /// dockerd's create warnings for what this host's kernel cannot limit
    /// (create drops those limits); none when nothing is asked or there
    /// is no cgroup to limit in (rootless: [`crate::rootless::limit_warning`]).
    pub fn warnings(&self) -> Result<Vec<String>> {
        if !self.any() {
            return Ok(Vec::new());
        }
        Ok(match crate::rootless::cgroup_hierarchy()? {
            Some(h) => self.clone().discard_unsupported(h.blkio_support()),
            None => Vec::new(),
        })
    }

    /// The OCI `linux.resources.blockIO` (None: no limit), each device's
    /// numbers looked up now.
    pub fn resources(&self) -> Result<Option<Value>> {
        if !self.any() {
            return Ok(None);
        }
        let mut b = json!({});
        if self.weight > 0 {
            b["weight"] = json!(self.weight);
        }
        if !self.weight_device.is_empty() {
            let mut list = Vec::new();
            for w in &self.weight_device {
                let (major, minor) = device_numbers("--blkio-weight-device", &w.path)?;
                list.push(json!({"major": major, "minor": minor, "weight": w.weight}));
            }
            b["weightDevice"] = Value::Array(list);
        }
        for ((flag, devs), key) in self.throttles().into_iter().zip([
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ]) {
            if devs.is_empty() {
                continue;
            }
            let mut list = Vec::new();
            for t in devs {
                let (major, minor) = device_numbers(flag, &t.path)?;
                list.push(json!({"major": major, "minor": minor, "rate": t.rate}));
            }
            b[key] = Value::Array(list);
        }
        Ok(Some(b))
    }

    /// dockerd's `HostConfig` keys (`BlkioWeight`, `BlkioWeightDevice`,
    /// `BlkioDeviceReadBps`…): an empty weight-device list is `[]`, an
    /// empty throttle list `null`, as dockerd shows a container made
    /// without them.
    pub fn host_config(&self) -> Value {
        let list = |l: &Vec<ThrottleDevice>| {
            if l.is_empty() {
                Value::Null
            } else {
                json!(l)
            }
        };
        json!({
            "BlkioWeight": self.weight,
            "BlkioWeightDevice": self.weight_device,
            "BlkioDeviceReadBps": list(&self.read_bps),
            "BlkioDeviceWriteBps": list(&self.write_bps),
            "BlkioDeviceReadIOps": list(&self.read_iops),
            "BlkioDeviceWriteIOps": list(&self.write_iops),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_non_block_device_is_refused() {
        let l = BlkioLimits {
            read_bps: vec![ThrottleDevice {
                path: "/dev/berth-no-such-disk".into(),
                rate: 1,
            }],
            ..Default::default()
        };
        let e = l.check().unwrap_err().to_string();
        assert!(
            e.starts_with("invalid --device-read-bps: /dev/berth-no-such-disk: "),
            "{e}"
        );
        let l = BlkioLimits {
            write_iops: vec![ThrottleDevice {
                path: "/dev/null".into(),
                rate: 1,
            }],
            ..Default::default()
        };
        assert_eq!(
            l.check().unwrap_err().to_string(),
            "invalid --device-write-iops: /dev/null is not a block device; name one of this host's (lsblk lists them)"
        );
        let w = BlkioLimits {
            weight: 5,
            ..Default::default()
        };
        assert_eq!(
            w.check().unwrap_err().to_string(),
            "invalid --blkio-weight: Range of blkio weight is from 10 to 1000"
        );
    }

    #[test]
    fn unsupported_limits_are_discarded_with_dockerds_warnings() {
        let dev = |rate| ThrottleDevice {
            path: "/dev/sda".into(),
            rate,
        };
        let mut l = BlkioLimits {
            weight: 300,
            weight_device: vec![WeightDevice {
                path: "/dev/sda".into(),
                weight: 200,
            }],
            read_bps: vec![dev(1)],
            write_iops: vec![dev(2)],
            ..Default::default()
        };
        // This host's kernel: throttling, no weights.
        let w = l.discard_unsupported(runtime::cgroup::BlkioSupport {
            read_bps: true,
            write_bps: true,
            read_iops: true,
            write_iops: true,
            ..Default::default()
        });
        assert_eq!(w, vec![WARN_WEIGHT, WARN_WEIGHT_DEVICE]);
        assert_eq!(l.weight, 0);
        assert!(l.weight_device.is_empty());
        assert_eq!(l.read_bps, vec![dev(1)]);
        let hc = l.host_config();
        assert_eq!(hc["BlkioWeightDevice"], json!([]));
        assert_eq!(
            hc["BlkioDeviceReadBps"],
            json!([{"Path": "/dev/sda", "Rate": 1}])
        );
        assert_eq!(hc["BlkioDeviceWriteBps"], Value::Null);
    }
}
