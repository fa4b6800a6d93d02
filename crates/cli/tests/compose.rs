//! `berth compose` (root): a project of busybox services brought up, kept,
//! changed, scaled and taken down, with health-gated startup, names on the
//! project network, named volumes and nothing left behind.
mod common;

use std::path::PathBuf;

use common::*;

/// A project directory with `compose.yaml` holding `yaml`.
fn project(b: &Berth, name: &str, yaml: &str) -> PathBuf {
    let dir = b.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    dir
}

const STACK: &str = r#"
services:
  db:
    image: bb:test
    command: ["sh", "-c", "sleep 1; echo ok > /data/ready; echo db up; exec sleep 1000"]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 30s
      start_period: 20s
      start_interval: 200ms
    volumes:
      - data:/data
  cache:
    image: bb:test
    command: sleep 1000
    stop_signal: SIGKILL
  web:
    image: bb:test
    command:
      - sh
      - -c
      - |
        if test -f /data/ready; then echo "web: db was ready"; else echo "web: db NOT ready"; fi
        ping -c1 -W2 db >/dev/null && echo "web: reached db"
        ping -c1 -W2 cache >/dev/null && echo "web: reached cache"
        exec sleep 1000
    environment:
      GREETING: hello
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
    volumes:
      - data:/data:ro
    stop_grace_period: 1s
volumes:
  data:
"#;

fn wait_for_log(b: &Berth, name: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let o = b.run(&["logs", name]);
        let text = stdout(&o) + &stderr(&o);
        if text.contains(needle) || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_stack_starts_by_health_is_kept_changed_scaled_and_taken_down() {
    let b = Berth::new();
    let dir = project(&b, "shop", STACK);

    // up -d: web starts only once db is healthy, and reaches db and cache
    // by their service names on the project network.
    let (_, err) = compose_ok(&b, &dir, &["up", "-d"]);
    let healthy = err.find("Container shop-db-1  Healthy").expect(&err);
    let web_started = err.find("Container shop-web-1  Started").expect(&err);
    assert!(healthy < web_started, "{err}");
    assert!(err.contains("Network shop_default  Created"), "{err}");
    assert!(err.contains("Volume \"shop_data\"  Created"), "{err}");
    let log = wait_for_log(&b, "shop-web-1", "reached cache");
    assert!(log.contains("web: db was ready"), "{log}");
    assert!(log.contains("web: reached db"), "{log}");
    assert!(log.contains("web: reached cache"), "{log}");
    // Labelled as docker compose labels them.
    let labels = b.ok(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.docker.compose.project\"}} {{index .Config.Labels \"com.docker.compose.service\"}} {{index .Config.Labels \"com.docker.compose.container-number\"}} {{index .Config.Labels \"com.docker.compose.oneoff\"}}",
        "shop-web-1",
    ]);
    assert_eq!(labels.trim(), "shop web 1 False");

    // ps lists the three, with their service.
    let (out, _) = compose_ok(
        &b,
        &dir,
        &["ps", "--format", "{{.Name}} {{.Service}} {{.State}}"],
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "shop-cache-1 cache running",
            "shop-db-1 db running",
            "shop-web-1 web running"
        ]
    );

    // up again with the same file changes nothing.
    let before: Vec<String> = ["shop-db-1", "shop-cache-1", "shop-web-1"]
        .iter()
        .map(|n| id_of(&b, n))
        .collect();
    let (_, err) = compose_ok(&b, &dir, &["up", "-d"]);
    assert!(err.contains("Container shop-web-1  Running"), "{err}");
    let again: Vec<String> = ["shop-db-1", "shop-cache-1", "shop-web-1"]
        .iter()
        .map(|n| id_of(&b, n))
        .collect();
    assert_eq!(before, again);

    // Editing one service recreates it alone.
    std::fs::write(
        dir.join("compose.yaml"),
        STACK.replace("GREETING: hello", "GREETING: bonjour"),
    )
    .unwrap();
    let (_, err) = compose_ok(&b, &dir, &["up", "-d"]);
    assert!(err.contains("Container shop-web-1  Recreated"), "{err}");
    assert_eq!(id_of(&b, "shop-db-1"), before[0]);
    assert_eq!(id_of(&b, "shop-cache-1"), before[1]);
    assert_ne!(id_of(&b, "shop-web-1"), before[2]);
    let env = b.ok(&["exec", "shop-web-1", "sh", "-c", "echo $GREETING"]);
    assert_eq!(env.trim(), "bonjour");

    // --scale web=3: three containers, all answering to the service name.
    compose_ok(&b, &dir, &["up", "-d", "--scale", "web=3"]);
    assert_eq!(ids_with_prefix(&b, "shop-web-").len(), 3);
    let o = b.run(&["exec", "shop-cache-1", "nslookup", "web"]);
    let answers = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("Address") && !l.contains("#53") && !l.contains(":53"))
        .count();
    assert_eq!(answers, 3, "{}", stdout(&o));
    // Back to one (`compose scale`): the extra two go.
    compose_ok(&b, &dir, &["scale", "web=1"]);
    assert_eq!(ids_with_prefix(&b, "shop-web-").len(), 1);

    // The named volume's data survives down and up.
    compose_ok(
        &b,
        &dir,
        &["exec", "-T", "db", "sh", "-c", "echo kept > /data/keep"],
    );
    let all_ids = ids_with_prefix(&b, "shop-");
    let (_, err) = compose_ok(&b, &dir, &["down"]);
    assert!(err.contains("Network shop_default  Removed"), "{err}");
    assert!(ids_with_prefix(&b, "shop-").is_empty());
    assert!(b.ok(&["volume", "ls", "-q"]).contains("shop_data"));
    compose_ok(&b, &dir, &["up", "-d", "db"]);
    let kept = b.ok(&["exec", "shop-db-1", "cat", "/data/keep"]);
    assert_eq!(kept.trim(), "kept");

    // down -v: containers, network and volume all go, nothing is left.
    let mut ids = all_ids;
    ids.extend(ids_with_prefix(&b, "shop-"));
    compose_ok(&b, &dir, &["down", "-v"]);
    assert!(ids_with_prefix(&b, "shop-").is_empty());
    assert!(!b.ok(&["volume", "ls", "-q"]).contains("shop_data"));
    assert!(!b.ok(&["network", "ls"]).contains("shop_default"));
    assert_eq!(leftovers(&b, &ids), Vec::<String>::new());
}

