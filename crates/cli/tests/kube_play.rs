//! `berth kube play` and `berth kube down` (issue 23): Kubernetes YAML
//! in, as podman's `kube play`/`kube down`, as root with real containers
//! from busybox. The tutorial stack — web (httpd), database and cache
//! (busybox `nc` servers answering on their ports), proxy (httpd whose CGI
//! fetches the web over the pod's localhost) — as one Deployment with a
//! Service, a ConfigMap, a Secret and a PersistentVolumeClaim; a
//! generate → play round trip; bad input.
//!
//! What podman 4.3.1 did with the same files on this machine (its own
//! --root/--runroot, `--runtime runc` (crun refuses hybrid cgroups),
//! `--network none` (so it touches no host network), the images loaded
//! from `berth save`, berth's pause image as its infra image since
//! Debian's podman lacks catatonit):
//!
//! ```text
//! $ podman kube play --network none simple.yaml     (a PVC and a Pod: init + 2 containers)
//! Volumes:
//! simple-data
//! Pod:
//! b89022081514827113fc1e06a30e7548472e7f241f01040a57468976e6231103
//! Containers:
//! 9fb3a90b589eebcbef1d407bc624932e95c86483e8df835589a92baa3d8a312c
//! b4482425ae347ae8369d87b10faa0ac4c8953b767fc78745c0946bc04b2ef0d8
//!
//! $ podman ps -a        → simple-web, simple-side, <pod id 12>-infra (the init container is gone: "once")
//! $ podman kube play one.yaml (a Pod of one container) → "Pod:\nID\nContainer:\nID\n\n"
//! $ podman kube play one.yaml (again)  → "Error: adding pod to state: name "one" is in use: pod already exists", 125
//! $ podman kube play (kind: Nope)      → "Error: YAML document does not contain any supported kube kind", 125
//! $ podman kube play (a: [b)           → "Error: multi doc yaml could not be split: yaml: line 1: did not find expected ',' or ']'", 125
//! $ podman kube down simple.yaml
//! Pods stopped:
//! b89022081514827113fc1e06a30e7548472e7f241f01040a57468976e6231103
//! Pods removed:
//! b89022081514827113fc1e06a30e7548472e7f241f01040a57468976e6231103
//! $ podman volume ls    → simple-data is still there (podman 4.3's down keeps volumes)
//! $ podman kube play stack.yaml (the Deployment below) → pod shop-pod-0, containers shop-pod-0-web…;
//!   its configMap volumes become a podman volume "shop-config", emptyDirs volumes "work", "cache-tmp";
//!   a secret volume panics podman 4.3 (nil pointer in VolumeFromSecret: it reads podman's own
//!   secret store); a nested items path (cgi-bin/web) fails ("no such file or directory")
//! ```
//!
//! berth follows podman's names (`NAME-pod-N` for a Deployment's pods,
//! `POD-CONTAINER` for containers), its output and exit codes; it differs
//! where the YAML asks for more: Secrets and ConfigMaps come from the same
//! file (files written under the state root, removed by `kube down`), and
//! `kube down` removes the volumes its play created (not those that were
//! there before).
mod common;

use common::*;

const PYTHON: &str = "/opt/berth-tests/kube/bin/python";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0), retrying while the server starts.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = write!(s, "GET {path} HTTP/1.0\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.") {
                return out;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no HTTP answer from 127.0.0.1:{port}");
}

/// Until `f` holds (the containers' own start-up, not a timing claim).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("never: {what}");
}

