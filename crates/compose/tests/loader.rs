//! The Compose loader end to end: files in a temporary directory, loaded
//! through the public API, checked against what docker compose makes of
//! them.
use std::collections::BTreeMap;
use std::path::PathBuf;

use compose::loader::{load, to_yaml, LoadError, LoadOptions};
use compose::model::{
    BindOptions, Dependency, GoDuration, Port, Project, ServiceVolume, Ulimit, VolumeOptions,
};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    /// A project directory named `myproj` inside a temporary directory.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("myproj");
        std::fs::create_dir_all(&root).unwrap();
        Fixture { _tmp: tmp, root }
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            working_dir: self.root.clone(),
            environment: [("HOME".to_string(), "/home/tester".to_string())].into(),
            ..LoadOptions::default()
        }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_string_lossy().into_owned()
    }

    fn load(&self) -> Result<Project, LoadError> {
        load(&self.opts())
    }

    /// Load `text` as `compose.yaml`.
    fn project(&self, text: &str) -> Project {
        self.write("compose.yaml", text);
        match self.load() {
            Ok(p) => p,
            Err(e) => panic!("load failed: {e}"),
        }
    }

    /// The error of loading `text` as `compose.yaml`.
    fn error(&self, text: &str) -> String {
        self.write("compose.yaml", text);
        match self.load() {
            Ok(_) => panic!("loading succeeded:\n{text}"),
            Err(e) => e.to_string(),
        }
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn port(target: u16, published: Option<&str>, host_ip: Option<&str>, protocol: &str) -> Port {
    Port {
        target,
        published: published.map(String::from),
        host_ip: host_ip.map(String::from),
        protocol: protocol.into(),
        mode: "ingress".into(),
    }
}

// ---- discovery, files, project directory ----------------------------------

#[test]
fn discovery_walks_up_from_the_working_directory() {
    let f = Fixture::new();
    f.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    build: ./app\n",
    );
    std::fs::create_dir_all(f.root.join("a/b")).unwrap();
    let mut opts = f.opts();
    opts.working_dir = f.root.join("a/b");
    let p = load(&opts).unwrap();
    assert_eq!(p.working_dir, f.root);
    assert_eq!(p.files, vec![f.root.join("compose.yaml")]);
    assert_eq!(p.name, "myproj");
    assert_eq!(
        p.services["web"].build.as_ref().unwrap().context,
        f.path("app")
    );
}

