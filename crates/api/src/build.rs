//! `POST /build`: the classic builder's protocol (the one docker CLIs
//! speak when `/_ping` says `Builder-Version: 1`, or with
//! `DOCKER_BUILDKIT=0`). The body is the context as a tar (plain, gzip or
//! zstd); the answer is JSON lines: `{"stream":"Step 1/3 : FROM …"}`,
//! the RUN output, `{"aux":{"ID":…}}`, `Successfully built`/`tagged`, or
//! an `errorDetail` with the failed step's exit code.
//!
//! The build forks (RUN steps are containers), so it runs in a `berth
//! __api-op build` process; its stdout carries the lines, which the
//! server relays. When the client goes, the server closes that pipe: the
//! builder sees it (its cancel check polls stdout), removes its RUN
//! container and ends; the context goes with the request's temp dir.
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use engine::build::BuildRequest;
use engine::{Engine, EngineError};
use serde_json::{json, Value};

use crate::distribution::{credential_of, header_json, Params};
use crate::progress::{error_line, go_json, Lines};
use crate::{ApiError, AppState};

/// The context tar is written here, the context extracted beside it.
const CONTEXT_TAR: &str = "context.tar";

/// Why a BuildKit client is turned away.
const NO_BUILDKIT: &str = "berth serves the classic builder only: BuildKit sessions (version=2) are not served yet; build with DOCKER_BUILDKIT=0";

/// `POST /session` (a BuildKit client's first call): no sessions here.
/// (docker CLI 20.10 with `DOCKER_BUILDKIT=1` shows only the status:
/// `failed to dial gRPC: unable to upgrade to h2c, received 400`.)
pub(crate) async fn session() -> ApiError {
    ApiError::bad_request(NO_BUILDKIT)
}

/// `POST /build`.
pub(crate) async fn build(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Params::parse(q);
    let checked = if p.get("version") == Some("2") {
        Err(ApiError::bad_request(NO_BUILDKIT))
    } else if let Some(remote) = p.get("remote") {
        Err(ApiError::bad_request(format!(
            "remote build contexts ({remote}) are not served: send the context as the request body"
        )))
    } else {
        build_args(&p)
    };
    let args = match checked {
        Ok(a) => a,
        Err(e) => {
            crate::body::discard(body).await;
            return Err(e);
        }
    };
    let auths = registry_config(&headers);
    let reader = crate::body::reader(body);
    let paths = st.paths.clone();
    st.lines("application/json", move |e, lines| {
        let tmp = match e.tmp_dir("api-build") {
            Ok(t) => t,
            Err(err) => return lines.fail(err.into()),
        };
        if let Err(err) = save_context(reader, &tmp.path().join(CONTEXT_TAR)) {
            return lines.fail(err);
        }
        let docker_config = tmp.path().join("docker-config");
        if let Err(err) = write_auths(&docker_config, &auths) {
            return lines.fail(err);
        }
        let mut args = args;
        args["work"] = json!(tmp.path());
        relay(&paths, &args, &docker_config, lines);
        drop(tmp);
    })
    .await
}

/// The query as the op's arguments.
fn build_args(p: &Params) -> Result<Value, ApiError> {
    let json_map = |key: &str| -> Result<BTreeMap<String, String>, ApiError> {
        let Some(raw) = p.get(key) else {
            return Ok(BTreeMap::new());
        };
        let v: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}")))?;
        // A null value takes the variable from the client's environment,
        // which the client has already done.
        Ok(v.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
    };
    let cache_from: Vec<String> = match p.get("cachefrom") {
        Some(raw) => serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
        None => Vec::new(),
    };
    let tags: Vec<String> = p.all("t").into_iter().filter(|t| !t.is_empty()).collect();
    for t in &tags {
        // dockerd's 500, before the context is read.
        t.parse::<model::Reference>()
            .map_err(|e| ApiError::internal(crate::distribution::reference_error(&e)))?;
    }
    Ok(json!({
        "tags": tags,
        "extrahosts": p.get("extrahosts"),
        "dockerfile": p.get("dockerfile"),
        "buildargs": json_map("buildargs")?,
        "labels": json_map("labels")?,
        "target": p.get("target"),
        "nocache": p.flag("nocache"),
        "pull": p.flag("pull"),
        "quiet": p.flag("q"),
        "network": p.get("networkmode").filter(|n| *n != "default"),
        "platform": p.get("platform"),
        "cachefrom": cache_from,
    }))
}

