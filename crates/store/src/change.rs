//! `--change` instructions of `import` (a subset of Dockerfile syntax):
//! CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME.
use crate::StoreError;

/// One parsed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `CMD ["a","b"]` or `CMD a b` (shell form → `/bin/sh -c`).
    Cmd(Vec<String>),
    /// `ENTRYPOINT`.
    Entrypoint(Vec<String>),
    /// `ENV k=v [k2=v2]` or `ENV k v`.
    Env(Vec<(String, String)>),
    /// `WORKDIR /path`.
    Workdir(String),
    /// `USER name[:group]`.
    User(String),
    /// `EXPOSE 80[/tcp] ...`.
    Expose(Vec<String>),
    /// `LABEL k=v ...`.
    Label(Vec<(String, String)>),
    /// `STOPSIGNAL SIGTERM`.
    StopSignal(String),
    /// `VOLUME /data ...` or `VOLUME ["/data"]`.
    Volume(Vec<String>),
    /// `HEALTHCHECK [--interval= --timeout= --start-period= --start-interval=
    /// --retries=] CMD ...` or `HEALTHCHECK NONE`, as Docker's
    /// `config.Healthcheck` JSON.
    Healthcheck(serde_json::Value),
}

fn bad(change: &str, reason: &str) -> StoreError {
    StoreError::Change {
        change: change.to_string(),
        reason: reason.to_string(),
    }
}

fn command(change: &str, rest: &str) -> Result<Vec<String>, StoreError> {
    if rest.starts_with('[') {
        serde_json::from_str::<Vec<String>>(rest)
            .map_err(|_| bad(change, "expected a JSON array of strings"))
    } else if rest.is_empty() {
        Err(bad(change, "missing command"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

/// Split `k=v k2="v 2"` respecting quotes.
fn pairs(change: &str, rest: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in rest.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (None, '"') | (None, '\'') => {
                quote = Some(ch);
                cur.push(ch);
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| bad(change, "expected key=value"))?;
        if k.is_empty() {
            return Err(bad(change, "empty key"));
        }
        out.push((unquote(k), unquote(v)));
    }
    Ok(out)
}

/// `HEALTHCHECK` options and command, as Docker's `config.Healthcheck`.
fn healthcheck(change: &str, rest: &str) -> Result<serde_json::Value, StoreError> {
    let mut rest = rest.trim_start();
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(serde_json::json!({"Test": ["NONE"]}));
    }
    let mut hc = serde_json::json!({});
    while let Some(opt) = rest.strip_prefix("--") {
        let (word, after) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| bad(change, "expected --option=value"))?;
        let key = match k {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            _ => return Err(bad(change, "unknown HEALTHCHECK option")),
        };
        hc[key] = if key == "Retries" {
            serde_json::json!(v
                .parse::<u32>()
                .map_err(|_| bad(change, "--retries needs a number"))?)
        } else {
            serde_json::json!(model::duration::parse(v).map_err(|e| bad(change, &e))?)
        };
        rest = after.trim_start();
    }
    let (word, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("CMD") {
        return Err(bad(
            change,
            "expected HEALTHCHECK [OPTIONS] CMD command, or NONE",
        ));
    }
    let cmd = cmd.trim();
    let test: Vec<String> = if cmd.starts_with('[') {
        let mut v = vec!["CMD".to_string()];
        v.extend(
            serde_json::from_str::<Vec<String>>(cmd)
                .map_err(|_| bad(change, "expected a JSON array of strings"))?,
        );
        v
    } else if cmd.is_empty() {
        return Err(bad(change, "missing command"));
    } else {
        vec!["CMD-SHELL".into(), cmd.to_string()]
    };
    hc["Test"] = serde_json::json!(test);
    Ok(hc)
}

/// Parse one `--change` value.
pub fn parse_change(change: &str) -> Result<Change, StoreError> {
    let trimmed = change.trim();
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((trimmed, ""));
    let rest = rest.trim();
    Ok(match word.to_ascii_uppercase().as_str() {
        "CMD" => Change::Cmd(command(change, rest)?),
        "ENTRYPOINT" => Change::Entrypoint(command(change, rest)?),
        "ENV" => {
            if !rest.contains('=') {
                let (k, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad(change, "expected ENV key=value"))?;
                Change::Env(vec![(k.to_string(), v.trim().to_string())])
            } else {
                Change::Env(pairs(change, rest)?)
            }
        }
        "WORKDIR" if rest.starts_with('/') => Change::Workdir(rest.to_string()),
        "WORKDIR" => return Err(bad(change, "WORKDIR needs an absolute path")),
        "USER" if !rest.is_empty() => Change::User(rest.to_string()),
        "EXPOSE" if !rest.is_empty() => {
            let ports: Vec<String> = rest
                .split_whitespace()
                .map(|p| {
                    if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    }
                })
                .collect();
            for p in &ports {
                let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if n.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(bad(change, "expected EXPOSE port[/tcp|udp|sctp]"));
                }
            }
            Change::Expose(ports)
        }
        "LABEL" => Change::Label(pairs(change, rest)?),
        "STOPSIGNAL" if !rest.is_empty() => Change::StopSignal(rest.to_string()),
        "VOLUME" if !rest.is_empty() => {
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest)
                    .map_err(|_| bad(change, "expected VOLUME [\"/path\", ...]"))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            if paths.is_empty() || paths.iter().any(|p| !p.starts_with('/')) {
                return Err(bad(change, "VOLUME needs absolute paths"));
            }
            Change::Volume(paths)
        }
        "HEALTHCHECK" => Change::Healthcheck(healthcheck(change, rest)?),
        _ => {
            return Err(bad(
                change,
                "supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME, HEALTHCHECK",
            ))
        }
    })
}

