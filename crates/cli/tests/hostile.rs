//! Hostile input (root): the escape classes of runc's, containerd's,
//! moby's and BuildKit's CVE history, each tried against berth.
mod common;

use common::*;

/// runc's CVE-2024-21626: a working dir of `/proc/self/fd/N` (from `-w`,
/// `exec -w` or an image's WORKDIR) must never leave the container: from a
/// host directory `..` walks the host's tree. Either the start fails or the
/// cwd is inside (a marker only the container's root has).
#[test]
#[ignore = "root: starts containers"]
fn a_working_dir_through_proc_self_fd_stays_inside() {
    let b = Berth::new();
    let marker = "../../../../../../../../inside-marker";
    let probe = format!("test -e {marker} && echo inside || echo ESCAPED");
    let o = b.run_stdin(
        &["import", "-c", "CMD [\"sh\"]", "-", "bbmark"],
        &busybox_rootfs_tar_with(&[("inside-marker", 0o644, b"")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let id = b
        .ok(&["run", "-d", "bbmark", "sleep", "300"])
        .trim()
        .to_string();
    for n in 3..24 {
        let wd = format!("/proc/self/fd/{n}");
        let runs = [
            b.run(&["run", "--rm", "-w", &wd, "bbmark", "sh", "-c", &probe]),
            b.run(&["exec", "-w", &wd, &id, "sh", "-c", &probe]),
        ];
        for o in runs {
            let out = stdout(&o);
            assert!(!out.contains("ESCAPED"), "-w {wd}: {out}{}", stderr(&o));
            assert!(
                out.contains("inside") || !o.status.success(),
                "-w {wd}: {out}{}",
                stderr(&o)
            );
        }
    }
    // An image whose WORKDIR is one.
    let o = b.run_stdin(
        &[
            "import",
            "-c",
            "WORKDIR /proc/self/fd/7",
            "-c",
            "CMD [\"sh\"]",
            "-",
            "bbwd",
        ],
        &busybox_rootfs_tar_with(&[("inside-marker", 0o644, b"")]),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = b.run(&["run", "--rm", "bbwd", "sh", "-c", &probe]);
    assert!(!stdout(&o).contains("ESCAPED"), "{}", stdout(&o));
    b.ok(&["rm", "-f", &id]);
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}
