//! berth's image and container store: content-addressed blobs, unpacked
//! layers shared between images, and metadata in SQLite.
//!
//! Layout under the root: `blobs/sha256/<hex>` (verified, fsynced, renamed
//! into place), `layers/<diff-id hex>` (overlayfs lower dirs, unpacked once),
//! `containers/<id>/{upper,work}`, `volumes/<name>/_data`, `tmp/` (work in progress of live
//! commands, each with a lock file), `db/berth.db` (SQLite, WAL). An image
//! row is inserted only once all of its content is in place, in one
//! transaction: a crash leaves at most unreferenced files, which the next
//! `open` removes when it finds a dead command's lock in `tmp/`.
//! It does not know about the runtime or the CLI.
#![forbid(unsafe_code)]

/// docker-archive and OCI-layout load/save.
pub mod archive;
/// The store checked against itself (`system check`), and its repairs.
pub mod audit;
/// Writing verified blobs.
pub mod blob;
/// The build cache.
pub mod build;
/// `--change` instructions for import.
pub mod change;
/// Container rows.
pub mod container;
/// What a copied root (the vfs driver) changed in its image, as a layer.
pub mod copydiff;
pub mod download;
/// The store's error type.
pub mod error;
/// Copying, archiving and chowning trees through file descriptors only.
pub mod fsops;
/// Image rows, import, tags, removal, prune.
pub mod image;
/// Unpacking one layer tarball into a directory, safely.
pub mod layer;
pub mod network;
/// Pod rows (the engine's pods: an infra container and its members).
pub mod pod;
/// OCI 1.1 referrers (SBOM, provenance) of local images.
pub mod referrer;
/// Named volumes.
pub mod volume;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub use archive::{ArchiveFormat, LoadedImage};
pub use audit::{Audit, BlobRole, Finding, ImageUse};
pub use change::{parse_change, Change};
pub use container::{ContainerRecord, ContainerText};
pub use download::{Blobs, Download};
pub use error::StoreError;
pub use image::{
    unpack_layer_in, CommitOptions, HistoryEntry, ImageRecord, ImportOptions, IngestedLayer,
    LayerBlob, PruneReport, RemoveEvent,
};
pub use network::{Lease, NetworkRecord};
pub use pod::PodRecord;
pub use referrer::ReferrerRecord;
pub use volume::VolumeRecord;

