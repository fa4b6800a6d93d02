//! Exec instances: `POST /containers/{id}/exec`, `POST /exec/{id}/start`
//! (a hijacked raw stream: `hijack.rs`; or detached), `GET /exec/{id}/json`,
//! `POST /exec/{id}/resize`.
//!
//! As in dockerd, an exec instance lives in the server's memory. Its
//! process is started by a fresh single-threaded `berth __api-op exec`
//! (exec forks into the container's namespaces; the server's threads
//! never fork): the process gets that helper's stdin/stdout/stderr (the
//! pipes the server bridges to the client), or with `Tty` a pty from the
//! container's devpts that the helper copies to and from them. The helper
//! reports `pid N` and `exit N` on its fd 3.
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::attach::{client_frame, parse_detach_keys, DetachKeys, ResizeQuery};
use crate::version::ApiVersion;
use crate::{ApiError, AppState};

/// `POST /containers/{id}/exec` body (dockerd's ExecConfig).
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct ExecBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    /// Go reads members case-insensitively: docker-py sends `detachKeys`.
    #[serde(alias = "detachKeys")]
    detach_keys: String,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
    /// `[height, width]` of the client's terminal (API 1.42+).
    console_size: Option<[u16; 2]>,
}

/// One exec instance.
struct Instance {
    container: String,
    body: ExecBody,
    started: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
}

/// The server's exec instances, by id.
#[derive(Default)]
pub(crate) struct Execs {
    map: Mutex<HashMap<String, Instance>>,
}

impl Execs {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Instance) -> T) -> Result<T, ApiError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get_mut(id).map(f).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("No such exec instance: {id}"),
            )
        })
    }
}

/// `POST /containers/{id}/exec`: 201 `{"Id"}`.
pub(crate) async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ExecBody = crate::error::json_body(&body)?;
    if body.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if !body.detach_keys.is_empty() {
        parse_detach_keys(&body.detach_keys)?;
    }
    let container = st
        .engine(move |e| {
            let c = e.container(&id)?;
            let full = c.id().as_str().to_string();
            if c.state.status == engine::config::Status::Paused {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("Container {full} is paused, unpause the container before exec"),
                ));
            }
            if !c.is_running() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("Container {full} is not running"),
                ));
            }
            Ok(full)
        })
        .await?;
    let exec_id = model::ContainerId::random().as_str().to_string();
    st.execs
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            exec_id.clone(),
            Instance {
                container,
                body,
                started: false,
                running: false,
                exit_code: None,
                pid: 0,
            },
        );
    Ok((StatusCode::CREATED, Json(json!({ "Id": exec_id }))))
}

/// `POST /exec/{id}/start` body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct StartBody {
    detach: bool,
    tty: Option<bool>,
    console_size: Option<[u16; 2]>,
}

