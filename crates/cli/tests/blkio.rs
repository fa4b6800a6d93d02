//! Block-I/O limits end to end (root, real containers): `run --blkio-weight
//! --blkio-weight-device --device-read-bps --device-write-bps
//! --device-read-iops --device-write-iops` in the container's cgroup (read
//! from the host and from inside) and in inspect; the docker CLI's
//! refusals; compose's `blkio_config`; the Engine API through `berth
//! serve`; a pod's `--device-read-bps/--device-write-bps` in its cgroup.
//! The disk is the host's (the one `/` is on), found at test time; no I/O
//! is measured, and the limits are high enough not to slow the containers
//! down (one held at a few bytes or operations a second takes seconds to
//! start and to die).
//!
//! Recorded from dockerd 20.10 on this machine (kernel 6.18, cgroup v1
//! hybrid: blkio has the throttle files, no weight files):
//!   docker create --blkio-weight 300 --blkio-weight-device /dev/vda:200
//!     --device-read-bps /dev/vda:1mb --device-write-bps /dev/vda:2mb
//!     --device-read-iops /dev/vda:100 --device-write-iops /dev/vda:50 …
//!   WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.
//!   WARNING: Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.
//!   HostConfig: BlkioWeight 0, BlkioWeightDevice [], BlkioDeviceReadBps
//!     [{"Path":"/dev/vda","Rate":1048576}], … WriteIOps [{"Path":"/dev/vda","Rate":50}]
//!   docker run --device-read-bps /dev/vda:1mb … cat …/blkio.throttle.read_bps_device → 254:0 1048576
//!   POST /containers/create {"HostConfig":{"BlkioWeight":300,…}} → "Warnings":["Your kernel does
//!     not support Block I/O weight or the cgroup is not mounted. Weight discarded."]
//!   docker update --blkio-weight 300 uu → stdout "uu", then the same words (no WARNING:), 0;
//!     POST /containers/uu/update {"BlkioWeight":300} → {"Warnings":[the same]}
//! and from podman 4.3.1 (`pod create --device-read-bps /dev/vda:1mb
//! --device-write-bps /dev/vda:2mb`): its cgroup's throttle files hold
//! `254:0 1048576` / `254:0 2097152`, its `pod inspect` shows neither;
//! `--device-read-bps /dev/vdb:3mb` → "Error: could not parse throttle
//! device at /dev/vdb: no such file or directory" (125).
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use api_server::*;
use common::*;
use serde_json::{json, Value};

/// The whole disk `/` is on: its node (`/dev/vda`) and `MAJ:MIN`.
fn host_disk() -> (String, String) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = info
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let disk_of = |numbers: &str| -> Option<std::path::PathBuf> {
        let sys = std::fs::canonicalize(format!("/sys/dev/block/{numbers}")).ok()?;
        // A partition's disk is the dir above it.
        Some(if sys.join("partition").exists() {
            sys.parent()?.to_path_buf()
        } else {
            sys
        })
    };
    let sys = disk_of(&root)
        .or_else(|| {
            // `/` on something without a disk (overlay, tmpfs): the first
            // real disk of the host.
            std::fs::read_dir("/sys/block")
                .ok()?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy().to_string();
                    !["loop", "ram", "zram", "nbd", "dm-", "sr"]
                        .iter()
                        .any(|x| n.starts_with(x))
                })
                .min()
        })
        .expect("no block device on this host: these tests need one");
    let name = sys.file_name().unwrap().to_string_lossy().to_string();
    let numbers = std::fs::read_to_string(sys.join("dev"))
        .unwrap()
        .trim()
        .to_string();
    let path = format!("/dev/{name}");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} ({numbers}) has no device node"
    );
    (path, numbers)
}

fn v1() -> bool {
    std::path::Path::new("/sys/fs/cgroup/blkio").is_dir()
}

/// The host's blkio hierarchy takes weights (CFQ or BFQ); dockerd
/// discards them otherwise, with its warning.
fn host_has_weight() -> bool {
    if !v1() {
        return true;
    }
    ["blkio.weight", "blkio.bfq.weight"].iter().any(|f| {
        std::path::Path::new("/sys/fs/cgroup/blkio")
            .join(f)
            .exists()
    })
}

const NO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
const NO_WEIGHT_DEVICE: &str = "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.";