/// `X-Registry-Config`: registry → AuthConfig, for the FROM pulls.
fn registry_config(headers: &HeaderMap) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = header_json(headers, "X-Registry-Config") {
        for (host, doc) in m {
            if let Some(c) = credential_of(&doc) {
                out.insert(host, (c.username, c.password));
            }
        }
    }
    out
}

/// The credentials as a docker config dir (the builder reads
/// `DOCKER_CONFIG` after berth's own logins).
fn write_auths(
    dir: &std::path::Path,
    auths: &BTreeMap<String, (String, String)>,
) -> Result<(), ApiError> {
    use base64::Engine as _;
    let io =
        |e: std::io::Error| ApiError::internal(format!("writing the build's credentials: {e}"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let entries: serde_json::Map<String, Value> = auths
        .iter()
        .map(|(h, (u, p))| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            (h.clone(), json!({ "auth": auth }))
        })
        .collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join("config.json"))
        .map_err(io)?;
    f.write_all(json!({ "auths": entries }).to_string().as_bytes())
        .map_err(io)
}

/// The request body into `path`.
fn save_context(mut reader: impl Read, path: &std::path::Path) -> Result<(), ApiError> {
    let mut f = std::fs::File::create(path)
        .map_err(|e| ApiError::internal(format!("saving the build context: {e}")))?;
    std::io::copy(&mut reader, &mut f)
        .map_err(|e| ApiError::bad_request(format!("reading the build context: {e}")))?;
    Ok(())
}

/// Run `berth __api-op build`, its lines to the client; the op's last
/// line is its result. The client gone: close the op's stdout, which
/// cancels the build; wait for it to clean up.
fn relay(paths: &engine::Paths, args: &Value, docker_config: &std::path::Path, lines: &Lines) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return lines.fail(ApiError::internal(format!("finding berth's binary: {e}"))),
    };
    let spawned = Command::new(exe)
        .arg("--root")
        .arg(&paths.root)
        .arg("--runroot")
        .arg(&paths.runroot)
        .arg("--config")
        .arg(&paths.config)
        .args(["__api-op", "build"])
        .env("DOCKER_CONFIG", docker_config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return lines.fail(ApiError::internal(format!(
                "starting berth __api-op build: {e}"
            )))
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(args.to_string().as_bytes());
    }
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return lines.fail(ApiError::internal("berth __api-op build has no stdout"));
    };
    let mut result: Option<Value> = None;
    let mut gone = false;
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        // Wait for output, checking for the client's departure meanwhile.
        if reader.buffer().is_empty() {
            let mut fds = [nix::poll::PollFd::new(
                reader.get_ref().as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {
                    if lines.closed() {
                        gone = true;
                        break;
                    }
                    continue;
                }
                _ => {}
            }
        }
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let doc: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
        if doc.get("ok").is_some() || doc["status"].is_u64() {
            result = Some(doc);
            continue;
        }
        if !lines.bytes(line.clone()) {
            gone = true;
            break;
        }
    }
    // Closing the pipe is the builder's signal to stop.
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(if gone { 30 } else { 5 });
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    if gone {
        return;
    }
    match result {
        Some(doc) if doc["status"].is_u64() => {
            let status = StatusCode::from_u16(doc["status"].as_u64().unwrap_or(500) as u16)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            lines.fail(ApiError::new(
                status,
                doc["message"].as_str().unwrap_or_default(),
            ));
        }
        Some(_) => {}
        None => lines.fail(ApiError::internal(
            "berth __api-op build ended without an answer",
        )),
    }
}

