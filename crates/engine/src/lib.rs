//! The one orchestrator of berth: turns user requests (create, start, stop,
//! exec...) into store records, OCI specs and runtime calls, and runs the
//! per-container monitor. It does not parse command lines (that is `cli`)
//! and holds no container logic of its own below the spec (that is
//! `runtime`).
#![forbid(unsafe_code)]
// Docker's inspect documents are large `json!` literals.
#![recursion_limit = "256"]

/// `version` and `info`.
pub mod about;
/// Sockets passed by systemd socket activation (for `berth serve -H fd://`).
pub mod activation;
/// Block-I/O limits by device path (`--device-read-bps` …).
pub mod blkio;
/// `berth build`.
pub mod build;
/// The leak census and `system check`: everything of a state root's on
/// the host, and its consistency.
pub mod check;
/// A container's stored configuration and state.
pub mod config;
/// Container operations, one file per verb.
pub mod container;
/// Named fault points for crash tests (`BERTH_FAULT_POINT`), from `sys`.
pub use sys::faults;
/// `system df`: the space images, containers, volumes and cache take.
pub mod disk_usage;
/// Pull, push, login.
pub mod distribution;
/// The engine's error type.
pub mod error;
/// The event log behind `berth events`.
pub mod events;
/// Docker's `--filter` sets.
pub mod filters;
/// Healthchecks.
pub mod health;
/// Image operations: lookup, tag, history, import/load/save, prune, rmi.
pub mod image;
/// `image inspect` and `network inspect` documents.
pub mod inspect;
/// The container log file format.
pub mod logs;
/// The per-container monitor process.
pub mod monitor;
/// User-defined bridge networks.
pub mod networks;
/// Pods (podman's): containers sharing namespaces through an infra container.
pub mod pod;
/// The image policy (policy.toml): signatures, severities, SBOMs.
pub mod policy;
/// Exposed and published ports as Docker shows them; host port reservation.
pub mod ports;
/// `berth registry serve`: the registry server.
pub mod registry_server;
/// Restart policies and back-off.
pub mod restart;
/// Working on a container's root filesystem from the host.
pub mod rootfs;
/// Rootless berth: an unprivileged user's paths and user namespace.
pub mod rootless;
/// Rootless berth's network namespace for user-defined networks, and
/// the proxy of their published ports.
pub mod rootlessnet;
/// `berth sbom`: an image's packages (the `supply` crate over its layers).
pub mod sbom;
/// `berth scan`: an image's packages matched against a local OSV database.
pub mod scan;
/// `berth.toml`.
pub mod settings;
/// The host-side `/dev/shm` of a container whose IPC others join.
pub(crate) mod shm;
/// cosign-compatible signatures and attestations of images in a registry.
pub mod signing;
/// OCI spec generation with Docker's defaults.
pub mod spec;
/// Healthcheck probes and their actions, inside the monitor.
pub mod supervise;
/// Terminal and process helpers for front ends (window sizes, fork).
pub mod term;
/// Rootless networking of one container: pasta or slirp4netns.
pub mod usernet;
/// `--userns`, `--uidmap`, `--gidmap`: parsing and `auto` ranges.
pub mod userns;
/// Volumes and mounts.
pub mod volumes;

use std::path::{Path, PathBuf};

pub use error::{EngineError, ErrorKind, Result};
/// A scratch directory under the state root, removed on drop.
pub use store::TmpDir;

/// The default `--root`.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
use store::Store;

/// Where berth keeps its state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent state (`/var/lib/berth`).
    pub root: PathBuf,
    /// Runtime state (`/run/berth`).
    pub runroot: PathBuf,
    /// User configuration: registries.toml, certs.d/, config.json
    /// (`~/.config/berth`).
    pub config: PathBuf,
}

/// A stamp of the store's database that changes with every commit, by any
/// process: the write-ahead log's index header (SQLite's `iChange`
/// counter, frame count and salts, in `berth.db-shm`) and the database
/// file's size and change time. A server keeps what it read while the
/// stamp stays the same.
///
/// The `-shm` file is opened once and kept open: closing any descriptor of
/// a file drops every POSIX lock the process holds on it, SQLite's own
/// included, and a process that holds SQLite connections (the server)
/// would lose its claim on the wal-index: another process opening the
/// database then takes it for unused and rebuilds it under those
/// connections (which die of SIGBUS reading it, or read a log reset under
/// them).
pub struct StoreStamp {
    db: PathBuf,
    shm: std::sync::Mutex<Option<std::fs::File>>,
}

impl StoreStamp {
    /// The stamp of the store under `paths`.
    pub fn new(paths: &Paths) -> StoreStamp {
        StoreStamp {
            db: paths.root.join("db"),
            shm: std::sync::Mutex::new(None),
        }
    }

    /// The stamp now.
    pub fn read(&self) -> Vec<u8> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let mut stamp = vec![0u8; 48];
        let path = self.db.join("berth.db-shm");
        let mut shm = self.shm.lock().unwrap_or_else(|p| p.into_inner());
        // A new -shm file (a reset store): the old one is not the
        // database's any more, its descriptor may go.
        let live = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        let ours = shm
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        if live.is_some() && live != ours {
            *shm = std::fs::File::open(&path).ok();
        }
        if let Some(f) = shm.as_ref() {
            // Short after a truncation: zeros, another stamp.
            let _ = f.read_at(&mut stamp, 0);
        }
        drop(shm);
        if let Ok(m) = std::fs::metadata(self.db.join("berth.db")) {
            stamp.extend_from_slice(&m.size().to_le_bytes());
            stamp.extend_from_slice(&m.mtime().to_le_bytes());
            stamp.extend_from_slice(&m.mtime_nsec().to_le_bytes());
        }
        stamp
    }
}