/// The blkio (v1) or unified (v2) cgroup dir of a process, on the host.
fn blkio_dir_of(pid: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let (want, root) = if v1() {
        (":blkio:", "/sys/fs/cgroup/blkio")
    } else {
        ("0::", "/sys/fs/cgroup")
    };
    let rel = text
        .lines()
        .find_map(|l| Some(l[l.find(want)? + want.len()..].to_string()))
        .unwrap_or_else(|| panic!("{text}"));
    std::path::Path::new(root).join(rel.trim_start_matches('/'))
}

/// The four throttles of a cgroup dir as `(file, content)`: v1's files,
/// or v2's io.max line.
fn throttles(dir: &std::path::Path) -> Vec<(String, String)> {
    let files: &[&str] = if v1() {
        &[
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_bps_device",
            "blkio.throttle.read_iops_device",
            "blkio.throttle.write_iops_device",
        ]
    } else {
        &["io.max"]
    };
    files
        .iter()
        .map(|f| {
            let t = std::fs::read_to_string(dir.join(f))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.join(f).display()));
            (f.to_string(), t.trim().to_string())
        })
        .collect()
}

/// What [`throttles`] holds for these limits on `numbers`.
fn expected(numbers: &str, rbps: u64, wbps: u64, riops: u64, wiops: u64) -> Vec<(String, String)> {
    if v1() {
        [
            ("blkio.throttle.read_bps_device", rbps),
            ("blkio.throttle.write_bps_device", wbps),
            ("blkio.throttle.read_iops_device", riops),
            ("blkio.throttle.write_iops_device", wiops),
        ]
        .iter()
        .map(|(f, v)| (f.to_string(), format!("{numbers} {v}")))
        .collect()
    } else {
        vec![(
            "io.max".into(),
            format!("{numbers} rbps={rbps} wbps={wbps} riops={riops} wiops={wiops}"),
        )]
    }
}

fn host_config(b: &Berth, name: &str) -> Value {
    let doc: Value = serde_json::from_str(&b.ok(&["inspect", name])).unwrap();
    doc[0]["HostConfig"].clone()
}

#[test]
fn a_containers_device_limits_reach_its_cgroup_and_inspect() {
    let b = Berth::new();
    let (disk, numbers) = host_disk();
    let flag = |v: &str| format!("{disk}:{v}");
    let o = b.run(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--blkio-weight",
        "300",
        "--blkio-weight-device",
        &flag("200"),
        "--device-read-bps",
        &flag("1024mb"),
        "--device-write-bps",
        &flag("2gb"),
        "--device-read-iops",
        &flag("10000"),
        "--device-write-iops",
        &flag("5000"),
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // dockerd's warnings where the kernel has no weight files.
    let warned: Vec<String> = stderr(&o).lines().map(str::to_string).collect();
    if host_has_weight() {
        assert!(warned.is_empty(), "{warned:?}");
    } else {
        assert_eq!(
            warned,
            [
                format!("WARNING: {NO_WEIGHT}"),
                format!("WARNING: {NO_WEIGHT_DEVICE}")
            ]
        );
    }
    // The container's cgroup, seen from the host…
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "lim"]);
    let dir = blkio_dir_of(&pid);
    let want = expected(&numbers, 1 << 30, 2 << 30, 10000, 5000);
    assert_eq!(throttles(&dir), want);
    // …and from inside (its own cgroup at /sys/fs/cgroup).
    let inside_files: Vec<String> = want
        .iter()
        .map(|(f, _)| {
            if v1() {
                format!("/sys/fs/cgroup/blkio/{f}")
            } else {
                format!("/sys/fs/cgroup/{f}")
            }
        })
        .collect();
    let mut cat = vec!["exec", "lim", "cat"];
    cat.extend(inside_files.iter().map(String::as_str));
    let inside = b.ok(&cat);
    assert_eq!(
        inside.lines().collect::<Vec<_>>(),
        want.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>()
    );
    // inspect: dockerd's shape and values.
    let hc = host_config(&b, "lim");
    let dev = |rate: u64| json!([{"Path": disk, "Rate": rate}]);
    assert_eq!(hc["BlkioDeviceReadBps"], dev(1 << 30));
    assert_eq!(hc["BlkioDeviceWriteBps"], dev(2 << 30));
    assert_eq!(hc["BlkioDeviceReadIOps"], dev(10000));
    assert_eq!(hc["BlkioDeviceWriteIOps"], dev(5000));
    if host_has_weight() {
        assert_eq!(hc["BlkioWeight"], 300);
        assert_eq!(
            hc["BlkioWeightDevice"],
            json!([{"Path": disk, "Weight": 200}])
        );
    } else {
        assert_eq!(hc["BlkioWeight"], 0);
        assert_eq!(hc["BlkioWeightDevice"], json!([]));
    }
    // update --blkio-weight: live where the kernel takes weights; where
    // it does not, dockerd's warning after the name, on stdout.
    let o = b.run(&["update", "--blkio-weight", "400", "lim"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    if host_has_weight() {
        assert_eq!(stdout(&o), "lim\n");
        assert_eq!(host_config(&b, "lim")["BlkioWeight"], 400);
    } else {
        assert_eq!(stdout(&o), format!("lim\n{NO_WEIGHT}\n"));
        assert_eq!(host_config(&b, "lim")["BlkioWeight"], 0);
    }
    // A restart writes them again (the device looked up again).
    b.ok(&["restart", "-t", "0", "lim"]);
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "lim"]);
    assert_eq!(throttles(&blkio_dir_of(&pid)), want);
    // A container without them: dockerd's empty shape.
    b.ok(&["create", "--name", "plain", IMAGE, "true"]);
    let hc = host_config(&b, "plain");
    assert_eq!(hc["BlkioWeight"], 0);
    assert_eq!(hc["BlkioWeightDevice"], json!([]));
    assert_eq!(hc["BlkioDeviceReadBps"], Value::Null);
    assert_eq!(hc["BlkioDeviceWriteIOps"], Value::Null);
    b.ok(&["rm", "-f", "lim", "plain"]);
    assert_census_clean(&b);
}

