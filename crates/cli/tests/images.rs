//! Image verbs through the `berth` binary (root: containers use images).
mod common;

use common::{busybox_rootfs_tar, code, stderr, stdout, Berth, IMAGE};

#[test]
fn import_with_changes_and_inspect() {
    let b = Berth::empty();
    let out = b.run_stdin(
        &[
            "import",
            "-c",
            "ENV GREETING=hi",
            "-c",
            "WORKDIR /home/app",
            "-c",
            "USER app",
            "-c",
            "LABEL tier=test",
            "-c",
            "ENTRYPOINT [\"sh\", \"-c\"]",
            "-c",
            "CMD [\"echo $GREETING from $(pwd) as $(id -un)\"]",
            "-m",
            "imported",
            "-",
            "changed:1",
        ],
        &busybox_rootfs_tar(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sha256:"));
    let run = b.ok(&["run", "--rm", "changed:1"]);
    assert_eq!(run, "hi from /home/app as app\n");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["image", "inspect", "changed:1"])).unwrap();
    assert_eq!(v[0]["Config"]["Labels"]["tier"], "test");
    assert_eq!(v[0]["RepoTags"][0], "changed:1");
    let h = b.ok(&["history", "changed:1"]);
    assert!(h.contains("imported"), "{h}");
    // As dockerd's import: no CREATED BY, the message as the comment.
    assert_eq!(
        b.ok(&[
            "history",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "changed:1"
        ]),
        "|imported\n"
    );
}

#[test]
fn images_tag_rmi_semantics() {
    let b = Berth::new();
    b.ok(&["tag", IMAGE, "second:tag"]);
    let list = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        list.contains("bb:test") && list.contains("second:tag"),
        "{list}"
    );
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    assert_eq!(
        b.ok(&[
            "images",
            "--filter",
            "reference=sec*",
            "--format",
            "{{.Repository}}"
        ])
        .trim(),
        "second"
    );
    // Untag only while another tag remains.
    assert_eq!(b.ok(&["rmi", "second:tag"]).trim(), "Untagged: second:tag");
    // In use by a container: refused without -f.
    b.ok(&["create", "--name", "user", IMAGE, "true"]);
    let out = b.run(&["rmi", IMAGE]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("user") || stderr(&out).contains("container"),
        "{}",
        stderr(&out)
    );
    b.ok(&["rm", "user"]);
    let out = b.ok(&["rmi", IMAGE]);
    assert!(
        out.contains("Untagged: bb:test") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert_eq!(b.ok(&["images", "-q"]), "");
}

