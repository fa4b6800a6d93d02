//! Engine calls that fork — `create` of a container with a volume (its
//! first mount copies the image's content in a helper process; other
//! creates run in place) and `start`/`restart` (the
//! container's monitor) — never run on the server's threads: forking a
//! multi-threaded process is unsafe. They run in a fresh, single-threaded
//! berth process: `berth __api-op OP` reads its arguments as JSON on stdin
//! and answers `{"ok": …}` or `{"status": …, "message": …}` on stdout;
//! the server's zygote forks such a process without the exec
//! (`zygote.rs`).
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use axum::http::StatusCode;
use engine::container::start::AttachMode;
use engine::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::create::Body;
use crate::{ApiError, AppState};

/// `304 Not Modified`: dockerd's answer to starting a running container
/// or stopping a stopped one.
pub(crate) fn not_modified() -> ApiError {
    ApiError::new(StatusCode::NOT_MODIFIED, "")
}

/// `POST /containers/create`'s arguments (`{"name", "body"}`) as the
/// engine's request.
pub(crate) fn create_request(
    args: &Value,
) -> Result<engine::container::create::CreateRequest, ApiError> {
    let body: Body = serde_json::from_value(args["body"].clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let name = args["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    body.into_request(name)
}

/// `POST /containers/create`'s answer, with dockerd's warnings (a limit
/// the kernel cannot apply, discarded).
pub(crate) fn created(c: &engine::container::Container, warnings: &[String]) -> Value {
    json!({"Id": c.id().as_str(), "Warnings": warnings})
}

fn run(engine: &Engine, op: &str, args: &Value) -> Result<Value, ApiError> {
    let id = args["id"].as_str().unwrap_or_default();
    match op {
        "create" => {
            let req = create_request(args)?;
            let warnings = req.blkio.warnings()?;
            let c = engine.create(&req)?;
            Ok(created(&c, &warnings))
        }
        "start" => {
            if engine.container(id)?.is_running() {
                return Err(not_modified());
            }
            let mode = match args["hold"].as_u64().unwrap_or(0) {
                0 => AttachMode::Detached,
                n => AttachMode::Held {
                    clients: u32::try_from(n).unwrap_or(u32::MAX),
                },
            };
            engine.start(id, mode)?;
            Ok(Value::Null)
        }
        "restart" => {
            let t = args["t"].as_i64();
            engine.stop(id, t)?;
            engine.start(id, AttachMode::Detached)?;
            Ok(Value::Null)
        }
        "network-create" => {
            let body: crate::objects::NetworkBody = serde_json::from_value(args.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
            let n = engine.network_create(&body.into_request()?)?;
            Ok(json!({"Id": n.id, "Warning": ""}))
        }
        "network-connect" | "network-disconnect" => {
            let b = &args["body"];
            let container = b["Container"].as_str().unwrap_or_default();
            if op == "network-disconnect" {
                engine.network_disconnect(id, container, b["Force"].as_bool().unwrap_or(false))?;
            } else {
                let ep = &b["EndpointConfig"];
                let aliases: Vec<String> = ep["Aliases"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
                let endpoint = engine::networks::Endpoint {
                    aliases,
                    ip: text(&ep["IPAMConfig"]["IPv4Address"]),
                    mac: text(&ep["MacAddress"]),
                    links: strings(&ep["Links"]),
                    extra: engine::config::EndpointExtra {
                        ip6: text(&ep["IPAMConfig"]["IPv6Address"]),
                        link_local_ips: strings(&ep["IPAMConfig"]["LinkLocalIPs"]),
                        driver_opts: serde_json::from_value(ep["DriverOpts"].clone())
                            .ok()
                            .flatten(),
                    },
                };
                engine.network_connect(id, container, &endpoint)?;
            }
            Ok(Value::Null)
        }
        "archive-stat" | "archive-get" | "archive-put" | "export" => {
            crate::fs::op(engine, op, args)
        }
        "build" => crate::build::op(engine, args),
        other => Err(ApiError::internal(format!("unknown operation {other:?}"))),
    }
}

/// `berth __api-op OP`: the child's side. Returns the exit code.
pub fn op_main(paths: engine::Paths, op: &str) -> i32 {
    if op == "exec" {
        return crate::exec::helper_main(paths);
    }
    answer_op(Engine::open(paths), op)
}

/// `op_main` with an engine the caller opened (ahead of the call: the
/// zygote's spare process): the arguments from stdin, the answer to
/// stdout. Returns the exit code.
pub(crate) fn answer_op(engine: engine::Result<Engine>, op: &str) -> i32 {
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let args: Value = serde_json::from_str(&input).unwrap_or(Value::Null);
    let answer = engine
        .map_err(ApiError::from)
        .and_then(|e| run(&e, op, &args));
    let doc = match answer {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "status": e.status().as_u16(), "message": e.message() }),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{doc}");
    0
}

/// The op's answer document (`{"ok": …}` or `{"status", "message"}`) as
/// the handler's result.
fn answer(op: &str, doc: &[u8], ended: impl std::fmt::Display) -> Result<Value, ApiError> {
    let doc: Value = serde_json::from_slice(doc).map_err(|_| {
        ApiError::internal(format!(
            "berth __api-op {op} ended without an answer ({ended})"
        ))
    })?;
    if let Some(status) = doc["status"].as_u64() {
        let status =
            StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(ApiError::new(
            status,
            doc["message"].as_str().unwrap_or_default(),
        ));
    }
    Ok(doc["ok"].clone())
}

impl AppState {
    /// Run `op` in a fresh single-threaded berth process (forked by the
    /// zygote, else an exec of `berth __api-op OP`); its answer.
    pub(crate) async fn forked(&self, op: &'static str, args: Value) -> Result<Value, ApiError> {
        if let Some(conn) = self.zygote.as_ref().and_then(|z| z.spawn(op).ok()) {
            return talk(conn, op, args).await;
        }
        self.exec_op(op, args).await
    }

    /// `forked` through an exec of `berth __api-op OP`.
    async fn exec_op(&self, op: &'static str, args: Value) -> Result<Value, ApiError> {
        let paths = self.paths.clone();
        tokio::task::spawn_blocking(move || {
            let exe = std::env::current_exe()
                .map_err(|e| ApiError::internal(format!("finding berth's binary: {e}")))?;
            let mut child = Command::new(exe)
                .arg("--root")
                .arg(&paths.root)
                .arg("--runroot")
                .arg(&paths.runroot)
                .arg("--config")
                .arg(&paths.config)
                .args(["__api-op", op])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| ApiError::internal(format!("starting berth __api-op {op}: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(args.to_string().as_bytes());
            }
            let out = child
                .wait_with_output()
                .map_err(|e| ApiError::internal(format!("berth __api-op {op}: {e}")))?;
            answer(op, &out.stdout, out.status)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
    }
}

/// Send `args` to an op forked by the zygote and read its answer: the
/// first line, as soon as it comes (the process may still be ending).
async fn talk(conn: UnixStream, op: &str, args: Value) -> Result<Value, ApiError> {
    let failed = |e: std::io::Error| ApiError::internal(format!("berth __api-op {op}: {e}"));
    conn.set_nonblocking(true).map_err(failed)?;
    let mut conn = tokio::net::UnixStream::from_std(conn).map_err(failed)?;
    conn.write_all(args.to_string().as_bytes())
        .await
        .map_err(failed)?;
    conn.shutdown().await.map_err(failed)?;
    let mut line = Vec::new();
    tokio::io::BufReader::new(conn)
        .read_until(b'\n', &mut line)
        .await
        .map_err(failed)?;
    answer(op, &line, "no answer")
}