#[test]
fn bad_device_limits_are_refused_in_dockers_words() {
    let b = Berth::new();
    let (disk, _) = host_disk();
    let help = "See 'berth run --help'.";
    let rate_words = "The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb";
    let d = |v: &str| format!("{disk}:{v}");
    let cases: Vec<(&str, String, String)> = vec![
        (
            "--device-read-bps",
            "bogus".into(),
            "invalid argument \"bogus\" for \"--device-read-bps\" flag: bad format: bogus".into(),
        ),
        (
            "--device-write-bps",
            "sda:1mb".into(),
            "invalid argument \"sda:1mb\" for \"--device-write-bps\" flag: bad format for device path: sda:1mb".into(),
        ),
        (
            "--device-read-bps",
            d("1x"),
            format!(
                "invalid argument \"{0}\" for \"--device-read-bps\" flag: invalid rate for device: {0}. {rate_words}",
                d("1x")
            ),
        ),
        (
            "--device-write-iops",
            d("1mb"),
            format!(
                "invalid argument \"{0}\" for \"--device-write-iops\" flag: invalid rate for device: {0}. The correct format is <device-path>:<number>. Number must be a positive integer",
                d("1mb")
            ),
        ),
        (
            "--blkio-weight-device",
            d("5"),
            format!(
                "invalid argument \"{0}\" for \"--blkio-weight-device\" flag: invalid weight for device: {0}",
                d("5")
            ),
        ),
        (
            "--blkio-weight",
            "abc".into(),
            "invalid argument \"abc\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"abc\": invalid syntax".into(),
        ),
        (
            "--blkio-weight",
            "70000".into(),
            "invalid argument \"70000\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"70000\": value out of range".into(),
        ),
        // A path that is not there, or not a disk: refused at create
        // (dockerd refuses the first at start: "stat /dev/…: no such file
        // or directory").
        (
            "--device-read-iops",
            "/dev/berth-no-such-disk:10".into(),
            "berth: invalid --device-read-iops: /dev/berth-no-such-disk: no such file or directory; name a block device of this host (lsblk lists them)".into(),
        ),
        (
            "--device-write-bps",
            "/dev/null:1mb".into(),
            "berth: invalid --device-write-bps: /dev/null is not a block device; name one of this host's (lsblk lists them)".into(),
        ),
    ];
    for (i, (flag, value, want)) in cases.iter().enumerate() {
        for verb in ["run", "create"] {
            let o = b.run(&[verb, "--name", "x", flag, value, IMAGE, "true"]);
            // The flag parser's refusals are 125 for both; the engine's
            // (the last two) 125 for run, 1 for create, as docker's CLI
            // exits on a daemon's refusal of a create.
            let want_code = if verb == "create" && i >= cases.len() - 2 {
                1
            } else {
                125
            };
            assert_eq!(code(&o), want_code, "{verb} {flag} {value}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                err.starts_with(want.as_str()),
                "{verb} {flag} {value}: {err}"
            );
            if verb == "run" {
                assert!(err.contains(help), "{err}");
            }
        }
    }
    // A weight out of range: dockerd's words where the kernel takes
    // weights; discarded with its warning first where it does not.
    let o = b.run(&[
        "create",
        "--name",
        "w",
        "--blkio-weight",
        "5",
        IMAGE,
        "true",
    ]);
    if host_has_weight() {
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("Range of blkio weight is from 10 to 1000"),
            "{}",
            stderr(&o)
        );
    } else {
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stderr(&o).trim(), format!("WARNING: {NO_WEIGHT}"));
        b.ok(&["rm", "w"]);
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn compose_blkio_config_reaches_the_container() {
    let b = Berth::new();
    let (disk, numbers) = host_disk();
    let dir = b.path().join("bk");
    std::fs::create_dir_all(&dir).unwrap();
    let inside = if v1() {
        "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device /sys/fs/cgroup/blkio/blkio.throttle.read_iops_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device"
    } else {
        "cat /sys/fs/cgroup/io.max"
    };
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            r#"
services:
  app:
    image: bb:test
    command: ["sh", "-c", "{inside}"]
    blkio_config:
      device_read_bps:
        - path: {disk}
          rate: '1gb'
      device_write_bps:
        - path: {disk}
          rate: 2147483648
      device_read_iops:
        - path: {disk}
          rate: 10000
      device_write_iops:
        - path: {disk}
          rate: 5000
"#
        ),
    )
    .unwrap();
    let (out, _) = compose_ok(&b, &dir, &["run", "--rm", "-T", "app"]);
    let want = expected(&numbers, 1 << 30, 2 << 30, 10000, 5000);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        want.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>(),
        "{out}"
    );
    // `up`: the service's container shows them in inspect.
    compose_ok(&b, &dir, &["up", "-d"]);
    let hc = host_config(&b, "bk-app-1");
    assert_eq!(
        hc["BlkioDeviceReadBps"],
        json!([{"Path": disk, "Rate": 1073741824u64}])
    );
    assert_eq!(
        hc["BlkioDeviceWriteIOps"],
        json!([{"Path": disk, "Rate": 5000}])
    );
    // A bad one is refused, saying where.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    image: bb:test\n    blkio_config:\n      device_read_bps:\n        - path: /dev/berth-no-such-disk\n          rate: 1mb\n",
    )
    .unwrap();
    let o = compose(&b, &dir, &["run", "--rm", "-T", "app"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("/dev/berth-no-such-disk: no such file or directory"),
        "{}",
        stderr(&o)
    );
    compose_ok(&b, &dir, &["down"]);
    assert_census_clean(&b);
}

