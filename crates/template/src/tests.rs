//! Go semantics, checked against what Go's text/template prints (the docker
//! 20.10 outputs quoted here were recorded with `docker inspect -f`).
use std::collections::BTreeMap;

use crate::{Missing, Shape, Struct, Template, Value};

fn data() -> Value {
    let json = serde_json::json!({
        "Name": "/web",
        "Config": {
            "Cmd": ["sleep", "1000"],
            "Env": ["FOO=bar", "PATH=/bin"],
            "Labels": {"com.x": "1", "a": "b"},
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000u64, "Retries": 0},
            "Volumes": null
        },
        "State": {"Status": "running", "Running": true, "Pid": 42},
        "Nums": [3, 1, 2],
        "Float": 1.5,
    });
    Shape {
        type_name: "types.ContainerJSON",
        maps: &["Config.Labels", "Config.Volumes"],
        durations: &["Config.Healthcheck.Interval"],
        nils: &["State.Health"],
        ..Shape::default()
    }
    .apply(&json)
}

fn run(t: &str) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .execute(&data())
        .unwrap_or_else(|e| panic!("{t}: {e}"))
}

fn exec_err(t: &str) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .execute(&data())
        .expect_err(t)
        .to_string()
}

fn parse_err(t: &str) -> String {
    Template::parse(t).expect_err(t).to_string()
}

