//! `berth registry serve` run as a container (`berth run … berth registry
//! serve`), as tutorials run `registry:2`: an image of the berth binary and
//! the libraries it links, a published port, and a push and pull through
//! it from the host.
mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Copy `src` into `root` at the same absolute path.
fn copy_in(root: &Path, src: &Path) {
    let dst = root.join(src.strip_prefix("/").unwrap());
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(src, &dst).unwrap();
}

/// The shared libraries `bin` loads, as `ldd` lists them (real paths).
fn libraries(bin: &Path) -> Vec<std::path::PathBuf> {
    let o = std::process::Command::new("ldd").arg(bin).output().unwrap();
    assert!(o.status.success(), "ldd {}", bin.display());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x…)".
            let path = match l.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| Path::new(path).to_path_buf())
        })
        .collect()
}

/// `GET /v2/` on `addr` answered 200.
fn answers(addr: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

#[test]
#[ignore = "root: runs a container"]
fn the_registry_runs_as_a_container() {
    let b = Berth::new();
    let ctx = b.path().join("regctx");
    let rootfs = ctx.join("rootfs");
    let bin = Path::new(env!("CARGO_BIN_EXE_berth"));
    std::fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
    std::fs::copy(bin, rootfs.join("usr/local/bin/berth")).unwrap();
    for lib in libraries(bin) {
        copy_in(&rootfs, &std::fs::canonicalize(&lib).unwrap());
        if lib != std::fs::canonicalize(&lib).unwrap() {
            copy_in(&rootfs, &lib);
        }
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nEXPOSE 5000\nVOLUME /var/lib/registry\n\
         ENTRYPOINT [\"/usr/local/bin/berth\", \"registry\", \"serve\", \"--addr\", \"0.0.0.0:5000\", \"--root\", \"/var/lib/registry\"]\n",
    )
    .unwrap();
    b.ok(&[
        "build",
        "-q",
        "-t",
        "berth-registry:test",
        ctx.to_str().unwrap(),
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "registry",
        "-p",
        "127.0.0.1::5000",
        "berth-registry:test",
    ]);
    let addr = b.ok(&["port", "registry", "5000"]).trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let start = Instant::now();
    while !answers(&addr) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the registry in the container does not answer on {addr}: {}",
            b.ok(&["logs", "registry"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Push from the host through the published port, pull back, run.
    let image = format!("{addr}/demo/bb:1");
    b.ok(&["tag", IMAGE, &image]);
    b.ok(&["push", &image]);
    b.ok(&["rmi", &image]);
    b.ok(&["pull", &image]);
    assert_eq!(b.ok(&["run", "--rm", &image, "echo", "pulled"]), "pulled\n");
    // Its JSON access log is the container's log.
    let logs = b.ok(&["logs", "registry"]);
    let logs = logs + &stderr(&b.run(&["logs", "registry"]));
    assert!(
        logs.contains("\"method\":\"PUT\"") && logs.contains("/v2/demo/bb/manifests/1"),
        "{logs}"
    );
    b.ok(&["rm", "-f", "-v", "registry"]);
    b.ok(&["rmi", &image, "berth-registry:test"]);
    assert_census_clean(&b);
}
