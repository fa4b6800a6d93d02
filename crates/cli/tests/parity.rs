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
    // As docker: a missing image is a usage error (1), an unknown flag 125.
    assert_eq!(code(&b.run(&["run", "--rm"])), 1);
    assert_eq!(code(&b.run(&["run", "--foo", IMAGE])), 125);
}

fn env_of(out: &str) -> std::collections::BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Defect 5: HOME from the user's passwd entry, HOSTNAME, a default PATH
/// and TERM with -t — in run, exec, healthcheck probes and build RUN steps.
#[test]
fn the_process_environment_is_dockers() {
    let b = Berth::new();
    let env = env_of(&b.ok(&["run", "--rm", "--hostname", "h1", IMAGE, "env"]));
    assert_eq!(env["HOME"], "/root");
    assert_eq!(env["HOSTNAME"], "h1");
    assert_eq!(
        env["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert!(!env.contains_key("TERM"));
    let env = env_of(&b.ok(&["run", "--rm", "-u", "app", IMAGE, "env"]));
    assert_eq!(env["HOME"], "/home/app");
    assert_eq!(
        env_of(&b.ok(&["run", "--rm", "-u", "4321", IMAGE, "env"]))["HOME"],
        "/"
    );
    // The user's own HOME wins.
    let env = env_of(&b.ok(&["run", "--rm", "-e", "HOME=/x", IMAGE, "env"]));
    assert_eq!(env["HOME"], "/x");
    let env = env_of(&b.ok(&["run", "--rm", "-t", IMAGE, "env"]));
    assert_eq!(env["TERM"], "xterm");

    // exec: for its own user.
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
    let env = env_of(&b.ok(&["exec", "e", "env"]));
    assert_eq!(env["HOME"], "/root");
    assert_eq!(env["HOSTNAME"].len(), 12);
    assert_eq!(
        env_of(&b.ok(&["exec", "-u", "app", "e", "env"]))["HOME"],
        "/home/app"
    );

    // A healthcheck probe sees the same environment.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "-u",
        "app",
        "--health-cmd",
        "test \"$HOME\" = /home/app && test -n \"$HOSTNAME\" && test -n \"$PATH\"",
        "--health-interval",
        "100ms",
        IMAGE,
        "sleep",
        "100",
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let h = b.ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc"]);
        if h.trim() == "healthy" {
            break;
        }
        assert!(
            h.trim() != "unhealthy" && std::time::Instant::now() < deadline,
            "probe: {h}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // build RUN steps.
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo \"$HOME $PATH\" > /root-env\nUSER app\nRUN echo \"$HOME\" > /tmp/app-env\n"),
    )
    .unwrap();
    b.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "envtest",
        ctx.to_str().unwrap(),
    ]);
    let out = b.ok(&["run", "--rm", "envtest", "cat", "/root-env", "/tmp/app-env"]);
    assert_eq!(
        out,
        "/root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/home/app\n"
    );
}

/// Defect 3: berth's networks are IPv4-only and, as Docker 20.10 does, the
/// container's namespace has IPv6 turned off (`all` and `default`:
/// recorded from dockerd, `lo` has no `::1` either), so `localhost` never
/// resolves to `::1` first because of a link-local address on eth0.
#[test]
fn interfaces_of_ipv4_networks_have_no_ipv6() {
    let b = Berth::new();
    let show = "ip -6 -o addr | wc -l; cat /proc/sys/net/ipv6/conf/all/disable_ipv6 \
                /proc/sys/net/ipv6/conf/default/disable_ipv6";
    let out = b.ok(&["run", "--rm", IMAGE, "sh", "-c", show]);
    assert_eq!(out, "0\n1\n1\n", "default bridge");
    let out = b.ok(&["run", "--rm", "--network", "none", IMAGE, "sh", "-c", show]);
    assert_eq!(out, "0\n1\n1\n", "--network none");
    // ... whose loopback is up, with 127.0.0.1 only (as Docker's).
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "ip -o addr | awk '{print $2, $4}'",
    ]);
    assert_eq!(out, "lo 127.0.0.1/8\n");
    b.ok(&["network", "create", "v4only"]);
    b.ok(&["network", "create", "other"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "v4only",
        IMAGE,
        "sleep",
        "100",
    ]);
    assert_eq!(
        b.ok(&["exec", "c", "sh", "-c", show]),
        "0\n1\n1\n",
        "user network"
    );
    // A network connected later: its interface too.
    b.ok(&["network", "connect", "other", "c"]);
    let out = b.ok(&[
        "exec",
        "c",
        "sh",
        "-c",
        "ip -6 -o addr | wc -l; cat /proc/sys/net/ipv6/conf/eth1/disable_ipv6",
    ]);
    assert_eq!(out, "0\n1\n");
    // The host's own namespace is not the container's business.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "cat",
        "/proc/sys/net/ipv6/conf/all/disable_ipv6",
    ]);
    assert_eq!(
        out,
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").unwrap()
    );
}

