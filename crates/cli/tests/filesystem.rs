//! The container filesystem from the host (root): cp both ways (running,
//! stopped, through volumes, tar streams) and its symlink-swap safety,
//! diff, commit, export/import, prune and df.
mod common;

use std::path::Path;

use common::*;

#[test]
fn cp_both_ways_on_running_and_stopped_containers() {
    let b = Berth::new();
    let h = b.path().join("host");
    std::fs::create_dir_all(h.join("tree/sub")).unwrap();
    std::fs::write(h.join("tree/sub/f"), "deep\n").unwrap();
    std::fs::write(h.join("file"), "top\n").unwrap();
    std::os::unix::fs::symlink("sub/f", h.join("tree/link")).unwrap();
    b.ok(&[
        "run", "-d", "--name", "live", "-v", "lv:/vol", IMAGE, "sleep", "300",
    ]);
    b.ok(&["create", "--name", "cold", "-v", "cv:/vol", IMAGE]);
    let hs = |p: &str| h.join(p).display().to_string();
    for c in ["live", "cold"] {
        // Host to container: a tree into an existing dir, a file into a
        // volume, a file over an existing dir (lands inside it).
        b.ok(&["cp", &hs("tree"), &format!("{c}:/tmp/")]);
        b.ok(&["cp", &hs("file"), &format!("{c}:/vol/")]);
        b.ok(&["cp", &hs("file"), &format!("{c}:/etc")]);
        b.ok(&["cp", &hs("file"), &format!("{c}:/renamed")]);
        // Container to host.
        let out = h.join(format!("out-{c}"));
        b.ok(&["cp", &format!("{c}:/tmp/tree"), out.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(out.join("sub/f")).unwrap(),
            "deep\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("link")).unwrap(),
            Path::new("sub/f")
        );
        let vf = h.join(format!("vol-{c}"));
        b.ok(&["cp", &format!("{c}:/vol/file"), vf.to_str().unwrap()]);
        assert_eq!(std::fs::read_to_string(&vf).unwrap(), "top\n");
        // -L follows the symlink; without it the link itself is copied.
        let lf = h.join(format!("link-{c}"));
        b.ok(&[
            "cp",
            "-L",
            &format!("{c}:/tmp/tree/link"),
            lf.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&lf).unwrap(), "deep\n");
        // A directory onto an existing file is refused; a missing source
        // too.
        let out = b.run(&["cp", &format!("{c}:/tmp/tree"), &hs("file")]);
        assert_ne!(code(&out), 0);
        let out = b.run(&["cp", &format!("{c}:/nonexistent"), &hs("x")]);
        assert_ne!(code(&out), 0);
        assert_eq!(
            stderr(&out),
            format!("berth: No such container:path: {c}:/nonexistent\n")
        );
        // Tar streams: out to stdout, in from stdin.
        let tar = b
            .cmd()
            .args(["cp", &format!("{c}:/tmp/tree"), "-"])
            .output()
            .unwrap();
        assert!(tar.status.success());
        let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"tree/sub/f".to_string()), "{names:?}");
        let out = b.run_stdin(&["cp", "-", &format!("{c}:/opt")], &tar.stdout);
        assert_ne!(code(&out), 0, "a tar stream needs an existing directory");
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        let out = b.run_stdin(&["cp", "-", &format!("{c}:/root")], &tar.stdout);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let seen = b.ok(&[
        "exec",
        "live",
        "sh",
        "-c",
        "cat /tmp/tree/sub/f /vol/file /etc/file /renamed /root/tree/sub/f",
    ]);
    assert_eq!(seen, "deep\ntop\ntop\ntop\ndeep\n");
    // The stopped container sees what was copied in when it starts; the
    // volume got it too.
    b.ok(&["rm", "-f", "live"]);
    let seen = b.ok(&["start", "-a", "cold"]);
    let _ = seen;
    let seen = b.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "cold",
        IMAGE,
        "cat",
        "/vol/file",
    ]);
    assert_eq!(seen, "top\n");
    b.ok(&["commit", "cold", "cold:img"]);
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "cold:img",
            "cat",
            "/tmp/tree/sub/f",
            "/renamed"
        ]),
        "deep\ntop\n"
    );
    // Files copied in are root's unless -a.
    let owned = h.join("owned");
    std::fs::write(&owned, "o").unwrap();
    std::os::unix::fs::chown(&owned, Some(1234), Some(1234)).unwrap();
    b.ok(&["run", "-d", "--name", "own", IMAGE, "sleep", "300"]);
    b.ok(&["cp", owned.to_str().unwrap(), "own:/plain"]);
    b.ok(&["cp", "-a", owned.to_str().unwrap(), "own:/kept"]);
    assert_eq!(
        b.ok(&["exec", "own", "stat", "-c", "%u", "/plain", "/kept"]),
        "0\n1234\n"
    );
    // What is not there, in docker's CLI's words (exit 1), both ways.
    let dest = h.join("x");
    let dest = dest.to_str().unwrap();
    for (args, end) in [
        (["nosuch:/f", dest], "nosuch:/f"),
        (["own:/nonexistent", dest], "own:/nonexistent"),
        ([owned.to_str().unwrap(), "nosuch:/f"], "nosuch:/f"),
    ] {
        let out = b.run(&[&["cp"][..], &args[..]].concat());
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(
            stderr(&out),
            format!("berth: No such container:path: {end}\n"),
            "{args:?}"
        );
    }
}

