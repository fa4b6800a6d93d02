//! One layer's scan: a single walk of its directory (never following a
//! symlink, bounded in depth, entries and file sizes) that hands each
//! package database, metadata file and binary to its ecosystem's module,
//! and records what the layer deletes from the layers below (whiteouts,
//! opaque directories). The result is what [`crate::image`] caches per
//! layer diff-id and composes bottom-up.
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsview::{self, LayerDir};
use crate::Package;

/// Alpine's apk database.
pub mod apk;
/// Debian's dpkg database and DEP-5 copyright files.
pub mod dpkg;
/// Just enough ELF to find a section by name, bounded.
pub mod elf;
/// Go binaries' embedded build info.
pub mod gobin;
/// Java archives' `pom.properties`.
pub mod java;
/// Node's `package.json`.
pub mod node;
/// Python's dist-info and egg-info metadata.
pub mod python;
/// RPM's sqlite database and its header blobs.
pub mod rpm;
/// `cargo auditable` data in Rust binaries.
pub mod rust;

/// Bump when a scanner changes what it finds: cached scans of an older
/// version are redone.
pub const SCAN_VERSION: u32 = 3;

/// Bounds of one layer's walk: an image is hostile input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Directory depth below the layer root.
    pub max_depth: usize,
    /// Directory entries looked at.
    pub max_entries: usize,
    /// A metadata file (package.json, METADATA, pom.properties, copyright).
    pub max_manifest: u64,
    /// A package database (dpkg status, apk installed, rpmdb.sqlite).
    pub max_db: u64,
    /// A binary or archive opened to look inside (reads are bounded too).
    pub max_binary: u64,
    /// `package.json` files parsed.
    pub max_node_packages: usize,
    /// A `package-lock.json` read at most.
    pub max_lock: u64,
    /// All metadata files (package.json, METADATA) of one layer together:
    /// a tree of many files each under `max_manifest` is bounded as well.
    pub max_manifest_total: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 64,
            max_entries: 2_000_000,
            max_manifest: 1 << 20,
            max_db: 256 << 20,
            max_binary: 2 << 30,
            max_node_packages: 50_000,
            max_lock: 64 << 20,
            max_manifest_total: 256 << 20,
        }
    }
}

/// The packages one file of a layer declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The file's image path (`/var/lib/dpkg/status`).
    pub path: String,
    /// What it declares (the layer field still empty).
    pub packages: Vec<Package>,
}

/// What one layer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerScan {
    /// [`SCAN_VERSION`] when it was made.
    pub version: u32,
    /// Package sources, by path.
    pub sources: Vec<Source>,
    /// Image paths this layer deletes (overlay whiteouts).
    pub whiteouts: Vec<String>,
    /// Directories this layer makes opaque (hiding the layers below).
    pub opaque: Vec<String>,
    /// What was skipped and why.
    pub notes: Vec<String>,
}

/// What a file is to the scanners.
enum Kind {
    DpkgStatus,
    DpkgStatusD,
    Apk,
    Rpm,
    /// An rpmdb in a form not read (BerkeleyDB, ndb): said, not guessed.
    RpmOther,
    PythonMetadata,
    NodePackage,
    NodeLock,
    Jar,
    Binary,
}

fn classify(rel: &str, name: &str, mode: u32, size: u64) -> Option<Kind> {
    match rel {
        "/var/lib/dpkg/status" => return Some(Kind::DpkgStatus),
        "/lib/apk/db/installed" => return Some(Kind::Apk),
        "/var/lib/rpm/rpmdb.sqlite" | "/usr/lib/sysimage/rpm/rpmdb.sqlite" => {
            return Some(Kind::Rpm)
        }
        "/var/lib/rpm/Packages"
        | "/var/lib/rpm/Packages.db"
        | "/usr/lib/sysimage/rpm/Packages.db" => return Some(Kind::RpmOther),
        _ => {}
    }
    let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    if parent == "/var/lib/dpkg/status.d" && !name.ends_with(".md5sums") {
        return Some(Kind::DpkgStatusD);
    }
    let parent_name = parent.rsplit('/').next().unwrap_or("");
    if (name == "METADATA" && parent_name.ends_with(".dist-info"))
        || (name == "PKG-INFO" && parent_name.ends_with(".egg-info"))
        || name.ends_with(".egg-info")
    {
        return Some(Kind::PythonMetadata);
    }
    // An app's lock file (npm's hidden node_modules/.package-lock.json
    // repeats what the package.json files there say).
    if node::LOCK_FILES.contains(&name) && !rel.contains("/node_modules/") {
        return Some(Kind::NodeLock);
    }
    if name == "package.json" {
        let mut up = parent.rsplit('/');
        let pkg_dir = up.next().unwrap_or("");
        let above = up.next().unwrap_or("");
        let in_node_modules = above == "node_modules"
            || (above.starts_with('@') && up.next() == Some("node_modules"));
        if in_node_modules && !pkg_dir.is_empty() && pkg_dir != "node_modules" {
            return Some(Kind::NodePackage);
        }
        return None;
    }
    if name.ends_with(".jar") || name.ends_with(".war") || name.ends_with(".ear") {
        return Some(Kind::Jar);
    }
    if mode & 0o111 != 0 && size >= 1024 {
        return Some(Kind::Binary);
    }
    None
}

