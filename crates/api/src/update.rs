//! `POST /containers/{id}/update` and `POST /containers/prune`.
//!
//! Recorded from dockerd 20.10: update answers `{"Warnings":null}`; the
//! docker CLI sends every resource field, 0 (or `null`) for the ones not
//! given, which leave the setting as it is; a bad policy is a 400
//! `invalid restart policy 'bogus'`. Prune answers
//! `{"ContainersDeleted":[…] or null,"SpaceReclaimed":N}`; an unknown
//! filter is a 400 `Invalid filter 'bogus'`.
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{ApiError, AppState};

/// The body of `update` (dockerd's `UpdateConfig`): the fields berth
/// applies.
#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartBody>,
    cpuset_cpus: String,
    cpuset_mems: String,
    blkio_weight: u16,
}

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase", default)]
struct RestartBody {
    name: String,
    maximum_retry_count: i64,
}

impl UpdateBody {
    fn into_request(self) -> Result<engine::container::ops::UpdateRequest, ApiError> {
        let restart = match self.restart_policy {
            Some(r) if !r.name.is_empty() => {
                let spec = if r.name == "on-failure" && r.maximum_retry_count > 0 {
                    format!("on-failure:{}", r.maximum_retry_count)
                } else {
                    r.name.clone()
                };
                Some(engine::restart::RestartPolicy::parse(&spec).map_err(|_| {
                    ApiError::bad_request(format!("invalid restart policy '{}'", r.name))
                })?)
            }
            _ => None,
        };
        Ok(engine::container::ops::UpdateRequest {
            memory: (self.memory > 0).then_some(self.memory as u64),
            memory_swap: (self.memory_swap != 0).then_some(self.memory_swap),
            cpus: (self.nano_cpus > 0).then(|| self.nano_cpus as f64 / 1e9),
            cpu_shares: (self.cpu_shares > 0).then_some(self.cpu_shares as u64),
            pids_limit: self.pids_limit,
            restart,
            cpuset_cpus: (!self.cpuset_cpus.is_empty()).then_some(self.cpuset_cpus),
            cpuset_mems: (!self.cpuset_mems.is_empty()).then_some(self.cpuset_mems),
            blkio_weight: (self.blkio_weight > 0).then_some(self.blkio_weight),
        })
    }
}

/// `POST /containers/{id}/update` (reached through the
/// `/containers/{id}/{verb}` dispatcher).
pub(crate) async fn update(
    st: AppState,
    id: String,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: UpdateBody = crate::error::json_body(&body)?;
    let req = b.into_request()?;
    st.engine(move |e| {
        let warnings = req.warnings()?;
        e.update(&id, &req)?;
        // dockerd's: null without warnings.
        Ok(Json(if warnings.is_empty() {
            json!({ "Warnings": null })
        } else {
            json!({ "Warnings": warnings })
        }))
    })
    .await
}

/// `prune` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct PruneQuery {
    filters: Option<String>,
}

/// `POST /containers/prune?filters=`.
pub(crate) async fn prune(
    State(st): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            engine::container::prune::PRUNE_FILTERS,
        )?;
        let r = e.prune_containers(&f)?;
        Ok(Json(json!({
            "ContainersDeleted": if r.deleted.is_empty() { Value::Null } else { json!(r.deleted) },
            "SpaceReclaimed": r.reclaimed,
        })))
    })
    .await
}
