//! `/images/…`.
use axum::extract::{Path, Query, State};
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
                "RepoTags": img.repo_tags.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "SharedSize": -1,
                "Size": img.size,
                "VirtualSize": img.size,
            }));
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// `/images/{name}/json` (a name may hold slashes: `library/busybox`).
pub(crate) async fn by_name(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(name) = rest.strip_suffix("/history").map(str::to_string) {
        return st.engine(move |e| history(e, &name).map(Json)).await;
    }
    let Some(name) = rest.strip_suffix("/json").map(str::to_string) else {
        return Err(crate::error::no_route().await);
    };
    st.engine(move |e| Ok(Json(e.inspect_image(&name)?))).await
}

/// `tag` parameters.
#[derive(Deserialize, Default)]
pub(crate) struct TagQuery {
    repo: Option<String>,
    tag: Option<String>,
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub(crate) async fn post_by_name(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    Query(q): Query<TagQuery>,
) -> Result<axum::http::StatusCode, ApiError> {
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
        Ok(axum::http::StatusCode::CREATED)
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
                    engine::image::RemoveEvent::Untagged(r) => json!({"Untagged": r.to_string()}),
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
                let tags: Vec<String> = img.repo_tags.iter().map(|r| r.to_string()).collect();
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