/// The builder's side (in `berth __api-op build`): build, writing the
/// classic builder's JSON lines on stdout.
pub(crate) fn op(engine: &Engine, args: &Value) -> Result<Value, ApiError> {
    let work = std::path::PathBuf::from(args["work"].as_str().unwrap_or_default());
    let context = work.join("context");
    std::fs::create_dir_all(&context)
        .map_err(|e| ApiError::internal(format!("creating the build context: {e}")))?;
    let tar = std::fs::read(work.join(CONTEXT_TAR))
        .map_err(|e| ApiError::internal(format!("reading the build context: {e}")))?;
    engine::build::context_from_stdin(&tar, &context)?;
    drop(tar);
    let req = request(args, &context)?;
    let total = engine.build_step_count(&req)?;
    if args["extrahosts"].is_string() {
        emit(
            &json!({"stream": "[Warning] berth's builder does not add extra hosts (--add-host) to RUN steps\n"}),
        );
    }
    let quiet = args["quiet"].as_bool().unwrap_or(false);
    let mut out = Classic {
        total,
        quiet,
        pending: Vec::new(),
        started: false,
        stages: BTreeMap::new(),
        containers: BTreeMap::new(),
        last_aux: None,
    };
    let built = engine.build(&req, &mut out);
    out.finish();
    match built {
        Ok(id) => {
            if quiet {
                emit(&json!({"stream": format!("{id}\n")}));
                return Ok(Value::Null);
            }
            // The target stage's `aux` came after its last step.
            if out.last_aux.as_deref() != Some(id.to_string().as_str()) {
                emit(&json!({"aux": {"ID": id.to_string()}}));
            }
            let hex = id.to_string();
            let short = hex.trim_start_matches("sha256:").get(..12).unwrap_or("");
            emit(&json!({"stream": format!("Successfully built {short}\n")}));
            for t in &req.tags {
                emit(&json!({"stream": format!("Successfully tagged {}\n", t.familiar())}));
            }
            Ok(Value::Null)
        }
        Err(e) if out.started => {
            emit(&failure_line(&e));
            Ok(Value::Null)
        }
        Err(e) => Err(e.into()),
    }
}

/// A failed build as dockerd's last line: a failed RUN with its exit code.
fn failure_line(e: &EngineError) -> Value {
    match e {
        EngineError::BuildStep { command, code, .. } => error_line(
            &format!("The command '{command}' returned a non-zero code: {code}"),
            Some(i64::from(*code)),
        ),
        e => error_line(&e.to_string(), None),
    }
}

/// The build request of the op's arguments.
fn request(args: &Value, context: &std::path::Path) -> Result<BuildRequest, ApiError> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut tags = Vec::new();
    for t in strings(&args["tags"]) {
        tags.push(
            t.parse::<model::Reference>()
                .map_err(|e| ApiError::internal(crate::distribution::reference_error(&e)))?,
        );
    }
    let dockerfile = match args["dockerfile"].as_str() {
        Some(d) => Some(dockerfile_in(context, d)?),
        None => None,
    };
    let platform = match args["platform"].as_str() {
        Some(p) => Some(engine::build::parse_platform(p)?),
        None => None,
    };
    Ok(BuildRequest {
        context: context.to_path_buf(),
        dockerfile,
        tags,
        build_args: map(&args["buildargs"]),
        target: args["target"].as_str().map(str::to_string),
        no_cache: args["nocache"].as_bool().unwrap_or(false),
        labels: map(&args["labels"]),
        network: args["network"].as_str().map(str::to_string),
        pull: args["pull"].as_bool().unwrap_or(false),
        cache_from_images: strings(&args["cachefrom"]),
        platform,
        cancel: engine::build::cancel::Cancel(Some(std::sync::Arc::new(client_gone))),
        step_images: true,
        ..Default::default()
    })
}

