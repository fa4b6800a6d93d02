//! The differential suite (issue 17): every scenario of `diff/scenarios/*.txt`
//! is run against berth and its normalised answers compared with Docker's,
//! recorded in `diff/fixtures/*.txt` by `scripts/record-docker` (which runs
//! this same test with `DIFF_RECORD=1` against a throwaway dockerd).
//!
//! A scenario marked `known: REASON` is a difference someone is fixing: it
//! does not fail the test while it differs, and fails it once it matches
//! (remove the mark). `DIFF_ONLY=a,b` runs the scenarios whose file or name
//! contains `a` or `b`; `DIFF_VERBOSE=1` shows the known differences in full.
mod common;
#[path = "diff/normalize.rs"]
mod normalize;
#[path = "diff/scenario.rs"]
mod scenario;

use normalize::Paths;
use scenario::{Answer, Compare, Fixture, Scenario, Shell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The engine under test: its binary, environment and the paths of its
/// state that show up in answers.
struct Engine {
    bin: PathBuf,
    env: Vec<(String, PathBuf)>,
    paths: Vec<(String, String)>,
}

/// `E compose …` is `docker-compose …` when recording (`DIFF_COMPOSE`).
const PRELUDE: &str = "E() { if [ \"$1\" = compose ] && [ -n \"$DIFF_COMPOSE\" ]; then shift; \"$DIFF_COMPOSE\" \"$@\"; else \"$ENGINE_BIN\" \"$@\"; fi; }\n";

/// Between scenario files: no container, volume, user network or image
/// other than the busybox one is left over.
const RESET: &str = r#"
E ps -aq | xargs -r "$ENGINE_BIN" rm -f >/dev/null 2>&1
E volume ls -q | xargs -r "$ENGINE_BIN" volume rm -f >/dev/null 2>&1
E network ls --format '{{.Name}}' | grep -vxE 'bridge|host|none' | xargs -r "$ENGINE_BIN" network rm >/dev/null 2>&1
E images --format '{{.Repository}}:{{.Tag}}' | grep -vx 'bb:latest' | grep -v '<none>' | xargs -r "$ENGINE_BIN" rmi -f >/dev/null 2>&1
E images -q --filter dangling=true | xargs -r "$ENGINE_BIN" rmi -f >/dev/null 2>&1
true
"#;

struct Raw {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Engine {
    fn sh(&self, script: &str, tmp: &Path) -> Raw {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "60", "sh", "-c"])
            .arg(format!("{PRELUDE}{script}"))
            .env("ENGINE_BIN", &self.bin)
            .env("TMP", tmp)
            .current_dir(tmp)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let out = c.output().expect("sh");
        Raw {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff")
}

fn normalise(raw: &Raw, line: &str, compare: Compare, paths: &Paths) -> Answer {
    let stdout = if compare == Compare::Json {
        match serde_json::from_str::<serde_json::Value>(&raw.stdout) {
            Ok(v) => serde_json::to_string_pretty(&normalize::json(&v, paths)).unwrap(),
            Err(_) => normalize::text(&raw.stdout, paths),
        }
    } else {
        normalize::text(&raw.stdout, paths)
    };
    Answer {
        line: line.to_string(),
        exit: raw.code,
        stdout,
        stderr: normalize::text(&raw.stderr, paths),
    }
}

fn run_scenario(engine: &Engine, sc: &Scenario, tmp: &Path, paths: &Paths) -> Vec<Answer> {
    std::fs::create_dir_all(tmp).unwrap();
    let mut answers = Vec::new();
    for step in &sc.steps {
        let script = match step.shell {
            Shell::Engine => format!("E {}", step.line),
            Shell::Host => step.line.clone(),
        };
        let raw = engine.sh(&script, tmp);
        if let Some(compare) = step.compare {
            answers.push(normalise(&raw, &step.line, compare, paths));
        }
    }
    for line in &sc.cleanup {
        engine.sh(&format!("E {line} >/dev/null 2>&1"), tmp);
    }
    answers
}

/// Every difference between Docker's answers and berth's, readable.
fn differences(sc: &Scenario, want: &[Answer], got: &[Answer]) -> Vec<String> {
    let mut out = Vec::new();
    if want.len() != got.len() || want.iter().zip(got).any(|(w, g)| w.line != g.line) {
        return vec![
            "  the scenario changed since it was recorded: run scripts/record-docker".into(),
        ];
    }
    for ((step, w), g) in sc.checks().zip(want).zip(got) {
        let mut d = Vec::new();
        let compare = step.compare.unwrap();
        if w.exit != g.exit {
            d.push(format!(
                "    exit code: Docker {}, berth {}",
                w.exit, g.exit
            ));
        }
        match compare {
            Compare::All | Compare::Shape | Compare::Stdout => {
                if w.stdout != g.stdout {
                    d.push(format!(
                        "    stdout:\n{}",
                        normalize::text_diff(&w.stdout, &g.stdout)
                    ));
                }
            }
            Compare::Json => {
                let parsed = (
                    serde_json::from_str::<serde_json::Value>(&w.stdout),
                    serde_json::from_str::<serde_json::Value>(&g.stdout),
                );
                match parsed {
                    (Ok(wv), Ok(gv)) => {
                        for line in normalize::json_diff(&wv, &gv) {
                            d.push(format!("    {line}"));
                        }
                    }
                    _ if w.stdout != g.stdout => d.push(format!(
                        "    stdout:\n{}",
                        normalize::text_diff(&w.stdout, &g.stdout)
                    )),
                    _ => {}
                }
            }
            Compare::Exit => {}
        }
        if compare == Compare::All && w.stderr != g.stderr {
            d.push(format!(
                "    stderr:\n{}",
                normalize::text_diff(&w.stderr, &g.stderr)
            ));
        }
        if compare == Compare::Shape && w.stderr.is_empty() != g.stderr.is_empty() {
            d.push(format!(
                "    stderr: Docker's {}, berth's {}\n{}",
                if w.stderr.is_empty() {
                    "empty"
                } else {
                    "not empty"
                },
                if g.stderr.is_empty() {
                    "empty"
                } else {
                    "not empty"
                },
                normalize::text_diff(&w.stderr, &g.stderr)
            ));
        }
        if !d.is_empty() {
            let prefix = if step.shell == Shell::Host {
                "sh$"
            } else {
                "$"
            };
            out.push(format!("  {prefix} {}\n{}", step.line, d.join("\n")));
        }
    }
    out
}

fn first_line(d: &[String]) -> String {
    d.iter()
        .flat_map(|s| s.lines())
        .map(str::trim)
        .find(|l| {
            !l.starts_with('$') && !l.starts_with("sh$") && !l.is_empty() && !l.ends_with(':')
        })
        .unwrap_or("")
        .chars()
        .take(90)
        .collect()
}

#[test]
fn differential() {
    common::require_root();
    let started = Instant::now();
    let record = std::env::var_os("DIFF_RECORD").is_some();
    let only = std::env::var("DIFF_ONLY").ok();
    let dir = diff_dir();
    let work = tempfile::Builder::new()
        .prefix("berth-diff-")
        .tempdir_in("/var/tmp")
        .unwrap();

    // Keeps berth's state root alive until the end (then `system reset -f`).
    let mut _berth = None;
    let engine = if record {
        let bin = std::env::var_os("DIFF_ENGINE").unwrap_or("/usr/bin/docker".into());
        let mut paths = Vec::new();
        for (var, to) in [
            ("DIFF_DATA_ROOT", "<root>"),
            ("DIFF_EXEC_ROOT", "<runroot>"),
        ] {
            if let Ok(p) = std::env::var(var) {
                paths.push((p, to.to_string()));
            }
        }
        Engine {
            bin: bin.into(),
            env: Vec::new(),
            paths,
        }
    } else {
        let b = common::Berth::empty();
        let e = Engine {
            bin: env!("CARGO_BIN_EXE_berth").into(),
            env: vec![
                ("BERTH_ROOT".into(), b.root.clone()),
                ("BERTH_RUNROOT".into(), b.runroot.clone()),
                ("BERTH_CONFIG".into(), b.path().join("config")),
                ("DOCKER_CONFIG".into(), b.path().join("docker-config")),
            ],
            paths: vec![
                (b.root.display().to_string(), "<root>".into()),
                (b.runroot.display().to_string(), "<runroot>".into()),
            ],
        };
        _berth = Some(b);
        e
    };

    let rootfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs");
    let imported = engine.sh(
        &format!("'{}' | E import -c 'CMD [\"sh\"]' - bb", rootfs.display()),
        work.path(),
    );
    assert_eq!(
        imported.code, 0,
        "import of the busybox image: {}",
        imported.stderr
    );

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();

    let mut failures: Vec<String> = Vec::new();
    let mut known: Vec<(String, String, String)> = Vec::new();
    let mut total = 0;
    let mut n = 0;
    for file in &files {
        let fname = file.file_name().unwrap().to_string_lossy().into_owned();
        let scenarios = scenario::parse_scenarios(&fname, &std::fs::read_to_string(file).unwrap());
        let fixture_path = dir.join("fixtures").join(&fname);
        let recorded: Fixture = std::fs::read_to_string(&fixture_path)
            .map(|t| scenario::parse_fixture(&t))
            .unwrap_or_default();
        let recorded_map: HashMap<&str, &Vec<Answer>> =
            recorded.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut fresh: Fixture = Vec::new();
        let mut ran_any = false;
        for sc in &scenarios {
            let selected = only.as_deref().is_none_or(|o| {
                o.split(',')
                    .any(|o| sc.name.contains(o) || fname.contains(o))
            });
            if !selected {
                if let Some(a) = recorded_map.get(sc.name.as_str()) {
                    fresh.push((sc.name.clone(), (*a).clone()));
                }
                continue;
            }
            ran_any = true;
            total += 1;
            n += 1;
            let tmp = work.path().join(format!("s{n}"));
            let mut paths = vec![(tmp.display().to_string(), "$TMP".to_string())];
            paths.extend(engine.paths.iter().cloned());
            paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            let paths = Paths(paths);
            let got = run_scenario(&engine, sc, &tmp, &paths);
            let image = engine.sh("E image inspect bb >/dev/null", work.path());
            assert_eq!(
                image.code, 0,
                "{fname} / {}: the busybox image bb is gone after it; scenarios must leave it",
                sc.name
            );
            if record {
                fresh.push((sc.name.clone(), got));
                continue;
            }
            let title = format!("{fname} / {}", sc.name);
            let Some(want) = recorded_map.get(sc.name.as_str()) else {
                failures.push(format!("{title}: not recorded; run scripts/record-docker"));
                continue;
            };
            let d = differences(sc, want, &got);
            match (&sc.known, d.is_empty()) {
                (None, true) => {}
                (None, false) => {
                    failures.push(format!("{title}: differs from Docker\n{}", d.join("\n")))
                }
                (Some(reason), true) => failures.push(format!(
                    "{title}: marked `known: {reason}` but now matches Docker: remove the mark"
                )),
                (Some(reason), false) => {
                    if std::env::var_os("DIFF_VERBOSE").is_some() {
                        eprintln!("{title}: known difference ({reason})\n{}", d.join("\n"));
                    }
                    known.push((title, reason.clone(), first_line(&d)));
                }
            }
        }
        if ran_any {
            engine.sh(RESET, work.path());
        }
        if record {
            std::fs::write(&fixture_path, scenario::write_fixture(&fresh)).unwrap();
        }
    }

    let secs = started.elapsed().as_secs_f64();
    if record {
        eprintln!("recorded {total} scenarios in {secs:.1} s");
        return;
    }
    if !known.is_empty() {
        eprintln!(
            "\nknown differences ({} of {total} scenarios):",
            known.len()
        );
        eprintln!("| scenario | reason | first difference |\n|---|---|---|");
        for (t, r, f) in &known {
            eprintln!("| {t} | {r} | {} |", f.replace('|', "\\|"));
        }
    }
    eprintln!(
        "\n{total} scenarios in {secs:.1} s; {} known differences",
        known.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} scenarios fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The normalisation and the comparisons themselves (no root needed).
mod checks {
    use super::normalize::{self, Paths};
    use super::scenario;
    use serde_json::json;

    fn paths() -> Paths {
        Paths(vec![("/var/tmp/x/s1".into(), "$TMP".into())])
    }

    #[test]
    fn text_normalisation_hides_what_differs_by_nature() {
        let raw = "c0ffee123456  bb  \"sleep 100\"  2 seconds ago  Up Less than a second  web\n\
                   sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1.98MB \
                   2026-12-03T20:11:19.511089468Z 172.17.0.2 10.199.1.1 127.0.0.1 02:42:ac:11:00:02\n\
                   docker: Error /var/tmp/x/s1/f\nbrave_turing\n/happy_hopper\nx  y  eager_curie\n";
        assert_eq!(
            normalize::text(raw, &paths()),
            "<short-id>  bb  \"sleep 100\"  <ago>  Up <duration>  web\n\
             sha256:<digest> <size> <time> <ip> 10.199.1.1 127.0.0.1 <mac>\n\
             ENGINE: Error $TMP/f\n<random-name>\n/<random-name>\nx  y  <random-name>"
        );
    }

    #[test]
    fn json_documents_compare_key_by_key() {
        let p = paths();
        let want = normalize::json(
            &json!({"Name": "/a", "State": {"Pid": 10}, "Ports": {}}),
            &p,
        );
        let got = normalize::json(
            &json!({"Name": "a", "State": {"Pid": 20}, "Ports": null, "X": 1}),
            &p,
        );
        assert_eq!(
            normalize::json_diff(&want, &got),
            vec![
                ".Name: Docker \"/a\" vs berth \"a\"",
                ".Ports: object in Docker's, null in berth's ({} vs null)",
                ".X: not in Docker's (berth: 1)",
            ]
        );
    }

    #[test]
    fn fixtures_round_trip() {
        let fx = vec![(
            "s".to_string(),
            vec![scenario::Answer {
                line: "run --rm bb echo".into(),
                exit: 3,
                stdout: "\nsecond line\n\nfourth".into(),
                stderr: String::new(),
            }],
        )];
        assert_eq!(scenario::parse_fixture(&scenario::write_fixture(&fx)), fx);
    }

    #[test]
    fn scenarios_parse() {
        let sc = scenario::parse_scenarios(
            "t.txt",
            "# c\n== a\nknown: why\nsetup: create --name x bb\n$ start -a x\n$! rm y\ncleanup: rm -f x\n",
        );
        assert_eq!(sc.len(), 1);
        assert_eq!(sc[0].known.as_deref(), Some("why"));
        assert_eq!(sc[0].checks().count(), 2);
        assert_eq!(sc[0].cleanup, vec!["rm -f x"]);
    }
}