#[test]
fn cp_never_follows_a_swapped_symlink_out_of_the_container() {
    let b = Berth::new();
    // A host-only directory: the container flips /w/link between a real
    // directory and a symlink to this path, which exists on the host only.
    let secret = b.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("f"), "HOST SECRET\n").unwrap();
    let script = format!(
        "mkdir -p /w; while true; do rm -rf /w/link; mkdir /w/link; echo inside > /w/link/f; \
         rm -rf /w/link; ln -s {} /w/link; done",
        secret.display()
    );
    b.ok(&["run", "-d", "--name", "flip", IMAGE, "sh", "-c", &script]);
    let drop_file = b.path().join("dropped");
    std::fs::write(&drop_file, "from the host\n").unwrap();
    let out_dir = b.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let mut copied_out = 0;
    for i in 0..150 {
        let dest = out_dir.join(format!("f{i}"));
        let o = b.run(&["cp", "flip:/w/link/f", dest.to_str().unwrap()]);
        if o.status.success() {
            copied_out += 1;
            let got = std::fs::read_to_string(&dest).unwrap_or_default();
            assert_ne!(
                got, "HOST SECRET\n",
                "cp read the host's file through the symlink"
            );
        }
        let _ = b.run(&["cp", drop_file.to_str().unwrap(), "flip:/w/link/dropped"]);
        let names: Vec<_> = std::fs::read_dir(&secret).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "cp wrote into the host's directory");
    }
    assert!(
        copied_out > 0,
        "the race never let a copy through: the test proves nothing"
    );
    assert_eq!(
        std::fs::read_to_string(secret.join("f")).unwrap(),
        "HOST SECRET\n"
    );
}

