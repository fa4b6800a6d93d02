//! The registry's files under its root. Content is addressed by digest and
//! written once: every blob (layers, configs, manifests) goes to
//! `uploads/<id>/data`, is hashed while written, fsynced and renamed to
//! `blobs/<algorithm>/<hex>` only once its digest and size are verified
//! (sha256, or sha512 when a client names its content so; the distribution
//! spec lets it).
//! What a repository has is a set of links (empty or tiny files):
//!
//! ```text
//! blobs/<alg>/<hex>                               the bytes (alg: sha256 or sha512)
//! repositories/<name>/_layers/<alg>/<hex>         this repository may serve that blob
//! repositories/<name>/_manifests/<alg>/<hex>      this repository has that manifest (holds its media type)
//! repositories/<name>/_tags/<tag>                 the tag's manifest digest (replaced by rename)
//! repositories/<name>/_referrers/<subject hex>/<manifest hex>  the referrer's descriptor (JSON;
//!                                                 a hex's length tells its algorithm)
//! uploads/<id>/{data,lock}                        an upload; `lock` is flock'ed by the serving process
//! ```
//!
//! The `_` prefix keeps a repository's own entries apart from nested
//! repository names (`a/_tags` can never be a name, `a/tags` can), as
//! distribution does. Names and tags are checked against the spec's
//! grammars before they become paths, so no path leaves the root.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use model::{Algorithm, AnyDigest};

use super::local::Local;

