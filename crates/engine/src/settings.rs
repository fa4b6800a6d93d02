//! Engine settings from `<config>/berth.toml` (all optional):
//!
//! ```toml
//! [network]
//! ip_forward = true        # turn on net.ipv4.ip_forward for bridge networks (as Docker)
//! firewall = "auto"        # auto | nftables | iptables
//! iptables = "iptables"    # the iptables binary of the fallback
//! ```
use std::path::Path;

use serde::Deserialize;

use crate::{EngineError, Result};

/// `berth.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[network]`.
    pub network: NetworkSettings,
}

/// `[network]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// Turn on the host's `net.ipv4.ip_forward` when a bridge comes up.
    pub ip_forward: bool,
    /// `auto`, `nftables` or `iptables`.
    pub firewall: String,
    /// The iptables binary.
    pub iptables: String,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            ip_forward: true,
            firewall: "auto".into(),
            iptables: "iptables".into(),
        }
    }
}

impl Settings {
    /// Read `dir/berth.toml` (defaults when it does not exist).
    pub fn load(dir: &Path) -> Result<Settings> {
        let path = dir.join("berth.toml");
        match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| {
                EngineError::invalid(
                    "configuration",
                    format!("{}: {}", path.display(), e.message()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The firewall backend chosen.
    pub fn firewall(&self) -> Result<network::Firewall> {
        network::Firewall::choose(&self.network.firewall, &self.network.iptables)
            .map_err(|e| EngineError::invalid("configuration", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_defaults() {
        let d = tempfile::tempdir().unwrap();
        let s = Settings::load(d.path()).unwrap();
        assert!(s.network.ip_forward);
        std::fs::write(
            d.path().join("berth.toml"),
            "[network]\nip_forward = false\nfirewall = \"iptables\"\n",
        )
        .unwrap();
        let s = Settings::load(d.path()).unwrap();
        assert!(!s.network.ip_forward);
        assert!(matches!(
            s.firewall().unwrap(),
            network::Firewall::Iptables(_)
        ));
        std::fs::write(d.path().join("berth.toml"), "[network]\nbogus = 1\n").unwrap();
        assert!(Settings::load(d.path()).is_err());
    }
}