/// Docker's process has its primary group among its supplementary groups
/// (recorded from dockerd: `groups=0(root)`, `groups=10(wheel),1000(app)`).
#[test]
fn supplementary_groups_include_the_primary_group() {
    let b = Berth::new();
    assert_eq!(
        b.ok(&["run", "--rm", IMAGE, "id"]),
        "uid=0(root) gid=0(root) groups=0(root)\n"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "-u", "app", IMAGE, "id"]),
        "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app)\n"
    );
}

/// A TCP port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The container recorded from dockerd 20.10 for the port and inspect
/// comparisons: network `app`, volume `vol1`, three kinds of `-p`,
/// `--expose`, an env and a label. Returns (id, host port, first udp port).
fn start_recorded_web(b: &Berth) -> (String, u16, u16) {
    let (p1, p2) = (free_port(), free_port());
    b.ok(&["network", "create", "app"]);
    b.ok(&["volume", "create", "vol1"]);
    let (tcp, udp) = (format!("{p1}:80"), format!("{p2}-{}:9000-9001/udp", p2 + 1));
    let id = b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "-p",
        "127.0.0.1::80",
        "-p",
        &tcp,
        "-p",
        &udp,
        "--expose",
        "443",
        "-e",
        "A=1",
        "--label",
        "l=v",
        "-v",
        "vol1:/data",
        IMAGE,
        "sleep",
        "1000",
    ]);
    (id.trim().to_string(), p1, p2)
}