fn write(b: &Berth, name: &str, text: &str) -> String {
    let p = b.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// The names of this root's containers (`ps -a`), sorted.
fn names(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = b
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// podman's report: `Volumes:` and its names, then per pod `Pod:`, its
/// id, `Container:`/`Containers:` and their ids, a blank line.
fn check_report(out: &str, volumes: &[&str], containers: usize) -> String {
    let mut lines = out.lines();
    if !volumes.is_empty() {
        assert_eq!(lines.next(), Some("Volumes:"), "{out}");
        for v in volumes {
            assert_eq!(lines.next(), Some(*v), "{out}");
        }
    }
    assert_eq!(lines.next(), Some("Pod:"), "{out}");
    let pod = lines.next().unwrap().to_string();
    assert_eq!(pod.len(), 64, "{out}");
    let word = if containers == 1 {
        "Container:"
    } else {
        "Containers:"
    };
    assert_eq!(lines.next(), Some(word), "{out}");
    for _ in 0..containers {
        assert_eq!(lines.next().map(str::len), Some(64), "{out}");
    }
    assert_eq!(lines.next(), Some(""), "{out}");
    assert_eq!(lines.next(), None, "{out}");
    pod
}

const STACK: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-config
data:
  APP_MODE: production
  CACHE_SIZE: "64"
  index.html: |
    <h1>hello from web</h1>
  db.sh: |
    #!/bin/sh
    echo "db: user=$DB_USER password=$(cat /etc/db/password)"
  cache.sh: |
    #!/bin/sh
    echo "+PONG size=$CACHE_SIZE"
  proxy.cgi: |
    #!/bin/sh
    echo "Content-Type: text/html"
    echo
    wget -qO- http://127.0.0.1:80/
---
apiVersion: v1
kind: Secret
metadata:
  name: shop-secret
type: Opaque
data:
  password: czNjcjN0
stringData:
  user: shopper
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: shop-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  type: NodePort
  selector:
    app: shop
  ports:
    - name: http
      port: 8080
      targetPort: proxy-http
      nodePort: NODEPORT
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  labels:
    app: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      initContainers:
        - name: init
          image: bb:test
          command: [sh, -c, 'echo initialized > /work/ready']
          volumeMounts:
            - name: work
              mountPath: /work
      containers:
        - name: web
          image: bb:test
          command: [sh, -c, 'cp /work/ready /work/seen-by-web && exec httpd -f -p 80 -h /www']
          env:
            - name: APP_MODE
              valueFrom:
                configMapKeyRef:
                  name: shop-config
                  key: APP_MODE
            - name: GREETING
              value: hello from $(APP_MODE)
          ports:
            - containerPort: 80
          resources:
            limits:
              memory: 64Mi
              cpu: 500m
          livenessProbe:
            exec:
              command: [test, -f, /www/index.html]
            periodSeconds: 5
            failureThreshold: 2
          volumeMounts:
            - name: site
              mountPath: /www
            - name: work
              mountPath: /work
        - name: database
          image: bb:test
          command: [nc, -ll, -p, "5432", -e, /scripts/db.sh]
          env:
            - name: DB_USER
              valueFrom:
                secretKeyRef:
                  name: shop-secret
                  key: user
          readinessProbe:
            exec:
              command: [sh, -c, 'nc 127.0.0.1 5432 </dev/null | grep -q db:']
            initialDelaySeconds: 1
            periodSeconds: 3
          volumeMounts:
            - name: scripts
              mountPath: /scripts
            - name: db-secret
              mountPath: /etc/db
            - name: data
              mountPath: /var/lib/db
        - name: cache
          image: bb:test
          command: [nc, -ll, -p, "6379", -e, /scripts/cache.sh]
          envFrom:
            - configMapRef:
                name: shop-config
              prefix: ""
          livenessProbe:
            tcpSocket:
              port: 6379
            periodSeconds: 2
          securityContext:
            runAsUser: 1000
            runAsGroup: 1000
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: scripts
              mountPath: /scripts
            - name: cache-tmp
              mountPath: /cache-tmp
        - name: proxy
          image: bb:test
          command: [httpd, -f, -p, "8080", -h, /proxy]
          ports:
            - name: proxy-http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /cgi-bin/web
              port: proxy-http
            periodSeconds: 2
          volumeMounts:
            - name: proxy-root
              mountPath: /proxy
      volumes:
        - name: site
          configMap:
            name: shop-config
            items:
              - key: index.html
                path: index.html
        - name: scripts
          configMap:
            name: shop-config
            defaultMode: 0755
            items:
              - key: db.sh
                path: db.sh
              - key: cache.sh
                path: cache.sh
        - name: proxy-root
          configMap:
            name: shop-config
            items:
              - key: proxy.cgi
                path: cgi-bin/web
                mode: 0755
        - name: db-secret
          secret:
            secretName: shop-secret
            items:
              - key: password
                path: password
        - name: data
          persistentVolumeClaim:
            claimName: shop-data
        - name: work
          emptyDir: {}
        - name: cache-tmp
          emptyDir:
            medium: Memory
            sizeLimit: 8Mi
"#;

#[test]
#[ignore = "needs root"]
fn the_tutorial_stack_plays_and_goes_down() {
    let b = Berth::new();
    let node_port = free_port();
    let file = write(
        &b,
        "stack.yaml",
        &STACK.replace("NODEPORT", &node_port.to_string()),
    );
    let o = b.run(&["kube", "play", &file]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let pod_id = check_report(&stdout(&o), &["shop-data"], 4);
    let err = stderr(&o);
    // What berth does not apply is named with its path, never dropped.
    assert!(
        err.contains("WARN[0000] kube play: PersistentVolumeClaim shop-data: spec.resources.requests.storage: a local volume has no size"),
        "{err}"
    );
    // And what the Service became is said.
    assert!(
        err.contains(&format!("INFO[0000] kube play: Service shop: port 8080/tcp is published on the host's port {node_port} (its nodePort) to port 8080 of pod shop-pod-0")),
        "{err}"
    );
    // podman's names; the init container ran and is gone (podman's "once").
    let mut want = vec![
        format!("{}-infra", &pod_id[..12]),
        "shop-pod-0-cache".into(),
        "shop-pod-0-database".into(),
        "shop-pod-0-proxy".into(),
        "shop-pod-0-web".into(),
    ];
    want.sort();
    assert_eq!(names(&b), want);
    let pod: serde_json::Value =
        serde_json::from_str(&b.ok(&["pod", "inspect", "shop-pod-0"])).unwrap();
    assert_eq!(pod["Id"], pod_id.as_str(), "{pod:#}");
    assert_eq!(pod["Labels"]["app"], "shop", "{pod:#}");
    for c in ["web", "database", "cache", "proxy"] {
        assert_eq!(
            b.ok(&[
                "inspect",
                "-f",
                "{{.State.Status}}",
                &format!("shop-pod-0-{c}")
            ])
            .trim(),
            "running",
            "{c}"
        );
    }
    // The init container ran first: the web's command copies its file.
    assert_eq!(
        b.ok(&["exec", "shop-pod-0-web", "cat", "/work/seen-by-web"]),
        "initialized\n"
    );
    // ConfigMap and Secret values inside: env (valueFrom, $(VAR), envFrom)
    // and files (items with modes).
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-web",
            "sh",
            "-c",
            "echo $APP_MODE/$GREETING"
        ]),
        "production/hello from production\n"
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-cache",
            "sh",
            "-c",
            "echo $CACHE_SIZE $APP_MODE"
        ]),
        "64 production\n"
    );
    assert_eq!(
        b.ok(&["exec", "shop-pod-0-database", "cat", "/etc/db/password"]),
        "s3cr3t"
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-database",
            "stat",
            "-c",
            "%a",
            "/scripts/db.sh"
        ])
        .trim(),
        "755"
    );
    // The database and cache answer on the pod's localhost.
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-proxy",
            "sh",
            "-c",
            "nc 127.0.0.1 5432 </dev/null"
        ]),
        "db: user=shopper password=s3cr3t\n"
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-proxy",
            "sh",
            "-c",
            "nc 127.0.0.1 6379 </dev/null"
        ]),
        "+PONG size=64\n"
    );
    // The Service's port on the host's 127.0.0.1: the proxy, which fetches the web.
    let page = http_get(node_port, "/cgi-bin/web");
    assert!(page.contains("<h1>hello from web</h1>"), "{page}");
    // securityContext, resources, emptyDir medium Memory.
    assert_eq!(
        b.ok(&["exec", "shop-pod-0-cache", "id", "-u"]).trim(),
        "1000"
    );
    let o = b.run(&["exec", "shop-pod-0-cache", "touch", "/x"]);
    assert_ne!(code(&o), 0, "readOnlyRootFilesystem");
    assert!(b
        .ok(&[
            "exec",
            "shop-pod-0-cache",
            "grep",
            " /cache-tmp ",
            "/proc/mounts"
        ])
        .starts_with("tmpfs /cache-tmp tmpfs"));
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.SecurityOpt}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.Config.User}}",
            "shop-pod-0-cache"
        ])
        .trim(),
        r#"["no-new-privileges"] true [ALL] 1000:1000"#
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            "shop-pod-0-web"
        ])
        .trim(),
        "67108864 500000000"
    );
    // Probes are healthchecks: liveness (restart on failure) and readiness.
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{json .Config.Healthcheck}}",
            "shop-pod-0-web"
        ])
        .trim(),
        r#"{"Test":["CMD","test","-f","/www/index.html"],"Interval":5000000000,"Timeout":1000000000,"Retries":2}"#
    );
    assert!(b
        .ok(&[
            "inspect",
            "-f",
            "{{json .Config.Healthcheck.Test}}",
            "shop-pod-0-database"
        ])
        .contains("nc 127.0.0.1 5432"));
    // httpGet (by the port's name) and tcpSocket: berth's own network
    // probes, run by the monitor in the pod's network namespace.
    let test_of = |c: &str| b.ok(&["inspect", "-f", "{{json .Config.Healthcheck.Test}}", c]);
    assert_eq!(
        test_of("shop-pod-0-proxy").trim(),
        r#"["HTTP-GET","8080","/cgi-bin/web"]"#
    );
    assert_eq!(test_of("shop-pod-0-cache").trim(), r#"["TCP","6379"]"#);
    eventually("every container healthy", || {
        ["web", "database", "cache", "proxy"].iter().all(|c| {
            b.ok(&[
                "inspect",
                "-f",
                "{{.State.Health.Status}}",
                &format!("shop-pod-0-{c}"),
            ])
            .trim()
                == "healthy"
        })
    });
    let first_log = |c: &str| {
        b.ok(&["inspect", "-f", "{{(index .State.Health.Log 0).Output}}", c])
            .trim()
            .to_string()
    };
    assert_eq!(
        first_log("shop-pod-0-proxy"),
        "GET http://127.0.0.1:8080/cgi-bin/web: HTTP 200"
    );
    assert_eq!(first_log("shop-pod-0-cache"), "connected to 127.0.0.1:6379");
    // The claim is a named volume the database writes to.
    b.ok(&[
        "exec",
        "shop-pod-0-database",
        "sh",
        "-c",
        "echo row > /var/lib/db/t",
    ]);
    assert_eq!(
        b.ok(&["volume", "inspect", "-f", "{{.Labels}}", "shop-data"])
            .trim(),
        "map[io.berth.kube.play:true]"
    );

    // Played again: refused (podman's exit code), or replaced.
    let o = b.run(&["kube", "play", &file]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("pod shop-pod-0 already exists: take it down with berth kube down FILE, or play with --replace"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["kube", "play", "--replace", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let new_id = check_report(&stdout(&o), &[], 4);
    assert_ne!(new_id, pod_id);
    assert_eq!(
        b.ok(&["exec", "shop-pod-0-database", "cat", "/var/lib/db/t"]),
        "row\n",
        "the volume outlives a --replace"
    );

    // The played pod generates a valid file whose ConfigMap, Secret and
    // emptyDir volumes are objects again (named as the volumes).
    let generated = b.path().join("generated.yaml");
    let o = b.run(&[
        "kube",
        "generate",
        "-f",
        generated.to_str().unwrap(),
        "shop-pod-0",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // `scripts` is one volume mounted in two containers: one object, no
    // warning about two of that name.
    assert!(!stderr(&o).contains("volumes are named"), "{}", stderr(&o));
    let out = std::process::Command::new(PYTHON)
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_validate.py"),
        )
        .arg(&generated)
        .output()
        .expect("the kube venv (scripts/deps installs it in /opt/berth-tests/kube)");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for ok in [
        "OK ConfigMap site",
        "OK ConfigMap scripts",
        "OK ConfigMap proxy-root",
        "OK Secret db-secret",
        "OK Pod shop-pod-0",
    ] {
        assert!(report.contains(ok), "{ok}\n{report}");
    }
    // Down: podman's report, and nothing of the play is left.
    let o = b.run(&["kube", "down", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("Pods stopped:\n{new_id}\nPods removed:\n{new_id}\nVolumes removed:\nshop-data\n")
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert_eq!(b.ok(&["pod", "ps", "-q"]), "");
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");
    assert!(!b.path().join("root/kube").exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", node_port)).is_err());
    assert_census_clean(&b);

    // The generated file plays (the init container ran "once" and is not
    // in it: the web, which needs its file, does not come up; the others do).
    let o = b.run(&["kube", "play", generated.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-database",
            "sh",
            "-c",
            "nc 127.0.0.1 5432 </dev/null; stat -c %a /scripts/db.sh"
        ]),
        "db: user=shopper password=s3cr3t\n755\n"
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "shop-pod-0-proxy",
            "stat",
            "-c",
            "%a",
            "/proxy/cgi-bin/web"
        ])
        .trim(),
        "755"
    );
    let o = b.run(&["kube", "down", generated.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "");

    // After a system reset (the pod and the volume gone, the play's
    // records left), a volume of the same name made by hand is not the
    // play's: a new play uses it and its down keeps it, with its data.
    let o = b.run(&["kube", "play", "--start=false", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    b.ok(&["system", "reset", "-f"]);
    // The reset took the image too.
    let o = b.run_stdin(
        &["import", "-c", "CMD [\"sh\"]", "-", IMAGE],
        &busybox_rootfs_tar(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    b.ok(&["volume", "create", "shop-data"]);
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "shop-data:/d",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /d/k",
    ]);
    let o = b.run(&["kube", "play", "--start=false", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    check_report(&stdout(&o), &[], 4);
    assert_eq!(
        b.ok(&["pod", "inspect", "-f", "{{.State}}", "shop-pod-0"])
            .trim(),
        "Created"
    );
    let o = b.run(&["kube", "down", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("Volumes removed"), "{}", stdout(&o));
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "shop-data\n");
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "shop-data:/d", IMAGE, "cat", "/d/k"]),
        "kept\n"
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    b.ok(&["volume", "rm", "shop-data"]);
}

/// A pod run by hand, generated, removed and played again comes back the
/// same: its containers (podman's `POD-CONTAINER` names), images,
/// environment, published port and hostname.
#[test]
#[ignore = "needs root"]
fn generate_then_play_round_trip() {
    let b = Berth::new();
    let port = free_port();
    b.ok(&[
        "pod",
        "create",
        "--name",
        "app",
        "--hostname",
        "apphost",
        "-p",
        &format!("127.0.0.1:{port}:80"),
    ]);
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "app",
        "--name",
        "web",
        "-e",
        "GREETING=hello",
        "-w",
        "/tmp",
        IMAGE,
        "sh",
        "-c",
        "echo $GREETING > /tmp/index.html && exec httpd -f -p 80 -h /tmp",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "app",
        "--name",
        "side",
        "-e",
        "ROLE=side",
        IMAGE,
        "sleep",
        "600",
    ]);
    assert!(http_get(port, "/").ends_with("hello\n"));
    let snapshot = |b: &Berth, prefix: &str| -> Vec<String> {
        ["web", "side"]
            .iter()
            .map(|c| {
                let env = b.ok(&[
                    "inspect",
                    "-f",
                    "{{.Config.Image}} {{json .Config.Env}} {{json .Config.Cmd}} {{.Config.WorkingDir}}",
                    &format!("{prefix}{c}"),
                ]);
                format!("{c}: {}", env.trim())
            })
            .collect()
    };
    let before = snapshot(&b, "");
    let file = b.path().join("app.yaml");
    b.ok(&["kube", "generate", "-f", file.to_str().unwrap(), "app"]);
    let out = std::process::Command::new(PYTHON)
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_validate.py"),
        )
        .arg(&file)
        .output()
        .expect("the kube venv (scripts/deps installs it in /opt/berth-tests/kube)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    b.ok(&["pod", "rm", "-f", "app"]);
    assert!(names(&b).is_empty());

    let o = b.run(&["kube", "play", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = check_report(&stdout(&o), &[], 2);
    let infra = format!("{}-infra", &id[..12]);
    let mut want = vec![infra.clone(), "app-side".into(), "app-web".into()];
    want.sort();
    assert_eq!(names(&b), want);
    assert_eq!(snapshot(&b, "app-"), before);
    assert_eq!(
        b.ok(&["pod", "inspect", "-f", "{{.Hostname}}", "app"])
            .trim(),
        "apphost"
    );
    assert_eq!(b.ok(&["exec", "app-side", "hostname"]).trim(), "apphost");
    assert_eq!(
        b.ok(&["port", &infra]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    assert!(http_get(port, "/").ends_with("hello\n"));
    // And the played pod generates the same file (its containers' names
    // without the pod's prefix).
    let again = b.path().join("again.yaml");
    b.ok(&["kube", "generate", "-f", again.to_str().unwrap(), "app"]);
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    // A pod removed by hand: a new play does not trip over its record.
    b.ok(&["pod", "rm", "-f", "app"]);
    let o = b.run(&["kube", "play", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    b.ok(&["kube", "down", file.to_str().unwrap()]);
    assert!(names(&b).is_empty());
    assert!(!b.path().join("root/kube").exists());
}

/// Bad files are refused with what is wrong and exit 125, and leave nothing.
#[test]
#[ignore = "needs root"]
fn bad_input_is_refused_with_125_and_leaves_nothing() {
    let b = Berth::new();
    let cases: &[(&str, &str, &str)] = &[
        ("invalid", "apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n", "the file is not valid YAML"),
        ("empty", "# nothing\n", "the file holds no Kubernetes objects"),
        (
            "unknown-kind",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec: {}\n",
            "document 2: kind CronJob (nightly) is not supported by berth kube play; it plays Pod, Deployment, DaemonSet, Job, Service, ConfigMap, Secret and PersistentVolumeClaim",
        ),
        (
            "missing-image",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: web\n      image: nosuch:1\n      imagePullPolicy: Never\n",
            "image nosuch:1 (container web of Pod p): not in the store, and imagePullPolicy is Never: load, build or pull it first",
        ),
        (
            "no-image",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: web\n",
            "Pod p: spec.containers[web].image: missing: every container needs an image",
        ),
        (
            "no-configmap",
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: web\n      image: bb:test\n      envFrom:\n        - configMapRef: {name: absent}\n",
            "Pod p: spec.containers[web].envFrom[0].configMapRef.name: ConfigMap \"absent\" is not in the file",
        ),
        (
            // Refused by the engine while making: the play takes back the
            // volume and the pod it had made.
            "engine-refusal",
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: made}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: ok\n      image: bb:test\n    - name: web\n      image: bb:test\n      resources: {limits: {memory: 1Ki}}\n      volumeMounts: [{name: d, mountPath: /d}]\n  volumes: [{name: d, persistentVolumeClaim: {claimName: made}}]\n",
            "Pod p: container web: ",
        ),
        // Names and keys that would be paths outside the pod's dir, and a
        // sub path of an emptyDir (CVE-2017-1002101): refused.
        (
            "key-traversal",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {../../evil: x}\n",
            "ConfigMap c: data.../../evil: not a valid key",
        ),
        (
            "pod-name",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: ../x}\nspec: {containers: [{name: c, image: bb:test}]}\n",
            "document 1: metadata.name: \"../x\": not a DNS-1123 name",
        ),
        (
            "volume-name",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: bb:test}]\n  volumes: [{name: ../up, emptyDir: {}}]\n",
            "Pod p: spec.volumes[../up].name: \"../up\": not a DNS-1123 label",
        ),
        (
            "emptydir-subpath",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: c\n      image: bb:test\n      volumeMounts: [{name: w, mountPath: /w, subPath: link}]\n  volumes: [{name: w, emptyDir: {}}]\n",
            "Pod p: spec.containers[c].volumeMounts[w].subPath: berth does not mount sub paths of an emptyDir",
        ),
        (
            "job-always",
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n        - {name: run, image: bb:test}\n",
            "Job j: spec.template.spec.restartPolicy: Always: a Job's pod needs Never or OnFailure",
        ),
    ];
    for (name, yaml, message) in cases {
        let file = write(&b, &format!("{name}.yaml"), yaml);
        let o = b.run(&["kube", "play", &file]);
        assert_eq!(code(&o), 125, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{name}: {}", stderr(&o));
        assert!(names(&b).is_empty(), "{name}: {:?}", names(&b));
        assert_eq!(b.ok(&["pod", "ps", "-q"]), "", "{name}");
        assert_eq!(b.ok(&["volume", "ls", "-q"]), "", "{name}");
    }
    let o = b.run(&["kube", "play", "/nonexistent.yaml"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("cannot read /nonexistent.yaml"),
        "{}",
        stderr(&o)
    );
    assert!(!b.path().join("root/kube").exists());
}

/// Deployments make `replicas` pods, a DaemonSet one, a Job one whose
/// container runs to completion; hostPath of type DirectoryOrCreate is made
/// and, empty, removed by down; an init container that fails stops the pod.
#[test]
#[ignore = "needs root"]
fn deployments_daemonsets_jobs_and_host_paths() {
    let b = Berth::new();
    let host_dir = b.path().join("made-by-play");
    let yaml = format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: srv
          image: bb:test
          args: [sleep, "600"]
          volumeMounts: [{{name: h, mountPath: /h}}]
      volumes:
        - name: h
          hostPath: {{path: {host}, type: DirectoryOrCreate}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers:
        - {{name: a, image: bb:test, command: [sleep, "600"]}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - {{name: job, image: bb:test, command: [sh, -c, "echo done; exit 0"]}}
"#,
        host = host_dir.display()
    );
    let file = write(&b, "w.yaml", &yaml);
    let o = b.run(&["kube", "play", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).matches("Pod:\n").count(), 4, "{}", stdout(&o));
    assert!(host_dir.is_dir());
    let mut pods: Vec<String> = b
        .ok(&["pod", "ps", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_string)
        .collect();
    pods.sort();
    assert_eq!(
        pods,
        ["agent-pod-0", "once-pod-0", "web-pod-0", "web-pod-1"]
    );
    assert_eq!(b.ok(&["wait", "once-pod-0-job"]).trim(), "0");
    assert_eq!(b.ok(&["logs", "once-pod-0-job"]), "done\n");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}",
            "web-pod-1-srv"
        ])
        .trim(),
        "always"
    );
    b.ok(&["exec", "web-pod-1-srv", "ls", "/h"]);
    let o = b.run(&["kube", "down", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let removed = stdout(&o)
        .split("Pods removed:\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        removed.lines().filter(|l| l.len() == 64).count(),
        4,
        "{}",
        stdout(&o)
    );
    assert!(
        !host_dir.exists(),
        "an empty hostPath dir play made is removed"
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));

    // A failing init container: the pod's containers are not started.
    let file = write(
        &b,
        "init.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n    - {name: check, image: bb:test, command: [sh, -c, 'exit 3']}\n  containers:\n    - {name: main, image: bb:test, command: [sleep, '600']}\n",
    );
    let o = b.run(&["kube", "play", &file]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains(
            "Pod p: init container check exited with 3, so the pod's containers were not started"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "p-main"])
            .trim(),
        "created"
    );
    b.ok(&["kube", "down", &file]);
    assert!(names(&b).is_empty(), "{:?}", names(&b));

    // --configmap FILE (podman's): ConfigMaps from another file; down
    // needs only the pods' file.
    let file = write(
        &b,
        "uses-ext.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n    - name: c\n      image: bb:test\n      command: [sleep, '600']\n      envFrom: [{configMapRef: {name: ext}}]\n      volumeMounts: [{name: cfg, mountPath: /cfg}]\n  volumes: [{name: cfg, configMap: {name: ext}}]\n",
    );
    let ext = write(
        &b,
        "ext.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ext}\ndata: {MODE: external}\n",
    );
    let o = b.run(&["kube", "play", &file]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("ConfigMap \"ext\" is not in the file"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["kube", "play", "--configmap", &ext, &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        b.ok(&["exec", "e-c", "sh", "-c", "echo $MODE; cat /cfg/MODE"]),
        "external\nexternal"
    );
    let o = b.run(&["kube", "play", "--configmap", &file, &file]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("not a ConfigMap (--configmap takes ConfigMaps only)"),
        "{}",
        stderr(&o)
    );
    let o = b.run(&["kube", "down", &file]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(names(&b).is_empty(), "{:?}", names(&b));
}

/// Pod-level settings (hostAliases in the pod's /etc/hosts, supplemental
/// groups, sysctls, the grace period), fieldRef variables, a claim's
/// subPath and readOnly mounts, stdin and tty; and every field berth does
/// not apply named with its path.
#[test]
#[ignore = "needs root"]
fn pod_settings_and_unapplied_fields() {
    let b = Berth::new();
    b.ok(&["volume", "create", "miscdata"]);
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "miscdata:/v",
        IMAGE,
        "mkdir",
        "-p",
        "/v/sub",
    ]);
    let yaml = r#"apiVersion: v1
kind: Pod
metadata: {name: misc, namespace: other}
spec:
  hostAliases:
    - ip: 10.1.2.3
      hostnames: [db.example]
  securityContext:
    supplementalGroups: [1234]
    sysctls:
      - {name: net.ipv4.ip_unprivileged_port_start, value: "80"}
  terminationGracePeriodSeconds: 3
  nodeSelector: {disk: ssd}
  containers:
    - name: web
      image: bb:test
      command: [httpd, -f, -p, "8081", -h, /]
      readinessProbe:
        httpGet: {path: /no/such/page, port: 8081}
        periodSeconds: 1
        failureThreshold: 1
    - name: c
      image: bb:test
      command: [sleep, "600"]
      livenessProbe:
        tcpSocket: {port: 9}
        periodSeconds: 1
        failureThreshold: 1
      tty: true
      stdin: true
      lifecycle: {preStop: {exec: {command: ["true"]}}}
      startupProbe: {exec: {command: ["true"]}}
      env:
        - name: POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
      volumeMounts:
        - {name: d, mountPath: /d, subPath: sub}
        - {name: d, mountPath: /ro, readOnly: true}
  volumes:
    - name: d
      persistentVolumeClaim: {claimName: miscdata}
    - name: g
      gitRepo: {repository: x}
"#;
    b.ok(&["network", "create", "kn"]);
    let o = b.run_stdin(&["kube", "play", "--network", "kn", "-"], yaml.as_bytes());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    for w in [
        "Pod misc: metadata.namespace: other: berth has no namespaces; not applied",
        "Pod misc: spec.nodeSelector: one host; not applied",
        "Pod misc: spec.volumes[g]: this kind of volume is not supported by berth",
        "Pod misc: spec.volumes[g].gitRepo: berth does not apply this field",
        "Pod misc: spec.containers[c].env[IP].valueFrom.fieldRef.fieldPath: status.podIP",
        "Pod misc: spec.containers[c].lifecycle: berth runs no postStart/preStop hooks",
        "Pod misc: spec.containers[c].startupProbe:",
        "Pod misc: claims miscdata, which is not a PersistentVolumeClaim of the file",
    ] {
        assert_eq!(err.matches(w).count(), 1, "{w}\n{err}");
    }
    assert!(b
        .ok(&["exec", "misc-c", "cat", "/etc/hosts"])
        .contains("10.1.2.3\tdb.example"));
    assert_eq!(
        b.ok(&["exec", "misc-c", "sh", "-c", "id -G; echo $POD; echo ${IP-unset}; cat /proc/sys/net/ipv4/ip_unprivileged_port_start; ls /ro; touch /d/y"]),
        "0 1234\nmisc\nunset\n80\nsub\n"
    );
    assert_ne!(code(&b.run(&["exec", "misc-c", "touch", "/ro/x"])), 0);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.Config.Tty}} {{.Config.OpenStdin}} {{.Config.StopTimeout}}",
            "misc-c"
        ])
        .trim(),
        "true true 3"
    );
    // --network: the pod's infra is on it, the members share it.
    let infra = b.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", "misc"]);
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
            infra.trim()
        ])
        .trim(),
        "kn"
    );
    // Failing network probes: a 404 and a closed port count as failures.
    eventually("the probes fail", || {
        ["misc-web", "misc-c"].iter().all(|c| {
            b.ok(&["inspect", "-f", "{{.State.Health.FailingStreak}}", c])
                .trim()
                .parse::<u32>()
                .unwrap_or(0)
                > 0
        })
    });
    let first_log = |c: &str| {
        b.ok(&["inspect", "-f", "{{(index .State.Health.Log 0).Output}}", c])
            .trim()
            .to_string()
    };
    assert_eq!(
        first_log("misc-web"),
        "GET http://127.0.0.1:8081/no/such/page: HTTP 404"
    );
    let log = first_log("misc-c");
    assert!(
        log.starts_with("dial tcp 127.0.0.1:9: Connection refused"),
        "{log}"
    );
    let o = b.run_stdin(&["kube", "down", "-"], yaml.as_bytes());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The volume was there before: kept, with what the pod wrote.
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "miscdata:/v", IMAGE, "ls", "/v/sub"]),
        "y\n"
    );
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    b.ok(&["volume", "rm", "miscdata"]);
    b.ok(&["network", "rm", "kn"]);
}

