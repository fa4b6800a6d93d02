//! An image's packages: each layer scanned once (or read back from the
//! per-layer cache, keyed by its diff-id), then the layers composed
//! bottom-up as overlayfs would show them — a file of a layer hides the
//! same path below, a whiteout or an opaque directory deletes what is
//! below — so a package removed by a later layer is not listed, and each
//! package is attributed to the lowest layer from which it is present
//! unchanged (a package database rewritten by a later `apt-get install`
//! keeps its older packages in their own layers).
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsview::{Entry, LayerDir};
use crate::purl::Distro;
use crate::scan::{self, LayerScan, Limits, SCAN_VERSION};
use crate::{Package, SupplyError};

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct LayerRef {
    /// Its diff-id, `sha256:<hex>`.
    pub diff_id: String,
    /// Its unpacked directory.
    pub dir: PathBuf,
}

/// The per-layer scan cache: `<dir>/<diff-id hex>.json`, written through a
/// file in `tmp` (same filesystem) renamed into place.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Where the scans are kept.
    pub dir: PathBuf,
    /// A scratch directory on the same filesystem.
    pub tmp: PathBuf,
}

impl Cache {
    fn path(&self, diff_id: &str) -> Option<PathBuf> {
        let hex = diff_id.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(self.dir.join(format!("{hex}.json")))
    }

    fn load(&self, diff_id: &str) -> Option<LayerScan> {
        let p = self.path(diff_id)?;
        let b = std::fs::read(p).ok()?;
        serde_json::from_slice::<LayerScan>(&b)
            .ok()
            .filter(|s| s.version == SCAN_VERSION)
    }

    fn store(&self, diff_id: &str, scan: &LayerScan) -> Result<(), SupplyError> {
        let Some(p) = self.path(diff_id) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| SupplyError::io("creating the SBOM cache", &self.dir, e))?;
        let mut f = tempfile::NamedTempFile::new_in(&self.tmp)
            .map_err(|e| SupplyError::io("writing the SBOM cache", &self.tmp, e))?;
        serde_json::to_writer(&mut f, scan)?;
        f.flush()
            .map_err(|e| SupplyError::io("writing the SBOM cache", f.path(), e))?;
        f.persist(&p)
            .map_err(|e| SupplyError::io("writing the SBOM cache", &p, e.error))?;
        Ok(())
    }

    /// Remove the scans of layers not in `keep` (diff-id hexes): the
    /// cache never outlives the layers it describes for long.
    pub fn prune(&self, keep: &dyn Fn(&str) -> bool) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(hex) = name.strip_suffix(".json") {
                if !keep(hex) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// What the document says about the image itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The name it was asked for by (`debian:bookworm`).
    pub name: String,
    /// Its id, `sha256:<hex>` of its config.
    pub id: String,
    /// `name@sha256:…` it was pulled or pushed by.
    pub repo_digests: Vec<String>,
    /// Its tags.
    pub repo_tags: Vec<String>,
}

/// An image's bill of materials.
#[derive(Debug, Clone)]
pub struct Sbom {
    /// The image.
    pub image: ImageInfo,
    /// Its distribution (`/etc/os-release`), if it says.
    pub distro: Option<Distro>,
    /// Its layers' diff-ids, base first.
    pub layers: Vec<String>,
    /// Its packages, sorted by name, version and type.
    pub packages: Vec<Package>,
    /// What was skipped and why.
    pub notes: Vec<String>,
    /// How many layers came from the cache.
    pub cached_layers: usize,
}