/// Scan the layer unpacked at `dir`.
pub fn scan_layer(dir: &Path, limits: &Limits) -> Result<LayerScan, crate::SupplyError> {
    let layer = LayerDir::new(dir);
    let mut out = LayerScan {
        version: SCAN_VERSION,
        ..LayerScan::default()
    };
    std::fs::symlink_metadata(dir).map_err(|e| crate::SupplyError::io("reading layer", dir, e))?;
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(dir.to_path_buf(), String::new(), 0)];
    let mut entries = 0usize;
    let mut node_packages = 0usize;
    let mut manifest_bytes = 0u64;
    let mut manifest_budget_noted = false;
    let mut dpkg_status: Option<usize> = None;
    let mut dpkg_d: Vec<usize> = Vec::new();
    'walk: while let Some((host, rel, depth)) = stack.pop() {
        let rd = match std::fs::read_dir(&host) {
            Ok(rd) => rd,
            Err(e) => {
                out.notes.push(format!("{}/: cannot list it: {e}", rel));
                continue;
            }
        };
        for ent in rd {
            let Ok(ent) = ent else { continue };
            entries += 1;
            if entries > limits.max_entries {
                out.notes.push(format!(
                    "layer has more than {} entries: the rest was not looked at",
                    limits.max_entries
                ));
                break 'walk;
            }
            let name = ent.file_name();
            let name = name.to_string_lossy();
            let rel = format!("{rel}/{name}");
            let Ok(ft) = ent.file_type() else { continue };
            if ft.is_dir() {
                if xattr::get(ent.path(), "trusted.overlay.opaque")
                    .ok()
                    .flatten()
                    .is_some_and(|v| v == b"y")
                {
                    out.opaque.push(rel.clone());
                }
                if depth + 1 > limits.max_depth {
                    out.notes.push(format!(
                        "{rel}: deeper than {} directories: not looked into",
                        limits.max_depth
                    ));
                    continue;
                }
                stack.push((ent.path(), rel, depth + 1));
                continue;
            }
            if ft.is_char_device() {
                if ent.metadata().is_ok_and(|m| m.rdev() == 0) {
                    out.whiteouts.push(rel);
                }
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let Ok(meta) = ent.metadata() else { continue };
            let Some(kind) = classify(&rel, &name, meta.mode(), meta.len()) else {
                continue;
            };
            let path = ent.path();
            if matches!(kind, Kind::PythonMetadata | Kind::NodePackage)
                && meta.len() <= limits.max_manifest
            {
                manifest_bytes = manifest_bytes.saturating_add(meta.len());
                if manifest_bytes > limits.max_manifest_total {
                    if !manifest_budget_noted {
                        manifest_budget_noted = true;
                        out.notes.push(format!(
                            "{rel}: more than {} bytes of package metadata in one layer: this file and the rest were skipped",
                            limits.max_manifest_total
                        ));
                    }
                    continue;
                }
            }
            let packages = match kind {
                Kind::DpkgStatus | Kind::DpkgStatusD => {
                    match fsview::read_regular(&path, &rel, limits.max_db) {
                        Ok(Some(b)) => {
                            let (pkgs, notes) = dpkg::parse_status(&b, &rel);
                            out.notes.extend(notes);
                            if matches!(kind, Kind::DpkgStatus) {
                                dpkg_status = Some(out.sources.len());
                            } else {
                                dpkg_d.push(out.sources.len());
                            }
                            pkgs
                        }
                        Ok(None) => continue,
                        Err(n) => {
                            out.notes.push(n);
                            continue;
                        }
                    }
                }
                Kind::Apk => match fsview::read_regular(&path, &rel, limits.max_db) {
                    Ok(Some(b)) => {
                        let (pkgs, notes) = apk::parse_installed(&b, &rel);
                        out.notes.extend(notes);
                        pkgs
                    }
                    Ok(None) => continue,
                    Err(n) => {
                        out.notes.push(n);
                        continue;
                    }
                },
                Kind::Rpm => {
                    if meta.len() > limits.max_db {
                        out.notes.push(format!(
                            "{rel}: skipped: {} bytes, more than the {} bytes read of a package database",
                            meta.len(),
                            limits.max_db
                        ));
                        continue;
                    }
                    let (pkgs, notes) = rpm::read_db(&path, &rel);
                    out.notes.extend(notes);
                    pkgs
                }
                Kind::RpmOther => {
                    out.notes.push(format!(
                        "{rel}: an RPM database in BerkeleyDB or ndb form, which berth does not read yet: its packages are not listed"
                    ));
                    continue;
                }
                Kind::PythonMetadata => {
                    match fsview::read_regular(&path, &rel, limits.max_manifest) {
                        Ok(Some(b)) => match python::parse_metadata(&b, &rel) {
                            Ok(p) => vec![p],
                            Err(n) => {
                                out.notes.push(n);
                                continue;
                            }
                        },
                        Ok(None) => continue,
                        Err(n) => {
                            out.notes.push(n);
                            continue;
                        }
                    }
                }
                Kind::NodePackage => {
                    node_packages += 1;
                    if node_packages > limits.max_node_packages {
                        if node_packages == limits.max_node_packages + 1 {
                            out.notes.push(format!(
                                "more than {} package.json files in one layer: the rest were skipped",
                                limits.max_node_packages
                            ));
                        }
                        continue;
                    }
                    match fsview::read_regular(&path, &rel, limits.max_manifest) {
                        Ok(Some(b)) => match node::parse_package_json(&b, &rel) {
                            Ok(Some(p)) => vec![p],
                            Ok(None) => continue,
                            Err(n) => {
                                out.notes.push(n);
                                continue;
                            }
                        },
                        Ok(None) => continue,
                        Err(n) => {
                            out.notes.push(n);
                            continue;
                        }
                    }
                }
                Kind::NodeLock => match fsview::read_regular(&path, &rel, limits.max_lock) {
                    Ok(Some(b)) => match node::parse_lock(&b, &rel) {
                        Ok(p) => p,
                        Err(n) => {
                            out.notes.push(n);
                            continue;
                        }
                    },
                    Ok(None) => continue,
                    Err(n) => {
                        out.notes.push(n);
                        continue;
                    }
                },
                Kind::Jar => {
                    if meta.len() > limits.max_binary {
                        out.notes
                            .push(format!("{rel}: skipped: {} bytes", meta.len()));
                        continue;
                    }
                    let (pkgs, notes) = java::read_jar(&path, &rel);
                    out.notes.extend(notes);
                    pkgs
                }
                Kind::Binary => {
                    if meta.len() > limits.max_binary {
                        continue;
                    }
                    let (pkgs, notes) = binary(&path, &rel);
                    out.notes.extend(notes);
                    pkgs
                }
            };
            if !packages.is_empty() {
                out.sources.push(Source {
                    path: rel,
                    packages,
                });
            }
        }
    }
    // Licences of this layer's Debian packages, from their copyright files
    // (a package's files come with the layer that installed it).
    for i in dpkg_status.into_iter().chain(dpkg_d) {
        for p in &mut out.sources[i].packages {
            let doc = format!("/usr/share/doc/{}/copyright", p.name);
            match layer.read(&doc, limits.max_manifest) {
                Ok(Some(b)) => p.licenses = dpkg::copyright_licenses(&String::from_utf8_lossy(&b)),
                Ok(None) => {}
                Err(n) => out.notes.push(n),
            }
        }
    }
    out.sources.sort_by(|a, b| a.path.cmp(&b.path));
    out.whiteouts.sort();
    out.opaque.sort();
    Ok(out)
}

