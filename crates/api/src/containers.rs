//! `/containers/…`.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

/// dockerd's boolean query values: `1`, `true`, `True`.
pub(crate) fn truthy(v: &Option<String>) -> bool {
    matches!(
        v.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true")
    )
}

/// `GET /containers/json` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    filters: Option<String>,
}

/// `GET /containers/json`: newest first, as `ps`. Answered from the
/// listing's view at once when nothing changed, else on a blocking thread
/// with an engine (see `listing.rs`).
pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<axum::response::Response, ApiError> {
    let req = engine::container::list::ListRequest {
        all: truthy(&q.all),
        limit: q.limit.filter(|n| *n > 0).map(|n| n as usize),
        filters: engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            engine::container::list::PS_FILTERS,
        )?,
    };
    let body = match st.listing.answer_fresh(&req) {
        Some(body) => body?,
        None => {
            let _turn = st.listing.refresh.lock().await;
            match st.listing.answer_fresh(&req) {
                Some(body) => body?,
                None => {
                    let listing = st.listing.clone();
                    st.engine(move |e| {
                        let all = listing.containers(e)?;
                        let list = e.filter_containers(&all, &req)?;
                        Ok(listing.summaries(e, &list))
                    })
                    .await?
                }
            }
        }
    };
    axum::response::Response::builder()
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from(body))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /containers/{id}/json`.
pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let c = e.container(&id)?;
        Ok(Json(e.inspect_container(&c)))
    })
    .await
}

/// `POST /containers/create` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct CreateQuery {
    name: Option<String>,
}

/// `POST /containers/create`: 201 with the id.
pub(crate) async fn create(
    State(st): State<AppState>,
    Query(q): Query<CreateQuery>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Value = crate::error::json_body(&body)?;
    let args = json!({"name": q.name, "body": body});
    let req = crate::ops::create_request(&args)?;
    // In place unless it would fork (a volume to fill): then in a
    // process of its own.
    let made = st
        .engine(move |e| {
            let warnings = req.blkio.warnings()?;
            Ok(e.create_without_fork(&req)?
                .map(|c| crate::ops::created(&c, &warnings)))
        })
        .await?;
    let v = match made {
        Some(v) => v,
        None => st.forked("create", args).await?,
    };
    Ok((StatusCode::CREATED, Json(v)))
}

/// `POST /containers/{id}/start`: 204, or 304 when it already runs.
pub(crate) async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Attaches waiting for this start (`docker run`, `start -a`): the
    // monitor holds the output until they have connected.
    let full = st
        .engine(move |e| Ok(e.container(&id)?.id().as_str().to_string()))
        .await?;
    let held = st.pending.take(&full);
    let clients = held.as_ref().map_or(0, |h| h.0);
    let result = st
        .forked("start", json!({ "id": full, "hold": clients }))
        .await;
    if let Some((_, started)) = held {
        let _ = started.send(Some(result.is_ok()));
    }
    result?;
    Ok(StatusCode::NO_CONTENT)
}

/// `stop`/`restart` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct StopQuery {
    t: Option<i64>,
}

/// `POST /containers/{id}/stop`: 204, or 304 when it is not running.
pub(crate) async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        if !e.container(&id)?.is_running() {
            return Err(crate::ops::not_modified());
        }
        e.stop(&id, q.t)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /containers/{id}/restart`.