#[test]
fn discovery_prefers_compose_yaml_and_merges_the_override_file() {
    let f = Fixture::new();
    f.write("docker-compose.yml", "services:\n  old:\n    image: old\n");
    f.write(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n",
    );
    f.write(
        "compose.override.yaml",
        "services:\n  web:\n    image: nginx:1.25\n    ports: ['443:443']\n",
    );
    let p = f.load().unwrap();
    assert_eq!(
        p.files,
        vec![
            f.root.join("compose.yaml"),
            f.root.join("compose.override.yaml")
        ]
    );
    assert!(!p.services.contains_key("old"));
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(
        web.ports,
        vec![
            port(80, Some("80"), None, "tcp"),
            port(443, Some("443"), None, "tcp")
        ]
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("Found multiple config files")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn no_file_is_docker_composes_error() {
    let f = Fixture::new();
    let e = f.load().unwrap_err();
    assert!(matches!(e, LoadError::NoConfigFile));
    assert_eq!(e.to_string(), "no configuration file provided: not found");
}

#[test]
fn compose_file_variable_lists_the_files() {
    let f = Fixture::new();
    f.write("base.yml", "services:\n  web:\n    image: a\n");
    f.write("more/extra.yml", "services:\n  web:\n    user: root\n");
    f.write("compose.yaml", "services:\n  ignored:\n    image: x\n");
    let mut opts = f.opts();
    opts.environment
        .insert("COMPOSE_FILE".into(), "base.yml:more/extra.yml".into());
    let p = load(&opts).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["web"]);
    assert_eq!(p.services["web"].user.as_deref(), Some("root"));
    // COMPOSE_FILE may come from .env too.
    f.write(".env", "COMPOSE_FILE=more/extra.yml:base.yml\n");
    let p = f.load().unwrap();
    assert_eq!(p.services["web"].image.as_deref(), Some("a"));
    assert_eq!(p.files[0], f.root.join("more/extra.yml"));
}

#[test]
fn project_directory_anchors_relative_paths_of_every_file() {
    let f = Fixture::new();
    f.write("compose.yaml", "services:\n  web:\n    build: ./app\n");
    f.write(
        "sub/override.yaml",
        "services:\n  web:\n    volumes: ['./data:/data']\n",
    );
    let mut opts = f.opts();
    opts.files = vec!["compose.yaml".into(), "sub/override.yaml".into()];
    let p = load(&opts).unwrap();
    // Relative to the project directory (the first file's), not to sub/.
    assert_eq!(
        p.services["web"].volumes[0].source.as_deref(),
        Some(f.path("data").as_str())
    );
    opts.project_directory = Some("sub".into());
    let p = load(&opts).unwrap();
    assert_eq!(p.working_dir, f.root.join("sub"));
    assert_eq!(
        p.services["web"].build.as_ref().unwrap().context,
        f.path("sub/app")
    );
    assert_eq!(p.name, "sub");
}

// ---- merging -f files -------------------------------------------------------

fn merged(base: &str, over: &str) -> Project {
    let f = Fixture::new();
    f.write("a.yaml", base);
    f.write("b.yaml", over);
    let mut opts = f.opts();
    opts.files = vec!["a.yaml".into(), "b.yaml".into()];
    match load(&opts) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn merge_scalars_later_file_wins() {
    let p = merged(
        "services:\n  web:\n    image: a\n    user: root\n    restart: always\n",
        "services:\n  web:\n    image: b\n    restart: \"no\"\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("b"));
    assert_eq!(web.user.as_deref(), Some("root"));
    assert_eq!(web.restart.as_deref(), Some("no"));
}

#[test]
fn merge_replaces_command_entrypoint_and_healthcheck_test() {
    let p = merged(
        "services:\n  web:\n    image: a\n    command: [a, b]\n    entrypoint: [x, y]\n    healthcheck:\n      test: [CMD, one]\n      retries: 3\n",
        "services:\n  web:\n    command: c d\n    entrypoint: [z]\n    healthcheck:\n      test: two\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.command, Some(vec!["c".to_string(), "d".to_string()]));
    assert_eq!(web.entrypoint, Some(vec!["z".to_string()]));
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, vec!["CMD-SHELL", "two"]);
    assert_eq!(hc.retries, Some(3));
}

#[test]
fn merge_environment_labels_sysctls_by_name() {
    let p = merged(
        "services:\n  web:\n    image: a\n    environment: [A=1, B=2]\n    labels: {x: '1'}\n    sysctls: [net.core.somaxconn=1024]\n",
        "services:\n  web:\n    environment: {B: 3, C: 4}\n    labels: [y=2]\n    sysctls: {net.ipv4.ip_forward: 1}\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.environment, env(&[("A", "1"), ("B", "3"), ("C", "4")]));
    assert_eq!(web.labels, env(&[("x", "1"), ("y", "2")]));
    assert_eq!(
        web.sysctls,
        env(&[("net.core.somaxconn", "1024"), ("net.ipv4.ip_forward", "1")])
    );
}

#[test]
fn merge_appends_ports_expose_dns_tmpfs_uniquely() {
    let p = merged(
        "services:\n  web:\n    image: a\n    ports: ['80:80', '443:443']\n    expose: ['9000']\n    dns: 1.1.1.1\n    dns_search: [a.example]\n    tmpfs: /run\n    external_links: [db1]\n",
        "services:\n  web:\n    ports: ['443:443', 8080]\n    expose: ['9000', '9001']\n    dns: [8.8.8.8, 1.1.1.1]\n    dns_search: b.example\n    tmpfs: [/tmp]\n    external_links: [db2]\n",
    );
    let web = &p.services["web"];
    assert_eq!(
        web.ports,
        vec![
            port(80, Some("80"), None, "tcp"),
            port(443, Some("443"), None, "tcp"),
            port(8080, None, None, "tcp")
        ]
    );
    assert_eq!(web.expose, vec!["9000", "9001"]);
    assert_eq!(web.dns, vec!["1.1.1.1", "8.8.8.8"]);
    assert_eq!(web.dns_search, vec!["a.example", "b.example"]);
    assert_eq!(web.tmpfs, vec!["/run", "/tmp"]);
    assert_eq!(web.external_links, vec!["db1", "db2"]);
}

#[test]
fn merge_volumes_secrets_configs_by_target() {
    let p = merged(
        "services:\n  web:\n    image: a\n    volumes: ['data:/data', './src:/src']\n    secrets: [token]\n    configs: [{source: c1, target: /etc/app.conf}]\nvolumes:\n  data:\n  other:\nsecrets:\n  token: {file: ./token}\n  token2: {file: ./token2}\nconfigs:\n  c1: {content: one}\n  c2: {content: two}\n",
        "services:\n  web:\n    volumes: ['other:/data:ro']\n    secrets: [{source: token2, target: token}]\n    configs: [{source: c2, target: /etc/app.conf}]\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.volumes.len(), 2);
    assert_eq!(web.volumes[0].source.as_deref(), Some("other"));
    assert!(web.volumes[0].read_only);
    assert_eq!(web.volumes[1].target, "/src");
    assert_eq!(
        web.secrets.len(),
        2,
        "token and token2 target differently: {:?}",
        web.secrets
    );
    assert_eq!(web.configs.len(), 1);
    assert_eq!(web.configs[0].source, "c2");
}

#[test]
fn merge_depends_on_networks_and_extra_hosts_by_name() {
    let p = merged(
        "services:\n  web:\n    image: a\n    depends_on: [db]\n    networks: [front]\n    extra_hosts: ['a.local:10.0.0.1']\n  db: {image: db}\n  cache: {image: c}\nnetworks:\n  front:\n  back:\n",
        "services:\n  web:\n    depends_on:\n      cache: {condition: service_healthy}\n    networks:\n      back: {aliases: [api]}\n    extra_hosts: {b.local: 10.0.0.2}\n",
    );
    let web = &p.services["web"];
    assert_eq!(
        web.depends_on.keys().collect::<Vec<_>>(),
        vec!["cache", "db"]
    );
    assert_eq!(web.depends_on["cache"].condition, "service_healthy");
    assert_eq!(web.depends_on["db"], Dependency::default());
    assert_eq!(
        web.networks.keys().collect::<Vec<_>>(),
        vec!["back", "front"]
    );
    assert_eq!(web.networks["back"].aliases, vec!["api"]);
    assert_eq!(
        web.extra_hosts,
        vec!["a.local:10.0.0.1", "b.local:10.0.0.2"]
    );
}

#[test]
fn merge_build_string_with_mapping() {
    let p = merged(
        "services:\n  web:\n    build: ./app\n",
        "services:\n  web:\n    build:\n      dockerfile: Dev.Dockerfile\n      args: [A=1]\n",
    );
    let b = p.services["web"].build.clone().unwrap();
    assert!(b.context.ends_with("/myproj/app"), "{}", b.context);
    assert_eq!(b.dockerfile.as_deref(), Some("Dev.Dockerfile"));
    assert_eq!(b.args, env(&[("A", "1")]));
}

#[test]
fn merge_reset_and_override_tags() {
    let p = merged(
        "services:\n  web:\n    image: a\n    user: root\n    ports: ['80:80']\n    environment: [A=1, B=2]\n",
        "services:\n  web:\n    user: !reset null\n    ports: !override ['8080:80']\n    environment:\n      B: !reset null\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.user, None);
    assert_eq!(web.ports, vec![port(80, Some("8080"), None, "tcp")]);
    assert_eq!(web.environment, env(&[("A", "1")]));
}

// ---- project name -------------------------------------------------------------

#[test]
fn project_name_precedence() {
    let f = Fixture::new();
    f.write(
        "compose.yaml",
        "name: From-File\nservices:\n  web: {image: a}\n",
    );
    assert_eq!(f.load().unwrap().name, "from-file");

    f.write(".env", "COMPOSE_PROJECT_NAME=dotenv\n");
    assert_eq!(f.load().unwrap().name, "dotenv");

    let mut opts = f.opts();
    opts.environment
        .insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
    assert_eq!(load(&opts).unwrap().name, "fromenv");

    opts.project_name = Some("flag".into());
    assert_eq!(load(&opts).unwrap().name, "flag");

    std::fs::remove_file(f.root.join(".env")).unwrap();
    f.write("compose.yaml", "services:\n  web: {image: a}\n");
    assert_eq!(f.load().unwrap().name, "myproj");
}

#[test]
fn project_names_are_checked_or_normalized() {
    let f = Fixture::new();
    f.write("compose.yaml", "name: ${PROJ:-My App.v2}\nservices:\n  web:\n    image: a\n    labels:\n      - p=${COMPOSE_PROJECT_NAME}\n");
    let p = f.load().unwrap();
    assert_eq!(p.name, "myappv2");
    assert_eq!(p.services["web"].labels["p"], "myappv2");
    let mut opts = f.opts();
    opts.project_name = Some("Bad Name".into());
    let e = load(&opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid project name \"Bad Name\": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    );
    let odd = f.root.join("Odd.Dir_Name");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(odd.join("compose.yaml"), "services:\n  web: {image: a}\n").unwrap();
    let mut opts = f.opts();
    opts.working_dir = odd;
    assert_eq!(load(&opts).unwrap().name, "odddir_name");
}

// ---- .env and interpolation -------------------------------------------------------

#[test]
fn dotenv_feeds_interpolation_and_the_process_environment_wins() {
    let f = Fixture::new();
    f.write(
        ".env",
        "# settings\nTAG=1.25\nexport REGISTRY=docker.io\nIMAGE=${REGISTRY}/nginx:${TAG}\nPORT=80 # comment\nMSG=\"a\\nb\"\nRAW='$TAG'\n",
    );
    f.write(
        "compose.yaml",
        "services:\n  web:\n    image: $IMAGE\n    ports: ['${PORT}:80']\n    environment:\n      MSG: $MSG\n      RAW: $RAW\n",
    );
    let p = f.load().unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("docker.io/nginx:1.25"));
    assert_eq!(web.ports[0].published.as_deref(), Some("80"));
    assert_eq!(web.environment["MSG"], "a\nb");
    assert_eq!(web.environment["RAW"], "$TAG");

    let mut opts = f.opts();
    opts.environment.insert("TAG".into(), "1.27".into());
    let p = load(&opts).unwrap();
    assert_eq!(
        p.services["web"].image.as_deref(),
        Some("docker.io/nginx:1.27")
    );

    f.write("other.env", "IMAGE=busybox\nPORT=8080\n");
    let mut opts = f.opts();
    opts.env_files = vec!["other.env".into()];
    let p = load(&opts).unwrap();
    assert_eq!(p.services["web"].image.as_deref(), Some("busybox"));
}

#[test]
fn interpolation_forms() {
    let f = Fixture::new();
    f.write(".env", "SET=yes\nEMPTY=\n");
    let p = f.project(
        "services:\n  web:\n    image: busybox\n    environment:\n      plain: $SET\n      braced: ${SET}\n      dflt: ${UNSET:-d}\n      dflt_empty: ${EMPTY:-d}\n      dash: ${EMPTY-d}\n      dash_unset: ${UNSET-d}\n      plus: ${SET:+alt}\n      plus_empty: ${EMPTY:+alt}\n      plus_set: ${EMPTY+alt}\n      nested: ${UNSET:-${SET}-x}\n      dollar: $$SET and $${SET}\n      q: ${SET?never}\n      missing: $NOT_THERE\n      number: 5\n    scale: ${REPLICAS:-2}\n",
    );
    let e = &p.services["web"].environment;
    let want = env(&[
        ("plain", "yes"),
        ("braced", "yes"),
        ("dflt", "d"),
        ("dflt_empty", "d"),
        ("dash", ""),
        ("dash_unset", "d"),
        ("plus", "alt"),
        ("plus_empty", ""),
        ("plus_set", "alt"),
        ("nested", "yes-x"),
        ("dollar", "$SET and ${SET}"),
        ("q", "yes"),
        ("missing", ""),
        ("number", "5"),
    ]);
    assert_eq!(e, &want);
    assert_eq!(p.services["web"].scale, Some(2));
    assert_eq!(
        p.warnings,
        vec!["The \"NOT_THERE\" variable is not set. Defaulting to a blank string.".to_string()]
    );
    // `config` writes a literal `$` as `$$`: its output loads back the same.
    let yaml = to_yaml(&p);
    assert!(yaml.contains("dollar: $$SET and $${SET}\n"), "{yaml}");
    f.write("compose.yaml", &yaml);
    assert_eq!(&f.load().unwrap().services["web"].environment, e);
}

#[test]
fn interpolation_errors_name_file_line_and_key() {
    let f = Fixture::new();
    assert_eq!(
        f.error("services:\n  web:\n    image: ${IMAGE:?set IMAGE first}\n"),
        "compose.yaml:3: services.web.image: required variable IMAGE is missing a value: set IMAGE first"
    );
    assert_eq!(
        f.error("services:\n  web:\n    image: a\n    environment:\n      - X=${oops\n"),
        "compose.yaml:5: services.web.environment[0]: invalid template: \"X=${oops\""
    );
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let f = Fixture::new();
    let p = f.project(
        "x-common: &common\n  restart: unless-stopped\n  environment:\n    TZ: UTC\n  logging:\n    driver: json-file\n    options: {max-size: 10m}\nx-image: &img nginx:1.25\nservices:\n  web:\n    <<: *common\n    image: *img\n  worker:\n    <<: *common\n    image: *img\n    restart: always\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.environment, env(&[("TZ", "UTC")]));
    assert_eq!(web.logging.as_ref().unwrap().options["max-size"], "10m");
    assert_eq!(p.services["worker"].restart.as_deref(), Some("always"));
}

#[test]
fn extensions_are_kept_for_config_and_left_out_of_the_hash() {
    let f = Fixture::new();
    let text = "x-owner: team-a\nservices:\n  web:\n    image: nginx\n    x-tier: {level: 2, tags: [a, b]}\nnetworks:\n  front:\n    x-mtu: 1400\nvolumes:\n  data:\n    x-backup: \"${BACKUP:-daily}\"\nsecrets:\n  token:\n    file: ./t\n    x-rotate: true\n";
    let p = f.project(text);
    assert_eq!(p.extensions["x-owner"], "team-a");
    let web = &p.services["web"];
    assert_eq!(web.extensions["x-tier"]["level"], 2);
    assert_eq!(web.extensions["x-tier"]["tags"][1], "b");
    assert_eq!(p.networks["front"].extensions["x-mtu"], 1400);
    assert_eq!(p.volumes["data"].extensions["x-backup"], "daily");
    assert_eq!(p.secrets["token"].extensions["x-rotate"], true);
    let yaml = to_yaml(&p);
    assert!(yaml.contains("\nx-owner: team-a\n"), "{yaml}");
    assert!(yaml.contains("    x-tier:\n      level: 2\n"), "{yaml}");
    // What `config` prints loads back the same.
    f.write("compose.yaml", &yaml);
    assert_eq!(to_yaml(&f.load().unwrap()), yaml);
    // They mean nothing to the container: its config hash ignores them.
    let plain = f.project("services:\n  web:\n    image: nginx\n");
    assert_eq!(
        compose::project::config_hash(web),
        compose::project::config_hash(&plain.services["web"])
    );
}

#[test]
fn develop_watch_rules_and_what_berth_ignores_of_them() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    build: .\n    develop:\n      watch:\n        - {action: sync, path: ./src, target: /app, ignore: [\"*.tmp\"], initial_sync: true}\n        - action: sync+exec\n          path: ./conf\n          target: /etc/app\n          exec: {command: [kill, -HUP, \"1\"]}\n        - {action: rebuild, path: ./Dockerfile, include: [Dockerfile]}\n",
    );
    let watch = &p.services["web"].develop.as_ref().unwrap().watch;
    let summary: Vec<(&str, &str, Option<&str>)> = watch
        .iter()
        .map(|w| (w.action.as_str(), w.path.as_str(), w.target.as_deref()))
        .collect();
    let (src, conf, dockerfile) = (f.path("src"), f.path("conf"), f.path("Dockerfile"));
    assert_eq!(
        summary,
        [
            ("sync", src.as_str(), Some("/app")),
            ("sync+exec", conf.as_str(), Some("/etc/app")),
            ("rebuild", dockerfile.as_str(), None),
        ]
    );
    assert_eq!(watch[0].ignore, ["*.tmp"]);
    for w in [
        "services.web.develop.watch[0]: `initial_sync` is not supported by berth and is ignored",
        "services.web.develop.watch[1]: `exec` is not supported by berth and is ignored",
        "services.web.develop.watch[2]: `include` is not supported by berth and is ignored",
    ] {
        assert!(p.warnings.iter().any(|x| x == w), "{w}: {:?}", p.warnings);
    }
}

// ---- extends, include ---------------------------------------------------------------

#[test]
fn extends_in_the_same_file_and_string_form() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  base:\n    image: app\n    environment: [A=1, B=2]\n    ports: ['80']\n  mid:\n    extends: base\n    environment: [B=3]\n  web:\n    extends:\n      service: mid\n    command: run\n    ports: ['81']\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("app"));
    assert_eq!(web.environment, env(&[("A", "1"), ("B", "3")]));
    assert_eq!(web.command, Some(vec!["run".to_string()]));
    assert_eq!(
        web.ports.iter().map(|p| p.target).collect::<Vec<_>>(),
        vec![80, 81]
    );
}

#[test]
fn extends_from_another_file_keeps_its_relative_paths() {
    let f = Fixture::new();
    f.write(
        "common/base.yaml",
        "services:\n  app:\n    build: ./src\n    env_file: app.env\n    volumes: ['./conf:/conf']\n  root:\n    image: r\n",
    );
    f.write("common/app.env", "FROM_FILE=1\n");
    let p = f.project(
        "services:\n  web:\n    extends:\n      file: common/base.yaml\n      service: app\n    volumes: ['./data:/data']\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.build.as_ref().unwrap().context, f.path("common/src"));
    assert_eq!(web.environment, env(&[("FROM_FILE", "1")]));
    let sources: Vec<_> = web
        .volumes
        .iter()
        .map(|v| v.source.clone().unwrap())
        .collect();
    assert_eq!(sources, vec![f.path("common/conf"), f.path("data")]);
    assert!(
        !p.services.contains_key("app"),
        "only the extended file's service is used"
    );
}

#[test]
fn extends_errors() {
    let f = Fixture::new();
    assert_eq!(
        f.error("services:\n  web:\n    extends: nope\n"),
        "compose.yaml:3: services.web.extends: cannot extend service \"web\" in compose.yaml: service \"nope\" not found"
    );
    f.write("other.yaml", "services:\n  x: {image: a}\n");
    assert_eq!(
        f.error("services:\n  web:\n    extends: {file: other.yaml, service: y}\n"),
        "compose.yaml:3: services.web.extends: cannot extend service \"web\" in compose.yaml: service \"y\" not found in other.yaml"
    );
    let e = f.error("services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: a\n");
    assert!(
        e.contains("circular reference: a in compose.yaml extends b in compose.yaml extends a in compose.yaml"),
        "{e}"
    );
}

#[test]
fn include_loads_other_projects_with_their_own_env_and_paths() {
    let f = Fixture::new();
    f.write(
        "db/compose.yaml",
        "services:\n  db:\n    image: postgres:${PG_VERSION}\n    volumes: ['./init:/docker-entrypoint-initdb.d', 'pgdata:/var/lib/postgresql/data']\nvolumes:\n  pgdata:\n",
    );
    f.write("db/.env", "PG_VERSION=16\n");
    let p = f.project(
        "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: web\n    depends_on: [db]\n",
    );
    let db = &p.services["db"];
    assert_eq!(db.image.as_deref(), Some("postgres:16"));
    assert_eq!(
        db.volumes[0].source.as_deref(),
        Some(f.path("db/init").as_str())
    );
    assert_eq!(p.volumes["pgdata"].name, "myproj_pgdata");
    assert!(p.services["web"].depends_on.contains_key("db"));
}

#[test]
fn include_long_syntax_and_errors() {
    let f = Fixture::new();
    f.write(
        "lib/svc.yaml",
        "services:\n  api:\n    build: .\n    image: api:${V:-0}\n",
    );
    f.write("lib.env", "V=7\n");
    let p = f.project(
        "include:\n  - path: lib/svc.yaml\n    project_directory: lib\n    env_file: lib.env\nservices:\n  web: {image: w}\n",
    );
    assert_eq!(p.services["api"].image.as_deref(), Some("api:7"));
    assert_eq!(
        p.services["api"].build.as_ref().unwrap().context,
        f.path("lib")
    );

    assert_eq!(
        f.error("include:\n  - lib/svc.yaml\nservices:\n  api: {image: mine}\n"),
        "compose.yaml:2: include[0]: services.api conflicts with imported resource"
    );
    f.write(
        "loop/a.yaml",
        "include: [b.yaml]\nservices:\n  a: {image: a}\n",
    );
    f.write(
        "loop/b.yaml",
        "include: [a.yaml]\nservices:\n  b: {image: b}\n",
    );
    let e = f.error("include: [loop/a.yaml]\nservices:\n  w: {image: w}\n");
    assert!(e.contains("include cycle detected"), "{e}");
}

// ---- profiles ---------------------------------------------------------------------------

const PROFILED: &str = "services:\n  web:\n    image: w\n  debug:\n    image: d\n    profiles: [debug]\n  tools:\n    image: t\n    profiles: [tools, ops]\n";

#[test]
fn profiles_from_flag_and_environment() {
    let f = Fixture::new();
    f.write("compose.yaml", PROFILED);
    let p = f.load().unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["web"]);
    assert_eq!(
        p.disabled.keys().collect::<Vec<_>>(),
        vec!["debug", "tools"]
    );

    let mut opts = f.opts();
    opts.profiles = vec!["ops".into()];
    let p = load(&opts).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["tools", "web"]);

    let mut opts = f.opts();
    opts.environment
        .insert("COMPOSE_PROFILES".into(), "debug, tools".into());
    let p = load(&opts).unwrap();
    assert_eq!(p.services.len(), 3);
    assert!(p.disabled.is_empty());

    let mut opts = f.opts();
    opts.profiles = vec!["*".into()];
    assert_eq!(load(&opts).unwrap().services.len(), 3);
}

#[test]
fn dependencies_on_disabled_services() {
    let f = Fixture::new();
    let e = f.error(
        "services:\n  web:\n    image: w\n    depends_on: [debug]\n  debug:\n    image: d\n    profiles: [debug]\n",
    );
    assert_eq!(
        e,
        "compose.yaml:4: services.web.depends_on[0]: service \"web\" depends on service \"debug\", which is disabled by its profiles: invalid compose project"
    );
    let p = f.project(
        "services:\n  web:\n    image: w\n    depends_on:\n      debug: {condition: service_started, required: false}\n  debug:\n    image: d\n    profiles: [debug]\n",
    );
    assert!(!p.services["web"].depends_on["debug"].required);
    // A disabled service's own references are not checked.
    f.project("services:\n  web: {image: w}\n  off:\n    image: o\n    profiles: [x]\n    volumes: ['undeclared:/x']\n");
}

// ---- short syntax into long syntax ----------------------------------------------------------

#[test]
fn ports_short_and_long_syntax() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    image: a\n    ports:\n      - 80\n      - '8080:80'\n      - 127.0.0.1:9000:9000\n      - 127.0.0.1::5000\n      - 6000-6001:7000-7001/udp\n      - '[::1]:53:53/udp'\n      - 9100-9110:91\n      - target: 443\n        published: 8443\n        host_ip: 0.0.0.0\n        protocol: tcp\n        mode: host\n        name: https\n        app_protocol: https\n",
    );
    let mut host = port(443, Some("8443"), Some("0.0.0.0"), "tcp");
    host.mode = "host".into();
    assert_eq!(
        p.services["web"].ports,
        vec![
            port(80, None, None, "tcp"),
            port(80, Some("8080"), None, "tcp"),
            port(9000, Some("9000"), Some("127.0.0.1"), "tcp"),
            port(5000, None, Some("127.0.0.1"), "tcp"),
            port(7000, Some("6000"), None, "udp"),
            port(7001, Some("6001"), None, "udp"),
            port(53, Some("53"), Some("::1"), "udp"),
            port(91, Some("9100-9110"), None, "tcp"),
            host,
        ]
    );
}

#[test]
fn volumes_short_and_long_syntax() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    image: a\n    volumes:\n      - data:/var/lib/data:nocopy\n      - ./src:/app:ro,z\n      - /etc/hosts:/etc/hosts:ro\n      - ~/.cache:/root/.cache\n      - /anon\n      - type: bind\n        source: conf\n        target: /conf/\n        bind: {propagation: rshared, create_host_path: true}\n      - type: volume\n        source: data\n        target: /sub\n        volume: {subpath: a/b}\n      - type: tmpfs\n        target: /scratch\n        tmpfs: {size: 64m, mode: 01777}\nvolumes:\n  data:\n",
    );
    let v = &p.services["web"].volumes;
    let named = |source: Option<&str>, target: &str, nocopy: bool| ServiceVolume {
        kind: "volume".into(),
        source: source.map(String::from),
        target: target.into(),
        volume: Some(VolumeOptions {
            nocopy,
            subpath: None,
        }),
        ..ServiceVolume::default()
    };
    let bind = |source: String, target: &str, ro: bool, selinux: Option<&str>| ServiceVolume {
        kind: "bind".into(),
        source: Some(source),
        target: target.into(),
        read_only: ro,
        bind: Some(BindOptions {
            propagation: None,
            create_host_path: true,
            selinux: selinux.map(String::from),
        }),
        ..ServiceVolume::default()
    };
    assert_eq!(v[0], named(Some("data"), "/var/lib/data", true));
    assert_eq!(v[1], bind(f.path("src"), "/app", true, Some("z")));
    assert_eq!(v[2], bind("/etc/hosts".into(), "/etc/hosts", true, None));
    assert_eq!(
        v[3],
        bind("/home/tester/.cache".into(), "/root/.cache", false, None)
    );
    assert_eq!(v[4], named(None, "/anon", false));
    assert_eq!(v[5].source.as_deref(), Some(f.path("conf").as_str()));
    assert_eq!(v[5].target, "/conf");
    assert_eq!(
        v[5].bind.as_ref().unwrap().propagation.as_deref(),
        Some("rshared")
    );
    assert_eq!(
        v[6].volume.as_ref().unwrap().subpath.as_deref(),
        Some("a/b")
    );
    let t = v[7].tmpfs.as_ref().unwrap();
    assert_eq!((t.size, t.mode), (Some(64 << 20), Some(0o1777)));
    assert_eq!(v[7].kind, "tmpfs");
    assert_eq!(p.volumes["data"].name, "myproj_data");
}

