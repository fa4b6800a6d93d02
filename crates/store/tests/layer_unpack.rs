//! Unpacking ordinary layers: every entry type, ownership, modes, times,
//! xattrs, long names, compression and the diff-id, whiteouts in overlayfs
//! format, devices, and later entries replacing earlier ones. Runs as root
//! (ownership, trusted.* xattrs, device nodes).
mod layer_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use layer_support::*;
use store::layer::{detect, unpack, Compression, LayerError};

fn md(p: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(p).unwrap()
}

fn mode(p: &Path) -> u32 {
    md(p).mode() & 0o7777
}

#[test]
fn a_normal_tree() {
    let (s, r) = run(&[
        dir("etc").mtime(1_500_000_000),
        file("etc/hostname", b"box\n").mode(0o644),
        dir("usr/").owner(0, 0),
        dir("usr/bin"),
        file("usr/bin/tool", b"#!/bin/sh\n")
            .mode(0o4755)
            .owner(1000, 10)
            .mtime(1_600_000_000),
        symlink("usr/bin/alias", "tool")
            .owner(1000, 10)
            .mtime(1_600_000_001),
        hardlink("usr/bin/tool2", "usr/bin/tool"),
        dir("run"),
        fifo("run/pipe").mode(0o620).owner(5, 6),
        dir("tmp").mode(0o1777),
        dir("srv").mode(0o2750).owner(33, 33),
        file("srv/data", b"x").mode(0o640).owner(33, 44),
        file("noparent/a/b", b"implicit"),
    ]);
    let u = r.unwrap();
    assert_eq!(u.entries, 13);
    assert_eq!(u.skipped, 0);
    assert_eq!(u.size, 4 + 10 + 1 + 8);

    assert_eq!(read(&s.at("etc/hostname")), b"box\n");
    // Directory times are set after their content was written.
    assert_eq!(md(&s.at("etc")).mtime(), 1_500_000_000);

    let tool = md(&s.at("usr/bin/tool"));
    assert_eq!(
        (tool.uid(), tool.gid(), tool.mode() & 0o7777, tool.mtime()),
        (1000, 10, 0o4755, 1_600_000_000)
    );
    assert_eq!(tool.nlink(), 2);
    assert_eq!(ino(&s.at("usr/bin/tool2")), tool.ino());

    let alias = md(&s.at("usr/bin/alias"));
    assert!(alias.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(s.at("usr/bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!((alias.uid(), alias.gid()), (1000, 10));
    assert_eq!(alias.mtime(), 1_600_000_001);

    let pipe = md(&s.at("run/pipe"));
    assert!(pipe.file_type().is_fifo());
    assert_eq!(
        (pipe.mode() & 0o7777, pipe.uid(), pipe.gid()),
        (0o620, 5, 6)
    );

    assert_eq!(mode(&s.at("tmp")), 0o1777);
    let srv = md(&s.at("srv"));
    assert_eq!(
        (srv.mode() & 0o7777, srv.uid(), srv.gid()),
        (0o2750, 33, 33)
    );
    // The setgid directory does not override the entry's own group.
    assert_eq!(md(&s.at("srv/data")).gid(), 44);

    // Parents no entry named are made 0755 root:root.
    for p in ["noparent", "noparent/a"] {
        let m = md(&s.at(p));
        assert!(m.is_dir());
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o755, 0, 0));
    }
    assert_eq!(read(&s.at("noparent/a/b")), b"implicit");
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    let (s, r) = run(&[
        file("all", b"").mode(0o777),
        file("none", b"").mode(0o000),
        file("suid-only", b"").mode(0o4000),
        file("sticky", b"").mode(0o1644),
        dir("open").mode(0o777),
        fifo("fifo").mode(0o666),
    ]);
    r.unwrap();
    for (p, m) in [
        ("all", 0o777),
        ("none", 0),
        ("suid-only", 0o4000),
        ("sticky", 0o1644),
        ("open", 0o777),
        ("fifo", 0o666),
    ] {
        assert_eq!(mode(&s.at(p)), m, "{p}");
    }
}

#[test]
fn directory_times_go_to_the_directory_named() {
    // x/b's time must not land on y/b once x has become a link to y.
    let (s, r) = run(&[
        dir("y").mtime(1),
        dir("y/b").mtime(9),
        dir("x").mtime(1),
        dir("x/b").mtime(5),
        symlink("x", "y"),
    ]);
    r.unwrap();
    assert_eq!(md(&s.at("y/b")).mtime(), 9);
    assert_eq!(md(&s.at("y")).mtime(), 1);
}

#[test]
fn pax_times_keep_nanoseconds() {
    let (s, r) = run(&[
        dir("d").pax("mtime", b"1600000000.25"),
        file("d/f", b"").pax("mtime", b"1600000001.123456789"),
        file("old", b"").pax("mtime", b"-100.5"),
    ]);
    r.unwrap();
    let d = md(&s.at("d"));
    assert_eq!((d.mtime(), d.mtime_nsec()), (1_600_000_000, 250_000_000));
    let f = md(&s.at("d/f"));
    assert_eq!((f.mtime(), f.mtime_nsec()), (1_600_000_001, 123_456_789));
    let o = md(&s.at("old"));
    assert_eq!((o.mtime(), o.mtime_nsec()), (-101, 500_000_000));
}

/// A valid v2 file capability: cap_net_bind_service+ep.
fn net_bind_service() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes()); // revision 2, effective
    v.extend_from_slice(&(1u32 << 10).to_le_bytes()); // permitted[0]
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable[0]
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted[1]
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable[1]
    v
}

