//! What differs between two runs of the same scenario by nature — ids,
//! digests, times, ages, sizes, engine-assigned addresses, paths of the
//! engine's state, the engine's name — replaced by placeholders, the same
//! way for Docker's answers and berth's; and the comparisons: text line by
//! line, JSON documents key by key.

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

/// Paths replaced before anything else: (path, placeholder), longest first.
pub struct Paths(pub Vec<(String, String)>);

struct Rules(Vec<(Regex, &'static str)>);

fn rules() -> &'static Rules {
    static R: OnceLock<Rules> = OnceLock::new();
    R.get_or_init(|| {
        let r = |re: &str, to: &'static str| (Regex::new(re).unwrap(), to);
        Rules(vec![
            r(r"sha256:[0-9a-f]{64}", "sha256:<digest>"),
            r(r"\b[0-9a-f]{64}\b", "<id>"),
            r(r"\b[0-9a-f]{12}\b", "<short-id>"),
            r(
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "<time>",
            ),
            r(
                r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?( [+-]\d{4}( [A-Z]+)?)?",
                "<time>",
            ),
            r(
                r"(Less than a second|About a minute|About an hour|an? (second|minute|hour|day|week|month|year)|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?)) ago",
                "<ago>",
            ),
            r(
                r"Up (Less than a second|About a minute|About an hour|\d+ (seconds?|minutes?|hours?|days?|weeks?|months?|years?))",
                "Up <duration>",
            ),
            r(
                r"\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB|KiB|MiB|GiB)\b",
                "<size>",
            ),
            // Addresses the engine picks; 10.199.0.0/16 is for the scenarios'
            // own subnets and addresses, compared as they are.
            r(r"\b(([0-9a-f]{2}:){5}[0-9a-f]{2})\b", "<mac>"),
            r(r"\b(?:(?:127|0)\.\d+\.\d+\.\d+|10\.199\.\d+\.\d+)\b", "$0"),
            r(r"\b(\d{1,3}\.){3}\d{1,3}\b", "<ip>"),
            // How an error line starts is the engine's (docker: `Error:`,
            // `Error response from daemon:`; berth has no daemon: `berth:`).
            r(
                r"(?m)^(docker: )?(Error response from daemon|Error): ",
                "berth: ",
            ),
            r(r"\b(docker|berth|Docker|Berth)\b", "ENGINE"),
            // Generated container names (adjective_surname): a whole line
            // (`--format '{{.Names}}'`, a `Name` value) or ps's last column.
            r(r"(?m)(^/?|  )[a-z]+_[a-z]+$", "$1<random-name>"),
        ])
    })
}

/// Normalise one text (stdout or stderr).
pub fn text(s: &str, paths: &Paths) -> String {
    let mut s = s.to_string();
    for (p, to) in &paths.0 {
        if !p.is_empty() {
            s = s.replace(p.as_str(), to);
        }
    }
    for (re, to) in &rules().0 {
        if *to == "$0" {
            // Kept as they are: protect them from the next rule.
            s = re
                .replace_all(&s, |c: &regex::Captures| c[0].replace('.', "\u{1}"))
                .into_owned();
        } else {
            s = re.replace_all(&s, *to).into_owned();
        }
    }
    let s = s.replace('\u{1}', ".");
    // Table columns are as wide as their widest cell: placeholders change
    // widths, so runs of spaces compare as one gap.
    let gaps = {
        static G: OnceLock<Regex> = OnceLock::new();
        G.get_or_init(|| Regex::new(r" {2,}").unwrap())
    };
    let lines: Vec<String> = s
        .lines()
        // The docker CLI's own race when a container fails to start.
        .filter(|l| !l.ends_with("msg=\"error waiting for container: context canceled\""))
        .map(|l| gaps.replace_all(l.trim_end(), "  ").into_owned())
        .collect();
    lines.join("\n").trim_end_matches('\n').to_string()
}

/// Keys whose values are the engine's own business (process ids, sizes on
/// disk, storage driver internals): only their JSON type is compared.
const OPAQUE: &[&str] = &[
    "Pid",
    "Size",
    "VirtualSize",
    "SizeRw",
    "SizeRootFs",
    "GraphDriver",
    "RootFS",
    "Driver",
    "SandboxKey",
    "HostnamePath",
    "HostsPath",
    "ResolvConfPath",
    "LogPath",
    "DockerVersion",
    "Container",
    "ContainerConfig",
    "Metadata",
];

/// Normalise a JSON document: strings as text, opaque keys to their type.
pub fn json(v: &Value, paths: &Paths) -> Value {
    match v {
        Value::String(s) => Value::String(text(s, paths)),
        Value::Array(a) => Value::Array(a.iter().map(|x| json(x, paths)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = if OPAQUE.contains(&k.as_str()) {
                        opaque(x)
                    } else {
                        json(x, paths)
                    };
                    // Keys are ids too (Networks of a container, Containers of a network).
                    (text(k, paths), x)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn opaque(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Bool(_) => Value::String("<bool>".into()),
        Value::Number(_) => Value::String("<number>".into()),
        Value::String(_) => Value::String("<string>".into()),
        Value::Array(_) => Value::String("<array>".into()),
        Value::Object(_) => Value::String("<object>".into()),
    }
}

/// Key-by-key differences between two normalised documents, one line each.
pub fn json_diff(want: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", want, got, &mut out);
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

fn walk(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => walk(&p, wv, gv, out),
                    None => out.push(format!("{p}: missing (Docker: {})", short(wv))),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!(
                        "{path}.{k}: not in Docker's (berth: {})",
                        short(gv)
                    ));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            for (i, wv) in w.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match g.get(i) {
                    Some(gv) => walk(&p, wv, gv, out),
                    None => out.push(format!("{p}: missing (Docker: {})", short(wv))),
                }
            }
            for (i, gv) in g.iter().enumerate().skip(w.len()) {
                out.push(format!(
                    "{path}[{i}]: not in Docker's (berth: {})",
                    short(gv)
                ));
            }
        }
        _ if kind(want) != kind(got) => out.push(format!(
            "{path}: {} in Docker's, {} in berth's ({} vs {})",
            kind(want),
            kind(got),
            short(want),
            short(got)
        )),
        _ if want != got => out.push(format!(
            "{path}: Docker {} vs berth {}",
            short(want),
            short(got)
        )),
        _ => {}
    }
}

/// A line diff (`-` Docker's, `+` berth's), common lines as context.
pub fn text_diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // Longest common subsequence: outputs are small.
    let mut l = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("        {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || l[i][j + 1] >= l[i + 1][j]) {
            out.push_str(&format!("      + {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("      - {}\n", a[i]));
            i += 1;
        }
    }
    out
}