/// The store under `paths`, with the unpack limits of `berth.toml`.
fn open_store(paths: &Paths) -> Result<Store> {
    let limits = settings::Settings::load(&paths.config)?.limits()?;
    let mut store = Store::open(&paths.root)?;
    store.set_limits(limits);
    Ok(store)
}

/// The engine: a store plus the paths of this berth instance.
pub struct Engine {
    /// `None` only around a fork: SQLite state must not be inherited by a
    /// child that uses the database (see [`Engine::close_store_for_fork`]).
    store: std::cell::RefCell<Option<Store>>,
    paths: Paths,
    /// `--disable-policy` for this command (see [`policy`]).
    policy_off: std::cell::Cell<bool>,
}

impl Engine {
    /// Open (creating if needed) the state under `paths`.
    pub fn open(paths: Paths) -> Result<Engine> {
        std::fs::create_dir_all(&paths.runroot)
            .map_err(|e| EngineError::io(format!("creating {}", paths.runroot.display()), e))?;
        let store = open_store(&paths)?;
        Ok(Engine {
            store: std::cell::RefCell::new(Some(store)),
            paths,
            policy_off: std::cell::Cell::new(false),
        })
    }

    /// The image and container store. Front ends do not reach into it:
    /// every operation they need is an `Engine` method.
    pub(crate) fn store(&self) -> std::cell::Ref<'_, Store> {
        if self.store.borrow().is_none() {
            // Reopened lazily after a fork (see close_store_for_fork); an
            // error here means the state root vanished under us.
            let s = open_store(&self.paths).unwrap_or_else(|e| {
                eprintln!("berth: reopening the store: {e}");
                std::process::exit(125)
            });
            *self.store.borrow_mut() = Some(s);
        }
        std::cell::Ref::map(self.store.borrow(), |s| s.as_ref().expect("store is open"))
    }

    /// Close the database before forking a process that will open its own
    /// connection: SQLite keeps per-process lock state that a forked child
    /// would inherit without the locks themselves, letting another process
    /// delete the WAL under it.
    pub(crate) fn close_store_for_fork(&self) {
        drop(self.store.borrow_mut().take());
    }

    /// A scratch directory under the state root (`what` names it), removed
    /// when the returned value is dropped.
    pub fn tmp_dir(&self, what: &str) -> Result<TmpDir> {
        Ok(self.store().tmp_dir(what)?)
    }

    /// Get the store ready for a first call (its schema read): a process
    /// that opens an engine before it has work for it.
    pub fn warm(&self) -> Result<()> {
        Ok(self.store().warm()?)
    }

    /// The paths this engine works on.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The compiled-seccomp cache dir.
    pub(crate) fn seccomp_cache(&self) -> PathBuf {
        self.paths.root.join("cache").join("seccomp")
    }

    /// State dir of external runtimes.
    pub(crate) fn runtime_state(&self) -> PathBuf {
        self.paths.runroot.join("runtimes")
    }

    /// The unix socket a running container's monitor serves `attach` on.
    pub fn attach_socket(&self, id: &model::ContainerId) -> PathBuf {
        self.paths.runroot.join(format!("{}.sock", id.as_str()))
    }

    /// Record an event (best effort).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) {
        events::emit(
            &self.paths.root,
            &events::Event::new(kind, action, id, attributes),
        );
    }

    /// A container's log file.
    pub fn log_path(&self, container_dir: &Path) -> PathBuf {
        container_dir.join("container.log")
    }

    /// The log file of container `c`.
    pub fn container_log(&self, c: &container::Container) -> PathBuf {
        self.log_path(&self.store().container_dir(c.id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Can another process take the wal-index's "dead man switch" byte
    /// (byte 128 of `-shm`) exclusively? Not while a SQLite connection of
    /// ours holds its shared lock.
    fn dms_free(shm: &Path) -> bool {
        let probe = "import fcntl, os, sys\n\
                     fd = os.open(sys.argv[1], os.O_RDWR)\n\
                     try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)\nexcept OSError:\n    sys.exit(1)\n";
        let st = std::process::Command::new("python3")
            .args(["-c", probe])
            .arg(shm)
            .status()
            .expect("python3");
        st.success()
    }

    #[test]
    fn reading_the_stamp_keeps_this_processs_sqlite_locks() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            config: dir.path().join("config"),
        };
        let engine = Engine::open(paths.clone()).unwrap();
        engine.warm().unwrap();
        let shm = paths.root.join("db/berth.db-shm");
        assert!(!dms_free(&shm), "the connection holds the wal-index");
        let stamp = StoreStamp::new(&paths);
        let first = stamp.read();
        assert_eq!(first, stamp.read());
        assert!(!dms_free(&shm), "reading the stamp dropped our locks");
        // What the stamp must not do: any descriptor of the file closed
        // drops them all.
        drop(std::fs::File::open(&shm).unwrap());
        assert!(dms_free(&shm));
    }
}