/// Defects 7 and 13: published and exposed ports in `ps` and `inspect`,
/// shaped as dockerd 20.10 recorded them for the same flags.
#[test]
fn ports_show_in_ps_and_inspect_as_docker_shows_them() {
    let b = Berth::new();
    let (id, p1, p2) = start_recorded_web(&b);
    let id = id.as_str();
    let ports: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "web"]))
            .unwrap();
    let picked = ports["80/tcp"][1]["HostPort"].as_str().unwrap().to_string();
    assert!(picked.parse::<u16>().unwrap() > 0);
    assert_eq!(
        ports,
        serde_json::json!({
            "443/tcp": null,
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": p1.to_string()}, {"HostIp": "127.0.0.1", "HostPort": picked}],
            "9000/udp": [{"HostIp": "0.0.0.0", "HostPort": p2.to_string()}],
            "9001/udp": [{"HostIp": "0.0.0.0", "HostPort": (p2 + 1).to_string()}],
        })
    );
    // Docker's PORTS column (ranges grouped only where host and container
    // ports match, so here the udp pair is two mappings).
    let row = b.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(
        row.trim(),
        format!(
            "443/tcp, 0.0.0.0:{p1}->80/tcp, 127.0.0.1:{picked}->80/tcp, 0.0.0.0:{p2}->9000/udp, 0.0.0.0:{}->9001/udp",
            p2 + 1
        )
    );
    let doc: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", id])).unwrap();
    let c = &doc[0];
    assert_eq!(c["Name"], "/web");
    assert_eq!(
        c["HostConfig"]["PortBindings"]["80/tcp"],
        serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": ""}, {"HostIp": "", "HostPort": p1.to_string()}])
    );
    assert_eq!(
        c["Config"]["ExposedPorts"],
        serde_json::json!({"443/tcp": {}, "80/tcp": {}, "9000/udp": {}, "9001/udp": {}})
    );
    let net = &c["NetworkSettings"]["Networks"]["app"];
    assert_eq!(net["Aliases"], serde_json::json!([&id[..12]]));
    assert_eq!(net["IPPrefixLen"], 16);
    assert!(net["IPAddress"].as_str().unwrap().ends_with(".2"), "{net}");
    assert!(
        net["MacAddress"].as_str().unwrap().starts_with("02:42:"),
        "{net}"
    );
    assert_eq!(net["NetworkID"].as_str().unwrap().len(), 64);
    // Top-level addresses are the default bridge's only.
    assert_eq!(c["NetworkSettings"]["IPAddress"], "");
    // A stopped container: no ports, endpoints empty, the network's id kept.
    b.ok(&["run", "--name", "ex", IMAGE, "true"]);
    let ex: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .NetworkSettings}}", "ex"])).unwrap();
    assert_eq!(ex["Ports"], serde_json::json!({}));
    assert_eq!(ex["Networks"]["bridge"]["IPAddress"], "");
    assert_eq!(
        ex["Networks"]["bridge"]["NetworkID"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        b.ok(&["ps", "-a", "--filter", "name=ex", "--format", "{{.Ports}}"]),
        "\n"
    );
}

