//! The list queries: `http::tokens::list_params` (`GET /v1/access-tokens`, which also decodes its
//! `cursor`), the next-page query the `Link` header carries (`http::pagination::with_cursor`), and
//! the audit-events cursor (`http::pagination::decode_event_cursor`).
//!
//! Checked: nothing panics and every refusal is a 400; accepted parameters are within their
//! documented bounds (limit 1 to `MAX_LIMIT`, a name filter of 1 to 255 characters, a non-empty
//! type filter without repeats, a cursor position whose id is a token id); the next page's query
//! keeps every filter and carries the new position; an audit cursor is a positive event id and the
//! one the service gives out for that id decodes back to it.

#![no_main]

use access_tokens::error::Error;
use access_tokens::http::pagination::{
    MAX_LIMIT, cursor_times, decode_event_cursor, encode_event_cursor, encode_token_cursor,
    with_cursor,
};
use access_tokens::http::tokens::list_params;
use access_tokens::tokens::TokenId;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    check_audit_cursor(&query);
    for (key, value) in form_urlencoded_pairs(&query) {
        if key == "cursor" {
            check_audit_cursor(&value);
        }
    }

    let params = match list_params(&query) {
        Ok(params) => params,
        Err(Error::BadRequest(_)) => return,
        Err(other) => panic!("list_params failed with {other:?}, not a 400"),
    };
    assert!((1..=MAX_LIMIT).contains(&params.limit));
    if let Some(name) = &params.name {
        assert!(!name.is_empty() && name.chars().count() <= 255);
    }
    if let Some(types) = &params.types {
        assert!(!types.is_empty());
        for (i, t) in types.iter().enumerate() {
            assert!(!types[..i].contains(t), "{t} listed twice");
        }
    }
    if let Some((time, id)) = &params.after {
        assert!(TokenId::parse(id).is_some());
        assert!(cursor_times().contains(time), "cursor time {time} accepted");
    }

    // The next page: the same filters from the new position.
    let position = (
        DateTime::<Utc>::from_timestamp_micros(1_764_300_000_123_456).expect("in range"),
        "api_5ZugdRXasLfWBypHi93Fk7".to_owned(),
    );
    let next_query = with_cursor(&query, &encode_token_cursor(position.0, &position.1));
    let next = list_params(&next_query)
        .unwrap_or_else(|e| panic!("next page query {next_query:?} refused: {e:?}"));
    assert_eq!(next.types, params.types);
    assert_eq!(next.status, params.status);
    assert_eq!(next.name, params.name);
    assert_eq!(next.limit, params.limit);
    assert_eq!(next.after, Some(position));
});

fn check_audit_cursor(cursor: &str) {
    match decode_event_cursor(cursor) {
        Ok(id) => {
            assert!(id > 0);
            // The cursor the audit list gives out for the last event of a page.
            let given = encode_event_cursor(id);
            assert_eq!(decode_event_cursor(&given).ok(), Some(id));
        }
        Err(Error::BadRequest(_)) => {}
        Err(other) => panic!("audit cursor failed with {other:?}, not a 400"),
    }
}

/// The decoded pairs of a query, as the handlers see them.
fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