/// A repository name as the spec's grammar allows it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`,
/// at most 255 characters (distribution's limit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Check `s` against the grammar.
    pub fn parse(s: &str) -> Option<Name> {
        if s.is_empty() || s.len() > 255 {
            return None;
        }
        for comp in s.split('/') {
            if !model::reference::valid_component(comp) {
                return None;
            }
        }
        Some(Name(s.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}` (the grammar berth's
/// references use too).
pub fn tag_ok(t: &str) -> bool {
    model::reference::valid_tag(t)
}

/// An upload id: a UUID as we make them (lowercase hex and dashes).
pub fn upload_id_ok(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|x| x.is_ascii_hexdigit() || x == b'-')
}

/// The registry's root, or with `--store` berth's store seen as one.
pub struct Storage {
    root: PathBuf,
    local: Option<Arc<Local>>,
}

/// What kind of link a repository holds.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// `_layers`: a blob pushed (or mounted) into the repository.
    Layer,
    /// `_manifests`: a manifest pushed into the repository.
    Manifest,
}

impl Storage {
    /// Open (creating) the layout under `root`, and remove the uploads no
    /// live process serves: an upload whose server stopped cannot be
    /// resumed (its hash state was in that process).
    pub fn open(root: &Path) -> io::Result<Storage> {
        let s = Storage {
            root: root.to_path_buf(),
            local: None,
        };
        for d in ["blobs/sha256", "blobs/sha512", "repositories", "uploads"] {
            fs::create_dir_all(root.join(d))?;
        }
        for e in fs::read_dir(s.uploads_dir())? {
            let e = e?;
            let dir = e.path();
            let lock = match File::open(dir.join("lock")) {
                Ok(f) => f,
                // Not one of ours, or a dir whose lock was never made.
                Err(_) => {
                    let _ = fs::remove_dir_all(&dir);
                    continue;
                }
            };
            if lock.try_lock().is_ok() {
                fs::remove_dir_all(&dir)?;
            }
        }
        Ok(s)
    }

    /// Berth's store at `root` (its state root), served (and pushed into
    /// when `writable`).
    pub(crate) fn for_store(root: &Path, writable: bool) -> Result<Storage, crate::RegistryError> {
        Ok(Storage {
            root: root.to_path_buf(),
            local: Some(Arc::new(Local::open(root, writable)?)),
        })
    }

    /// The store served, in `--store` mode.
    pub(crate) fn local(&self) -> Option<&Arc<Local>> {
        self.local.as_ref()
    }

    /// A manifest's bytes, if the registry has them.
    pub fn manifest_bytes(&self, d: &AnyDigest) -> Option<Vec<u8>> {
        if let Some(l) = &self.local {
            return l.index().manifests.get(&d.sha256()?).map(|m| m.1.to_vec());
        }
        fs::read(self.blob_path(d)).ok()
    }

    /// A manifest's length, if the registry has it (for HEAD).
    pub fn manifest_len(&self, d: &AnyDigest) -> Option<u64> {
        if let Some(l) = &self.local {
            return l
                .index()
                .manifests
                .get(&d.sha256()?)
                .map(|m| m.1.len() as u64);
        }
        self.blob_size(d)
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where uploads are written (with `--store`, the server's work dir
    /// in the store's `tmp/`).
    pub fn uploads_dir(&self) -> PathBuf {
        if let Some(u) = self.local.as_ref().and_then(|l| l.uploads_dir()) {
            return u;
        }
        self.root.join("uploads")
    }

    /// With `--store`: whether the store has `d` or a push staged it (a
    /// push's HEAD and its manifest's check: berth's store has one content
    /// space, not one per repository). Otherwise: linked in `name`.
    pub fn present(&self, name: &Name, d: &AnyDigest) -> bool {
        if let Some(l) = &self.local {
            return d.sha256().is_some_and(|d| l.has(&d));
        }
        self.linked(name, Link::Layer, d)
    }

    /// A blob's bytes. (berth's store keeps sha256 blobs only: a sha512
    /// one is a path that does not exist there.)
    pub fn blob_path(&self, d: &AnyDigest) -> PathBuf {
        if let Some(l) = &self.local {
            if let Some(d) = d.sha256() {
                return l.blob_path(&d);
            }
        }
        blob_path(&self.root, d)
    }

    /// A repository's directory.
    pub fn repo_dir(&self, name: &Name) -> PathBuf {
        self.root.join("repositories").join(name.as_str())
    }

    fn link_path(&self, name: &Name, kind: Link, d: &AnyDigest) -> PathBuf {
        let sub = match kind {
            Link::Layer => "_layers",
            Link::Manifest => "_manifests",
        };
        self.repo_dir(name)
            .join(sub)
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// The blob's size, if the registry has it.
    pub fn blob_size(&self, d: &AnyDigest) -> Option<u64> {
        fs::metadata(self.blob_path(d)).ok().map(|m| m.len())
    }

    /// Whether `name` holds a link of `kind` to `d` and the blob exists.
    pub fn linked(&self, name: &Name, kind: Link, d: &AnyDigest) -> bool {
        if let Some(l) = &self.local {
            let Some(d) = &d.sha256() else {
                return false;
            };
            let idx = l.index();
            let Some(r) = idx.repos.get(name.as_str()) else {
                return false;
            };
            return match kind {
                Link::Layer => r.blobs.contains(d) && l.has(d),
                Link::Manifest => r.manifests.contains(d),
            };
        }
        self.link_path(name, kind, d).exists() && self.blob_path(d).exists()
    }

    /// Link `d` into `name` (a no-op when it is linked).
    pub fn link(&self, name: &Name, kind: Link, d: &AnyDigest, content: &[u8]) -> io::Result<()> {
        let p = self.link_path(name, kind, d);
        write_atomically(&p, content)
    }

    /// Remove the link; false if there was none.
    pub fn unlink(&self, name: &Name, kind: Link, d: &AnyDigest) -> io::Result<bool> {
        match fs::remove_file(self.link_path(name, kind, d)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The media type a manifest was pushed with, if `name` has it.
    pub fn manifest_type(&self, name: &Name, d: &AnyDigest) -> Option<String> {
        if let Some(l) = &self.local {
            let d = &d.sha256()?;
            let idx = l.index();
            idx.repos.get(name.as_str())?.manifests.get(d)?;
            return idx.manifests.get(d).map(|m| m.0.clone());
        }
        if !self.blob_path(d).exists() {
            return None;
        }
        fs::read_to_string(self.link_path(name, Link::Manifest, d)).ok()
    }

    /// Move a verified upload's data into `blobs/` (fsynced first; a blob
    /// already there is kept and the upload's copy dropped: same bytes).
    pub fn commit_blob(&self, data: &Path, file: &File, d: &AnyDigest) -> io::Result<()> {
        let dest = self.blob_path(d);
        // Both ways the blob's time is now: gc keeps a blob younger than
        // its grace time, and this one is about to be named by a manifest.
        let now = std::time::SystemTime::now();
        if dest.exists() {
            if let Ok(f) = File::options().write(true).open(&dest) {
                let _ = f.set_modified(now);
            }
            return fs::remove_file(data);
        }
        file.set_modified(now)?;
        file.sync_all()?;
        fs::rename(data, &dest)?;
        File::open(dest.parent().unwrap_or(&self.root))?.sync_all()
    }

    /// Store `bytes` (a manifest) as a blob under its digest with
    /// `algorithm`, verified by construction.
    pub fn put_small_blob(&self, bytes: &[u8], algorithm: Algorithm) -> io::Result<AnyDigest> {
        let d = AnyDigest::of(algorithm, bytes);
        let dest = self.blob_path(&d);
        if !dest.exists() {
            write_atomically(&dest, bytes)?;
        }
        Ok(d)
    }

    /// A tag's digest, if the tag exists.
    pub fn tag(&self, name: &Name, tag: &str) -> Option<AnyDigest> {
        if let Some(l) = &self.local {
            return l
                .index()
                .repos
                .get(name.as_str())?
                .tags
                .get(tag)
                .map(AnyDigest::from);
        }
        let s = fs::read_to_string(self.repo_dir(name).join("_tags").join(tag)).ok()?;
        s.trim().parse().ok()
    }

    /// Point `tag` at `d` (atomic replacement).
    pub fn set_tag(&self, name: &Name, tag: &str, d: &AnyDigest) -> io::Result<()> {
        write_atomically(
            &self.repo_dir(name).join("_tags").join(tag),
            d.to_string().as_bytes(),
        )
    }

    /// Remove a tag; false if there was none.
    pub fn remove_tag(&self, name: &Name, tag: &str) -> io::Result<bool> {
        match fs::remove_file(self.repo_dir(name).join("_tags").join(tag)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the repository exists (a manifest or blob was ever pushed).
    pub fn repo_exists(&self, name: &Name) -> bool {
        if let Some(l) = &self.local {
            return l.index().repos.contains_key(name.as_str());
        }
        let d = self.repo_dir(name);
        d.join("_manifests").is_dir() || d.join("_layers").is_dir()
    }

    /// The repository's tags, sorted; `None` if it does not exist.
    pub fn tags(&self, name: &Name) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        if let Some(l) = &self.local {
            let idx = l.index();
            return Ok(idx
                .repos
                .get(name.as_str())
                .map(|r| r.tags.keys().cloned().collect()));
        }
        let mut tags = Vec::new();
        match fs::read_dir(self.repo_dir(name).join("_tags")) {
            Ok(rd) => {
                for e in rd {
                    let n = e?.file_name().to_string_lossy().into_owned();
                    if tag_ok(&n) {
                        tags.push(n);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// The tags pointing at `d`.
    pub fn tags_of(&self, name: &Name, d: &AnyDigest) -> io::Result<Vec<String>> {
        Ok(self
            .tags(name)?
            .unwrap_or_default()
            .into_iter()
            .filter(|t| self.tag(name, t).as_ref() == Some(d))
            .collect())
    }

    /// Every repository with a manifest, sorted.
    pub fn repositories(&self) -> io::Result<Vec<String>> {
        if let Some(l) = &self.local {
            return Ok(l.index().repos.keys().cloned().collect());
        }
        let mut out = Vec::new();
        walk_repos(&self.root.join("repositories"), "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn referrers_dir(&self, name: &Name, subject: &AnyDigest) -> PathBuf {
        self.repo_dir(name).join("_referrers").join(subject.hex())
    }

    /// Record that manifest `d` refers to `subject`, with its descriptor.
    pub fn add_referrer(
        &self,
        name: &Name,
        subject: &AnyDigest,
        d: &AnyDigest,
        descriptor: &serde_json::Value,
    ) -> io::Result<()> {
        write_atomically(
            &self.referrers_dir(name, subject).join(d.hex()),
            descriptor.to_string().as_bytes(),
        )
    }

    /// Forget that `d` refers to `subject`.
    pub fn remove_referrer(
        &self,
        name: &Name,
        subject: &AnyDigest,
        d: &AnyDigest,
    ) -> io::Result<()> {
        match fs::remove_file(self.referrers_dir(name, subject).join(d.hex())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The descriptors of the manifests that refer to `subject` and that
    /// `name` still has, sorted by digest.
    pub fn referrers(
        &self,
        name: &Name,
        subject: &AnyDigest,
    ) -> io::Result<Vec<serde_json::Value>> {
        if self.local.is_some() {
            return Ok(Vec::new());
        }
        let rd = match fs::read_dir(self.referrers_dir(name, subject)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e?;
            let Some(d) = digest_of_hex(&e.file_name().to_string_lossy()) else {
                continue;
            };
            if self.manifest_type(name, &d).is_none() {
                continue;
            }
            let Ok(bytes) = fs::read(e.path()) else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                out.push((d, v));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }
}

/// Where a registry root keeps blob `d`: `blobs/<alg>/<hex>`.
pub fn blob_path(root: &Path, d: &AnyDigest) -> PathBuf {
    root.join("blobs")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

/// The digest a bare hex file name (a `_referrers` entry) stands for: its
/// length tells the algorithm.
pub fn digest_of_hex(hex: &str) -> Option<AnyDigest> {
    AnyDigest::from_hex(Algorithm::by_hex_len(hex.len())?, hex).ok()
}

fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('_') || !e.file_type()?.is_dir() {
            continue;
        }
        let name = if prefix.is_empty() {
            n.clone()
        } else {
            format!("{prefix}/{n}")
        };
        if e.path().join("_manifests").is_dir() {
            out.push(name.clone());
        }
        walk_repos(&e.path(), &name, out)?;
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file beside it, fsynced and
/// renamed into place (parent dirs made as needed).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let r = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in ["a", "library/busybox", "a.b_c__d---e/f0", "x/y/z", "0"] {
            assert!(Name::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "A",
            "../x",
            "a/../b",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            ".a",
            "a.",
            "a..b",
            "a___b",
            "a_-b",
            "%2e%2e",
            "a/%2e%2e/b",
            "a b",
            "a/_tags",
        ] {
            assert!(Name::parse(bad).is_none(), "{bad}");
        }
        assert!(Name::parse(&"a".repeat(256)).is_none());
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        assert!(tag_ok("latest") && tag_ok("_x") && tag_ok("v1.2-rc_3"));
        assert!(!tag_ok("") && !tag_ok(".x") && !tag_ok("-x") && !tag_ok("a/b") && !tag_ok(".."));
        assert!(!tag_ok(&"a".repeat(129)));
    }

    #[test]
    fn stale_uploads_are_removed_on_open_and_live_ones_kept() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let stale = s.uploads_dir().join("stale");
        fs::create_dir_all(&stale).unwrap();
        File::create(stale.join("lock")).unwrap();
        let live = s.uploads_dir().join("live");
        fs::create_dir_all(&live).unwrap();
        let held = File::create(live.join("lock")).unwrap();
        held.lock().unwrap();
        // flock is per open file description: another open of the file
        // in this process sees it held, as another process would.
        Storage::open(t.path()).unwrap();
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn catalog_lists_nested_repositories_with_manifests() {
        let t = tempfile::tempdir().unwrap();
        let s = Storage::open(t.path()).unwrap();
        let d = s.put_small_blob(b"{}", Algorithm::Sha256).unwrap();
        for n in ["b", "a/c", "a"] {
            s.link(&Name::parse(n).unwrap(), Link::Manifest, &d, b"x")
                .unwrap();
        }
        s.link(&Name::parse("only/blobs").unwrap(), Link::Layer, &d, b"")
            .unwrap();
        assert_eq!(s.repositories().unwrap(), ["a", "a/c", "b"]);
    }
}
