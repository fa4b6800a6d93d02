//! `berth serve` (issue 19, root): the Docker Engine API driven by real
//! clients — Debian's docker CLI (20.10, API 1.41) and plain HTTP over the
//! socket — answering what berth's own CLI answers.
#[path = "support/api_server.rs"]
mod api_server;
mod common;

use api_server::*;
use common::*;

#[test]
fn the_docker_cli_lists_and_inspects_what_berth_runs() {
    let b = Berth::new();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "-p",
        "127.0.0.1:18765:80",
        IMAGE,
        "sleep",
        "300",
    ]);
    b.ok(&["create", "--name", "idle", IMAGE]);
    let srv = Server::start(&b);

    // version and info: the server half is berth's.
    let v = srv.docker_ok(&[
        "version",
        "--format",
        "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
    ]);
    assert_eq!(
        v.trim(),
        format!(
            "{} 1.44 1.24",
            b.ok(&["version", "--format", "{{.Server.Version}}"]).trim()
        )
    );
    let info = srv.docker_ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.Images}}",
    ]);
    assert_eq!(info.trim(), "2 1 1");

    // ps, with and without -a, with filters in the API's encoding.
    let fmt = "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.Status}} {{.Ports}} {{.Labels}}";
    for args in [
        vec!["ps", "--format", fmt],
        vec!["ps", "-a", "--format", fmt],
        vec!["ps", "-a", "--no-trunc", "-q"],
        vec!["ps", "-a", "--filter", "label=tier=front", "-q"],
        vec![
            "ps",
            "-a",
            "--filter",
            "status=created",
            "--format",
            "{{.Names}}",
        ],
        vec!["ps", "-n", "1", "--format", "{{.Names}}"],
    ] {
        assert_eq!(srv.docker_ok(&args), b.ok(&args), "{args:?}");
    }
    // A bad filter: dockerd's status (400) and words.
    let o = srv.docker(&["ps", "--filter", "nope=1"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Invalid filter 'nope'"),
        "{}",
        stderr(&o)
    );

    // inspect: the same document berth's CLI prints.
    for f in [
        "{{.Id}} {{.Name}} {{.State.Status}} {{.State.Running}} {{.Config.Image}}",
        "{{json .Config.Labels}} {{json .HostConfig.PortBindings}} {{.NetworkSettings.IPAddress}}",
    ] {
        assert_eq!(
            srv.docker_ok(&["inspect", "-f", f, "web"]),
            b.ok(&["inspect", "-f", f, "web"]),
            "{f}"
        );
    }
    assert_eq!(
        srv.docker_ok(&["container", "inspect", "-f", "{{.State.Status}}", "idle"])
            .trim(),
        "created"
    );
    let o = srv.docker(&["inspect", "nosuch"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("No such object: nosuch"),
        "{}",
        stderr(&o)
    );

    // images and image inspect.
    let fmt = "{{.Repository}} {{.Tag}} {{.ID}}";
    assert_eq!(
        srv.docker_ok(&["images", "--format", fmt]),
        b.ok(&["images", "--format", fmt])
    );
    assert_eq!(
        srv.docker_ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", IMAGE]),
        b.ok(&["image", "inspect", "-f", "{{.Id}} {{.Os}}", IMAGE])
    );

    // The wire: ping headers, version prefixes, errors as dockerd's.
    let (status, head, body) = srv.http("GET", "/_ping");
    assert_eq!((status, body.as_str()), (200, "OK"));
    let head = head.to_ascii_lowercase();
    for h in [
        "api-version: 1.44",
        "ostype: linux",
        "docker-experimental: false",
    ] {
        assert!(head.contains(h), "{head}");
    }
    assert_eq!(srv.http("HEAD", "/_ping").0, 200);
    assert_eq!(srv.http("GET", "/v1.24/containers/json").0, 200);
    let (status, _, body) = srv.http("GET", "/v1.99/version");
    assert_eq!(status, 400);
    assert!(
        body.contains("client version 1.99 is too new. Maximum supported API version is 1.44"),
        "{body}"
    );
    let (status, _, body) = srv.http("GET", "/v1.12/version");
    assert_eq!(status, 400);
    assert!(body.contains("is too old"), "{body}");
    let (status, _, body) = srv.http("GET", "/v1.41/containers/nosuch/json");
    assert_eq!(status, 404);
    assert_eq!(body, r#"{"message":"No such container: nosuch"}"#);
    let (status, _, body) = srv.http("GET", "/nowhere");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"page not found"}"#)
    );
    let (status, _, _) = srv.http("GET", "/containers/json?filters=notjson");
    assert_eq!(status, 400);

    // The socket is root's and its group's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&srv.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);

    // Stopping the server stops no container, and takes its socket away.
    let socket = srv.socket.clone();
    assert!(srv.stop().success());
    assert!(!socket.exists());
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Running}}", "web"]).trim(),
        "true"
    );
    b.ok(&["rm", "-f", "web", "idle"]);
}