#[test]
fn the_engine_api_takes_and_shows_device_limits() {
    let b = Berth::new();
    let (disk, numbers) = host_disk();
    let srv = Server::start(&b);
    // Plain HTTP, as an SDK sends it.
    let body = json!({
        "Image": IMAGE,
        "Cmd": ["sleep", "300"],
        "HostConfig": {
            "NetworkMode": "none",
            "BlkioWeight": 300,
            "BlkioDeviceReadBps": [{"Path": disk, "Rate": 3221225472u64}],
            "BlkioDeviceWriteBps": [{"Path": disk, "Rate": 4294967296u64}],
            "BlkioDeviceReadIOps": [{"Path": disk, "Rate": 30000}],
            "BlkioDeviceWriteIOps": [{"Path": disk, "Rate": 40000}]
        }
    });
    let (status, _, text) = http_json(
        &srv.socket,
        "POST",
        "/containers/create?name=api",
        &body.to_string(),
    );
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    if host_has_weight() {
        assert_eq!(created["Warnings"], json!([]));
    } else {
        assert_eq!(created["Warnings"], json!([NO_WEIGHT]));
    }
    let (status, _, text) = http(&srv.socket, "POST", "/containers/api/start");
    assert_eq!(status, 204, "{text}");
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "api"]);
    assert_eq!(
        throttles(&blkio_dir_of(&pid)),
        expected(&numbers, 3 << 30, 4 << 30, 30000, 40000)
    );
    let (_, _, text) = http(&srv.socket, "GET", "/containers/api/json");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc["HostConfig"]["BlkioDeviceReadIOps"],
        json!([{"Path": disk, "Rate": 30000}])
    );
    assert_eq!(
        doc["HostConfig"]["BlkioWeight"],
        if host_has_weight() { 300 } else { 0 }
    );
    // update's BlkioWeight: dockerd's answer (null, or its warning).
    let (status, _, text) = http_json(
        &srv.socket,
        "POST",
        "/containers/api/update",
        r#"{"BlkioWeight": 500}"#,
    );
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    if host_has_weight() {
        assert_eq!(answer, json!({"Warnings": null}));
    } else {
        assert_eq!(answer, json!({"Warnings": [NO_WEIGHT]}));
    }
    // A device that is not there: 400 with the reason.
    let bad = json!({"Image": IMAGE, "HostConfig": {"BlkioDeviceReadBps": [{"Path": "/dev/berth-no-such-disk", "Rate": 1}]}});
    let (status, _, text) = http_json(&srv.socket, "POST", "/containers/create", &bad.to_string());
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("/dev/berth-no-such-disk: no such file or directory"),
        "{text}"
    );
    // The docker CLI's flags through the API.
    let out = srv.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device-write-iops",
        &format!("{disk}:7000"),
        IMAGE,
        "cat",
        if v1() {
            "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device"
        } else {
            "/sys/fs/cgroup/io.max"
        },
    ]);
    if v1() {
        assert_eq!(out.trim(), format!("{numbers} 7000"));
    } else {
        assert_eq!(
            out.trim(),
            format!("{numbers} rbps=max wbps=max riops=max wiops=7000")
        );
    }
    b.ok(&["rm", "-f", "api"]);
    drop(srv);
    assert_census_clean(&b);
}

