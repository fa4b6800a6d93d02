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
    assert_eq!(code(&out), 125);
    assert_eq!(b.ok(&["images", "-q"]).lines().count(), 1);
}