/// Defect 12: a published host port is held while its container runs: a
/// second container gets Docker's "port is already allocated" (and stays
/// created), a host process cannot bind it; a port a host process holds is
/// refused; stopping the container frees it.
#[test]
fn published_ports_are_reserved() {
    let b = Berth::new();
    let port = free_port();
    let spec = format!("127.0.0.1:{port}:80");
    b.ok(&[
        "run", "-d", "--name", "first", "-p", &spec, IMAGE, "sleep", "1000",
    ]);
    let out = b.run(&[
        "run", "-d", "--name", "second", "-p", &spec, IMAGE, "sleep", "1000",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains(&format!(
            "driver failed programming external connectivity on endpoint second: Bind for 127.0.0.1:{port} failed: port is already allocated"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "second"]),
        "created\n"
    );
    // A wildcard binding of the same port collides too.
    let out = b.run(&["run", "--rm", "-p", &format!("{port}:80"), IMAGE, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    // A host process cannot take it (even with SO_REUSEADDR, as servers set).
    let taken = std::net::TcpListener::bind(("127.0.0.1", port));
    assert!(taken.is_err(), "a host process bound a published port");
    b.ok(&["stop", "-t", "0", "first"]);
    let host = std::net::TcpListener::bind(("127.0.0.1", port)).expect("freed at stop");
    // Now the host holds it: the container's start is refused.
    let out = b.run(&["start", "second"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "listen tcp4 127.0.0.1:{port}: bind: address already in use"
        )),
        "{}",
        stderr(&out)
    );
    drop(host);
    b.ok(&["start", "second"]);
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
    b.ok(&["rm", "-f", "second", "first"]);
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("freed at rm -f");
}

fn names(out: &str) -> Vec<&str> {
    let mut v: Vec<&str> = out.lines().collect();
    v.sort_unstable();
    v
}

/// Defect 8: filters with dockerd 20.10's semantics (values of one key are
/// alternatives and regular expressions for name/id/status, label filters
/// must all hold, `before`/`since`, `ancestor` includes images built on
/// it), for `ps`, `images`, `network ls`, `volume ls`.
#[test]
fn filters_follow_dockers_semantics() {
    let b = Berth::new();
    let ps = |args: &[&str]| {
        let mut v = vec!["ps", "--format", "{{.Names}}"];
        v.extend_from_slice(args);
        b.ok(&v)
    };
    b.ok(&["network", "create", "front"]);
    b.ok(&["volume", "create", "data"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web-1",
        "--label",
        "tier=web",
        "--label",
        "x=1",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "100",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web-2",
        "--label",
        "tier=web",
        "-v",
        "data:/data",
        "--expose",
        "7000",
        IMAGE,
        "sleep",
        "100",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "-p",
        "127.0.0.1::5432",
        IMAGE,
        "sleep",
        "100",
    ]);
    let out = b.run(&["run", "--name", "job", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3);
    assert_eq!(names(&ps(&["--filter", "name=^web-"])), ["web-1", "web-2"]);
    assert_eq!(
        names(&ps(&["--filter", "name=^web-1$", "--filter", "name=db"])),
        ["db", "web-1"]
    );
    assert_eq!(
        names(&ps(&["--filter", "name=/db"])),
        ["db"],
        "the name with its /"
    );
    assert_eq!(
        names(&ps(&["--filter", "label=tier=web", "--filter", "label=x"])),
        ["web-1"]
    );
    assert_eq!(names(&ps(&["--filter", "network=front"])), ["web-1"]);
    assert_eq!(names(&ps(&["--filter", "volume=data"])), ["web-2"]);
    assert_eq!(names(&ps(&["--filter", "volume=/data"])), ["web-2"]);
    assert_eq!(names(&ps(&["--filter", "expose=7000"])), ["web-2"]);
    assert_eq!(names(&ps(&["--filter", "expose=5000-6000/tcp"])), ["db"]);
    assert_eq!(
        names(&ps(&["--filter", "health=none", "--filter", "name=db"])),
        ["db"]
    );
    // status implies -a; exited does not (as Docker).
    assert_eq!(names(&ps(&["--filter", "status=exited"])), ["job"]);
    assert_eq!(ps(&["--filter", "exited=3"]), "");
    assert_eq!(names(&ps(&["-a", "--filter", "exited=3"])), ["job"]);
    assert_eq!(ps(&["-a", "--filter", "exited=0"]), "");
    // Newest first: before/since name a container.
    assert_eq!(names(&ps(&["--filter", "before=db"])), ["web-1", "web-2"]);
    assert_eq!(
        names(&ps(&["-a", "--filter", "since=web-2"])),
        ["db", "job"]
    );
    assert_eq!(ps(&["-n", "1"]), "job\n");
    // ancestor: the image and images built on it.
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN touch /child\n"),
    )
    .unwrap();
    b.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "child:1",
        ctx.to_str().unwrap(),
    ]);
    b.ok(&["run", "-d", "--name", "kid", "child:1", "sleep", "100"]);
    assert_eq!(names(&ps(&["--filter", "ancestor=child:1"])), ["kid"]);
    assert!(names(&ps(&["--filter", &format!("ancestor={IMAGE}")])).contains(&"kid"));
    // Docker's errors, status 1.
    for (f, msg) in [
        ("foo=bar", "Invalid filter 'foo'"),
        ("status=exit", "Invalid filter 'status=exit'"),
        ("health=sick", "Unrecognised filter value for health: sick"),
    ] {
        let out = b.run(&["ps", "--filter", f]);
        assert_eq!(code(&out), 1, "{f}");
        assert!(stderr(&out).contains(msg), "{f}: {}", stderr(&out));
    }

    // images.
    let img = |args: &[&str]| {
        let mut v = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        v.extend_from_slice(args);
        b.ok(&v)
    };
    b.ok(&["tag", IMAGE, "me/tool:2"]);
    assert_eq!(img(&["--filter", "reference=child"]), "child:1\n");
    assert_eq!(img(&["--filter", "reference=*/tool"]), "me/tool:2\n");
    assert_eq!(
        img(&["--filter", "reference=*"]).lines().count(),
        2,
        "* stops at /: bb, child"
    );
    assert_eq!(img(&["--filter", "since=bb:test"]), "child:1\n");
    assert_eq!(img(&["--filter", "dangling=true"]), "");
    assert_eq!(code(&b.run(&["images", "--filter", "size=1"])), 1);

    // network ls and volume ls.
    let nets = b.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "type=custom",
    ]);
    assert_eq!(nets, "front\n");
    let nets = b.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "name=^br",
    ]);
    assert_eq!(nets, "bridge\n");
    b.ok(&["network", "create", "idle"]);
    let nets = b.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "dangling=true",
    ]);
    assert_eq!(nets, "idle\n");
    b.ok(&["volume", "create", "spare"]);
    let vols = b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(vols, "spare\n");
    let vols = b.ok(&["volume", "ls", "-q", "--filter", "name=^d"]);
    assert_eq!(vols, "data\n");
}