#[test]
fn the_docker_cli_runs_stops_logs_and_removes_containers() {
    let b = Berth::new();
    let srv = Server::start(&b);

    // run -d: create and start through the API; berth sees what it made.
    let id = srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "-l",
        "x=y",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 300",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.Id}} {{.State.Status}} {{index .Config.Labels \"x\"}}",
            "talk"
        ])
        .trim(),
        format!("{} running y", id.trim())
    );
    // logs: demultiplexed by the docker CLI into its stdout and stderr.
    let mut o = srv.docker(&["logs", "talk"]);
    for _ in 0..50 {
        if stdout(&o) == "out\n" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        o = srv.docker(&["logs", "talk"]);
    }
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(srv.docker_ok(&["logs", "--tail", "1", "talk"]), "");
    // start of a running container: nothing to do (304), no error.
    srv.docker_ok(&["start", "talk"]);
    // stop, start, restart, kill, wait, rm.
    srv.docker_ok(&["stop", "-t", "1", "talk"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "talk"]).trim(),
        "exited"
    );
    srv.docker_ok(&["start", "talk"]);
    srv.docker_ok(&["restart", "-t", "0", "talk"]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.RestartCount}}",
            "talk"
        ])
        .trim()
        .split(' ')
        .next(),
        Some("true")
    );
    srv.docker_ok(&["kill", "talk"]);
    assert_eq!(srv.docker_ok(&["wait", "talk"]).trim(), "137");
    let o = srv.docker(&["kill", "talk"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    srv.docker_ok(&["rm", "talk"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");

    // logs -f follows until the container ends.
    srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "count",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]);
    assert_eq!(srv.docker_ok(&["logs", "-f", "count"]), "1\n2\n3\n");
    srv.docker_ok(&["rm", "-f", "count"]);

    // The same flags through the API and through berth's CLI make the same
    // container.
    let flags = [
        "--name",
        "NAME",
        "-e",
        "A=1",
        "-p",
        "127.0.0.1:18766:80",
        "--restart",
        "on-failure:3",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "-v",
        "apivol:/data",
        "--cap-drop",
        "NET_RAW",
        "--hostname",
        "h1",
        "-w",
        "/tmp",
        "--read-only",
        "--tmpfs",
        "/run",
        "--ulimit",
        "nofile=100:200",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        IMAGE,
        "sleep",
        "300",
    ];
    let with = |name: &str| -> Vec<String> {
        flags
            .iter()
            .map(|f| {
                if *f == "NAME" {
                    name.to_string()
                } else {
                    f.to_string()
                }
            })
            .collect()
    };
    let mut api_args = vec!["create".to_string()];
    api_args.extend(with("viaapi"));
    srv.docker_ok(&api_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut cli_args = vec!["create".to_string()];
    cli_args.extend(with("viacli"));
    for a in cli_args.iter_mut() {
        if a == "127.0.0.1:18766:80" {
            *a = "127.0.0.1:18767:80".into();
        }
    }
    b.ok(&cli_args.iter().map(String::as_str).collect::<Vec<_>>());
    let f = "{{json .Config.Env}} {{.Config.Hostname}} {{.Config.WorkingDir}} {{json .Config.Cmd}} {{json .Config.Healthcheck}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.CapDrop}} {{json .HostConfig.Tmpfs}} {{json .HostConfig.Ulimits}} {{json .HostConfig.Binds}} {{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}";
    // (A newer docker CLI sends capabilities as CAP_NET_RAW; dockerd keeps
    // what the client sent, and so does berth.)
    assert_eq!(
        b.ok(&["inspect", "-f", f, "viaapi"])
            .replace("CAP_NET_RAW", "NET_RAW"),
        b.ok(&["inspect", "-f", f, "viacli"])
    );
    let ports = "{{range $p, $b := .HostConfig.PortBindings}}{{$p}} {{(index $b 0).HostIp}}{{end}}";
    assert_eq!(
        b.ok(&["inspect", "-f", ports, "viaapi"]),
        b.ok(&["inspect", "-f", ports, "viacli"])
    );
    // Bad input: dockerd's statuses, nothing made.
    let o = srv.docker(&["create", "--name", "viaapi", IMAGE]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    let (status, _, body) = srv.http("POST", "/containers/create");
    assert_eq!(status, 400, "{body}");
    b.ok(&["rm", "-f", "viaapi", "viacli"]);
    b.ok(&["volume", "rm", "apivol"]);
    assert!(srv.stop().success());
}

#[test]
fn the_docker_cli_manages_networks_and_volumes() {
    let b = Berth::new();
    let srv = Server::start(&b);
    // Networks: create with a subnet and labels, list, inspect, connect a
    // running container, find it by name from another, remove.
    let id = srv.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "10.254.77.0/24",
        "--label",
        "k=v",
        "apinet",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let fmt = "{{.Name}} {{.Driver}} {{.Labels}}";
    assert_eq!(
        srv.docker_ok(&["network", "ls", "--filter", "label=k=v", "--format", fmt]),
        b.ok(&["network", "ls", "--filter", "label=k=v", "--format", fmt])
    );
    let f = "{{.Name}} {{(index .IPAM.Config 0).Subnet}} {{.Internal}}";
    assert_eq!(
        srv.docker_ok(&["network", "inspect", "-f", f, "apinet"]),
        b.ok(&["network", "inspect", "-f", f, "apinet"])
    );
    // host and none are listed, inspected and kept as dockerd keeps them.
    let all = "{{.ID}} {{.Name}} {{.Driver}} {{.Scope}}";
    let listed = srv.docker_ok(&["network", "ls", "--filter", "type=builtin", "--format", all]);
    assert_eq!(
        listed,
        b.ok(&["network", "ls", "--filter", "type=builtin", "--format", all])
    );
    let names: Vec<&str> = listed
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(names, ["bridge", "host", "none"], "{listed}");
    let f = "{{.Id}} {{.Driver}} {{len .IPAM.Config}}";
    assert_eq!(
        srv.docker_ok(&["network", "inspect", "-f", f, "host", "none"]),
        b.ok(&["network", "inspect", "-f", f, "host", "none"])
    );
    let o = srv.docker(&["network", "rm", "none"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("none is a pre-defined network and cannot be removed"),
        "{}",
        stderr(&o)
    );
    srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "srv1",
        "--network",
        "apinet",
        "--network-alias",
        "web",
        IMAGE,
        "sleep",
        "300",
    ]);
    srv.docker_ok(&["run", "-d", "--name", "cli1", IMAGE, "sleep", "300"]);
    srv.docker_ok(&["network", "connect", "apinet", "cli1"]);
    let (out, _) = (
        b.ok(&[
            "exec",
            "cli1",
            "sh",
            "-c",
            "ping -c1 -W2 web >/dev/null && echo reached",
        ]),
        (),
    );
    assert_eq!(out.trim(), "reached");
    srv.docker_ok(&["network", "disconnect", "apinet", "cli1"]);
    let o = srv.docker(&["network", "rm", "apinet"]);
    assert_ne!(code(&o), 0, "a network in use is kept");
    srv.docker_ok(&["rm", "-f", "srv1", "cli1"]);
    srv.docker_ok(&["network", "rm", "apinet"]);
    assert!(!b.ok(&["network", "ls"]).contains("apinet"));
    // Volumes: create, list, inspect, use, remove.
    srv.docker_ok(&["volume", "create", "--label", "k=v", "apivol"]);
    assert_eq!(
        srv.docker_ok(&[
            "volume",
            "ls",
            "--filter",
            "label=k=v",
            "--format",
            "{{.Name}} {{.Driver}}"
        ]),
        "apivol local\n"
    );
    assert_eq!(
        srv.docker_ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Mountpoint}}",
            "apivol"
        ]),
        b.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Mountpoint}}",
            "apivol"
        ])
    );
    srv.docker_ok(&[
        "run",
        "--name",
        "w1",
        "-d",
        "-v",
        "apivol:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    srv.docker_ok(&["wait", "w1"]);
    srv.docker_ok(&["rm", "w1"]);
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "apivol:/data", IMAGE, "cat", "/data/f"]),
        "kept\n"
    );
    srv.docker_ok(&["volume", "rm", "apivol"]);
    let o = srv.docker(&["volume", "inspect", "apivol"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("No such volume"), "{}", stderr(&o));
    assert!(srv.stop().success());
}

