//! Volumes and mounts (root): data outlives containers, read-only mounts
//! refuse writes, copy-up, tmpfs limits, --volumes-from, anonymous volumes
//! and their removal, export/import, hostile archives, :U.
mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

fn volumes(b: &Berth) -> Vec<String> {
    b.ok(&["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// An image whose config declares `VOLUME /data`.
fn image_with_volume(b: &Berth) {
    let out = b.run_stdin(
        &[
            "import",
            "-c",
            "VOLUME /data",
            "-c",
            "CMD [\"sh\"]",
            "-",
            "bbvol",
        ],
        &busybox_rootfs_tar_with(&[("data/seed", 0o644, b"from the image\n")]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn named_volumes_persist_and_read_only_mounts_refuse_writes() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "store:/v",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /v/f",
    ]);
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "store:/v", IMAGE, "cat", "/v/f"]),
        "kept\n"
    );
    assert_eq!(volumes(&b), ["store"]);
    let insp = b.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Mountpoint}} {{.Driver}}",
        "store",
    ]);
    let mountpoint = insp.split_whitespace().next().unwrap().to_string();
    assert!(insp.ends_with(" local\n"), "{insp}");
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(),
        "kept\n"
    );

    // :ro and --mount readonly: writes fail with EROFS inside.
    for args in [
        &["-v", "store:/v:ro"][..],
        &["--mount", "source=store,target=/v,readonly"][..],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[IMAGE, "sh", "-c", "cat /v/f; echo x > /v/g"]);
        let out = b.run(&a);
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(stdout(&out), "kept\n");
        assert!(
            stderr(&out).contains("Read-only file system"),
            "{}",
            stderr(&out)
        );
    }
    assert!(!std::path::Path::new(&format!("{mountpoint}/g")).exists());

    // A volume in use cannot be removed; once unused it can.
    b.ok(&["create", "--name", "holder", "-v", "store:/v", IMAGE]);
    let out = b.run(&["volume", "rm", "store"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("volume is in use"),
        "{}",
        stderr(&out)
    );
    assert!(std::path::Path::new(&mountpoint).exists());
    b.ok(&["rm", "holder"]);
    assert_eq!(b.ok(&["volume", "rm", "store"]), "store\n");
    assert!(!std::path::Path::new(&mountpoint).exists());
    assert!(volumes(&b).is_empty());
    let out = b.run(&["volume", "rm", "store"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No such volume: store"),
        "{}",
        stderr(&out)
    );
    b.ok(&["volume", "rm", "-f", "store"]);
    assert_census_clean(&b);
}

#[test]
fn copy_up_fills_an_empty_volume_with_the_images_content_and_owner() {
    let b = Berth::new();
    b.ok(&["volume", "create", "etcvol"]);
    // The image's /home/app is owned by 1000 and empty: the volume takes
    // its owner and mode (a postgres data dir).
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "-v",
        "home:/home/app",
        IMAGE,
        "sh",
        "-c",
        "grep -c app /etc/passwd; stat -c '%u %a' /home/app",
    ]);
    assert_eq!(out, "1\n1000 755\n");
    // Filled once: later content is the volume's, not the image's.
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        IMAGE,
        "rm",
        "/etc/group",
    ]);
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        IMAGE,
        "cat",
        "/etc/group",
    ]);
    assert_ne!(code(&out), 0, "the volume is not empty: no new copy");
    // nocopy leaves a new volume empty.
    let out = b.ok(&["run", "--rm", "-v", "bare:/etc:nocopy", IMAGE, "ls", "/etc"]);
    assert!(!out.contains("passwd"), "{out}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=bare2,dst=/etc,volume-nocopy",
        IMAGE,
        "ls",
        "/etc",
    ]);
    assert!(!out.contains("passwd"), "{out}");
}