/// Go build info and `cargo auditable` data of an executable, if it is
/// an ELF file that has them.
fn binary(path: &Path, rel: &str) -> (Vec<crate::Package>, Vec<String>) {
    let elf = match elf::Elf::open(path) {
        Ok(Some(e)) => e,
        Ok(None) => return (Vec::new(), Vec::new()),
        Err(n) => return (Vec::new(), vec![format!("{rel}: {n}")]),
    };
    let mut pkgs = Vec::new();
    let mut notes = Vec::new();
    if elf.section(".go.buildinfo").is_some() {
        match gobin::read(&elf, rel) {
            Ok(p) => pkgs.extend(p),
            Err(n) => notes.push(format!("{rel}: Go build info skipped: {n}")),
        }
    }
    if elf.section(".dep-v0").is_some() {
        match rust::read(&elf, rel) {
            Ok(p) => pkgs.extend(p),
            Err(n) => notes.push(format!("{rel}: cargo auditable data skipped: {n}")),
        }
    }
    (pkgs, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_path() {
        let k = |rel: &str| {
            let name = rel.rsplit('/').next().unwrap();
            classify(rel, name, 0o644, 100).map(|k| match k {
                Kind::DpkgStatus => "dpkg",
                Kind::DpkgStatusD => "dpkg.d",
                Kind::Apk => "apk",
                Kind::Rpm => "rpm",
                Kind::RpmOther => "rpm-other",
                Kind::PythonMetadata => "python",
                Kind::NodePackage => "node",
                Kind::NodeLock => "node-lock",
                Kind::Jar => "jar",
                Kind::Binary => "bin",
            })
        };
        assert_eq!(k("/var/lib/dpkg/status"), Some("dpkg"));
        assert_eq!(k("/var/lib/dpkg/status-old"), None);
        assert_eq!(k("/var/lib/dpkg/status.d/base"), Some("dpkg.d"));
        assert_eq!(k("/var/lib/dpkg/status.d/base.md5sums"), None);
        assert_eq!(k("/lib/apk/db/installed"), Some("apk"));
        assert_eq!(k("/var/lib/rpm/rpmdb.sqlite"), Some("rpm"));
        assert_eq!(k("/var/lib/rpm/Packages"), Some("rpm-other"));
        assert_eq!(
            k("/usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA"),
            Some("python")
        );
        assert_eq!(
            k("/usr/lib/python3/dist-packages/six-1.16.0.egg-info"),
            Some("python")
        );
        assert_eq!(k("/x/y.egg-info/PKG-INFO"), Some("python"));
        assert_eq!(k("/app/node_modules/left-pad/package.json"), Some("node"));
        assert_eq!(
            k("/app/node_modules/@babel/core/package.json"),
            Some("node")
        );
        assert_eq!(k("/app/package.json"), None);
        assert_eq!(k("/app/package-lock.json"), Some("node-lock"));
        assert_eq!(k("/app/node_modules/.package-lock.json"), None);
        assert_eq!(k("/app/node_modules/x/package-lock.json"), None);
        assert_eq!(k("/app/node_modules/a/lib/package.json"), None);
        assert_eq!(k("/opt/app.jar"), Some("jar"));
        assert!(classify("/usr/bin/x", "x", 0o755, 4096).is_some());
        assert!(classify("/usr/bin/x", "x", 0o644, 4096).is_none());
    }

    #[test]
    fn a_distroless_status_d_with_dep5_licences() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        w(
            "var/lib/dpkg/status.d/base-files",
            "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4+deb12u5\n",
        );
        w(
            "var/lib/dpkg/status.d/base-files.md5sums",
            "0123  etc/debian_version\n",
        );
        w(
            "var/lib/dpkg/status.d/tzdata",
            "Package: tzdata\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
        );
        w(
            "usr/share/doc/base-files/copyright",
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n",
        );
        let s = scan_layer(d.path(), &Limits::default()).unwrap();
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        let got: Vec<_> = s
            .sources
            .iter()
            .map(|src| {
                (
                    src.path.as_str(),
                    src.packages[0].name.as_str(),
                    src.packages[0].licenses.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/var/lib/dpkg/status.d/base-files",
                    "base-files",
                    vec!["GPL-2+".to_string()]
                ),
                ("/var/lib/dpkg/status.d/tzdata", "tzdata", vec![])
            ]
        );
    }
}
