//! A container's filesystem: `GET /containers/{id}/changes`, `/export`,
//! and `HEAD|GET|PUT /containers/{id}/archive` (what `docker cp` uses).
//!
//! Export and the archive work on a stopped container's root in a forked
//! helper (`engine::rootfs`), so they run in a `berth __api-op` process
//! (see `ops.rs`). Their bytes do not fit its JSON answer: the server
//! listens on a socket of its own under the run root, passes the path, and
//! the op connects back. Whatever it sends starts with one JSON line (the
//! path's stat; `{}` for export) once it knows the request will succeed,
//! so a failure is still answered with dockerd's status; then the tar.
//!
//! Recorded from dockerd 20.10: `GET …/archive` answers
//! `Content-Type: application/x-tar` and `X-Docker-Container-Path-Stat`
//! (base64 of `{"name","size","mode","mtime","linkTarget"}`, `mode` being
//! Go's `os.FileMode`); `HEAD` the same header without a body or a
//! Content-Type; a missing path is a 404 `Could not find the file /nope in
//! container web`; `PUT` answers 200 with an empty body, `extraction point
//! is not a directory` (500) when the path is not a directory; export is
//! `application/octet-stream`; `changes` is `null` when there are none.
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use engine::container::archive::{ExtractOptions, PathStat};
use engine::Engine;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::containers::truthy;
use crate::{ApiError, AppState};

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]` (0 modified, 1
/// added, 2 deleted), `null` for none.
pub(crate) async fn changes(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let list: Vec<Value> = e
            .diff(&id)?
            .into_iter()
            .map(|(path, kind)| {
                let k = match kind.letter() {
                    'C' => 0,
                    'A' => 1,
                    _ => 2,
                };
                json!({"Path": path.to_string_lossy(), "Kind": k})
            })
            .collect();
        Ok(Json(if list.is_empty() {
            Value::Null
        } else {
            Value::Array(list)
        }))
    })
    .await
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`
/// with docker's `Config` (or nothing, or `null`) as the body: a new image
/// from the container's changes, 201 `{"Id": "sha256:…"}`. `pause`
/// defaults to true (API ≥ 1.13, as dockerd); `changes` may repeat.
pub(crate) async fn commit(
    State(st): State<AppState>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = crate::distribution::Params::parse(q);
    let container = p.get("container").unwrap_or_default().to_string();
    let reference = match p.get("repo") {
        Some(repo) => {
            let full = match p.get("tag") {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            Some(crate::distribution::parse_reference(&full)?)
        }
        None => None,
    };
    let mut changes = Vec::new();
    for c in p.all("changes").iter() {
        // The docker CLI sends each change as it is; some clients join
        // several with newlines.
        for line in c.lines().filter(|l| !l.trim().is_empty()) {
            changes.push(
                engine::image::parse_change(line)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
        }
    }
    let pause = match p.get("pause") {
        None => true,
        Some(_) => p.flag("pause"),
    };
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = crate::error::json_body(&body)?;
        if !(v.is_object() || v.is_null()) {
            return Err(ApiError::bad_request(
                "the body is not a container config object",
            ));
        }
        Some(v).filter(Value::is_object)
    };
    let opts = engine::container::fs::CommitOptions {
        reference,
        changes,
        message: p.get("comment").map(str::to_string),
        author: p.get("author").map(str::to_string),
        created_by: String::new(),
        config,
    };
    let id = st
        .engine(move |e| Ok(e.commit(&container, pause, &opts)?.id.to_string()))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": id }))))
}

/// `archive` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct ArchiveQuery {
    path: Option<String>,
    #[serde(rename = "noOverwriteDirNonDir")]
    no_overwrite_dir_non_dir: Option<String>,
    #[serde(rename = "copyUIDGID")]
    copy_uid_gid: Option<String>,
}

fn stat_json(s: &PathStat) -> Value {
    json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": crate::stats::go_time(Some(s.mtime)),
        "linkTarget": s.link_target,
    })
}

fn stat_header(stat: &Value) -> Result<HeaderValue, ApiError> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    HeaderValue::from_str(&b64).map_err(|e| ApiError::internal(e.to_string()))
}

/// dockerd's 400 for an archive request without a path.
fn need_path(q: &ArchiveQuery) -> Result<String, ApiError> {
    match q.path.as_deref() {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("bad parameter: pathcannot be empty")),
    }
}

/// `HEAD|GET /containers/{id}/archive?path=`.
pub(crate) async fn archive_get(
    State(st): State<AppState>,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
) -> Result<Response, ApiError> {
    let path = need_path(&q)?;
    if method == Method::HEAD {
        let stat = st
            .forked("archive-stat", json!({"id": id, "path": path}))
            .await?;
        let mut r = StatusCode::OK.into_response();
        r.headers_mut()
            .insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
        return Ok(r);
    }
    let (stat, body) = st
        .streamed("archive-get", json!({"id": id, "path": path}))
        .await?;
    let mut r = Response::new(body);
    r.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/x-tar"),
    );
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(&stat)?);
    Ok(r)
}