/// Defect 9: `version`, `info` (`system info`) with Docker's fields and
/// `--format`, and Docker's management-command spellings.
#[test]
fn version_info_and_management_aliases() {
    let b = Berth::new();
    let v = b.ok(&["version"]);
    assert!(v.starts_with("Client:\n Version:"), "{v}");
    assert!(v.contains("\nServer:\n Engine:\n  Version:"), "{v}");
    assert_eq!(
        b.ok(&["version", "--format", "{{.Client.Version}}"]),
        b.ok(&["version", "--format", "{{.Server.Version}}"])
    );
    let api = b.ok(&[
        "version",
        "-f",
        "{{.Server.ApiVersion}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(api, "1.44 1.24\n");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        IMAGE,
        "sleep",
        "100",
    ]);
    b.ok(&["create", "--name", "down", IMAGE]);
    let info: serde_json::Value =
        serde_json::from_str(&b.ok(&["info", "--format", "json"])).unwrap();
    assert_eq!(info["Containers"], 2);
    assert_eq!(info["ContainersRunning"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    assert_eq!(info["Images"], 1);
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["DockerRootDir"], b.root.display().to_string());
    assert_eq!(
        info["NCPU"].as_u64().unwrap() as usize,
        std::thread::available_parallelism().unwrap().get()
    );
    let text = b.ok(&["system", "info"]);
    for l in [
        " Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n",
        " Storage Driver: overlay2\n",
        " Cgroup Driver: cgroupfs\n",
    ] {
        assert!(text.contains(l), "{l:?} in {text}");
    }
    assert_eq!(b.ok(&["info", "-f", "{{.Containers}}"]), "2\n");
    // Management commands and their aliases, as docker spells them.
    let ps = b.ok(&["ps", "-a", "-q"]);
    for alias in [
        &["container", "ls"][..],
        &["container", "list"],
        &["container", "ps"],
    ] {
        let mut args = alias.to_vec();
        args.extend(["-a", "-q"]);
        assert_eq!(b.ok(&args), ps, "{alias:?}");
    }
    let images = b.ok(&["images", "-q"]);
    for alias in ["ls", "list", "images"] {
        assert_eq!(b.ok(&["image", alias, "-q"]), images, "image {alias}");
    }
    b.ok(&["container", "port", "up"]);
    b.ok(&["container", "stats", "--no-stream", "up"]);
    b.ok(&["network", "list"]);
    b.ok(&["volume", "list"]);
    b.ok(&["tag", IMAGE, "x:1"]);
    b.ok(&["image", "remove", "x:1"]);
    b.ok(&["tag", IMAGE, "x:2"]);
    b.ok(&["image", "rmi", "x:2"]);
    b.ok(&["container", "remove", "down"]);
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\n")).unwrap();
    b.ok(&["image", "build", "-q", "-t", "y:1", ctx.to_str().unwrap()]);
    b.ok(&["builder", "build", "-q", "-t", "y:2", ctx.to_str().unwrap()]);
}

/// Defect 10: the directories COPY and ADD make or touch, as BuildKit
/// (dockerd 20.10, DOCKER_BUILDKIT=1) laid out the same Dockerfile: a
/// created destination is 0755 whatever the context's mode (a 0700
/// context copied with `COPY . /app/` stays readable by a non-root USER),
/// `--chown` owns it, `--chmod` does not apply to it, directories below
/// keep their modes, an existing destination (or parent, like /tmp) keeps
/// its owner and mode, a symlink named as a source is followed.
#[test]
fn copy_makes_directories_as_buildkit_does() {
    use std::os::unix::fs::PermissionsExt;
    let b = Berth::new();
    let ctx = b.path().join("ctx");
    std::fs::create_dir_all(ctx.join("sub/deep")).unwrap();
    std::fs::write(ctx.join("a.txt"), "a\n").unwrap();
    std::fs::write(ctx.join("sub/b.txt"), "b\n").unwrap();
    std::fs::write(ctx.join("sub/deep/c.txt"), "c\n").unwrap();
    std::os::unix::fs::symlink("a.txt", ctx.join("link")).unwrap();
    for (p, m) in [
        ("", 0o700),
        ("sub", 0o750),
        ("sub/deep", 0o711),
        ("a.txt", 0o600),
        ("sub/b.txt", 0o644),
        ("sub/deep/c.txt", 0o644),
    ] {
        std::fs::set_permissions(ctx.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    }
    let paths = "/app /app/a.txt /app/sub /app/sub/deep /app/link /newdir /newdir/b.txt /newdir/deep \
                 /new /new/nested /new/nested/a.txt /exist /exist/a.txt /exist2 /exist2/b.txt /owned \
                 /owned/b.txt /owned/deep /modes /modes/a.txt /glob /glob/a.txt /links /links/link \
                 /trail /trail/deep /added /wd /wd/deeper /tmp";
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN mkdir -m 700 /exist && mkdir -m 700 /exist2\nCOPY . /app/\nCOPY sub /newdir\n\
             COPY a.txt /new/nested/\nCOPY a.txt /exist/\nCOPY sub /exist2\nCOPY --chown=1000:1000 sub /owned\n\
             COPY --chmod=640 a.txt /modes/\nCOPY *.txt /glob/\nCOPY link /links/\nCOPY sub/ /trail\n\
             ADD sub /added\nCOPY a.txt /tmp/\nWORKDIR /wd/deeper\n\
             RUN stat -c '%a %u:%g %n' {paths} > /report\n"
        ),
    )
    .unwrap();
    b.ok(&[
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        "copies",
        ctx.to_str().unwrap(),
    ]);
    let report = b.ok(&["run", "--rm", "copies", "cat", "/report"]);
    // Recorded from BuildKit (dockerd 20.10.24) for this Dockerfile; /tmp
    // is the image's own 1777.
    let buildkit = "755 0:0 /app\n600 0:0 /app/a.txt\n750 0:0 /app/sub\n711 0:0 /app/sub/deep\n\
                    777 0:0 /app/link\n755 0:0 /newdir\n644 0:0 /newdir/b.txt\n711 0:0 /newdir/deep\n\
                    755 0:0 /new\n755 0:0 /new/nested\n600 0:0 /new/nested/a.txt\n700 0:0 /exist\n\
                    600 0:0 /exist/a.txt\n700 0:0 /exist2\n644 0:0 /exist2/b.txt\n755 1000:1000 /owned\n\
                    644 1000:1000 /owned/b.txt\n711 1000:1000 /owned/deep\n755 0:0 /modes\n\
                    640 0:0 /modes/a.txt\n755 0:0 /glob\n600 0:0 /glob/a.txt\n755 0:0 /links\n\
                    600 0:0 /links/link\n755 0:0 /trail\n711 0:0 /trail/deep\n755 0:0 /added\n\
                    755 0:0 /wd\n755 0:0 /wd/deeper\n1777 0:0 /tmp\n";
    assert_eq!(report, buildkit);
    // A non-root user reads the app copied from a 0700 context.
    std::fs::write(ctx.join("readme"), "r\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY . /app/\nUSER app\nRUN cat /app/readme\n"),
    )
    .unwrap();
    b.ok(&["build", "-q", "--network", "none", ctx.to_str().unwrap()]);
}