#[test]
fn the_docker_cli_renames_pauses_tags_and_removes_images() {
    let b = Berth::new();
    let srv = Server::start(&b);
    srv.docker_ok(&["run", "-d", "--name", "first", IMAGE, "sleep", "300"]);
    // The server's listing (a view it keeps between requests) follows
    // each change at once.
    let ps = || srv.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps().starts_with("first Up"), "{}", ps());
    srv.docker_ok(&["rename", "first", "second"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Name}}", "second"]).trim(),
        "/second"
    );
    assert!(ps().starts_with("second Up"), "{}", ps());
    srv.docker_ok(&["pause", "second"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "second"])
            .trim(),
        "paused"
    );
    assert!(ps().trim_end().ends_with("(Paused)"), "{}", ps());
    srv.docker_ok(&["unpause", "second"]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "second"])
            .trim(),
        "running"
    );
    assert!(!ps().contains("Paused"), "{}", ps());
    srv.docker_ok(&["rm", "-f", "second"]);
    // Images: tag, history, remove (an untag, then the delete).
    srv.docker_ok(&["tag", IMAGE, "example.test/app:v2"]);
    assert!(b
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains("example.test/app:v2"));
    // The API names tags as dockerd does (familiar: `bb:test`, not
    // `docker.io/library/bb:test`), in the list and the history.
    let (_, _, list) = srv.http("GET", "/images/json");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let mut tags: Vec<&str> = list[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    tags.sort();
    assert_eq!(tags, ["bb:test", "example.test/app:v2"], "{list}");
    let (_, _, history) = srv.http("GET", "/images/bb:test/history");
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert!(
        history[0]["Tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "bb:test")),
        "{history}"
    );
    let h = srv.docker_ok(&[
        "history",
        "--format",
        "{{.ID}} {{.CreatedBy}}",
        "example.test/app:v2",
    ]);
    assert!(h.lines().count() >= 1, "{h}");
    let out = srv.docker_ok(&["rmi", "example.test/app:v2"]);
    assert_eq!(out.trim(), "Untagged: example.test/app:v2");
    let o = srv.docker(&["rmi", "example.test/app:v2"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("No such image"), "{}", stderr(&o));
    let (status, _, _) = srv.http("POST", "/containers/nosuch/attachx");
    assert_eq!(status, 404);
    // Not a swarm: dockerd's 503.
    let (status, _, body) = srv.http("GET", "/v1.41/swarm");
    assert_eq!(status, 503);
    assert!(body.contains("not a swarm manager"), "{body}");
    for (method, path) in [
        ("GET", "/v1.41/secrets"),
        ("GET", "/v1.41/configs/x"),
        ("GET", "/v1.41/tasks"),
        ("DELETE", "/v1.41/services/x"),
        ("GET", "/v1.41/swarm/unlockkey"),
    ] {
        let (status, _, body) = srv.http(method, path);
        assert_eq!(status, 503, "{method} {path}: {body}");
    }
    // Making or joining a swarm: berth has no swarm mode, said plainly.
    let (status, _, body) = srv.http("POST", "/v1.41/swarm/init");
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("no swarm mode"), "{body}");
    assert_eq!(
        srv.docker(&["swarm", "leave", "--force"]).status.code(),
        Some(1)
    );
    // Prunes: unused networks go; volumes as the client's API version says
    // (before 1.42 every unused one, from 1.42 anonymous ones unless all=true).
    b.ok(&["network", "create", "unused1"]);
    b.ok(&["volume", "create", "named1"]);
    b.ok(&["volume", "create", "named2"]);
    srv.docker_ok(&["network", "prune", "-f"]);
    assert!(!b.ok(&["network", "ls"]).contains("unused1"));
    let (status, _, body) = srv.http("POST", "/v1.44/volumes/prune");
    assert_eq!(status, 200, "{body}");
    assert_eq!(b.ok(&["volume", "ls", "-q"]).lines().count(), 2);
    let (status, _, body) = srv.http("POST", "/v1.41/volumes/prune");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("named1") && body.contains("named2"), "{body}");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    assert!(srv.stop().success());
}