/// The `dockerfile` parameter: a path in the context (dockerd's message
/// when it is not there; never a path outside).
fn dockerfile_in(context: &std::path::Path, name: &str) -> Result<std::path::PathBuf, ApiError> {
    let missing = || ApiError::internal(format!("Cannot locate specified Dockerfile: {name}"));
    let root = context.canonicalize().map_err(|_| missing())?;
    let path = root
        .join(name.trim_start_matches('/'))
        .canonicalize()
        .map_err(|_| missing())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(missing());
    }
    Ok(path)
}

/// Has the server closed our stdout (its client went away)?
fn client_gone() -> bool {
    let out = std::io::stdout();
    let mut fds = [nix::poll::PollFd::new(
        out.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    match nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds[0].revents().is_some_and(|r| {
            r.intersects(nix::poll::PollFlags::POLLERR | nix::poll::PollFlags::POLLHUP)
        }),
        _ => false,
    }
}

/// One line on stdout, now.
fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", go_json(v));
    let _ = out.flush();
}

/// The engine's progress (BuildKit's plain lines: `#N [stage i/n] TEXT`,
/// `#N 0.123 output`, `#N CACHED`, `#N DONE 0.1s`, and with
/// `step_images` `#N container ID` and `#N image ID`) as the classic
/// builder's stream: `Step N/TOTAL : TEXT`, ` ---> Running in …`, the
/// output, `Removing intermediate container …`, ` ---> Using cache`,
/// ` ---> <image>`, and each stage's image as an `aux` after its last
/// step (recorded from dockerd 20.10:
/// `api_fixtures/dockerd-20.10-cp-stats-build.txt`).
struct Classic {
    total: usize,
    quiet: bool,
    pending: Vec<u8>,
    /// Anything sent (a failure is then a line, not a status).
    started: bool,
    /// Each step's place in its stage (`i`, `n` of `[stage i/n]`).
    stages: BTreeMap<String, (usize, usize)>,
    /// The RUN container of a step under way (12 digits).
    containers: BTreeMap<String, String>,
    /// The last stage image sent as an `aux`.
    last_aux: Option<String>,
}

impl Classic {
    fn line(&mut self, l: &str) {
        // The classic builder has no Dockerfile lints (they come before
        // the first step).
        if !self.started && l.starts_with("WARN: ") {
            return;
        }
        if let Some((num, event, id)) = step_event(l) {
            self.started = true;
            if !self.quiet {
                self.event(num, event, id);
            }
            return;
        }
        let Some(text) = translate(l, self.total) else {
            return;
        };
        self.started = true;
        if let Some(place) = step_place(l) {
            self.stages.insert(place.0, (place.1, place.2));
        }
        if self.quiet {
            return;
        }
        match text.strip_suffix("\n\n") {
            // A step header and its newline come as two lines, as dockerd
            // writes them.
            Some(head) if text.starts_with("Step ") => {
                emit(&json!({ "stream": head }));
                emit(&json!({ "stream": "\n" }));
            }
            _ => emit(&json!({ "stream": text })),
        }
    }

    /// `#N container ID` / `#N image ID`.
    fn event(&mut self, num: &str, event: &str, id: &str) {
        let short = |id: &str| -> String {
            id.trim_start_matches("sha256:")
                .get(..12)
                .unwrap_or_default()
                .to_string()
        };
        if event == "container" {
            let c = short(id);
            emit(&json!({ "stream": format!(" ---> Running in {c}\n") }));
            self.containers.insert(num.to_string(), c);
            return;
        }
        if let Some(c) = self.containers.remove(num) {
            emit(&json!({ "stream": format!("Removing intermediate container {c}\n") }));
        }
        emit(&json!({ "stream": format!(" ---> {}\n", short(id)) }));
        // The stage's last step: its image.
        if !id.is_empty() && self.stages.get(num).is_some_and(|(i, n)| i == n) {
            emit(&json!({ "aux": { "ID": id } }));
            self.last_aux = Some(id.to_string());
        }
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let rest = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            self.line(&rest);
        }
    }
}

