//! Hostile layers (after containerd's TestBreakouts): every case must leave
//! everything outside the layer dir untouched, by rejecting the entry or
//! containing it. Tars are built here, byte by byte where the `tar` crate
//! would refuse.
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use store::layer::{unpack, unpack_with, UnpackOptions};

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
}

fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Write the raw name so "../" survives (set_path would refuse it).
    let name = path.as_bytes();
    assert!(name.len() < 100);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_700_000_000);
    h
}

fn build(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p) => {
                let mut h = header(p, tar::EntryType::Directory, 0);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::File(p, data) => {
                let mut h = header(p, tar::EntryType::Regular, data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(p, t) | E::Hardlink(p, t) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(p, kind, 0);
                let t = t.as_bytes();
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
            E::Char(p, ma, mi) => {
                let mut h = header(p, tar::EntryType::Char, 0);
                h.set_device_major(*ma).unwrap();
                h.set_device_minor(*mi).unwrap();
                h.set_cksum();
                b.append(&h, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A fresh temp dir with `layer/` (the destination) and a sentinel beside it.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("layer")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), b"original").unwrap();
        Scene { dir }
    }
    fn layer(&self) -> std::path::PathBuf {
        self.dir.path().join("layer")
    }
    fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = walk(self.dir.path(), Path::new(""))
            .into_iter()
            .filter(|p| !p.starts_with("layer"))
            .collect();
        v.sort();
        v
    }
    fn assert_outside_untouched(&self) {
        assert_eq!(
            self.listing(),
            vec!["outside".to_string(), "outside/sentinel".to_string()]
        );
        assert_eq!(
            std::fs::read(self.dir.path().join("outside/sentinel")).unwrap(),
            b"original"
        );
    }
}

fn walk(base: &Path, rel: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(base.join(rel)).unwrap().flatten() {
        let r = rel.join(e.file_name());
        out.push(r.display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(base, &r));
        }
    }
    out
}