// 8 added pods and, on another branch, referrers: 9 makes sure a root
// opened by either gets both tables.
const SCHEMA_VERSION: i64 = 9;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,            -- sha256:<hex> of the config blob
    created TEXT,
    diff_ids TEXT NOT NULL,         -- JSON array, base layer first
    layer_blobs TEXT NOT NULL,      -- JSON array of {digest, media_type, size}
    repo_digests TEXT NOT NULL DEFAULT '[]',
    labels TEXT NOT NULL DEFAULT '{}',
    loaded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,          -- fully qualified reference
    image_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS layers (
    diff_id TEXT PRIMARY KEY,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    created TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS compressed (
    diff_id TEXT NOT NULL,          -- the layer
    media_type TEXT NOT NULL,       -- tar+gzip or tar+zstd
    digest TEXT NOT NULL,           -- the compressed blob
    size INTEGER NOT NULL,
    PRIMARY KEY (diff_id, media_type)
);
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL            -- JSON NetworkRecord
);
CREATE TABLE IF NOT EXISTS leases (
    network TEXT NOT NULL,
    ip TEXT NOT NULL,
    container TEXT NOT NULL,
    PRIMARY KEY (network, ip)
);
CREATE INDEX IF NOT EXISTS leases_container ON leases(container);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL            -- JSON VolumeRecord
);
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,           -- a build step's cache key
    image_id TEXT NOT NULL,         -- the image after that step
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
CREATE TABLE IF NOT EXISTS image_parents (
    id TEXT PRIMARY KEY,            -- an image made by commit
    parent TEXT NOT NULL            -- the image of the container it was made from
);
CREATE TABLE IF NOT EXISTS pods (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL            -- the engine's JSON document
);
CREATE TABLE IF NOT EXISTS build_layers (
    diff_id TEXT PRIMARY KEY,       -- a layer a build made, stored without its blob
    mtime_clamp INTEGER NOT NULL    -- its tar is the layer dir's, times clamped to this
);
CREATE TABLE IF NOT EXISTS referrers (
    digest TEXT PRIMARY KEY,        -- an artifact manifest (a blob) with a subject
    image_id TEXT NOT NULL,         -- the local image it is about
    subject TEXT NOT NULL,          -- the manifest digest its subject names
    artifact_type TEXT NOT NULL,
    blobs TEXT NOT NULL,            -- JSON array: its config and layer blobs
    size INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS referrers_image ON referrers(image_id);
";

/// WAL pages before SQLite checkpoints (see [`Store::open`]);
/// `BERTH_WAL_PAGES` overrides it for measurements.
fn wal_pages() -> u32 {
    std::env::var("BERTH_WAL_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WAL_PAGES)
}

const WAL_PAGES: u32 = 64;

/// The store. One per process; not shared across `fork`.
pub struct Store {
    root: PathBuf,
    conn: rusqlite::Connection,
    limits: layer::Limits,
}

/// A work dir under `tmp/` owned by this process: its lock file is held
/// (flock) while we live, so `open` in another process can tell a crashed
/// command's leftovers from live work. Removed on drop.
/// Work in progress of a live command: removed on drop, and by the next
/// `open` if the command dies (its lock is then free).
pub struct TmpDir {
    path: PathBuf,
    lock_path: PathBuf,
    lock: Option<File>,
}

impl TmpDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove the dir in a background process (a large tree that is no
    /// longer needed, off a command's critical path). That process holds
    /// the lock until it is done, so no other command collects the dir
    /// meanwhile. Must be called single-threaded; falls back to removing
    /// it here.
    pub fn remove_in_background(mut self) {
        use sys::process::{fork, Forked};
        match fork() {
            Ok(Forked::Parent(child)) => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                // Our copy of the lock closes; the worker's keeps it held.
                self.lock = None;
            }
            Ok(Forked::Child) => {
                // A grandchild does the work: it is nobody's zombie.
                if let Ok(Forked::Parent(_)) = fork() {
                    sys::process::exit_now(0);
                }
                if let Some(lock) = &self.lock {
                    let _ = sys::process::keep_only(std::os::fd::AsRawFd::as_raw_fd(lock));
                }
                sys::process::background_priority();
                let _ = std::fs::remove_dir_all(&self.path);
                let _ = std::fs::remove_file(&self.lock_path);
                sys::process::exit_now(0)
            }
            // Removed here, on drop.
            Err(_) => {}
        }
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if self.lock.is_some() {
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = std::fs::remove_file(&self.lock_path);
        }
    }
}

fn try_lock(f: &File) -> bool {
    nix::fcntl::Flock::lock(
        f.try_clone().expect("dup lock file"),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map(std::mem::forget)
    .is_ok()
}

/// The most layers an image may have: overlayfs stacks up to 500, dockerd
/// refuses images deeper than 127 ("max depth exceeded"), and so does
/// berth at pull, load, build and commit.
pub const MAX_LAYERS: usize = 127;

/// Refuse an image of `layers` layers deeper than [`MAX_LAYERS`]: called
/// before its config blob is written, so a refused image leaves no blob
/// behind (the census would find it belonging to no image).
pub(crate) fn check_depth(layers: usize) -> Result<(), StoreError> {
    if layers > MAX_LAYERS {
        return Err(StoreError::TooDeep { layers });
    }
    Ok(())
}

/// In a removal's work dir: the id of the container whose dir it takes
/// (see [`Store::forget_container`]).
pub(crate) const FORGET_CONTAINER: &str = ".forget-container";

/// The state root is `0710` (as dockerd's `/var/lib/docker`): no other
/// host user may reach an image's files, a volume or a container's, nor
/// run a setuid binary from an unpacked layer. A root that others can
/// enter (made by an older berth, or by hand) is tightened at open.
fn private_root(root: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(root).map_err(StoreError::io(root))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 || mode & 0o060 != 0 {
        let tight = mode & !0o067;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(tight))
            .map_err(StoreError::io(root))?;
    }
    Ok(())
}

impl Store {
    /// Open (creating) the store at `root` and clean up after crashed commands.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        if !root.join("db/berth.db").exists() {
            for d in [
                "blobs/sha256",
                "layers",
                "containers",
                "tmp",
                "db",
                "downloads",
            ] {
                let p = root.join(d);
                std::fs::create_dir_all(&p).map_err(StoreError::io(&p))?;
            }
        }
        private_root(root)?;
        let conn = rusqlite::Connection::open(root.join("db/berth.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let version_of = |c: &rusqlite::Connection| {
            c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        };
        // A new (or older) database is made ready by one process at a time,
        // under a lock on the db dir: two first commands on a fresh root
        // (tests, scripts running in parallel) otherwise raced through the
        // switch to WAL, and SQLite answers that race with "database is
        // locked" at once, not after its busy timeout.
        let version = match version_of(&conn) {
            Ok(v) if v >= SCHEMA_VERSION => v,
            _ => {
                let dir = root.join("db");
                let d = File::open(&dir).map_err(StoreError::io(&dir))?;
                let _init = nix::fcntl::Flock::lock(d, nix::fcntl::FlockArg::LockExclusive)
                    .map_err(|(_, e)| StoreError::io(&dir)(std::io::Error::from(e)))?;
                let version = version_of(&conn)?;
                if version < SCHEMA_VERSION {
                    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
                    conn.execute_batch(&format!(
                        "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                    ))?;
                }
                version
            }
        };
        // Every berth process is the database's first opener, so SQLite
        // rebuilds its WAL index by reading the whole WAL at each open: a
        // WAL left to grow to the default 1000 pages cost a `run` several
        // ms. Checkpointing at WAL_PAGES keeps that read short.
        conn.execute_batch(&format!(
            "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit=1048576;",
            wal_pages()
        ))?;
        // Every berth command opens and closes the database; checkpointing
        // the WAL on each close (with fsyncs) would dominate short commands.
        // SQLite's automatic checkpoints (every ~1000 pages) still run.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
        if version < SCHEMA_VERSION {
            // Layers are unpacked under tmp/: as a "top directory", ext4
            // spreads each work dir to its own block group. Without it, new
            // files land among inodes freed moments ago (rmi, prune), and
            // on this machine's ext4 allocating those costs ~0.6 ms per
            // file (a 7500-file layer: 4.4 s instead of 0.4 s).
            let tmp = root.join("tmp");
            if let Err(e) = File::open(&tmp).and_then(|d| sys::fsattr::set_topdir(&d)) {
                tracing::debug!("{}: no top-directory hint: {e}", tmp.display());
            }
        }
        let store = Store {
            root: root.to_path_buf(),
            conn,
            limits: layer::Limits::default(),
        };
        store.recover()?;
        Ok(store)
    }

    /// What a layer may expand to and the free space unpacks keep
    /// (`berth.toml` `[storage]`; defaults until set).
    pub fn limits(&self) -> layer::Limits {
        self.limits
    }

    /// Set [`Store::limits`].
    pub fn set_limits(&mut self, limits: layer::Limits) {
        self.limits = limits;
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// A write transaction holding the database's write lock from the
    /// start (BEGIN IMMEDIATE): no read-then-upgrade races between commands.
    pub(crate) fn write_tx(&self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        Ok(rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?)
    }

    /// A fresh work dir under tmp/, locked by this process.
    /// A fresh work directory under `tmp/`, locked by this process.
    pub fn tmp_dir(&self, what: &str) -> Result<TmpDir, StoreError> {
        let name = format!(
            "{what}-{}-{}",
            std::process::id(),
            &model::ContainerId::random().as_str()[..12]
        );
        let path = self.root.join("tmp").join(&name);
        let lock_path = self.root.join("tmp").join(format!("{name}.lock"));
        // Locked under another name, then renamed into place: a concurrent
        // `open` recovering crashed commands must never see the lock file
        // unlocked (it would take it for a dead command's and remove it).
        let fresh = self.root.join("tmp").join(format!("{name}.lock.new"));
        let lock = File::create(&fresh).map_err(StoreError::io(&fresh))?;
        if !try_lock(&lock) {
            let _ = std::fs::remove_file(&fresh);
            return Err(StoreError::corrupt(
                fresh.display().to_string(),
                "cannot lock a fresh lock file",
            ));
        }
        std::fs::rename(&fresh, &lock_path).map_err(StoreError::io(&lock_path))?;
        std::fs::create_dir(&path).map_err(StoreError::io(&path))?;
        Ok(TmpDir {
            path,
            lock_path,
            lock: Some(lock),
        })
    }

    /// Remove leftovers of commands that died (their tmp lock is free),
    /// then unreferenced layers and blobs. Cheap when tmp/ is empty.
    fn recover(&self) -> Result<(), StoreError> {
        let tmp = self.root.join("tmp");
        let mut stale = false;
        let entries = std::fs::read_dir(&tmp).map_err(StoreError::io(&tmp))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock.new") {
                // A command killed between creating and renaming its lock
                // (a live one renames it within microseconds).
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > 60);
                if old {
                    let _ = std::fs::remove_file(e.path());
                }
                continue;
            }
            let Some(base) = name.strip_suffix(".lock") else {
                continue;
            };
            let Ok(f) = File::open(e.path()) else {
                continue;
            };
            if try_lock(&f) {
                stale = true;
                self.finish_forget(&tmp.join(base));
                let _ = std::fs::remove_dir_all(tmp.join(base));
                let _ = std::fs::remove_file(e.path());
            }
            let _ = f.as_raw_fd();
        }
        if stale {
            self.gc()?;
        }
        Ok(())
    }

    /// A removal killed after its container's row went and before the
    /// container's dir was moved into its work dir `work`: the dir goes
    /// now, unless the row is there (killed before the delete).
    fn finish_forget(&self, work: &Path) {
        let Ok(id) = std::fs::read_to_string(work.join(FORGET_CONTAINER)) else {
            return;
        };
        let Ok(id) = id.trim().parse::<model::ContainerId>() else {
            return;
        };
        let Ok(tx) = self.write_tx() else {
            return;
        };
        let row: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .unwrap_or(Some(String::new()));
        if row.is_none() {
            let _ = std::fs::remove_dir_all(self.container_dir(&id));
        }
        let _ = tx.commit();
    }

    /// Delete layer dirs and blobs no image references. Runs inside a write
    /// transaction so no concurrent import can be half-registered meanwhile.
    /// Another command holds a work dir under `tmp/`.
    fn commands_in_progress(&self) -> bool {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else {
            return false;
        };
        rd.flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".lock")
                && File::open(e.path()).is_ok_and(|f| {
                    let free = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock)
                        .is_ok();
                    !free
                })
        })
    }

    pub(crate) fn gc(&self) -> Result<u64, StoreError> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM compressed WHERE diff_id NOT IN (SELECT value FROM images, json_each(images.diff_ids))",
            [],
        )?;
        tx.execute(
            "DELETE FROM referrers WHERE image_id NOT IN (SELECT id FROM images)",
            [],
        )?;
        let refs = audit::references(&tx, &self.root.join("blobs/sha256"))?;
        let keep_layers = refs.layers;
        let keep_blobs = refs.blobs;
        // Blobs of a pull or push in progress are not referenced yet.
        let busy = self.commands_in_progress();
        let mut freed = 0u64;
        for e in std::fs::read_dir(self.root.join("layers"))
            .map_err(StoreError::io(self.root.join("layers")))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep_layers.contains(&name) {
                freed += dir_size(&e.path());
                let _ = std::fs::remove_dir_all(e.path());
                tx.execute(
                    "DELETE FROM layers WHERE diff_id = ?1",
                    [format!("sha256:{name}")],
                )?;
                tx.execute(
                    "DELETE FROM build_layers WHERE diff_id = ?1",
                    [format!("sha256:{name}")],
                )?;
            }
        }
        for e in std::fs::read_dir(self.root.join("blobs/sha256"))
            .map_err(StoreError::io(self.root.join("blobs")))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains_key(&name) && !busy {
                freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                let _ = std::fs::remove_file(e.path());
            }
        }
        tx.commit()?;
        Ok(freed)
    }
}

/// Bytes used by the regular files below `p`.
pub(crate) fn dir_size(p: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            total += dir_size(&e.path());
        } else if ft.is_file() {
            total += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}