#[test]
fn tmpfs_mounts_enforce_their_size() {
    let b = Berth::new();
    for args in [
        &["--tmpfs", "/t:size=1m"][..],
        &[
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777",
        ][..],
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[
            IMAGE,
            "sh",
            "-c",
            "dd if=/dev/zero of=/t/big bs=1k count=2048 2>/dev/null; echo rc=$?; du -k /t/big | cut -f1",
        ]);
        let out = b.ok(&a);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("rc=1"), "{args:?}: {out}");
        let kb: u64 = lines.next().unwrap().trim().parse().unwrap();
        assert!(kb <= 1024, "{args:?}: {kb} KiB written into a 1 MiB tmpfs");
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,target=/t,tmpfs-mode=1770",
        IMAGE,
        "stat",
        "-c",
        "%a",
        "/t",
    ]);
    assert_eq!(out, "1770\n");
}

#[test]
fn volumes_from_shares_a_containers_volumes() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/s",
        "-v",
        "/anon",
        IMAGE,
        "sh",
        "-c",
        "echo one > /s/f; echo two > /anon/f",
    ]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            IMAGE,
            "sh",
            "-c",
            "cat /s/f /anon/f; echo three >> /s/f"
        ]),
        "one\ntwo\n"
    );
    let out = b.run(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        IMAGE,
        "sh",
        "-c",
        "cat /s/f; touch /anon/x",
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(stdout(&out), "one\nthree\n");
    assert!(stderr(&out).contains("Read-only"));
    let out = b.run(&["run", "--rm", "--volumes-from", "nosuch", IMAGE, "true"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_prune() {
    let b = Berth::new();
    image_with_volume(&b);
    // The image's VOLUME becomes an anonymous volume filled from the image.
    let out = b.ok(&["run", "--name", "keep", "bbvol", "cat", "/data/seed"]);
    assert_eq!(out, "from the image\n");
    let anon = volumes(&b);
    assert_eq!(anon.len(), 1);
    assert_eq!(anon[0].len(), 64);
    let mounts = b.ok(&["inspect", "-f", "{{json .Mounts}}", "keep"]);
    assert!(
        mounts.contains(&anon[0]) && mounts.contains("\"/data\""),
        "{mounts}"
    );
    // --rm takes its own anonymous volumes along (named ones stay).
    b.ok(&[
        "run", "--rm", "-v", "/scratch", "-v", "named:/n", "bbvol", "true",
    ]);
    let mut now = volumes(&b);
    now.sort();
    let mut want = vec![anon[0].clone(), "named".to_string()];
    want.sort();
    assert_eq!(now, want);
    // rm keeps them, rm -v removes them.
    b.ok(&["create", "--name", "second", "bbvol"]);
    assert_eq!(volumes(&b).len(), 3);
    b.ok(&["rm", "-v", "second"]);
    assert_eq!(volumes(&b).len(), 2);
    b.ok(&["rm", "keep"]);
    assert_eq!(volumes(&b).len(), 2, "plain rm keeps the anonymous volume");
    let dangling = b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 2);
    // prune: unused anonymous volumes only; -a: all unused ones, never
    // one in use.
    b.ok(&["create", "--name", "user", "-v", "inuse:/u", IMAGE]);
    let out = b.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon[0]) && !out.contains("named"), "{out}");
    let out = b.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("named") && !out.contains("inuse"), "{out}");
    assert_eq!(volumes(&b), ["inuse"]);
    assert_census_clean(&b);
}

#[test]
fn volume_export_import_round_trip() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "src:/v",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /v/d/e && echo hi > /v/d/e/f && ln -s d/e/f /v/link && ln /v/d/e/f /v/hard \
         && chmod 640 /v/d/e/f && chown 1000:1000 /v/d && mkfifo /v/fifo",
    ]);
    let tar_path = b.path().join("v.tar");
    b.ok(&["volume", "export", "-o", tar_path.to_str().unwrap(), "src"]);
    let piped = b.cmd().args(["volume", "export", "src"]).output().unwrap();
    assert!(piped.status.success());
    assert_eq!(piped.stdout, std::fs::read(&tar_path).unwrap());
    b.ok(&["volume", "import", "copy", tar_path.to_str().unwrap()]);
    let out = b.ok(&[
        "run", "--rm", "-v", "copy:/v", IMAGE, "sh", "-c",
        "cat /v/link; stat -c '%a %u' /v/d/e/f /v/d; stat -c %h /v/hard; test -p /v/fifo && echo fifo",
    ]);
    assert_eq!(out, "hi\n640 0\n755 1000\n2\nfifo\n");
    // From stdin, into an existing volume: merged.
    let data = std::fs::read(&tar_path).unwrap();
    b.ok(&["volume", "create", "other"]);
    let out = b.run_stdin(&["volume", "import", "other", "-"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "other:/v", IMAGE, "cat", "/v/d/e/f"]),
        "hi\n"
    );
}

