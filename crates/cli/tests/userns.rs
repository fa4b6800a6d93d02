//! User namespaces for rootful berth (root): `--userns=auto`, `--uidmap`,
//! `--gidmap`, `--userns=host`. A root in the container is an unprivileged
//! id on the host: what it makes in a host directory is owned by that id,
//! a root-owned 0600 host file is closed to it; the image still shows its
//! own owners (idmapped layers); `auto` ranges do not overlap and come
//! back when a container is removed; exec, ttys and published ports work.
mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

fn berth_with_subids() -> Berth {
    let b = Berth::new();
    with_subids(
        &b,
        "alice:100000:65536\ncontainers:1000000:200000\n",
        "containers:2000000:200000\n",
    );
    b
}

/// `/proc/self/uid_map`'s lines as (inside, outside, count).
fn map_lines(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .map(|l| {
            let n: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (n[0], n[1], n[2])
        })
        .collect()
}

/// A host directory anyone may write to, with a root-owned 0600 file.
fn host_dir(b: &Berth) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = b.path().join("hostdir");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The test's temp dir is 0700: let the container's ids pass through it.
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::write(d.join("secret"), "host root's secret\n").unwrap();
    std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    d
}

#[test]
fn uidmap_maps_root_to_an_unprivileged_host_id() {
    let b = Berth::new();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    // The same dir with podman's `:idmap`: shown with the container's ids.
    let idm = format!("{}:/idm:idmap", d.display());
    let out = b.run(&[
        "run",
        "--rm",
        "--uidmap",
        "0:100000:65536",
        "-v",
        &vol,
        "-v",
        &idm,
        "bb:test",
        "sh",
        "-c",
        "cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; \
         touch /data/made-inside /idm/made-idmapped; stat -c '%u:%g %n' /idm/secret; \
         cat /data/secret; echo cat=$?; \
         stat -c '%u:%g %n' / /bin/busybox /etc/passwd; id -u",
    ]);
    let text = stdout(&out);
    let parts: Vec<&str> = text.split("---\n").collect();
    assert_eq!(map_lines(parts[0]), vec![(0, 100000, 65536)], "{text}");
    // Only --uidmap given: the gid map is the same (podman's rule).
    assert_eq!(map_lines(parts[1]), vec![(0, 100000, 65536)], "{text}");
    // The host's 0600 root file is closed to the container's root.
    assert!(text.contains("cat=1"), "{text}");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    // The image's files are root's inside (idmapped layers).
    for f in ["0:0 /", "0:0 /bin/busybox", "0:0 /etc/passwd"] {
        assert!(text.contains(f), "{f} missing from {text}");
    }
    assert!(text.trim_end().ends_with("\n0"), "{text}");
    // On the host, what the container's root made is the mapped id's.
    let md = std::fs::metadata(d.join("made-inside")).unwrap();
    assert_eq!((md.uid(), md.gid()), (100000, 100000));
    let md = std::fs::metadata(d.join("made-idmapped")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert!(text.contains("0:0 /idm/secret"), "{text}");
    assert_census_clean(&b);
}

#[test]
fn gidmap_is_its_own_and_bad_maps_are_refused() {
    let b = Berth::new();
    let out = b.ok(&[
        "run",
        "--rm",
        "--uidmap",
        "0:300000:1000",
        "--gidmap",
        "0:400000:1000",
        "bb:test",
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    assert_eq!(
        map_lines(&out),
        vec![(0, 300000, 1000), (0, 400000, 1000)],
        "{out}"
    );
    for (args, words) in [
        (
            vec!["--uidmap", "0:100000:10", "--uidmap", "5:200000:10"],
            "overlap",
        ),
        (vec!["--uidmap", "1:100000:10"], "id 0 must be mapped"),
        (vec!["--uidmap", "0:x:10"], "CONTAINER_ID:HOST_ID:SIZE"),
        (vec!["--userns", "keep-id:uid=5"], "need rootless berth"),
        (vec!["--userns", "bogus"], "not supported"),
        (
            vec!["--userns", "auto", "--uidmap", "0:1:1"],
            "cannot be used together",
        ),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["bb:test", "true"]);
        let o = b.run(&a);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        b.ok(&["ps", "-aq"]),
        "",
        "a refused create left a container"
    );
    // Another container's namespaces (a pod's, `container:`) belong to the
    // host's user namespace: joining them from one's own is refused at
    // create, not left to fail at start.
    b.ok(&["pod", "create", "--name", "p"]);
    b.ok(&["create", "--name", "other", "bb:test", "sleep", "60"]);
    // (A pod's member takes the pod's user namespace: maps of its own
    // are refused in podman 4.3's words.)
    for (join, words) in [
        (
            vec!["--pod", "p"],
            "cannot specify a new uid/gid map when entering a pod with an infra container",
        ),
        (
            vec!["--network", "container:other"],
            "user namespace of its own cannot use",
        ),
        (
            vec!["--ipc", "container:other"],
            "user namespace of its own cannot use",
        ),
    ] {
        let mut a = vec!["run", "--rm", "--uidmap", "0:300000:1000"];
        a.extend(join.iter().copied());
        a.extend(["bb:test", "true"]);
        let o = b.run(&a);
        assert_eq!(code(&o), 125, "{join:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{join:?}: {}", stderr(&o));
    }
    b.ok(&["rm", "other"]);
    b.ok(&["pod", "rm", "p"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn auto_gives_each_container_its_own_range_and_rm_frees_it() {
    let b = berth_with_subids();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "one",
        "--userns=auto",
        "-v",
        &vol,
        "bb:test",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "two",
        "--userns=auto:size=1000",
        "bb:test",
        "sleep",
        "300",
    ]);
    let one = map_lines(&b.ok(&["exec", "one", "cat", "/proc/self/uid_map"]));
    let two = map_lines(&b.ok(&["exec", "two", "cat", "/proc/self/uid_map"]));
    let one_g = map_lines(&b.ok(&["exec", "one", "cat", "/proc/self/gid_map"]));
    // From the containers user's ranges (not alice's), 65536 by default.
    assert_eq!(one, vec![(0, 1000000, 65536)]);
    assert_eq!(one_g, vec![(0, 2000000, 65536)]);
    assert_eq!(two, vec![(0, 1065536, 1000)]);
    // Exec runs as the container's root, which is the mapped id outside.
    b.ok(&["exec", "one", "touch", "/data/by-exec"]);
    let md = std::fs::metadata(d.join("by-exec")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000000, 2000000));
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "one", "two"]),
        "auto\nauto:size=1000\n"
    );
    let ids = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "two"]);
    assert!(ids.contains("\"0:1065536:1000\""), "{ids}");
    // 200000 ids: after 65536 + 1000 + 65536, 67928 are left.
    b.ok(&["create", "--name", "three", "--userns=auto", "bb:test"]);
    let full = b.run(&[
        "run",
        "--rm",
        "--userns=auto:size=100000",
        "bb:test",
        "true",
    ]);
    assert_eq!(code(&full), 125, "{}", stderr(&full));
    assert!(stderr(&full).contains("no free range"), "{}", stderr(&full));
    // Removing one frees its range: the next gets it (the lowest free;
    // while `one` exists that is 1132072, after `three`).
    b.ok(&["rm", "-f", "one"]);
    b.ok(&["create", "--name", "four", "--userns=auto", "bb:test"]);
    let four = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "four"]);
    assert!(four.contains("\"0:1000000:65536\""), "{four}");
    b.ok(&["rm", "-f", "two", "three", "four"]);
    assert_census_clean(&b);
}