/// `hostUsers: false` (Kubernetes' user namespaces): the pod gets a user
/// namespace of its own (`pod create --userns=auto`, as podman 4.4's kube
/// play maps it), which every container shares; `kube generate` of such a
/// pod writes `hostUsers: false` back.
#[test]
#[ignore = "needs root"]
fn host_users_false_gives_the_pod_a_user_namespace() {
    let b = Berth::new();
    // The `containers` user's subordinate ids, in files of the test's own.
    with_subids(
        &b,
        "containers:1000000:200000\n",
        "containers:2000000:200000\n",
    );
    let yaml = r#"apiVersion: v1
kind: Pod
metadata: {name: iso}
spec:
  hostUsers: false
  containers:
    - name: a
      image: bb:test
      command: [sleep, "600"]
    - name: b
      image: bb:test
      command: [sleep, "600"]
"#;
    let o = b.run_stdin(&["kube", "play", "--network", "none", "-"], yaml.as_bytes());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("hostUsers"), "{}", stderr(&o));
    for c in ["iso-a", "iso-b"] {
        assert_eq!(
            b.ok(&["exec", c, "cat", "/proc/self/uid_map"])
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["0", "1000000", "65536"],
            "{c}"
        );
    }
    assert_eq!(
        b.ok(&["exec", "iso-a", "readlink", "/proc/self/ns/user"]),
        b.ok(&["exec", "iso-b", "readlink", "/proc/self/ns/user"])
    );
    let generated = b.ok(&["kube", "generate", "iso"]);
    assert!(generated.contains("hostUsers: false"), "{generated}");
    let o = b.run_stdin(&["kube", "down", "-"], yaml.as_bytes());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    // `kube play --userns` (podman's flag) sets every pod's, over the
    // YAML: here maps of a size of its own.
    let plain = yaml.replace("  hostUsers: false\n", "");
    let o = b.run_stdin(
        &[
            "kube",
            "play",
            "--network",
            "none",
            "--userns=auto:size=3000",
            "-",
        ],
        plain.as_bytes(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        b.ok(&["exec", "iso-b", "cat", "/proc/self/uid_map"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "1000000", "3000"]
    );
    let o = b.run_stdin(&["kube", "down", "-"], plain.as_bytes());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert_census_clean(&b);
}
