//! `berth kube generate`: Kubernetes YAML from a running container and
//! from a compose project, every document validated offline by
//! crates/cli/tests/support/kube_validate.py — kubernetes-validate's
//! strict JSON schemas of Kubernetes 1.37, the PyPI kubernetes client's
//! models (deserialized and serialized back: nothing lost) and the API
//! server's name rules — in the venv scripts/deps makes at
//! /opt/berth-tests/kube. Settings without a Kubernetes equivalent are
//! warned about on stderr.
mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const PYTHON: &str = "/opt/berth-tests/kube/bin/python";

fn validate(yaml_path: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_validate.py");
    let out = Command::new(PYTHON)
        .arg(&script)
        .arg(yaml_path)
        .output()
        .expect("the kube venv (scripts/deps installs it in /opt/berth-tests/kube)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "validation failed:\n{text}{}\n--- the YAML:\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(yaml_path).unwrap()
    );
    text
}

/// The documents as JSON, through PyYAML (a real YAML parser).
fn parse(yaml_path: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import sys, json, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(yaml_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn doc<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

#[test]
#[ignore = "needs root"]
fn generate_from_a_running_container() {
    let b = Berth::new();
    let host = b.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    let host_s = host.to_str().unwrap();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web_1",
        "-p",
        "127.0.0.1:18081:80",
        "-p",
        "127.0.0.1:18053:53/udp",
        "-e",
        "GREETING=hello world",
        "-e",
        "PORT=80",
        "-v",
        "webdata:/data",
        "-v",
        &format!("{host_s}:/host:ro"),
        "--tmpfs",
        "/scratch:size=8m",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "CHOWN",
        "--user",
        "1000:1000",
        "--read-only",
        "-w",
        "/tmp",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--health-retries",
        "4",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure:3",
        "--label",
        "app.example.com/tier=front",
        "--label",
        "note=a long value with spaces",
        "--ulimit",
        "nofile=1024:2048",
        "--shm-size",
        "128m",
        IMAGE,
        "sleep",
        "600",
    ]);
    let out_file = b.path().join("web.yaml");
    let o = b.run(&[
        "kube",
        "generate",
        "-s",
        "-f",
        out_file.to_str().unwrap(),
        "web_1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    // Unsupported settings are named, not dropped silently.
    assert!(err.contains("--ulimit"), "{err}");
    assert!(err.contains("--shm-size"), "{err}");
    assert!(err.contains("on-failure:3"), "{err}");
    assert!(err.contains("named \"web-1\""), "{err}");
    let report = validate(&out_file);
    assert!(report.contains("OK Pod web-1-pod"), "{report}");
    assert!(report.contains("OK Service web-1-pod"), "{report}");
    assert!(
        report.contains("OK PersistentVolumeClaim webdata"),
        "{report}"
    );
    let docs = parse(&out_file);
    let pod = doc(&docs, "Pod", "web-1-pod");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["name"], "web-1");
    assert_eq!(c["image"], IMAGE);
    assert_eq!(c["args"], serde_json::json!(["sleep", "600"]));
    assert!(c.get("command").is_none(), "{c}");
    assert_eq!(
        c["env"],
        serde_json::json!([{"name": "GREETING", "value": "hello world"}, {"name": "PORT", "value": "80"}])
    );
    assert_eq!(c["workingDir"], "/tmp");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 1000);
    assert_eq!(sc["runAsGroup"], 1000);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["add"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["CHOWN"]));
    assert_eq!(c["resources"]["limits"]["memory"], "64Mi");
    assert_eq!(c["resources"]["limits"]["cpu"], "500m");
    let probe = &c["livenessProbe"];
    // --health-cmd is CMD-SHELL, as Docker.
    assert_eq!(
        probe["exec"]["command"],
        serde_json::json!(["/bin/sh", "-c", "true"])
    );
    assert_eq!(probe["periodSeconds"], 5);
    assert_eq!(probe["failureThreshold"], 4);
    let ports = c["ports"].as_array().unwrap();
    assert!(ports
        .iter()
        .any(|p| p["containerPort"] == 80 && p["hostPort"] == 18081 && p["protocol"] == "TCP"));
    assert!(ports
        .iter()
        .any(|p| p["containerPort"] == 53 && p["protocol"] == "UDP"));
    assert_eq!(pod["spec"]["restartPolicy"], "OnFailure");
    assert_eq!(pod["metadata"]["labels"]["app.example.com/tier"], "front");
    assert_eq!(
        pod["metadata"]["annotations"]["note"],
        "a long value with spaces"
    );
    let vols = pod["spec"]["volumes"].as_array().unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    let by_path = |p: &str| {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"] == p)
            .unwrap_or_else(|| panic!("no mount {p}"));
        (m, vols.iter().find(|v| v["name"] == m["name"]).unwrap())
    };
    let (_, v) = by_path("/data");
    assert_eq!(v["persistentVolumeClaim"]["claimName"], "webdata");
    let (m, v) = by_path("/host");
    assert_eq!(m["readOnly"], true);
    assert_eq!(v["hostPath"]["path"], host_s);
    assert_eq!(v["hostPath"]["type"], "Directory");
    let (_, v) = by_path("/scratch");
    assert_eq!(v["emptyDir"]["medium"], "Memory");
    assert_eq!(v["emptyDir"]["sizeLimit"], "8Mi");
    let svc = doc(&docs, "Service", "web-1-pod");
    assert_eq!(svc["spec"]["selector"]["app"], "web-1-pod");
    assert_eq!(pod["metadata"]["labels"]["app"], "web-1-pod");
    assert_eq!(svc["spec"]["ports"].as_array().unwrap().len(), 2);

    // As podman, -f never replaces a file.
    let o = b.run(&[
        "kube",
        "generate",
        "-f",
        out_file.to_str().unwrap(),
        "web_1",
    ]);
    // podman's verb: its errors exit 125, as podman's.
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("the file exists"), "{}", stderr(&o));
    validate(&out_file);

    // --type deployment: the same pod as a Deployment's template.
    let dep_file = b.path().join("dep.yaml");
    let o = b.run(&[
        "kube",
        "generate",
        "--type",
        "deployment",
        "-f",
        dep_file.to_str().unwrap(),
        "web_1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a Deployment's pods restart Always"),
        "{}",
        stderr(&o)
    );
    let report = validate(&dep_file);
    assert!(report.contains("OK Deployment web-1-pod"), "{report}");

    // Two containers: one pod of both (they share its network, so a port
    // both publish is left out of the second, with a warning).
    b.ok(&[
        "run",
        "-d",
        "--name",
        "side",
        "-p",
        "127.0.0.1:18082:80",
        "-e",
        "ROLE=side",
        IMAGE,
        "sleep",
        "600",
    ]);
    let two_file = b.path().join("two.yaml");
    let o = b.run(&[
        "kube",
        "generate",
        "-f",
        two_file.to_str().unwrap(),
        "web_1",
        "side",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("container side: port 80/tcp is published by another container of the pod"),
        "{}",
        stderr(&o)
    );
    let report = validate(&two_file);
    assert!(report.contains("OK Pod web-1-pod"), "{report}");
    let docs = parse(&two_file);
    let names: Vec<&str> = doc(&docs, "Pod", "web-1-pod")["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "side"]);
    b.ok(&["rm", "-f", "side"]);

    // A container with a user namespace of its own: `hostUsers: false`,
    // which the API's schema knows.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "mapped",
        "--uidmap",
        "0:100000:65536",
        IMAGE,
        "sleep",
        "600",
    ]);
    let mapped_file = b.path().join("mapped.yaml");
    b.ok(&[
        "kube",
        "generate",
        "-f",
        mapped_file.to_str().unwrap(),
        "mapped",
    ]);
    let report = validate(&mapped_file);
    assert!(report.contains("OK Pod mapped-pod"), "{report}");
    let docs = parse(&mapped_file);
    assert_eq!(
        doc(&docs, "Pod", "mapped-pod")["spec"]["hostUsers"],
        serde_json::json!(false)
    );
    b.ok(&["rm", "-f", "mapped"]);

    // A missing container is an error that says so.
    let o = b.run(&["kube", "generate", "nope"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));

    b.ok(&["rm", "-f", "-v", "web_1"]);
    b.ok(&["volume", "rm", "webdata"]);
    assert_census_clean(&b);
}