/// Apply changes to an image config's `config` object.
pub(crate) fn apply(config: &mut serde_json::Value, changes: &[Change]) {
    use serde_json::json;
    if !config.is_object() {
        *config = json!({});
    }
    for c in changes {
        match c {
            Change::Cmd(v) => config["Cmd"] = json!(v),
            Change::Entrypoint(v) => config["Entrypoint"] = json!(v),
            Change::Env(kv) => {
                let mut env: Vec<String> = config["Env"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in kv {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                config["Env"] = json!(env);
            }
            Change::Workdir(w) => config["WorkingDir"] = json!(w),
            Change::User(u) => config["User"] = json!(u),
            Change::Expose(ports) => {
                for p in ports {
                    config["ExposedPorts"][p] = json!({});
                }
            }
            Change::Label(kv) => {
                for (k, v) in kv {
                    config["Labels"][k] = json!(v);
                }
            }
            Change::StopSignal(s) => config["StopSignal"] = json!(s),
            Change::Volume(paths) => {
                for p in paths {
                    config["Volumes"][p] = json!({});
                }
            }
            Change::Healthcheck(h) => config["Healthcheck"] = h.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            parse_change(r#"CMD ["sh", "-c", "x"]"#).unwrap(),
            Change::Cmd(vec!["sh".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            parse_change("cmd echo hi").unwrap(),
            Change::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            parse_change(r#"ENV A=1 B="two words""#).unwrap(),
            Change::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into())
            ])
        );
        assert_eq!(
            parse_change("ENV A hello world").unwrap(),
            Change::Env(vec![("A".into(), "hello world".into())])
        );
        assert_eq!(
            parse_change("EXPOSE 80 53/udp").unwrap(),
            Change::Expose(vec!["80/tcp".into(), "53/udp".into()])
        );
        assert!(parse_change("EXPOSE http").is_err());
        assert_eq!(
            parse_change("VOLUME /a /b").unwrap(),
            Change::Volume(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            parse_change("VOLUME [\"/data\"]").unwrap(),
            Change::Volume(vec!["/data".into()])
        );
        assert!(parse_change("VOLUME data").is_err());
        assert!(parse_change("WORKDIR relative").is_err());
        assert!(parse_change("RUN rm -rf /").is_err());
        assert_eq!(
            parse_change("HEALTHCHECK --interval=5s --retries=2 CMD test -f /ok").unwrap(),
            Change::Healthcheck(serde_json::json!({
                "Test": ["CMD-SHELL", "test -f /ok"],
                "Interval": 5_000_000_000i64,
                "Retries": 2
            }))
        );
        assert_eq!(
            parse_change(r#"HEALTHCHECK CMD ["true"]"#).unwrap(),
            Change::Healthcheck(serde_json::json!({"Test": ["CMD", "true"]}))
        );
        assert!(parse_change("HEALTHCHECK --bogus=1 CMD true").is_err());
        assert!(parse_change("HEALTHCHECK true").is_err());
        assert!(parse_change(r#"CMD ["unterminated"#).is_err());
    }

    #[test]
    fn applies_to_config() {
        let mut c = serde_json::json!({"Env": ["A=0"]});
        apply(
            &mut c,
            &[
                parse_change("ENV A=1").unwrap(),
                parse_change("LABEL x=y").unwrap(),
            ],
        );
        assert_eq!(c["Env"], serde_json::json!(["A=1"]));
        assert_eq!(c["Labels"]["x"], "y");
    }
}