/// `POST /exec/{id}/start`.
pub(crate) async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    version: Option<axum::Extension<ApiVersion>>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let raw = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let start: StartBody = crate::error::json_body(&raw)?;
    let (container, body) = st.execs.with(&id, |i| {
        if i.started {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("Error: Exec command {id} is already running"),
            ));
        }
        i.started = true;
        i.running = true;
        Ok((i.container.clone(), i.body.clone()))
    })??;
    // The process gets a terminal as the exec was created; the stream is
    // framed as the start asks (dockerd: a tty exec started with
    // `"Tty": false`, as docker-py starts it, answers in frames).
    let tty = body.tty;
    let raw_stream = start.tty.unwrap_or(body.tty);
    let detach = start.detach;
    let stdin = body.attach_stdin && !detach;
    let args = json!({
        "id": container,
        "cmd": body.cmd,
        "env": body.env.clone().unwrap_or_default(),
        "user": (!body.user.is_empty()).then_some(&body.user),
        "workdir": (!body.working_dir.is_empty()).then_some(&body.working_dir),
        "tty": tty,
        "stdin": stdin,
        "console": start.console_size.or(body.console_size),
    });
    let mut child = match spawn_helper(&st, &args, detach, stdin) {
        Ok(c) => c,
        Err(e) => {
            let _ = st.execs.with(&id, |i| {
                i.running = false;
                i.exit_code = Some(126);
            });
            return Err(e);
        }
    };
    // Its reports: the pid at once (or why it could not start), the
    // exit code at the end.
    let mut reports = tokio::io::BufReader::new(child.reports);
    let mut line = String::new();
    let _ = reports.read_line(&mut line).await;
    if let Some(pid) = line.trim().strip_prefix("pid ") {
        let pid = pid.parse().unwrap_or(0);
        let _ = st.execs.with(&id, |i| i.pid = pid);
    } else {
        let _ = st.execs.with(&id, |i| {
            i.running = false;
            i.exit_code = Some(126);
        });
        let (status, message) = parse_error(&line);
        let _ = child.process.wait().await;
        if detach {
            return Err(ApiError::new(status, message));
        }
        // As dockerd: the stream is already promised; the error is its
        // only text, and the instance's exit code is 126.
        let text = client_frame(1, format!("{message}\r\n").as_bytes(), raw_stream);
        let hijacked = crate::hijack::hijack(&mut req, stream_type(raw_stream, version))?;
        let client = hijacked.client;
        tokio::spawn(async move {
            if let Some(mut client) = client.await {
                let _ = client.write_all(&text).await;
                let _ = client.shutdown().await;
            }
        });
        return Ok(hijacked.response);
    }
    let execs = st.execs.clone();
    let exec_id = id.clone();
    // Records the exit code once the helper reports it.
    let finished = async move {
        let mut line = String::new();
        let _ = reports.read_line(&mut line).await;
        let code = line
            .trim()
            .strip_prefix("exit ")
            .and_then(|c| c.parse().ok())
            .unwrap_or(126);
        let _ = child.process.wait().await;
        let _ = execs.with(&exec_id, |i| {
            i.running = false;
            i.exit_code = Some(code);
            i.pid = 0;
        });
    };
    if detach {
        tokio::spawn(finished);
        return Response::builder()
            .status(StatusCode::OK)
            .body(axum::body::Body::empty())
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    let keys = if body.detach_keys.is_empty() {
        vec![0x10, 0x11]
    } else {
        parse_detach_keys(&body.detach_keys)?
    };
    let streams = Pipes {
        stdin: child.stdin,
        stdout: child.stdout,
        stderr: child.stderr,
        want_stdout: body.attach_stdout,
        want_stderr: body.attach_stderr,
        tty: raw_stream,
        keys: (tty && stdin).then(|| DetachKeys::new(keys)),
    };
    let hijacked = crate::hijack::hijack(&mut req, stream_type(raw_stream, version))?;
    let slow_reader = hijacked.holds_until_read(&req);
    let until_read = hijacked.until_read();
    let client = hijacked.client;
    tokio::spawn(async move {
        match client.await {
            Some(client) => {
                // The process already runs (dockerd starts it only after
                // the 101): output sent right behind the 101 can reach a
                // client in the read that takes the headers, and docker-py
                // reads the stream from the socket under its HTTP buffer,
                // losing those bytes. Wait until it has read the 101.
                if slow_reader {
                    until_read.await;
                }
                bridge(client, streams, tokio::spawn(finished)).await
            }
            None => finished.await,
        }
    });
    Ok(hijacked.response)
}

/// The stream's content type: dockerd frames it (stdcopy) unless it is a
/// terminal's, from API 1.42 on saying so.
fn stream_type(raw: bool, version: Option<axum::Extension<ApiVersion>>) -> &'static str {
    if !raw && version.is_none_or(|v| v.0 .0 >= (1, 42)) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

/// `error STATUS MESSAGE` from the helper.
fn parse_error(line: &str) -> (StatusCode, String) {
    let rest = line.trim().strip_prefix("error ").unwrap_or("");
    let (status, message) = rest.split_once(' ').unwrap_or(("500", rest));
    let status = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if message.is_empty() {
        "the exec helper ended without starting the process".to_string()
    } else {
        message.replace("\\n", "\n")
    };
    (status, message)
}

/// The running helper and its ends.
struct Helper {
    process: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    reports: tokio::net::unix::pipe::Receiver,
}

