//! The Compose Specification chapter by chapter: each directory of
//! `tests/compose-examples/` is a small project about one chapter
//! (services, networks, volumes, configs, secrets, fragments, extensions,
//! interpolation, merge, include, profiles, build, deploy, depends_on,
//! develop, extends). Each is copied into the test's directory, checked
//! through `compose config` (what the loader made of it), brought up on
//! real containers, checked from inside them, and taken down with nothing
//! of it left behind.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Variables the examples read: never taken from the test's environment.
const EXAMPLE_VARIABLES: &[&str] = &[
    "API_TOKEN",
    "ARCHIVE_VOLUME",
    "BANNER_TEXT",
    "BUILD_NUMBER",
    "CACHE_SIZE",
    "COMPOSE_FILE",
    "COMPOSE_PROFILES",
    "COMPOSE_PROJECT_NAME",
    "DB_NAME",
    "EMPTY_VALUE",
    "EVICTION",
    "GREETING",
    "IMAGE_TAG",
    "LOG_LEVEL",
    "NOT_SET_ANYWHERE",
    "PASSED_THROUGH",
    "PROJECT_NAME",
    "RELEASE",
    "WHERE",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// One example project, copied into the test's directory.
struct Example<'a> {
    b: &'a Berth,
    dir: PathBuf,
    /// The compose project's name.
    project: String,
    /// Variables set for every `compose` run.
    env: Vec<(&'static str, &'static str)>,
}