#[test]
fn prune_removes_dangling_images() {
    let b = Berth::new();
    let out = b.run_stdin(
        &["import", "-c", "CMD [\"true\"]", "-"],
        &busybox_rootfs_tar(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        b.ok(&["images", "--filter", "dangling=true", "-q"])
            .lines()
            .count(),
        1
    );
    let pruned = b.ok(&["image", "prune", "-f"]);
    assert!(pruned.contains("deleted: sha256:"), "{pruned}");
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
    assert!(b.ok(&["image", "prune", "-a", "-f"]).contains("deleted"));
    assert_eq!(b.ok(&["images", "-q"]), "");
}

#[test]
fn save_and_load_round_trip_both_formats() {
    let b = Berth::new();
    b.ok(&["tag", IMAGE, "other:2"]);
    for fmt in ["docker", "oci"] {
        let file = b.path().join(format!("out-{fmt}.tar"));
        b.ok(&[
            "save",
            "--format",
            fmt,
            "-o",
            file.to_str().unwrap(),
            IMAGE,
            "other:2",
        ]);
        let c = Berth::empty();
        let out = c.ok(&["load", "-i", file.to_str().unwrap()]);
        assert!(
            out.contains("Loaded image: bb:test") && out.contains("Loaded image: other:2"),
            "{fmt}: {out}"
        );
        assert_eq!(c.ok(&["run", "--rm", "other:2", "echo", "ok"]), "ok\n");
    }
    let out = b.run_stdin(&["load"], b"this is not a tar archive at all");
    assert_eq!(code(&out), 1);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
}

#[test]
fn kill_9_during_import_leaves_no_image_and_no_leftovers() {
    use std::io::Write;
    let b = Berth::empty();
    b.ok(&["images"]); // create the store
    let tar = busybox_rootfs_tar();
    let mut child = b
        .cmd()
        .args(["import", "-", "half:1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // Wait until the import has started writing under tmp/.
    let tmp = b.root.join("tmp");
    for _ in 0..200 {
        if std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(
        std::fs::read_dir(&tmp).unwrap().count() > 0,
        "the import should have left work in progress"
    );
    assert_eq!(b.ok(&["images", "-q"]), "");
    // That command's open cleaned the dead import's leftovers.
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(b.root.join("layers")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(b.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    // And the store still works.
    let out = b.run_stdin(&["import", "-", "whole:1"], &tar);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn corrupt_archives_are_refused_cleanly() {
    let b = Berth::new();
    let file = b.path().join("good.tar");
    b.ok(&["save", "-o", file.to_str().unwrap(), IMAGE]);
    let data = std::fs::read(&file).unwrap();
    // Truncated.
    let out = b.run_stdin(&["load"], &data[..data.len() / 3]);
    assert_eq!(code(&out), 1);
    // A flipped byte inside a layer blob: digest mismatch.
    let mut bad = data.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    let c = Berth::empty();
    let out = c.run_stdin(&["load"], &bad);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert_eq!(c.ok(&["images", "-q"]), "");
    assert_eq!(std::fs::read_dir(c.root.join("tmp")).unwrap().count(), 0);
}

fn skopeo() -> &'static str {
    assert!(
        std::path::Path::new("/usr/bin/skopeo").exists(),
        "skopeo is needed to check archives against another implementation: apt-get install skopeo (scripts/deps does)"
    );
    "/usr/bin/skopeo"
}

#[test]
fn archives_interoperate_with_skopeo() {
    let b = Berth::new();
    let oci = b.path().join("ours-oci.tar");
    let docker = b.path().join("ours-docker.tar");
    b.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        oci.to_str().unwrap(),
        IMAGE,
    ]);
    b.ok(&["save", "-o", docker.to_str().unwrap(), IMAGE]);
    for src in [
        format!("oci-archive:{}", oci.display()),
        format!("docker-archive:{}", docker.display()),
    ] {
        let out = std::process::Command::new(skopeo())
            .args(["inspect", &src])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect {src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // skopeo converts ours into its own docker-archive; we load that.
    let theirs = b.path().join("theirs.tar");
    let out = std::process::Command::new(skopeo())
        .args([
            "copy",
            &format!("oci-archive:{}", oci.display()),
            &format!("docker-archive:{}:converted:1", theirs.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = Berth::empty();
    let loaded = c.ok(&["load", "-i", theirs.to_str().unwrap()]);
    assert!(loaded.contains("converted:1"), "{loaded}");
    assert_eq!(c.ok(&["run", "--rm", "converted:1", "echo", "ok"]), "ok\n");
}

#[test]
fn archives_interoperate_with_podman() {
    let podman_bin = "/usr/bin/podman";
    assert!(
        std::path::Path::new(podman_bin).exists(),
        "podman is needed to check archives against another engine: apt-get install podman (scripts/deps does)"
    );
    let b = Berth::new();
    let proot = b.path().join("podman-root");
    let prun = b.path().join("podman-run");
    let podman = |args: &[&str]| {
        let out = std::process::Command::new(podman_bin)
            .args([
                "--root",
                proot.to_str().unwrap(),
                "--runroot",
                prun.to_str().unwrap(),
                "--storage-driver",
                "vfs",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for fmt in ["docker", "oci"] {
        let file = b.path().join(format!("ours-{fmt}.tar"));
        b.ok(&["save", "--format", fmt, "-o", file.to_str().unwrap(), IMAGE]);
        let loaded = podman(&["load", "-i", file.to_str().unwrap()]);
        assert!(loaded.contains("bb:test"), "{loaded}");
    }
    for fmt in ["docker-archive", "oci-archive"] {
        let file = b.path().join(format!("theirs-{fmt}.tar"));
        podman(&[
            "save",
            "--format",
            fmt,
            "-o",
            file.to_str().unwrap(),
            "docker.io/library/bb:test",
        ]);
        let c = Berth::empty();
        let out = c.ok(&["load", "-i", file.to_str().unwrap()]);
        assert!(out.contains("bb:test"), "{fmt}: {out}");
        assert_eq!(c.ok(&["run", "--rm", "bb:test", "echo", "ok"]), "ok\n");
    }
}

#[test]
fn disk_full_is_a_clear_error_and_leaves_nothing() {
    let b = Berth::empty();
    std::fs::create_dir_all(&b.root).unwrap();
    // A 1 MiB filesystem for the state root: the 2 MB busybox cannot fit.
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "berth-test-full"])
        .arg(&b.root)
        .status()
        .unwrap();
    assert!(st.success());
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _guard = Unmount(&b.root);
    let out = b.run_stdin(&["import", "-", "big:1"], &busybox_rootfs_tar());
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("space"), "{}", stderr(&out));
    assert_eq!(b.ok(&["images", "-q"]), "");
    assert_eq!(std::fs::read_dir(b.root.join("tmp")).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(b.root.join("layers")).unwrap().count(), 0);
}

#[test]
fn bad_references_and_missing_commands_are_engine_errors() {
    let b = Berth::empty();
    let out = b.run_stdin(&["import", "-", "UPPER/Case:tag"], &busybox_rootfs_tar());
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("reference"), "{}", stderr(&out));
    let out = b.run_stdin(&["import", "-", "nocmd:1"], &busybox_rootfs_tar());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = b.run(&["run", "--rm", "nocmd:1"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no command"), "{}", stderr(&out));
    let out = b.run(&["tag", "nocmd:1", "bad::ref"]);
    assert_eq!(code(&out), 1);
}