#[test]
fn xattrs_from_pax_records() {
    let cap = net_bind_service();
    let (s, r) = run(&[
        dir("d")
            .xattr("user.comment", b"dir")
            .xattr("trusted.tag", b"t"),
        // The capability survives the chown to the entry's owner.
        file("d/ping", b"\x7fELF")
            .mode(0o755)
            .owner(1000, 1000)
            .xattr("security.capability", &cap)
            .xattr("user.mime", b"application/x-executable"),
        file("d/plain", b""),
    ]);
    r.unwrap();
    let get = |p: &str, n: &str| xattr::get(s.at(p), n).unwrap();
    assert_eq!(get("d", "user.comment").as_deref(), Some(&b"dir"[..]));
    assert_eq!(get("d", "trusted.tag").as_deref(), Some(&b"t"[..]));
    assert_eq!(get("d/ping", "security.capability"), Some(cap));
    assert_eq!(
        get("d/ping", "user.mime").as_deref(),
        Some(&b"application/x-executable"[..])
    );
    assert_eq!(md(&s.at("d/ping")).uid(), 1000);
    assert_eq!(get("d/plain", "user.mime"), None);
}

#[test]
fn long_names_gnu_and_pax() {
    let long_dir = format!("{}/", "directory-name-of-some-length".repeat(5));
    let long_file = format!("{long_dir}{}", "f".repeat(150));
    let long_target = format!("../{}", "t".repeat(200));
    for long in [Long::Pax, Long::Gnu] {
        let (s, r) = run(&[
            dir(&long_dir).long(long),
            file(&long_file, b"deep").long(long),
            symlink("sym", &long_target).long(long),
            hardlink(&format!("{long_dir}hard-{}", "h".repeat(120)), &long_file).long(long),
        ]);
        r.unwrap();
        assert_eq!(read(&s.at(&long_file)), b"deep", "{long:?}");
        assert_eq!(
            std::fs::read_link(s.at("sym")).unwrap(),
            Path::new(&long_target)
        );
        assert_eq!(
            ino(&s.at(&format!("{long_dir}hard-{}", "h".repeat(120)))),
            ino(&s.at(&long_file))
        );
    }
}

#[test]
fn deep_trees_past_the_parent_cache() {
    // Files at many depths, in an order that makes the parent cache grow,
    // shrink and jump between branches, past its depth limit.
    let deep = |n: usize, branch: &str| format!("{branch}/{}", "d/".repeat(n));
    let mut entries = Vec::new();
    for (n, b) in [
        (100, "a"),
        (5, "a"),
        (80, "b"),
        (99, "a"),
        (65, "b"),
        (64, "a"),
        (1, "b"),
    ] {
        entries.push(file(
            &format!("{}f{n}", deep(n, b)),
            n.to_string().as_bytes(),
        ));
    }
    let (s, r) = run(&entries);
    r.unwrap();
    for (n, b) in [
        (100, "a"),
        (5, "a"),
        (80, "b"),
        (99, "a"),
        (65, "b"),
        (64, "a"),
        (1, "b"),
    ] {
        assert_eq!(
            read(&s.at(&format!("{}f{n}", deep(n, b)))),
            n.to_string().as_bytes()
        );
    }
}

fn sample() -> Vec<u8> {
    tar(&[
        dir("etc"),
        file("etc/hostname", b"box\n"),
        symlink("etc/link", "hostname"),
        file("big", &vec![7u8; 300_000]),
    ])
}

