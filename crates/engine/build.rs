//! Builds the pod infra process (`pause/pause.c`) as a static binary that
//! `engine::pod::pause` puts into the image `localhost/berth-pause`.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=pause/pause.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let bin = out.join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg("pause/pause.c")
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build the pod infra process: {e}"));
    assert!(
        status.success(),
        "{cc} could not build pause/pause.c statically: install a C compiler and the C library's static archive (Debian: gcc, libc6-dev)"
    );
}
