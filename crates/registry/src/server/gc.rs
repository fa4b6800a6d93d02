//! `berth registry gc [--dry-run] [--grace D]`: remove the blobs no
//! repository can reach any more, and the links left pointing at nothing.
//!
//! Mark: every manifest a repository links (`_manifests`), every tag's
//! manifest and every referrer (`_referrers`) the repository still links
//! as a manifest is a root; from each manifest
//! its config, layers (and an artifact's `blobs`) and an index's child
//! manifests are marked, recursively. Sweep: every unmarked blob of
//! `blobs/sha256` and `blobs/sha512`, then the `_layers` links to blobs that are gone and the
//! `_manifests`/`_referrers` links whose manifest is gone.
//!
//! Safe beside a running server and pushes, in two ways:
//! - **The gc lock** (`<root>/gc.lock`): every write that makes a blob
//!   visible or links one (a finished upload, a mount, a manifest put, a
//!   tag) holds it shared ([`write_guard`]); gc holds it exclusive from
//!   the mark to the end of the sweep, so no manifest can be accepted
//!   between gc's reading the references and its removing a blob.
//! - **A grace time** (`--grace`, default [`DEFAULT_GRACE`]): a blob whose
//!   file or whose `_layers` link in some repository was written less than
//!   that long before gc started is kept, reachable or not. A push uploads
//!   its layers first and its manifest last; the grace keeps those layers
//!   for the manifest to come. The server refreshes the times when a
//!   finished upload or a mount meets a blob already there.
//!
//! Uploads under way (`uploads/`) are not blobs yet and are not touched;
//! the server removes the ones no process serves when it starts.
use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use model::{Algorithm, AnyDigest};

use super::storage::{blob_path, digest_of_hex};

/// The algorithms whose blobs and links gc walks.
const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];

/// How old an unreachable blob must be before gc removes it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// The largest manifest gc reads (the server refuses bigger ones).
const MANIFEST_MAX: u64 = 4 << 20;

/// `berth registry gc`'s options.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// The registry's root.
    pub root: PathBuf,
    /// Report, remove nothing.
    pub dry_run: bool,
    /// Keep unreachable blobs younger than this.
    pub grace: Duration,
}

/// Why gc could not run.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The root is not a registry root.
    #[error("{0} is not a registry root (no blobs/sha256 or repositories in it); give the --root of `berth registry serve`")]
    NotARoot(PathBuf),
    /// A file could not be read or removed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> GcError + '_ {
    move |source| GcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What gc removed (or, dry, would remove).
#[derive(Debug, Default)]
pub struct GcReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Blobs removed, with their sizes.
    pub blobs: Vec<(AnyDigest, u64)>,
    /// Links removed, relative to the root.
    pub links: Vec<PathBuf>,
    /// Bytes freed.
    pub bytes: u64,
    /// Reachable blobs kept.
    pub reachable: usize,
    /// Unreachable blobs kept because they are younger than the grace time.
    pub young: usize,
    /// Blobs a manifest or tag names but the registry does not have (a
    /// damaged root: pulls of those fail).
    pub missing: BTreeSet<String>,
}

/// The lock writers hold shared and gc exclusive.
fn lock_path(root: &Path) -> PathBuf {
    root.join("gc.lock")
}

fn open_lock(root: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path(root))
}