#[test]
fn a_pods_device_limits_are_in_its_cgroup() {
    let b = Berth::new();
    let (disk, numbers) = host_disk();
    let id = b
        .ok(&[
            "pod",
            "create",
            "--name",
            "bk",
            "--network",
            "none",
            "--device-read-bps",
            &format!("{disk}:1gb"),
            "--device-write-bps",
            &format!("{disk}:2gb"),
        ])
        .trim()
        .to_string();
    let dir = if v1() {
        std::path::Path::new("/sys/fs/cgroup/blkio/berth").join(&id)
    } else {
        std::path::Path::new("/sys/fs/cgroup/berth").join(&id)
    };
    let t = throttles(&dir);
    if v1() {
        assert_eq!(t[0].1, format!("{numbers} 1073741824"));
        assert_eq!(t[1].1, format!("{numbers} 2147483648"));
        assert_eq!((t[2].1.as_str(), t[3].1.as_str()), ("", ""));
    } else {
        assert_eq!(
            t[0].1,
            format!("{numbers} rbps=1073741824 wbps=2147483648 riops=max wiops=max")
        );
    }
    // A member runs below it.
    b.ok(&[
        "run", "-d", "--pod", "bk", "--name", "m", IMAGE, "sleep", "300",
    ]);
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "m"]);
    assert_eq!(blkio_dir_of(&pid).parent().unwrap(), dir.as_path());
    // podman 4.3's pod inspect shows none of them.
    let doc = b.ok(&["pod", "inspect", "bk"]);
    assert!(!doc.to_lowercase().contains("bps\":"), "{doc}");
    // podman's words for a device that is not there; a bad value.
    let o = b.run(&[
        "pod",
        "create",
        "--device-read-bps",
        "/dev/berth-no-such-disk:1mb",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains(
            "could not parse throttle device at /dev/berth-no-such-disk: no such file or directory"
        ),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["pod", "create", "--device-write-bps", "bogus"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("bad format: bogus"), "{}", stderr(&o));
    b.ok(&["pod", "rm", "-f", "bk"]);
    assert!(!dir.exists());
    assert_census_clean(&b);
}