#[test]
fn compressed_layers_have_the_diff_id_of_the_plain_tar() {
    let plain = sample();
    let expected = model::Digest::of(&plain);
    // gzip in two members, as some tools write (pigz, concatenated gzip).
    let mut two = gzip(&plain[..1000]);
    two.extend(gzip(&plain[1000..]));
    for (name, data) in [
        ("plain", plain.clone()),
        ("gzip", gzip(&plain)),
        ("gzip, two members", two),
        ("zstd", zstd(&plain)),
    ] {
        let s = Scene::new();
        let u = unpack(&data[..], &s.layer()).unwrap();
        assert_eq!(u.diff_id, expected, "{name}");
        assert_eq!(u.size, 4 + 300_000, "{name}");
        assert_eq!(read(&s.at("etc/hostname")), b"box\n", "{name}");
        assert_eq!(read(&s.at("big")), vec![7u8; 300_000], "{name}");
    }
    assert_eq!(detect(&gzip(b"x")), Compression::Gzip);
    assert_eq!(detect(&zstd(b"x")), Compression::Zstd);
    assert_eq!(detect(&plain), Compression::None);
}

#[test]
fn the_diff_id_covers_trailing_padding() {
    let mut padded = sample();
    padded.extend(vec![0u8; 10 * 512 + 7]);
    let s = Scene::new();
    let u = unpack(&padded[..], &s.layer()).unwrap();
    assert_eq!(u.diff_id, model::Digest::of(&padded));
    let s = Scene::new();
    let u = unpack(&zstd(&padded)[..], &s.layer()).unwrap();
    assert_eq!(u.diff_id, model::Digest::of(&padded));
}