/// A terminal for a berth command: (master, slave) of a new pty of the given
/// size, and a reader collecting what the master shows.
struct Term {
    master: std::os::fd::OwnedFd,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Term {
    fn spawn(b: &Berth, args: &[&str], rows: u16, cols: u16) -> (Term, std::process::Child) {
        use std::os::fd::AsFd;
        let ws = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let child = b
            .cmd()
            .args(args)
            .stdin(pty.slave.try_clone().unwrap())
            .stdout(pty.slave.try_clone().unwrap())
            .stderr(pty.slave)
            .spawn()
            .unwrap();
        let reader = std::fs::File::from(pty.master.try_clone().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let _ = pty.master.as_fd();
        (
            Term {
                master: pty.master,
                seen,
            },
            child,
        )
    }

    fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self.seen.lock().unwrap().contains(needle) {
            assert!(
                std::time::Instant::now() < deadline,
                "{needle:?} never shown: {:?}",
                self.seen.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The user resizes the window: the terminal's size changes and its
    /// foreground process (the berth CLI) gets SIGWINCH.
    fn resize(&self, cli: &std::process::Child, rows: u16, cols: u16) {
        use std::os::fd::AsFd;
        sys::tty::set_winsize(self.master.as_fd(), sys::tty::WinSize { rows, cols }).unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(cli.id() as i32),
            nix::sys::signal::Signal::SIGWINCH,
        )
        .unwrap();
    }
}

/// Defect 11: `run -t` gives a pty of the container's own devpts
/// (`/dev/pts/0`, also its /dev/console, as runc), sized like the caller's
/// terminal before the command starts; `run -it` and `attach` carry window
/// size changes to it.
#[test]
fn a_container_terminal_is_its_own_and_follows_the_window() {
    let b = Berth::new();
    let out = b.ok(&[
        "run",
        "--rm",
        "-t",
        IMAGE,
        "sh",
        "-c",
        "tty; stat -c %t:%T /dev/console /dev/pts/0",
    ]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "/dev/pts/0", "{out}");
    assert_eq!(lines[1], lines[2], "/dev/console is the pty: {out}");
    // run -it: the size from the start, then a resize.
    let (term, mut cli) = Term::spawn(
        &b,
        &[
            "run",
            "--rm",
            "-it",
            IMAGE,
            "sh",
            "-c",
            "stty size; read x; stty size",
        ],
        12,
        34,
    );
    term.wait_for("12 34");
    term.resize(&cli, 23, 45);
    std::thread::sleep(std::time::Duration::from_millis(300));
    nix::unistd::write(&term.master, b"\n").unwrap();
    term.wait_for("23 45");
    assert!(cli.wait().unwrap().success());
    // attach to a detached -it container: its size follows the attaching
    // terminal.
    b.ok(&[
        "run",
        "-d",
        "-it",
        "--name",
        "a",
        IMAGE,
        "sh",
        "-c",
        "while :; do stty size; sleep 0.1; done",
    ]);
    let (term, mut cli) = Term::spawn(&b, &["attach", "a"], 15, 50);
    term.wait_for("15 50");
    term.resize(&cli, 25, 70);
    term.wait_for("25 70");
    b.ok(&["rm", "-f", "a"]);
    let _ = cli.wait();
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Keys missing from, or extra in, `mine` compared with `docker`, and
/// values of another JSON type; maps keyed by ids are compared by shape.
fn shape_diff(
    docker: &serde_json::Value,
    mine: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    match (docker, mine) {
        (serde_json::Value::Object(d), serde_json::Value::Object(m)) => {
            if path.ends_with(".Labels")
                || path.ends_with(".Containers")
                || path.ends_with(".Options")
            {
                return;
            }
            for (k, v) in d {
                match m.get(k) {
                    None => out.push(format!("missing {path}.{k}")),
                    Some(w) => shape_diff(v, w, &format!("{path}.{k}"), out),
                }
            }
            for k in m.keys().filter(|k| !d.contains_key(*k)) {
                out.push(format!("extra {path}.{k}"));
            }
        }
        _ if json_type(docker) != json_type(mine) => out.push(format!(
            "{path}: docker {} berth {}",
            json_type(docker),
            json_type(mine)
        )),
        _ => {}
    }
}

/// Defect 7: container, image, network and volume `inspect` carry
/// Docker's keys, types and nesting — checked against the documents
/// dockerd 20.10 gave for the same commands (recorded in
/// tests/parity_fixtures/docker-20.10-inspect.json).
#[test]
fn inspect_documents_have_dockers_shape() {
    let b = Berth::new();
    let recorded: serde_json::Value =
        serde_json::from_str(include_str!("parity_fixtures/docker-20.10-inspect.json")).unwrap();
    start_recorded_web(&b);
    b.ok(&["run", "--name", "ex", IMAGE, "true"]);
    let doc = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&b.ok(args)).unwrap()[0].clone()
    };
    let mut problems = Vec::new();
    for (key, args) in [
        ("docker inspect web", &["inspect", "web"][..]),
        ("docker inspect ex", &["inspect", "ex"]),
        ("docker image inspect bb", &["image", "inspect", IMAGE]),
        ("docker network inspect app", &["network", "inspect", "app"]),
        (
            "docker network inspect bridge",
            &["network", "inspect", "bridge"],
        ),
        ("docker volume inspect vol1", &["volume", "inspect", "vol1"]),
    ] {
        let mut out = Vec::new();
        shape_diff(&recorded[key], &doc(args), "", &mut out);
        problems.extend(out.into_iter().map(|p| format!("{key}: {p}")));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The values scripts read most.
    let web = doc(&["inspect", "web"]);
    assert_eq!(web["Name"], "/web");
    assert_eq!(web["Config"]["Env"], serde_json::json!(["A=1"]));
    let ex = doc(&["inspect", "ex"]);
    assert_eq!(ex["Config"]["Env"], serde_json::Value::Null);
    let net = doc(&["network", "inspect", "app"]);
    let entry = net["Containers"][web["Id"].as_str().unwrap()].clone();
    assert_eq!(entry["Name"], "web");
    assert!(
        entry["IPv4Address"].as_str().unwrap().ends_with("/16"),
        "{entry}"
    );
}

/// Found by the differential suite: a network made right after another was
/// removed gets the same subnet, and the removed network's DNS responder
/// held the gateway's port 53 until it noticed, so the new network's names
/// did not resolve. `network rm` now stops its responder and waits.
#[test]
fn names_resolve_on_a_network_made_after_one_was_removed() {
    let b = Berth::new();
    for round in 0..3 {
        b.ok(&["network", "create", "again"]);
        let id = b.ok(&[
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "again",
            IMAGE,
            "sleep",
            "100",
        ]);
        let out = b.run(&[
            "run",
            "--rm",
            "--network",
            "again",
            IMAGE,
            "sh",
            "-c",
            "ping -c1 -W2 srv >/dev/null && echo reachable",
        ]);
        assert_eq!(
            stdout(&out),
            "reachable\n",
            "round {round}: {}",
            stderr(&out)
        );
        b.ok(&["rm", "-f", "srv"]);
        b.ok(&["network", "rm", "again"]);
        // Nothing of the network's is left: its responder is gone too.
        let left = leftovers(&b, &[id.trim().to_string()]);
        assert!(left.is_empty(), "round {round}: {}", left.join("\n"));
    }
}

/// Output into a pipe whose reader is gone (`berth network inspect bridge |
/// head -1`) ends the command quietly with 141, as SIGPIPE ends docker's
/// CLI: no panic message.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let b = Berth::new();
    let mut child = b
        .cmd()
        .args(["network", "inspect", "bridge", "bridge", "bridge"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before berth writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