#[test]
#[ignore = "needs root"]
fn generate_from_a_compose_project() {
    let b = Berth::new();
    let dir = b.path().join("stack");
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf/nginx.conf"), "worker_processes 1;\n").unwrap();
    std::fs::write(dir.join("db_password.txt"), "s3cret\n").unwrap();
    std::fs::write(
        dir.join("compose.yaml"),
        r#"
services:
  web:
    image: bb:test
    command: ["httpd", "-f", "-p", "8080"]
    ports: ["8080:8080", "8443:8443/tcp"]
    environment:
      MODE: production
      RETRIES: "3"
    depends_on: [api]
    configs:
      - source: nginx_conf
        target: /etc/nginx/nginx.conf
    deploy:
      replicas: 3
      resources:
        limits: {memory: 32M, cpus: "0.25"}
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"]
      interval: 10s
      retries: 2
  api:
    image: bb:test
    entrypoint: ["/bin/sh", "-c"]
    command: ["sleep 600"]
    expose: ["9000"]
    user: "1000:1000"
    read_only: true
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
    volumes:
      - apidata:/var/lib/api
      - type: tmpfs
        target: /run/cache
        tmpfs: {size: 4194304}
    secrets:
      - db_password
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    restart: always
  worker_1:
    image: bb:test
    command: ["sleep", "600"]
    volumes: [apidata:/shared:ro]
    secrets:
      - source: db_password
        target: /etc/worker/pw
volumes:
  apidata: {}
configs:
  nginx_conf:
    file: ./conf/nginx.conf
secrets:
  db_password:
    file: ./db_password.txt
"#,
    )
    .unwrap();
    let out_file = b.path().join("stack.yaml");
    let o = b
        .cmd()
        .current_dir(&dir)
        .args([
            "kube",
            "generate",
            "--compose",
            "compose.yaml",
            "-p",
            "shop",
            "-f",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("service web: depends_on [\"api\"] dropped"),
        "{err}"
    );
    assert!(err.contains("service api: ulimits"), "{err}");
    // No restart set: a Deployment without a warning.
    assert!(!err.contains("restart no"), "{err}");
    assert!(
        err.contains("service worker_1: named \"worker-1\""),
        "{err}"
    );
    let report = validate(&out_file);
    for want in [
        "OK Deployment web",
        "OK Deployment api",
        "OK Deployment worker-1",
        "OK Service web",
        "OK Service api",
        "OK PersistentVolumeClaim apidata",
        "OK ConfigMap nginx-conf",
        "OK Secret db-password",
    ] {
        assert!(report.contains(want), "{want} missing:\n{report}");
    }
    assert!(!report.contains("Service worker-1"), "{report}");
    let docs = parse(&out_file);
    let web = doc(&docs, "Deployment", "web");
    assert_eq!(web["spec"]["replicas"], 3);
    assert_eq!(
        web["metadata"]["labels"]["app.kubernetes.io/part-of"],
        "shop"
    );
    let wc = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(wc["args"], serde_json::json!(["httpd", "-f", "-p", "8080"]));
    assert_eq!(wc["resources"]["limits"]["memory"], "32Mi");
    assert_eq!(wc["resources"]["limits"]["cpu"], "250m");
    assert_eq!(
        wc["livenessProbe"]["exec"]["command"],
        serde_json::json!([
            "/bin/sh",
            "-c",
            "wget -q -O- http://127.0.0.1:8080/ || exit 1"
        ])
    );
    assert!(wc["env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"name": "MODE", "value": "production"})));
    let m = &wc["volumeMounts"][0];
    assert_eq!(m["mountPath"], "/etc/nginx/nginx.conf");
    let cm = doc(&docs, "ConfigMap", "nginx-conf");
    assert_eq!(cm["data"]["content"], "worker_processes 1;\n");
    let sec = doc(&docs, "Secret", "db-password");
    assert_eq!(sec["data"]["content"], "czNjcmV0Cg==");
    let svc = doc(&docs, "Service", "web");
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, vec![8080, 8443]);
    let api = doc(&docs, "Deployment", "api");
    let ac = &api["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(ac["command"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(ac["securityContext"]["runAsUser"], 1000);
    assert_eq!(
        ac["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    let mounts = ac["volumeMounts"].as_array().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"] == "/run/secrets/db_password"),
        "{mounts:?}"
    );
    let vols = api["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(vols
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == "apidata"));
    assert!(vols
        .iter()
        .any(|v| v["emptyDir"]["medium"] == "Memory" && v["emptyDir"]["sizeLimit"] == "4Mi"));
    assert_eq!(
        doc(&docs, "Service", "api")["spec"]["ports"][0]["port"],
        9000
    );

    // --type pod: bare pods, with the replicas warned about.
    let pod_file = b.path().join("pods.yaml");
    let o = b
        .cmd()
        .current_dir(&dir)
        .args([
            "kube",
            "generate",
            "--compose",
            "compose.yaml",
            "--compose-service",
            "web",
            "--type",
            "pod",
            "-f",
        ])
        .arg(&pod_file)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("3 replicas"), "{}", stderr(&o));
    let report = validate(&pod_file);
    assert!(report.contains("OK Pod web"), "{report}");
    assert!(!report.contains("api"), "{report}");
    assert_census_clean(&b);
}

