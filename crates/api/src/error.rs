//! Failures as dockerd answers them: a status and `{"message": "…"}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An answer other than success.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A failure with `status` and dockerd's `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// The server itself failed (500).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A bad parameter (400).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// dockerd's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<engine::EngineError> for ApiError {
    /// The one place an engine failure becomes an HTTP status.
    fn from(e: engine::EngineError) -> ApiError {
        let status = StatusCode::from_u16(e.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // 304 and 204 carry no body.
        if self.status == StatusCode::NOT_MODIFIED || self.status == StatusCode::NO_CONTENT {
            return self.status.into_response();
        }
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

/// A path no route takes: dockerd's 404 `page not found`.
pub(crate) async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "page not found")
}

/// A request's JSON body as `T`, read as dockerd's Go decoder reads it: a
/// `null` member is the member left out (its zero value), not a type
/// error, and an empty body is `{}`. Clients send nulls freely: docker-py
/// sends `"StopTimeout": null`, `"Labels": null`, `"IPAM": null`…
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut v: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    strip_nulls(&mut v);
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Remove every object member whose value is `null`, at any depth.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