#[test]
fn broken_streams_are_read_errors() {
    let plain = sample();
    let s = Scene::new();
    // Cut inside the big file's data.
    let e = unpack(&plain[..200_000], &s.layer()).unwrap_err();
    assert!(matches!(e, LayerError::Read { .. }), "{e}");
    let mut gz = gzip(&plain);
    let n = gz.len();
    gz[n / 2] ^= 0xff;
    gz[n / 2 + 1] ^= 0xff;
    let s = Scene::new();
    assert!(unpack(&gz[..], &s.layer()).is_err());
    let s = Scene::new();
    let e = unpack(
        &b"this is not a tar archive, but it is long enough"[..],
        &s.layer(),
    );
    assert!(e.is_err());
    // An empty stream is an empty layer.
    let s = Scene::new();
    let u = unpack(&b""[..], &s.layer()).unwrap();
    assert_eq!((u.entries, u.diff_id), (0, model::Digest::of(b"")));
    // A missing destination says which.
    let e = unpack(&plain[..], Path::new("/nonexistent/layer")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/layer"), "{e}");
}

#[test]
fn whiteouts_and_opaque_dirs_in_overlay_format() {
    let (s, r) = run(&[
        dir("d"),
        file("d/kept-before", b"1"),
        file("d/.wh.gone", b"").owner(1, 2),
        file("d/.wh..wh..opq", b""),
        file("d/kept-after", b"2"),
        // A whiteout of an entry of this same layer replaces it.
        dir("e"),
        file("e/x", b""),
        file(".wh.e", b""),
        // Whiteouts in directories the layer does not list.
        file("new/dir/.wh.old", b""),
        // aufs bookkeeping is not content.
        dir(".wh..wh.plnk"),
        file(".wh..wh.plnk/1234.5678", b"x"),
        file(".wh..wh.aufs", b""),
    ]);
    let u = r.unwrap();
    assert_eq!(u.skipped, 3);
    for p in ["d/gone", "e", "new/dir/old"] {
        let m = md(&s.at(p));
        assert!(m.file_type().is_char_device(), "{p}");
        assert_eq!(m.rdev(), 0, "{p}");
    }
    assert_eq!(
        (md(&s.at("d/gone")).uid(), md(&s.at("d/gone")).gid()),
        (1, 2)
    );
    assert_eq!(
        xattr::get(s.at("d"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    // An opaque marker hides lower layers only.
    assert_eq!(read(&s.at("d/kept-before")), b"1");
    assert_eq!(read(&s.at("d/kept-after")), b"2");
    assert!(!exists(&s.at(".wh..wh.plnk")));
    assert!(!exists(&s.at(".wh..wh.aufs")));
    assert!(!exists(&s.at("d/.wh.gone")));
    assert!(!exists(&s.at("d/.wh..wh..opq")));
}

#[test]
fn a_directory_recreated_after_its_whiteout_is_opaque() {
    let (s, r) = run(&[file(".wh.etc", b""), dir("etc"), file("etc/new", b"n")]);
    r.unwrap();
    assert!(s.at("etc").is_dir());
    assert_eq!(
        xattr::get(s.at("etc"), "trusted.overlay.opaque").unwrap(),
        Some(b"y".to_vec())
    );
    // A directory replacing anything else is not.
    let (s, r) = run(&[file("etc", b""), dir("etc")]);
    r.unwrap();
    assert_eq!(
        xattr::get(s.at("etc"), "trusted.overlay.opaque").unwrap(),
        None
    );
}

#[test]
fn device_nodes_with_allow_devices() {
    let s = Scene::new();
    let u = s
        .unpack_devices(&[
            chardev("dev/null", 1, 3).mode(0o666),
            blockdev("dev/loop0", 7, 0).mode(0o660).owner(0, 6),
        ])
        .unwrap();
    s.assert_outside_untouched();
    assert_eq!(u.skipped, 0);
    let null = md(&s.at("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777),
        (libc_makedev(1, 3), 0o666)
    );
    let lo = md(&s.at("dev/loop0"));
    assert!(lo.file_type().is_block_device());
    assert_eq!((lo.rdev(), lo.gid()), (libc_makedev(7, 0), 6));
    // The default skips and counts them.
    let (s, r) = run(&[chardev("dev/null", 1, 3), blockdev("dev/loop0", 7, 0)]);
    assert_eq!(r.unwrap().skipped, 2);
    assert!(!exists(&s.at("dev/null")));
}

/// Linux's dev_t encoding for small numbers.
fn libc_makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12)
}

#[test]
fn later_entries_replace_earlier_ones() {
    let (s, r) = run(&[
        // A file over a directory with content.
        dir("a"),
        file("a/x", b""),
        dir("a/sub"),
        file("a", b"file now"),
        // A directory over a file.
        file("b", b""),
        dir("b").mode(0o700),
        // A directory over a directory merges, taking the later metadata.
        dir("c").mode(0o755),
        file("c/one", b"1"),
        dir("c").mode(0o711).owner(7, 7),
        file("c/two", b"2"),
        // A symlink over a file, a file over a file.
        file("d", b""),
        symlink("d", "a"),
        file("e", b"old"),
        file("e", b"new").mode(0o600),
        // A hardlink over a file; the old file's other name keeps it.
        file("f", b"f"),
        file("g", b"g"),
        hardlink("keep", "g"),
        hardlink("g", "f"),
    ]);
    r.unwrap();
    assert_eq!(read(&s.at("a")), b"file now");
    assert!(md(&s.at("b")).is_dir());
    assert_eq!(mode(&s.at("b")), 0o700);
    let c = md(&s.at("c"));
    assert_eq!((c.mode() & 0o7777, c.uid()), (0o711, 7));
    assert_eq!(read(&s.at("c/one")), b"1");
    assert_eq!(read(&s.at("c/two")), b"2");
    assert!(is_symlink(&s.at("d")));
    assert_eq!(read(&s.at("e")), b"new");
    assert_eq!(mode(&s.at("e")), 0o600);
    assert_eq!(ino(&s.at("g")), ino(&s.at("f")));
    assert_eq!(read(&s.at("keep")), b"g");
}

#[test]
fn old_style_directories_with_a_trailing_slash() {
    let mut e = file("olddir/", b"");
    e.mode = 0o750;
    let (s, r) = run(&[e, file("olddir/f", b"x")]);
    r.unwrap();
    assert!(md(&s.at("olddir")).is_dir());
    assert_eq!(mode(&s.at("olddir")), 0o750);
}

#[test]
fn pax_global_headers_are_not_entries() {
    // What `git archive` writes first.
    let mut data = Vec::new();
    {
        let mut b = tar::Builder::new(&mut data);
        let rec = b"52 comment=0123456789012345678901234567890123456789\n";
        let mut h = tar::Header::new_ustar();
        h.set_path("pax_global_header").unwrap();
        h.set_entry_type(tar::EntryType::XGlobalHeader);
        h.set_size(rec.len() as u64);
        h.set_cksum();
        b.append(&h, &rec[..]).unwrap();
        b.finish().unwrap();
    }
    data.truncate(data.len() - 1024);
    data.extend(tar(&[file("f", b"x")]));
    let s = Scene::new();
    let u = unpack(&data[..], &s.layer()).unwrap();
    assert_eq!((u.entries, u.skipped), (1, 0));
    assert!(!exists(&s.at("pax_global_header")));
    assert_eq!(read(&s.at("f")), b"x");
}
