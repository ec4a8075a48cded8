//! The status lists of each key set (draft-ietf-oauth-status-list-21): `GET
//! {issuer}/status-lists/{list}` answers the list token, `GET {issuer}/status-lists` the
//! aggregation document. Both are served from bytes rendered once per change
//! (`service::status_lists`), with `ETag` and 304, `Cache-Control: public, max-age=<ttl>`, gzip
//! when the client accepts it, and `Access-Control-Allow-Origin: *`: any verifier, browsers too,
//! may read them.
//!
//! A list is the most requested answer of the service after the JWKS, and 28 times its size, so
//! its request path does no more than the JWKS's: the request is taken whole (its headers are
//! not copied), the list number is read from the path as sent (no decoding, no allocation), and
//! the answer's headers are written into a map allocated once.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_ENCODING, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::AppState;
use super::well_known::conditional;
use crate::error::{ApiError, Error};
use crate::keys::KeySetName;
use crate::service::status_lists::CONTENT_TYPE as STATUS_LIST_JWT;

/// `GET {issuer}/status-lists/{list}`.
pub async fn list(State(state): State<AppState>, set: KeySetName, request: Request) -> Response {
    let Some(lists) = state.service().status_lists(set) else {
        return ApiError(Error::Unavailable).into_response();
    };
    // The route is `{issuer}/status-lists/{list}`: the last segment is the list number as the
    // client wrote it. Read undecoded, `%30` is not a spelling of list 0 either.
    let number = request.uri().path().rsplit_once('/').map_or("", |(_, n)| n);
    let Some(served) = parse_list_number(number).and_then(|n| lists.list(n)) else {
        return ApiError(Error::NotFound("no such status list".to_owned())).into_response();
    };
    let headers = request.headers();
    let (body, etag, gzip) = if accepts_gzip(headers) {
        (&served.gzip, &served.gzip_etag, true)
    } else {
        (&served.body, &served.etag, false)
    };
    let mut response = conditional(headers, body, etag, STATUS_LIST_JWT, common_headers(&state));
    if gzip && response.status() == StatusCode::OK {
        response
            .headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// `GET {issuer}/status-lists`: `{"status_lists": [uri, ...]}`, every list of the key set.
pub async fn aggregation(
    State(state): State<AppState>,
    headers: HeaderMap,
    set: KeySetName,
) -> Response {
    let Some(lists) = state.service().status_lists(set) else {
        return ApiError(Error::Unavailable).into_response();
    };
    let rendered = &lists.aggregation;
    conditional(
        &headers,
        &rendered.body,
        &rendered.etag,
        "application/json",
        common_headers(&state),
    )
}

fn common_headers(state: &AppState) -> [(HeaderName, HeaderValue); 3] {
    [
        (
            CACHE_CONTROL,
            state.service().status_list_cache_control().clone(),
        ),
        (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        (VARY, HeaderValue::from_static("accept-encoding")),
    ]
}

/// A list number as the tokens write it: decimal digits without a sign or leading zero, so that
/// one list has one URI (`sub` equals the tokens' `uri` byte for byte).
fn parse_list_number(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.len() <= 10
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// Whether `Accept-Encoding` accepts gzip (RFC 9110 section 12.5.3): `gzip`, `x-gzip` or `*`
/// with a weight above 0. Read as bytes: the header is ASCII where it matters.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|item| {
            let mut parts = item.split(|b| *b == b';');
            let coding = parts.next().unwrap_or_default().trim_ascii();
            let named = [b"gzip".as_slice(), b"x-gzip", b"*"]
                .iter()
                .any(|c| coding.eq_ignore_ascii_case(c));
            let weight = parts
                .filter_map(|p| p.trim_ascii().strip_prefix(b"q="))
                .filter_map(|q| std::str::from_utf8(q).ok()?.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            named && weight > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_numbers_have_one_spelling() {
        for (text, number) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("4294967295", Some(u32::MAX)),
        ] {
            assert_eq!(parse_list_number(text), number, "{text}");
        }
        for text in [
            "",
            "00",
            "07",
            "+1",
            "-1",
            "1.0",
            " 1",
            "4294967296",
            "x",
            "١",
        ] {
            assert_eq!(parse_list_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        for (header, accepted) in [
            ("gzip", true),
            ("br, gzip;q=0.5", true),
            ("*", true),
            ("GZIP", true),
            ("gzip;q=0", false),
            ("identity", false),
            ("deflate, br", false),
            ("", false),
            (" gzip ; q=0.001 ", true),
            ("gzip;q=x;q=0", false),
            ("x-gzip;Q=1", true),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(header));
            assert_eq!(accepts_gzip(&headers), accepted, "{header}");
        }
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
