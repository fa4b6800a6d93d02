//! Shared by the layer tests: a tar writer that writes exactly what it is
//! told (raw names with `..`, long names as PAX or GNU records, PAX xattrs,
//! device numbers), and a scene: a fresh temp dir holding the layer dir and
//! things beside it that no layer may touch.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use store::layer::{unpack, unpack_with, LayerError, UnpackOptions, Unpacked};
use tar::EntryType;

/// How names longer than the 100-byte header field are written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Long {
    /// PAX `path` / `linkpath` records (what Go and Docker write).
    Pax,
    /// GNU `././@LongLink` entries (what GNU tar writes).
    Gnu,
}

/// One tar entry, written as given.
#[derive(Clone, Debug)]
pub struct E {
    pub path: Vec<u8>,
    pub kind: EntryType,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
    pub pax: Vec<(String, Vec<u8>)>,
    pub long: Long,
}

impl E {
    fn new(path: &str, kind: EntryType) -> E {
        E {
            path: path.as_bytes().to_vec(),
            kind,
            link: Vec::new(),
            data: Vec::new(),
            mode: if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            dev: (0, 0),
            pax: Vec::new(),
            long: Long::Pax,
        }
    }
    pub fn mode(mut self, mode: u32) -> E {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> E {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn mtime(mut self, mtime: u64) -> E {
        self.mtime = mtime;
        self
    }
    pub fn pax(mut self, key: &str, value: &[u8]) -> E {
        self.pax.push((key.to_string(), value.to_vec()));
        self
    }
    pub fn xattr(self, name: &str, value: &[u8]) -> E {
        self.pax(&format!("SCHILY.xattr.{name}"), value)
    }
    pub fn long(mut self, long: Long) -> E {
        self.long = long;
        self
    }
}

pub fn dir(path: &str) -> E {
    E::new(path, EntryType::Directory)
}
pub fn file(path: &str, data: &[u8]) -> E {
    let mut e = E::new(path, EntryType::Regular);
    e.data = data.to_vec();
    e
}
pub fn symlink(path: &str, target: &str) -> E {
    let mut e = E::new(path, EntryType::Symlink);
    e.mode = 0o777;
    e.link = target.as_bytes().to_vec();
    e
}
pub fn hardlink(path: &str, target: &str) -> E {
    let mut e = E::new(path, EntryType::Link);
    e.link = target.as_bytes().to_vec();
    e
}
pub fn fifo(path: &str) -> E {
    E::new(path, EntryType::Fifo)
}
pub fn chardev(path: &str, major: u32, minor: u32) -> E {
    let mut e = E::new(path, EntryType::Char);
    e.dev = (major, minor);
    e
}
pub fn blockdev(path: &str, major: u32, minor: u32) -> E {
    let mut e = E::new(path, EntryType::Block);
    e.dev = (major, minor);
    e
}

/// One PAX record: "<len> <key>=<value>\n", the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len += 1;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn raw_header(name: &[u8], kind: EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let n = name.len().min(100);
    h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append(b: &mut tar::Builder<Vec<u8>>, mut h: tar::Header, data: &[u8]) {
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// The tar (plain, with the two zero blocks at the end) of `entries`.
pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut pax = Vec::new();
        let long_path = e.path.len() > 100;
        let long_link = e.link.len() > 100;
        match e.long {
            Long::Pax => {
                if long_path {
                    pax.extend(pax_record("path", &e.path));
                }
                if long_link {
                    pax.extend(pax_record("linkpath", &e.link));
                }
            }
            Long::Gnu => {
                if long_path {
                    let mut data = e.path.clone();
                    data.push(0);
                    let h = raw_header(b"././@LongLink", EntryType::GNULongName, data.len() as u64);
                    append(&mut b, h, &data);
                }
                if long_link {
                    let mut data = e.link.clone();
                    data.push(0);
                    let h = raw_header(b"././@LongLink", EntryType::GNULongLink, data.len() as u64);
                    append(&mut b, h, &data);
                }
            }
        }
        for (k, v) in &e.pax {
            pax.extend(pax_record(k, v));
        }
        if !pax.is_empty() {
            let h = raw_header(b"PaxHeader", EntryType::XHeader, pax.len() as u64);
            append(&mut b, h, &pax);
        }
        let mut h = raw_header(&e.path, e.kind, e.data.len() as u64);
        let l = e.link.len().min(100);
        h.as_old_mut().linkname[..l].copy_from_slice(&e.link[..l]);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        if matches!(e.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(e.dev.0).unwrap();
            h.set_device_minor(e.dev.1).unwrap();
        }
        append(&mut b, h, &e.data);
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// What a path outside the layer looks like, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct Snap {
    kind: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    content: Vec<u8>,
    xattrs: Vec<(String, Option<Vec<u8>>)>,
}

fn snap(p: &Path) -> Snap {
    let md = std::fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let content = if ft.is_file() {
        std::fs::read(p).unwrap()
    } else if ft.is_symlink() {
        std::fs::read_link(p)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec()
    } else {
        Vec::new()
    };
    let mut xattrs: Vec<_> = xattr::list(p)
        .map(|l| {
            l.map(|n| {
                let v = xattr::get(p, &n).ok().flatten();
                (n.to_string_lossy().into_owned(), v)
            })
            .collect()
        })
        .unwrap_or_default();
    xattrs.sort();
    Snap {
        kind: md.mode() & 0o170000,
        mode: md.permissions().mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: (md.mtime(), md.mtime_nsec()),
        content,
        xattrs,
    }
}

/// A fresh temp dir: `layer/` (the destination, empty) and, beside it,
/// `outside/sentinel`, `outside/dir/`, `outside/perm400` (mode 0400) and a
/// symlink `outside/link -> sentinel`, none of which a layer may change.
pub struct Scene {
    pub tmp: tempfile::TempDir,
    before: BTreeMap<PathBuf, Snap>,
}

impl Default for Scene {
    fn default() -> Self {
        Self::new()
    }
}

impl Scene {
    pub fn new() -> Scene {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        std::fs::create_dir(t.join("layer")).unwrap();
        std::fs::create_dir(t.join("outside")).unwrap();
        std::fs::create_dir(t.join("outside/dir")).unwrap();
        std::fs::write(t.join("outside/sentinel"), b"original").unwrap();
        std::fs::write(t.join("outside/perm400"), b"...").unwrap();
        std::fs::set_permissions(
            t.join("outside/perm400"),
            std::fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        std::os::unix::fs::symlink("sentinel", t.join("outside/link")).unwrap();
        let mut s = Scene {
            tmp,
            before: BTreeMap::new(),
        };
        s.before = s.outside();
        s
    }

    /// The layer directory.
    pub fn layer(&self) -> PathBuf {
        self.tmp.path().join("layer")
    }

    /// `rel` inside the layer directory.
    pub fn at(&self, rel: &str) -> PathBuf {
        self.layer().join(rel)
    }

    /// The absolute host path of `rel` in the temp dir (for absolute
    /// symlinks that would escape if followed on the host).
    pub fn abs(&self, rel: &str) -> String {
        self.tmp.path().join(rel).display().to_string()
    }

    fn outside(&self) -> BTreeMap<PathBuf, Snap> {
        let mut out = BTreeMap::new();
        out.insert(PathBuf::from("."), snap(self.tmp.path()));
        walk(self.tmp.path(), Path::new(""), &mut out);
        out
    }

    /// Everything beside the layer dir (and the temp dir itself) is as
    /// it was: same names, types, modes, owners, times, contents, xattrs.
    pub fn assert_outside_untouched(&self) {
        let now = self.outside();
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            self.before.keys().collect::<Vec<_>>(),
            "the files beside the layer changed"
        );
        for (p, s) in &self.before {
            assert_eq!(&now[p], s, "{} changed", p.display());
        }
    }

    pub fn unpack(&self, entries: &[E]) -> Result<Unpacked, LayerError> {
        unpack(&tar(entries)[..], &self.layer())
    }

    pub fn unpack_devices(&self, entries: &[E]) -> Result<Unpacked, LayerError> {
        unpack_with(
            &tar(entries)[..],
            &self.layer(),
            &UnpackOptions {
                allow_devices: true,
                ..Default::default()
            },
        )
    }
}

fn walk(base: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Snap>) {
    for e in std::fs::read_dir(base.join(rel)).unwrap().flatten() {
        let r = rel.join(e.file_name());
        if r == Path::new("layer") {
            // The layer dir itself is the destination; only its presence
            // is compared.
            out.insert(r, snap_kind_only(&base.join("layer")));
            continue;
        }
        out.insert(r.clone(), snap(&base.join(&r)));
        if e.file_type().unwrap().is_dir() {
            walk(base, &r, out);
        }
    }
}

fn snap_kind_only(p: &Path) -> Snap {
    let md = std::fs::symlink_metadata(p).unwrap();
    Snap {
        kind: md.mode() & 0o170000,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime: (0, 0),
        content: Vec::new(),
        xattrs: Vec::new(),
    }
}

/// Unpack `entries` in a fresh scene, check nothing outside changed, and
/// hand back the scene and the result.
pub fn run(entries: &[E]) -> (Scene, Result<Unpacked, LayerError>) {
    let s = Scene::new();
    let r = s.unpack(entries);
    s.assert_outside_untouched();
    (s, r)
}

/// Like [`run`], expecting a refusal whose message names `entry`.
pub fn refused(entries: &[E], entry: &str) -> Scene {
    let (s, r) = run(entries);
    match r {
        Ok(u) => panic!("expected a refusal naming {entry:?}, got {u:?}"),
        Err(e) => assert!(
            e.to_string().contains(entry),
            "error {e} does not name {entry:?}"
        ),
    }
    s
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

pub fn ino(p: &Path) -> u64 {
    std::fs::symlink_metadata(p).unwrap().ino()
}

pub fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
