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
    let Some(name) = rest.strip_suffix("/json").map(str::to_string) else {
        return Err(crate::error::no_route().await);
    };
    st.engine(move |e| Ok(Json(e.inspect_image(&name)?))).await
}
