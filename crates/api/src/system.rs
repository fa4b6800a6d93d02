//! `/_ping`, `/version`, `/info`.
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

use crate::{ApiError, AppState};

/// `GET|HEAD /_ping`: `OK`, and the headers clients negotiate with.
pub(crate) async fn ping() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // The classic builder's protocol (BuildKit sessions: not yet).
            (header::HeaderName::from_static("builder-version"), "1"),
        ],
        "OK",
    )
}

/// `GET /version`: the server half of `docker version`.
pub(crate) async fn version(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.engine(|e| {
        serde_json::to_value(e.version().server)
            .map(Json)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}

/// `GET /info`.
pub(crate) async fn info(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.engine(|e| {
        let info = e.info()?;
        serde_json::to_value(info)
            .map(Json)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}