#[test]
fn environment_env_file_and_inherited_names() {
    let f = Fixture::new();
    f.write(
        "app.env",
        "FROM_FILE=file\nOVERRIDDEN=file\nUSES=${HOST_VAR}\n",
    );
    f.write(".env", "HOST_VAR=dotenv\n");
    let mut opts = f.opts();
    opts.environment.insert("INHERITED".into(), "proc".into());
    f.write(
        "compose.yaml",
        "services:\n  list:\n    image: a\n    env_file: app.env\n    environment: [OVERRIDDEN=list, INHERITED, NOT_SET, 'EQ=a=b']\n  map:\n    image: a\n    env_file:\n      - path: app.env\n      - path: missing.env\n        required: false\n    environment:\n      NUM: 1\n      BOOL: true\n      INHERITED:\n      NULLED: null\n",
    );
    let p = load(&opts).unwrap();
    assert_eq!(
        p.services["list"].environment,
        env(&[
            ("EQ", "a=b"),
            ("FROM_FILE", "file"),
            ("INHERITED", "proc"),
            ("OVERRIDDEN", "list"),
            ("USES", "dotenv")
        ])
    );
    assert_eq!(
        p.services["map"].environment,
        env(&[
            ("BOOL", "true"),
            ("FROM_FILE", "file"),
            ("INHERITED", "proc"),
            ("NUM", "1"),
            ("OVERRIDDEN", "file"),
            ("USES", "dotenv")
        ])
    );
    let e = f.error("services:\n  web:\n    image: a\n    env_file: nope.env\n");
    assert!(
        e.starts_with("compose.yaml:4: services.web.env_file: env file "),
        "{e}"
    );
}