/// A tar entry with a raw name (the tar crate refuses `..` in names).
fn raw_entry(name: &[u8], kind: tar::EntryType, link: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn hostile_volume_imports_stay_inside_the_volume() {
    let b = Berth::new();
    let outside = b.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    // A symlink to a host dir, then a file written through it.
    let mut t = raw_entry(
        b"esc",
        tar::EntryType::Symlink,
        Some(outside.to_str().unwrap().as_bytes()),
        b"",
    );
    t.extend(raw_entry(b"esc/pwned", tar::EntryType::Regular, None, b"x"));
    t.extend(vec![0; 1024]);
    let out = b.run_stdin(&["volume", "import", "v1", "-"], &t);
    let _ = out;
    assert!(!outside.join("pwned").exists(), "wrote through a symlink");
    // `..` in a name is refused.
    let mut t = raw_entry(b"../../escaped", tar::EntryType::Regular, None, b"x");
    t.extend(vec![0; 1024]);
    let out = b.run_stdin(&["volume", "import", "v2", "-"], &t);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("unsafe"), "{}", stderr(&out));
    assert!(!b.root.join("volumes/escaped").exists());
    assert!(!b.root.join("escaped").exists());
    // Device nodes are not created.
    let mut t = raw_entry(b"sda", tar::EntryType::Block, None, b"");
    t.extend(vec![0; 1024]);
    b.run_stdin(&["volume", "import", "v3", "-"], &t);
    let mp = b.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "v3"]);
    assert!(!std::path::Path::new(mp.trim()).join("sda").exists());
}

