//! The `.well-known` documents of each key set: JWKS and OpenID discovery, served from bytes
//! rendered once per key change, with `ETag`, `Cache-Control` and 304 on `If-None-Match`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use super::state::AppState;
use crate::keys::KeySetName;
use crate::keys::jwks::Rendered;

/// Verifiers may cache keys for five minutes; a new key is published before it signs.
const CACHE: HeaderValue = HeaderValue::from_static("public, max-age=300");

/// Headers the router's layers add to every answer (`x-request-id`, `x-content-type-options`,
/// CORS's `access-control-expose-headers`, and `vary` where the answer has none) or a handler
/// adds after (`content-encoding`): room for them is made with the answer's own, so that the
/// header map is allocated once per answer, not grown.
const ADDED_LATER: usize = 4;

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
    respond(&state, &headers, set, document)
}

/// The key set and document served at `path`, if it is one of the `.well-known` paths.
pub(super) fn document_at(path: &str) -> Option<(KeySetName, Document)> {
    let rest = path.strip_prefix("/v1/access-tokens")?;
    let (prefix, document) = match rest.strip_suffix("/.well-known/jwks.json") {
        Some(prefix) => (prefix, Document::Jwks),
        None => (
            rest.strip_suffix("/.well-known/openid-configuration")?,
            Document::Discovery,
        ),
    };
    KeySetName::ALL
        .into_iter()
        .find(|set| set.path_prefix() == prefix)
        .map(|set| (set, document))
}

/// The answer to a (conditional) GET of `set`'s `document`.
pub(super) fn respond(
    state: &AppState,
    request: &HeaderMap,
    set: KeySetName,
    document: Document,
) -> Response {
    let keys = state.service().key_sets();
    let key_set = keys.set(set);
    let rendered: &Rendered = match document {
        Document::Jwks => &key_set.jwks,
        Document::Discovery => &key_set.discovery,
    };
    conditional(
        request,
        &rendered.body,
        &rendered.etag,
        "application/json",
        [(CACHE_CONTROL, CACHE)],
    )
}

/// A document rendered once, answered to a (conditional) GET: 304 when `If-None-Match` matches
/// `etag`, else `body` as `content_type`; the `ETag` and `headers` on both. The body is a
/// reference count on the rendered bytes, never a copy.
pub(super) fn conditional<const N: usize>(
    request: &HeaderMap,
    body: &Bytes,
    etag: &HeaderValue,
    content_type: &'static str,
    headers: [(HeaderName, HeaderValue); N],
) -> Response {
    let not_modified = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .any(|value| etag_matches(value, etag));
    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(body.clone()))
    };
    let answer = response.headers_mut();
    // Without the room the map is only short of growing, never wrong.
    let _ = answer.try_reserve(2 + N + ADDED_LATER);
    if !not_modified {
        answer.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    answer.insert(ETAG, etag.clone());
    for (name, value) in headers {
        answer.insert(name, value);
    }
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
