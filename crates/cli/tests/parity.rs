//! Docker parity (issue 17): behaviours users' scripts and images hit
//! first, each checked against what Docker 20.10 does (root).
mod common;

use common::*;

/// Defect 4: everything after the image is the command, even words that
/// start with `-` (an image with `ENTRYPOINT ["node"]` run as `IMG -e code`).
#[test]
fn arguments_after_the_image_are_the_command() {
    let b = Berth::new();
    let out = b.ok(&["run", "--rm", "--entrypoint", "echo", IMAGE, "-e", "code"]);
    assert_eq!(out, "code\n");
    // Not taken as berth's own --rm, -n or --name.
    let out = b.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        IMAGE,
        "--rm",
        "--name",
        "x",
        "-n",
    ]);
    assert_eq!(out, "--rm --name x -n\n");
    // The command replaces CMD: `-e` is what runs (not found: 127).
    let out = b.run(&["run", "--rm", IMAGE, "-e", "x"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    // create keeps it as the command too.
    b.ok(&["create", "--name", "c", IMAGE, "-d", "--x"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{json .Config.Cmd}}", "c"]),
        "[\"-d\",\"--x\"]\n"
    );
    // exec: the container, then the command with its own flags.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "e",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "100",
    ]);
    assert_eq!(b.ok(&["exec", "e", "echo", "-n", "-e", "a\\tb"]), "a\tb");
    assert_eq!(
        b.ok(&["exec", "-e", "V=1", "e", "sh", "-c", "echo $V"]),
        "1\n"
    );
    // Options before the image still work, and a missing image is an error.
    assert_eq!(
        b.ok(&["run", "--rm", "-e", "A=1", IMAGE, "sh", "-c", "echo $A"]),
        "1\n"
    );
    assert_eq!(code(&b.run(&["run", "--rm"])), 125);
}