#[test]
fn diff_commit_export_and_import() {
    let b = Berth::new();
    b.ok(&[
        "run", "--name", "ch", IMAGE, "sh", "-c",
        "echo new > /etc/added; rm /etc/group; echo more >> /etc/passwd; mkdir -p /opt/d && touch /opt/d/x",
    ]);
    let diff = b.ok(&["diff", "ch"]);
    assert_eq!(
        diff,
        "A /etc/added\nD /etc/group\nC /etc/passwd\nA /opt\nA /opt/d\nA /opt/d/x\n"
            .replace("A /etc/added", "C /etc\nA /etc/added"),
    );
    let id = b.ok(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "me",
        "-c",
        "ENV COMMITTED=yes",
        "ch",
        "changed:v1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    let out = b.run(&[
        "run",
        "--rm",
        "changed:v1",
        "sh",
        "-c",
        "cat /etc/added; tail -1 /etc/passwd; echo $COMMITTED; ls /etc/group",
    ]);
    assert_eq!(stdout(&out), "new\nmore\nyes\n");
    assert!(
        stderr(&out).contains("No such file"),
        "the deletion was not committed"
    );
    let hist = b.ok(&["history", "changed:v1"]);
    assert!(hist.contains("my change"), "{hist}");
    // The mount points and /etc files berth made are not part of it.
    let out = b.ok(&["run", "--rm", "changed:v1", "ls", "/etc"]);
    assert!(
        out.contains("hostname"),
        "the container's own is mounted: {out}"
    );
    let tar_path = b.path().join("ch.tar");
    b.ok(&["export", "-o", tar_path.to_str().unwrap(), "ch"]);
    let names: Vec<String> = tar::Archive::new(std::fs::File::open(&tar_path).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.contains(&"etc/added".to_string()));
    assert!(!names.contains(&"etc/group".to_string()));
    assert!(
        names.iter().all(|n| !n.contains(".wh.")),
        "whiteouts leaked"
    );
    let data = std::fs::read(&tar_path).unwrap();
    let out = b.run_stdin(&["import", "-", "flat:v1"], &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.run(&[
        "run",
        "--rm",
        "flat:v1",
        "sh",
        "-c",
        "cat /etc/added; ls /etc/group",
    ]);
    assert_eq!(stdout(&out), "new\n");
    assert_ne!(code(&out), 0);
    // export of a running container, to stdout.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        IMAGE,
        "sh",
        "-c",
        "echo running > /r; sleep 300",
    ]);
    for _ in 0..100 {
        if b.run(&["exec", "up", "cat", "/r"]).status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = b.cmd().args(["export", "up"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut found = false;
    for e in tar::Archive::new(&out.stdout[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("r") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            found = s == "running\n";
        }
    }
    assert!(found);
    let out = b.run(&["diff", "nosuch"]);
    assert_eq!(code(&out), 1);
}

/// Copied roots (podman's `vfs` driver): the copy walked beside the
/// image gives the diff overlay gives, a commit of it runs with the
/// changes (the deletion too), and a build's RUN steps work on copies,
/// with the cache.
#[test]
fn diff_commit_and_build_on_copied_roots() {
    let b = Berth::new();
    let vfs = |args: &[&str]| -> std::process::Output {
        b.cmd()
            .args(["--storage-driver", "vfs"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let ok = |out: std::process::Output| -> String {
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    // What the overlay test does, and an edit whose size and mtime are
    // put back (seen by content: it was touched since the copy).
    ok(vfs(&[
        "run", "--name", "ch", IMAGE, "sh", "-c",
        "echo new > /etc/added; rm /etc/group; echo more >> /etc/passwd; mkdir -p /opt/d && touch /opt/d/x; \
         printf '#!/bin/sh\necho NO\n' > /bin/not-executable && touch -r /bin/busybox /bin/not-executable",
    ]));
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "ch"])
            .trim(),
        "vfs"
    );
    assert_eq!(
        b.ok(&["diff", "ch"]),
        "C /bin\nC /bin/not-executable\nC /etc\nA /etc/added\nD /etc/group\nC /etc/passwd\nA /opt\nA /opt/d\nA /opt/d/x\n"
    );
    b.ok(&["commit", "-c", "ENV COMMITTED=yes", "ch", "changed:vfs"]);
    let out = b.run(&[
        "run",
        "--rm",
        "changed:vfs",
        "sh",
        "-c",
        "cat /etc/added; tail -1 /etc/passwd; cat /bin/not-executable; echo $COMMITTED; ls /opt/d; ls /etc/group",
    ]);
    assert_eq!(stdout(&out), "new\nmore\n#!/bin/sh\necho NO\nyes\nx\n");
    assert!(
        stderr(&out).contains("No such file"),
        "the deletion was not committed: {}",
        stderr(&out)
    );
    // A copy of the committed image, created and then run, differs from
    // it in nothing (berth's mount points and /etc files are not changes,
    // nor were they committed).
    ok(vfs(&["create", "--name", "again", "changed:vfs", "true"]));
    assert_eq!(b.ok(&["diff", "again"]), "");
    b.ok(&["start", "-a", "again"]);
    assert_eq!(b.ok(&["diff", "again"]), "");
    // A running one, paused for its commit.
    ok(vfs(&[
        "run",
        "-d",
        "--name",
        "up",
        IMAGE,
        "sh",
        "-c",
        "echo live > /live; exec sleep 300",
    ]));
    for _ in 0..100 {
        if b.run(&["exec", "up", "cat", "/live"]).status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(b.ok(&["diff", "up"]), "A /live\n");
    b.ok(&["commit", "up", "live:vfs"]);
    assert_eq!(b.ok(&["run", "--rm", "live:vfs", "cat", "/live"]), "live\n");
    b.ok(&["rm", "-f", "up"]);

    // A build whose RUN steps get copies: added, changed, deleted files,
    // a whiteout over an earlier step's dir, a dir replaced, a chown.
    let ctx = b.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\n\
             RUN echo one > /added && rm /etc/group && echo more >> /etc/passwd && mkdir -p /opt/d && touch /opt/d/x\n\
             RUN rm -r /opt/d && echo two >> /added && chown 1000:1000 /added && rm -rf /home && mkdir /home && touch /home/new\n"
        ),
    )
    .unwrap();
    let build = || {
        let out = b
            .cmd()
            .env("BERTH_STORAGE_DRIVER", "vfs")
            .args(["build", "--network", "none", "-t", "vfsbuilt:1"])
            .arg(&ctx)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let first = build();
    assert!(!first.contains("CACHED"), "{first}");
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "vfsbuilt:1"]);
    let seen = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "vfsbuilt:1",
        "sh",
        "-c",
        "cat /added; stat -c %u /added; tail -1 /etc/passwd; ls -A /opt; ls -A /home; test -e /etc/group || echo no-group",
    ]);
    assert_eq!(seen, "one\ntwo\n1000\nmore\nnew\nno-group\n");
    let second = build();
    assert_eq!(second.matches("CACHED").count(), 2, "{second}");
    assert_eq!(b.ok(&["inspect", "-f", "{{.Id}}", "vfsbuilt:1"]), id);
    b.ok(&["rm", "ch", "again"]);
}

