//! HostConfig fields with real containers (root): `--group-add`, `--uts
//! host`, `--device-cgroup-rule`, `--device`, `--cpuset-cpus/--cpuset-mems`,
//! `--isolation`, legacy `--link` and `network connect` after a
//! disconnect. Expected values were recorded from dockerd 20.10 with the
//! same busybox image.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use api_server::*;
use common::*;

fn inspect(b: &Berth, name: &str, format: &str) -> String {
    b.ok(&["inspect", "-f", format, name]).trim().to_string()
}

#[test]
fn group_add_joins_groups_by_name_and_number() {
    let b = Berth::new();
    let id = |extra: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "id"]);
        b.ok(&args).trim().to_string()
    };
    assert_eq!(
        id(&["--group-add", "wheel"]),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel)"
    );
    assert_eq!(
        id(&[
            "--group-add",
            "1000",
            "--group-add",
            "wheel",
            "--group-add",
            "4242"
        ]),
        "uid=0(root) gid=0(root) groups=0(root),10(wheel),1000(app),4242"
    );
    assert_eq!(
        id(&["-u", "app", "--group-add", "wheel"]),
        "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)"
    );
    // An exec joins them too, whatever its user.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "g",
        "--group-add",
        "4242",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(
        b.ok(&["exec", "g", "id"]).trim(),
        "uid=0(root) gid=0(root) groups=0(root),4242"
    );
    assert_eq!(
        b.ok(&["exec", "-u", "app", "g", "id"]).trim(),
        "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),4242"
    );
    assert_eq!(
        inspect(&b, "g", "{{json .HostConfig.GroupAdd}}"),
        "[\"4242\"]"
    );
    // A name the image's /etc/group does not have: the start fails, in
    // dockerd's words.
    b.ok(&[
        "create",
        "--name",
        "nog",
        "--group-add",
        "nosuch",
        IMAGE,
        "id",
    ]);
    let o = b.run(&["start", "nog"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Unable to find group nosuch: no matching entries in group file"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["run", "--rm", "--group-add", "nosuch", IMAGE, "id"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    let ids = vec![id_of(&b, "g"), id_of(&b, "nog")];
    b.ok(&["rm", "-f", "g", "nog"]);
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn uts_host_shares_the_hosts_name() {
    let b = Berth::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim();
    for runtime in ["berth", "runc"] {
        b.ok(&[
            "create",
            "--name",
            "u",
            "--uts",
            "host",
            "--runtime",
            runtime,
            IMAGE,
            "sh",
            "-c",
            "hostname; cat /etc/hostname; echo $HOSTNAME",
        ]);
        let short = id_of(&b, "u")[..12].to_string();
        b.ok(&["start", "u"]);
        b.ok(&["wait", "u"]);
        // The host's name; the container's own files and variable keep
        // its id, as Docker's.
        assert_eq!(
            b.ok(&["logs", "u"]),
            format!("{host}\n{short}\n{short}\n"),
            "{runtime}"
        );
        assert_eq!(inspect(&b, "u", "{{.HostConfig.UTSMode}}"), "host");
        b.ok(&["rm", "u"]);
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim(),
        host,
        "the host's name is unchanged"
    );
    assert_eq!(
        inspect(
            &b,
            b.ok(&["create", IMAGE]).trim(),
            "{{json .HostConfig.UTSMode}}"
        ),
        "\"\""
    );
    let o = b.run(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "--hostname",
        "x",
        IMAGE,
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("conflicting options: hostname and the UTS mode"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["run", "--rm", "--uts", "bogus", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("--uts: invalid UTS mode"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn device_cgroup_rules_allow_more_devices() {
    let b = Berth::new();
    // Major 42 has no driver: the device cgroup refuses the open (EPERM)
    // unless a rule allows it, then the kernel finds no device (ENXIO).
    let script = "mknod /tmp/d c 42 0 && cat /tmp/d";
    let o = b.run(&["run", "--rm", IMAGE, "sh", "-c", script]);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    b.ok(&[
        "create", "--name", "dev", "--device-cgroup-rule", "c 42:* rw", "--device-cgroup-rule",
        "b 7:128 m", IMAGE, "sh", "-c",
        "mknod /tmp/d c 42 0; cat /tmp/d; grep -E '^(c 42|b 7)' /sys/fs/cgroup/devices/devices.list",
    ]);
    let o = b.run(&["start", "-a", "dev"]);
    assert!(
        stderr(&o).contains("No such device or address"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "c 42:* rw\nb 7:128 m\n");
    assert_eq!(
        inspect(&b, "dev", "{{json .HostConfig.DeviceCgroupRules}}"),
        r#"["c 42:* rw","b 7:128 m"]"#
    );
    for bad in ["x 7:128 rwm", "c 7:128", "c 7:128 rwx"] {
        let o = b.run(&["run", "--rm", "--device-cgroup-rule", bad, IMAGE, "true"]);
        assert_eq!(code(&o), 125, "{bad}");
        assert!(
            stderr(&o).contains(&format!(
                "invalid argument \"{bad}\" for \"--device-cgroup-rule\" flag: invalid device cgroup format '{bad}'"
            )),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn cpuset_pins_cpus_and_memory_nodes() {
    let b = Berth::new();
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let online = online.trim();
    let last = online.rsplit([',', '-']).next().unwrap().to_string();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "pin",
        "--cpuset-cpus",
        &last,
        "--cpuset-mems",
        "0",
        IMAGE,
        "sleep",
        "300",
    ]);
    let seen = |b: &Berth| {
        b.ok(&[
            "exec", "pin", "sh", "-c",
            "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems; grep Cpus_allowed_list /proc/1/status",
        ])
    };
    assert_eq!(seen(&b), format!("{last}\n0\nCpus_allowed_list:\t{last}\n"));
    assert_eq!(
        inspect(
            &b,
            "pin",
            "{{.HostConfig.CpusetCpus}} {{.HostConfig.CpusetMems}}"
        ),
        format!("{last} 0")
    );
    // update changes it live.
    b.ok(&["update", "--cpuset-cpus", "0", "pin"]);
    assert_eq!(seen(&b), "0\n0\nCpus_allowed_list:\t0\n");
    assert_eq!(inspect(&b, "pin", "{{.HostConfig.CpusetCpus}}"), "0");
    // dockerd's refusals.
    let o = b.run(&["run", "--rm", "--cpuset-cpus", "0-4095", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains(&format!(
            "Requested CPUs are not available - requested 0-4095, available: {online}"
        )),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["run", "--rm", "--cpuset-cpus", "xx", IMAGE, "true"]);
    assert!(
        stderr(&o).contains("Invalid value xx for cpuset cpus: invalid format: xx"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["run", "--rm", "--cpuset-mems", "4095", IMAGE, "true"]);
    assert!(
        stderr(&o).contains("Requested memory nodes are not available - requested 4095"),
        "{}",
        stderr(&o)
    );
    let ids = vec![id_of(&b, "pin")];
    b.ok(&["rm", "-f", "pin"]);
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn isolation_is_default_or_nothing() {
    let b = Berth::new();
    b.ok(&["create", "--name", "d", "--isolation", "default", IMAGE]);
    b.ok(&["create", "--name", "n", IMAGE]);
    assert_eq!(
        inspect(&b, "d", "{{json .HostConfig.Isolation}}"),
        "\"default\""
    );
    assert_eq!(inspect(&b, "n", "{{json .HostConfig.Isolation}}"), "\"\"");
    let o = b.run(&["run", "--rm", "--isolation", "hyperv", IMAGE, "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("Invalid isolation: \"hyperv\" - linux only supports 'default'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn legacy_links_give_variables_hosts_entries_and_names() {
    let b = Berth::new();
    b.ok(&[
        "run", "-d", "--name", "web", "-e", "FOO=1", "--expose", "80", "--expose", "53/udp", IMAGE,
        "sleep", "300",
    ]);
    let ip = inspect(&b, "web", "{{.NetworkSettings.IPAddress}}");
    let short = id_of(&b, "web")[..12].to_string();
    b.ok(&[
        "create", "--name", "app", "--link", "web:db", "--link", "web", IMAGE, "sleep", "300",
    ]);
    b.ok(&["start", "app"]);
    let env = b.ok(&["exec", "app", "env"]);
    for want in [
        format!("DB_PORT=udp://{ip}:53"),
        format!("DB_PORT_53_UDP=udp://{ip}:53"),
        format!("DB_PORT_53_UDP_ADDR={ip}"),
        "DB_PORT_53_UDP_PORT=53".to_string(),
        "DB_PORT_53_UDP_PROTO=udp".to_string(),
        format!("DB_PORT_80_TCP=tcp://{ip}:80"),
        "DB_NAME=/app/db".to_string(),
        "DB_ENV_FOO=1".to_string(),
        "WEB_NAME=/app/web".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want:?} in {env}");
    }
    let hosts = b.ok(&["exec", "app", "cat", "/etc/hosts"]);
    let own = inspect(&b, "app", "{{.NetworkSettings.IPAddress}}");
    let app_short = id_of(&b, "app")[..12].to_string();
    assert!(
        hosts.ends_with(&format!(
            "{ip}\tdb {short} web\n{ip}\tweb {short}\n{own}\t{app_short}\n"
        )),
        "{hosts}"
    );
    assert_eq!(
        inspect(&b, "app", "{{json .HostConfig.Links}}"),
        r#"["/web:/app/db","/web:/app/web"]"#
    );
    // Link names are the target's names: ps --no-trunc lists them, every
    // command takes them.
    let names = b.ok(&[
        "ps",
        "--no-trunc",
        "--filter",
        "name=web",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(names, "app/db,app/web,web\n");
    assert_eq!(
        b.ok(&["ps", "--filter", "name=web", "--format", "{{.Names}}"]),
        "web\n"
    );
    assert_eq!(inspect(&b, "app/db", "{{.Name}}"), "/web");
    assert_eq!(b.ok(&["rm", "--link", "app/db"]), "app/db\n");
    assert_eq!(
        inspect(&b, "app", "{{json .HostConfig.Links}}"),
        r#"["/web:/app/web"]"#
    );
    let o = b.run(&["rm", "--link", "web"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("Conflict, cannot remove the default link name of the container"),
        "{}",
        stderr(&o)
    );
    // A target that is not running: the start fails; one that comes back
    // elsewhere is found at its new address on the next start.
    b.ok(&["stop", "-t", "0", "app"]);
    b.ok(&["stop", "-t", "0", "web"]);
    let o = b.run(&["start", "app"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("Cannot link to a non running container: /web AS /app/web"),
        "{}",
        stderr(&o)
    );
    b.ok(&["run", "-d", "--name", "taker", IMAGE, "sleep", "300"]);
    b.ok(&["start", "web"]);
    let moved = inspect(&b, "web", "{{.NetworkSettings.IPAddress}}");
    b.ok(&["start", "app"]);
    let hosts = b.ok(&["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{moved}\tweb {short}\n")),
        "{hosts}"
    );
    assert!(b
        .ok(&["exec", "app", "env"])
        .contains(&format!("WEB_PORT=udp://{moved}:53")));
    // Refusals, in Docker's words (create exits 1 as docker's does).
    let o = b.run(&["create", "--link", "nosuch:x", IMAGE]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("could not get container for nosuch: No such container: nosuch"),
        "{}",
        stderr(&o)
    );
    for net in ["host", "none"] {
        let o = b.run(&[
            "run",
            "--rm",
            "--network",
            net,
            "--link",
            "web",
            IMAGE,
            "true",
        ]);
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("links are only supported for user-defined networks"),
            "{}",
            stderr(&o)
        );
    }
    let ids: Vec<String> = ["web", "app", "taker"]
        .iter()
        .map(|n| id_of(&b, n))
        .collect();
    b.ok(&["rm", "-f", "web", "app", "taker"]);
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn links_on_a_user_network_are_the_linking_containers_aliases() {
    let b = Berth::new();
    b.ok(&["network", "create", "--subnet", "10.254.79.0/24", "ln"]);
    // The target may come later; the alias answers for the linking
    // container only.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "ln",
        "--link",
        "later:up",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(
        inspect(
            &b,
            "asker",
            "{{json .NetworkSettings.Networks.ln.Links}} {{json .HostConfig.Links}}"
        ),
        r#"["later:up"] null"#
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "later",
        "--network",
        "ln",
        "--ip",
        "10.254.79.50",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "ln",
        IMAGE,
        "sleep",
        "300",
    ]);
    let found = b.ok(&["exec", "asker", "nslookup", "up"]);
    assert!(found.contains("Address: 10.254.79.50"), "{found}");
    let o = b.run(&["exec", "other", "nslookup", "up"]);
    assert_ne!(code(&o), 0, "{}", stdout(&o));
    // Disconnected from its only network it is not `--network none`: it
    // connects again, with a link, an address and a MAC address of its own.
    b.ok(&["network", "disconnect", "ln", "other"]);
    assert_eq!(inspect(&b, "other", "{{.HostConfig.NetworkMode}}"), "ln");
    b.ok(&[
        "network",
        "connect",
        "--link",
        "later:peer",
        "--ip",
        "10.254.79.60",
        "ln",
        "other",
    ]);
    let found = b.ok(&["exec", "other", "nslookup", "peer"]);
    assert!(found.contains("Address: 10.254.79.50"), "{found}");
    assert_eq!(
        inspect(
            &b,
            "other",
            "{{.NetworkSettings.Networks.ln.IPAMConfig.IPv4Address}} {{.NetworkSettings.Networks.ln.IPAddress}} {{json .NetworkSettings.Networks.ln.Links}}"
        ),
        r#"10.254.79.60 10.254.79.60 ["later:peer"]"#
    );
    let o = b.run(&["network", "connect", "--link", "later:x", "bridge", "other"]);
    assert_ne!(code(&o), 0);
    let ids: Vec<String> = ["asker", "later", "other"]
        .iter()
        .map(|n| id_of(&b, n))
        .collect();
    b.ok(&["rm", "-f", "asker", "later", "other"]);
    b.ok(&["network", "rm", "ln"]);
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, as dockerd 20.10 does it
/// (recorded with the same busybox image): the node made in the container
/// with the host's numbers and mode, the device cgroup allowing it with
/// the permissions given (a write to a read-only one refused), a
/// directory's nodes below the container path, `HostConfig.Devices` in
/// docker's shape, the docker CLI's and dockerd's words for bad input,
/// the same through `berth serve` and compose's `devices:`, and a bound
/// node in a container with a user namespace (mknod is refused there).
#[test]
fn devices_are_made_in_the_container_as_dockerd_makes_them() {
    let b = Berth::new();
    // The nodes keep the host's modes, which differ between hosts
    // (/dev/net/tun is 0666 under udev, 0600 without).
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        format!(
            "{:o}",
            std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
        )
    };
    let (kmsg, zero, tun, null) = (
        mode("/dev/kmsg"),
        mode("/dev/zero"),
        mode("/dev/net/tun"),
        mode("/dev/null"),
    );
    // /dev/kmsg (c 1:11) is not among Docker's default devices: without
    // --device the container has no such node and may not make one.
    let o = b.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "mknod /tmp/k c 1 11 && cat /tmp/k",
    ]);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    b.ok(&[
        "create", "--name", "dev", "--network", "none", "--device", "/dev/kmsg:/dev/k:r",
        "--device", "/dev/zero", "--device", "/dev/net", IMAGE, "sh", "-c",
        "stat -c '%n %F %t:%T %a' /dev/k /dev/zero /dev/net/tun; echo x > /dev/k || echo write-refused; \
         grep -E '^c (1:11|1:5|10:200) ' /sys/fs/cgroup/devices/devices.list",
    ]);
    let o = b.run(&["start", "-a", "dev"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o),
        format!("/dev/k character special file 1:b {kmsg}\n/dev/zero character special file 1:5 {zero}\n/dev/net/tun character special file a:c8 {tun}\nwrite-refused\nc 1:5 rwm\nc 10:200 rwm\nc 1:11 r\n")
    );
    assert_eq!(
        inspect(&b, "dev", "{{json .HostConfig.Devices}}"),
        r#"[{"PathOnHost":"/dev/kmsg","PathInContainer":"/dev/k","CgroupPermissions":"r"},{"PathOnHost":"/dev/zero","PathInContainer":"/dev/zero","CgroupPermissions":"rwm"},{"PathOnHost":"/dev/net","PathInContainer":"/dev/net","CgroupPermissions":"rwm"}]"#
    );
    // HOST:PERMISSIONS (a second field that is a mode), as the docker CLI.
    b.ok(&[
        "create",
        "--name",
        "short",
        "--device",
        "/dev/kmsg:r",
        IMAGE,
        "true",
    ]);
    assert_eq!(
        inspect(&b, "short", "{{json .HostConfig.Devices}}"),
        r#"[{"PathOnHost":"/dev/kmsg","PathInContainer":"/dev/kmsg","CgroupPermissions":"r"}]"#
    );
    // Bad input: the docker CLI's words (20.10), dockerd's for a missing
    // node or a path that holds none; 125 (docker run says 127 for the
    // missing one, its CLI matching "no such file or directory").
    for (arg, words) in [
        ("/dev/null:/dev/x:rwx", "bad mode specified: rwx.\nSee 'berth run --help'."),
        ("/dev/null:x", "x is not an absolute path."),
        ("null", "null is not an absolute path."),
        ("/dev/null:/dev/x:r:q", "bad format for path: /dev/null:/dev/x:r:q."),
        ("/dev/null:/dev/x:", "bad mode specified: ."),
        (
            "/dev/nonexistent",
            "error gathering device information while adding custom device \"/dev/nonexistent\": no such file or directory",
        ),
        (
            "/tmp",
            "error gathering device information while adding custom device \"/tmp\": not a device node",
        ),
    ] {
        let o = b.run(&["run", "--rm", "--device", arg, IMAGE, "true"]);
        assert_eq!(code(&o), 125, "{arg}: {}", stderr(&o));
        assert!(stderr(&o).contains(words), "{arg}: {}", stderr(&o));
    }
    // In a user namespace of its own the host's node is bound.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:100000:65536",
        "--device",
        "/dev/null:/dev/unull",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%t:%T %a' /dev/unull; echo hi > /dev/unull && echo wrote",
    ]);
    assert_eq!(out, format!("1:3 {null}\nwrote\n"));
    // The Engine API (the docker CLI through berth serve).
    let srv = Server::start(&b);
    let out = srv.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/kmsg:/dev/k:r",
        IMAGE,
        "sh",
        "-c",
        "stat -c '%t:%T %a' /dev/k",
    ]);
    assert_eq!(out, format!("1:b {kmsg}\n"));
    srv.docker_ok(&[
        "create",
        "--name",
        "apidev",
        "--device",
        "/dev/zero:/dev/z",
        IMAGE,
        "true",
    ]);
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{json .HostConfig.Devices}}", "apidev"]),
        "[{\"PathOnHost\":\"/dev/zero\",\"PathInContainer\":\"/dev/z\",\"CgroupPermissions\":\"rwm\"}]\n"
    );
    drop(srv);
    // compose's `devices:`, short and long syntax.
    let dir = b.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  s:\n    image: {IMAGE}\n    network_mode: none\n    command: [sh, -c, 'stat -c \"%t:%T %a\" /dev/k /dev/z']\n    devices:\n      - /dev/kmsg:/dev/k:r\n      - source: /dev/zero\n        target: /dev/z\n"
        ),
    )
    .unwrap();
    let (out, _) = compose_ok(&b, &dir, &["run", "--rm", "-T", "s"]);
    assert_eq!(out, format!("1:b {kmsg}\n1:5 {zero}\n"));
    b.ok(&["rm", "-f", "dev", "short", "apidev"]);
    compose_ok(&b, &dir, &["down"]);
    assert_census_clean(&b);
}
