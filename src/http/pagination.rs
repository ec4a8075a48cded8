//! Pages of a list, in one place: the `limit` parameter, fetch-one-more, the opaque cursors, and
//! the `Link: <...>; rel="next"` header that carries the next page's full URL with the same
//! filters. The body of a page stays a plain JSON array (the contract's shape).
//!
//! A cursor is the position of the last item of a page, base64url without padding: for tokens
//! `{created_at in microseconds}:{id}`, for audit events the event id. Any other text is a 400.

use std::ops::Range;

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::LINK;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::service::{Error, Result};
use crate::tokens::TokenId;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u16 = 100;
pub const MAX_LIMIT: u16 = 1000;

/// The times a token cursor may hold: years 1 to 9999, which both stores can compare with
/// (PostgreSQL's `timestamptz` starts in 4713 BC; a time outside it would be a database error).
pub fn cursor_times() -> Range<DateTime<Utc>> {
    let day = |y, m, d| {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_micro_opt(0, 0, 0, 0))
            .map(|t| t.and_utc())
            .expect("a valid date")
    };
    day(1, 1, 1)..day(10000, 1, 1)
}

/// The query string of a list request, as sent (empty when there is none): the handler parses
/// its own filters from it, and the `Link` of the next page repeats it with a new cursor.
pub struct QueryString(pub String);

impl<S: Send + Sync> FromRequestParts<S> for QueryString {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(Self(parts.uri.query().unwrap_or_default().to_owned()))
    }
}

/// `limit` of a page: 1 to `MAX_LIMIT`.
pub fn parse_limit(value: &str) -> Result<u16> {
    value
        .parse::<u16>()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}"
            ))
        })
}

/// How many items to ask the store for: one more than a page tells whether another follows.
pub fn fetch_limit(limit: u16) -> u16 {
    limit.saturating_add(1)
}

/// Cuts what the store answered for `fetch_limit(limit)` to a page, and names the cursor of the
/// next page when more followed.
pub fn split_page<T>(
    mut items: Vec<T>,
    limit: u16,
    cursor_of: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() <= usize::from(limit) {
        return (items, None);
    }
    items.truncate(usize::from(limit));
    let next = items.last().map(cursor_of);
    (items, next)
}

/// A page as a plain JSON array; when `next_cursor` is set, `Link: <url?query&cursor=...>;
/// rel="next"` carries the full URL of the next page with the same filters.
pub fn page_response<T: Serialize>(
    items: Vec<T>,
    url: &str,
    query: &str,
    next_cursor: Option<String>,
) -> Response {
    let mut response = axum::Json(items).into_response();
    if let Some(cursor) = next_cursor {
        let link = format!("<{url}?{}>; rel=\"next\"", with_cursor(query, &cursor));
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, value);
        }
    }
    response
}

/// `query` with its `cursor` replaced by `cursor`.
pub fn with_cursor(query: &str, cursor: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "cursor" {
            out.append_pair(&key, &value);
        }
    }
    out.append_pair("cursor", cursor);
    out.finish()
}

fn not_ours() -> Error {
    Error::bad_request("cursor is not one this service gave out")
}

/// The cursor of a token list after the token created at `created_at` with `id`.
pub fn encode_token_cursor(created_at: DateTime<Utc>, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", created_at.timestamp_micros()))
}

/// The position a token cursor holds: a time within [`cursor_times`] and a token id.
pub fn decode_token_cursor(cursor: &str) -> Result<(DateTime<Utc>, String)> {
    let (time, id) = decode_position(cursor)?;
    TokenId::parse(&id).ok_or_else(not_ours)?;
    Ok((time, id))
}

/// The position any list ordered by `(created_at, id)` gave out ([`encode_token_cursor`]): a
/// time within [`cursor_times`] and an id of at most 64 characters.
pub fn decode_position(cursor: &str) -> Result<(DateTime<Utc>, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| not_ours())?;
    let text = String::from_utf8(bytes).map_err(|_| not_ours())?;
    let (micros, id) = text.split_once(':').ok_or_else(not_ours)?;
    let time = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .filter(|t| cursor_times().contains(t))
        .ok_or_else(not_ours)?;
    if id.is_empty() || id.len() > 64 {
        return Err(not_ours());
    }
    Ok((time, id.to_owned()))
}

/// The cursor of an audit list after event `id`.
pub fn encode_event_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

/// The event id an audit cursor holds: a positive integer.
pub fn decode_event_cursor(cursor: &str) -> Result<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(not_ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_replace_the_old_one() {
        let time = DateTime::<Utc>::from_timestamp_micros(1_764_300_000_123_456).unwrap();
        let cursor = encode_token_cursor(time, "api_5ZugdRXasLfWBypHi93Fk7");
        assert_eq!(
            decode_token_cursor(&cursor).unwrap(),
            (time, "api_5ZugdRXasLfWBypHi93Fk7".to_owned())
        );
        assert_eq!(decode_event_cursor(&encode_event_cursor(42)).unwrap(), 42);
        assert_eq!(
            with_cursor("status=all&cursor=old&limit=2", "new"),
            "status=all&limit=2&cursor=new"
        );
    }

    #[test]
    fn cursors_outside_the_stores_range_are_refused() {
        let id = "api_5ZugdRXasLfWBypHi93Fk7";
        for micros in [
            // 4714 BC, before PostgreSQL's first day.
            -210_900_000_000_000_000,
            DateTime::<Utc>::MIN_UTC.timestamp_micros(),
            DateTime::<Utc>::MAX_UTC.timestamp_micros(),
            // 10000-01-01.
            253_402_300_800_000_000,
        ] {
            let cursor = URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
            assert!(
                matches!(decode_token_cursor(&cursor), Err(Error::BadRequest(_))),
                "{micros}"
            );
        }
        for bad in ["", "MA", "LTE", "%%%"] {
            assert!(decode_event_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_page_names_the_next_cursor_only_when_more_followed() {
        let (page, next) = split_page(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!((page, next.as_deref()), (vec![1, 2], Some("2")));
        let (page, next) = split_page(vec![1, 2], 2, |n| n.to_string());
        assert_eq!((page, next), (vec![1, 2], None));
        assert_eq!(fetch_limit(MAX_LIMIT), MAX_LIMIT + 1);
    }
}