/// `#N container ID` or `#N image ID` (ID empty for no image): the step,
/// the event, the id.
fn step_event(l: &str) -> Option<(&str, &str, &str)> {
    let (num, rest) = l.strip_prefix('#')?.split_once(' ')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (event, id) = rest.split_once(' ').unwrap_or((rest, ""));
    let hex = id.trim_start_matches("sha256:");
    let is_id = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    match event {
        "container" if is_id => Some((num, event, id)),
        "image" if is_id || id.is_empty() => Some((num, event, id)),
        _ => None,
    }
}

/// A step header's number and place in its stage: `#3 [base 2/4] …` →
/// ("3", 2, 4).
fn step_place(l: &str) -> Option<(String, usize, usize)> {
    let (num, rest) = l.strip_prefix('#')?.split_once(' ')?;
    let inside = rest.strip_prefix('[')?.split_once("] ")?.0;
    let (i, n) = inside.rsplit(' ').next()?.split_once('/')?;
    Some((num.to_string(), i.parse().ok()?, n.parse().ok()?))
}

impl Write for Classic {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(data);
        while let Some(n) = self.pending.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = self.pending.drain(..=n).collect();
            let l = String::from_utf8_lossy(&l[..l.len() - 1]).into_owned();
            self.line(&l);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One engine line as the classic stream's text; none for what the
/// classic builder does not say.
fn translate(l: &str, total: usize) -> Option<String> {
    let Some((num, rest)) = l
        .strip_prefix('#')
        .and_then(|r| r.split_once(' '))
        .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Some(format!("{l}\n"));
    };
    if let Some(head) = rest.strip_prefix('[') {
        if let Some((inside, text)) = head.split_once("] ") {
            if inside.rsplit(' ').next().is_some_and(|p| p.contains('/')) {
                return Some(format!("Step {num}/{total} : {text}\n\n"));
            }
            return Some(format!(" ---> {inside}: {text}\n"));
        }
    }
    if rest == "CACHED" {
        return Some(" ---> Using cache\n".to_string());
    }
    if rest.starts_with("DONE ") {
        return None;
    }
    // RUN output: `#N <seconds> <text>`.
    match rest.split_once(' ') {
        Some((secs, text)) if secs.parse::<f64>().is_ok() => Some(format!("{text}\n")),
        None if rest.parse::<f64>().is_ok() => Some("\n".to_string()),
        _ => Some(format!("{rest}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn engine_lines_become_classic_steps() {
        assert_eq!(
            translate("#3 [base 3/4] RUN echo hi > /x", 8).as_deref(),
            Some("Step 3/8 : RUN echo hi > /x\n\n")
        );
        assert_eq!(translate("#3 0.123 hi", 8).as_deref(), Some("hi\n"));
        assert_eq!(translate("#3 0.123 ", 8).as_deref(), Some("\n"));
        assert_eq!(
            translate("#3 CACHED", 8).as_deref(),
            Some(" ---> Using cache\n")
        );
        assert_eq!(translate("#3 DONE 0.1s", 8), None);
        let id = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            super::step_event(&format!("#3 image {id}")),
            Some(("3", "image", id.as_str()))
        );
        assert_eq!(super::step_event("#1 image "), Some(("1", "image", "")));
        assert_eq!(
            super::step_event(&format!("#4 container {}", "cd".repeat(32))).map(|e| e.1),
            Some("container")
        );
        // RUN output that looks alike has its time first.
        assert_eq!(super::step_event("#3 0.100 image x"), None);
        assert_eq!(super::step_event("#3 image not-an-id"), None);
        assert_eq!(
            super::step_place("#3 [base 2/4] RUN x"),
            Some(("3".to_string(), 2, 4))
        );
        assert_eq!(
            translate("WARN: something", 8).as_deref(),
            Some("WARN: something\n")
        );
    }
}