#[test]
fn commands_dependencies_healthchecks_networks() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    image: a\n    command: sh -c 'echo \"hi there\"'\n    entrypoint: [\"/bin/tini\", \"--\"]\n    depends_on: [db]\n    healthcheck:\n      test: curl -f http://localhost || exit 1\n      interval: 1m30s\n      timeout: 10s\n      start_period: 5s\n      retries: 3\n    networks: [front]\n  db:\n    image: db\n    healthcheck:\n      test: [CMD, pg_isready]\n    network_mode: host\n  off:\n    image: x\n    healthcheck: {disable: true}\nnetworks:\n  front:\n",
    );
    let web = &p.services["web"];
    assert_eq!(
        web.command,
        Some(vec!["sh".into(), "-c".into(), "echo \"hi there\"".into()])
    );
    assert_eq!(web.entrypoint, Some(vec!["/bin/tini".into(), "--".into()]));
    assert_eq!(web.depends_on["db"], Dependency::default());
    let hc = web.healthcheck.as_ref().unwrap();
    assert_eq!(
        hc.test,
        vec!["CMD-SHELL", "curl -f http://localhost || exit 1"]
    );
    assert_eq!(
        hc.interval,
        Some(GoDuration(std::time::Duration::from_secs(90)))
    );
    assert_eq!(hc.retries, Some(3));
    assert_eq!(web.networks.keys().collect::<Vec<_>>(), vec!["front"]);
    assert_eq!(
        p.services["db"].healthcheck.as_ref().unwrap().test,
        vec!["CMD", "pg_isready"]
    );
    assert!(p.services["db"].networks.is_empty());
    assert!(p.services["off"].healthcheck.as_ref().unwrap().disable);
    assert_eq!(
        p.services["off"].networks.keys().collect::<Vec<_>>(),
        vec!["default"]
    );
    assert_eq!(p.networks["default"].name, "myproj_default");
    assert_eq!(p.networks["front"].name, "myproj_front");
}

