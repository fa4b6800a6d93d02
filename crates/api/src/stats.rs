//! `GET /containers/{id}/stats` and `/top`: a running container's resource
//! use and processes, in dockerd's shapes (recorded from dockerd 20.10 on
//! this cgroup v1 host; the docker CLI computes its figures from
//! `cpu_stats` − `precpu_stats`, `memory_stats.usage` −
//! `stats.total_inactive_file`, the sums of `networks` and of
//! `blkio_stats.io_service_bytes_recursive`, and `pids_stats.current`).
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use engine::container::ops::StatsSample;
use engine::container::Container;
use engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::containers::truthy;
use crate::{ApiError, AppState};

/// Go's `time.RFC3339Nano`: trailing zeros of the fraction dropped.
pub(crate) fn go_time(t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".into();
    };
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = format!("{:09}", t.timestamp_subsec_nanos());
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{base}Z")
    } else {
        format!("{base}.{frac}Z")
    }
}

/// A body from the chunks a blocking producer sends.
pub(crate) fn channel_stream(
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok(axum::body::Bytes::from(b)), rx))
    })
}

/// `stats` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct StatsQuery {
    stream: Option<String>,
    #[serde(rename = "one-shot")]
    one_shot: Option<String>,
}

/// One reading and when it was taken.
type Reading = (DateTime<Utc>, StatsSample);

fn cpu_doc(r: Option<&Reading>) -> Value {
    let Some((_, s)) = r else {
        return json!({
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        });
    };
    let cg = &s.cgroup;
    let mut usage = json!({
        "total_usage": s.cpu_ns,
        "usage_in_kernelmode": cg.cpu_system_ns,
        "usage_in_usermode": cg.cpu_user_ns,
    });
    if !cg.cpu_percpu_ns.is_empty() {
        usage["percpu_usage"] = json!(cg.cpu_percpu_ns);
    }
    json!({
        "cpu_usage": usage,
        "system_cpu_usage": s.system_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": cg.throttling.periods,
            "throttled_periods": cg.throttling.throttled_periods,
            "throttled_time": cg.throttling.throttled_time_ns,
        },
    })
}

/// `memory_stats` (Go's `omitempty` on every field: zeros are left out).
fn memory_doc(s: &StatsSample) -> Value {
    let cg = &s.cgroup;
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        if v != json!(0) {
            m.insert(k.into(), v);
        }
    };
    put("usage", json!(s.mem_usage + s.mem_inactive_file));
    put("max_usage", json!(cg.memory_max_usage.unwrap_or(0)));
    if !cg.memory_stat.is_empty() {
        put("stats", json!(cg.memory_stat));
    }
    put("failcnt", json!(cg.memory_failcnt));
    put("limit", json!(s.mem_limit));
    Value::Object(m)
}

/// `blkio_stats`: dockerd's eight lists, `null` where the hierarchy has
/// none (all of them for a container that does not run).
fn blkio_doc(s: Option<&StatsSample>) -> Value {
    let b = s.map(|s| s.cgroup.blkio.clone()).unwrap_or_default();
    let list = |l: &Option<Vec<engine::container::ops::BlkioEntry>>| match l {
        None => Value::Null,
        Some(l) => l
            .iter()
            .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
            .collect(),
    };
    json!({
        "io_service_bytes_recursive": list(&b.io_service_bytes_recursive),
        "io_serviced_recursive": list(&b.io_serviced_recursive),
        "io_queue_recursive": list(&b.io_queue_recursive),
        "io_service_time_recursive": list(&b.io_service_time_recursive),
        "io_wait_time_recursive": list(&b.io_wait_time_recursive),
        "io_merged_recursive": list(&b.io_merged_recursive),
        "io_time_recursive": list(&b.io_time_recursive),
        "sectors_recursive": list(&b.sectors_recursive),
    })
}

