//! `/images/…`.
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::containers::truthy;
use crate::{ApiError, AppState};

/// `GET /images/json` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    all: Option<String>,
    filters: Option<String>,
}

/// `GET /images/json`: newest first, as `images`.
pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            engine::filters::IMAGE_FILTERS,
        )?;
        let mut out = Vec::new();
        for img in e.list_images(truthy(&q.all), &f)? {
            let doc = e.inspect_image(&img.id.to_string())?;
            let created = img.created.map(|t| t.timestamp()).unwrap_or(0);
            out.push(json!({
                "Containers": -1,
                "Created": created,
                "Id": img.id.to_string(),
                "Labels": if img.labels.is_empty() { Value::Null } else { json!(img.labels) },
                "ParentId": doc["Parent"],
                "RepoDigests": img.repo_digests,
                "RepoTags": img.repo_tags.iter().map(|r| r.familiar()).collect::<Vec<_>>(),
                "SharedSize": -1,
                "Size": img.size,
                "VirtualSize": img.size,
            }));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `/images/{name}/json|history|get` (a name may hold slashes:
/// `library/busybox`).
pub(crate) async fn by_name(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/history").map(str::to_string) {
        return st
            .engine(move |e| history(e, &name).map(Json))
            .await
            .map(IntoResponse::into_response);
    }
    if let Some(name) = rest.strip_suffix("/get").map(str::to_string) {
        return crate::image_archive::save(st, vec![name]).await;
    }
    let Some(name) = rest.strip_suffix("/json").map(str::to_string) else {
        return Err(crate::error::no_route().await);
    };
    st.engine(move |e| Ok(Json(e.inspect_image(&name)?)))
        .await
        .map(IntoResponse::into_response)
}

/// `tag` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct TagQuery {
    repo: Option<String>,
    tag: Option<String>,
}

/// `POST /images/{name}/tag?repo=&tag=` and `/images/{name}/push?tag=`.
pub(crate) async fn post_by_name(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    Query(q): Query<TagQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/push").map(str::to_string) {
        return crate::distribution::push(st, name, q.tag, headers).await;
    }
    let Some(name) = rest.strip_suffix("/tag").map(str::to_string) else {
        return Err(crate::error::no_route().await);
    };
    st.engine(move |e| {
        let img = e.image(&name)?;
        let repo = q.repo.unwrap_or_default();
        let full = match q.tag.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo,
        };
        let r: model::Reference = full
            .parse()
            .map_err(|err| ApiError::bad_request(format!("invalid reference format: {err}")))?;
        e.tag_image(&img.id, &r)?;
        Ok(axum::http::StatusCode::CREATED.into_response())
    })
    .await
}

/// `DELETE /images/{name}` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct RemoveQuery {
    force: Option<String>,
}

/// `DELETE /images/{name}`: what was untagged and deleted.
pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let events = e.remove_image(&name, truthy(&q.force))?;
        Ok(Json(Value::Array(
            events
                .iter()
                .map(|ev| match ev {
                    engine::image::RemoveEvent::Untagged(r) => json!({"Untagged": r.familiar()}),
                    engine::image::RemoveEvent::Deleted(d) => json!({"Deleted": d.to_string()}),
                })
                .collect(),
        )))
    })
    .await
}

/// `GET /images/{name}/history`: newest first; only the top has an id.
fn history(e: &engine::Engine, name: &str) -> Result<Value, ApiError> {
    let img = e.image(name)?;
    let entries = e.image_history(&img.id)?;
    Ok(Value::Array(
        entries
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let tags: Vec<String> = img.repo_tags.iter().map(|r| r.familiar()).collect();
                json!({
                    "Id": if i == 0 { img.id.to_string() } else { "<missing>".to_string() },
                    "Created": h.created.map(|t| t.timestamp()).unwrap_or(0),
                    "CreatedBy": h.created_by,
                    "Tags": if i == 0 && !tags.is_empty() { json!(tags) } else { Value::Null },
                    "Size": h.size,
                    "Comment": h.comment,
                })
            })
            .collect(),
    ))
}

/// `POST /images/prune` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct PruneQuery {
    filters: Option<String>,
}

/// `POST /images/prune?filters=`: dangling images (`dangling=false`:
/// every unused one), of those the `label` and `until` filters pick.
pub(crate) async fn prune(
    State(st): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> Result<Json<Value>, ApiError> {
    st.engine(move |e| {
        let f = engine::filters::Filters::from_json(
            q.filters.as_deref().unwrap_or(""),
            &["dangling", "label", "label!", "until"],
        )?;
        let all = f.boolean("dangling")? == Some(false);
        let until = match f.values("until").next() {
            Some(u) => Some(until_time(u)?),
            None => None,
        };
        let before = e.image_records()?;
        let report = e.prune_images_where(all, |img| {
            let labels_ok = f.labels("label", &img.labels)
                && (!f.contains("label!") || !label_match(&f, &img.labels));
            let time_ok = match (until, img.created) {
                (Some(u), Some(c)) => c < u,
                _ => true,
            };
            labels_ok && time_ok
        })?;
        let mut deleted = Vec::new();
        for id in &report.deleted {
            if let Some(img) = before.iter().find(|i| &i.id == id) {
                for t in &img.repo_tags {
                    deleted.push(json!({"Untagged": t.familiar()}));
                }
                for d in &img.repo_digests {
                    deleted.push(json!({"Untagged": d}));
                }
            }
            deleted.push(json!({"Deleted": id.to_string()}));
        }
        Ok(Json(json!({
            "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
            "SpaceReclaimed": report.reclaimed,
        })))
    })
    .await
}

/// Does any `label!` filter match `labels`?
fn label_match(
    f: &engine::filters::Filters,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    f.values("label!").any(|want| match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(want),
    })
}

/// An `until` value: a Unix time, an RFC 3339 time or a duration before
/// now (`24h`, `90m`, `30s`).
fn until_time(u: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid filter 'until={u}'"));
    if let Ok(secs) = u.parse::<f64>() {
        return chrono::DateTime::from_timestamp(secs as i64, 0).ok_or_else(bad);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(u) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let (num, unit) = u.split_at(u.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    Ok(chrono::Utc::now() - chrono::Duration::milliseconds((secs * 1000.0) as i64))
}