/// `PUT /containers/{id}/archive?path=`: the body, a tar, extracted into
/// the directory `path`.
pub(crate) async fn archive_put(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ArchiveQuery>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let path = need_path(&q)?;
    let args = json!({
        "id": id,
        "path": path,
        "noOverwriteDirNonDir": truthy(&q.no_overwrite_dir_non_dir),
        "copyUIDGID": truthy(&q.copy_uid_gid),
    });
    st.upload("archive-put", args, body).await?;
    Ok(StatusCode::OK)
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar.
pub(crate) async fn export(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, body) = st.streamed("export", json!({ "id": id })).await?;
    let mut r = Response::new(body);
    r.headers_mut().insert(
        "Content-Type",
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(r)
}

/// The `__api-op` side: the archive ops and export (`ops.rs` delegates).
pub(crate) fn op(engine: &Engine, op: &str, args: &Value) -> Result<Value, ApiError> {
    let id = args["id"].as_str().unwrap_or_default();
    let path = args["path"].as_str().unwrap_or_default();
    let connect = || -> Result<std::os::unix::net::UnixStream, ApiError> {
        let socket = args["socket"].as_str().unwrap_or_default();
        std::os::unix::net::UnixStream::connect(socket)
            .map_err(|e| ApiError::internal(format!("connecting to the server's socket: {e}")))
    };
    match op {
        "archive-stat" => Ok(stat_json(&engine.archive_stat(id, path)?)),
        "archive-get" => {
            let conn = connect()?;
            engine.archive_get(id, path, conn.into(), |stat, w| {
                writeln!(w, "{}", stat_json(stat))
            })?;
            Ok(Value::Null)
        }
        "archive-put" => {
            let conn = connect()?;
            engine.archive_put(
                id,
                path,
                conn.into(),
                ExtractOptions {
                    no_overwrite_dir_non_dir: args["noOverwriteDirNonDir"]
                        .as_bool()
                        .unwrap_or(false),
                    copy_uid_gid: args["copyUIDGID"].as_bool().unwrap_or(false),
                },
            )?;
            Ok(Value::Null)
        }
        "export" => {
            // Known to exist before the server answers 200.
            let c = engine.container(id)?;
            let mut conn = connect()?;
            writeln!(conn, "{{}}").map_err(|e| ApiError::internal(e.to_string()))?;
            engine.export(c.id().as_str(), conn.into())?;
            Ok(Value::Null)
        }
        other => Err(ApiError::internal(format!("unknown operation {other:?}"))),
    }
}

/// A socket path of this request's own under the run root.
fn socket_path(runroot: &std::path::Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    runroot.join(format!(
        "api-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The listening socket, removed when the request is done with it.
struct Rendezvous {
    path: PathBuf,
    listener: tokio::net::UnixListener,
}

impl Rendezvous {
    fn bind(runroot: &std::path::Path) -> Result<Rendezvous, ApiError> {
        let path = socket_path(runroot);
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| ApiError::internal(format!("listening on {}: {e}", path.display())))?;
        Ok(Rendezvous { path, listener })
    }
}

impl Drop for Rendezvous {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The op's answer once it has ended.
type Answer = tokio::task::JoinHandle<Result<Value, ApiError>>;

async fn settle(answer: Answer) -> ApiError {
    match answer.await {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => ApiError::internal("the operation ended without sending anything"),
        Err(e) => ApiError::internal(format!("the request's worker failed: {e}")),
    }
}

impl AppState {
    /// Start `op` with `args` plus the socket's path; its connection.
    async fn rendezvous(
        &self,
        op: &'static str,
        mut args: Value,
    ) -> Result<(tokio::net::UnixStream, Answer), ApiError> {
        let rv = Rendezvous::bind(&self.paths.runroot)?;
        args["socket"] = json!(rv.path.to_string_lossy());
        let st = self.clone();
        let mut answer = tokio::spawn(async move { st.forked(op, args).await });
        // The connection first: an op that connects, sends and ends at
        // once makes both ready, and an unbiased select would then take
        // the end for "did not connect" half of the time.
        tokio::select! {
            biased;
            conn = rv.listener.accept() => {
                let (conn, _) = conn
                    .map_err(|e| ApiError::internal(format!("accepting the op's connection: {e}")))?;
                Ok((conn, answer))
            }
            done = &mut answer => Err(match done {
                Ok(Err(e)) => e,
                Ok(Ok(_)) => ApiError::internal(format!("berth __api-op {op} did not connect")),
                Err(e) => ApiError::internal(format!("the request's worker failed: {e}")),
            }),
        }
    }

    /// Run `op`, which sends one JSON line then bytes: the line, and a
    /// body of the bytes.
    async fn streamed(&self, op: &'static str, args: Value) -> Result<(Value, Body), ApiError> {
        let (conn, answer) = self.rendezvous(op, args).await?;
        let mut reader = tokio::io::BufReader::new(conn);
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| ApiError::internal(format!("reading from the op: {e}")))?;
        if n == 0 || !line.ends_with('\n') {
            return Err(settle(answer).await);
        }
        let head: Value = serde_json::from_str(&line)
            .map_err(|e| ApiError::internal(format!("the op's first line: {e}")))?;
        // The op's answer is not waited for: the body's end is the end.
        drop(answer);
        let stream = futures_util::stream::unfold(reader, |mut r| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(buf)),
                        r,
                    ))
                }
            }
        });
        Ok((head, Body::from_stream(stream)))
    }

    /// Run `op`, feeding it `body`; its answer.
    async fn upload(&self, op: &'static str, args: Value, body: Body) -> Result<Value, ApiError> {
        let (mut conn, answer) = self.rendezvous(op, args).await?;
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            let Ok(chunk) = chunk else { break };
            // The op stops reading when it fails: its answer says why.
            if conn.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = conn.shutdown().await;
        drop(conn);
        match answer.await {
            Ok(r) => r,
            Err(e) => Err(ApiError::internal(format!(
                "the request's worker failed: {e}"
            ))),
        }
    }
}