#[test]
fn labels_hosts_ulimits_sizes_and_deploy() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    image: a\n    labels: [com.example.a=1, com.example.flag]\n    extra_hosts: ['db.local=10.0.0.5', 'cache.local:10.0.0.6']\n    ulimits:\n      nproc: 65535\n      nofile: {soft: 1024, hard: 4096}\n    mem_limit: 512m\n    shm_size: 1g\n    cpus: '0.5'\n    tmpfs: /run:size=64m\n    deploy:\n      replicas: 3\n      resources:\n        limits: {cpus: 0.5, memory: 512M, pids: 100}\n        reservations: {memory: 100k}\n      restart_policy: {condition: on-failure, max_attempts: 3, delay: 5s}\n  map_hosts:\n    image: a\n    extra_hosts:\n      one.local: 1.1.1.1\n      two.local: ['2.2.2.2', '::2']\n    scale: 2\n    deploy: {replicas: 2}\n",
    );
    let web = &p.services["web"];
    assert_eq!(
        web.labels,
        env(&[("com.example.a", "1"), ("com.example.flag", "")])
    );
    assert_eq!(
        web.extra_hosts,
        vec!["db.local:10.0.0.5", "cache.local:10.0.0.6"]
    );
    assert_eq!(
        web.ulimits["nproc"],
        Ulimit {
            soft: 65535,
            hard: 65535
        }
    );
    assert_eq!(
        web.ulimits["nofile"],
        Ulimit {
            soft: 1024,
            hard: 4096
        }
    );
    assert_eq!(web.mem_limit, Some(512 << 20));
    assert_eq!(web.shm_size, Some(1 << 30));
    assert_eq!(web.cpus, Some(0.5));
    assert_eq!(web.tmpfs, vec!["/run:size=64m"]);
    assert_eq!(web.scale, Some(3));
    let deploy = web.deploy.as_ref().unwrap();
    let limits = deploy.resources.as_ref().unwrap().limits.as_ref().unwrap();
    assert_eq!(
        (limits.cpus, limits.memory, limits.pids),
        (Some(0.5), Some(512 << 20), Some(100))
    );
    let rp = deploy.restart_policy.as_ref().unwrap();
    assert_eq!(rp.condition.as_deref(), Some("on-failure"));
    assert_eq!(rp.max_attempts, Some(3));
    assert_eq!(
        p.services["map_hosts"].extra_hosts,
        vec!["one.local:1.1.1.1", "two.local:2.2.2.2", "two.local:::2"]
    );
    assert_eq!(p.services["map_hosts"].scale, Some(2));
}

