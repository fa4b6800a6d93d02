//! `version` and `info`: what this berth is and what it holds, with Docker's
//! field names (`docker version --format '{{.Server.Version}}'`, `docker
//! info --format '{{.NCPU}}'` keep working). berth has no daemon: the
//! "server" is this binary working on its state root.
use serde::Serialize;

use crate::error::Result;
use crate::Engine;

/// The Engine API version berth speaks (`berth serve`, later).
pub const API_VERSION: &str = "1.44";
/// The oldest Engine API version berth accepts.
pub const MIN_API_VERSION: &str = "1.24";
/// berth's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `docker version`'s document.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// The CLI.
    #[serde(rename = "Client")]
    pub client: ClientVersion,
    /// The engine (the same binary here).
    #[serde(rename = "Server")]
    pub server: ServerVersion,
}

/// `Client` of `docker version`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClientVersion {
    /// Platform name.
    pub platform: Platform,
    /// berth's version.
    pub version: String,
    /// The API version.
    pub api_version: String,
    /// The API version used by default.
    #[serde(rename = "DefaultAPIVersion")]
    pub default_api_version: String,
    /// The rustc version berth was built with (Docker's `GoVersion`).
    pub go_version: String,
    /// Build commit (empty when unknown).
    pub git_commit: String,
    /// `linux`.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`.
    pub arch: String,
    /// Build time (empty when unknown).
    pub build_time: String,
    /// Docker's context name.
    pub context: String,
    /// Docker's experimental flag.
    pub experimental: bool,
}

/// `Platform` of `docker version`.
#[derive(Debug, Clone, Serialize)]
pub struct Platform {
    /// Product name.
    #[serde(rename = "Name")]
    pub name: String,
}

/// One entry of `Server.Components`.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// Component name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Its version.
    #[serde(rename = "Version")]
    pub version: String,
    /// More about it.
    #[serde(rename = "Details")]
    pub details: std::collections::BTreeMap<String, String>,
}

/// `Server` of `docker version`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerVersion {
    /// Platform name.
    pub platform: Platform,
    /// The engine, the OCI runtime and the init.
    pub components: Vec<Component>,
    /// berth's version.
    pub version: String,
    /// The API version.
    pub api_version: String,
    /// The oldest API version accepted.
    #[serde(rename = "MinAPIVersion")]
    pub min_api_version: String,
    /// Build commit.
    pub git_commit: String,
    /// rustc version.
    pub go_version: String,
    /// `linux`.
    pub os: String,
    /// `amd64`…
    pub arch: String,
    /// The kernel's release.
    pub kernel_version: String,
    /// Build time.
    pub build_time: String,
}

/// `docker info`'s document (the fields berth has).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    /// A stable id of this state root.
    #[serde(rename = "ID")]
    pub id: String,
    /// Containers in any state.
    pub containers: usize,
    /// Running.
    pub containers_running: usize,
    /// Paused.
    pub containers_paused: usize,
    /// Neither.
    pub containers_stopped: usize,
    /// Tagged or top-level images.
    pub images: usize,
    /// `overlay2`.
    pub driver: String,
    /// Storage driver facts, as `[name, value]` pairs.
    pub driver_status: Vec<[String; 2]>,
    /// Plugins by kind.
    pub plugins: Plugins,
    /// Is the memory controller there?
    pub memory_limit: bool,
    /// Is swap accounting there?
    pub swap_limit: bool,
    /// CPU shares.
    pub cpu_shares: bool,
    /// Pids limits.
    pub pids_limit: bool,
    /// IPv4 forwarding on.
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    /// Debug mode.
    pub debug: bool,
    /// Default log driver.
    pub logging_driver: String,
    /// `cgroupfs`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// Kernel release.
    pub kernel_version: String,
    /// From /etc/os-release.
    pub operating_system: String,
    /// Its version.
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    /// `linux`.
    #[serde(rename = "OSType")]
    pub os_type: String,
    /// `x86_64`…
    pub architecture: String,
    /// CPUs.
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    /// Memory in bytes.
    pub mem_total: u64,
    /// The state root.
    pub docker_root_dir: String,
    /// Host name.
    pub name: String,
    /// berth's version.
    pub server_version: String,
    /// OCI runtimes by name.
    pub runtimes: std::collections::BTreeMap<String, RuntimeInfo>,
    /// The default one.
    pub default_runtime: String,
    /// The `--init` binary.
    pub init_binary: String,
    /// `name=seccomp,profile=builtin`…
    pub security_options: Vec<String>,
    /// Registries used without TLS.
    pub insecure_registries: Vec<String>,
    /// No daemon, so nothing to restore.
    pub live_restore_enabled: bool,
    /// Swarm: never (dockerd's answer when not in a swarm).
    pub swarm: serde_json::Value,
    /// Warnings, as Docker prints them last.
    pub warnings: Vec<String>,
}

