//! Listings: a repository's tags, the catalog (both with `n`/`last`
//! pagination and a `Link` header to the next page, in lexical order as
//! distribution), and the referrers API (an OCI image index of the
//! manifests whose `subject` is a digest, filtered by `artifactType`).
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::{ApiError, ApiResult, Code};
use super::manifests::OCI_INDEX;
use super::storage::Name;
use super::{query_param, AppState};

/// `n` (how many at most) and `last` (start after it) from the query.
fn page_args(query: Option<&str>) -> ApiResult<(Option<usize>, Option<String>)> {
    let n = match query_param(query, "n") {
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(Code::PaginationNumberInvalid)
                .msg(format!("n={s:?} is not a number of results"))
                .detail(serde_json::json!({ "n": s }))
        })?),
        None => None,
    };
    Ok((n, query_param(query, "last").filter(|l| !l.is_empty())))
}

/// The page of sorted `items` after `last`, at most `n`; and the `last`
/// of the next page's link when more remain.
fn page(items: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, Option<String>) {
    let rest: Vec<String> = match last {
        Some(l) => items.into_iter().filter(|i| i.as_str() > l).collect(),
        None => items,
    };
    match n {
        Some(n) if rest.len() > n => {
            let page: Vec<String> = rest.into_iter().take(n).collect();
            let next = if n > 0 { page.last().cloned() } else { None };
            (page, next)
        }
        _ => (rest, None),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(header::LINK, l);
    }
    r
}

/// GET `/v2/<name>/tags/list`.
pub(crate) fn list(st: &Arc<AppState>, name: &Name, query: Option<&str>) -> ApiResult<Response> {
    let (n, last) = page_args(query)?;
    let tags = st
        .storage
        .tags(name)
        .map_err(|e| ApiError::internal("listing tags", e))?
        .ok_or_else(|| {
            ApiError::new(Code::NameUnknown)
                .msg(format!("repository {name} not found"))
                .detail(serde_json::json!({ "name": name.as_str() }))
        })?;
    let (tags, next) = page(tags, n, last.as_deref());
    let link = next.map(|l| {
        format!(
            "</v2/{name}/tags/list?last={}&n={}>; rel=\"next\"",
            encode(&l),
            n.unwrap_or(0)
        )
    });
    Ok(json_page(
        serde_json::json!({ "name": name.as_str(), "tags": tags }),
        link,
    ))
}

/// GET `/v2/_catalog`.
pub(crate) fn catalog(st: &Arc<AppState>, query: Option<&str>) -> ApiResult<Response> {
    let (n, last) = page_args(query)?;
    let repos = st
        .storage
        .repositories()
        .map_err(|e| ApiError::internal("listing repositories", e))?;
    let (repos, next) = page(repos, n, last.as_deref());
    let link = next.map(|l| {
        format!(
            "</v2/_catalog?last={}&n={}>; rel=\"next\"",
            encode(&l),
            n.unwrap_or(0)
        )
    });
    Ok(json_page(
        serde_json::json!({ "repositories": repos }),
        link,
    ))
}

/// GET `/v2/<name>/referrers/<digest>[?artifactType=…]`.
pub(crate) fn referrers(
    st: &Arc<AppState>,
    name: &Name,
    subject: &str,
    query: Option<&str>,
) -> ApiResult<Response> {
    let subject = super::blobs::parse_digest(subject)?;
    let filter = query_param(query, "artifactType").filter(|a| !a.is_empty());
    let mut found = st
        .storage
        .referrers(name, &subject)
        .map_err(|e| ApiError::internal("listing referrers", e))?;
    if let Some(f) = &filter {
        found.retain(|d| d.get("artifactType").and_then(|a| a.as_str()) == Some(f));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": found,
    });
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        r.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages() {
        let all = v(&["a", "b", "c", "d"]);
        assert_eq!(
            page(all.clone(), Some(2), None),
            (v(&["a", "b"]), Some("b".into()))
        );
        assert_eq!(
            page(all.clone(), Some(2), Some("b")),
            (v(&["c", "d"]), None)
        );
        assert_eq!(page(all.clone(), None, Some("c")), (v(&["d"]), None));
        assert_eq!(page(all.clone(), Some(0), None), (v(&[]), None));
        assert_eq!(page(all, Some(10), Some("zz")), (v(&[]), None));
    }
}
