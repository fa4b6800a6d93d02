//! Node clients of the Docker Engine API against `berth serve` (root):
//! dockerode 4 (`clients/dockerode_scenario.js`: create, attach and
//! start, logs followed, execs with stdin, a network and a volume, a build
//! from a tar context, image list/inspect/remove, events) and
//! testcontainers-node 10 (`clients/testcontainers_scenario.js`: a
//! GenericContainer waited for by log line and port, exec'd into, its
//! mapped port fetched on 127.0.0.1, stopped). Ryuk is off (its image is
//! on Docker Hub). `scripts/deps` installs the packages
//! (`clients/node/package-lock.json`) into /opt/berth-tests/node; a
//! missing one fails the test with what to run.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use api_server::*;
use common::*;

/// The node_modules `scripts/deps` makes (`BERTH_NODE_MODULES` names
/// another), checked to hold both clients.
fn node_modules() -> PathBuf {
    let dir = std::env::var_os("BERTH_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/berth-tests/node/node_modules"));
    let check = Command::new("node")
        .args([
            "-e",
            "require('dockerode'); require('testcontainers'); \
             if (require('testcontainers/package.json').version !== '10.28.0') throw new Error('testcontainers version')",
        ])
        .env("NODE_PATH", &dir)
        .output();
    match check {
        Ok(o) if o.status.success() => dir,
        Ok(o) => panic!(
            "{} lacks dockerode 4.0.9 or testcontainers 10.28.0 ({}): run scripts/deps \
             (it runs npm ci in /opt/berth-tests/node from crates/cli/tests/clients/node)",
            dir.display(),
            stderr(&o).trim()
        ),
        Err(e) => panic!("node: {e}: run scripts/deps (it installs Debian's nodejs and npm)"),
    }
}

fn scenario(srv: &Server, script: &str, env: &[(&str, &str)]) -> Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    // The scratch files (testcontainers' lock file, dockerode's build
    // context) go with the test's directory.
    let tmp = srv.socket.with_file_name("node-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = Command::new("node");
    c.arg(dir.join(script))
        .env("TMPDIR", &tmp)
        .env("NODE_PATH", node_modules())
        .env("DOCKER_HOST", format!("unix://{}", srv.socket.display()))
        .env("IMAGE", IMAGE)
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn dockerode_drives_containers_execs_networks_volumes_builds_and_events() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let o = scenario(&srv, "dockerode_scenario.js", &[]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let steps: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("ok ")).collect();
    assert_eq!(
        steps,
        [
            "ping and version",
            "create, attach, start and wait",
            "logs and logs followed",
            "exec with output, exit code and stdin",
            "network and volume",
            "build from a tar context",
            "image list, inspect and remove",
            "getEvents with since and until",
        ],
        "{out}"
    );
    let ids: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("made "))
        .map(String::from)
        .collect();
    assert!(ids.len() >= 6, "{out}");
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "", "containers left");
    assert_eq!(
        b.ok(&["network", "ls", "-q", "--filter", "name=node-net"])
            .trim(),
        ""
    );
    assert_eq!(b.ok(&["volume", "ls", "-q"]).trim(), "");
    assert!(srv.stop().success());
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn testcontainers_node_waits_for_a_container_and_reaches_its_port() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let o = scenario(
        &srv,
        "testcontainers_scenario.js",
        &[
            ("TESTCONTAINERS_RYUK_DISABLED", "true"),
            // Where /.dockerenv exists (this kind of machine) it would
            // use the bridge's gateway: the test stays on loopback.
            ("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1"),
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("ok testcontainers "))
        .unwrap_or_else(|| panic!("{out}"));
    let id = line.split_whitespace().next().unwrap().to_string();
    assert!(out.contains("ok stopped"), "{out}");
    // stop() killed and removed it.
    assert_eq!(b.ok(&["ps", "-aq"]).trim(), "", "{id} left behind");
    assert!(srv.stop().success());
    assert_eq!(leftovers(&b, &[id]), Vec::<String>::new());
}