#[test]
fn system_prune_removes_only_what_is_unused() {
    let b = Berth::new();
    let out = b.run_stdin(
        &[
            "import",
            "-c",
            "VOLUME /data",
            "-c",
            "CMD [\"sh\"]",
            "-",
            "withvol",
        ],
        &busybox_rootfs_tar(),
    );
    assert!(out.status.success());
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.251.90.0/24",
        "unused-net",
    ]);
    b.ok(&[
        "network",
        "create",
        "--subnet",
        "10.251.91.0/24",
        "used-net",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "alive",
        "--network",
        "used-net",
        "-v",
        "named:/n",
        "withvol",
        "sleep",
        "300",
    ]);
    b.ok(&["run", "--name", "dead", "withvol", "true"]);
    // A dangling image: an untagged commit.
    let dangling = b.ok(&["commit", "dead"]).trim().to_string();
    let df = b.ok(&["system", "df"]);
    assert!(
        df.contains("Local Volumes") && df.contains("Containers"),
        "{df}"
    );
    // -v: a line per image, container and volume.
    let v = b.ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "SHARED SIZE",
        "Containers space usage:",
        "alive",
        "dead",
        "Local Volumes space usage:",
        "named",
        "Build cache usage:",
    ] {
        assert!(v.contains(want), "{want}: {v}");
    }
    // The running container's line: its named volume and the image's anonymous one.
    let alive = v.lines().find(|l| l.ends_with("alive")).unwrap();
    assert!(
        alive.contains("\"sleep 300\"") && alive.contains(" 2 "),
        "{alive}"
    );
    let named = v.lines().find(|l| l.starts_with("named ")).unwrap();
    assert_eq!(named.split_whitespace().nth(1), Some("1"), "{named}");
    let vols_before = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols_before.lines().count(), 3, "{vols_before}");
    let dead_id = b
        .ok(&["inspect", "-f", "{{.Id}}", "dead"])
        .trim()
        .to_string();
    let out = b.ok(&["system", "prune", "--volumes", "-f"]);
    assert!(out.contains(&dead_id), "{out}");
    assert!(out.lines().any(|l| l == "unused-net"), "{out}");
    assert!(!out.lines().any(|l| l == "used-net"), "{out}");
    assert!(out.contains(&dangling), "{out}");
    // Really gone.
    assert!(!b.root.join("containers").join(&dead_id).exists());
    let out = b.run(&["inspect", "dead"]);
    assert_ne!(code(&out), 0);
    let nets = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|l| l == "unused-net"), "{nets}");
    assert!(nets.lines().any(|l| l == "used-net"), "{nets}");
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(
        vols.lines().count(),
        2,
        "the dead container's anonymous volume stays only if used: {vols}"
    );
    assert!(vols.contains("named"));
    for v in vols_before.lines() {
        let gone = !vols.contains(v);
        assert_eq!(gone, !b.root.join("volumes").join(v).exists());
    }
    // Nothing in use was touched.
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "alive"]),
        "true\n"
    );
    b.ok(&[
        "exec",
        "alive",
        "sh",
        "-c",
        "echo ok > /n/f && echo ok > /data/f",
    ]);
    assert!(b.ok(&["images", "-q"]).lines().count() >= 2);
    let out = b.run(&["image", "inspect", &dangling]);
    assert_ne!(code(&out), 0, "the dangling image survived");
    // container prune: stopped ones only.
    b.ok(&["create", "--name", "idle", IMAGE]);
    let out = b.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    assert_eq!(b.ok(&["ps", "-a", "--format", "{{.Names}}"]), "alive\n");
}