pub(crate) async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, ApiError> {
    st.forked("restart", json!({ "id": id, "t": q.t })).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `kill` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct KillQuery {
    signal: Option<String>,
}

/// `POST /containers/{id}/kill`.
pub(crate) async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        let s = q
            .signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("SIGKILL");
        let sig: model::Signal = s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("Invalid signal: {s}")))?;
        let c = e.kill(&id, sig)?;
        // dockerd's kill with SIGKILL answers once the container is down
        // (for 2s at most): clients inspect its exit right after.
        if sig.number() == libc::SIGKILL {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
            let _ = e.wait_for(
                c.id().as_str(),
                engine::container::wait::WaitCondition::NotRunning,
                &|| std::time::Instant::now() < until,
            );
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /containers/{id}/wait`: the exit code once it is not running.
/// `wait` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct WaitQuery {
    condition: Option<String>,
}

/// `POST /containers/{id}/wait?condition=`: the headers at once (the
/// docker CLI starts the container only after it has them), the exit code
/// as the body once the condition holds. Stops waiting when the client
/// goes away.
pub(crate) async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Result<axum::response::Response, ApiError> {
    let cond: engine::container::wait::WaitCondition =
        q.condition.as_deref().unwrap_or_default().parse()?;
    let id = st
        .engine(move |e| Ok(e.container(&id)?.id().as_str().to_string()))
        .await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
    let waiter = st.clone();
    tokio::spawn(async move {
        // On an engine of the pool; stops waiting when the client goes.
        let gone = Arc::new(AtomicBool::new(false));
        let seen = gone.clone();
        let work = waiter.engine(move |e| {
            let keep_waiting = || !seen.load(Ordering::Relaxed);
            Ok(e.wait_for(&id, cond, &keep_waiting))
        });
        tokio::pin!(work);
        let mut tx = tx;
        let outcome = tokio::select! {
            r = &mut work => r,
            _ = tx.closed() => {
                gone.store(true, Ordering::Relaxed);
                let _ = work.await;
                return;
            }
        };
        let doc = match outcome {
            Ok(Ok(code)) => json!({"StatusCode": code, "Error": null}),
            Ok(Err(err)) => json!({"StatusCode": -1, "Error": {"Message": err.to_string()}}),
            Err(err) => json!({"StatusCode": -1, "Error": {"Message": err.message()}}),
        };
        let mut body = doc.to_string().into_bytes();
        body.push(b'\n');
        let _ = tx.send(body);
    });
    let stream = futures_util::stream::once(async move {
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(rx.await.unwrap_or_default()))
    });
    // A wait under way ends (with no answer) when the server stops.
    let stream = st.stopping.cut(stream);
    axum::response::Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `DELETE /containers/{id}` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct RemoveQuery {
    force: Option<String>,
    v: Option<String>,
    link: Option<String>,
}

/// `DELETE /containers/{id}`; with `link=1` the link named `id`
/// (`container/alias`) goes instead.
pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        if truthy(&q.link) {
            e.remove_link(&id)?;
        } else {
            e.remove(&id, truthy(&q.force), truthy(&q.v))?;
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `DELETE /containers/{container}/{alias}`: a link name, as `remove`.
pub(crate) async fn remove_by_link(
    st: State<AppState>,
    Path((container, alias)): Path<(String, String)>,
    q: Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    remove(st, Path(format!("{container}/{alias}")), q).await
}

/// `GET /containers/{id}/logs` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// A Unix time as the API gives it (`1700000000` or `1700000000.5`).
fn unix_time(s: &Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    let secs: f64 = s.as_deref()?.parse().ok()?;
    if secs <= 0.0 {
        return None;
    }
    chrono::DateTime::from_timestamp(secs.trunc() as i64, ((secs.fract()) * 1e9) as u32)
}

/// One entry as the API sends it: raw for a tty container, else in
/// docker's stdcopy frame (stream byte, three zeros, big-endian length).
fn frame(e: &engine::logs::Entry, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut data = Vec::new();
    let _ = engine::logs::print_entry(&mut data, e, timestamps, false);
    if tty {
        return data;
    }
    let stream = match e.stream {
        engine::logs::Stream::Stdout => 1u8,
        engine::logs::Stream::Stderr => 2u8,
    };
    let mut out = Vec::with_capacity(data.len() + 8);
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&data);
    out
}

/// `GET /containers/{id}/logs`: the log, and with `follow` what comes
/// until the container stops or the client goes.
pub(crate) async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<axum::response::Response, ApiError> {
    // The log is opened (and read) before the answer's headers go out: a
    // client may remove the container as soon as it has them (docker-py's
    // `containers.run(remove=True)` reads the body after the removal).
    let follow = truthy(&q.follow);
    let (c, mut follower, entries) = {
        let id = id.clone();
        st.engine(move |e| {
            let c = e.container(&id)?;
            let path = e.container_log(&c);
            let (entries, follower) = if follow {
                let (entries, follower) = engine::logs::read_and_follow(&path)
                    .unwrap_or_else(|_| (Vec::new(), engine::logs::Follower::at_end(&path)));
                (entries, Some(follower))
            } else {
                (engine::logs::read_all(&path).unwrap_or_default(), None)
            };
            Ok((c, follower, entries))
        })
        .await?
    };
    if !truthy(&q.stdout) && !truthy(&q.stderr) {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tty = c.config.tty;
    let want = move |e: &engine::logs::Entry| match e.stream {
        engine::logs::Stream::Stdout => truthy(&q.stdout),
        engine::logs::Stream::Stderr => truthy(&q.stderr),
    };
    let timestamps = truthy(&q.timestamps);
    let since = unix_time(&q.since);
    let until = unix_time(&q.until);
    let tail: Option<usize> = q.tail.as_deref().and_then(|t| t.parse().ok());
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let stopping = st.stopping.clone();
    let paths = st.clone();
    tokio::task::spawn_blocking(move || {
        let mut entries = entries;
        entries.retain(|e| {
            want(e) && since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time < u)
        });
        if let Some(n) = tail {
            let skip = entries.len().saturating_sub(n);
            entries.drain(..skip);
        }
        for e in &entries {
            if tx.blocking_send(frame(e, tty, timestamps)).is_err() {
                return;
            }
        }
        let Some(follower) = follower.as_mut() else {
            return;
        };
        let Ok(engine) = Engine::open((*paths.paths).clone()) else {
            return;
        };
        loop {
            let new = follower.poll().unwrap_or_default();
            for e in new.iter().filter(|e| want(e)) {
                if until.is_some_and(|u| e.time >= u) {
                    return;
                }
                if tx.blocking_send(frame(e, tty, timestamps)).is_err() {
                    return;
                }
            }
            if new.is_empty() {
                if tx.is_closed() {
                    return;
                }
                let running = engine
                    .container(c.id().as_str())
                    .map(|c| c.is_running() || c.state.status == engine::config::Status::Restarting)
                    .unwrap_or(false);
                if !running {
                    for e in follower
                        .poll()
                        .unwrap_or_default()
                        .iter()
                        .filter(|e| want(e))
                    {
                        let _ = tx.blocking_send(frame(e, tty, timestamps));
                    }
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| {
            (
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(b)),
                rx,
            )
        })
    });
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    // Following ends when the server stops; a plain read is not cut short.
    let body = if follow {
        axum::body::Body::from_stream(stopping.cut(stream))
    } else {
        axum::body::Body::from_stream(stream)
    };
    axum::response::Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", content_type)
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `rename` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct RenameQuery {
    name: Option<String>,
}

/// `POST /containers/{id}/rename?name=`.
pub(crate) async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        let name = q.name.unwrap_or_default();
        e.rename(&id, name.trim_start_matches('/'))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /containers/{id}/pause`, `/unpause` and `/update`.
pub(crate) async fn pause(
    State(st): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if verb == "update" {
        return crate::update::update(st, id, body)
            .await
            .map(IntoResponse::into_response);
    }
    if verb != "pause" && verb != "unpause" {
        return Err(crate::error::no_route().await);
    }
    st.engine(move |e| {
        if verb == "pause" {
            e.pause(&id)?;
        } else {
            e.unpause(&id)?;
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
