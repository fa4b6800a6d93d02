//! Engine settings from `<config>/berth.toml` (all optional):
//!
//! ```toml
//! [network]
//! ip_forward = true        # turn on net.ipv4.ip_forward for bridge networks (as Docker)
//! firewall = "auto"        # auto | nftables | iptables
//! iptables = "iptables"    # the iptables binary of the fallback
//! default_rootless_network_cmd = "slirp4netns"   # rootless: slirp4netns | pasta (containers.conf's key)
//!
//! [storage]
//! layer_expansion_ratio = 100   # a compressed layer may expand this many times…
//! layer_expansion_floor = "1g"  # …or to this size, whichever is larger
//! min_free_space = "256m"       # unpacks stop short of this (default: 256m, or 5% of a smaller filesystem)
//!
//! [userns]
//! auto_user = "containers"     # whose /etc/subuid and /etc/subgid ranges --userns=auto hands out
//! subuid_file = "/etc/subuid"
//! subgid_file = "/etc/subgid"
//!
//! [scan]
//! db_warn_days = 7     # berth scan warns when the OSV database is older
//! db_max_days = 30     # …and refuses past this (0: never)
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
    /// `[storage]`.
    pub storage: StorageSettings,
    /// `[scan]`.
    pub scan: ScanSettings,
    /// `[userns]`: where `--userns=auto` takes its ranges from.
    pub userns: crate::userns::UsernsSettings,
}

/// `[scan]`: how old the vulnerability database may be.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanSettings {
    /// Warn past this many days (default 7).
    pub db_warn_days: Option<i64>,
    /// Refuse past this many days (default 30; 0: never).
    pub db_max_days: Option<i64>,
}

/// `[storage]`: what a layer may cost the disk (`store::layer::Limits`;
/// why these defaults: docs/architecture.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// A compressed layer (or `load`ed archive, `ADD`ed tar) may decode to
    /// this many times its compressed size…
    pub layer_expansion_ratio: Option<u64>,
    /// …or to this many bytes (`1g`), whichever is larger.
    pub layer_expansion_floor: Option<String>,
    /// Free space unpacks leave on the store's filesystem (`256m`).
    pub min_free_space: Option<String>,
    /// How containers' root filesystems are made: `overlay` (default) or
    /// `vfs` (a copy of the image's layers per container).
    pub driver: Option<String>,
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
    /// Rootless berth's default network tool, `slirp4netns` or `pasta`
    /// (containers.conf's key); unset: slirp4netns if installed, else
    /// pasta (Debian podman 4.3's and Docker rootless' order).
    pub default_rootless_network_cmd: Option<String>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            ip_forward: true,
            firewall: "auto".into(),
            iptables: "iptables".into(),
            default_rootless_network_cmd: None,
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

    /// The store's unpack limits.
    pub fn limits(&self) -> Result<store::layer::Limits> {
        let size = |key: &str, v: &Option<String>| -> Result<Option<u64>> {
            v.as_deref()
                .map(|s| {
                    model::size::parse_bytes(s).map_err(|e| {
                        EngineError::invalid("configuration", format!("[storage] {key} {s:?}: {e}"))
                    })
                })
                .transpose()
        };
        let d = store::layer::Limits::default();
        let s = &self.storage;
        Ok(store::layer::Limits {
            expansion_ratio: s.layer_expansion_ratio.unwrap_or(d.expansion_ratio).max(1),
            expansion_floor: size("layer_expansion_floor", &s.layer_expansion_floor)?
                .unwrap_or(d.expansion_floor),
            reserve: match size("min_free_space", &s.min_free_space)? {
                Some(n) => store::layer::Reserve::Bytes(n),
                None => d.reserve,
            },
        })
    }

    /// Rootless berth's default network tool: `default_rootless_network_cmd`
    /// if set, else slirp4netns if installed, else pasta (whose absence is
    /// then what is reported).
    pub fn rootless_network_tool(&self) -> Result<crate::usernet::Tool> {
        match self.network.default_rootless_network_cmd.as_deref() {
            None => Ok(crate::usernet::default_tool()),
            Some(name) => crate::usernet::Tool::from_name(name).ok_or_else(|| {
                EngineError::invalid(
                    "configuration",
                    format!("[network] default_rootless_network_cmd {name:?}: use \"slirp4netns\" or \"pasta\""),
                )
            }),
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
    fn storage_limits() {
        let d = tempfile::tempdir().unwrap();
        let l = Settings::load(d.path()).unwrap().limits().unwrap();
        assert_eq!(l, store::layer::Limits::default());
        std::fs::write(
            d.path().join("berth.toml"),
            "[storage]\nlayer_expansion_ratio = 20\nlayer_expansion_floor = \"64m\"\nmin_free_space = \"1g\"\n",
        )
        .unwrap();
        let l = Settings::load(d.path()).unwrap().limits().unwrap();
        assert_eq!(l.expansion_ratio, 20);
        assert_eq!(l.expansion_floor, 64 << 20);
        assert_eq!(l.reserve, store::layer::Reserve::Bytes(1 << 30));
        std::fs::write(
            d.path().join("berth.toml"),
            "[storage]\nmin_free_space = \"lots\"\n",
        )
        .unwrap();
        let e = Settings::load(d.path())
            .unwrap()
            .limits()
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_free_space"), "{e}");
    }

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
        std::fs::write(
            d.path().join("berth.toml"),
            "[network]\ndefault_rootless_network_cmd = \"pasta\"\n",
        )
        .unwrap();
        let s = Settings::load(d.path()).unwrap();
        assert_eq!(
            s.rootless_network_tool().unwrap(),
            crate::usernet::Tool::Pasta
        );
        std::fs::write(
            d.path().join("berth.toml"),
            "[network]\ndefault_rootless_network_cmd = \"vpnkit\"\n",
        )
        .unwrap();
        let e = Settings::load(d.path())
            .unwrap()
            .rootless_network_tool()
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"slirp4netns\" or \"pasta\""), "{e}");
        std::fs::write(d.path().join("berth.toml"), "[network]\nbogus = 1\n").unwrap();
        assert!(Settings::load(d.path()).is_err());
    }
}