#[test]
fn build_secrets_configs() {
    let f = Fixture::new();
    let mut opts = f.opts();
    opts.environment.insert("FROM_ENV".into(), "e".into());
    f.write(
        "compose.yaml",
        "services:\n  web:\n    build:\n      context: ./web\n      dockerfile: Dockerfile.prod\n      args: [VERSION=1, FROM_ENV, NOT_SET]\n      target: prod\n    secrets:\n      - token\n      - source: cert\n        target: /etc/cert.pem\n        mode: 0400\n    configs: [app]\n  remote:\n    build: https://github.com/example/repo.git#main\nsecrets:\n  token: {file: ./secrets/token.txt}\n  cert: {environment: CERT}\nconfigs:\n  app: {content: 'x=1'}\n",
    );
    let p = load(&opts).unwrap();
    let web = &p.services["web"];
    let b = web.build.as_ref().unwrap();
    assert_eq!(b.context, f.path("web"));
    assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.prod"));
    assert_eq!(b.args, env(&[("FROM_ENV", "e"), ("VERSION", "1")]));
    assert_eq!(b.target.as_deref(), Some("prod"));
    assert_eq!(web.secrets[0].source, "token");
    assert_eq!(web.secrets[1].target.as_deref(), Some("/etc/cert.pem"));
    assert_eq!(web.secrets[1].mode, Some(0o400));
    assert_eq!(web.configs[0].source, "app");
    assert_eq!(
        p.secrets["token"].file.as_deref(),
        Some(f.path("secrets/token.txt").as_str())
    );
    assert_eq!(p.configs["app"].content.as_deref(), Some("x=1"));
    let remote = p.services["remote"].build.as_ref().unwrap();
    assert_eq!(remote.context, "https://github.com/example/repo.git#main");
    assert_eq!(remote.dockerfile.as_deref(), Some("Dockerfile"));
}