#[test]
fn a_failed_dependency_stops_its_dependants_and_says_why() {
    let b = Berth::new();
    let dir = project(
        &b,
        "jobs",
        r#"
services:
  migrate:
    image: bb:test
    command: ["sh", "-c", "echo migrating; exit 3"]
  app:
    image: bb:test
    command: sleep 1000
    depends_on:
      migrate:
        condition: service_completed_successfully
  side:
    image: bb:test
    command: sleep 1000
    stop_signal: SIGKILL
"#,
    );
    let o = compose(&b, &dir, &["up", "-d"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("service \"migrate\" didn't complete successfully: exit 3"),
        "{}",
        stderr(&o)
    );
    // What could start did; the dependant was created but not started.
    let state = |n: &str| {
        b.ok(&["inspect", "-f", "{{.State.Status}}", n])
            .trim()
            .to_string()
    };
    assert_eq!(state("jobs-side-1"), "running");
    assert_eq!(state("jobs-app-1"), "created");
    compose_ok(&b, &dir, &["down"]);
    assert!(ids_with_prefix(&b, "jobs-").is_empty());
}

#[test]
fn foreground_up_prints_prefixed_output_and_returns_the_exit_code() {
    let b = Berth::new();
    let dir = project(
        &b,
        "fg",
        r#"
services:
  one:
    image: bb:test
    command: ["sh", "-c", "echo hello from one; echo to stderr >&2; exec sleep 30"]
    stop_grace_period: 1s
  two:
    image: bb:test
    command: ["sh", "-c", "sleep 0.3; echo bye from two; exit 4"]
"#,
    );
    let o = compose(&b, &dir, &["up", "--exit-code-from", "two"]);
    assert_eq!(code(&o), 4, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Attaching to "), "{out}");
    assert!(out.contains("one-1  | hello from one"), "{out}");
    assert!(out.contains("two-1  | bye from two"), "{out}");
    assert!(out.contains("two-1 exited with code 4"), "{out}");
    // Stderr stays stderr; the other service was stopped on the exit.
    assert!(stderr(&o).contains("one-1  | to stderr"), "{}", stderr(&o));
    let state = b.ok(&["inspect", "-f", "{{.State.Status}}", "fg-one-1"]);
    assert_eq!(state.trim(), "exited");
    // compose logs shows the same, prefixed.
    let (logs, _) = compose_ok(&b, &dir, &["logs", "--no-color"]);
    assert!(logs.contains("one-1  | hello from one"), "{logs}");
    let (recent, _) = compose_ok(&b, &dir, &["logs", "--since", "1h", "one"]);
    assert!(recent.contains("hello from one"), "{recent}");
    let (old, _) = compose_ok(&b, &dir, &["logs", "--until", "1h"]);
    assert_eq!(old, "");
    let (last, _) = compose_ok(&b, &dir, &["logs", "-n", "1", "--no-log-prefix", "two"]);
    assert_eq!(last, "bye from two\n");
    compose_ok(&b, &dir, &["down"]);
}

#[test]
fn config_prints_the_normalized_model_with_variables_filled_in() {
    let b = Berth::empty();
    let dir = project(
        &b,
        "cfg",
        r#"
services:
  web:
    image: "bb:${TAG:-test}"
    ports:
      - "127.0.0.1:${PORT}:80"
    environment:
      - MODE=${MODE:-dev}
"#,
    );
    std::fs::write(dir.join(".env"), "PORT=8088\n").unwrap();
    let (out, _) = compose_ok(&b, &dir, &["config"]);
    assert!(out.contains("name: cfg"), "{out}");
    assert!(out.contains("image: bb:test"), "{out}");
    assert!(
        out.contains("published: \"8088\"")
            || out.contains("published: '8088'")
            || out.contains("published: 8088"),
        "{out}"
    );
    assert!(out.contains("MODE: dev"), "{out}");
    let (services, _) = compose_ok(&b, &dir, &["config", "--services"]);
    assert_eq!(services, "web\n");
    // A bad file names the file, the line and the key.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: bb:test\n    portz: [80]\n",
    )
    .unwrap();
    let o = compose(&b, &dir, &["config"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("compose.yaml"), "{err}");
    assert!(err.contains("portz"), "{err}");
}

#[test]
fn run_secrets_configs_ports_and_restart_of_dependants() {
    let b = Berth::new();
    let dir = project(
        &b,
        "tools",
        r#"
services:
  db:
    image: bb:test
    command: sleep 1000
    stop_signal: SIGKILL
    shm_size: 128m
    sysctls:
      net.core.somaxconn: 1024
    deploy:
      resources:
        limits:
          memory: 64m
        reservations:
          memory: 32m
    environment:
      VERSION: "1"
  api:
    image: bb:test
    command: ["httpd", "-f", "-p", "8080", "-h", "/run/secrets"]
    ports:
      - "127.0.0.1::8080"
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_started
        restart: true
    secrets:
      - token
      - source: key
        target: api.key
    configs:
      - source: settings
        target: /etc/settings.conf
secrets:
  token:
    file: ./token.txt
  key:
    environment: API_KEY
configs:
  settings:
    content: |
      mode=${MODE:-fast}
"#,
    );
    std::fs::write(dir.join("token.txt"), "s3cret\n").unwrap();
    let o = b
        .cmd()
        .current_dir(&dir)
        .env("API_KEY", "k-123")
        .args(["compose", "up", "-d"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cat = |path: &str| b.ok(&["exec", "tools-api-1", "cat", path]);
    assert_eq!(cat("/run/secrets/token"), "s3cret\n");
    assert_eq!(cat("/run/secrets/api.key"), "k-123");
    assert_eq!(cat("/etc/settings.conf"), "mode=fast\n");
    let db = b.ok(&[
        "exec",
        "tools-db-1",
        "sh",
        "-c",
        "cat /proc/sys/net/core/somaxconn; df -k /dev/shm | tail -1; cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert!(db.starts_with("1024\n"), "{db}");
    assert!(db.ends_with("33554432\n67108864\n"), "{db}");
    assert_eq!(
        db.lines().nth(1).and_then(|l| l.split_whitespace().nth(1)),
        Some("131072"),
        "{db}"
    );

    // port: the published port answers.
    let (addr, _) = compose_ok(&b, &dir, &["port", "api", "8080"]);
    let addr = addr.trim().to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut s, b"GET /token HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
    assert!(reply.ends_with("s3cret\n"), "{reply}");

    // run: a one-off container with the service's config and another
    // command, its exit code, removed with --rm; not listed by ps.
    let o = compose(
        &b,
        &dir,
        &[
            "run",
            "--rm",
            "-T",
            "db",
            "sh",
            "-c",
            "echo v$VERSION; exit 7",
        ],
    );
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(stdout(&o), "v1\n");
    assert_eq!(ids_with_prefix(&b, "tools-db-run-").len(), 0);
    let (ps, _) = compose_ok(&b, &dir, &["ps", "-a", "--format", "{{.Name}}"]);
    assert_eq!(ps.lines().count(), 2, "{ps}");

    // Recreating db restarts api (restart: true): a new start time.
    let started = |n: &str| b.ok(&["inspect", "-f", "{{.State.StartedAt}}", n]);
    let api_before = started("tools-api-1");
    let api_id = id_of(&b, "tools-api-1");
    let yaml = std::fs::read_to_string(dir.join("compose.yaml")).unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        yaml.replace("VERSION: \"1\"", "VERSION: \"2\""),
    )
    .unwrap();
    let o = b
        .cmd()
        .current_dir(&dir)
        .env("API_KEY", "k-123")
        .args(["compose", "up", "-d"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Container tools-db-1  Recreated"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("Container tools-api-1  Restarting"),
        "{}",
        stderr(&o)
    );
    assert_eq!(id_of(&b, "tools-api-1"), api_id);
    assert_ne!(started("tools-api-1"), api_before);

    // A secret whose variable is unset is refused, naming it.
    compose_ok(&b, &dir, &["down"]);
    let o = compose(&b, &dir, &["up", "-d"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("API_KEY"), "{}", stderr(&o));
    // down removed the files written for secrets and configs.
    assert!(!b.path().join("root/compose/tools").exists());
    compose_ok(&b, &dir, &["down"]);
}

#[test]
fn ctrl_c_stops_a_foreground_project_and_bad_input_fails_clearly() {
    let b = Berth::new();
    let dir = project(
        &b,
        "fgc",
        r#"
services:
  loop:
    image: bb:test
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done"]
"#,
    );
    let child = b
        .cmd()
        .current_dir(&dir)
        .args(["compose", "up"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline
        && !stdout(&b.run(&["logs", "fgc-loop-1"])).contains("started")
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 130, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("Gracefully stopping..."),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("loop-1  | got TERM"), "{}", stdout(&o));
    let state = b.ok(&["inspect", "-f", "{{.State.Status}}", "fgc-loop-1"]);
    assert_eq!(state.trim(), "exited");

    // A port another container holds: the error names it, exit 1.
    let taken = b.ok(&["run", "-d", "-p", "127.0.0.1::80", IMAGE, "sleep", "100"]);
    let port = b.ok(&["port", taken.trim(), "80"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  web:\n    image: bb:test\n    command: sleep 100\n    ports: [\"127.0.0.1:{port}:80\"]\n"
        ),
    )
    .unwrap();
    let o = compose(&b, &dir, &["up", "-d", "--remove-orphans"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already allocated") || stderr(&o).contains("in use"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("web"), "{}", stderr(&o));

    // An image that cannot be built: the service is named, and nothing
    // (no network) was made for it.
    compose_ok(&b, &dir, &["down", "--remove-orphans"]);
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/Dockerfile"), "FROM bb:test\nRUN exit 9\n").unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  app:\n    build: ./app\n",
    )
    .unwrap();
    let o = compose(&b, &dir, &["up", "-d", "--remove-orphans"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("service \"app\""), "{}", stderr(&o));
    assert!(!b.ok(&["network", "ls"]).contains("fgc_default"));

    // A dependency cycle is refused before anything starts.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  a:\n    image: bb:test\n    depends_on: [b]\n  b:\n    image: bb:test\n    depends_on: [a]\n",
    )
    .unwrap();
    let o = compose(&b, &dir, &["up", "-d"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("cycle"), "{}", stderr(&o));
    // Without a usable file, `-p NAME down` still takes the project down.
    compose_ok(&b, &dir, &["-p", "fgc", "down"]);
    let (ps, _) = compose_ok(&b, &dir, &["-p", "fgc", "ps", "-a", "-q"]);
    assert_eq!(ps, "");
}

#[test]
fn events_cp_and_one_shot_commands() {
    let b = Berth::new();
    let dir = project(
        &b,
        "ev",
        "services:\n  app:\n    image: bb:test\n    command: sleep 1000\n    stop_signal: SIGKILL\n",
    );
    compose_ok(&b, &dir, &["up", "-d"]);
    let child = b
        .cmd()
        .current_dir(&dir)
        .args(["compose", "events", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Another project's container is not reported.
    b.ok(&["run", "-d", "--name", "outsider", IMAGE, "true"]);
    compose_ok(&b, &dir, &["stop", "app"]);
    compose_ok(&b, &dir, &["start", "app"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"stop"), "{actions:?}");
    assert!(actions.contains(&"start"), "{actions:?}");
    assert!(lines.iter().all(|v| v["service"] == "app"), "{lines:?}");

    // cp both ways, by service name.
    let local = dir.join("note.txt");
    std::fs::write(&local, "from host\n").unwrap();
    compose_ok(
        &b,
        &dir,
        &["cp", local.to_str().unwrap(), "app:/tmp/note.txt"],
    );
    assert_eq!(
        b.ok(&["exec", "ev-app-1", "cat", "/tmp/note.txt"]),
        "from host\n"
    );
    b.ok(&[
        "exec",
        "ev-app-1",
        "sh",
        "-c",
        "echo from app > /tmp/back.txt",
    ]);
    let back = dir.join("back.txt");
    compose_ok(
        &b,
        &dir,
        &["cp", "app:/tmp/back.txt", back.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from app\n");

    // commit and export by service name.
    let (id, _) = compose_ok(&b, &dir, &["commit", "app", "ev-snap:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        b.ok(&["run", "--rm", "ev-snap:1", "cat", "/tmp/note.txt"]),
        "from host\n"
    );
    let tar_path = dir.join("fs.tar");
    compose_ok(
        &b,
        &dir,
        &["export", "-o", tar_path.to_str().unwrap(), "app"],
    );
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar_path)
        .output()
        .unwrap();
    assert!(
        stdout(&listing).lines().any(|l| l == "tmp/back.txt"),
        "{}",
        stdout(&listing)
    );
    // ls lists the project; top its processes; images its image.
    let (ls, _) = compose_ok(&b, &dir, &["ls"]);
    assert!(ls.contains("ev ") && ls.contains("running(1)"), "{ls}");
    let (top, _) = compose_ok(&b, &dir, &["top"]);
    assert!(top.contains("sleep 1000"), "{top}");
    let (stats, _) = compose_ok(&b, &dir, &["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert_eq!(stats, "ev-app-1\n");
    let (images, _) = compose_ok(&b, &dir, &["images", "--format", "json"]);
    assert!(
        images.contains("\"ContainerName\":\"ev-app-1\""),
        "{images}"
    );
    compose_ok(&b, &dir, &["down"]);
    let (ls, _) = compose_ok(&b, &dir, &["ls", "-a"]);
    assert!(!ls.contains("ev "), "{ls}");
}

#[test]
fn watch_syncs_restarts_and_rebuilds_on_changes() {
    let b = Berth::new();
    let dir = project(
        &b,
        "dev",
        r#"
services:
  web:
    build: ./web
    command: ["sh", "-c", "cat /app/version.txt; exec sleep 1000"]
    stop_signal: SIGKILL
    develop:
      watch:
        - action: sync
          path: ./src
          target: /srv/src
          ignore: ["*.tmp"]
        - action: rebuild
          path: ./web
"#,
    );
    std::fs::create_dir_all(dir.join("src/lib")).unwrap();
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(dir.join("src/a.txt"), "one\n").unwrap();
    std::fs::write(dir.join("web/version.txt"), "v1\n").unwrap();
    std::fs::write(
        dir.join("web/Dockerfile"),
        "FROM bb:test\nCOPY version.txt /app/version.txt\n",
    )
    .unwrap();
    let mut child = b
        .cmd()
        .current_dir(&dir)
        .args(["compose", "watch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let wait_until = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let running = || {
        b.run(&["inspect", "-f", "{{.State.Status}}", "dev-web-1"])
            .stdout
            .starts_with(b"running")
    };
    wait_until("web runs", &running);
    std::thread::sleep(std::time::Duration::from_millis(700));
    let first_id = id_of(&b, "dev-web-1");

    // sync: a changed file and a new one in a new directory land in the
    // container; an ignored one does not.
    std::fs::write(dir.join("src/a.txt"), "two\n").unwrap();
    std::fs::write(dir.join("src/lib/b.txt"), "bee\n").unwrap();
    std::fs::write(dir.join("src/skip.tmp"), "no\n").unwrap();
    let read = |p: &str| stdout(&b.run(&["exec", "dev-web-1", "cat", p]));
    wait_until("sync", &|| {
        read("/srv/src/a.txt") == "two\n" && read("/srv/src/lib/b.txt") == "bee\n"
    });
    assert_eq!(read("/srv/src/skip.tmp"), "");
    // A removed file goes from the container too.
    std::fs::remove_file(dir.join("src/lib/b.txt")).unwrap();
    wait_until("removal", &|| read("/srv/src/lib/b.txt").is_empty());
    assert_eq!(id_of(&b, "dev-web-1"), first_id);

    // rebuild: a change in the build context makes a new image and a new
    // container running it.
    std::fs::write(dir.join("web/version.txt"), "v2\n").unwrap();
    wait_until("rebuild", &|| {
        running() && stdout(&b.run(&["logs", "dev-web-1"])).contains("v2")
    });
    assert_ne!(id_of(&b, "dev-web-1"), first_id);

    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("Watch enabled"), "{err}");
    assert!(err.contains("Syncing service \"web\""), "{err}");
    assert!(err.contains("Rebuilding service \"web\""), "{err}");
    assert!(status.success() || status.code() == Some(130), "{status}");
    compose_ok(&b, &dir, &["down", "--rmi", "local"]);
    assert!(!b.ok(&["images"]).contains("dev-web"));
}

#[test]
fn dry_run_says_what_would_happen_and_changes_nothing() {
    let b = Berth::new();
    let dir = project(
        &b,
        "dry",
        "services:\n  app:\n    image: bb:test\n    command: sleep 1000\n    stop_signal: SIGKILL\n    volumes: [v:/v]\n  tool:\n    build: ./ctx\n    image: dry-tool:1\n    profiles: [tools]\nvolumes:\n  v:\n",
    );
    std::fs::create_dir_all(dir.join("ctx")).unwrap();
    std::fs::write(dir.join("ctx/Dockerfile"), "FROM bb:test\n").unwrap();
    std::fs::write(dir.join("file"), "x").unwrap();
    let (_, err) = compose_ok(&b, &dir, &["--progress", "quiet", "--dry-run", "up", "-d"]);
    assert_eq!(err, "");
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "up", "-d"]);
    assert!(
        err.contains("DRY-RUN MODE -  Network dry_default  Created"),
        "{err}"
    );
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-1  Created"),
        "{err}"
    );
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-1  Started"),
        "{err}"
    );
    assert!(ids_with_prefix(&b, "dry-").is_empty());
    assert!(!b.ok(&["network", "ls"]).contains("dry_default"));
    assert!(!b.ok(&["volume", "ls", "-q"]).contains("dry_v"));
    compose_ok(&b, &dir, &["up", "-d"]);
    // One-shot commands: checked and reported, nothing done.
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "build", "tool"]);
    assert!(
        err.contains("DRY-RUN MODE -  Image dry-tool:1  Built"),
        "{err}"
    );
    assert!(!b.ok(&["images"]).contains("dry-tool"));
    let o = compose(&b, &dir, &["--dry-run", "push", "tool"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("build it first"), "{}", stderr(&o));
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "pull", "app"]);
    assert!(
        err.contains("DRY-RUN MODE -  Image bb:test  Pulled"),
        "{err}"
    );
    let (_, err) = compose_ok(
        &b,
        &dir,
        &["--dry-run", "run", "--rm", "app", "touch", "/v/run"],
    );
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-run-"),
        "{err}"
    );
    compose_ok(
        &b,
        &dir,
        &["--dry-run", "exec", "-T", "app", "touch", "/v/exec"],
    );
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "cp", "file", "app:/v/file"]);
    assert!(
        err.contains("DRY-RUN MODE -  Copy file  to dry-app-1:/v/file"),
        "{err}"
    );
    let (ls, _) = compose_ok(&b, &dir, &["exec", "-T", "app", "ls", "/v"]);
    assert_eq!(ls.trim(), "", "{ls}");
    assert_eq!(ids_with_prefix(&b, "dry-").len(), 1);
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "stop"]);
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-1  Stopped"),
        "{err}"
    );
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "rm", "-s"]);
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-1  Removed"),
        "{err}"
    );
    let state = b.ok(&["inspect", "-f", "{{.State.Status}}", "dry-app-1"]);
    assert_eq!(state.trim(), "running");
    let (_, err) = compose_ok(&b, &dir, &["--dry-run", "down", "-v"]);
    assert!(
        err.contains("DRY-RUN MODE -  Container dry-app-1  Removed"),
        "{err}"
    );
    assert!(
        err.contains("DRY-RUN MODE -  Volume dry_v  Removed"),
        "{err}"
    );
    assert_eq!(ids_with_prefix(&b, "dry-").len(), 1);
    assert!(b.ok(&["volume", "ls", "-q"]).contains("dry_v"));
    compose_ok(&b, &dir, &["down", "-v"]);
    assert!(ids_with_prefix(&b, "dry-").is_empty());
}

#[test]
fn build_args_targets_and_secrets() {
    let b = Berth::new();
    let dir = project(
        &b,
        "bld",
        r#"
services:
  app:
    build:
      context: ./app
      target: final
      args:
        GREETING: hi
      secrets:
        - token
    image: bld-app:custom
    command: ["cat", "/out"]
secrets:
  token:
    environment: BUILD_TOKEN
"#,
    );
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(
        dir.join("app/Dockerfile"),
        "FROM bb:test AS base\nARG GREETING\nRUN --mount=type=secret,id=token echo \"$GREETING $(cat /run/secrets/token)\" > /out\nFROM base AS final\nFROM base AS other\nRUN false\n",
    )
    .unwrap();
    let o = b
        .cmd()
        .current_dir(&dir)
        .env("BUILD_TOKEN", "t0k")
        .args(["compose", "run", "--rm", "--build", "-T", "app"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hi t0k\n");
    assert!(b.ok(&["images"]).contains("bld-app"));
    compose_ok(&b, &dir, &["down", "--rmi", "all"]);
    assert!(!b.ok(&["images"]).contains("bld-app"));
}

#[test]
fn attach_follows_a_service_container_to_its_exit() {
    let b = Berth::new();
    let dir = project(
        &b,
        "att",
        "services:\n  talk:\n    image: bb:test\n    command: [\"sh\", \"-c\", \"sleep 0.5; for i in 1 2 3; do echo tick $$i; sleep 0.1; done; exit 3\"]\n",
    );
    compose_ok(&b, &dir, &["up", "-d"]);
    let o = compose(&b, &dir, &["attach", "--no-stdin", "talk"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stdout(&o).contains("tick 3"), "{}", stdout(&o));
    compose_ok(&b, &dir, &["down"]);
}

#[test]
fn a_services_replicas_are_stopped_together() {
    let b = Berth::new();
    let dir = project(
        &b,
        "rep",
        "services:\n  w:\n    image: bb:test\n    command: sleep 1000\n    scale: 3\n    stop_grace_period: 1s\n",
    );
    compose_ok(&b, &dir, &["up", "-d"]);
    assert_eq!(ids_with_prefix(&b, "rep-w-").len(), 3);
    for verb in ["stop", "down"] {
        if verb == "down" {
            compose_ok(&b, &dir, &["start"]);
        }
        let (_, err) = compose_ok(&b, &dir, &[verb]);
        // Every replica is asked to stop before any has stopped (sleep as
        // PID 1 ignores SIGTERM: each waits out its grace period).
        let last_stopping = err.rfind("  Stopping").expect(&err);
        let first_stopped = err.find("  Stopped").expect(&err);
        assert!(last_stopping < first_stopped, "{err}");
        assert_eq!(err.matches("  Stopped").count(), 3, "{err}");
    }
    assert!(ids_with_prefix(&b, "rep-").is_empty());
}

#[test]
fn pid_ipc_of_another_service_and_volume_subpaths() {
    let b = Berth::new();
    let dir = project(
        &b,
        "ns",
        r#"
services:
  init:
    image: bb:test
    command: ["sh", "-c", "mkdir -p /v/conf && echo from-subpath > /v/conf/app.txt"]
    volumes: [data:/v]
  main:
    image: bb:test
    command: sleep 1000
    ipc: shareable
    stop_signal: SIGKILL
  side:
    image: bb:test
    command: sleep 1001
    pid: "service:main"
    ipc: "service:main"
    stop_signal: SIGKILL
    depends_on:
      init:
        condition: service_completed_successfully
    volumes:
      - type: volume
        source: data
        target: /etc/app
        read_only: true
        volume:
          subpath: conf
volumes:
  data:
"#,
    );
    compose_ok(&b, &dir, &["up", "-d"]);
    let (out, _) = compose_ok(
        &b,
        &dir,
        &[
            "exec",
            "-T",
            "side",
            "sh",
            "-c",
            "cat /proc/1/comm /etc/app/app.txt",
        ],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["sleep", "from-subpath"],
        "{out}"
    );
    let main_ipc = b.ok(&["exec", "ns-main-1", "readlink", "/proc/self/ns/ipc"]);
    let side_ipc = b.ok(&["exec", "ns-side-1", "readlink", "/proc/self/ns/ipc"]);
    assert_eq!(main_ipc, side_ipc);
    compose_ok(&b, &dir, &["down", "-v"]);
}

#[test]
fn group_add_uts_and_cpuset_of_a_service() {
    let b = Berth::new();
    let dir = project(
        &b,
        "hc",
        r#"
services:
  app:
    image: bb:test
    command: ["sh", "-c", "id -G; hostname; cat /sys/fs/cgroup/cpuset/cpuset.cpus"]
    group_add: [wheel, "4242"]
    uts: host
    cpuset: "0"
"#,
    );
    let (out, _) = compose_ok(&b, &dir, &["run", "--rm", "-T", "app"]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0 10 4242", host.trim(), "0"],
        "{out}"
    );
    compose_ok(&b, &dir, &["down"]);
}

#[test]
fn inline_dockerfiles_host_networks_and_remote_files() {
    let b = Berth::new();
    let dir = project(
        &b,
        "inl",
        r#"
services:
  made:
    build:
      context: .
      dockerfile_inline: |
        FROM bb:test
        RUN echo built-inline > /made
    command: sleep 1000
    stop_signal: SIGKILL
  onhost:
    image: bb:test
    command: sleep 1000
    stop_signal: SIGKILL
    networks: [hostnet]
networks:
  hostnet:
    name: host
    external: true
"#,
    );
    compose_ok(&b, &dir, &["up", "-d"]);
    let (out, _) = compose_ok(&b, &dir, &["exec", "-T", "made", "cat", "/made"]);
    assert_eq!(out.trim(), "built-inline");
    // The inline Dockerfile went nowhere near the context.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // An external `host` network is the host's network namespace.
    let mode = b.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.NetworkMode}}",
        "inl-onhost-1",
    ]);
    assert_eq!(mode.trim(), "host");
    let ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let (theirs, _) = compose_ok(
        &b,
        &dir,
        &["exec", "-T", "onhost", "readlink", "/proc/self/ns/net"],
    );
    assert_eq!(theirs.trim(), ns.display().to_string());
    compose_ok(&b, &dir, &["down", "--rmi", "local"]);
    // Remote includes and extends are refused, naming what and where.
    for (name, yaml) in [
        ("rinc", "include:\n  - oci://registry.example/app:1\nservices:\n  a:\n    image: bb:test\n"),
        ("rext", "services:\n  a:\n    image: bb:test\n    extends:\n      file: https://example.org/base.yaml\n      service: b\n"),
    ] {
        let d = project(&b, name, yaml);
        let o = compose(&b, &d, &["config"]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        assert!(stderr(&o).contains("remote resource"), "{}", stderr(&o));
        assert!(stderr(&o).contains("compose.yaml:"), "{}", stderr(&o));
    }
}
