//! The scenario files (`scenarios/*.txt`) and the recorded answers
//! (`fixtures/*.txt`): parsing and writing.
//!
//! A scenario file is a list of scenarios:
//!
//! ```text
//! # a comment
//! == run-echo
//! known: issue 17 defect 4: HOME missing from the environment
//! setup: run -d --name x bb sleep 100     engine command, output not compared
//! host: echo hi > $TMP/f                  host shell command, output not compared
//! $ run --rm bb echo hi                   engine command: exit code, stdout, whether stderr is empty
//! $! rm nosuchcontainer                   engine command: exit code, stdout, stderr
//! $out exec x cat /f                      exit code and stdout
//! $exit run --rm bb false                 exit code only
//! $json inspect x                         exit code and the JSON document, key by key
//! sh$ cat $TMP/f                          host shell command: as `$`
//! cleanup: rm -f x                        engine command run at the end, always
//! ```
//!
//! Engine commands are shell fragments run by `/bin/sh` after the word `E`,
//! a function calling the engine (`docker` or `berth`): pipes, redirections
//! and `$TMP` (the scenario's scratch directory, also the working directory;
//! build contexts are made there by `host:` lines) work in them.

use std::fmt::Write as _;

/// What of a command's answer is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// Exit code, stdout and stderr.
    All,
    /// Exit code, stdout and whether there is a message on stderr: most
    /// messages are berth's own words (the scenarios about error messages
    /// compare them with `All`).
    Shape,
    /// Exit code and stdout.
    Stdout,
    /// Exit code.
    Exit,
    /// Exit code and stdout as a JSON document, key by key.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// The line follows the word `E` (the engine).
    Engine,
    /// The line is a host shell command.
    Host,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub shell: Shell,
    /// `None`: run for its effect only.
    pub compare: Option<Compare>,
    pub line: String,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    pub known: Option<String>,
    pub steps: Vec<Step>,
    pub cleanup: Vec<String>,
}

impl Scenario {
    /// The compared steps, in order.
    pub fn checks(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.compare.is_some())
    }
}

pub fn parse_scenarios(file: &str, text: &str) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            assert!(
                !out.iter().any(|s| s.name == name.trim()),
                "{file}:{}: scenario {name:?} defined twice",
                n + 1
            );
            out.push(Scenario {
                name: name.trim().to_string(),
                known: None,
                steps: Vec::new(),
                cleanup: Vec::new(),
            });
            continue;
        }
        let sc = out
            .last_mut()
            .unwrap_or_else(|| panic!("{file}:{}: a line before the first `== name`", n + 1));
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim().to_string();
        let step = |shell, compare| Step {
            shell,
            compare,
            line: rest.clone(),
        };
        match head {
            "known:" => sc.known = Some(rest),
            "cleanup:" => sc.cleanup.push(rest),
            "setup:" => sc.steps.push(step(Shell::Engine, None)),
            "host:" => sc.steps.push(step(Shell::Host, None)),
            "$" => sc.steps.push(step(Shell::Engine, Some(Compare::Shape))),
            "$!" => sc.steps.push(step(Shell::Engine, Some(Compare::All))),
            "$out" => sc.steps.push(step(Shell::Engine, Some(Compare::Stdout))),
            "$exit" => sc.steps.push(step(Shell::Engine, Some(Compare::Exit))),
            "$json" => sc.steps.push(step(Shell::Engine, Some(Compare::Json))),
            "sh$" => sc.steps.push(step(Shell::Host, Some(Compare::Shape))),
            _ => panic!("{file}:{}: unknown line {line:?}", n + 1),
        }
    }
    for sc in &out {
        assert!(
            sc.checks().next().is_some(),
            "{file}: scenario {} compares nothing",
            sc.name
        );
    }
    out
}

/// One compared command's normalised answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub line: String,
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The recorded answers of one scenario file: per scenario, per compared step.
pub type Fixture = Vec<(String, Vec<Answer>)>;

fn push_block(out: &mut String, title: &str, text: &str) {
    let _ = writeln!(out, "{title}");
    if !text.is_empty() {
        for l in text.lines() {
            let _ = writeln!(out, "| {l}");
        }
    }
}

pub fn write_fixture(fx: &Fixture) -> String {
    let mut out = String::from(
        "# Recorded with Docker (scripts/record-docker); normalised. Do not edit by hand.\n",
    );
    for (name, answers) in fx {
        let _ = writeln!(out, "== {name}");
        for a in answers {
            let _ = writeln!(out, "-- {}", a.line);
            let _ = writeln!(out, "exit {}", a.exit);
            push_block(&mut out, "stdout", &a.stdout);
            push_block(&mut out, "stderr", &a.stderr);
        }
    }
    out
}

pub fn parse_fixture(text: &str) -> Fixture {
    let mut fx: Fixture = Vec::new();
    let mut target: Option<bool> = None; // Some(true): stdout, Some(false): stderr
    let mut started = false;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            fx.push((name.to_string(), Vec::new()));
        } else if let Some(cmd) = line.strip_prefix("-- ") {
            let answers = &mut fx.last_mut().expect("fixture: answer before scenario").1;
            answers.push(Answer {
                line: cmd.to_string(),
                exit: 0,
                stdout: String::new(),
                stderr: String::new(),
            });
            target = None;
        } else if let Some(code) = line.strip_prefix("exit ") {
            let a = last_answer(&mut fx);
            a.exit = code.parse().expect("fixture: exit code");
        } else if line == "stdout" {
            target = Some(true);
            started = false;
        } else if line == "stderr" {
            target = Some(false);
            started = false;
        } else if let Some(content) = line.strip_prefix("| ").or(line.strip_prefix('|')) {
            let to_stdout = target.expect("fixture: content outside stdout/stderr");
            let a = last_answer(&mut fx);
            let s = if to_stdout {
                &mut a.stdout
            } else {
                &mut a.stderr
            };
            if started {
                s.push('\n');
            }
            s.push_str(content);
            started = true;
        }
    }
    fx
}

fn last_answer(fx: &mut Fixture) -> &mut Answer {
    fx.last_mut()
        .and_then(|(_, a)| a.last_mut())
        .expect("fixture: line outside an answer")
}