/// The example projects of the compose tests, each generated and validated.
#[test]
#[ignore = "needs root"]
fn compose_examples_generate_valid_manifests() {
    let b = Berth::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose-examples");
    for ex in ["configs", "secrets", "deploy", "volumes", "services"] {
        let dir = examples.join(ex);
        let out_file = b.path().join(format!("{ex}.yaml"));
        let o = b
            .cmd()
            .current_dir(&dir)
            .env("API_TOKEN", "t0ken")
            .args(["kube", "generate", "--compose", "compose.yaml", "-f"])
            .arg(&out_file)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{ex}: {}", stderr(&o));
        validate(&out_file);
    }
    assert_census_clean(&b);
}

/// The validator itself refuses what an API server would: an unknown
/// field, a bad name, a mount of no volume, a wrong type.
#[test]
fn validator_refuses_what_a_cluster_would() {
    let dir = tempfile::tempdir().unwrap();
    let bad = [
        ("unknown field", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: a\n    image: x\n    bogus: 1\n"),
        ("bad name", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: a\n    image: x\n"),
        ("undefined volume", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: a\n    image: x\n    volumeMounts:\n    - name: v\n      mountPath: /v\n"),
        ("wrong type", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n  - name: p\n    port: \"eighty\"\n"),
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_validate.py");
    for (what, yaml) in bad {
        let f = dir.path().join("bad.yaml");
        std::fs::write(&f, yaml).unwrap();
        let out = Command::new(PYTHON).arg(&script).arg(&f).output().unwrap();
        assert!(!out.status.success(), "{what} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("INVALID"),
            "{what}"
        );
    }
}

/// `kube generate POD` (and a pod beside a loose container, as podman
/// takes them): each pod is a Pod of its own, named as the pod, with its
/// hostname, its published ports on its first container and
/// `shareProcessNamespace` for `--share +pid`; the loose container is a
/// `NAME-pod` of its own. The infra container is never a container of the
/// YAML, and naming it is refused.
#[test]
#[ignore = "needs root"]
fn generate_from_a_pod() {
    let b = Berth::new();
    b.ok(&[
        "pod",
        "create",
        "--name",
        "shop",
        "--hostname",
        "shophost",
        "--share",
        "+pid",
        "-p",
        "127.0.0.1:18473:80",
        "--label",
        "tier=front",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "shop",
        "--name",
        "web",
        "-e",
        "GREETING=hi",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    b.ok(&[
        "create", "--pod", "shop", "--name", "side", IMAGE, "sleep", "600",
    ]);
    b.ok(&["create", "--name", "loose", IMAGE, "sleep", "600"]);
    let out_file = b.path().join("shop.yaml");
    let o = b.run(&[
        "kube",
        "generate",
        "-f",
        out_file.to_str().unwrap(),
        "shop",
        "loose",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Sharing the pod's network is not warned about.
    assert!(
        !stderr(&o).contains("--network container"),
        "{}",
        stderr(&o)
    );
    let report = validate(&out_file);
    assert!(report.contains("OK Pod shop"), "{report}");
    assert!(report.contains("OK Pod loose-pod"), "{report}");
    let docs = parse(&out_file);
    let pod = doc(&docs, "Pod", "shop");
    assert_eq!(pod["spec"]["hostname"], "shophost", "{pod:#}");
    assert_eq!(pod["spec"]["shareProcessNamespace"], true, "{pod:#}");
    assert_eq!(pod["metadata"]["labels"]["tier"], "front", "{pod:#}");
    let ctrs = pod["spec"]["containers"].as_array().unwrap();
    let names: Vec<&str> = ctrs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web", "side"], "{pod:#}");
    assert_eq!(
        ctrs[0]["ports"],
        serde_json::json!([{"containerPort": 80, "hostPort": 18473, "hostIP": "127.0.0.1", "protocol": "TCP"}]),
        "{pod:#}"
    );
    assert_eq!(
        ctrs[0]["env"],
        serde_json::json!([{"name": "GREETING", "value": "hi"}])
    );
    let loose = doc(&docs, "Pod", "loose-pod");
    assert_eq!(loose["spec"]["containers"][0]["name"], "loose");
    assert!(loose["spec"].get("hostname").is_none(), "{loose:#}");

    // The infra container is the pod's, not a container of the YAML.
    let infra = b.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", "shop"]);
    let o = b.run(&["kube", "generate", infra.trim()]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("name the pod instead"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["kube", "generate", "nosuch"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("nosuch"), "{}", stderr(&o));
    b.ok(&["pod", "rm", "-f", "shop"]);
    b.ok(&["rm", "-f", "loose"]);
}