fn spawn_helper(
    st: &AppState,
    args: &Value,
    detach: bool,
    stdin: bool,
) -> Result<Helper, ApiError> {
    let exe = std::env::current_exe()
        .map_err(|e| ApiError::internal(format!("finding berth's binary: {e}")))?;
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("a pipe for the exec helper: {e}")))?;
    let paths = &st.paths;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("--root")
        .arg(&paths.root)
        .arg("--runroot")
        .arg(&paths.runroot)
        .arg("--config")
        .arg(&paths.config)
        .args(["__api-op", "exec"])
        .env("BERTH_API_ARGS", args.to_string())
        .stdin(if stdin {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(if detach {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
        .stderr(if detach {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::piped()
        })
        .kill_on_drop(false);
    // The report pipe is the helper's fd 3.
    command_fds::CommandFdExt::fd_mappings(
        &mut cmd,
        vec![command_fds::FdMapping {
            parent_fd: report_w,
            child_fd: 3,
        }],
    )
    .map_err(|e| ApiError::internal(format!("the exec helper's fds: {e}")))?;
    let mut process = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("starting berth __api-op exec: {e}")))?;
    // The parent's copy of the write end went with the Command.
    drop(cmd);
    let reports = tokio::net::unix::pipe::Receiver::from_owned_fd(report_r)
        .map_err(|e| ApiError::internal(format!("the exec helper's reports: {e}")))?;
    Ok(Helper {
        stdin: process.stdin.take(),
        stdout: process.stdout.take(),
        stderr: process.stderr.take(),
        process,
        reports,
    })
}

/// The helper's pipes and what the client asked for.
struct Pipes {
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
    want_stdout: bool,
    want_stderr: bool,
    /// The stream is raw (no frames).
    tty: bool,
    keys: Option<DetachKeys>,
}

/// Copy between the client and the helper until the process's output
/// ends; the stream closes only after its exit code is recorded (the
/// docker CLI inspects the instance for it right after).
async fn bridge<C>(client: C, p: Pipes, finished: tokio::task::JoinHandle<()>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_r, client_w) = tokio::io::split(client);
    let client_w = tokio::sync::Mutex::new(client_w);
    let Pipes {
        stdin,
        stdout,
        stderr,
        want_stdout,
        want_stderr,
        tty,
        mut keys,
    } = p;
    let pump = |src: Option<Box<dyn AsyncRead + Send + Unpin>>, kind: u8, wanted: bool| {
        let client_w = &client_w;
        async move {
            let Some(mut src) = src else { return };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match src.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if wanted {
                            let f = client_frame(kind, &buf[..n], tty);
                            // A client gone: keep draining so the process
                            // is not blocked on a full pipe.
                            let _ = client_w.lock().await.write_all(&f).await;
                        }
                    }
                }
            }
        }
    };
    let out = pump(
        stdout.map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        1,
        want_stdout,
    );
    let err = pump(
        stderr.map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        2,
        want_stderr,
    );
    let input = async {
        let Some(mut stdin) = stdin else {
            return std::future::pending::<()>().await;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match client_r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    // Half-close: the process's stdin ends.
                    drop(stdin);
                    return std::future::pending::<()>().await;
                }
                Ok(n) => n,
            };
            let (pass, detached) = match keys.as_mut() {
                Some(k) => k.feed(&buf[..n]),
                None => (buf[..n].to_vec(), false),
            };
            if stdin.write_all(&pass).await.is_err() || detached {
                return;
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(out, err) } => {
            let _ = finished.await;
        }
        () = input => {
            // Detached: the process goes on; `finished` (a task of its
            // own) still records its end.
        }
    }
    let _ = client_w.lock().await.shutdown().await;
}

/// `GET /exec/{id}/json`.
pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.execs.with(&id, |i| {
        let cmd = i.body.cmd.clone().unwrap_or_default();
        Json(json!({
            "CanRemove": false,
            "ContainerID": i.container,
            "DetachKeys": i.body.detach_keys,
            "ExitCode": i.exit_code,
            "ID": id,
            "OpenStderr": i.body.attach_stderr,
            "OpenStdin": i.body.attach_stdin,
            "OpenStdout": i.body.attach_stdout,
            "ProcessConfig": {
                "arguments": cmd.get(1..).unwrap_or_default(),
                "entrypoint": cmd.first().cloned().unwrap_or_default(),
                "privileged": i.body.privileged,
                "tty": i.body.tty,
                "user": i.body.user,
            },
            "Running": i.running,
            "Pid": i.pid,
        }))
    })
}

