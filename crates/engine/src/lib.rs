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
/// `berth build`.
pub mod build;
/// The leak census and `system check`: everything of a state root's on
/// the host, and its consistency.
pub mod check;
/// A container's stored configuration and state.
pub mod config;
/// Container operations, one file per verb.
pub mod container;
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
/// Exposed and published ports as Docker shows them; host port reservation.
pub mod ports;
/// Restart policies and back-off.
pub mod restart;
/// Working on a container's root filesystem from the host.
pub mod rootfs;
/// `berth.toml`.
pub mod settings;
/// OCI spec generation with Docker's defaults.
pub mod spec;
/// Healthcheck probes and their actions, inside the monitor.
pub mod supervise;
/// Terminal and process helpers for front ends (window sizes, fork).
pub mod term;
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

    /// A stamp of the store's database that changes with every commit, by
    /// any process: the write-ahead log's index header (SQLite's
    /// `iChange` counter, frame count and salts, in `berth.db-shm`) and the
    /// database file's size and change time. A server keeps a snapshot of
    /// what it read while the stamp stays the same.
    pub fn store_stamp(&self) -> Vec<u8> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let db = self.paths.root.join("db");
        let mut stamp = vec![0u8; 48];
        // The -shm file stays open for the process's life: closing any
        // descriptor of it would drop every POSIX lock this process holds
        // on it, SQLite's own on the wal-index included (another process
        // could then rebuild the index under our connections: SIGBUS).
        // A file SQLite replaced (a new inode) is opened anew; the old
        // descriptor is kept, not closed, for the same reason.
        static SHM: std::sync::Mutex<Vec<(PathBuf, u64, std::fs::File)>> =
            std::sync::Mutex::new(Vec::new());
        let shm = db.join("berth.db-shm");
        if let (Ok(mut open), Ok(meta)) = (SHM.lock(), std::fs::metadata(&shm)) {
            let ino = meta.ino();
            if !open.iter().any(|(p, i, _)| *p == shm && *i == ino) {
                if let Ok(f) = std::fs::File::open(&shm) {
                    open.push((shm.clone(), ino, f));
                }
            }
            if let Some((_, _, f)) = open.iter().find(|(p, i, _)| *p == shm && *i == ino) {
                let _ = f.read_exact_at(&mut stamp, 0);
            }
        }
        if let Ok(m) = std::fs::metadata(db.join("berth.db")) {
            stamp.extend_from_slice(&m.size().to_le_bytes());
            stamp.extend_from_slice(&m.mtime().to_le_bytes());
            stamp.extend_from_slice(&m.mtime_nsec().to_le_bytes());
        }
        stamp
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
