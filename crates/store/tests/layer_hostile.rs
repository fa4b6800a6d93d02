//! Hostile layers. Every case unpacks into `layer/` of a fresh temp dir
//! and checks that nothing beside it changed (names, contents, modes,
//! owners, times, xattrs), then that the entry was either refused with an
//! error naming it, or contained: applied as if the layer dir were `/`.
//!
//! The `containerd_*` cases are containerd's `TestBreakouts`
//! (pkg/archive/tar_test.go), with "/etc" inside the layer; where
//! containerd resolves `..` lexically we refuse the entry instead.
mod layer_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use layer_support::*;

// ---- the checker itself ---------------------------------------------------

#[test]
#[should_panic(expected = "changed")]
fn the_scene_notices_a_mode_change_outside() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scene::new();
    std::fs::set_permissions(
        s.tmp.path().join("outside/perm400"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    s.assert_outside_untouched();
}

#[test]
#[should_panic(expected = "changed")]
fn the_scene_notices_a_new_file_beside_the_layer() {
    let s = Scene::new();
    std::fs::write(s.tmp.path().join("new"), b"").unwrap();
    s.assert_outside_untouched();
}

#[test]
#[should_panic(expected = "changed")]
fn the_scene_notices_an_xattr_outside() {
    let s = Scene::new();
    xattr::set(s.tmp.path().join("outside/dir"), "user.x", b"1").unwrap();
    s.assert_outside_untouched();
}

// ---- paths ------------------------------------------------------------

#[test]
fn dotdot_paths_are_refused() {
    refused(
        &[file("../outside/sentinel", b"pwned")],
        "../outside/sentinel",
    );
    refused(&[file("a/../../outside/new", b"x")], "a/../../outside/new");
    refused(&[dir("..")], "..");
    refused(&[file("ok", b""), fifo("x/../../y")], "x/../../y");
    // As a long name: PAX path and GNU long name.
    let long = format!("{}../../outside/sentinel", "a/".repeat(60));
    refused(&[file(&long, b"pwned")], "outside/sentinel");
    refused(&[file(&long, b"pwned").long(Long::Gnu)], "outside/sentinel");
    // A PAX path record overrides a harmless header name.
    refused(
        &[file("harmless", b"pwned").pax("path", b"../outside/sentinel")],
        "../outside/sentinel",
    );
}

#[test]
fn absolute_paths_stay_inside() {
    let (s, r) = run(&[file("/outside/sentinel", b"inside")]);
    r.unwrap();
    assert_eq!(read(&s.at("outside/sentinel")), b"inside");
    // The absolute host path of the sentinel, as an entry name.
    let s = Scene::new();
    let abs = s.abs("outside/sentinel");
    s.unpack(&[file(&abs, b"inside")]).unwrap();
    s.assert_outside_untouched();
    assert_eq!(read(&s.at(abs.trim_start_matches('/'))), b"inside");
}

#[test]
fn dot_and_empty_names_are_ignored() {
    let (s, r) = run(&[
        dir("./"),
        dir("."),
        dir("/"),
        file(".", b"x"),
        file("./.", b"x"),
        symlink("", "/outside"),
        file("ok", b"1"),
    ]);
    let u = r.unwrap();
    assert_eq!(u.skipped, 3);
    assert_eq!(read(&s.at("ok")), b"1");
    assert!(s.layer().is_dir());
}

#[test]
fn very_long_paths_are_refused_or_contained() {
    // 4000 bytes of nested names: walked one directory at a time, so
    // longer than one path lookup may be, and deeper than the fd cache.
    let deep = format!("{}f", "d/".repeat(2000));
    let (_s, r) = run(&[dir("d"), file(&deep, b"x"), file("d/d/g", b"y")]);
    r.unwrap();
    // A component longer than NAME_MAX.
    let wide = format!("{}/f", "n".repeat(300));
    let (_s, r) = run(&[file(&wide, b"x")]);
    assert!(r.unwrap_err().to_string().contains("nnnn"));
    // Many `..` in a long name, and a long symlink target.
    let up = format!("{}outside/sentinel", "../".repeat(200));
    refused(&[file(&up, b"pwned")], "outside/sentinel");
    let (s, r) = run(&[symlink("l", &up), file("l", b"replaced")]);
    r.unwrap();
    assert_eq!(read(&s.at("l")), b"replaced");
}

#[test]
fn huge_extension_headers_are_refused_before_they_are_read_into_memory() {
    let big = vec![b'a'; 8 << 20];
    for e in [
        file("f", b"").pax("comment", &big),
        file(std::str::from_utf8(&big).unwrap(), b""),
        file(std::str::from_utf8(&big).unwrap(), b"").long(Long::Gnu),
        symlink("l", std::str::from_utf8(&big).unwrap()).long(Long::Gnu),
    ] {
        let (_s, r) = run(&[e]);
        let err = r.unwrap_err();
        assert!(err.to_string().contains("MiB"), "{err}");
    }
    // A large but reasonable record is fine.
    let (s, r) = run(&[file("f", b"ok").pax("comment", &vec![b'a'; 1 << 20])]);
    r.unwrap();
    assert_eq!(read(&s.at("f")), b"ok");
}

/// A GNU sparse entry: `data` at offset 0, then a hole up to `size`.
fn sparse(path: &str, data: &[u8; 512], size: u64) -> Vec<u8> {
    fn num(field: &mut [u8; 12], v: u64) {
        if v < 1 << 33 {
            field.copy_from_slice(format!("{v:011o}\0").as_bytes());
        } else {
            // GNU base-256.
            field.fill(0);
            field[0] = 0x80;
            field[4..].copy_from_slice(&v.to_be_bytes());
        }
    }
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    h.set_mtime(0);
    let g = h.as_gnu_mut().unwrap();
    num(&mut g.sparse[0].offset, 0);
    num(&mut g.sparse[0].numbytes, 512);
    num(&mut g.sparse[1].offset, size);
    num(&mut g.sparse[1].numbytes, 0);
    num(&mut g.realsize, size);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &data[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn a_sparse_entry_stays_sparse() {
    // 2 KiB of tar declaring a 256 MiB file.
    let size = 256 << 20;
    let data = [b'h'; 512];
    let s = Scene::new();
    let u = store::layer::unpack(&sparse("huge", &data, size)[..], &s.layer()).unwrap();
    s.assert_outside_untouched();
    assert_eq!(u.size, size);
    let m = std::fs::metadata(s.at("huge")).unwrap();
    assert_eq!(m.len(), size);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "{} blocks allocated",
        m.blocks()
    );
    let mut head = [0u8; 512];
    use std::io::Read;
    std::fs::File::open(s.at("huge"))
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    assert_eq!(head, data);
}

#[test]
fn sparse_entries_declaring_huge_holes_are_refused_up_front() {
    let s = Scene::new();
    let t = std::time::Instant::now();
    let e = store::layer::unpack(&sparse("huge", &[1; 512], 1 << 60)[..], &s.layer()).unwrap_err();
    s.assert_outside_untouched();
    assert!(e.to_string().contains("sparse"), "{e}");
    assert!(t.elapsed().as_secs() < 5);
    assert!(!exists(&s.at("huge")));
}

#[test]
fn the_size_limit_is_checked_before_writing() {
    let s = Scene::new();
    let opts = store::layer::UnpackOptions {
        max_size: Some(1000),
        ..Default::default()
    };
    let ok = tar(&[file("a", &[1; 600]), file("b", &[2; 400])]);
    store::layer::unpack_with(&ok[..], &s.layer(), &opts).unwrap();
    let s = Scene::new();
    let big = tar(&[file("a", &[1; 600]), file("b", &[2; 401])]);
    let e = store::layer::unpack_with(&big[..], &s.layer(), &opts).unwrap_err();
    s.assert_outside_untouched();
    assert!(
        matches!(e, store::layer::LayerError::TooLarge { limit: 1000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("\"b\""), "{e}");
    assert!(!exists(&s.at("b")));
    // Sparse entries count with their holes.
    let s = Scene::new();
    let e = store::layer::unpack_with(&sparse("s", &[1; 512], 1 << 20)[..], &s.layer(), &opts)
        .unwrap_err();
    assert!(
        matches!(e, store::layer::LayerError::TooLarge { .. }),
        "{e}"
    );
}

// ---- symlinks -----------------------------------------------------------

#[test]
fn write_through_a_relative_symlink_is_contained() {
    // `evil` resolves to /outside inside the layer, which does not exist:
    // the write is refused.
    let (_s, r) = run(&[
        symlink("evil", "../outside"),
        file("evil/sentinel", b"pwned"),
    ]);
    assert!(r.unwrap_err().to_string().contains("evil/sentinel"));
    // With a directory of that name inside the layer, the write lands there.
    let (s, r) = run(&[
        dir("outside"),
        symlink("evil", "../outside"),
        file("evil/sentinel", b"inside"),
    ]);
    r.unwrap();
    assert_eq!(read(&s.at("outside/sentinel")), b"inside");
}

#[test]
fn write_through_an_absolute_symlink_to_the_host_is_contained() {
    let s = Scene::new();
    let abs = s.abs("outside");
    let r = s.unpack(&[symlink("abs", &abs), file("abs/sentinel", b"pwned")]);
    s.assert_outside_untouched();
    assert!(r.is_err());
    // When the same path exists inside the layer, that is where it goes.
    let s = Scene::new();
    let r = s.unpack(&[
        dir(&abs),
        symlink("abs", &abs),
        file("abs/sentinel", b"inside"),
    ]);
    s.assert_outside_untouched();
    r.unwrap();
    assert_eq!(
        read(&s.at(&format!("{}/sentinel", abs.trim_start_matches('/')))),
        b"inside"
    );
}

#[test]
fn symlink_chains_and_root_links_are_contained() {
    let (s, r) = run(&[
        symlink("a", ".."),
        symlink("b", "a/.."),
        symlink("c", "b/../../a"),
        symlink("root", "/"),
        file("b/outside/sentinel", b"1"),
        file("c/x", b"2"),
        file("root/y", b"3"),
    ]);
    r.unwrap();
    // All of them resolve to the layer root.
    assert_eq!(read(&s.at("outside/sentinel")), b"1");
    assert_eq!(read(&s.at("x")), b"2");
    assert_eq!(read(&s.at("y")), b"3");
    // A loop is an error, not a hang.
    let (_s, r) = run(&[symlink("l1", "l2"), symlink("l2", "l1"), file("l1/x", b"")]);
    assert!(r.is_err());
}

#[test]
fn a_file_entry_replaces_a_symlink_instead_of_writing_through_it() {
    let s = Scene::new();
    let abs = s.abs("outside/sentinel");
    s.unpack(&[symlink("link", &abs), file("link", b"pwned")])
        .unwrap();
    s.assert_outside_untouched();
    assert!(s.at("link").is_file());
    assert_eq!(read(&s.at("link")), b"pwned");
    // Same for every other kind.
    let s = Scene::new();
    s.unpack(&[
        symlink("a", &abs),
        dir("a"),
        symlink("b", &abs),
        fifo("b"),
        symlink("c", &abs),
        symlink("c", "elsewhere"),
        symlink("d", &s.abs("outside/dir")),
        dir("d/"),
        file("d/sentinel", b"inside"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    assert!(s.at("a").is_dir());
    assert!(std::fs::symlink_metadata(s.at("b"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        std::fs::read_link(s.at("c")).unwrap().to_str(),
        Some("elsewhere")
    );
    assert_eq!(read(&s.at("d/sentinel")), b"inside");
}

#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through() {
    // The dir is cached as a parent, then replaced by a symlink to the
    // host, then written below again.
    let s = Scene::new();
    let abs = s.abs("outside");
    let r = s.unpack(&[
        dir("d"),
        file("d/a", b"1"),
        symlink("d", &abs),
        file("d/sentinel", b"pwned"),
    ]);
    s.assert_outside_untouched();
    assert!(r.is_err());
    let (s, r) = run(&[
        dir("d"),
        dir("d/e"),
        file("d/e/a", b"1"),
        symlink("d", ".."),
        file("d/e/b", b"2"),
    ]);
    // d -> .. is the layer root: d/e/b is /e/b, made there (mkdir -p).
    r.unwrap();
    assert!(is_symlink(&s.at("d")));
    assert_eq!(read(&s.at("e/b")), b"2");
}

#[test]
fn metadata_of_a_symlink_never_reaches_its_target() {
    let s = Scene::new();
    let abs = s.abs("outside/sentinel");
    s.unpack(&[
        symlink("l", &abs)
            .owner(1234, 5678)
            .mode(0o4777)
            .mtime(42)
            .xattr("user.evil", b"1")
            .xattr("trusted.evil", b"1"),
        symlink("d", &s.abs("outside/dir"))
            .owner(1234, 5678)
            .xattr("trusted.overlay.opaque", b"y"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    let md = std::fs::symlink_metadata(s.at("l")).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mtime()), (1234, 5678, 42));
}

// ---- hardlinks ----------------------------------------------------------

#[test]
fn hardlinks_to_outside_are_refused() {
    refused(&[hardlink("h", "../outside/sentinel")], "h");
    let s = Scene::new();
    let abs = s.abs("outside/sentinel");
    // Absolute: the target is looked up inside the layer, where it is
    // missing.
    let r = s.unpack(&[hardlink("h", &abs)]);
    s.assert_outside_untouched();
    assert!(r.unwrap_err().to_string().contains("\"h\""));
    // Through a symlinked parent pointing up or at the host dir.
    refused(
        &[symlink("up", ".."), hardlink("h", "up/outside/sentinel")],
        "\"h\"",
    );
    let s = Scene::new();
    let r = s.unpack(&[
        symlink("host", &s.abs("outside")),
        hardlink("h", "host/sentinel"),
    ]);
    s.assert_outside_untouched();
    assert!(r.is_err());
    // To a directory, to a missing entry, to the root.
    refused(&[dir("d"), hardlink("h", "d")], "\"h\"");
    refused(&[hardlink("h", "missing")], "\"h\"");
    refused(&[hardlink("h", "./")], "\"h\"");
}

#[test]
fn a_hardlink_to_a_symlink_links_the_symlink() {
    let s = Scene::new();
    let abs = s.abs("outside/sentinel");
    s.unpack(&[
        symlink("l", &abs),
        hardlink("h", "l"),
        // Rewriting either name must not write through the link.
        file("h", b"pwned"),
        file("l", b"pwned"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    let s = Scene::new();
    s.unpack(&[symlink("l", &abs), hardlink("h", "l")]).unwrap();
    s.assert_outside_untouched();
    assert!(is_symlink(&s.at("h")));
    assert_eq!(ino(&s.at("h")), ino(&s.at("l")));
}

#[test]
fn a_hardlink_to_itself_is_a_no_op() {
    let (s, r) = run(&[file("f", b"1"), hardlink("f", "f"), hardlink("./f", "/f")]);
    r.unwrap();
    assert_eq!(read(&s.at("f")), b"1");
}

// ---- whiteouts ----------------------------------------------------------

#[test]
fn malformed_whiteouts_are_refused() {
    for name in [".wh.", ".wh..", ".wh...", "d/.wh..", "d/.wh..."] {
        refused(&[dir("d"), file("d/x", b""), file(name, b"")], name);
    }
    refused(&[file("d/../.wh.x", b"")], "d/../.wh.x");
}

#[test]
fn whiteouts_through_symlinks_are_contained() {
    // Up and out: resolves to /outside in the layer, which is missing.
    let (_s, r) = run(&[symlink("up", "../outside"), file("up/.wh.sentinel", b"")]);
    assert!(r.is_err());
    // To the host dir by absolute path.
    let s = Scene::new();
    let r = s.unpack(&[
        symlink("host", &s.abs("outside")),
        file("host/.wh.sentinel", b""),
        file("host/.wh..wh..opq", b""),
    ]);
    s.assert_outside_untouched();
    assert!(r.is_err());
    // To the root: the whiteout lands at the layer root.
    let (s, r) = run(&[symlink("r", "/"), file("r/.wh.x", b"")]);
    r.unwrap();
    assert!(std::fs::symlink_metadata(s.at("x"))
        .unwrap()
        .file_type()
        .is_char_device());
    // Opaque marker through a symlink to the root marks the root.
    let (s, r) = run(&[symlink("r", "/"), file("r/.wh..wh..opq", b"")]);
    r.unwrap();
    assert_eq!(
        xattr::get(s.layer(), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
}

#[test]
fn a_whiteout_replaces_a_symlink_and_does_not_follow_it() {
    let s = Scene::new();
    let r = s.unpack(&[
        symlink("link", &s.abs("outside/sentinel")),
        symlink("dirlink", &s.abs("outside/dir")),
        file(".wh.link", b""),
        file(".wh.dirlink", b""),
    ]);
    s.assert_outside_untouched();
    r.unwrap();
    for n in ["link", "dirlink"] {
        let md = std::fs::symlink_metadata(s.at(n)).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0, "{n}");
    }
}

// ---- xattrs ------------------------------------------------------------

#[test]
fn overlay_xattrs_from_the_layer_are_ignored() {
    let (s, r) = run(&[
        dir("d")
            .xattr("trusted.overlay.opaque", b"y")
            .xattr("trusted.overlay.redirect", b"/etc")
            .xattr("user.overlay.opaque", b"y"),
        file("f", b"")
            .xattr("trusted.overlay.metacopy", b"")
            .xattr("security.selinux", b"system_u:object_r:shadow_t:s0"),
    ]);
    r.unwrap();
    for (p, n) in [
        ("d", "trusted.overlay.opaque"),
        ("d", "trusted.overlay.redirect"),
        ("d", "user.overlay.opaque"),
        ("f", "trusted.overlay.metacopy"),
    ] {
        assert_eq!(xattr::get(s.at(p), n).unwrap(), None, "{p} {n}");
    }
}

// ---- devices -----------------------------------------------------------

#[test]
fn device_nodes_are_skipped_by_default() {
    let (s, r) = run(&[
        chardev("dev/kmsg", 1, 11),
        blockdev("dev/sda", 8, 0),
        // Not even over an existing entry.
        file("f", b"kept"),
        chardev("f", 1, 3),
    ]);
    assert_eq!(r.unwrap().skipped, 3);
    assert!(!exists(&s.at("dev/kmsg")));
    assert!(!exists(&s.at("dev/sda")));
    assert_eq!(read(&s.at("f")), b"kept");
}

// ---- containerd's TestBreakouts ------------------------------------------

/// The file containerd's cases expect to stay "unbroken".
fn unbroken(s: &Scene) {
    assert_eq!(read(&s.at("etc/unbroken")), b"unbroken");
}

#[test]
fn containerd_symlink_absolute() {
    let (s, r) = run(&[
        dir("etc"),
        symlink("localetc", "/etc"),
        file("/localetc/unbroken", b"unbroken"),
    ]);
    r.unwrap();
    unbroken(&s);
}

#[test]
fn containerd_symlink_up_and_out() {
    let (s, r) = run(&[
        dir("etc"),
        dir("dummy"),
        symlink("localetc", "/dummy/../etc"),
        file("/localetc/unbroken", b"unbroken"),
    ]);
    r.unwrap();
    unbroken(&s);
}

#[test]
fn containerd_symlink_multiple_absolute() {
    let (s, r) = run(&[
        dir("etc"),
        dir("dummy"),
        symlink("/dummy/etc", "/etc"),
        symlink("localetc", "/dummy/etc"),
        file("/dummy/etc/unbroken", b"unbroken"),
    ]);
    r.unwrap();
    unbroken(&s);
}

#[test]
fn containerd_symlink_multiple_relative() {
    let (s, r) = run(&[
        dir("etc"),
        dir("dummy"),
        symlink("/dummy/etc", "/etc"),
        symlink("localetc", "./dummy/etc"),
        file("/dummy/etc/unbroken", b"unbroken"),
    ]);
    r.unwrap();
    unbroken(&s);
}

#[test]
fn containerd_symlink_empty_file() {
    let (s, r) = run(&[
        dir("etc"),
        file("etc/emptied", b"notempty"),
        symlink("localetc", "/etc"),
        file("/localetc/emptied", b""),
    ]);
    r.unwrap();
    assert_eq!(read(&s.at("etc/emptied")), b"");
}

fn etc_passwd() -> Vec<E> {
    vec![dir("etc").mode(0o770), file("/etc/passwd", b"inside")]
}

fn with_etc(more: &[E]) -> Vec<E> {
    let mut v = etc_passwd();
    v.extend_from_slice(more);
    v
}

#[test]
fn containerd_hardlink_relative() {
    let (s, r) = run(&with_etc(&[
        dir("breakouts"),
        symlink("breakouts/d1", "../../etc"),
        hardlink("breakouts/mypasswd", "/breakouts/d1/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("breakouts/mypasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_hardlink_down_and_out() {
    let (s, r) = run(&with_etc(&[
        dir("breakouts"),
        dir("downandout"),
        symlink("breakouts/d1", "../downandout/../../etc"),
        hardlink("breakouts/mypasswd", "/breakouts/d1/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("breakouts/mypasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_hardlink_absolute() {
    let (s, r) = run(&with_etc(&[
        symlink("localetc", "/etc"),
        hardlink("localpasswd", "/localetc/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_hardlink_relative_long() {
    let (s, r) = run(&with_etc(&[
        symlink("localetc", "../../../../../../../etc"),
        hardlink("localpasswd", "/localetc/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_hardlink_relative_up_and_out() {
    // "upandout" does not exist, so "upandout/.." does not resolve (the
    // kernel does not resolve `..` lexically): refused, not escaped.
    refused(
        &with_etc(&[
            symlink("localetc", "upandout/../../../etc"),
            hardlink("localpasswd", "/localetc/passwd"),
        ]),
        "localpasswd",
    );
    // With the directory present it is contained.
    let (s, r) = run(&with_etc(&[
        dir("upandout"),
        symlink("localetc", "upandout/../../../etc"),
        hardlink("localpasswd", "/localetc/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_hardlink_direct_relative() {
    refused(
        &with_etc(&[hardlink("localpasswd", "../../../../../etc/passwd")]),
        "localpasswd",
    );
}

#[test]
fn containerd_hardlink_direct_absolute() {
    let (s, r) = run(&with_etc(&[hardlink("localpasswd", "/etc/passwd")]));
    r.unwrap();
    assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_symlink_parent_directory() {
    refused(
        &with_etc(&[
            symlink("..", "/etc/"),
            hardlink("localpasswd", "/etc/passwd"),
        ]),
        "..",
    );
}

#[test]
fn containerd_symlink_empty_filename() {
    let (s, r) = run(&with_etc(&[
        symlink("", "/etc/"),
        hardlink("localpasswd", "/etc/passwd"),
    ]));
    r.unwrap();
    assert!(!is_symlink(&s.layer()));
    assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_symlink_parent_relative() {
    refused(
        &with_etc(&[
            symlink("localetc/sub/..", "/etc/"),
            hardlink("/localetc/localpasswd", "/etc/passwd"),
        ]),
        "localetc/sub/..",
    );
}

#[test]
fn containerd_symlink_slash_ended() {
    let (s, r) = run(&with_etc(&[
        dir("localetc/").mode(0o770),
        hardlink("/localetc/localpasswd", "/etc/passwd"),
    ]));
    r.unwrap();
    assert_eq!(ino(&s.at("localetc/localpasswd")), ino(&s.at("etc/passwd")));
}

/// A scene whose layer dir already holds /etc/passwd (containerd applies
/// these before the tar).
fn prepared(f: impl FnOnce(&Scene)) -> Scene {
    let s = Scene::new();
    std::fs::create_dir(s.at("etc")).unwrap();
    std::fs::write(s.at("etc/passwd"), b"inside").unwrap();
    f(&s);
    s
}

#[test]
fn containerd_symlink_override_directory() {
    for target in ["/etc", "../../etc"] {
        let s = prepared(|s| std::fs::create_dir(s.at("localetc")).unwrap());
        s.unpack(&[
            symlink("localetc", target),
            hardlink("/localetc/localpasswd", "/etc/passwd"),
        ])
        .unwrap();
        s.assert_outside_untouched();
        assert!(is_symlink(&s.at("localetc")));
        assert_eq!(ino(&s.at("etc/localpasswd")), ino(&s.at("etc/passwd")));
    }
}

#[test]
fn containerd_directory_override_symlink() {
    let s = prepared(|s| std::os::unix::fs::symlink("/etc", s.at("localetc")).unwrap());
    s.unpack(&[
        dir("/localetc/"),
        hardlink("/localetc/localpasswd", "/etc/passwd"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    assert!(s.at("localetc").is_dir() && !is_symlink(&s.at("localetc")));
    assert_eq!(ino(&s.at("localetc/localpasswd")), ino(&s.at("etc/passwd")));
}

#[test]
fn containerd_directory_override_symlink_and_hardlink() {
    let s = prepared(|s| {
        std::os::unix::fs::symlink("etc", s.at("localetc")).unwrap();
        std::fs::hard_link(s.at("etc/passwd"), s.at("etc/localpasswd")).unwrap();
    });
    s.unpack(&[
        dir("/localetc/"),
        file("/localetc/localpasswd", b"different"),
    ])
    .unwrap();
    s.assert_outside_untouched();
    assert_ne!(ino(&s.at("localetc/localpasswd")), ino(&s.at("etc/passwd")));
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
}

#[test]
fn containerd_whiteout_root_parent_root_and_current_directory() {
    for (name, shown) in [
        (".wh...", ".wh..."),
        ("etc/.wh...", "etc/.wh..."),
        (".wh..", ".wh.."),
        ("etc/.wh..", "etc/.wh.."),
    ] {
        let s = prepared(|_| {});
        let e = s.unpack(&[file(name, b"")]).unwrap_err();
        s.assert_outside_untouched();
        assert!(e.to_string().contains(shown), "{e}");
        assert_eq!(read(&s.at("etc/passwd")), b"inside");
    }
}

#[test]
fn containerd_whiteout_symlink() {
    let s = prepared(|s| std::os::unix::fs::symlink("/etc", s.at("localetc")).unwrap());
    s.unpack(&[file(".wh.localetc", b"")]).unwrap();
    s.assert_outside_untouched();
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
    assert!(std::fs::symlink_metadata(s.at("localetc"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn containerd_whiteout_symlink_path() {
    let s = prepared(|s| {
        std::fs::write(s.at("etc/whitedout"), b"ahhhh whiteout").unwrap();
        std::os::unix::fs::symlink("/etc", s.at("localetc")).unwrap();
    });
    s.unpack(&[file("localetc/.wh.whitedout", b"")]).unwrap();
    s.assert_outside_untouched();
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
    assert!(std::fs::symlink_metadata(s.at("etc/whitedout"))
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn containerd_whiteout_directory_name() {
    let s = prepared(|_| {});
    s.unpack(&[file(".wh.etc/somefile", b"non-empty")]).unwrap();
    s.assert_outside_untouched();
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
    assert_eq!(read(&s.at(".wh.etc/somefile")), b"non-empty");
}

#[test]
fn containerd_whiteout_dead_symlink_parent() {
    let s = prepared(|s| std::os::unix::fs::symlink("/dne", s.at("localetc")).unwrap());
    let e = s.unpack(&[file("localetc/.wh.etc", b"")]).unwrap_err();
    s.assert_outside_untouched();
    assert!(e.to_string().contains("localetc/.wh.etc"), "{e}");
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
}

#[test]
fn containerd_whiteout_relative_path() {
    let s = prepared(|s| std::os::unix::fs::symlink("/dne", s.at("localetc")).unwrap());
    let e = s.unpack(&[file("dne/../.wh.etc", b"")]).unwrap_err();
    s.assert_outside_untouched();
    assert!(e.to_string().contains("dne/../.wh.etc"), "{e}");
    assert_eq!(read(&s.at("etc/passwd")), b"inside");
}

#[test]
fn containerd_symlink_override_path() {
    let (s, r) = run(&[
        dir("foo"),
        dir("foo/tmp"),
        file("foo/tmp/breakout", &[0, 1, 2]),
        symlink("foo", "/"),
        file("foo/tmp/breakout", &[3, 4, 5]),
        dir("foo"),
        dir("foo/tmp"),
        file("foo/tmp/breakout", &[6, 7, 8]),
    ]);
    r.unwrap();
    // foo -> / made foo/tmp the layer's /tmp.
    assert_eq!(read(&s.at("tmp/breakout")), [3, 4, 5]);
    assert_eq!(read(&s.at("foo/tmp/breakout")), [6, 7, 8]);
}

#[test]
fn containerd_hardlink_symlink_before_create_target() {
    let (s, r) = run(&[
        dir("etc").mode(0o770),
        symlink("localpasswd", "/etc/passwd"),
        hardlink("localpasswd-dup", "localpasswd"),
        file("/etc/passwd", b"after"),
    ]);
    r.unwrap();
    assert!(is_symlink(&s.at("localpasswd-dup")));
    assert_eq!(ino(&s.at("localpasswd-dup")), ino(&s.at("localpasswd")));
}

#[test]
fn containerd_hardlink_symlink_relative_and_absolute() {
    for target in ["../../../../../etc/passwd", "/etc/passwd"] {
        let (s, r) = run(&with_etc(&[
            symlink("passwdlink", target),
            hardlink("localpasswd", "/passwdlink"),
        ]));
        r.unwrap();
        assert!(is_symlink(&s.at("localpasswd")));
        assert_eq!(ino(&s.at("localpasswd")), ino(&s.at("passwdlink")));
    }
}

#[test]
fn containerd_hardlink_symlink_chmod() {
    // A symlink (by absolute name) to a host file of mode 0400, then a
    // hardlink to it: nothing may chmod the host file.
    let s = Scene::new();
    let perm400 = s.abs("outside/perm400");
    let ep = s.abs("also-exists-outside-root");
    s.unpack(&[
        symlink(&ep, &perm400).mode(0o777),
        hardlink("sketchylink", &ep).mode(0o777),
    ])
    .unwrap();
    s.assert_outside_untouched();
    assert!(is_symlink(&s.at("sketchylink")));
}