#[test]
fn auto_without_subordinate_ids_says_what_to_add() {
    let b = Berth::new();
    with_subids(&b, "alice:100000:65536\n", "alice:100000:65536\n");
    let o = b.run(&["run", "--rm", "--userns=auto", "bb:test", "true"]);
    assert_eq!(code(&o), 125);
    let e = stderr(&o);
    assert!(e.contains("no range for user \"containers\""), "{e}");
    assert!(e.contains("auto_user"), "{e}");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

#[test]
fn host_is_the_default() {
    let b = Berth::new();
    let plain = b.ok(&["run", "--rm", "bb:test", "cat", "/proc/self/uid_map"]);
    let host = b.ok(&[
        "run",
        "--rm",
        "--userns=host",
        "bb:test",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(map_lines(&plain), vec![(0, 0, 4294967295)]);
    assert_eq!(plain, host);
    assert_census_clean(&b);
}

#[test]
fn image_owners_volumes_ports_and_tty_in_a_user_namespace() {
    let b = berth_with_subids();
    // The image's /home/app (1000's) keeps its owner inside, a named
    // volume is the container's (idmapped), and its root may write its
    // /etc/hosts.
    let text = b.ok(&[
        "run",
        "--rm",
        "--userns=auto",
        "-v",
        "vol:/vol",
        "bb:test",
        "sh",
        "-c",
        "stat -c '%u:%g %n' /home/app /etc/hosts; echo 10.9.9.9 extra >> /etc/hosts && echo hosts-ok; \
         touch /vol/by-root && chown 1000:1000 /vol/by-root && stat -c '%u:%g %n' /vol/by-root; \
         touch /made && stat -c '%u:%g %n' /made",
    ]);
    for want in [
        "1000:1000 /home/app",
        "0:0 /etc/hosts",
        "hosts-ok",
        "1000:1000 /vol/by-root",
        "0:0 /made",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    // On the host the volume keeps the container's ids (idmapped).
    let vol = b
        .ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol"])
        .trim()
        .to_string();
    let md = std::fs::metadata(std::path::Path::new(&vol).join("by-root")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000, 1000));

    // A published port answers from a userns container (httpd binds port
    // 80: its network namespace belongs to its user namespace).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--userns=auto",
        "-p",
        &publish,
        "bb:test",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let answer = http_get(&format!("127.0.0.1:{port}"), "/hostname");
    assert!(answer.contains(" 200 OK"), "{answer}");
    // Its processes are the mapped id's on the host.
    let pid = b.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    let st = std::fs::metadata(format!("/proc/{}", pid.trim())).unwrap();
    assert_eq!(st.uid(), 1000000);
    // exec with a terminal.
    let tty = b.ok(&["exec", "-t", "web", "tty"]);
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    b.ok(&["rm", "-f", "web"]);
    let tty = b.ok(&["run", "--rm", "-t", "--userns=auto", "bb:test", "tty"]);
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    assert_census_clean(&b);
}

/// GET `path` from `addr` (HTTP/1.0), retrying while the server starts.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.") {
                return out;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no HTTP answer from {addr}");
}

#[test]
fn compose_userns_mode_reaches_the_container() {
    let b = berth_with_subids();
    let dir = b.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    image: bb:test\n    command: [\"sleep\", \"300\"]\n    userns_mode: auto\n  plain:\n    image: bb:test\n    command: [\"sleep\", \"300\"]\n    userns_mode: host\n",
    )
    .unwrap();
    compose_ok(&b, &dir, &["-p", "uns", "up", "-d"]);
    let app = map_lines(&b.ok(&["exec", "uns-app-1", "cat", "/proc/self/uid_map"]));
    assert_eq!(app, vec![(0, 1000000, 65536)]);
    let plain = map_lines(&b.ok(&["exec", "uns-plain-1", "cat", "/proc/self/uid_map"]));
    assert_eq!(plain, vec![(0, 0, 4294967295)]);
    compose_ok(&b, &dir, &["-p", "uns", "down"]);
    assert_census_clean(&b);
}

/// The vfs storage driver as root: a plain copy, and a copy idmapped like
/// the layers under `--userns=auto` (the image's owners inside, the
/// container's root an unprivileged id on the host).
#[test]
fn a_copied_root_as_root_and_idmapped_with_auto() {
    let b = berth_with_subids();
    // An unknown driver is refused before anything runs.
    let bad = b.run(&["--storage-driver", "zfs", "ps"]);
    assert_eq!(code(&bad), 125);
    assert!(
        stderr(&bad).contains("unknown storage driver \"zfs\": berth has overlay and vfs"),
        "{}",
        stderr(&bad)
    );
    let out = b.run(&[
        "--storage-driver",
        "vfs",
        "run",
        "--name",
        "plain",
        "bb:test",
        "sh",
        "-c",
        "stat -c %u /home/app; echo kept > /kept",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1000");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.GraphDriver.Name}}", "plain"])
            .trim(),
        "vfs"
    );
    b.ok(&["start", "plain"]);
    b.ok(&["wait", "plain"]);
    assert!(b.ok(&["cp", "plain:/kept", "-"]).contains("kept"));
    b.ok(&["rm", "plain"]);
    let text = b.ok(&[
        "--storage-driver",
        "vfs",
        "run",
        "--rm",
        "--userns=auto",
        "bb:test",
        "sh",
        "-c",
        "stat -c '%u:%g %n' /home/app /bin/busybox; cat /proc/self/uid_map",
    ]);
    assert!(text.contains("1000:1000 /home/app"), "{text}");
    assert!(text.contains("0:0 /bin/busybox"), "{text}");
    let map = map_lines(text.lines().last().unwrap());
    assert_eq!(map[0].0, 0);
    assert_ne!(map[0].1, 0, "{text}");
}

/// podman's `--userns=auto:uidmapping=C:H:N,gidmapping=C:H:N,size=N`: the
/// forced mappings are in the container's namespace as given, the auto
/// range maps the container ids of `0..size` they leave out; bad options
/// are refused in podman's words.
#[test]
fn auto_uidmapping_forces_mappings_besides_the_auto_range() {
    let b = berth_with_subids();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    let mode = "auto:uidmapping=0:5000:1,uidmapping=1000:6000:2,gidmapping=0:7000:1,size=2000";
    let userns = format!("--userns={mode}");
    b.ok(&[
        "run", "-d", "--name", "forced", &userns, "-v", &vol, "bb:test", "sleep", "300",
    ]);
    let uid = map_lines(&b.ok(&["exec", "forced", "cat", "/proc/self/uid_map"]));
    let gid = map_lines(&b.ok(&["exec", "forced", "cat", "/proc/self/gid_map"]));
    // 0 and 1000-1001 forced; 1..999 and 1002..1999 from the containers
    // user's first free ids, in one run.
    assert_eq!(
        uid,
        vec![
            (1, 1000000, 999),
            (1002, 1000999, 998),
            (0, 5000, 1),
            (1000, 6000, 2)
        ]
    );
    assert_eq!(gid, vec![(1, 2000000, 1999), (0, 7000, 1)]);
    assert_eq!(b.ok(&["exec", "forced", "id", "-u"]).trim(), "0");
    b.ok(&["exec", "forced", "touch", "/data/by-root"]);
    b.ok(&["exec", "-u", "1001", "forced", "touch", "/data/by-1001"]);
    let md = std::fs::metadata(d.join("by-root")).unwrap();
    assert_eq!((md.uid(), md.gid()), (5000, 7000));
    assert_eq!(std::fs::metadata(d.join("by-1001")).unwrap().uid(), 6001);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "forced"])
            .trim(),
        mode
    );
    let ids = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "forced"]);
    assert!(
        ids.contains("\"0:5000:1\"") && ids.contains("\"1000:6000:2\""),
        "{ids}"
    );
    // The next auto container's range starts after this one's.
    let next = map_lines(&b.ok(&[
        "run",
        "--rm",
        "--userns=auto:size=10",
        "bb:test",
        "cat",
        "/proc/self/uid_map",
    ]));
    assert_eq!(next, vec![(0, 1001997, 10)]);
    for (opt, words) in [
        (
            "auto:uidmapping=bad",
            "UID setting is malformed expected [\"uint32:uint32:uint32\"]",
        ),
        ("auto:gidmapping=0:1", "GID setting is malformed"),
        (
            "auto:uidmapping",
            "invalid option specified: \"uidmapping\"",
        ),
        ("auto:foo=1", "unknown option specified: \"foo\""),
        ("auto:uidmapping=0:5000:10,uidmapping=5:9000:1", "overlap"),
    ] {
        let flag = format!("--userns={opt}");
        let o = b.run(&["run", "--rm", &flag, "bb:test", "true"]);
        assert_eq!(code(&o), 125, "{opt}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{opt}: {}", stderr(&o));
    }
    b.ok(&["rm", "-f", "forced"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

/// `readlink /proc/self/ns/KIND` in a running container.
fn ns_of(b: &Berth, name: &str, kind: &str) -> String {
    let path = format!("/proc/self/ns/{kind}");
    b.ok(&["exec", name, "readlink", &path]).trim().to_string()
}

/// podman's `--userns=container:NAME`: the joiner is in the donor's user
/// namespace (the same maps; its root's files are the donor's root's on
/// the host), and may therefore share the donor's network, pid and IPC
/// namespaces; mixing user namespaces stays refused.
#[test]
fn userns_container_joins_a_running_containers_user_namespace() {
    let b = berth_with_subids();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--userns=auto:size=2000",
        "--ipc",
        "shareable",
        "-v",
        &vol,
        "bb:test",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    let donor_id = b
        .ok(&["inspect", "-f", "{{.Id}}", "donor"])
        .trim()
        .to_string();
    b.ok(&[
        "create",
        "--name",
        "joiner",
        "--userns=container:donor",
        "--network",
        "container:donor",
        "--pid",
        "container:donor",
        "--ipc",
        "container:donor",
        "-v",
        &vol,
        "bb:test",
        "sleep",
        "300",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "joiner"])
            .trim(),
        format!("container:{donor_id}")
    );
    let ids = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "joiner"]);
    assert!(ids.contains("\"0:1000000:2000\""), "{ids}");
    b.ok(&["start", "joiner"]);
    for kind in ["user", "net", "pid", "ipc"] {
        assert_eq!(
            ns_of(&b, "joiner", kind),
            ns_of(&b, "donor", kind),
            "{kind}"
        );
    }
    // Its own mount and UTS namespaces.
    assert_ne!(ns_of(&b, "joiner", "mnt"), ns_of(&b, "donor", "mnt"));
    let uid = map_lines(&b.ok(&["exec", "joiner", "cat", "/proc/self/uid_map"]));
    assert_eq!(uid, vec![(0, 1000000, 2000)]);
    assert_eq!(b.ok(&["exec", "joiner", "id", "-u"]).trim(), "0");
    // The image's files are root's inside, as in the donor.
    let owners = b.ok(&[
        "exec",
        "joiner",
        "stat",
        "-c",
        "%u:%g",
        "/bin/busybox",
        "/home/app",
    ]);
    assert_eq!(owners, "0:0\n1000:1000\n");
    b.ok(&["exec", "joiner", "touch", "/data/by-joiner"]);
    let md = std::fs::metadata(d.join("by-joiner")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000000, 2000000));
    // The donor's httpd on the shared localhost, its process in the shared
    // pid namespace.
    let page = b.ok(&[
        "exec",
        "joiner",
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/hostname",
    ]);
    let donor_host = b.ok(&["exec", "donor", "hostname"]);
    assert_eq!(page.trim(), donor_host.trim());
    assert!(b.ok(&["exec", "joiner", "ps"]).contains("httpd"));
    // A container run with --rm joins the same way.
    let text = b.ok(&[
        "run",
        "--rm",
        "--userns=container:joiner",
        "--network",
        "container:donor",
        "bb:test",
        "sh",
        "-c",
        "cat /proc/self/uid_map; wget -qO- http://127.0.0.1:8080/hostname",
    ]);
    assert!(text.contains(donor_host.trim()), "{text}");
    assert_eq!(
        map_lines(text.lines().next().unwrap()),
        vec![(0, 1000000, 2000)]
    );

    // Refusals (125, nothing left).
    b.ok(&["run", "-d", "--name", "plain", "bb:test", "sleep", "300"]);
    for (args, words) in [
        (
            vec!["--userns=container:nope"],
            "no container with name or ID \"nope\" found",
        ),
        (
            vec!["--userns=auto", "--network", "container:donor"],
            "user namespace of its own cannot use --network container:",
        ),
        (
            vec!["--userns=container:donor", "--network", "container:plain"],
            "belong to the host's user namespace",
        ),
        (
            vec!["--uidmap", "0:300000:1000", "--pid", "container:donor"],
            "user namespace of its own cannot use --pid container:",
        ),
        (vec!["--userns=container:"], "container:NAME"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter().copied());
        a.extend(["bb:test", "true"]);
        let o = b.run(&a);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{args:?}: {}", stderr(&o));
    }
    // A donor in the host's user namespace: the joiner is in it too.
    let host = b.ok(&[
        "run",
        "--rm",
        "--userns=container:plain",
        "--network",
        "container:plain",
        "bb:test",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(map_lines(&host), vec![(0, 0, 4294967295)]);
    // A stopped donor's user namespace cannot be joined.
    b.ok(&[
        "create",
        "--name",
        "late",
        "--userns=container:plain",
        "bb:test",
        "true",
    ]);
    b.ok(&["rm", "-f", "joiner"]);
    b.ok(&[
        "create",
        "--name",
        "late2",
        "--userns=container:donor",
        "bb:test",
        "true",
    ]);
    b.ok(&["stop", "-t", "0", "donor"]);
    // (`start` fails with 1, as docker's.)
    let o = b.run(&["start", "-a", "late2"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("user namespace of container") && stderr(&o).contains("not running"),
        "{}",
        stderr(&o)
    );
    b.ok(&["rm", "-f", "donor", "plain", "late", "late2"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

/// podman's `--userns=ns:PATH`: the user namespace at PATH (here a running
/// container's), with its maps; a path that is no user namespace is
/// refused.
#[test]
fn userns_ns_path_joins_the_namespace_at_a_path() {
    let b = Berth::new();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--uidmap",
        "0:300000:1000",
        "bb:test",
        "sleep",
        "300",
    ]);
    let pid = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "holder"])
        .trim()
        .to_string();
    let path = format!("/proc/{pid}/ns/user");
    let userns = format!("--userns=ns:{path}");
    b.ok(&[
        "create", "--name", "byns", &userns, "-v", &vol, "bb:test", "sleep", "300",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "byns"])
            .trim(),
        format!("ns:{path}")
    );
    b.ok(&["start", "byns"]);
    assert_eq!(ns_of(&b, "byns", "user"), ns_of(&b, "holder", "user"));
    let uid = map_lines(&b.ok(&["exec", "byns", "cat", "/proc/self/uid_map"]));
    assert_eq!(uid, vec![(0, 300000, 1000)]);
    assert_eq!(b.ok(&["exec", "byns", "id", "-u"]).trim(), "0");
    b.ok(&["exec", "byns", "touch", "/data/by-ns"]);
    let md = std::fs::metadata(d.join("by-ns")).unwrap();
    assert_eq!((md.uid(), md.gid()), (300000, 300000));
    // The path names the holder's namespace: its network (and pid)
    // namespaces may be joined too, as with `--userns=container:holder`.
    let out = b.ok(&[
        "run",
        "--rm",
        &userns,
        "--network",
        "container:holder",
        "--pid",
        "container:holder",
        "bb:test",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/pid",
    ]);
    assert_eq!(
        out,
        format!(
            "{}\n{}\n",
            ns_of(&b, "holder", "net"),
            ns_of(&b, "holder", "pid")
        )
    );
    // A path to another container's user namespace still may not.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--uidmap",
        "0:400000:1000",
        "bb:test",
        "sleep",
        "300",
    ]);
    let other_pid = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "other"])
        .trim()
        .to_string();
    let other_userns = format!("--userns=ns:/proc/{other_pid}/ns/user");
    let o = b.run(&[
        "run",
        "--rm",
        &other_userns,
        "--network",
        "container:holder",
        "bb:test",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("belong to another user namespace"),
        "{}",
        stderr(&o)
    );
    b.ok(&["rm", "-f", "other"]);
    let net = format!("--userns=ns:/proc/{pid}/ns/net");
    for (flag, words) in [
        (net.as_str(), "is not a user namespace"),
        ("--userns=ns:/tmp", "is not a user namespace"),
        (
            "--userns=ns:/nonexistent/userns",
            "cannot find specified user namespace path",
        ),
        ("--userns=ns:relative", "ns:/ABSOLUTE/PATH"),
    ] {
        let o = b.run(&["run", "--rm", flag, "bb:test", "true"]);
        assert_eq!(code(&o), 125, "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{flag}: {}", stderr(&o));
    }
    b.ok(&["rm", "-f", "byns", "holder"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_census_clean(&b);
}

/// podman's `pod create --userns`/`--uidmap`: the infra container gets the
/// user namespace and every member joins it (its maps, its root's files
/// the infra's root's on the host) along with the pod's network, IPC and
/// UTS namespaces; a member's own `--userns`/`--uidmap` is refused in
/// podman 4.3's words; `pod inspect` lists "user" as podman does
/// (recorded from podman 4.3.1: ipc, net, user, uts; InfraConfig.userns
/// "host" for auto, "private" for maps); `pod rm` frees the auto range.
#[test]
fn a_pods_members_share_its_user_namespace() {
    let b = berth_with_subids();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    b.ok(&[
        "pod",
        "create",
        "--name",
        "pu",
        "--network",
        "none",
        "--userns=auto:size=2000",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "pu",
        "--name",
        "m1",
        "-v",
        &vol,
        "bb:test",
        "sh",
        "-c",
        "echo shm-ok > /dev/shm/x; exec httpd -f -p 8080 -h /etc",
    ]);
    let infra = b
        .ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", "pu"])
        .trim()
        .to_string();
    // The auto range is the infra's, and the members'.
    let infra_maps = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", &infra]);
    assert!(infra_maps.contains("\"0:1000000:2000\""), "{infra_maps}");
    assert_eq!(
        map_lines(&b.ok(&["exec", "m1", "cat", "/proc/self/uid_map"])),
        vec![(0, 1000000, 2000)]
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "m1"])
            .trim(),
        format!("container:{infra}")
    );
    let pid = |c: &str| {
        b.ok(&["inspect", "-f", "{{.State.Pid}}", c])
            .trim()
            .to_string()
    };
    let ns = |p: &str, kind: &str| std::fs::read_link(format!("/proc/{p}/ns/{kind}")).unwrap();
    let (ip, mp) = (pid(&infra), pid("m1"));
    for kind in ["user", "net", "ipc", "uts"] {
        assert_eq!(ns(&ip, kind), ns(&mp, kind), "{kind}");
    }
    assert_ne!(ns(&mp, "user"), ns("self", "user"));
    // A second member: the same namespace, the pod's localhost, /dev/shm
    // and hostname; the image's owners as the image has them; what its
    // root makes in a host dir is the range's first id on the host.
    let out = b.ok(&[
        "run",
        "--rm",
        "--pod",
        "pu",
        "-v",
        &vol,
        "bb:test",
        "sh",
        "-c",
        "readlink /proc/self/ns/user; wget -qO- 127.0.0.1:8080/hostname; cat /dev/shm/x; stat -c %u:%g /bin/busybox; touch /data/by-member",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ns(&ip, "user").to_string_lossy(), "{out}");
    assert_eq!(lines[1], "pu", "{out}");
    assert_eq!(lines[2], "shm-ok", "{out}");
    assert_eq!(lines[3], "0:0", "{out}");
    let md = std::fs::metadata(d.join("by-member")).unwrap();
    assert_eq!((md.uid(), md.gid()), (1000000, 2000000));
    // A member's own user namespace: podman's words, 125.
    for (args, words) in [
        (
            &["--userns=host"][..],
            "--userns and --pod cannot be set together",
        ),
        (
            &["--uidmap", "0:100000:1000"][..],
            "cannot specify a new uid/gid map when entering a pod with an infra container: invalid argument",
        ),
    ] {
        let mut cmd = vec!["run", "--rm", "--pod", "pu"];
        cmd.extend_from_slice(args);
        cmd.extend_from_slice(&["bb:test", "true"]);
        let out = b.run(&cmd);
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(words), "{args:?}: {}", stderr(&out));
    }
    let shared = b.ok(&["pod", "inspect", "-f", "{{json .SharedNamespaces}}", "pu"]);
    assert_eq!(shared.trim(), r#"["ipc","net","user","uts"]"#);
    assert_eq!(
        b.ok(&["pod", "inspect", "-f", "{{.InfraConfig.userns}}", "pu"])
            .trim(),
        "host"
    );
    // Maps given to the pod: "private", and the members have them.
    b.ok(&[
        "pod",
        "create",
        "--name",
        "pm",
        "--network",
        "none",
        "--uidmap",
        "0:300000:65536",
    ]);
    assert_eq!(
        map_lines(&b.ok(&[
            "run",
            "--rm",
            "--pod",
            "pm",
            "bb:test",
            "cat",
            "/proc/self/uid_map"
        ])),
        vec![(0, 300000, 65536)]
    );
    assert_eq!(
        b.ok(&["pod", "inspect", "-f", "{{.InfraConfig.userns}}", "pm"])
            .trim(),
        "private"
    );
    // A pod without one lists no "user" and its members stay the host's.
    b.ok(&["pod", "create", "--name", "ph", "--network", "none"]);
    assert_eq!(
        b.ok(&["pod", "inspect", "-f", "{{json .SharedNamespaces}}", "ph"])
            .trim(),
        r#"["ipc","net","uts"]"#
    );
    assert_eq!(
        map_lines(&b.ok(&[
            "run",
            "--rm",
            "--pod",
            "ph",
            "bb:test",
            "cat",
            "/proc/self/uid_map"
        ])),
        vec![(0, 0, 4294967295)]
    );
    // A bad mode is refused before anything is made.
    let bad = b.run(&["pod", "create", "--name", "px", "--userns=bogus"]);
    assert_eq!(code(&bad), 125, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("\"bogus\" is not supported"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(code(&b.run(&["pod", "exists", "px"])), 1);
    // `run --pod new:NAME --userns=…`: the new pod takes the namespace.
    let out = b.ok(&[
        "run",
        "--rm",
        "--pod",
        "new:pn",
        "--network",
        "none",
        "--userns=auto:size=1000",
        "bb:test",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert_eq!(map_lines(&out), vec![(0, 1002000, 1000)]);
    // Removing the pod frees its range: the next auto container gets it.
    b.ok(&["pod", "rm", "-f", "pu", "pm", "ph", "pn"]);
    b.ok(&[
        "create",
        "--name",
        "next",
        "--userns=auto:size=2000",
        "bb:test",
    ]);
    let next = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "next"]);
    assert!(next.contains("\"0:1000000:2000\""), "{next}");
    b.ok(&["rm", "-f", "next"]);
    assert_census_clean(&b);
}

/// `--userns=keep-id` as root, as podman ≥ 4.4 does it (podman 4.3 refused
/// it): a user namespace of the container's own whose maps copy root's
/// (the identity), so files keep the host's ids and root stays root there;
/// the options are rootless berth's; the identity holds no `auto` range.
#[test]
fn keep_id_as_root_copies_roots_ids_into_a_namespace_of_its_own() {
    let b = berth_with_subids();
    let d = host_dir(&b);
    let vol = format!("{}:/data", d.display());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "kid",
        "--userns=keep-id",
        "-v",
        &vol,
        "bb:test",
        "sleep",
        "300",
    ]);
    assert_eq!(
        map_lines(&b.ok(&["exec", "kid", "cat", "/proc/self/uid_map"])),
        vec![(0, 0, 4294967295)]
    );
    assert_eq!(
        map_lines(&b.ok(&["exec", "kid", "cat", "/proc/self/gid_map"])),
        vec![(0, 0, 4294967295)]
    );
    assert_ne!(
        ns_of(&b, "kid", "user"),
        std::fs::read_link("/proc/self/ns/user")
            .unwrap()
            .to_string_lossy()
    );
    assert_eq!(b.ok(&["exec", "kid", "id", "-u"]).trim(), "0");
    b.ok(&["exec", "kid", "touch", "/data/by-keep-id"]);
    let md = std::fs::metadata(d.join("by-keep-id")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(
        b.ok(&["exec", "kid", "stat", "-c", "%u:%g", "/bin/busybox"])
            .trim(),
        "0:0"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.UsernsMode}} {{json .HostConfig.IDMappings}}",
            "kid"
        ])
        .trim(),
        r#"keep-id {"UidMap":["0:0:4294967295"],"GidMap":["0:0:4294967295"]}"#
    );
    // An auto container still gets the first range while it runs.
    b.ok(&["create", "--name", "auto1", "--userns=auto", "bb:test"]);
    let ids = b.ok(&["inspect", "-f", "{{json .HostConfig.IDMappings}}", "auto1"]);
    assert!(ids.contains("\"0:1000000:65536\""), "{ids}");
    let o = b.run(&["run", "--rm", "--userns=keep-id:uid=5", "bb:test", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("need rootless berth"), "{}", stderr(&o));
    b.ok(&["rm", "-f", "kid", "auto1"]);
    assert_census_clean(&b);
}
