//! Block-I/O limits per device, as Docker's `--blkio-weight-device`,
//! `--device-read-bps`/`--device-write-bps` and
//! `--device-read-iops`/`--device-write-iops` take them
//! (`DEVICE:WEIGHT`, `DEVICE:RATE`), with the docker CLI's checks and words
//! (`opts.ValidateWeightDevice`, `ValidateThrottleBpsDevice`,
//! `ValidateThrottleIOpsDevice`). The device is a path; its major:minor is
//! looked up by whoever has the host at hand.
use serde::{Deserialize, Serialize};

use crate::ParseError;

/// One `DEVICE:WEIGHT` (Docker's `HostConfig.BlkioWeightDevice` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightDevice {
    /// The device node, e.g. `/dev/sda`.
    #[serde(rename = "Path")]
    pub path: String,
    /// 10 to 1000 (0: none).
    #[serde(rename = "Weight")]
    pub weight: u16,
}

/// One `DEVICE:RATE` (Docker's `BlkioDeviceReadBps`… entries): bytes or
/// operations per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    /// The device node, e.g. `/dev/sda`.
    #[serde(rename = "Path")]
    pub path: String,
    /// Bytes (or I/O operations) per second.
    #[serde(rename = "Rate")]
    pub rate: u64,
}

/// Split `DEVICE:VALUE` as the docker CLI does (a path under /dev, a
/// non-empty name, the value after the first `:`).
fn split(s: &str) -> Result<(&str, &str), ParseError> {
    match s.split_once(':') {
        Some((k, v)) if !k.is_empty() => {
            if !k.starts_with("/dev/") {
                return Err(ParseError::DevicePath(s.to_string()));
            }
            Ok((k, v))
        }
        _ => Err(ParseError::DeviceFormat(s.to_string())),
    }
}

impl WeightDevice {
    /// `--blkio-weight-device DEVICE:WEIGHT` (weight 10 to 1000, or 0).
    pub fn parse(s: &str) -> Result<WeightDevice, ParseError> {
        let (path, v) = split(s)?;
        let weight: u16 = v
            .parse()
            .map_err(|_| ParseError::DeviceWeight(s.to_string()))?;
        if weight > 0 && !(10..=1000).contains(&weight) {
            return Err(ParseError::DeviceWeight(s.to_string()));
        }
        Ok(WeightDevice {
            path: path.to_string(),
            weight,
        })
    }
}

impl ThrottleDevice {
    /// `--device-read-bps`/`--device-write-bps DEVICE:RATE`, the rate a
    /// size (`1mb`, docker's `units.RAMInBytes`).
    pub fn parse_bps(s: &str) -> Result<ThrottleDevice, ParseError> {
        let (path, v) = split(s)?;
        let rate =
            crate::size::ram_in_bytes(v).ok_or_else(|| ParseError::DeviceRate(s.to_string()))?;
        Ok(ThrottleDevice {
            path: path.to_string(),
            rate,
        })
    }

    /// `--device-read-iops`/`--device-write-iops DEVICE:N`.
    pub fn parse_iops(s: &str) -> Result<ThrottleDevice, ParseError> {
        let (path, v) = split(s)?;
        let rate = if v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse().ok()
        } else {
            None
        }
        .ok_or_else(|| ParseError::DeviceIops(s.to_string()))?;
        Ok(ThrottleDevice {
            path: path.to_string(),
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The docker CLI's words, recorded from `docker run` (28.2) without a
    /// daemon.
    #[test]
    fn docker_cli_checks_and_words() {
        let bps = |s: &str| ThrottleDevice::parse_bps(s).map_err(|e| e.to_string());
        let iops = |s: &str| ThrottleDevice::parse_iops(s).map_err(|e| e.to_string());
        let weight = |s: &str| WeightDevice::parse(s).map_err(|e| e.to_string());
        assert_eq!(
            bps("/dev/vda:1mb").unwrap(),
            ThrottleDevice {
                path: "/dev/vda".into(),
                rate: 1 << 20
            }
        );
        assert_eq!(bps("/dev/vda:1.5kb").unwrap().rate, 1536);
        assert_eq!(bps("/dev/vda:0").unwrap().rate, 0);
        assert_eq!(bps("/dev/vda:2 MiB").unwrap().rate, 2 << 20);
        assert_eq!(bps("bogus").unwrap_err(), "bad format: bogus");
        assert_eq!(bps(":1mb").unwrap_err(), "bad format: :1mb");
        assert_eq!(
            bps("vda:1mb").unwrap_err(),
            "bad format for device path: vda:1mb"
        );
        let rate = |s: &str| {
            format!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
        };
        for s in [
            "/dev/vda:bogus",
            "/dev/vda:-1",
            "/dev/vda:1x",
            "/dev/vda:",
            "/dev/vda:1:2",
        ] {
            assert_eq!(bps(s).unwrap_err(), rate(s));
        }
        assert_eq!(iops("/dev/vda:100").unwrap().rate, 100);
        assert_eq!(iops("bogus").unwrap_err(), "bad format: bogus");
        for s in ["/dev/vda:1mb", "/dev/vda:-1", "/dev/vda:1.5", "/dev/vda:"] {
            assert_eq!(
                iops(s).unwrap_err(),
                format!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer")
            );
        }
        assert_eq!(weight("/dev/vda:0").unwrap().weight, 0);
        assert_eq!(weight("/dev/vda:500").unwrap().weight, 500);
        assert_eq!(weight("bogus").unwrap_err(), "bad format: bogus");
        assert_eq!(
            weight("vda:100").unwrap_err(),
            "bad format for device path: vda:100"
        );
        for s in [
            "/dev/vda:5",
            "/dev/vda:abc",
            "/dev/vda:1001",
            "/dev/vda:70000",
        ] {
            assert_eq!(
                weight(s).unwrap_err(),
                format!("invalid weight for device: {s}")
            );
        }
    }

    #[test]
    fn docker_json_shape() {
        let t = ThrottleDevice {
            path: "/dev/sda".into(),
            rate: 1024,
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"Path":"/dev/sda","Rate":1024}"#
        );
        let w: WeightDevice = serde_json::from_str(r#"{"Path":"/dev/sda","Weight":300}"#).unwrap();
        assert_eq!(w.weight, 300);
    }
}