#[test]
fn extended_attributes_survive_commit_export_and_cp() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "--name",
        "x",
        IMAGE,
        "sh",
        "-c",
        "echo data > /tagged",
    ]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "x"]).trim().to_string();
    // Set on the container's copy (as `setfattr` inside would).
    let upper_file = b.root.join("containers").join(&id).join("upper/tagged");
    xattr::set(&upper_file, "user.berth-test", b"kept").unwrap();
    let out = b.cmd().args(["export", "x"]).output().unwrap();
    assert!(out.status.success());
    let mut found = false;
    for e in tar::Archive::new(&out.stdout[..]).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap() == Path::new("tagged") {
            for ext in e.pax_extensions().unwrap().unwrap() {
                let ext = ext.unwrap();
                if ext.key().unwrap() == "SCHILY.xattr.user.berth-test" {
                    found = ext.value_bytes() == b"kept";
                }
            }
        }
    }
    assert!(found, "export lost the xattr");
    b.ok(&["commit", "x", "tagged:v1"]);
    b.ok(&["create", "--name", "y", "tagged:v1"]);
    let dest = b.path().join("copied");
    b.ok(&["cp", "y:/tagged", dest.to_str().unwrap()]);
    assert_eq!(
        xattr::get(&dest, "user.berth-test").unwrap().as_deref(),
        Some(&b"kept"[..]),
        "commit or cp lost the xattr"
    );
}