#[test]
fn the_docker_cli_links_containers_as_dockerd_does() {
    let b = Berth::new();
    let srv = Server::start(&b);
    srv.docker_ok(&[
        "run", "-d", "--name", "web", "-e", "FOO=1", "--expose", "80", IMAGE, "sleep", "300",
    ]);
    let ip = srv.docker_ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    let ip = ip.trim();
    let short = &id_of(&b, "web")[..12];
    // Legacy links on the default bridge: the target's address in
    // variables (the container's own win) and in /etc/hosts.
    let out = srv.docker_ok(&[
        "run",
        "--name",
        "app",
        "--link",
        "web:db",
        "-e",
        "DB_ENV_FOO=mine",
        IMAGE,
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ]);
    for want in [
        format!("DB_PORT=tcp://{ip}:80"),
        format!("DB_PORT_80_TCP=tcp://{ip}:80"),
        format!("DB_PORT_80_TCP_ADDR={ip}"),
        "DB_PORT_80_TCP_PORT=80".to_string(),
        "DB_PORT_80_TCP_PROTO=tcp".to_string(),
        "DB_NAME=/app/db".to_string(),
        "DB_ENV_FOO=mine".to_string(),
        format!("{ip}\tdb {short} web"),
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} in {out}");
    }
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "app"]),
        "[\"/web:/app/db\"]\n"
    );
    // The link name is a name of the target's: listed, inspected.
    let names = srv.docker_ok(&[
        "ps",
        "--no-trunc",
        "--filter",
        "name=web",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(names, "app/db,web\n");
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{.Name}}", "app/db"]),
        "/web\n"
    );
    // rm --link takes the link away, both containers stay.
    srv.docker_ok(&["rm", "--link", "app/db"]);
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "app"]),
        "null\n"
    );
    assert_eq!(srv.docker_ok(&["ps", "-aq"]).lines().count(), 2);
    let o = srv.docker(&["rm", "--link", "web"]);
    assert!(
        stderr(&o).contains("Conflict, cannot remove the default link name of the container"),
        "{}",
        stderr(&o)
    );
    // dockerd's refusals: a missing target at create, a stopped one at
    // start, the host's network.
    let o = srv.docker(&["create", "--link", "nosuch:x", IMAGE]);
    assert!(
        stderr(&o).contains("could not get container for nosuch: No such container: nosuch"),
        "{}",
        stderr(&o)
    );
    srv.docker_ok(&["create", "--name", "idle", IMAGE, "true"]);
    srv.docker_ok(&[
        "create", "--name", "late", "--link", "idle:i", IMAGE, "true",
    ]);
    let o = srv.docker(&["start", "late"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Cannot link to a non running container: /idle AS /late/i"),
        "{}",
        stderr(&o)
    );
    let (status, _, body) = http_json(
        &srv.socket,
        "POST",
        "/containers/create",
        r#"{"Image":"bb:test","HostConfig":{"NetworkMode":"host","Links":["web:w"]}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("host type networking can't be used with links"),
        "{body}"
    );

    // On a user-defined network a link is an alias for the linking
    // container alone, even for a target that comes later.
    srv.docker_ok(&["network", "create", "--subnet", "10.254.78.0/24", "linknet"]);
    srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "linknet",
        "--link",
        "later:up",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(
        srv.docker_ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks.linknet.Links}}",
            "asker"
        ]),
        "[\"later:up\"]\n"
    );
    srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "later",
        "--network",
        "linknet",
        "--ip",
        "10.254.78.50",
        IMAGE,
        "sleep",
        "300",
    ]);
    srv.docker_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "linknet",
        IMAGE,
        "sleep",
        "300",
    ]);
    let found = b.ok(&["exec", "asker", "nslookup", "up"]);
    assert!(found.contains("Address: 10.254.78.50"), "{found}");
    let o = b.run(&["exec", "other", "nslookup", "up"]);
    assert_ne!(
        code(&o),
        0,
        "only the linking container knows the alias: {}",
        stdout(&o)
    );
    // A link given when connecting: the same.
    srv.docker_ok(&["network", "disconnect", "linknet", "other"]);
    srv.docker_ok(&[
        "network",
        "connect",
        "--link",
        "later:peer",
        "linknet",
        "other",
    ]);
    let found = b.ok(&["exec", "other", "nslookup", "peer"]);
    assert!(found.contains("Address: 10.254.78.50"), "{found}");

    let ids: Vec<String> = ["web", "app", "idle", "late", "asker", "later", "other"]
        .iter()
        .map(|n| id_of(&b, n))
        .collect();
    srv.docker_ok(&[
        "rm", "-f", "web", "app", "idle", "late", "asker", "later", "other",
    ]);
    srv.docker_ok(&["network", "rm", "linknet"]);
    assert!(srv.stop().success());
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn a_followed_log_is_read_whole_after_the_container_is_removed() {
    // docker-py's `containers.run(remove=True)` asks for the logs
    // (followed) right after the start, waits, removes the container and
    // only then reads the answer: it must hold the whole output. (The
    // log file appeared only after the start returned: a follower that
    // came first found no file, and none after the removal.)
    use std::io::{Read, Write};
    let b = Berth::new();
    let srv = Server::start(&b);
    let mut ids = Vec::new();
    for _ in 0..10 {
        let id = b
            .ok(&["create", IMAGE, "sh", "-c", "echo out; echo err >&2"])
            .trim()
            .to_string();
        let log = b.ok(&["inspect", "-f", "{{.LogPath}}", &id]);
        let (status, _, body) = srv.http("POST", &format!("/v1.44/containers/{id}/start"));
        assert_eq!(status, 204, "{body}");
        assert!(
            std::path::Path::new(log.trim()).exists(),
            "no log file when the start returned"
        );
        let mut s = std::os::unix::net::UnixStream::connect(&srv.socket).unwrap();
        write!(
            s,
            "GET /v1.44/containers/{id}/logs?follow=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        // Both through the API, quicker than the follower looks again.
        let (_, _, waited) = srv.http("POST", &format!("/v1.44/containers/{id}/wait"));
        assert!(waited.contains("\"StatusCode\":0"), "{waited}");
        let (status, _, body) = srv.http("DELETE", &format!("/v1.44/containers/{id}"));
        assert_eq!(status, 204, "{body}");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("\u{1}\0\0\0\0\0\0\u{4}out\n")
                && text.contains("\u{2}\0\0\0\0\0\0\u{4}err\n"),
            "{text:?}"
        );
        ids.push(id);
    }
    assert!(srv.stop().success());
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

/// `docker run -v /data` sends the mount point in `Config.Volumes` (not
/// `Binds`): an anonymous volume, removed with the container by `--rm`;
/// a mount point a bind covers is that bind. (docker-py's
/// `create_container(volumes=[...])` does the same.)
#[test]
fn config_volumes_are_anonymous_volumes_unless_bound() {
    let b = Berth::new();
    let srv = Server::start(&b);
    let out = srv.docker_ok(&[
        "run",
        "--name",
        "anon",
        "-v",
        "/data",
        IMAGE,
        "sh",
        "-c",
        "grep -c ' /data ' /proc/mounts; echo kept > /data/f",
    ]);
    assert_eq!(out, "1\n");
    let vols = b.ok(&["volume", "ls", "-q"]);
    assert_eq!(vols.lines().count(), 1, "{vols}");
    let mounts = srv.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}",
        "anon",
    ]);
    assert_eq!(mounts.trim(), "volume /data");
    srv.docker_ok(&["rm", "-v", "anon"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    let host = b.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from the host\n").unwrap();
    let bind = format!("{}:/data", host.display());
    let out = srv.docker_ok(&[
        "run", "--rm", "-v", &bind, "-v", "/data", IMAGE, "cat", "/data/f",
    ]);
    assert_eq!(out, "from the host\n");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    assert!(srv.stop().success());
}

#[test]
fn a_create_with_several_endpoints_joins_each_network() {
    // API 1.44: NetworkingConfig may name several networks; each is
    // joined with its aliases; one that does not exist fails the create.
    let b = Berth::new();
    let srv = Server::start(&b);
    b.ok(&["network", "create", "front"]);
    b.ok(&["network", "create", "back"]);
    let body = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["sleep","300"],"HostConfig":{{"NetworkMode":"front"}},
            "NetworkingConfig":{{"EndpointsConfig":{{"front":{{"Aliases":["web"]}},"back":{{"Aliases":["api"]}}}}}}}}"#
    );
    let (status, _, out) = http_json(
        &srv.socket,
        "POST",
        "/v1.44/containers/create?name=two",
        &body,
    );
    assert_eq!(status, 201, "{out}");
    srv.docker_ok(&["start", "two"]);
    let nets = srv.docker_ok(&[
        "inspect",
        "-f",
        "{{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{json $e.Aliases}} {{end}}",
        "two",
    ]);
    let short = &id_of(&b, "two")[..12];
    assert_eq!(
        nets.trim(),
        format!(r#"back=["{short}","api"] front=["{short}","web"]"#)
    );
    // Both names resolve, each on its own network.
    let o = srv.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "back",
        IMAGE,
        "ping",
        "-c1",
        "-W2",
        "api",
    ]);
    assert!(o.contains("1 packets received"), "{o}");
    let o = srv.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "front",
        IMAGE,
        "ping",
        "-c1",
        "-W2",
        "web",
    ]);
    assert!(o.contains("1 packets received"), "{o}");
    let body = format!(
        r#"{{"Image":"{IMAGE}","HostConfig":{{"NetworkMode":"front"}},
            "NetworkingConfig":{{"EndpointsConfig":{{"front":{{}},"nope":{{}}}}}}}}"#
    );
    let (status, _, out) = http_json(
        &srv.socket,
        "POST",
        "/v1.44/containers/create?name=bad",
        &body,
    );
    assert_eq!(status, 404, "{out}");
    assert!(out.contains("nope"), "{out}");
    assert_eq!(b.run(&["inspect", "bad"]).status.code(), Some(1));
    // HostConfig.VolumeDriver: kept and shown; only `local` makes volumes.
    let (status, _, out) = http_json(
        &srv.socket,
        "POST",
        "/v1.44/containers/create?name=vd",
        &format!(r#"{{"Image":"{IMAGE}","HostConfig":{{"VolumeDriver":"foo"}}}}"#),
    );
    assert_eq!(status, 201, "{out}");
    assert_eq!(
        srv.docker_ok(&["inspect", "-f", "{{.HostConfig.VolumeDriver}}", "vd"]),
        "foo\n"
    );
    let o = srv.docker(&["create", "--volume-driver", "foo", "-v", "x:/data", IMAGE]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("error looking up volume plugin foo"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    srv.docker_ok(&["rm", "-f", "two", "vd"]);
    drop(srv);
    assert_census_clean(&b);
}