fn run(
    entries: &[E<'_>],
) -> (
    Scene,
    Result<store::layer::Unpacked, store::layer::LayerError>,
) {
    let s = Scene::new();
    let r = unpack(&build(entries)[..], &s.layer());
    (s, r)
}

#[test]
fn dotdot_paths_are_rejected() {
    let (s, r) = run(&[E::File("../outside/sentinel", b"pwned")]);
    assert!(r.unwrap_err().to_string().contains(".."));
    s.assert_outside_untouched();
    let (s, r) = run(&[E::File("a/../../outside/new", b"x")]);
    assert!(r.is_err());
    s.assert_outside_untouched();
}

#[test]
fn absolute_paths_stay_inside() {
    let (s, r) = run(&[E::File("/outside/sentinel", b"inside")]);
    r.unwrap();
    s.assert_outside_untouched();
    assert_eq!(
        std::fs::read(s.layer().join("outside/sentinel")).unwrap(),
        b"inside"
    );
}

#[test]
fn symlink_then_write_through_is_contained() {
    // Relative escape.
    // (Resolved inside the root, `evil` dangles: the write is refused.)
    let (s, _r) = run(&[
        E::Symlink("evil", "../outside"),
        E::File("evil/sentinel", b"pwned"),
    ]);
    s.assert_outside_untouched();
    // A symlink to a directory inside the layer is followed, inside.
    let (s, r) = run(&[
        E::Dir("real"),
        E::Symlink("alias", "/real"),
        E::File("alias/f", b"ok"),
    ]);
    r.unwrap();
    s.assert_outside_untouched();
    assert_eq!(std::fs::read(s.layer().join("real/f")).unwrap(), b"ok");
    // Absolute symlink to the real outside dir.
    let scene = Scene::new();
    let abs = scene.dir.path().join("outside").display().to_string();
    let _ = unpack(
        &build(&[E::Symlink("abs", &abs), E::File("abs/sentinel", b"pwned")])[..],
        &scene.layer(),
    );
    scene.assert_outside_untouched();
    // Chains of symlinks and a symlink to "/".
    let (s, r) = run(&[
        E::Symlink("a", ".."),
        E::Symlink("b", "a/.."),
        E::Symlink("root", "/"),
        E::File("b/outside/sentinel", b"pwned"),
        E::File("root/../outside/x", b"pwned"),
    ]);
    let _ = r;
    s.assert_outside_untouched();
}

#[test]
fn file_entry_over_a_symlink_replaces_the_link() {
    let (s, r) = run(&[
        E::Symlink("link", "../outside/sentinel"),
        E::File("link", b"pwned"),
    ]);
    r.unwrap();
    s.assert_outside_untouched();
    assert!(std::fs::symlink_metadata(s.layer().join("link"))
        .unwrap()
        .is_file());
}

#[test]
fn hardlinks_cannot_reach_outside() {
    let (s, r) = run(&[E::Hardlink("h", "../outside/sentinel")]);
    assert!(r.is_err());
    s.assert_outside_untouched();
    // Through a symlinked parent: resolves inside the root, so the target is missing.
    let (s, r) = run(&[
        E::Symlink("up", ".."),
        E::Hardlink("h", "up/outside/sentinel"),
    ]);
    assert!(r.is_err());
    s.assert_outside_untouched();
    // A hardlink to a symlink pointing outside just links the symlink.
    let (s, r) = run(&[
        E::Symlink("l", "/outside/sentinel"),
        E::Hardlink("h", "l"),
        E::File("ok", b"1"),
    ]);
    r.unwrap();
    s.assert_outside_untouched();
    assert!(std::fs::symlink_metadata(s.layer().join("h"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_cannot_escape() {
    let (s, r) = run(&[
        E::Dir("d"),
        E::File("d/.wh.gone", b""),
        E::File("d/.wh..wh..opq", b""),
    ]);
    r.unwrap();
    let md = std::fs::symlink_metadata(s.layer().join("d/gone")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), 0);
    assert_eq!(
        xattr::get(s.layer().join("d"), "trusted.overlay.opaque")
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let (s, r) = run(&[E::File(".wh...", b"")]);
    assert!(r.is_err());
    s.assert_outside_untouched();
    let (s, r) = run(&[
        E::Symlink("up", "../outside"),
        E::File("up/.wh.sentinel", b""),
    ]);
    let _ = r;
    s.assert_outside_untouched();
}

#[test]
fn devices_are_skipped_unless_allowed() {
    let (s, r) = run(&[E::Char("dev/kmsg", 1, 11)]);
    assert_eq!(r.unwrap().skipped, 1);
    assert!(!s.layer().join("dev/kmsg").exists());
    let s = Scene::new();
    unpack_with(
        &build(&[E::Char("dev/null", 1, 3)])[..],
        &s.layer(),
        &UnpackOptions {
            allow_devices: true,
        },
    )
    .unwrap();
    assert!(std::fs::symlink_metadata(s.layer().join("dev/null"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn compression_formats_share_the_diff_id() {
    let plain = build(&[
        E::Dir("etc"),
        E::File("etc/hostname", b"box\n"),
        E::Symlink("etc/link", "hostname"),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    let expected = model::Digest::of(&plain);
    for data in [&plain, &gz, &zst] {
        let s = Scene::new();
        let u = unpack(&data[..], &s.layer()).unwrap();
        assert_eq!(u.diff_id, expected);
        assert_eq!(u.size, 4);
        assert_eq!(
            std::fs::read(s.layer().join("etc/hostname")).unwrap(),
            b"box\n"
        );
        assert_eq!(
            std::fs::read_link(s.layer().join("etc/link")).unwrap(),
            Path::new("hostname")
        );
    }
}

#[test]
fn ownership_modes_and_hardlinks_are_kept() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("bin/tool").unwrap();
    h.set_size(3);
    h.set_mode(0o4755);
    h.set_uid(1000);
    h.set_gid(10);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    b.append(&h, &b"abc"[..]).unwrap();
    let mut l = tar::Header::new_gnu();
    l.set_entry_type(tar::EntryType::Link);
    l.set_size(0);
    l.set_cksum();
    b.append_link(&mut l, "bin/alias", "bin/tool").unwrap();
    let data = b.into_inner().unwrap();
    let s = Scene::new();
    unpack(&data[..], &s.layer()).unwrap();
    let md = std::fs::metadata(s.layer().join("bin/tool")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777, md.mtime()),
        (1000, 10, 0o4755, 1_600_000_000)
    );
    assert_eq!(
        std::fs::metadata(s.layer().join("bin/alias"))
            .unwrap()
            .ino(),
        md.ino()
    );
}

#[test]
fn directory_entry_over_a_symlink_replaces_the_link() {
    let (s, r) = run(&[
        E::Symlink("dir", "../outside"),
        E::Dir("dir"),
        E::File("dir/sentinel", b"pwned"),
    ]);
    r.unwrap();
    s.assert_outside_untouched();
    assert!(std::fs::symlink_metadata(s.layer().join("dir"))
        .unwrap()
        .is_dir());
    assert_eq!(
        std::fs::read(s.layer().join("dir/sentinel")).unwrap(),
        b"pwned"
    );
}

#[test]
fn rewriting_a_hardlinked_symlink_does_not_write_through() {
    let scene = Scene::new();
    let abs = scene
        .dir
        .path()
        .join("outside/sentinel")
        .display()
        .to_string();
    unpack(
        &build(&[
            E::Symlink("l", &abs),
            E::Hardlink("h", "l"),
            E::File("h", b"pwned"),
            E::File("l", b"pwned"),
        ])[..],
        &scene.layer(),
    )
    .unwrap();
    scene.assert_outside_untouched();
}

#[test]
fn long_and_odd_names_stay_inside() {
    let deep = "a/".repeat(40) + "f";
    let (s, r) = run(&[
        E::File(&deep[..deep.len().min(99)], b"x"),
        E::File("./.", b""),
        E::Dir("./"),
    ]);
    let _ = r;
    s.assert_outside_untouched();
}
