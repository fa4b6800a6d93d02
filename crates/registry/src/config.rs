//! The registries config: `<config dir>/registries.toml` and
//! `<config dir>/certs.d/<host>/*.crt`.
//!
//! ```toml
//! max_concurrent_downloads = 4   # per pull (default 4)
//! max_concurrent_uploads = 5     # per push (default 5)
//! push_chunk_size = "0"          # bytes per PATCH when pushing; 0 = one PUT per blob
//! idle_timeout = 60              # seconds a registry may send (or take) nothing
//!
//! [[registry]]
//! location = "registry.example.com:5000"
//! insecure = true                # plain HTTP or unverified TLS
//! mirrors = ["127.0.0.1:5001", "mirror.example.com/cache"]
//! ```
//!
//! Registries on 127.0.0.0/8, `::1` and `localhost` are insecure unless
//! an entry says `insecure = false`, as Docker does. Mirrors work for any
//! registry (Docker only mirrors Docker Hub): a pull tries each mirror in
//! turn, then the registry itself.
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::Deserialize;

use crate::RegistryError;

/// Seconds of silence before a transfer fails (`idle_timeout`).
pub const DEFAULT_IDLE_TIMEOUT: u64 = 60;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
    push_chunk_size: Option<u64>,
    idle_timeout: Option<u64>,
    #[serde(default)]
    registry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    location: String,
    insecure: Option<bool>,
    #[serde(default)]
    mirrors: Vec<String>,
}

/// Registries settings, loaded once per command.
#[derive(Debug, Clone, Default)]
pub struct Config {
    dir: PathBuf,
    file: File,
}

impl Config {
    /// Load `dir/registries.toml` (absent: defaults).
    pub fn load(dir: &Path) -> Result<Config, RegistryError> {
        let path = dir.join("registries.toml");
        let file = match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| RegistryError::Config {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => {
                return Err(RegistryError::Config {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        for (i, r) in file.registry.iter().enumerate() {
            if r.location.is_empty() || r.location.contains("://") {
                return Err(RegistryError::Config {
                    path: path.clone(),
                    reason: format!(
                        "registry #{}: location {:?} must be host[:port][/path], without a scheme",
                        i + 1,
                        r.location
                    ),
                });
            }
        }
        Ok(Config {
            dir: dir.to_path_buf(),
            file,
        })
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Layers downloaded at once by one pull.
    pub fn max_concurrent_downloads(&self) -> usize {
        self.file.max_concurrent_downloads.unwrap_or(4).max(1)
    }

    /// Blobs uploaded at once by one push.
    pub fn max_concurrent_uploads(&self) -> usize {
        self.file.max_concurrent_uploads.unwrap_or(5).max(1)
    }

    /// Chunk size of chunked uploads (None: monolithic).
    pub fn push_chunk_size(&self) -> Option<u64> {
        self.file.push_chunk_size.filter(|&n| n > 0)
    }

    /// How long a registry (or token server, or `ADD <url>` server) may
    /// send nothing — or, while we upload, take nothing — before the
    /// transfer fails: an idle timeout between reads, not a total one, so
    /// a large download that keeps progressing is never cut.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(
            self.file
                .idle_timeout
                .unwrap_or(DEFAULT_IDLE_TIMEOUT)
                .max(1),
        )
    }

    fn entry(&self, host: &str) -> Option<&Entry> {
        self.file.registry.iter().find(|e| e.location == host)
    }

    /// Plain HTTP / unverified TLS allowed for `host` (`host[:port]`).
    pub fn insecure(&self, host: &str) -> bool {
        match self.entry(host).and_then(|e| e.insecure) {
            Some(v) => v,
            None => is_local(host),
        }
    }

    /// Mirrors to try before `host`, in order.
    pub fn mirrors(&self, host: &str) -> Vec<String> {
        self.entry(host)
            .map(|e| e.mirrors.clone())
            .unwrap_or_default()
    }

    /// Extra CA certificates (PEM) trusted for `host`:
    /// `certs.d/<host>/*.crt`, as Docker's `/etc/docker/certs.d`.
    pub fn ca_certs(&self, host: &str) -> Vec<PathBuf> {
        let dir = self.dir.join("certs.d").join(host.replace('/', "_"));
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// 127.0.0.0/8, ::1 or localhost, with or without a port.
pub fn is_local(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    if name == "localhost" {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_hosts_are_insecure_by_default() {
        let c = Config::default();
        assert_eq!(c.idle_timeout(), Duration::from_secs(DEFAULT_IDLE_TIMEOUT));
        assert!(c.insecure("127.0.0.1:5000"));
        assert!(c.insecure("127.9.0.1"));
        assert!(c.insecure("localhost:5000"));
        assert!(c.insecure("[::1]:5000"));
        assert!(!c.insecure("registry.example.com"));
        assert!(!c.insecure("10.0.0.1:5000"));
    }

    #[test]
    fn file_overrides_and_mirrors() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("registries.toml"),
            r#"
max_concurrent_downloads = 7
idle_timeout = 3
push_chunk_size = 1048576
[[registry]]
location = "127.0.0.1:5000"
insecure = false
[[registry]]
location = "quay.io"
mirrors = ["127.0.0.1:6000", "cache.local/quay"]
"#,
        )
        .unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.max_concurrent_downloads(), 7);
        assert_eq!(c.idle_timeout(), Duration::from_secs(3));
        assert_eq!(c.push_chunk_size(), Some(1 << 20));
        assert!(!c.insecure("127.0.0.1:5000"));
        assert_eq!(c.mirrors("quay.io"), ["127.0.0.1:6000", "cache.local/quay"]);
        assert!(c.mirrors("docker.io").is_empty());
    }

    #[test]
    fn bad_file_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("registries.toml"),
            "[[registry]]\nlocation = \"https://x\"\n",
        )
        .unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("without a scheme"), "{e}");
        std::fs::write(d.path().join("registries.toml"), "bogus = 1\n").unwrap();
        let e = Config::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("registries.toml"), "{e}");
    }
}