impl<'a> Example<'a> {
    fn new(b: &'a Berth, name: &str, project: &str) -> Example<'a> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/compose-examples")
            .join(name);
        let dir = b.path().join(name);
        copy_dir(&src, &dir);
        Example {
            b,
            dir,
            project: project.to_string(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, k: &'static str, v: &'static str) -> Self {
        self.env.push((k, v));
        self
    }

    /// `compose ARGS` in the project directory, with `extra` variables.
    fn run_env(&self, extra: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = self.b.cmd();
        cmd.current_dir(&self.dir);
        for v in EXAMPLE_VARIABLES {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().copied())
            .envs(extra.iter().copied())
            .arg("compose")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(&[], args)
    }

    /// `compose ARGS`, asserted to succeed: stdout and stderr.
    fn ok_env(&self, extra: &[(&str, &str)], args: &[&str]) -> (String, String) {
        let o = self.run_env(extra, args);
        assert!(
            o.status.success(),
            "{}: compose {args:?} failed ({}):\n{}\n{}",
            self.project,
            o.status,
            stdout(&o),
            stderr(&o)
        );
        (stdout(&o), stderr(&o))
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        self.ok_env(&[], args)
    }

    /// `compose [GLOBAL] config --format json`.
    fn json_env(&self, extra: &[(&str, &str)], global: &[&str]) -> Value {
        let mut args = global.to_vec();
        args.extend(["config", "--format", "json"]);
        let (out, _) = self.ok_env(extra, &args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn json(&self, global: &[&str]) -> Value {
        self.json_env(&[], global)
    }

    /// `compose config` as YAML.
    fn yaml(&self, global: &[&str]) -> String {
        let mut args = global.to_vec();
        args.push("config");
        self.ok(&args).0
    }

    /// `script` run by `sh -c` in the service's first container: its output.
    fn sh(&self, service: &str, script: &str) -> String {
        self.ok(&["exec", "-T", service, "sh", "-c", script]).0
    }

    /// `file`, relative to the copied example, as `config` shows it.
    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        self.b
            .ok(&["inspect", "-f", format, container])
            .trim()
            .to_string()
    }

    /// `[GLOBAL] down -v [EXTRA]`, then nothing of the project is left: no
    /// container, network, volume or file, and nothing on the host.
    fn down(&self, global: &[&str], extra: &[&str]) {
        let ids = ids_with_prefix(self.b, &format!("{}-", self.project));
        assert!(
            !ids.is_empty(),
            "{}: no containers to take down",
            self.project
        );
        let mut args = global.to_vec();
        args.extend(["down", "-v"]);
        args.extend(extra);
        self.ok(&args);
        assert_eq!(
            ids_with_prefix(self.b, &format!("{}-", self.project)),
            Vec::<String>::new()
        );
        let ours = format!("{}_", self.project);
        let networks = self.b.ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(
            !networks.lines().any(|n| n.starts_with(&ours)),
            "{networks}"
        );
        let volumes = self.b.ok(&["volume", "ls", "-q"]);
        assert!(!volumes.lines().any(|v| v.starts_with(&ours)), "{volumes}");
        assert!(!self.b.root.join("compose").join(&self.project).exists());
        assert_eq!(leftovers(self.b, &ids), Vec::<String>::new());
    }
}

/// Poll `f` until it gives something (10 s at most).
fn eventually<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` from `addr` (a published port): the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    eventually(&format!("http://{addr}{path}"), || {
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
    })
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// `for n in NAMES: ping n` in `service`: `name ok` or `name no` per line.
fn pings(ex: &Example, service: &str, names: &[&str]) -> Vec<String> {
    let script = format!(
        "for n in {}; do if ping -c1 -W2 $n >/dev/null 2>&1; then echo \"$n ok\"; else echo \"$n no\"; fi; done",
        names.join(" ")
    );
    ex.sh(service, &script).lines().map(String::from).collect()
}

#[test]
fn services_and_deploy() {
    let b = Berth::new();

    // services: most per-container keys at once.
    let ex = Example::new(&b, "services", "services").with_env("PASSED_THROUGH", "outside");
    let c = ex.json(&[]);
    let app = &c["services"]["app"];
    assert_eq!(app["environment"]["GREETING"], "hello-from-map");
    assert_eq!(app["environment"]["FROM_ENV_FILE"], "yes");
    assert_eq!(app["environment"]["ANSWER"], "42");
    assert_eq!(app["ulimits"]["nproc"]["soft"], 300);
    assert_eq!(app["ulimits"]["nofile"]["hard"], 1024);
    assert_eq!(
        strings(&app["extra_hosts"]),
        [
            "registry.internal:10.20.30.40",
            "mirror.internal:10.20.30.41"
        ]
    );
    assert_eq!(app["healthcheck"]["start_interval"], "200ms");
    assert_eq!(app["shm_size"], 8 << 20);
    let web = &c["services"]["web"];
    assert_eq!(web["environment"]["PASSED_THROUGH"], "outside");
    assert_eq!(web["ports"][1]["target"], 8081);
    assert_eq!(web["ports"][1]["mode"], "host");

    ex.ok(&["up", "-d", "--wait"]);
    let out = ex.sh(
        "app",
        "id -u; id -g; pwd; hostname; cat /proc/sys/kernel/domainname; \
         echo \"$GREETING|$FROM_ENV_FILE|$ANSWER|$QUOTED\"; env | grep -c '^EMPTY_VALUE=$'; \
         ulimit -n; ulimit -Hn; ulimit -u; cat /proc/1/comm; grep CapBnd /proc/self/status; \
         cat /proc/sys/net/core/somaxconn; df -k /dev/shm /scratch | awk 'NR>1 {print $2}'; \
         if touch /written 2>/dev/null; then echo rw; else echo ro; fi; touch /scratch/ok && echo scratch-rw; \
         grep -E 'registry|mirror' /etc/hosts | tr '\\t' ' '; grep -E '^(search|nameserver)' /etc/resolv.conf",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "1000",
            "1000",
            "/home/app",
            "appbox",
            "example.test",
            "hello-from-map|yes|42|two words",
            "1",
            "512",
            "1024",
            "300",
            // init: true runs an init as PID 1.
            "docker-init",
            // cap_drop ALL, cap_add CHOWN (bit 0) and NET_RAW (bit 13).
            "CapBnd:\t0000000000002001",
            "511",
            "8192",
            "1024",
            "ro",
            "scratch-rw",
            "10.20.30.40 registry.internal",
            "10.20.30.41 mirror.internal",
            "search corp.example",
            "nameserver 192.0.2.53",
        ],
        "{out}"
    );
    assert_eq!(
        ex.inspect(
            "services-app-1",
            "{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}} {{.Config.StopSignal}} {{index .Config.Labels \"org.berth.role\"}} {{json .Config.ExposedPorts}}"
        ),
        "healthy unless-stopped SIGKILL worker {\"7000/tcp\":{},\"7001/udp\":{},\"7002/udp\":{}}"
    );
    assert_eq!(
        ex.sh("web", "echo $MODE $PASSED_THROUGH"),
        "list-form outside\n"
    );
    let hostname = ex.sh("web", "hostname");
    for port in ["8080", "8081"] {
        let (addr, _) = ex.ok(&["port", "web", port]);
        let addr = addr.trim();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert_eq!(http_get(addr, "/"), format!("served by {hostname}"));
    }
    ex.down(&[], &[]);

    // deploy: replicas, limits and reservations, restart policy.
    let ex = Example::new(&b, "deploy", "deploy");
    let c = ex.json(&[]);
    let worker = &c["services"]["worker"];
    assert_eq!(worker["scale"], 2);
    assert_eq!(worker["deploy"]["resources"]["limits"]["memory"], 48 << 20);
    assert_eq!(worker["deploy"]["resources"]["limits"]["cpus"], 0.5);
    assert_eq!(worker["deploy"]["resources"]["limits"]["pids"], 64);
    assert_eq!(worker["deploy"]["restart_policy"]["max_attempts"], 3);
    ex.ok(&["up", "-d"]);
    assert_eq!(ids_with_prefix(&b, "deploy-worker-").len(), 2);
    for n in ["deploy-worker-1", "deploy-worker-2"] {
        let limits = b.ok(&[
            "exec",
            n,
            "sh",
            "-c",
            "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.soft_limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us pids/pids.max",
        ]);
        assert_eq!(
            limits.split_whitespace().collect::<Vec<_>>(),
            ["50331648", "16777216", "50000", "100000", "64"],
            "{n}"
        );
        assert_eq!(
            ex.inspect(
                n,
                "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
            ),
            "on-failure 3"
        );
    }
    // on-failure with max_attempts 2: three runs, then it stays down.
    eventually("flaky to give up", || {
        let s = ex.inspect("deploy-flaky-1", "{{.State.Status}} {{.RestartCount}}");
        (s == "exited 2").then_some(())
    });
    let attempts = b.ok(&[
        "run",
        "--rm",
        "-v",
        "deploy_state:/s",
        IMAGE,
        "cat",
        "/s/attempts",
    ]);
    assert_eq!(attempts.lines().count(), 3, "{attempts}");
    ex.down(&[], &[]);
}

#[test]
fn networks_and_volumes() {
    let b = Berth::new();

    // networks: fixed subnets, aliases, an internal network, two networks
    // on one service, service:X namespaces, the default network.
    let ex = Example::new(&b, "networks", "networks");
    let c = ex.json(&[]);
    assert_eq!(
        c["networks"]["frontend"]["ipam"]["config"][0]["subnet"],
        "10.213.10.0/24"
    );
    assert_eq!(c["networks"]["backend"]["internal"], true);
    assert_eq!(c["networks"]["default"]["name"], "networks_default");
    let gw = &c["services"]["gateway"]["networks"];
    assert_eq!(
        strings(&gw["frontend"]["aliases"]),
        ["edge", "www.shop.test"]
    );
    assert_eq!(gw["backend"]["ipv4_address"], "10.213.20.10");
    assert_eq!(c["services"]["sidecar"]["network_mode"], "service:gateway");

    ex.ok(&["up", "-d", "--wait"]);
    let addrs = "ip -4 -o addr | awk '{print $4}' | sort";
    assert_eq!(
        ex.sh("gateway", addrs),
        "10.213.10.10/24\n10.213.20.10/24\n127.0.0.1/8\n"
    );
    // The sidecar shares the gateway's network namespace and hostname.
    assert_eq!(ex.sh("sidecar", addrs), ex.sh("gateway", addrs));
    assert_eq!(ex.sh("sidecar", "hostname"), ex.sh("gateway", "hostname"));
    // On frontend: the gateway by name and aliases; nothing of backend.
    assert_eq!(
        pings(
            &ex,
            "visitor",
            &["edge", "www.shop.test", "gateway", "store", "sidecar"]
        ),
        [
            "edge ok",
            "www.shop.test ok",
            "gateway ok",
            "store no",
            "sidecar no"
        ]
    );
    // On the internal backend: the gateway by its alias there, no way out,
    // and none of frontend's names.
    assert_eq!(
        pings(
            &ex,
            "store",
            &["gateway-internal", "gateway", "edge", "visitor"]
        ),
        ["gateway-internal ok", "gateway ok", "edge no", "visitor no"]
    );
    // As Docker's: an internal network's gateway is the default route
    // until a network with a way out comes (gateway is created on backend,
    // the first key, then connected to frontend).
    assert_eq!(
        ex.sh("store", "ip route | grep default || true"),
        "default via 10.213.20.1 dev eth0 \n"
    );
    assert!(ex
        .sh("gateway", "ip route | grep default")
        .starts_with("default via 10.213.10.1 "));
    let net = |n: &str, f: &str| b.ok(&["network", "inspect", "-f", f, n]);
    assert_eq!(net("networks_backend", "{{.Internal}}"), "true\n");
    assert_eq!(
        net(
            "networks_frontend",
            "{{.Internal}} {{index .Labels \"org.berth.example\"}}"
        ),
        "false networks\n"
    );
    // The service without networks is on the project's default network.
    let loner = ex.sh("loner", addrs);
    assert!(!loner.contains("10.213."), "{loner}");
    assert_eq!(
        pings(&ex, "loner", &["loner", "gateway", "visitor"]),
        ["loner ok", "gateway no", "visitor no"]
    );
    ex.down(&[], &[]);

    // volumes: named (short and long syntax, read-only), bind (short
    // read-only, long with create_host_path), tmpfs, a tmpfs-backed local
    // volume from driver_opts, and an external volume.
    b.ok(&["volume", "create", "volumes-archive"]);
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "volumes-archive:/a",
        IMAGE,
        "sh",
        "-c",
        "echo archived > /a/note.txt",
    ]);
    let ex = Example::new(&b, "volumes", "volumes");
    let c = ex.json(&[]);
    assert_eq!(c["volumes"]["archive"]["external"], true);
    assert_eq!(c["volumes"]["archive"]["name"], "volumes-archive");
    assert_eq!(c["volumes"]["scratch"]["driver_opts"]["type"], "tmpfs");
    assert_eq!(c["volumes"]["data"]["name"], "volumes_data");
    let writer = &c["services"]["writer"]["volumes"];
    assert_eq!(writer[1]["source"], ex.path("site").as_str());
    assert_eq!(writer[1]["read_only"], true);
    assert_eq!(writer[2]["bind"]["create_host_path"], true);
    assert_eq!(writer[3]["tmpfs"]["size"], 2 << 20);
    assert_eq!(
        c["services"]["reader"]["volumes"][0]["volume"]["nocopy"],
        true
    );
    assert!(!ex.dir.join("exchange").exists());

    ex.ok(&["up", "-d", "--wait"]);
    let out = ex.sh(
        "writer",
        "cat /srv/site/index.html /archive/note.txt; \
         for d in /srv/site /archive /data /exchange; do if touch $d/.w 2>/dev/null; then echo \"$d rw\"; else echo \"$d ro\"; fi; done; \
         awk '$2 == \"/cache\" || $2 == \"/scratch\" {print $2, $3}' /proc/mounts | sort; \
         stat -c %a /cache; df -k /cache /scratch | awk 'NR>1 {print $2}'",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "static page",
            "archived",
            "/srv/site ro",
            "/archive ro",
            "/data rw",
            "/exchange rw",
            "/cache tmpfs",
            "/scratch tmpfs",
            "700",
            "2048",
            "4096",
        ],
        "{out}"
    );
    // The writer's file in the shared volume, read-only for the reader.
    let seen = ex.sh(
        "reader",
        "for i in $(seq 50); do test -s /data/shared.txt && break; sleep 0.1; done; \
         cat /data/shared.txt; if touch /data/x 2>/dev/null; then echo rw; else echo ro; fi",
    );
    assert_eq!(seen, "written by writer\nro\n");
    // The long-syntax bind's host directory was made, and is written through.
    let host_file = ex.dir.join("exchange/out.txt");
    let written = eventually("exchange/out.txt", || {
        std::fs::read_to_string(&host_file).ok()
    });
    assert_eq!(written, "from the container\n");
    assert_eq!(
        b.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{index .Labels \"org.berth.example\"}} {{index .Labels \"com.docker.compose.volume\"}}",
            "volumes_data"
        ]),
        "volumes data\n"
    );
    ex.down(&[], &[]);
    // An external volume is not the project's to remove.
    assert!(b
        .ok(&["volume", "ls", "-q"])
        .lines()
        .any(|v| v == "volumes-archive"));
    b.ok(&["volume", "rm", "volumes-archive"]);
}

#[test]
fn configs_secrets_and_interpolation() {
    let b = Berth::new();

    // configs: from a file, an environment variable (.env) and inline
    // content with interpolation.
    let ex = Example::new(&b, "configs", "configs");
    let c = ex.json(&[]);
    assert_eq!(
        c["configs"]["app.ini"]["file"],
        ex.path("conf/app.ini").as_str()
    );
    assert_eq!(c["configs"]["banner"]["environment"], "BANNER_TEXT");
    assert_eq!(
        c["configs"]["generated"]["content"],
        "project=configs\nlevel=debug\nliteral=${NOT_A_VARIABLE}\n"
    );
    // `config` writes the literal `$` escaped, loadable again.
    assert!(
        ex.yaml(&[]).contains("literal=$${NOT_A_VARIABLE}"),
        "{}",
        ex.yaml(&[])
    );
    ex.ok(&["up", "-d", "--wait"]);
    let ini = std::fs::read_to_string(ex.dir.join("conf/app.ini")).unwrap();
    assert_eq!(ex.sh("app", "cat /app.ini"), ini);
    assert_eq!(ex.sh("app", "cat /etc/app/app.ini"), ini);
    assert_eq!(
        ex.sh("app", "cat /etc/app/banner.txt"),
        "Welcome to the configs example"
    );
    assert_eq!(
        ex.sh("app", "cat /etc/app/generated.conf"),
        "project=configs\nlevel=debug\nliteral=${NOT_A_VARIABLE}\n"
    );
    assert_eq!(
        ex.sh(
            "app",
            "if echo x >> /etc/app/app.ini 2>/dev/null; then echo rw; else echo ro; fi"
        ),
        "ro\n"
    );
    ex.down(&[], &[]);

    // secrets: from a file and from the environment of `compose`.
    let ex = Example::new(&b, "secrets", "secrets");
    let c = ex.json(&[]);
    assert_eq!(
        c["secrets"]["db_password"]["file"],
        ex.path("private/db_password.txt").as_str()
    );
    assert_eq!(c["services"]["api"]["secrets"][1]["target"], "token");
    // Without its variable, the secret stops `up`, naming the variable.
    let o = ex.run(&["up", "-d"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("API_TOKEN"), "{}", stderr(&o));
    let ex = ex.with_env("API_TOKEN", "tok-123");
    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(
        ex.sh(
            "api",
            "cat /run/secrets/db_password /run/secrets/token; echo; cat /etc/api/db.pass; \
             if echo x > /run/secrets/token 2>/dev/null; then echo rw; else echo ro; fi"
        ),
        "correct-horse-battery-staple\ntok-123\ncorrect-horse-battery-staple\nro\n"
    );
    // A service sees only the secrets it asks for.
    assert_eq!(ex.sh("worker", "ls /run/secrets"), "api_token\n");
    assert_eq!(ex.sh("worker", "cat /run/secrets/api_token"), "tok-123");
    ex.down(&[], &[]);

    // interpolation: .env, the process environment, --env-file, defaults,
    // a required variable, `$$`.
    let ex = Example::new(&b, "interpolation", "interp");
    let o = ex.run(&["config"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            "required variable RELEASE is missing a value: RELEASE must be set to a release name"
        ),
        "{}",
        stderr(&o)
    );
    let ex = ex.with_env("RELEASE", "r1");
    let c = ex.json(&[]);
    assert_eq!(c["name"], "interp");
    let app = &c["services"]["app"];
    assert_eq!(app["image"], "bb:test");
    assert_eq!(app["labels"]["org.berth.release"], "r1");
    let env = &app["environment"];
    for (k, v) in [
        ("GREETING", "hello-from-dotenv"),
        ("SOURCE", "dotenv"),
        ("PLAIN_DEFAULT", "fallback"),
        ("EMPTY_COLON", "replaced-because-empty"),
        ("EMPTY_DASH", ""),
        ("UNSET_DASH", "used-when-unset"),
        ("NESTED", "hello-from-dotenv-nested"),
        ("PRICE", "$5 and ${NOT_A_VARIABLE}"),
        ("ALTERNATE", "greeting-is-set"),
    ] {
        assert_eq!(env[k], v, "{k}");
    }
    assert!(
        ex.yaml(&[]).contains("PRICE: $$5 and $${NOT_A_VARIABLE}\n"),
        "{}",
        ex.yaml(&[])
    );
    // --env-file replaces .env; it may even name the project.
    let staging = ex.json(&["--env-file", "staging.env"]);
    assert_eq!(staging["name"], "interp-staging");
    let env = &staging["services"]["app"]["environment"];
    assert_eq!(env["GREETING"], "hello-from-staging");
    assert_eq!(env["SOURCE"], "staging-file");
    assert_eq!(env["EMPTY_DASH"], "kept-empty");
    // The process environment wins over .env.
    let ex = ex.with_env("GREETING", "from-shell");
    ex.ok(&["up", "-d", "--wait"]);
    let out = ex.sh(
        "app",
        "echo \"$GREETING|$SOURCE|$NESTED|$EMPTY_DASH|$PRICE\"; test \"$(cat /tmp/literal)\" = \"$(hostname)\" && echo literal-ok",
    );
    assert_eq!(
        out,
        "from-shell|dotenv|from-shell-nested||$5 and ${NOT_A_VARIABLE}\nliteral-ok\n"
    );
    ex.down(&[], &[]);
}

#[test]
fn fragments_extensions_extends_and_merge() {
    let b = Berth::new();

    // fragments: anchors, aliases, merge keys.
    let ex = Example::new(&b, "fragments", "fragments");
    let c = ex.json(&[]);
    let svc = &c["services"];
    assert_eq!(svc["alpha"]["environment"]["LOG_LEVEL"], "info");
    assert_eq!(svc["alpha"]["restart"], "no");
    assert_eq!(strings(&svc["alpha"]["command"]), ["sleep", "600"]);
    assert_eq!(svc["beta"]["environment"]["LOG_LEVEL"], "debug");
    assert_eq!(svc["beta"]["environment"]["TIER"], "backend");
    assert_eq!(svc["beta"]["environment"]["ONLY_BETA"], "true");
    assert_eq!(svc["beta"]["labels"]["org.berth.team"], "data");
    assert_eq!(svc["beta"]["labels"]["org.berth.example"], "fragments");
    assert_eq!(svc["gamma"]["environment"]["REGION"], "us-east");
    assert_eq!(svc["gamma"]["stop_signal"], "SIGKILL");
    assert_eq!(svc["gamma"]["volumes"][0]["target"], "/shared");
    ex.ok(&["up", "-d", "--wait"]);
    let level = ex.sh(
        "beta",
        "for i in $(seq 50); do test -s /shared/level && break; sleep 0.1; done; cat /shared/level; echo $LOG_LEVEL $REGION",
    );
    assert_eq!(level, "info\ndebug eu-west\n");
    ex.down(&[], &[]);

    // extensions: `x-` keys accepted everywhere and kept by `config`.
    let ex = Example::new(&b, "extensions", "extensions");
    let c = ex.json(&[]);
    assert_eq!(c["x-project-owner"], "platform-team");
    assert_eq!(c["services"]["api"]["x-monitoring"]["port"], 9100);
    assert_eq!(c["networks"]["mesh"]["x-mtu-hint"], 1400);
    assert_eq!(c["volumes"]["state"]["x-backup"], "nightly");
    assert_eq!(c["services"]["api"]["image"], "bb:test");
    let yaml = ex.yaml(&[]);
    assert!(
        yaml.contains("\nx-project-owner: platform-team\n"),
        "{yaml}"
    );
    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(ex.sh("api", "echo $ROLE; ls -d /state"), "api\n/state\n");
    ex.down(&[], &[]);

    // extends: in the same file (short, long, chained) and from another
    // file with its own relative paths.
    let ex = Example::new(&b, "extends", "extends");
    let c = ex.json(&[]);
    let svc = &c["services"];
    assert_eq!(svc["child"]["environment"]["LEVEL"], "child");
    assert_eq!(svc["child"]["environment"]["SHARED"], "from-base");
    assert_eq!(svc["child"]["labels"]["org.berth.chain"], "base");
    assert_eq!(svc["child"]["labels"]["org.berth.extra"], "child");
    assert_eq!(svc["grandchild"]["environment"]["LEVEL"], "grandchild");
    assert_eq!(svc["grandchild"]["labels"]["org.berth.extra"], "child");
    assert_eq!(
        strings(&svc["grandchild"]["command"]),
        ["sh", "-c", "exec sleep 601"]
    );
    assert_eq!(svc["remote"]["environment"]["ORIGIN"], "overridden-locally");
    assert_eq!(svc["remote"]["environment"]["FROM_COMMON"], "yes");
    assert_eq!(
        svc["remote"]["volumes"][0]["source"],
        ex.path("shared/defaults").as_str()
    );
    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(
        ex.sh(
            "remote",
            "cat /etc/defaults/app.conf; echo $ORIGIN $FROM_COMMON"
        ),
        "timeout=30\noverridden-locally yes\n"
    );
    assert_eq!(
        ex.sh(
            "grandchild",
            "echo $LEVEL $SHARED; cat /proc/1/cmdline | tr '\\0' ' '"
        ),
        "grandchild from-base\nsleep 601 "
    );
    ex.down(&[], &[]);

    // merge: compose.override.yaml by default, `-f a -f b` otherwise.
    let ex = Example::new(&b, "merge", "merge");
    let c = ex.json(&[]);
    let web = &c["services"]["web"];
    assert_eq!(strings(&web["command"]), ["sh", "-c", "exec sleep 601"]);
    assert_eq!(web["environment"]["MODE"], "development");
    assert_eq!(web["environment"]["BASE_ONLY"], "kept");
    assert_eq!(web["environment"]["DEBUG"], "1");
    assert_eq!(web["labels"]["org.berth.layer"], "override");
    let targets = |w: &Value| -> Vec<i64> {
        w["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["target"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(targets(web), [8080, 8081]);
    assert_eq!(strings(&web["expose"]), ["7000", "7001"]);
    assert_eq!(strings(&web["dns_search"]), ["base.example", "dev.example"]);
    // Volumes merge by target: the override's bind replaces the base's.
    assert_eq!(web["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(web["volumes"][0]["source"], ex.path("dev").as_str());
    let prod_files = ["-f", "compose.yaml", "-f", "production.yaml"];
    let c = ex.json(&prod_files);
    let prod = &c["services"]["web"];
    assert_eq!(strings(&prod["command"]), ["sleep", "602"]);
    assert_eq!(prod["environment"]["MODE"], "production");
    assert!(prod["environment"].get("DEBUG").is_none());
    assert_eq!(prod["restart"], "always");
    assert_eq!(targets(prod), [8080, 9090]);
    assert_eq!(strings(&prod["expose"]), ["7000"]);
    assert_eq!(prod["volumes"][0]["source"], ex.path("base").as_str());

    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(
        ex.sh(
            "web",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $MODE $DEBUG $BASE_ONLY; cat /srv/base/which; grep ^search /etc/resolv.conf"
        ),
        "sleep 601 \ndevelopment 1 kept\ndev-content\nsearch base.example dev.example\n"
    );
    for port in ["8080", "8081"] {
        let (addr, _) = ex.ok(&["port", "web", port]);
        assert!(addr.starts_with("127.0.0.1:"), "{port}: {addr}");
    }
    assert_eq!(
        ex.inspect("merge-web-1", "{{json .Config.ExposedPorts}}"),
        "{\"7000/tcp\":{},\"7001/tcp\":{},\"8080/tcp\":{},\"8081/tcp\":{}}"
    );
    // The production files: web is recreated with their merge.
    let (_, err) = ex.ok(&[&prod_files[..], &["up", "-d", "--wait"]].concat());
    assert!(err.contains("Container merge-web-1  Recreated"), "{err}");
    assert_eq!(
        ex.sh(
            "web",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo $MODE; cat /srv/base/which"
        ),
        "sleep 602 production\nbase-content\n"
    );
    let (addr, _) = ex.ok(&[&prod_files[..], &["port", "web", "9090"]].concat());
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    ex.down(&prod_files, &[]);
}

#[test]
fn include_profiles_and_depends_on() {
    let b = Berth::new();

    // include: two sub-projects with their own directories and env files.
    let ex = Example::new(&b, "include", "include");
    let c = ex.json(&[]);
    let names: Vec<&String> = c["services"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["app", "cache", "db"]);
    assert_eq!(c["services"]["db"]["environment"]["DB_NAME"], "inventory");
    assert_eq!(
        c["services"]["db"]["volumes"][0]["source"],
        ex.path("db/initdb").as_str()
    );
    assert_eq!(c["services"]["cache"]["environment"]["CACHE_SIZE"], "64m");
    assert_eq!(c["services"]["cache"]["environment"]["EVICTION"], "lru");
    assert_eq!(c["networks"]["cache-net"]["name"], "include_cache-net");
    assert_eq!(c["volumes"]["db-data"]["name"], "include_db-data");
    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(pings(&ex, "app", &["db", "cache"]), ["db ok", "cache ok"]);
    assert_eq!(
        ex.sh(
            "db",
            "for i in $(seq 50); do test -s /tmp/loaded && break; sleep 0.1; done; cat /tmp/loaded; echo $DB_NAME"
        ),
        "CREATE TABLE items (id INTEGER);\ninventory\n"
    );
    ex.down(&[], &[]);

    // profiles: --profile, COMPOSE_PROFILES, a service enabled by its name.
    let ex = Example::new(&b, "profiles", "profiles");
    let services = |extra: &[(&str, &str)], global: &[&str]| {
        let mut args = global.to_vec();
        args.extend(["config", "--services"]);
        ex.ok_env(extra, &args).0
    };
    assert_eq!(services(&[], &[]), "app\n");
    assert_eq!(
        services(&[], &["--profile", "debug"]),
        "app\ndebugger\nmetrics\n"
    );
    assert_eq!(
        services(&[("COMPOSE_PROFILES", "tools,monitoring")], &[]),
        "app\nmetrics\nmigrate\n"
    );
    assert_eq!(
        ex.ok(&["config", "--profiles"]).0,
        "debug\nmonitoring\ntools\n"
    );
    ex.ok(&["--profile", "debug", "up", "-d", "--wait"]);
    let running = || {
        let mut n: Vec<String> = b
            .ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"])
            .lines()
            .map(String::from)
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        running(),
        [
            "profiles-app-1 running",
            "profiles-debugger-1 running",
            "profiles-metrics-1 running"
        ]
    );
    // Named, `migrate` runs though its profile is not active (its optional
    // dependency is left out with its profile).
    ex.ok(&["up", "-d", "migrate"]);
    eventually("migrate to exit", || {
        running()
            .contains(&"profiles-migrate-1 exited".to_string())
            .then_some(())
    });
    assert_eq!(
        ex.ok(&["logs", "--no-log-prefix", "migrate"]).0,
        "migrated\n"
    );
    // down takes all of them, profiles or not.
    ex.down(&[], &[]);

    // depends_on: completed, healthy, started; an optional one left out.
    let ex = Example::new(&b, "depends_on", "depends_on");
    let c = ex.json(&[]);
    let deps = &c["services"]["app"]["depends_on"];
    assert_eq!(deps["seed"]["condition"], "service_completed_successfully");
    assert_eq!(deps["db"]["condition"], "service_healthy");
    assert_eq!(deps["db"]["restart"], true);
    assert_eq!(deps["queue"]["condition"], "service_started");
    assert_eq!(deps["tracing"]["required"], false);
    assert!(c["services"].get("tracing").is_none());
    let (_, err) = ex.ok(&["up", "-d", "--wait"]);
    let at = |line: &str| {
        err.find(&format!("Container depends_on-{line}"))
            .unwrap_or_else(|| panic!("no {line:?} in:\n{err}"))
    };
    let app_started = at("app-1  Started");
    assert!(at("seed-1  Exited") < app_started, "{err}");
    assert!(at("db-1  Healthy") < app_started, "{err}");
    assert!(at("queue-1  Started") < app_started, "{err}");
    assert!(ids_with_prefix(&b, "depends_on-tracing-").is_empty());
    let log = eventually("app's output", || {
        let (out, _) = ex.ok(&["logs", "--no-log-prefix", "app"]);
        out.contains("db reachable").then_some(out)
    });
    assert_eq!(log, "seeded-at-startup\ndb reachable\n");
    ex.down(&[], &[]);
}

#[test]
fn build_and_develop() {
    let b = Berth::new();

    // build: context, dockerfile, args (one from the environment), target
    // stage, labels; the short form named after the project.
    let ex = Example::new(&b, "build", "build").with_env("BUILD_NUMBER", "77");
    let c = ex.json(&[]);
    let build = &c["services"]["app"]["build"];
    assert_eq!(build["context"], ex.path("app").as_str());
    assert_eq!(build["dockerfile"], "docker/app.Dockerfile");
    assert_eq!(build["target"], "runtime");
    assert_eq!(build["args"]["GREETING"], "hello-from-args");
    assert_eq!(build["args"]["BUILD_NUMBER"], "77");
    assert_eq!(build["labels"]["org.berth.stage"], "runtime");
    assert_eq!(
        c["services"]["tool"]["build"]["context"],
        ex.path("tool").as_str()
    );
    ex.ok(&["up", "-d", "--wait"]);
    assert_eq!(
        ex.sh("app", "pwd; cat banner message.txt; echo $APP_STAGE"),
        "/opt/app\nhello-from-args build 77\ncopied from the build context\nruntime\n"
    );
    assert_eq!(ex.sh("tool", "cat /tool.txt"), "tool image\n");
    assert_eq!(
        b.ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"org.berth.example\"}} {{index .Config.Labels \"org.berth.stage\"}}",
            "build-app:dev"
        ]),
        "build runtime\n"
    );
    let images = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("build-tool:latest"), "{images}");
    ex.down(&[], &["--rmi", "all"]);
    let images = b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images, "bb:test\n");

    // develop: watch rules accepted and shown with absolute paths; `up`
    // runs the service as usual.
    let ex = Example::new(&b, "develop", "develop");
    let c = ex.json(&[]);
    let watch = &c["services"]["web"]["develop"]["watch"];
    assert_eq!(watch[0]["action"], "sync");
    assert_eq!(watch[0]["path"], ex.path("src").as_str());
    assert_eq!(watch[0]["target"], "/srv/app/src");
    assert_eq!(strings(&watch[0]["ignore"]), ["*.tmp", "cache/"]);
    assert_eq!(watch[1]["action"], "sync+restart");
    assert_eq!(watch[1]["target"], "/etc/web");
    assert_eq!(watch[2]["action"], "restart");
    assert_eq!(watch[2]["path"], ex.path("restart-trigger.txt").as_str());
    assert!(watch[2].get("target").is_none());
    assert_eq!(watch[3]["action"], "rebuild");
    assert_eq!(watch[3]["path"], ex.path("web").as_str());
    let yaml = ex.yaml(&[]);
    assert!(yaml.contains("    develop:\n      watch:\n"), "{yaml}");
    ex.ok(&["up", "-d", "--wait"]);
    let log = eventually("web's output", || {
        let (out, _) = ex.ok(&["logs", "--no-log-prefix", "web"]);
        (!out.is_empty()).then_some(out)
    });
    assert_eq!(log, "v1\n");
    ex.down(&[], &["--rmi", "local"]);
    let images = b.ok(&["images", "--format", "{{.Repository}}"]);
    assert_eq!(images, "bb\n");
}