#[test]
fn fields_and_printing() {
    assert_eq!(run("{{.Name}}"), "/web");
    assert_eq!(run("{{.Config.Cmd}}"), "[sleep 1000]");
    assert_eq!(run("{{.Config.Labels}}"), "map[a:b com.x:1]");
    assert_eq!(run("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(run("{{.Config.Healthcheck.Interval}}"), "30s");
    // Go prints fields in declaration order (docker: `{[CMD-SHELL true] 30s 0s 0s 0}`);
    // a JSON document keeps the order it was written in (omitted zero
    // fields are not there to print).
    assert_eq!(run("{{.Config.Healthcheck}}"), "{[CMD-SHELL true] 30s 0}");
    assert_eq!(
        run("{{.State.Running}} {{.State.Pid}} {{.Float}}"),
        "true 42 1.5"
    );
    // A nil map prints `map[]`, a nil interface `<nil>`.
    assert_eq!(run("{{.Config.Volumes}}|{{print nil}}"), "map[]|<nil>");
    assert!(run("{{.}}").starts_with('{'));
}

#[test]
fn range_over_slices_and_maps() {
    assert_eq!(
        run("{{range .Config.Env}}{{.}},{{end}}"),
        "FOO=bar,PATH=/bin,"
    );
    assert_eq!(
        run("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
        "a=b;com.x=1;"
    );
    assert_eq!(
        run("{{range $i, $v := .Nums}}{{$i}}:{{$v}} {{end}}"),
        "0:3 1:1 2:2 "
    );
    assert_eq!(run("{{range $v := .Nums}}{{$v}}{{end}}"), "312");
    assert_eq!(
        run("{{range .Config.Volumes}}x{{else}}empty{{end}}"),
        "empty"
    );
    assert_eq!(
        run("{{range .Nums}}{{if eq . 1}}{{break}}{{end}}{{.}}{{end}}"),
        "3"
    );
    assert_eq!(
        run("{{range .Nums}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}"),
        "32"
    );
    assert!(run("{{range .Nums}}{{$}}{{end}}").len() > 3);
}

#[test]
fn conditionals_and_with() {
    assert_eq!(
        run(r#"{{if eq .State.Status "running"}}up{{else}}down{{end}}"#),
        "up"
    );
    assert_eq!(
        run("{{if .Config.Volumes}}V{{else if .Config.Cmd}}C{{else}}N{{end}}"),
        "C"
    );
    assert_eq!(run("{{if false}}a{{else if false}}b{{else}}c{{end}}"), "c");
    assert_eq!(
        run("{{with .Config.Labels.a}}A={{.}}{{else}}none{{end}}"),
        "A=b"
    );
    assert_eq!(run("{{with .Config.Volumes}}w{{else}}nw{{end}}"), "nw");
}

#[test]
fn variables_define_and_trimming() {
    // docker 20.10: {{define "x"}}[{{.}}]{{end}}{{template "x" .Name}}{{- " trimmed " -}} {{$n := .Name}}{{$n}}…
    assert_eq!(
        run(
            r#"{{define "x"}}[{{.}}]{{end}}{{template "x" .Name}}{{- " trimmed " -}} {{$n := .Name}}{{$n}}{{range $i, $e := .Config.Cmd}}{{$i}}:{{$e}} {{end}}"#
        ),
        "[/web] trimmed /web0:sleep 1:1000 "
    );
    assert_eq!(run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2");
    assert_eq!(
        run("{{- .Name -}}   {{ .Name }} {{/* c */}} {{- /* c2 */ -}} x"),
        "/web/web x"
    );
    assert_eq!(run(r#"{{block "b" .Name}}<{{.}}>{{end}}"#), "</web>");
    assert_eq!(run("{{(.Config).Cmd}} {{$.Name}}"), "[sleep 1000] /web");
    assert_eq!(run("{{.Name | printf \"%s!\"}}"), "/web!");
}

#[test]
fn builtins() {
    // docker 20.10: yes|dflt|0|false|true|bc|2
    assert_eq!(
        run(
            r#"{{if and .State.Running (eq .State.Status "running" "paused")}}yes{{end}}|{{or "" "dflt"}}|{{and 1 0}}|{{not .State.Running}}|{{lt 1 2}}|{{slice "abcdef" 1 3}}|{{len .Config.Labels}}"#
        ),
        "yes|dflt|0|false|true|bc|2"
    );
    assert_eq!(
        run(r#"{{eq 2 1 2}} {{ne "a" "b"}} {{le 2 2}} {{gt 1.5 2.5}} {{ge "b" "a"}}"#),
        "true true true false true"
    );
    assert_eq!(
        run(r#"{{index .Config.Labels "a"}}|{{index .Config.Cmd 1}}|{{index .Name 1}}"#),
        "b|1000|119"
    );
    assert_eq!(
        run("{{slice .Nums 1}} {{slice .Nums 0 2}} {{len .Nums}}"),
        "[1 2] [3 1] 3"
    );
    assert_eq!(run(r#"{{println 1 2}}{{print "a" 1 2 "b"}}"#), "1 2\na1 2b");
    assert_eq!(
        run(r#"{{printf "%5.2f|%q|%d|%v|%s" 2.5678 "a" 42 .Config.Cmd .Config.Labels}}"#),
        " 2.57|\"a\"|42|[sleep 1000]|map[a:b com.x:1]"
    );
    assert_eq!(
        run(r#"{{html "<a>"}} {{urlquery "a b&c"}}"#),
        "&lt;a&gt; a+b%26c"
    );
}

#[test]
fn docker_functions() {
    // docker 20.10: /WEB|abc|Hello World|[a b c]|  x   |abc
    assert_eq!(
        run(
            r#"{{upper .Name}}|{{lower "ABC"}}|{{title "hello world"}}|{{split "a,b,c" ","}}|{{pad "x" 2 3}}|{{truncate "abcdef" 3}}"#
        ),
        "/WEB|abc|Hello World|[a b c]|  x   |abc"
    );
    assert_eq!(run(r#"{{join .Config.Cmd " "}}"#), "sleep 1000");
    // docker 20.10: {"a":"b","com.x":"1"}|["sleep","1000"]|true and "<a&b>" (no HTML escaping)
    assert_eq!(
        run(
            r#"{{json .Config.Labels}}|{{json .Config.Cmd}}|{{json .State.Running}}|{{json "<a&b>"}}"#
        ),
        r#"{"a":"b","com.x":"1"}|["sleep","1000"]|true|"<a&b>""#
    );
    assert_eq!(
        run("{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":0}"#
    );
    let mut row = Struct::new(
        "*formatter.ContainerContext",
        vec![("Names".into(), Value::from("<x>"))],
    );
    row.json_escapes_html = true;
    let out = Template::parse("{{json .}}")
        .unwrap()
        .execute(&Value::Struct(row))
        .unwrap();
    assert_eq!(out, r#"{"Names":"\u003cx\u003e"}"#);
}

#[test]
fn methods() {
    let mut labels = BTreeMap::new();
    labels.insert("a".to_string(), "b".to_string());
    let mut row = Struct::new("*formatter.ContainerContext", vec![]);
    row.methods.insert(
        "Label".into(),
        std::sync::Arc::new(move |args: &[Value]| {
            let k = args
                .first()
                .and_then(Value::as_str)
                .ok_or("want a string")?;
            Ok(Value::String(labels.get(k).cloned().unwrap_or_default()))
        }),
    );
    let t = Template::parse(r#"{{.Label "a"}}|{{.Label "zz"}}"#).unwrap();
    assert_eq!(t.execute(&Value::Struct(row)).unwrap(), "b|");
}

#[test]
fn parse_errors_as_go() {
    // All four recorded from docker 20.10 (after its "template parsing error: " prefix).
    assert_eq!(
        parse_err("{{foo .}}"),
        r#"template: :1: function "foo" not defined"#
    );
    assert_eq!(parse_err("{{.Name"), "template: :1: unclosed action");
    assert_eq!(
        parse_err("{{if}}x{{end}}"),
        "template: :1: missing value for if"
    );
    assert_eq!(
        parse_err("{{$x}}"),
        r#"template: :1: undefined variable "$x""#
    );
    assert_eq!(
        parse_err("{{range $k, $v := .Config.Labels}}{{end}}{{$k}}"),
        r#"template: :1: undefined variable "$k""#
    );
    assert_eq!(parse_err("{{end}}"), "template: :1: unexpected {{end}}");
    assert_eq!(
        parse_err("a\n{{\"x}}"),
        "template: :2: unterminated quoted string"
    );
    assert!(Template::parse("{{if .A}}").is_err());
}

#[test]
fn exec_errors_as_go() {
    // Recorded from docker 20.10 (typed data: structs).
    assert_eq!(
        exec_err("{{.Nope}}"),
        r#"template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type types.ContainerJSON"#
    );
    assert_eq!(
        exec_err("{{index .Config.Cmd 5}}"),
        r#"template: :1:2: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5"#
    );
    assert_eq!(
        exec_err(r#"{{template "nope"}}"#),
        r#"template: :1:11: executing "" at <{{template "nope"}}>: template "nope" not defined"#
    );
    assert_eq!(
        exec_err("{{nil}}"),
        r#"template: :1:2: executing "" at <nil>: nil is not a command"#
    );
    assert_eq!(
        exec_err("{{range .State.Pid}}{{end}}"),
        r#"template: :1:14: executing "" at <.State.Pid>: range can't iterate over 42"#
    );
    assert_eq!(
        exec_err(r#"{{eq 1 "a"}}"#),
        r#"template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison"#
    );
    assert_eq!(
        exec_err(r#"{{lt "a" 1}}"#),
        r#"template: :1:2: executing "" at <lt "a" 1>: error calling lt: incompatible types for comparison"#
    );
    assert_eq!(
        exec_err(r#"{{index .Config.Labels 1}}"#),
        r#"template: :1:2: executing "" at <index .Config.Labels 1>: error calling index: value has type int; should be string"#
    );
    // Docker's raw fallback: every object a map, missingkey=error.
    let raw = crate::raw(&serde_json::json!({"Config": {"Cmd": ["sh"]}}));
    let run_raw = |t: &str| {
        Template::parse(t)
            .unwrap()
            .execute_with(&raw, crate::FuncSet::Data, Missing::Error)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        run_raw("{{.Config.Nope}}"),
        r#"template: :1:9: executing "" at <.Config.Nope>: map has no entry for key "Nope""#
    );
    assert_eq!(
        run_raw("{{.Config.Cmd.Foo}}"),
        r#"template: :1:9: executing "" at <.Config.Cmd.Foo>: can't evaluate field Foo in type interface {}"#
    );
}

#[test]
fn header_functions_return_their_argument() {
    let mut h = BTreeMap::new();
    h.insert("Names".to_string(), Value::from("NAMES"));
    let t = Template::parse(r#"{{json .Names}}|{{upper .Names}}|{{truncate .Names 2}}"#).unwrap();
    let out = t
        .execute_with(&Value::Map(h), crate::FuncSet::Header, Missing::NoValue)
        .unwrap();
    assert_eq!(out, "NAMES|NAMES|NAMES");
}

#[test]
fn scoping_nils_and_times() {
    // A variable declared inside {{if}} ends with it (Go: a parse error).
    assert_eq!(
        parse_err("{{if true}}{{$y := 1}}{{end}}{{$y}}"),
        r#"template: :1: undefined variable "$y""#
    );
    assert_eq!(
        run("{{$x := 1}}{{range .Nums}}{{$x = .}}{{end}}{{$x}}"),
        "2"
    );
    assert_eq!(
        run("{{if .State.Health}}h{{else}}none{{end}}|{{.State.Health}}"),
        "none|<nil>"
    );
    let json = serde_json::json!({"Created": "2026-12-03T20:13:07.781470735Z"});
    let v = Shape {
        times: &["Created"],
        ..Shape::default()
    }
    .apply(&json);
    // docker 20.10 (network inspect): 2026-12-03 20:13:07.781470735 +0000 UTC|"2026-12-03T20:13:07.781470735Z"
    let t = Template::parse("{{.Created}}|{{json .Created}}").unwrap();
    assert_eq!(
        t.execute(&v).unwrap(),
        r#"2026-12-03 20:13:07.781470735 +0000 UTC|"2026-12-03T20:13:07.781470735Z""#
    );
}

#[test]
fn nil_maps_and_omitted_pointers_marshal_as_go() {
    // docker 20.10 `image inspect -f '{{json .Config}}'` of an imported
    // image: nil maps are null, a nil Healthcheck (omitempty) is left out;
    // as text the nil map is map[] and the pointer <nil>.
    let json = serde_json::json!({"Config": {"Cmd": ["sh"], "Labels": null}});
    let v = Shape {
        maps: &["Config.Labels"],
        nils: &["Config.Healthcheck"],
        ..Shape::default()
    }
    .apply(&json);
    let t = Template::parse("{{json .Config}}|{{.Config.Labels}}|{{.Config.Healthcheck}}").unwrap();
    assert_eq!(
        t.execute(&v).unwrap(),
        r#"{"Cmd":["sh"],"Labels":null}|map[]|<nil>"#
    );
}

/// A map field JSON omits when empty (Docker's `HostConfig.Sysctls`,
/// `omitempty`) is still a field of the struct: `map[]` (docker 20.10:
/// `{{.HostConfig.Sysctls}}` → `map[]`), and left out of the parent's JSON.
#[test]
fn omitted_map_fields_are_empty_maps() {
    let doc = serde_json::json!({"HostConfig": {"ShmSize": 1}});
    let v = Shape {
        type_name: "types.ContainerJSON",
        maps: &["HostConfig.Sysctls"],
        ..Shape::default()
    }
    .apply(&doc);
    let run = |t: &str| Template::parse(t).unwrap().execute(&v).unwrap();
    assert_eq!(run("{{.HostConfig.Sysctls}}"), "map[]");
    assert_eq!(run("{{json .HostConfig}}"), "{\"ShmSize\":1}");
}

/// A nil slice (an endpoint's `Aliases` on `host` or the default bridge)
/// prints `[]` as Go prints it, and stays `null` in JSON (docker 20.10:
/// `{{range $k, $v := .NetworkSettings.Networks}}{{$v.Aliases}}{{end}}` →
/// `[]`).
#[test]
fn nil_slices_print_as_empty_lists() {
    let doc = serde_json::json!({"NetworkSettings": {"Networks": {"host": {"Aliases": null}}}});
    let v = Shape {
        maps: &["NetworkSettings.Networks"],
        slices: &["NetworkSettings.Networks.*.Aliases"],
        ..Shape::default()
    }
    .apply(&doc);
    let run = |t: &str| Template::parse(t).unwrap().execute(&v).unwrap();
    assert_eq!(
        run("{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.Aliases}} {{len $v.Aliases}}{{end}}"),
        "host [] 0"
    );
    assert_eq!(
        run("{{json .NetworkSettings.Networks.host}}"),
        "{\"Aliases\":null}"
    );
}
