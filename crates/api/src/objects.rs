//! `/networks/…` and `/volumes/…`.
use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::containers::truthy;
use crate::{ApiError, AppState};

/// A `filters` parameter.
#[derive(Deserialize, Default)]
pub(crate) struct FilterQuery {
    filters: Option<String>,
}

/// `GET /networks`.
pub(crate) async fn networks(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        e.default_network()?;
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            engine::filters::NETWORK_FILTERS,
        )?;
        let list = e.list_networks(&f)?;
        Ok(Json(Value::Array(
            list.iter().map(|n| e.inspect_network(n)).collect(),
        )))
    })
    .await
}

/// `GET /networks/{id}`.
pub(crate) async fn network(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let n = if id == "bridge" {
            e.default_network()?
        } else {
            e.network(&id)?
        };
        Ok(Json(e.inspect_network(&n)))
    })
    .await
}

/// `POST /networks/create`: made in a process of its own (see `ops.rs`).
pub(crate) async fn network_create(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: Value = crate::error::json_body(&body)?;
    let v = st.forked("network-create", body).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// `DELETE /networks/{id}`.
pub(crate) async fn network_remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        e.network_remove(&id)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /networks/{id}/connect` and `/disconnect`.
pub(crate) async fn network_connect(
    State(st): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let body: Value = crate::error::json_body(&body)?;
    let op = match verb.as_str() {
        "connect" => "network-connect",
        "disconnect" => "network-disconnect",
        _ => return Err(crate::error::no_route().await),
    };
    st.forked(op, json!({"id": id, "body": body})).await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/create`'s body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct NetworkBody {
    name: String,
    driver: String,
    internal: bool,
    labels: Option<BTreeMap<String, String>>,
    options: Option<BTreeMap<String, String>>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: bool,
    attachable: bool,
    ingress: bool,
    scope: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct IpamBody {
    driver: String,
    config: Option<Vec<PoolBody>>,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct PoolBody {
    subnet: String,
    gateway: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

impl NetworkBody {
    /// The engine's request.
    pub(crate) fn into_request(self) -> Result<engine::networks::NetworkCreate, ApiError> {
        if self.name.is_empty() {
            return Err(ApiError::bad_request("network name is required"));
        }
        let some = |s: String| (!s.is_empty()).then_some(s);
        let ipam = self.ipam.unwrap_or_default();
        let pools = ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.subnet.is_empty())
            .map(|p| engine::networks::IpamPool {
                subnet: p.subnet,
                gateway: some(p.gateway),
                ip_range: some(p.ip_range),
                aux_addresses: p.auxiliary_addresses.unwrap_or_default(),
            })
            .collect();
        Ok(engine::networks::NetworkCreate {
            name: self.name,
            driver: some(self.driver),
            pools,
            internal: self.internal,
            labels: self.labels.unwrap_or_default(),
            options: self.options.unwrap_or_default(),
            enable_ipv6: self.enable_ipv6,
            ipam_driver: some(ipam.driver),
            ipam_options: ipam.options,
            attachable: self.attachable,
            scope: some(self.scope),
            ingress: self.ingress,
        })
    }
}

/// `GET /volumes`.
pub(crate) async fn volumes(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            engine::filters::VOLUME_FILTERS,
        )?;
        let list = e.list_volumes(&f)?;
        let docs: Vec<Value> = list
            .iter()
            .map(|v| engine::volumes::inspect_volume(v, &e.volume_mountpoint(&v.name)))
            .collect();
        Ok(Json(json!({"Volumes": docs, "Warnings": null})))
    })
    .await
}

/// `GET /volumes/{name}`.
pub(crate) async fn volume(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let v = e.volume(&name)?;
        Ok(Json(engine::volumes::inspect_volume(
            &v,
            &e.volume_mountpoint(&v.name),
        )))
    })
    .await
}

/// `POST /volumes/create`'s body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct VolumeBody {
    name: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`: 201 with the volume.
pub(crate) async fn volume_create(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: VolumeBody = crate::error::json_body(&body)?;
    if !b.driver.is_empty() && b.driver != "local" {
        // dockerd looks for a plugin of that name.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "error looking up volume plugin {0}: plugin \"{0}\" not found",
                b.driver
            ),
        ));
    }
    st.engine(move |e| {
        let v = e.volume_create(
            (!b.name.is_empty()).then_some(b.name.as_str()),
            (!b.driver.is_empty()).then_some(b.driver.as_str()),
            b.labels.unwrap_or_default(),
            b.driver_opts.unwrap_or_default(),
        )?;
        Ok((
            StatusCode::CREATED,
            Json(engine::volumes::inspect_volume(
                &v,
                &e.volume_mountpoint(&v.name),
            )),
        ))
    })
    .await
}

/// `DELETE /volumes/{name}` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct VolumeRemoveQuery {
    force: Option<String>,
}

/// `DELETE /volumes/{name}`.
pub(crate) async fn volume_remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<VolumeRemoveQuery>,
) -> Result<StatusCode, ApiError> {
    st.engine(move |e| {
        match e.volume_remove(&name) {
            Ok(_) => {}
            Err(err) if err.is_not_found() && truthy(&q.force) => {}
            Err(err) => return Err(err.into()),
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /networks/prune`: the unused networks removed.
pub(crate) async fn networks_prune(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.engine(|e| {
        let removed = e.network_prune()?;
        Ok(Json(json!({ "NetworksDeleted": removed })))
    })
    .await
}

/// `POST /volumes/prune`: from API 1.42 anonymous volumes only unless
/// `all=true` is among the filters; before, every unused volume (dockerd
/// 20.10 and its clients).
pub(crate) async fn volumes_prune(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
    version: Option<axum::Extension<crate::version::ApiVersion>>,
) -> Result<Json<Value>, ApiError> {
    let before_142 = version.is_some_and(|v| v.0 .0 < (1, 42));
    st.engine(move |e| {
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            &["all", "label"],
        )?;
        let all = before_142 || f.boolean("all")?.unwrap_or(false);
        let report = e.volume_prune(all, |v| f.labels("label", &v.labels))?;
        Ok(Json(json!({
            "VolumesDeleted": report.removed,
            "SpaceReclaimed": report.reclaimed,
        })))
    })
    .await
}

/// `GET /swarm` and the other swarm endpoints: dockerd's answer when it is
/// not in a swarm.
pub(crate) async fn no_swarm() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
    )
}

/// `POST /swarm/init` and `/swarm/join`: berth has no swarm mode (dockerd
/// would make or join one): 501 and a message saying so, not a 404 that
/// reads like a wrong path.
pub(crate) async fn swarm_unsupported() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "berth has no swarm mode: swarm init and join are not supported (run services with berth compose)",
    )
}

/// `POST /swarm/leave`: dockerd's 503 when the node is in no swarm (which
/// `docker swarm leave --force` and docker-py's `leave_swarm(force=True)`
/// take as done).
pub(crate) async fn swarm_leave() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "This node is not part of a swarm",
    )
}
