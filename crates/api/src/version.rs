//! `/v1.41/containers/json` and `/containers/json` alike: the version
//! prefix is checked against what berth speaks and taken off before
//! routing; every answer carries dockerd's headers.
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The API version a request asked for (none: the newest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ApiVersion(pub(crate) (u32, u32));

/// `1.44` → (1, 44).
fn parse(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Strip and check the version prefix, route, add the headers.
pub(crate) async fn versioned(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some((ver, tail)) = path
        .strip_prefix("/v")
        .and_then(|r| r.split_once('/'))
        .filter(|(v, _)| parse(v).is_some())
    {
        let asked = parse(ver).unwrap_or_default();
        let max = parse(engine::about::API_VERSION).unwrap_or_default();
        let min = parse(engine::about::MIN_API_VERSION).unwrap_or_default();
        if asked > max {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {ver} is too new. Maximum supported API version is {}",
                    engine::about::API_VERSION
                ))
                .into_response(),
            );
        }
        if asked < min {
            return with_headers(
                ApiError::bad_request(format!(
                    "client version {ver} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                    engine::about::MIN_API_VERSION
                ))
                .into_response(),
            );
        }
        req.extensions_mut().insert(ApiVersion(asked));
        let rest = match req.uri().query() {
            Some(q) => format!("/{tail}?{q}"),
            None => format!("/{tail}"),
        };
        if let Ok(uri) = rest.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    if let Some(path) = link_name_path(req.uri().path()) {
        let rest = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(uri) = rest.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    with_headers(json_errors(next.run(req).await).await)
}

/// `/containers/app/db/json`: a container named by a link name
/// (`app/db`), as dockerd's `{name:.*}` routes take it; its slash escaped
/// so the ordinary route sees one name.
fn link_name_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/containers/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [parent, alias, verb] if !parent.is_empty() && !alias.is_empty() => {
            Some(format!("/containers/{parent}%2F{alias}/{verb}"))
        }
        _ => None,
    }
}

/// axum's own rejections (a body over the limit, a query that does not
/// parse) come as plain text: clients expect dockerd's `{"message": …}`.
async fn json_errors(r: Response) -> Response {
    let content_type = r
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let plain = content_type.is_none_or(|v| v.starts_with("text/plain"));
    if !(r.status().is_client_error() || r.status().is_server_error()) || !plain {
        return r;
    }
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&body).trim().to_string();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
    }
    ApiError::new(status, message).into_response()
}

/// dockerd's headers on every answer.
fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(engine::about::API_VERSION),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("berth/{} (linux)", engine::about::VERSION)) {
        h.insert("Server", v);
    }
    r
}

#[cfg(test)]
mod link_path_tests {
    #[test]
    fn link_names_in_container_paths() {
        assert_eq!(
            super::link_name_path("/containers/app/db/json").as_deref(),
            Some("/containers/app%2Fdb/json")
        );
        assert_eq!(super::link_name_path("/containers/app/json"), None);
        assert_eq!(super::link_name_path("/images/a/b/json"), None);
    }
}
