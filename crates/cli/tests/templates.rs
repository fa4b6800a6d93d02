//! `--format` templates through real berth commands. Expected strings were
//! recorded from docker 20.10 (Debian's docker.io, /usr/bin/docker) running the
//! same commands against a busybox container made the same way.
mod common;

use common::{code, stderr, stdout, Berth, IMAGE};

fn web(b: &Berth) {
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "--label",
        "com.x=1",
        "--label",
        "a=b",
        "-e",
        "FOO=bar",
        "--health-cmd",
        "true",
        "--health-interval",
        "30s",
        IMAGE,
        "sleep",
        "1000",
    ]);
}

fn inspect(b: &Berth, format: &str) -> String {
    b.ok(&["inspect", "-f", format, "web"])
}

#[test]
fn inspect_runs_go_templates() {
    let b = Berth::new();
    web(&b);
    // docker 20.10: FOO=bar, (its imported busybox has no PATH in Env).
    assert!(inspect(&b, "{{range .Config.Env}}{{.}},{{end}}").contains("FOO=bar,"));
    assert_eq!(
        inspect(
            &b,
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"
        ),
        "a=b;com.x=1;\n"
    );
    assert_eq!(
        inspect(
            &b,
            r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#
        ),
        "up\n"
    );
    assert_eq!(
        inspect(
            &b,
            "{{json .Config.Labels}}|{{json .Config.Cmd}}|{{json .State.Running}}"
        ),
        "{\"a\":\"b\",\"com.x\":\"1\"}|[\"sleep\",\"1000\"]|true\n"
    );
    assert!(inspect(&b, "{{json .Config}}").starts_with('{'));
    assert_eq!(inspect(&b, "{{.Config.Healthcheck.Interval}}"), "30s\n");
    assert_eq!(inspect(&b, r#"{{join .Config.Cmd " "}}"#), "sleep 1000\n");
    assert_eq!(
        inspect(
            &b,
            r#"{{upper .Name}}|{{lower "ABC"}}|{{title "hello world"}}|{{split "a,b,c" ","}}|{{pad "x" 2 3}}|{{truncate "abcdef" 3}}"#
        ),
        "/WEB|abc|Hello World|[a b c]|  x   |abc\n"
    );
    assert_eq!(
        inspect(
            &b,
            "{{.Config.Labels}}|{{.Config.Cmd}}|{{.Config.Labels.nope}}"
        ),
        "map[a:b com.x:1]|[sleep 1000]|<no value>\n"
    );
    assert_eq!(
        inspect(&b, r#"{{with .Config.Labels.a}}A={{.}}{{else}}none{{end}}"#),
        "A=b\n"
    );
    assert_eq!(
        b.ok(&["container", "inspect", "-f", "{{.Name}}", "web"]),
        "/web\n"
    );
}

#[test]
fn template_errors_exit_as_docker() {
    let b = Berth::new();
    web(&b);
    // docker 20.10: exit 64, "template parsing error: template: :1: function "foo" not defined".
    let out = b.run(&["inspect", "-f", "{{foo .}}", "web"]);
    assert_eq!(code(&out), 64);
    assert!(
        stderr(&out)
            .contains(r#"template parsing error: template: :1: function "foo" not defined"#),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    // docker 20.10: an empty line on stdout, exit 1, and the raw-JSON fallback's message.
    let out = b.run(&["inspect", "-f", "{{.Config.Nope}}", "web"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(r#"template parsing error: template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope""#),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "\n");
    let out = b.run(&["ps", "--format", "{{.Nope}}"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(r#"failed to execute template: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"#),
        "{}",
        stderr(&out)
    );
    let out = b.run(&["images", "--format", "{{foo}}"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out)
            .contains(r#"template parsing error: template: :1: function "foo" not defined"#),
        "{}",
        stderr(&out)
    );
    let out = b.run(&["volume", "ls", "--format", "{{.Nope}}"]);
    // With no volume there is no row to fail on (docker too).
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn list_templates_and_tables() {
    let b = Berth::new();
    web(&b);
    // docker 20.10:
    // NAMES     STATUS
    // web       Up 1 second (health: starting)
    let out = b.ok(&["ps", "--format", "table {{.Names}}\\t{{.Status}}"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "NAMES     STATUS", "{out}");
    assert!(lines[1].starts_with("web       Up "), "{out}");
    // docker 20.10: b||a=b,com.x=1
    assert_eq!(
        b.ok(&[
            "ps",
            "--format",
            r#"{{.Label "a"}}|{{.Label "zz"}}|{{.Names}}"#
        ]),
        "b||web\n"
    );
    // docker 20.10: a header from the label's last dot-separated part.
    let out = b.ok(&["ps", "--format", r#"table {{.Names}}\t{{.Label "com.x"}}"#]);
    assert_eq!(out, "NAMES     x\nweb       1\n");
    // docker 20.10: a tab without `table` stays a tab.
    assert_eq!(
        b.ok(&["ps", "--format", "{{.Names}}\\t{{.Names}}"]),
        "web\tweb\n"
    );
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "bb:test\n"
    );
    let out = b.ok(&["images", "--format", "table {{.Repository}}\\t{{.Tag}}"]);
    assert_eq!(out, "REPOSITORY   TAG\nbb           test\n");
    let out = b.ok(&["network", "ls", "--format", "table {{.Name}}\\t{{.Driver}}"]);
    assert!(out.starts_with("NAME      DRIVER\n"), "{out}");
    b.ok(&["volume", "create", "vol1"]);
    // docker 20.10: VOLUME NAME   DRIVER / vol1          local
    let out = b.ok(&["volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}"]);
    assert_eq!(out, "VOLUME NAME   DRIVER\nvol1          local\n");
    assert_eq!(
        b.ok(&["volume", "inspect", "-f", "{{.Name}} {{.Labels}}", "vol1"]),
        "vol1 map[]\n"
    );
    let out = b.run(&["volume", "inspect", "-f", "{{.Nope}}", "vol1"]);
    assert_eq!(code(&out), 1);
    // docker 20.10 (volumes have no raw fallback):
    assert!(
        stderr(&out).contains(r#"template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type types.Volume"#),
        "{}",
        stderr(&out)
    );
    let out = b.ok(&["history", "--format", "table {{.ID}}\\t{{.Comment}}", IMAGE]);
    assert!(out.starts_with("IMAGE"), "{out}");
    let out = b.ok(&["system", "df", "--format", "{{.Type}}"]);
    assert_eq!(out, "Images\nContainers\nLocal Volumes\nBuild Cache\n");
    let out = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\\t{{.PIDs}}",
    ]);
    assert!(out.starts_with("NAME      PIDS\nweb       "), "{out}");
}