/// dockerd's stats document: `now` is `None` for a container that is not
/// running (dockerd's zero document), `pre` the reading before.
fn stats_doc(c: &Container, now: Option<&Reading>, pre: Option<&Reading>) -> Value {
    let mut doc = json!({
        "read": go_time(now.map(|r| r.0)),
        "preread": go_time(pre.map(|r| r.0)),
        "pids_stats": {},
        "blkio_stats": blkio_doc(now.map(|r| &r.1)),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_doc(now),
        "precpu_stats": cpu_doc(pre),
        "memory_stats": {},
        "name": format!("/{}", c.name()),
        "id": c.id().as_str(),
    });
    if let Some((_, s)) = now {
        doc["pids_stats"] = json!({"current": s.pids});
        doc["memory_stats"] = memory_doc(s);
        if !s.networks.is_empty() {
            let nets: serde_json::Map<String, Value> = s
                .networks
                .iter()
                .map(|(name, n)| {
                    (
                        name.clone(),
                        json!({
                            "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets,
                            "rx_errors": n.rx_errors, "rx_dropped": n.rx_dropped,
                            "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
                            "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
                        }),
                    )
                })
                .collect();
            doc["networks"] = Value::Object(nets);
        }
    }
    doc
}

/// A reading of `c` if it runs.
fn read(e: &Engine, c: &Container) -> Option<Reading> {
    if !c.is_running() {
        return None;
    }
    e.stats_sample(c).ok().map(|s| (Utc::now(), s))
}

/// How long apart dockerd's readings are.
const INTERVAL: Duration = Duration::from_secs(1);

/// `GET /containers/{id}/stats`: with `stream=false` one document (two
/// readings a second apart, or one with `one-shot`); else one a second
/// until the container stops or the client goes.
pub(crate) async fn stats(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let stream = q.stream.is_none() || truthy(&q.stream);
    let one_shot = truthy(&q.one_shot);
    if one_shot && stream {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    if !stream {
        let doc = st
            .engine(move |e| {
                let c = e.container(&id)?;
                let first = read(e, &c);
                if one_shot || first.is_none() {
                    return Ok(stats_doc(&c, first.as_ref(), None));
                }
                std::thread::sleep(INTERVAL);
                let c = e.container(&id)?;
                let second = read(e, &c);
                Ok(match second {
                    Some(s) => stats_doc(&c, Some(&s), first.as_ref()),
                    None => stats_doc(&c, None, None),
                })
            })
            .await?;
        return Ok(Json(doc).into_response());
    }
    let c = st.engine(move |e| Ok(e.container(&id)?)).await?;
    let paths = st.paths.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::Builder::new()
        .name("berth-stats".into())
        .spawn(move || {
            let Ok(e) = Engine::open((*paths).clone()) else {
                return;
            };
            let running = c.is_running();
            let mut pre: Option<Reading> = None;
            loop {
                let Ok(c) = e.container(c.id().as_str()) else {
                    return;
                };
                let now = read(&e, &c);
                if running && now.is_none() {
                    return;
                }
                let mut line = serde_json::to_vec(&stats_doc(&c, now.as_ref(), pre.as_ref()))
                    .unwrap_or_default();
                line.push(b'\n');
                if tx.blocking_send(line).is_err() {
                    return;
                }
                pre = now;
                // Sleep in steps, to notice a client that went.
                for _ in 0..10 {
                    if tx.is_closed() {
                        return;
                    }
                    std::thread::sleep(INTERVAL / 10);
                }
            }
        })
        .map_err(|e| ApiError::internal(format!("starting the stats follower: {e}")))?;
    // dockerd's stream has no Content-Type (recorded).
    Response::builder()
        .status(StatusCode::OK)
        .body(axum::body::Body::from_stream(
            st.stopping.cut(channel_stream(rx)),
        ))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `top` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct TopQuery {
    ps_args: Option<String>,
}

/// `GET /containers/{id}/top?ps_args=`: `{"Processes": […], "Titles": […]}`.
pub(crate) async fn top(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TopQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let c = e.container(&id)?;
        let t = e.top(&c, q.ps_args.as_deref().unwrap_or(""))?;
        Ok(Json(json!({"Processes": t.processes, "Titles": t.titles})))
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_as_go_writes_them() {
        use chrono::DateTime;
        assert_eq!(super::go_time(None), "0001-01-01T00:00:00Z");
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(super::go_time(Some(t)), "2023-11-14T22:13:20Z");
        let t = DateTime::from_timestamp(1_796_544_457, 970_615_340).unwrap();
        assert_eq!(super::go_time(Some(t)), "2026-12-06T08:07:37.97061534Z");
    }
}