#[test]
fn top_level_networks_and_volumes_names() {
    let f = Fixture::new();
    let p = f.project(
        "services:\n  web:\n    image: a\n    networks: [front, shared]\n    volumes: ['logs:/logs', 'ext:/ext']\nnetworks:\n  front:\n    driver: bridge\n    ipam:\n      config: [{subnet: 172.28.0.0/16}]\n  shared:\n    external: true\nvolumes:\n  logs:\n    name: custom-logs\n  ext:\n    external: true\n",
    );
    assert_eq!(p.networks["front"].name, "myproj_front");
    assert_eq!(
        p.networks["front"].ipam.as_ref().unwrap().config[0]
            .subnet
            .as_deref(),
        Some("172.28.0.0/16")
    );
    assert_eq!(p.networks["shared"].name, "shared");
    assert!(p.networks["shared"].external);
    assert!(
        !p.networks.contains_key("default"),
        "no service uses the default network"
    );
    assert_eq!(p.volumes["logs"].name, "custom-logs");
    assert_eq!(p.volumes["ext"].name, "ext");
}

#[test]
fn version_is_obsolete_and_extensions_are_allowed() {
    let f = Fixture::new();
    let p = f.project(
        "version: '3.8'\nx-top: 1\nservices:\n  web:\n    image: a\n    tty: yes\n    x-svc: {anything: [1]}\nnetworks:\n  n:\n    x-net: 1\n",
    );
    assert!(p.services.contains_key("web"));
    assert!(
        p.services["web"].tty,
        "`tty: yes` is a string in YAML 1.2, cast as docker compose does"
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("\"yes\" for boolean is not supported")));
    assert!(
        p.warnings.contains(&"compose.yaml: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion".to_string()),
        "{:?}",
        p.warnings
    );
}

// ---- errors: file:line and key path ------------------------------------------------------