fn under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// The SBOM of the image `image` made of `layers` (base first).
pub fn scan_image(
    image: ImageInfo,
    layers: &[LayerRef],
    cache: Option<&Cache>,
    limits: &Limits,
) -> Result<Sbom, SupplyError> {
    let mut scans = Vec::with_capacity(layers.len());
    let mut cached_layers = 0;
    for l in layers {
        if let Some(s) = cache.and_then(|c| c.load(&l.diff_id)) {
            cached_layers += 1;
            scans.push(s);
            continue;
        }
        let s = scan::scan_layer(&l.dir, limits)?;
        if let Some(c) = cache {
            c.store(&l.diff_id, &s)?;
        }
        scans.push(s);
    }
    let mut live: BTreeMap<String, Vec<Package>> = BTreeMap::new();
    let mut notes = Vec::new();
    for (l, s) in layers.iter().zip(&scans) {
        for d in &s.opaque {
            live.retain(|p, _| !under(p, d));
        }
        for w in &s.whiteouts {
            live.retain(|p, _| p != w && !under(p, w));
        }
        for src in &s.sources {
            let old = live.remove(&src.path).unwrap_or_default();
            let pkgs = src
                .packages
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    match old.iter().find(|o| o.same_as(&p)) {
                        Some(o) => {
                            p.layer = o.layer.clone();
                            if p.licenses.is_empty() {
                                p.licenses = o.licenses.clone();
                            }
                        }
                        None => p.layer = l.diff_id.clone(),
                    }
                    p
                })
                .collect();
            live.insert(src.path.clone(), pkgs);
        }
        let short = l.diff_id.get(7..19).unwrap_or(&l.diff_id);
        notes.extend(s.notes.iter().map(|n| format!("layer {short}: {n}")));
    }
    // An app's lock file (npm's, yarn's, pnpm's) stands in for its
    // node_modules only where the image has no installed packages of that
    // app.
    let installed: std::collections::BTreeSet<&str> = live
        .keys()
        .filter_map(|p| p.split_once("/node_modules/").map(|(app, _)| app))
        .collect();
    let locks: Vec<String> = live
        .keys()
        .filter(|p| {
            crate::scan::node::LOCK_FILES.iter().any(|f| {
                p.strip_suffix(f)
                    .and_then(|d| d.strip_suffix('/'))
                    .is_some_and(|app| installed.contains(app))
            })
        })
        .cloned()
        .collect();
    for l in locks {
        live.remove(&l);
    }
    let dirs: Vec<LayerDir> = layers.iter().map(|l| LayerDir::new(&l.dir)).collect();
    let distro = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| read_merged(&dirs, p, 64 << 10))
        .map(|b| Distro::parse(&String::from_utf8_lossy(&b)))
        .filter(|d| !d.id.is_empty());
    let none = Distro::default();
    let mut packages: Vec<Package> = live.into_values().flatten().collect();
    for p in &mut packages {
        p.purl = crate::purl::of(p, distro.as_ref().unwrap_or(&none));
    }
    packages.sort_by(|a, b| {
        (&a.name, &a.version, a.ecosystem, &a.locations).cmp(&(
            &b.name,
            &b.version,
            b.ecosystem,
            &b.locations,
        ))
    });
    Ok(Sbom {
        image,
        distro,
        layers: layers.iter().map(|l| l.diff_id.clone()).collect(),
        packages,
        notes,
        cached_layers,
    })
}

