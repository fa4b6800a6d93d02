//! The error codes and bodies of the OCI Distribution Specification
//! (<https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes>),
//! with the statuses distribution (Docker's registry 2.8) answers them
//! with, and its extra codes (`RANGE_INVALID`, `PAGINATION_NUMBER_INVALID`,
//! `UNKNOWN`) where the spec names none.
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error code of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A blob this repository does not have.
    BlobUnknown,
    /// The upload failed (a broken or refused body).
    BlobUploadInvalid,
    /// No such upload (finished, cancelled, or never begun here).
    BlobUploadUnknown,
    /// The content does not match the digest given.
    DigestInvalid,
    /// A manifest names a blob or manifest this repository does not have.
    ManifestBlobUnknown,
    /// The manifest is malformed or not a kind this registry keeps.
    ManifestInvalid,
    /// No such manifest (tag or digest).
    ManifestUnknown,
    /// The repository name breaks the spec's grammar.
    NameInvalid,
    /// No such repository.
    NameUnknown,
    /// The content's length does not match what was declared.
    SizeInvalid,
    /// Authentication needed.
    Unauthorized,
    /// Access refused.
    Denied,
    /// The operation is not enabled on this registry.
    Unsupported,
    /// Rate limited.
    TooManyRequests,
    /// A chunk out of order (distribution's code).
    RangeInvalid,
    /// `n` is not a number (distribution's code).
    PaginationNumberInvalid,
    /// The registry failed (distribution's code).
    Unknown,
}

impl Code {
    /// The code as the body spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The status distribution answers the code with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::PaginationNumberInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The spec's message for the code.
    pub fn message(self) -> &'static str {
        match self {
            Code::BlobUnknown => "blob unknown to registry",
            Code::BlobUploadInvalid => "blob upload invalid",
            Code::BlobUploadUnknown => "blob upload unknown to registry",
            Code::DigestInvalid => "provided digest did not match uploaded content",
            Code::ManifestBlobUnknown => {
                "manifest references a manifest or blob unknown to registry"
            }
            Code::ManifestInvalid => "manifest invalid",
            Code::ManifestUnknown => "manifest unknown to registry",
            Code::NameInvalid => "invalid repository name",
            Code::NameUnknown => "repository name not known to registry",
            Code::SizeInvalid => "provided length did not match content length",
            Code::Unauthorized => "authentication required",
            Code::Denied => "requested access to the resource is denied",
            Code::Unsupported => "the operation is unsupported",
            Code::TooManyRequests => "too many requests",
            Code::RangeInvalid => "invalid content range",
            Code::PaginationNumberInvalid => "invalid number of results requested",
            Code::Unknown => "unknown error",
        }
    }
}

/// An error answer: a status, one spec error in the body, extra headers.
#[derive(Debug)]
pub struct ApiError {
    /// The code.
    pub code: Code,
    /// The status (the code's unless overridden: 413 for a huge manifest).
    pub status: StatusCode,
    /// What was wrong and what to do (the spec's message when `None`).
    pub message: Option<String>,
    /// The spec's free-form `detail`.
    pub detail: Option<Box<serde_json::Value>>,
    /// Extra headers (`Range` on a 416, `WWW-Authenticate` on a 401).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// `code` with the spec's message and status.
    pub fn new(code: Code) -> ApiError {
        ApiError {
            code,
            status: code.status(),
            message: None,
            detail: None,
            headers: Vec::new(),
        }
    }

    /// Say what was wrong, in words.
    pub fn msg(mut self, message: impl Into<String>) -> ApiError {
        self.message = Some(message.into());
        self
    }

    /// The spec's `detail`.
    pub fn detail(mut self, detail: serde_json::Value) -> ApiError {
        self.detail = Some(Box::new(detail));
        self
    }

    /// Another status than the code's.
    pub fn status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// An extra header.
    pub fn header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// The registry's own failure (I/O), logged once here.
    pub fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!("{what}: {e}");
        ApiError::new(Code::Unknown).msg(format!("{what}: {e}"))
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut e = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message.as_deref().unwrap_or(self.code.message()),
        });
        if let Some(d) = &self.detail {
            e["detail"] = (**d).clone();
        }
        serde_json::json!({ "errors": [e] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut r = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        for (k, v) in self.headers {
            r.headers_mut().append(k, v);
        }
        r
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_spec_shape() {
        let e =
            ApiError::new(Code::DigestInvalid).detail(serde_json::json!({"digest": "sha256:00"}));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            serde_json::json!({"errors": [{"code": "DIGEST_INVALID", "message": "provided digest did not match uploaded content", "detail": {"digest": "sha256:00"}}]})
        );
        assert_eq!(ApiError::new(Code::RangeInvalid).status.as_u16(), 416);
        assert_eq!(ApiError::new(Code::Unsupported).status.as_u16(), 405);
    }
}
