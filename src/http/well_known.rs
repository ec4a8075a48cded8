//! The `.well-known` documents of each key set: JWKS and OpenID discovery, served from bytes
//! rendered once per key change, with `ETag`, `Cache-Control` and 304 on `If-None-Match`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::AppState;
use crate::keys::KeySetName;
use crate::keys::jwks::Rendered;

/// Verifiers may cache keys for five minutes; a new key is published before it signs.
const CACHE: HeaderValue = HeaderValue::from_static("public, max-age=300");

#[derive(Debug, Clone, Copy)]
pub enum Document {
    Jwks,
    Discovery,
}

pub async fn serve(
    State(state): State<AppState>,
    headers: HeaderMap,
    set: KeySetName,
    document: Document,
) -> Response {
    let keys = state.keys.current();
    let key_set = keys.set(set);
    let rendered = match document {
        Document::Jwks => &key_set.jwks,
        Document::Discovery => &key_set.discovery,
    };
    respond(rendered, &headers)
}

fn respond(rendered: &Rendered, request: &HeaderMap) -> Response {
    let mut response = conditional(request, &rendered.body, &rendered.etag, "application/json");
    response.headers_mut().insert(CACHE_CONTROL, CACHE);
    response
}

/// A document rendered once, answered to a (conditional) GET: 304 when `If-None-Match` matches
/// `etag`, else `body` as `content_type`; the `ETag` on both.
pub(super) fn conditional(
    request: &HeaderMap,
    body: &Bytes,
    etag: &HeaderValue,
    content_type: &'static str,
) -> Response {
    let not_modified = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|value| etag_matches(value, etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.clone().into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    response.headers_mut().insert(ETAG, etag.clone());
    response
}

/// `If-None-Match` uses the weak comparison (RFC 9110 section 13.1.2): `*`, or any listed tag
/// equal to ours with or without `W/`.
fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let ours = etag.as_bytes();
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_uses_weak_comparison_over_a_list() {
        let etag = HeaderValue::from_static("\"abc\"");
        for (header, matches) in [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", \"abc\"", true),
            ("*", true),
            ("\"abd\"", false),
            ("abc", false),
            ("", false),
        ] {
            assert_eq!(
                etag_matches(&HeaderValue::from_static(header), &etag),
                matches,
                "{header}"
            );
        }
    }
}