/// `a/b/../c` made plain, never above the root.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// The regular file at image path `path` as the merged layers show it,
/// symlinks resolved as paths of the image (never of the host), at most
/// 8 of them.
pub fn read_merged(layers: &[LayerDir], path: &str, limit: u64) -> Option<Vec<u8>> {
    let mut path = normalize(path);
    'hop: for _ in 0..8 {
        for l in layers.iter().rev() {
            match l.lookup(&path) {
                Entry::Missing => continue,
                Entry::File(_) => return l.read(&path, limit).ok().flatten(),
                Entry::Symlink(t) => {
                    let t = t.to_string_lossy();
                    path = if t.starts_with('/') {
                        normalize(&t)
                    } else {
                        let parent = Path::new(&path)
                            .parent()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        normalize(&format!("{parent}/{t}"))
                    };
                    continue 'hop;
                }
                Entry::Whiteout | Entry::Dir | Entry::Other => return None,
            }
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const LIBC: &str =
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n";
    const CURL: &str =
        "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10\n";
    const LIBC_NEW: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n";

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn layer(root: &Path, n: u8) -> LayerRef {
        let hex = format!("{n:02x}").repeat(32);
        let dir = root.join(&hex);
        std::fs::create_dir_all(&dir).unwrap();
        LayerRef {
            diff_id: format!("sha256:{hex}"),
            dir,
        }
    }

    fn info() -> ImageInfo {
        ImageInfo {
            name: "test:1".into(),
            ..ImageInfo::default()
        }
    }

    fn whiteout(dir: &Path, rel: &str) {
        // An overlay whiteout needs mknod (root); a test that cannot make
        // one says so.
        let p = dir.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let st = std::process::Command::new("mknod")
            .arg(&p)
            .args(["c", "0", "0"])
            .status()
            .unwrap();
        assert!(st.success(), "mknod (the test needs root)");
    }

    #[test]
    #[ignore = "needs root (an overlay whiteout is a 0/0 character device)"]
    fn layers_compose_bottom_up_with_attribution_and_removal() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2, l3) = (layer(d.path(), 1), layer(d.path(), 2), layer(d.path(), 3));
        write(
            &l1.dir,
            "/usr/lib/os-release",
            "ID=debian\nVERSION_ID=\"12\"\n",
        );
        std::fs::create_dir_all(l1.dir.join("etc")).unwrap();
        symlink("../usr/lib/os-release", l1.dir.join("etc/os-release")).unwrap();
        write(&l1.dir, "/var/lib/dpkg/status", LIBC);
        write(
            &l1.dir,
            "/usr/share/doc/libc6/copyright",
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: LGPL-2.1+\n",
        );
        write(
            &l1.dir,
            "/app/node_modules/gone/package.json",
            r#"{"name":"gone","version":"1.0.0"}"#,
        );
        write(
            &l1.dir,
            "/app/node_modules/kept/package.json",
            r#"{"name":"kept","version":"1.0.0"}"#,
        );
        // Layer 2: apt-get install curl (status rewritten), rm of a module.
        write(&l2.dir, "/var/lib/dpkg/status", &format!("{LIBC}\n{CURL}"));
        whiteout(&l2.dir, "/app/node_modules/gone");
        // Layer 3: libc6 upgraded.
        write(
            &l3.dir,
            "/var/lib/dpkg/status",
            &format!("{LIBC_NEW}\n{CURL}"),
        );
        let layers = [l1.clone(), l2.clone(), l3.clone()];
        let s = scan_image(info(), &layers[..2], None, &Limits::default()).unwrap();
        let got: Vec<_> = s
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.layer.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("curl", l2.diff_id.as_str()),
                ("kept", l1.diff_id.as_str()),
                ("libc6", l1.diff_id.as_str())
            ]
        );
        let libc = &s.packages[2];
        assert_eq!(libc.licenses, ["LGPL-2.1+"]);
        assert_eq!(
            libc.purl,
            "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"
        );
        let s = scan_image(info(), &layers, None, &Limits::default()).unwrap();
        let libc = s.packages.iter().find(|p| p.name == "libc6").unwrap();
        assert_eq!(
            (libc.version.as_str(), libc.layer.as_str()),
            ("2.36-9+deb12u4", l3.diff_id.as_str())
        );
        let curl = s.packages.iter().find(|p| p.name == "curl").unwrap();
        assert_eq!(curl.layer, l2.diff_id);
    }

    #[test]
    #[ignore = "needs root (trusted.* xattrs)"]
    fn an_opaque_directory_hides_the_layers_below() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2) = (layer(d.path(), 1), layer(d.path(), 2));
        write(
            &l1.dir,
            "/app/node_modules/old/package.json",
            r#"{"name":"old","version":"1.0.0"}"#,
        );
        write(
            &l2.dir,
            "/app/node_modules/new/package.json",
            r#"{"name":"new","version":"2.0.0"}"#,
        );
        xattr::set(
            l2.dir.join("app/node_modules"),
            "trusted.overlay.opaque",
            b"y",
        )
        .expect("trusted xattrs (the test needs root)");
        let s = scan_image(info(), &[l1, l2], None, &Limits::default()).unwrap();
        let names: Vec<_> = s.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["new"]);
    }

    #[test]
    fn scans_are_cached_per_layer() {
        let d = tempfile::tempdir().unwrap();
        let l1 = layer(d.path(), 1);
        write(&l1.dir, "/var/lib/dpkg/status", LIBC);
        let cache = Cache {
            dir: d.path().join("cache/layers"),
            tmp: d.path().join("tmp"),
        };
        std::fs::create_dir_all(&cache.tmp).unwrap();
        let a = scan_image(
            info(),
            std::slice::from_ref(&l1),
            Some(&cache),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(a.cached_layers, 0);
        assert!(cache
            .dir
            .join(format!("{}.json", "01".repeat(32)))
            .is_file());
        // The layer's files are not read again: the cache answers.
        std::fs::remove_file(l1.dir.join("var/lib/dpkg/status")).unwrap();
        let b = scan_image(
            info(),
            std::slice::from_ref(&l1),
            Some(&cache),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(b.cached_layers, 1);
        assert_eq!(a.packages, b.packages);
        assert_eq!(std::fs::read_dir(&cache.tmp).unwrap().count(), 0);
        cache.prune(&|_| false);
        assert_eq!(std::fs::read_dir(&cache.dir).unwrap().count(), 0);
    }

    #[test]
    fn image_symlinks_resolve_inside_the_image() {
        let d = tempfile::tempdir().unwrap();
        let l1 = layer(d.path(), 1);
        std::fs::create_dir_all(l1.dir.join("etc")).unwrap();
        // Absolute and escaping targets are the image's paths, not the host's.
        symlink(
            "/../../../etc/os-release-host",
            l1.dir.join("etc/os-release"),
        )
        .unwrap();
        write(&l1.dir, "/etc/os-release-host", "ID=inside\n");
        let dirs = [LayerDir::new(&l1.dir)];
        assert_eq!(
            read_merged(&dirs, "/etc/os-release", 100).unwrap(),
            b"ID=inside\n"
        );
        symlink("loop", l1.dir.join("etc/loop")).unwrap();
        assert_eq!(read_merged(&dirs, "/etc/loop", 100), None);
    }

    #[test]
    fn a_huge_package_json_tree_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let l1 = layer(d.path(), 1);
        // One 100 MB package.json (sparse: it is never read) and a deep
        // chain of nested node_modules.
        let big = l1.dir.join("app/node_modules/big");
        std::fs::create_dir_all(&big).unwrap();
        let f = std::fs::File::create(big.join("package.json")).unwrap();
        f.set_len(100 << 20).unwrap();
        let mut p = l1.dir.join("app");
        for i in 0..100 {
            p = p.join("node_modules").join(format!("m{i}"));
        }
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("package.json"),
            r#"{"name":"deep","version":"1.0.0"}"#,
        )
        .unwrap();
        let s = scan_image(info(), &[l1], None, &Limits::default()).unwrap();
        assert!(s.packages.is_empty(), "{:?}", s.packages);
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("big/package.json: skipped: 104857600 bytes")),
            "{:?}",
            s.notes
        );
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("deeper than 64 directories")),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn a_100_mb_tree_of_package_json_files_is_read_within_a_budget() {
        let d = tempfile::tempdir().unwrap();
        let l1 = layer(d.path(), 1);
        // 100 real package.json files of 1,000,000 bytes each (each under
        // the 1 MiB a metadata file may be): 100 MB of JSON to parse.
        for i in 0..100 {
            let mut body = format!(r#"{{"name":"pkg{i}","version":"1.0.{i}","description":""#);
            body.push_str(&"x".repeat(1_000_000 - body.len() - 2));
            body.push_str("\"}");
            assert_eq!(body.len(), 1_000_000);
            write(
                &l1.dir,
                &format!("/app/node_modules/pkg{i}/package.json"),
                &body,
            );
        }
        let s = scan_image(info(), std::slice::from_ref(&l1), None, &Limits::default()).unwrap();
        assert_eq!(s.packages.len(), 100, "{:?}", s.notes);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        // Past the per-layer budget (here 10 MB), the rest is skipped with
        // one note: many files each under the size bound cannot make the
        // scan read without end.
        let small = Limits {
            max_manifest_total: 10_000_000,
            ..Limits::default()
        };
        let s = scan_image(info(), &[l1], None, &small).unwrap();
        assert_eq!(s.packages.len(), 10, "{:?}", s.notes);
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(
            s.notes[0].contains("more than 10000000 bytes of package metadata in one layer"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn a_lock_file_counts_only_without_installed_packages() {
        let d = tempfile::tempdir().unwrap();
        let (l1, l2) = (layer(d.path(), 1), layer(d.path(), 2));
        let lock = r#"{"lockfileVersion":3,"packages":{"":{},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/dev-only":{"version":"9.0.0","dev":true}}}"#;
        write(&l1.dir, "/app/package-lock.json", lock);
        write(&l1.dir, "/srv/package-lock.json", lock);
        // npm ci in a later layer installs /app's packages.
        write(
            &l2.dir,
            "/app/node_modules/left-pad/package.json",
            r#"{"name":"left-pad","version":"1.3.0"}"#,
        );
        let s = scan_image(info(), &[l1, l2], None, &Limits::default()).unwrap();
        let got: Vec<_> = s
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.locations[0].as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("dev-only", "/srv/package-lock.json"),
                ("left-pad", "/app/node_modules/left-pad/package.json"),
                ("left-pad", "/srv/package-lock.json")
            ]
        );
    }
}