/// Held (shared) by the server while it makes a blob visible or links one;
/// dropping it releases the lock. Blocks while a gc sweeps.
pub fn write_guard(root: &Path) -> io::Result<File> {
    let f = open_lock(root)?;
    f.lock_shared()?;
    Ok(f)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, GcError> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.collect::<Result<_, _>>().map_err(io_err(dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(GcError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Every repository directory under `repositories/` (those holding any of
/// `_manifests`, `_layers`, `_tags`, `_referrers`).
fn repositories(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), GcError> {
    let mut own = false;
    for e in read_dir(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.file_type().map_err(io_err(&e.path()))?.is_dir() {
            continue;
        }
        if name.starts_with('_') {
            own = true;
        } else {
            repositories(&e.path(), out)?;
        }
    }
    if own {
        out.push(dir.to_path_buf());
    }
    Ok(())
}

/// The digests named by the files of `dir` (bare hex names: their length
/// tells the algorithm).
fn digests_in(dir: &Path) -> Result<Vec<(AnyDigest, PathBuf)>, GcError> {
    Ok(read_dir(dir)?
        .into_iter()
        .filter_map(|e| {
            let d = digest_of_hex(&e.file_name().to_string_lossy())?;
            Some((d, e.path()))
        })
        .collect())
}

/// The links of a `_layers` or `_manifests` dir (`<alg>/<hex>`).
fn links_in(dir: &Path) -> Result<Vec<(AnyDigest, PathBuf)>, GcError> {
    let mut out = Vec::new();
    for a in ALGORITHMS {
        out.extend(
            digests_in(&dir.join(a.as_str()))?
                .into_iter()
                .filter(|(d, _)| d.algorithm() == a),
        );
    }
    Ok(out)
}

/// Where a repository dir `r` links manifest `d`.
fn manifest_link(r: &Path, d: &AnyDigest) -> PathBuf {
    r.join("_manifests")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::symlink_metadata(path).and_then(|m| m.modified()).ok()
}

struct Marker<'a> {
    root: &'a Path,
    marked: HashSet<AnyDigest>,
    missing: BTreeSet<String>,
}

impl Marker<'_> {
    /// Mark a manifest and everything it names.
    fn manifest(&mut self, d: &AnyDigest) {
        if !self.marked.insert(d.clone()) {
            return;
        }
        let path = blob_path(self.root, d);
        let bytes = match fs::metadata(&path) {
            Ok(m) if m.len() <= MANIFEST_MAX => fs::read(&path).ok(),
            Ok(_) => None,
            Err(_) => {
                self.missing.insert(d.to_string());
                return;
            }
        };
        let Some(v) = bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            return;
        };
        let digest_of = |x: &serde_json::Value| {
            x.get("digest")
                .and_then(|d| d.as_str())
                .and_then(|d| d.parse::<AnyDigest>().ok())
        };
        if let Some(c) = v.get("config").and_then(digest_of) {
            self.blob(c);
        }
        for key in ["layers", "blobs"] {
            for l in v.get(key).and_then(|l| l.as_array()).into_iter().flatten() {
                if let Some(d) = digest_of(l) {
                    self.blob(d);
                }
            }
        }
        for m in v
            .get("manifests")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(d) = digest_of(m) {
                self.manifest(&d);
            }
        }
    }

    fn blob(&mut self, d: AnyDigest) {
        if !blob_path(self.root, &d).exists() {
            self.missing.insert(d.to_string());
        }
        self.marked.insert(d);
    }
}

/// Run gc on `opts.root`.
pub fn gc(opts: &GcOptions) -> Result<GcReport, GcError> {
    let root = &opts.root;
    let blobs = root.join("blobs/sha256");
    let repos_dir = root.join("repositories");
    if !blobs.is_dir() || !repos_dir.is_dir() {
        return Err(GcError::NotARoot(root.clone()));
    }
    let start = SystemTime::now();
    let cutoff = start
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let lock = open_lock(root).map_err(io_err(&lock_path(root)))?;
    lock.lock().map_err(io_err(&lock_path(root)))?;

    let mut repos = Vec::new();
    repositories(&repos_dir, &mut repos)?;
    repos.sort();

    // Mark.
    let mut m = Marker {
        root,
        marked: HashSet::new(),
        missing: BTreeSet::new(),
    };
    let mut young_links: HashSet<AnyDigest> = HashSet::new();
    for r in &repos {
        for (d, _) in links_in(&r.join("_manifests"))? {
            m.manifest(&d);
        }
        for t in read_dir(&r.join("_tags"))? {
            if t.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Some(d) = fs::read_to_string(t.path())
                .ok()
                .and_then(|s| s.trim().parse::<AnyDigest>().ok())
            {
                m.manifest(&d);
            }
        }
        // A referrer counts while the repository still has its manifest
        // (a deleted manifest leaves a link that is swept below).
        for s in read_dir(&r.join("_referrers"))? {
            for (d, _) in digests_in(&s.path())? {
                if manifest_link(r, &d).exists() {
                    m.manifest(&d);
                }
            }
        }
        for (d, p) in links_in(&r.join("_layers"))? {
            if modified(&p).is_some_and(|t| t >= cutoff) {
                young_links.insert(d);
            }
        }
    }

    // Sweep blobs.
    let mut report = GcReport {
        dry_run: opts.dry_run,
        missing: std::mem::take(&mut m.missing),
        ..GcReport::default()
    };
    let mut all_blobs = Vec::new();
    for a in ALGORITHMS {
        for e in read_dir(&root.join("blobs").join(a.as_str()))? {
            all_blobs.push((a, e));
        }
    }
    for (a, e) in all_blobs {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(d) = AnyDigest::from_hex(a, &name) else {
            // A temporary file of a write that died (writes hold the lock,
            // so none is under way now), once past the grace.
            if name.starts_with(".tmp-")
                && modified(&path).is_some_and(|t| t < cutoff)
                && !opts.dry_run
            {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
            continue;
        };
        if m.marked.contains(&d) {
            report.reachable += 1;
            continue;
        }
        if young_links.contains(&d) || modified(&path).is_none_or(|t| t >= cutoff) {
            report.young += 1;
            continue;
        }
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        if !opts.dry_run {
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        report.bytes += size;
        report.blobs.push((d, size));
    }
    report.blobs.sort();
    let gone: HashSet<&AnyDigest> = report.blobs.iter().map(|(d, _)| d).collect();
    let absent = |d: &AnyDigest| gone.contains(d) || !blob_path(root, d).exists();

    // Sweep links to what is gone.
    let mut dead = Vec::new();
    for r in &repos {
        for sub in ["_layers", "_manifests"] {
            for (d, p) in links_in(&r.join(sub))? {
                if absent(&d) {
                    dead.push(p);
                }
            }
        }
        for s in read_dir(&r.join("_referrers"))? {
            for (d, p) in digests_in(&s.path())? {
                if absent(&d) || !manifest_link(r, &d).exists() {
                    dead.push(p);
                }
            }
        }
    }
    for p in dead {
        if !opts.dry_run {
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        report
            .links
            .push(p.strip_prefix(root).unwrap_or(&p).to_path_buf());
    }
    drop(lock);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Digest = AnyDigest;

    struct Root(tempfile::TempDir);

    impl Root {
        fn new() -> Root {
            let t = tempfile::tempdir().unwrap();
            for d in ["blobs/sha256", "repositories", "uploads"] {
                fs::create_dir_all(t.path().join(d)).unwrap();
            }
            Root(t)
        }
        fn p(&self, rel: &str) -> PathBuf {
            self.0.path().join(rel)
        }
        fn blob(&self, bytes: &[u8]) -> Digest {
            self.blob_with(Algorithm::Sha256, bytes)
        }
        fn blob_with(&self, a: Algorithm, bytes: &[u8]) -> Digest {
            let d = Digest::of(a, bytes);
            let p = blob_path(self.0.path(), &d);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
            d
        }
        fn link(&self, repo: &str, sub: &str, d: &Digest) {
            let p = self.p(&format!("repositories/{repo}/{sub}/{}", d.algorithm()));
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join(d.hex()), "").unwrap();
        }
        fn tag(&self, repo: &str, tag: &str, d: &Digest) {
            let p = self.p(&format!("repositories/{repo}/_tags"));
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join(tag), d.to_string()).unwrap();
        }
        fn manifest(&self, config: &Digest, layers: &[&Digest]) -> Digest {
            self.manifest_with(Algorithm::Sha256, config, layers)
        }
        fn manifest_with(&self, a: Algorithm, config: &Digest, layers: &[&Digest]) -> Digest {
            let v = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
                "layers": layers.iter().map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.to_string(), "size": 1})).collect::<Vec<_>>(),
            });
            self.blob_with(a, v.to_string().as_bytes())
        }
        fn has(&self, d: &Digest) -> bool {
            blob_path(self.0.path(), d).exists()
        }
        fn gc(&self, dry_run: bool, grace: Duration) -> GcReport {
            gc(&GcOptions {
                root: self.0.path().to_path_buf(),
                dry_run,
                grace,
            })
            .unwrap()
        }
    }

    fn age(path: &Path, secs: u64) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn marks_from_links_tags_indexes_and_referrers_and_sweeps_the_rest() {
        let r = Root::new();
        let cfg = r.blob(b"{}");
        let l1 = r.blob(b"layer one");
        let l2 = r.blob(b"layer two");
        let m1 = r.manifest(&cfg, &[&l1]);
        // An index whose child manifest only the index names.
        let child = r.manifest(&cfg, &[&l2]);
        let index = r.blob(
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": child.to_string(), "size": 1, "mediaType": "application/vnd.oci.image.manifest.v1+json"}]})
                .to_string()
                .as_bytes(),
        );
        // An artifact referring to m1, with a blob of its own.
        let sig = r.blob(b"signature");
        let art = r.blob(
            serde_json::json!({"schemaVersion": 2, "artifactType": "application/x-sig", "blobs": [{"digest": sig.to_string(), "size": 9}], "subject": {"digest": m1.to_string()}})
                .to_string()
                .as_bytes(),
        );
        let garbage = r.blob(b"nobody's layer");
        let old_manifest = r.manifest(&cfg, &[&garbage]);
        r.link("a/b", "_manifests", &m1);
        r.link("a/b", "_layers", &l1);
        r.link("a/b", "_layers", &garbage);
        r.tag("c", "latest", &index);
        r.link("c", "_manifests", &index);
        r.link("a/b", "_manifests", &art);
        fs::create_dir_all(r.p(&format!("repositories/a/b/_referrers/{}", m1.hex()))).unwrap();
        fs::write(
            r.p(&format!(
                "repositories/a/b/_referrers/{}/{}",
                m1.hex(),
                art.hex()
            )),
            "{}",
        )
        .unwrap();
        // A referrer link whose manifest link was deleted.
        fs::write(
            r.p(&format!(
                "repositories/a/b/_referrers/{}/{}",
                m1.hex(),
                old_manifest.hex()
            )),
            "{}",
        )
        .unwrap();
        for e in fs::read_dir(r.p("blobs/sha256")).unwrap() {
            age(&e.unwrap().path(), 7200);
        }
        for e in fs::read_dir(r.p("repositories/a/b/_layers/sha256")).unwrap() {
            age(&e.unwrap().path(), 7200);
        }

        let dry = r.gc(true, DEFAULT_GRACE);
        assert_eq!(dry.blobs.len(), 2, "{dry:?}");
        assert!(
            r.has(&garbage) && r.has(&old_manifest),
            "a dry run removes nothing"
        );

        let rep = r.gc(false, DEFAULT_GRACE);
        let removed: BTreeSet<&Digest> = rep.blobs.iter().map(|(d, _)| d).collect();
        assert_eq!(removed, BTreeSet::from([&garbage, &old_manifest]));
        assert_eq!(rep.bytes, dry.bytes);
        assert_eq!(rep.bytes, rep.blobs.iter().map(|(_, n)| n).sum::<u64>());
        for d in [&cfg, &l1, &l2, &m1, &child, &index, &sig, &art] {
            assert!(r.has(d), "{d} kept");
        }
        assert!(!r.has(&garbage) && !r.has(&old_manifest));
        assert_eq!(rep.reachable, 8);
        let links: BTreeSet<String> = rep.links.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            links,
            BTreeSet::from([
                format!("repositories/a/b/_layers/sha256/{}", garbage.hex()),
                format!(
                    "repositories/a/b/_referrers/{}/{}",
                    m1.hex(),
                    old_manifest.hex()
                ),
            ])
        );
        assert!(rep.missing.is_empty());
        // Nothing left to do.
        let again = r.gc(false, DEFAULT_GRACE);
        assert!(again.blobs.is_empty() && again.links.is_empty());
    }

    #[test]
    fn young_blobs_and_freshly_linked_ones_are_kept() {
        let r = Root::new();
        let fresh = r.blob(b"just uploaded, manifest to come");
        let relinked = r.blob(b"old blob pushed again");
        let old = r.blob(b"old garbage");
        age(&r.p("blobs/sha256").join(relinked.hex()), 7200);
        age(&r.p("blobs/sha256").join(old.hex()), 7200);
        r.link("x", "_layers", &relinked);
        let rep = r.gc(false, DEFAULT_GRACE);
        assert_eq!(rep.blobs.iter().map(|(d, _)| d).collect::<Vec<_>>(), [&old]);
        assert_eq!(rep.young, 2);
        assert!(r.has(&fresh) && r.has(&relinked));
        // With no grace, everything unreachable goes.
        let rep = r.gc(false, Duration::ZERO);
        assert_eq!(rep.blobs.len(), 2);
        assert_eq!(
            rep.links,
            [PathBuf::from(format!(
                "repositories/x/_layers/sha256/{}",
                relinked.hex()
            ))]
        );
    }

    #[test]
    fn missing_blobs_are_reported_and_not_a_root_is_refused() {
        let r = Root::new();
        let cfg = Digest::of(Algorithm::Sha256, b"gone config");
        let m = r.manifest(&cfg, &[]);
        r.link("x", "_manifests", &m);
        let rep = r.gc(false, Duration::ZERO);
        assert_eq!(rep.missing, BTreeSet::from([cfg.to_string()]));
        assert!(r.has(&m));
        let e = gc(&GcOptions {
            root: r.p("uploads"),
            dry_run: false,
            grace: Duration::ZERO,
        })
        .unwrap_err();
        assert!(e.to_string().contains("is not a registry root"), "{e}");
    }

    #[test]
    fn a_writer_holding_the_lock_makes_gc_wait() {
        let r = Root::new();
        let guard = write_guard(r.0.path()).unwrap();
        let root = r.0.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let rep = gc(&GcOptions {
                root,
                dry_run: false,
                grace: Duration::ZERO,
            });
            tx.send(()).unwrap();
            rep.unwrap()
        });
        // While the guard is held, gc cannot have finished; the blob the
        // writer makes visible now is linked before gc looks.
        let cfg = r.blob(b"{}");
        let m = r.manifest(&cfg, &[]);
        r.link("x", "_manifests", &m);
        assert!(rx.try_recv().is_err());
        drop(guard);
        let rep = t.join().unwrap();
        assert!(rep.blobs.is_empty(), "{rep:?}");
        assert!(r.has(&cfg) && r.has(&m));
    }

    #[test]
    fn sha512_blobs_and_manifests_are_marked_and_swept() {
        let r = Root::new();
        let cfg = r.blob_with(Algorithm::Sha512, b"{}");
        let layer = r.blob_with(Algorithm::Sha512, b"a sha512 layer");
        let garbage = r.blob_with(Algorithm::Sha512, b"nobody's sha512 layer");
        let m = r.manifest_with(Algorithm::Sha512, &cfg, &[&layer]);
        // A sha256 index naming the sha512 manifest, tagged.
        let index = r.blob(
            serde_json::json!({"schemaVersion": 2, "manifests": [{"digest": m.to_string(), "size": 1, "mediaType": "application/vnd.oci.image.manifest.v1+json"}]})
                .to_string()
                .as_bytes(),
        );
        r.tag("x", "latest", &index);
        r.link("x", "_manifests", &index);
        r.link("x", "_manifests", &m);
        r.link("x", "_layers", &garbage);
        let rep = r.gc(false, Duration::ZERO);
        assert_eq!(
            rep.blobs.iter().map(|(d, _)| d).collect::<Vec<_>>(),
            [&garbage]
        );
        for d in [&cfg, &layer, &m, &index] {
            assert!(r.has(d), "{d} kept");
        }
        assert!(!r.has(&garbage));
        assert_eq!(
            rep.links,
            [PathBuf::from(format!(
                "repositories/x/_layers/sha512/{}",
                garbage.hex()
            ))]
        );
        assert!(rep.missing.is_empty(), "{:?}", rep.missing);
    }
}