#[test]
fn binds_chown_driver_options_and_bad_input() {
    let b = Berth::new();
    // -v creates a missing host dir; --mount refuses one (Docker).
    let host = b.path().join("made/by/v");
    let spec = format!("{}:/h", host.display());
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        IMAGE,
        "sh",
        "-c",
        "echo via-bind > /h/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("f")).unwrap(),
        "via-bind\n"
    );
    let missing = format!("type=bind,source={}/nope,target=/h", b.path().display());
    let out = b.run(&["run", "--rm", "--mount", &missing, IMAGE, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("bind source path does not exist"));

    // :U gives the volume to the container's user.
    let out = b.ok(&[
        "run",
        "--rm",
        "-u",
        "1000:1000",
        "-v",
        "owned:/o:U",
        IMAGE,
        "sh",
        "-c",
        "touch /o/mine && stat -c '%u:%g' /o /o/mine",
    ]);
    assert_eq!(out, "1000:1000\n1000:1000\n");

    // A tmpfs volume: shared by containers while it exists, unmounted
    // with it.
    b.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/t",
        IMAGE,
        "sh",
        "-c",
        "echo in-tmpfs > /t/f",
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/t",
        IMAGE,
        "sh",
        "-c",
        "cat /t/f; df -k /t | tail -1",
    ]);
    assert!(out.starts_with("in-tmpfs\ntmpfs"), "{out}");
    let mp = b.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "tv"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(mounts.contains(mp.trim()));
    b.ok(&["volume", "rm", "tv"]);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mp.trim()), "the tmpfs stayed mounted");

    // A bind-type volume: the host dir is shared, and survives volume rm.
    let src = b.path().join("bound");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("h"), "host\n").unwrap();
    let dev = format!("device={}", src.display());
    b.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "bv",
    ]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-v",
            "bv:/b",
            IMAGE,
            "sh",
            "-c",
            "cat /b/h; echo c > /b/c"
        ]),
        "host\n"
    );
    b.ok(&["volume", "rm", "bv"]);
    assert_eq!(std::fs::read_to_string(src.join("h")).unwrap(), "host\n");
    assert_eq!(std::fs::read_to_string(src.join("c")).unwrap(), "c\n");

    // Bad input: clear messages, exit 125, nothing created.
    for (args, msg) in [
        (&["-v", "bad name:/x"][..], "invalid characters"),
        (&["-v", "rel/path:/x"][..], "absolute path"),
        (&["-v", "v:/x", "-v", "w:/x"][..], "duplicate mount point"),
        (&["-v", "v:relative"][..], "absolute path"),
        (&["-v", "v:/x:rx"][..], "invalid mode"),
        (
            &["--mount", "type=tmpfs,source=x,target=/x"][..],
            "no source",
        ),
        (&["--mount", "type=volume,src=v"][..], "target is required"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.push(IMAGE);
        let out = b.run(&a);
        assert_eq!(code(&out), 125, "{args:?}");
        assert!(stderr(&out).contains(msg), "{args:?}: {}", stderr(&out));
    }
    assert!(b.ok(&["ps", "-aq"]).is_empty());
    let out = b.run(&["volume", "create", "-o", "type=tmpfs", "x"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("device"));
    let out = b.run(&["volume", "create", "-d", "nfs", "x"]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "berth: create x: error looking up volume plugin nfs: plugin \"nfs\" not found\n"
    );
    assert!(volumes(&b).iter().all(|v| v != "x"));
    let meta = std::fs::metadata(b.root.join("volumes/owned/_data")).unwrap();
    assert_eq!(meta.uid(), 1000);
    assert_census_clean(&b);
}

#[test]
fn concurrent_runs_fill_a_new_volume_once() {
    let b = Berth::new();
    let children: Vec<_> = (0..6)
        .map(|_| {
            b.cmd()
                .args([
                    "run",
                    "--rm",
                    "-v",
                    "together:/etc",
                    IMAGE,
                    "cat",
                    "/etc/passwd",
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("app:x:1000"));
    }
    assert_eq!(volumes(&b), ["together"]);
}

#[test]
fn volume_subpaths_mount_a_directory_of_the_volume_and_never_leave_it() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "sub:/v",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /v/app/conf && echo inside > /v/app/conf/f && ln -s / /v/escape && ln -s ../.. /v/app/up",
    ]);
    let m = |sub: &str| format!("type=volume,src=sub,dst=/m,volume-subpath={sub}");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--mount",
            &m("app/conf"),
            IMAGE,
            "cat",
            "/m/f"
        ])
        .trim(),
        "inside"
    );
    // Writes land in the volume's directory; no copy-up into a subpath.
    b.ok(&[
        "run",
        "--rm",
        "--mount",
        &m("app"),
        IMAGE,
        "touch",
        "/m/new",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "sub:/v",
        IMAGE,
        "test",
        "-f",
        "/v/app/new",
    ]);
    let id = b.ok(&["create", "--mount", &m("app"), IMAGE]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{range .HostConfig.Mounts}}{{.VolumeOptions.Subpath}}{{end}}",
            id.trim()
        ])
        .trim(),
        "app"
    );
    b.ok(&["rm", id.trim()]);
    // Symlinks in the volume resolve inside it: `escape` is the volume's
    // root, `escape/etc` does not exist there (the host's /etc is never
    // reached), `app/up` climbs no higher than the root.
    let o = b.run(&["run", "--rm", "--mount", &m("escape/etc"), IMAGE, "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("escape/etc"), "{}", stderr(&o));
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--mount",
            &m("app/up/escape/app/conf"),
            IMAGE,
            "cat",
            "/m/f"
        ])
        .trim(),
        "inside"
    );
    // Missing, absolute and climbing subpaths are refused.
    for bad in ["nosuch", "/etc", "../x", "app/../.."] {
        let o = b.run(&["run", "--rm", "--mount", &m(bad), IMAGE, "true"]);
        assert_eq!(code(&o), 125, "{bad}: {}", stderr(&o));
    }
    // A `--rm` container that could not start is gone.
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "");
    b.ok(&["volume", "rm", "sub"]);
}