/// `POST /exec/{id}/resize?h=&w=`.
pub(crate) async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<StatusCode, ApiError> {
    let (pid, running) = st.execs.with(&id, |i| (i.pid, i.running))?;
    if !running || pid == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Exec {id} is not running"),
        ));
    }
    let (h, w) = (q.h.unwrap_or(0), q.w.unwrap_or(0));
    tokio::task::spawn_blocking(move || engine::container::attach::resize_process_tty(pid, h, w))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(StatusCode::OK)
}

/// `berth __api-op exec`: the helper's side. Arguments in
/// `BERTH_API_ARGS`; the process's stdio are ours; reports on fd 3.
pub fn helper_main(paths: engine::Paths) -> i32 {
    // Our fd 3 is the server's report pipe (a fresh description of it:
    // no unsafe adoption of the raw fd; exec'd processes never inherit
    // fds above 2).
    let Ok(mut reports) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")
    else {
        return 1;
    };
    let args: Value = std::env::var("BERTH_API_ARGS")
        .ok()
        .and_then(|a| serde_json::from_str(&a).ok())
        .unwrap_or(Value::Null);
    match run_helper(paths, &args, &mut reports) {
        Ok(code) => {
            let _ = writeln!(reports, "exit {code}");
            0
        }
        Err(e) => {
            let _ = writeln!(
                reports,
                "error {} {}",
                e.status().as_u16(),
                e.message().replace('\n', "\\n")
            );
            1
        }
    }
}

/// A command the container cannot start, in dockerd's words (`OCI runtime
/// exec failed: …: unknown`), with the status of its kind.
fn not_started(e: engine::EngineError) -> ApiError {
    match e.oci_exec_message() {
        Some(m) => ApiError::new(
            StatusCode::from_u16(e.kind().http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            m,
        ),
        None => e.into(),
    }
}

fn run_helper(
    paths: engine::Paths,
    args: &Value,
    reports: &mut std::fs::File,
) -> Result<i32, ApiError> {
    let engine = Engine::open(paths)?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = args["id"].as_str().unwrap_or_default();
    let tty = args["tty"].as_bool().unwrap_or(false);
    let req = engine::container::exec::ExecRequest {
        cmd: strings(&args["cmd"]),
        env: strings(&args["env"]),
        user: args["user"].as_str().map(str::to_string),
        workdir: args["workdir"].as_str().map(str::to_string),
        tty,
    };
    let dup = |fd: std::os::fd::BorrowedFd<'_>| -> Result<OwnedFd, ApiError> {
        fd.try_clone_to_owned()
            .map_err(|e| ApiError::internal(format!("the exec's stdio: {e}")))
    };
    if !tty {
        let stdio = [
            dup(std::io::stdin().as_fd())?,
            dup(std::io::stdout().as_fd())?,
            dup(std::io::stderr().as_fd())?,
        ];
        let pid = engine.exec(id, &req, stdio).map_err(not_started)?;
        let _ = writeln!(reports, "pid {pid}");
        // Our copies of the pipes go, so the server sees the end of the
        // output when the process (and what it started) closes them.
        engine::term::close_stdio();
        return Ok(engine::term::wait_child(pid));
    }
    let (master, slave) = engine.container_pty(id)?;
    if let Some([rows, cols]) = serde_json::from_value::<Option<[u16; 2]>>(args["console"].clone())
        .ok()
        .flatten()
    {
        let _ = engine::term::set_winsize(master.as_fd(), engine::term::WinSize { rows, cols });
    }
    let stdio = [dup(slave.as_fd())?, dup(slave.as_fd())?, slave];
    let pid = engine.exec(id, &req, stdio).map_err(not_started)?;
    let _ = writeln!(reports, "pid {pid}");
    engine::term::pump_pty(master, args["stdin"].as_bool().unwrap_or(false), false);
    Ok(engine::term::wait_child(pid))
}
