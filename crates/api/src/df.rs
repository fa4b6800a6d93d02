//! `GET /system/df`: dockerd's disk usage document.
//!
//! Recorded from dockerd 20.10 (API 1.41): `LayersSize`; `Images` as
//! `/images/json` entries with `Containers` and `SharedSize` filled in and
//! `RepoDigests`/`Labels` `null` when empty; `Containers` as
//! `/containers/json` entries with `SizeRw` (left out when 0) and
//! `SizeRootFs` after `Ports`; `Volumes` as volume documents with
//! `UsageData: {RefCount, Size}`; `BuildCache` `null` when empty;
//! `BuilderSize`. `?type=` (API 1.42) is ignored by 20.10: all parts.
use axum::extract::State;
use axum::Json;
use engine::disk_usage::DiskUsageParts;
use serde_json::{json, Map, Value};

use crate::{ApiError, AppState};

fn or_null<T: serde::Serialize>(v: &[T]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

/// `?type=container&type=image…`: the parts asked for (all when none).
fn parts(query: Option<&str>) -> Result<DiskUsageParts, ApiError> {
    let types: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("type="))
        .map(str::to_string)
        .collect();
    if types.is_empty() {
        return Ok(DiskUsageParts::default());
    }
    let mut p = DiskUsageParts {
        images: false,
        containers: false,
        volumes: false,
        build_cache: false,
    };
    for t in &types {
        match t.as_str() {
            "image" => p.images = true,
            "container" => p.containers = true,
            "volume" => p.volumes = true,
            "build-cache" => p.build_cache = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown object type: {other}"
                )))
            }
        }
    }
    Ok(p)
}

/// `GET /system/df`.
pub(crate) async fn df(
    State(st): State<AppState>,
    uri: axum::http::Uri,
) -> Result<Json<Value>, ApiError> {
    let parts = parts(uri.query())?;
    st.engine(move |e| {
        let du = e.disk_usage(parts)?;
        let mut doc = Map::new();
        if let Some(n) = du.layers_size {
            doc.insert("LayersSize".into(), json!(n));
        }
        doc.insert(
            "Images".into(),
            du.images.as_ref().map_or(Value::Null, |list| {
                Value::Array(
                    list.iter()
                        .map(|u| {
                            let img = &u.image;
                            json!({
                                "Containers": u.containers,
                                "Created": img.created.map(|t| t.timestamp()).unwrap_or(0),
                                "Id": img.id.to_string(),
                                "Labels": if img.labels.is_empty() { Value::Null } else { json!(img.labels) },
                                "ParentId": "",
                                "RepoDigests": or_null(&img.repo_digests),
                                "RepoTags": or_null(&img.repo_tags.iter().map(|r| r.familiar()).collect::<Vec<_>>()),
                                "SharedSize": u.shared_size,
                                "Size": u.size,
                                "VirtualSize": u.size,
                            })
                        })
                        .collect(),
                )
            }),
        );
        doc.insert(
            "Containers".into(),
            du.containers.as_ref().map_or(Value::Null, |list| {
                let cs: Vec<_> = list.iter().map(|u| u.container.clone()).collect();
                let summaries = e.container_summaries(&cs);
                Value::Array(
                    list.iter()
                        .zip(summaries)
                        .map(|(u, s)| {
                            let mut out = Map::new();
                            for (k, v) in s.as_object().cloned().unwrap_or_default() {
                                let ports = k == "Ports";
                                out.insert(k, v);
                                if ports {
                                    if u.size_rw > 0 {
                                        out.insert("SizeRw".into(), json!(u.size_rw));
                                    }
                                    out.insert("SizeRootFs".into(), json!(u.size_root_fs));
                                }
                            }
                            Value::Object(out)
                        })
                        .collect(),
                )
            }),
        );
        doc.insert(
            "Volumes".into(),
            du.volumes.as_ref().map_or(Value::Null, |list| {
                Value::Array(
                    list.iter()
                        .map(|u| {
                            let mut v = engine::volumes::inspect_volume(
                                &u.volume,
                                &e.volume_mountpoint(&u.volume.name),
                            );
                            v["UsageData"] = json!({"RefCount": u.ref_count, "Size": u.size});
                            v
                        })
                        .collect(),
                )
            }),
        );
        let cache = du.build_cache.unwrap_or_default();
        doc.insert(
            "BuildCache".into(),
            if cache.is_empty() {
                Value::Null
            } else {
                Value::Array(
                    cache
                        .iter()
                        .map(|c| {
                            json!({
                                "ID": c.id.trim_start_matches("sha256:"),
                                "Parent": "",
                                "Type": "regular",
                                "Description": "berth build cache",
                                "InUse": false,
                                "Shared": c.shared,
                                "Size": c.size,
                                "CreatedAt": crate::stats::go_time(c.created),
                                "LastUsedAt": null,
                                "UsageCount": 0,
                            })
                        })
                        .collect(),
                )
            },
        );
        doc.insert(
            "BuilderSize".into(),
            json!(cache.iter().map(|c| c.size).sum::<u64>()),
        );
        Ok(Json(Value::Object(doc)))
    })
    .await
}