/// `Plugins` of `docker info`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Plugins {
    /// Volume drivers.
    pub volume: Vec<String>,
    /// Network drivers.
    pub network: Vec<String>,
    /// Log drivers.
    pub log: Vec<String>,
}

/// A runtime of `docker info`.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    /// Its binary.
    pub path: String,
}

/// GOARCH's names for Rust's.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn rustc_version() -> String {
    format!("rust{}", env!("CARGO_PKG_RUST_VERSION"))
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (get("PRETTY_NAME"), get("VERSION_ID"))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn find_binary(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

impl Engine {
    /// `version`.
    pub fn version(&self) -> Version {
        let platform = Platform {
            name: "berth".into(),
        };
        let mut components = vec![Component {
            name: "Engine".into(),
            version: VERSION.into(),
            details: [
                ("ApiVersion".to_string(), API_VERSION.to_string()),
                ("MinAPIVersion".to_string(), MIN_API_VERSION.to_string()),
                ("Os".to_string(), "linux".to_string()),
                ("Arch".to_string(), goarch().to_string()),
                ("KernelVersion".to_string(), kernel_release()),
            ]
            .into(),
        }];
        if let Some(runc) = find_binary("runc") {
            // Asked once per process (the API server answers /version often).
            static RUNC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let version = RUNC
                .get_or_init(|| {
                    let v = std::process::Command::new(&runc)
                        .arg("--version")
                        .output()
                        .ok()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    v.lines()
                        .next()
                        .and_then(|l| l.split_whitespace().nth(2))
                        .unwrap_or("")
                        .to_string()
                })
                .clone();
            components.push(Component {
                name: "runc".into(),
                version,
                details: [("Path".to_string(), runc)].into(),
            });
        }
        Version {
            client: ClientVersion {
                platform: platform.clone(),
                version: VERSION.into(),
                api_version: API_VERSION.into(),
                default_api_version: API_VERSION.into(),
                go_version: rustc_version(),
                git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").into(),
                os: "linux".into(),
                arch: goarch().into(),
                build_time: String::new(),
                context: "default".into(),
                experimental: true,
            },
            server: ServerVersion {
                platform,
                components,
                version: VERSION.into(),
                api_version: API_VERSION.into(),
                min_api_version: MIN_API_VERSION.into(),
                git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").into(),
                go_version: rustc_version(),
                os: "linux".into(),
                arch: goarch().into(),
                kernel_version: kernel_release(),
                build_time: String::new(),
            },
        }
    }

    /// `info`.
    pub fn info(&self) -> Result<Info> {
        let containers = self.containers()?;
        let running = containers
            .iter()
            .filter(|c| c.state.status == crate::config::Status::Running && c.is_running())
            .count();
        let paused = containers
            .iter()
            .filter(|c| c.state.status == crate::config::Status::Paused)
            .count();
        let images = self.store().list_images()?.len();
        let hierarchy = runtime::cgroup::Hierarchy::detect().ok();
        let (cgroup_version, has) = match &hierarchy {
            Some(runtime::cgroup::Hierarchy::V1 { controllers }) => {
                ("1", controllers.keys().cloned().collect::<Vec<_>>())
            }
            Some(runtime::cgroup::Hierarchy::V2 { root }) => (
                "2",
                std::fs::read_to_string(root.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            ),
            None => ("", Vec::new()),
        };
        let has = |c: &str| has.iter().any(|h| h == c);
        let (os, os_version) = os_release();
        let mut runtimes = std::collections::BTreeMap::new();
        runtimes.insert(
            "berth".to_string(),
            RuntimeInfo {
                path: std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            },
        );
        for r in ["runc", "crun", "youki"] {
            if let Some(path) = find_binary(r) {
                runtimes.insert(r.to_string(), RuntimeInfo { path });
            }
        }
        let mut warnings = Vec::new();
        if !has("memory") {
            warnings.push("WARNING: No memory limit support".to_string());
        }
        let forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .map(|v| v.trim() == "1")
            .unwrap_or(false);
        if !forwarding {
            warnings.push("WARNING: IPv4 forwarding is disabled".to_string());
        }
        let root = self.paths().root.clone();
        let id = model::Digest::of(root.display().to_string().as_bytes())
            .hex()
            .to_string();
        let backing = nix::sys::statfs::statfs(&root)
            .map(|s| match s.filesystem_type() {
                nix::sys::statfs::EXT4_SUPER_MAGIC => "extfs",
                nix::sys::statfs::XFS_SUPER_MAGIC => "xfs",
                nix::sys::statfs::BTRFS_SUPER_MAGIC => "btrfs",
                nix::sys::statfs::TMPFS_MAGIC => "tmpfs",
                _ => "unknown",
            })
            .unwrap_or("unknown");
        Ok(Info {
            id,
            containers: containers.len(),
            containers_running: running,
            containers_paused: paused,
            containers_stopped: containers.len() - running - paused,
            images,
            // The driver new containers get (`vfs` when asked for).
            driver: match crate::settings::Settings::load(&self.paths().config)
                .ok()
                .and_then(|s| crate::container::copyroot::configured(&s).ok())
            {
                Some(crate::container::copyroot::Driver::Vfs) => "vfs".into(),
                _ => "overlay2".into(),
            },
            driver_status: vec![
                ["Backing Filesystem".into(), backing.into()],
                ["Supports d_type".into(), "true".into()],
                ["Native Overlay Diff".into(), "true".into()],
                ["userxattr".into(), crate::rootless::active().to_string()],
            ],
            plugins: Plugins {
                volume: vec!["local".into()],
                network: vec!["bridge".into(), "host".into(), "null".into()],
                log: vec!["json-file".into(), "local".into(), "none".into()],
            },
            memory_limit: has("memory"),
            swap_limit: has("memory"),
            cpu_shares: has("cpu"),
            pids_limit: has("pids"),
            ipv4_forwarding: forwarding,
            debug: false,
            logging_driver: "json-file".into(),
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: cgroup_version.into(),
            kernel_version: kernel_release(),
            operating_system: os,
            os_version,
            os_type: "linux".into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_total: mem_total(),
            docker_root_dir: root.display().to_string(),
            name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            server_version: VERSION.into(),
            runtimes,
            default_runtime: "berth".into(),
            init_binary: crate::container::create::find_init_binary()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            // dockerd lists `name=rootless` when it runs rootless.
            security_options: if crate::rootless::active() {
                vec![
                    "name=seccomp,profile=default".into(),
                    "name=rootless".into(),
                ]
            } else {
                vec!["name=seccomp,profile=default".into()]
            },
            insecure_registries: vec!["127.0.0.0/8".into(), "::1/128".into()],
            live_restore_enabled: true,
            swarm: serde_json::json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null}),
            warnings,
        })
    }
}