#[test]
fn errors_name_file_line_and_key_path() {
    let f = Fixture::new();
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    image: a\n    foo: 1\n",
            "compose.yaml:4: services.web: additional property foo is not allowed",
        ),
        (
            "services:\n  web:\n    image: a\nnetwork:\n  x:\n",
            "compose.yaml:4: additional property network is not allowed",
        ),
        (
            "services:\n  web:\n    image: [a]\n",
            "compose.yaml:3: services.web.image: expected a string, got a list",
        ),
        (
            "services:\n  web:\n    image: a\n    privileged: maybe\n",
            "compose.yaml:4: services.web.privileged: invalid boolean \"maybe\"",
        ),
        (
            "services:\n  web:\n    image: a\n    ports:\n      - 80\n      - abc\n",
            "compose.yaml:6: services.web.ports[1]: invalid port \"abc\": invalid container port \"abc\"",
        ),
        (
            "services:\n  web:\n    image: a\n    volumes:\n      - data:/data\n",
            "compose.yaml:5: services.web.volumes[0]: service \"web\" refers to undefined volume data: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    networks: [back]\n",
            "compose.yaml:4: services.web.networks.back: service \"web\" refers to undefined network back: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    depends_on:\n      db:\n        condition: service_healthy\n",
            "compose.yaml:5: services.web.depends_on.db: service \"web\" depends on undefined service \"db\": invalid compose project",
        ),
        (
            "services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [c]\n  c:\n    image: c\n    depends_on: [a]\n",
            "compose.yaml:4: services.a.depends_on: dependency cycle detected: a -> b -> c -> a: invalid compose project",
        ),
        (
            "services:\n  web:\n    build: {context: .}\n    restart: sometimes\n",
            "compose.yaml:4: services.web.restart: invalid restart policy \"sometimes\": must be one of no, always, on-failure[:max-retries], unless-stopped",
        ),
        (
            "services:\n  web:\n    command: x\n",
            "compose.yaml:3: services.web: service \"web\" has neither an image nor a build context specified: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    container_name: fixed\n    scale: 2\n",
            "compose.yaml:3: services.web: can't set container_name and scale as container name must be unique: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    secrets: [nope]\n",
            "compose.yaml:4: services.web.secrets[0]: service \"web\" refers to undefined secret nope: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    healthcheck:\n      test: [RUN, x]\n",
            "compose.yaml:5: services.web.healthcheck.test: healthcheck.test must start either by \"CMD\", \"CMD-SHELL\" or \"NONE\"",
        ),
        (
            "services:\n  web:\n    image: a\n    mem_limit: lots\n",
            "compose.yaml:4: services.web.mem_limit: invalid size \"lots\"",
        ),
        (
            "services:\n  web:\n    image: a\n    network_mode: host\n    networks: [x]\n",
            "compose.yaml:5: services.web.networks: service web declares mutually exclusive `network_mode` and `networks`: invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    stop_grace_period: soon\n",
            "compose.yaml:4: services.web.stop_grace_period: invalid duration \"soon\"",
        ),
        (
            "services:\n  web:\n    image: a\n    cpus: 1\n    deploy:\n      resources:\n        limits: {cpus: 2}\n",
            "compose.yaml:3: services.web: can't set distinct values on 'cpus' and 'deploy.resources.limits.cpus': invalid compose project",
        ),
        (
            "services:\n  web:\n    image: a\n    ulimits:\n      nofile: {soft: 1}\n",
            "compose.yaml:5: services.web.ulimits.nofile: hard is required",
        ),
        ("[1, 2]\n", "compose.yaml:1: top-level object must be a mapping"),
        ("", "compose.yaml:1: empty compose file"),
    ];
    for (text, want) in cases {
        assert_eq!(&f.error(text), want, "for:\n{text}");
    }
}

#[test]
fn yaml_syntax_errors_name_file_and_line() {
    let f = Fixture::new();
    let e = f.error("services:\n  web:\n    image: nginx\n   bad: [\n");
    assert!(e.starts_with("compose.yaml:4: "), "{e}");
    let e = f.error("services:\n  web:\n    image: a\n    image: b\n");
    assert!(
        e.starts_with("compose.yaml:4: duplicate mapping key"),
        "{e}"
    );
}

#[test]
fn errors_in_a_second_file_name_that_file() {
    let f = Fixture::new();
    f.write("compose.yaml", "services:\n  web:\n    image: a\n");
    f.write(
        "prod/override.yaml",
        "services:\n  web:\n    ports: ['x:80']\n",
    );
    let mut opts = f.opts();
    opts.files = vec!["compose.yaml".into(), "prod/override.yaml".into()];
    assert_eq!(
        load(&opts).unwrap_err().to_string(),
        "prod/override.yaml:3: services.web.ports[0]: invalid port \"x:80\": invalid host port \"x\""
    );
}

// ---- compose config ---------------------------------------------------------------------------

const STACK: &str = r#"name: shop
services:
  proxy:
    image: nginx:1.25
    ports:
      - "80:80"
      - "443:443"
    volumes:
      - ./nginx.conf:/etc/nginx/nginx.conf:ro
    depends_on:
      web:
        condition: service_healthy
    networks: [front]
    restart: unless-stopped
  web:
    build:
      context: ./web
      args:
        NODE_ENV: production
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD:-secret}@db:5432/app
      REDIS_URL: redis://cache:6379
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:3000/health"]
      interval: 30s
      timeout: 5s
      retries: 3
      start_period: 10s
    networks: [front, back]
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.50", memory: 512M}
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: ${DB_PASSWORD:-secret}
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: pg_isready -U app
      interval: 10s
      retries: 5
    networks: [back]
  cache:
    image: redis:7
    command: redis-server --appendonly yes
    volumes:
      - type: volume
        source: redisdata
        target: /data
    networks:
      back:
        aliases: [redis]
networks:
  front:
  back:
    internal: true
volumes:
  pgdata:
  redisdata:
"#;

#[test]
fn compose_config_of_a_four_service_stack() {
    let f = Fixture::new();
    let p = f.project(STACK);
    assert_eq!(p.name, "shop");
    assert_eq!(
        p.services.keys().collect::<Vec<_>>(),
        vec!["cache", "db", "proxy", "web"]
    );
    assert_eq!(p.services["web"].scale, Some(2));
    assert_eq!(
        p.services["proxy"].depends_on["web"].condition,
        "service_healthy"
    );
    let yaml = to_yaml(&p);
    let top_keys: Vec<&str> = yaml
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(top_keys, vec!["name", "services", "networks", "volumes"]);
    assert!(
        yaml.starts_with("name: shop\nservices:\n  cache:\n    command:\n      - redis-server\n"),
        "{yaml}"
    );
    for expected in [
        "      - mode: ingress\n        protocol: tcp\n        published: \"80\"\n        target: 80\n",
        "    healthcheck:\n      interval: 30s\n      retries: 3\n      start_period: 10s\n      test:\n        - CMD\n",
        "      DATABASE_URL: postgres://app:secret@db:5432/app\n",
        "  back:\n    internal: true\n    name: shop_back\n",
        "    depends_on:\n      web:\n        condition: service_healthy\n        required: true\n        restart: false\n",
        "        volume: {}\n",
        "          memory: 536870912\n",
    ] {
        assert!(yaml.contains(expected), "missing:\n{expected}\nin:\n{yaml}");
    }

    // The output is itself a Compose file that loads to the same project.
    let g = Fixture::new();
    let again = g.project(&yaml);
    assert_eq!(again.services, p.services);
    assert_eq!(again.networks, p.networks);
    assert_eq!(again.volumes, p.volumes);
    assert_eq!(to_yaml(&again), yaml);
}
