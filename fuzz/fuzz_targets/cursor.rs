//! The token-list cursor alone: `http::pagination::decode_token_cursor` on any text, and the round
//! trip of `encode_token_cursor` for positions the fuzzer makes.
//!
//! The first byte picks the mode: decode the rest as a cursor; or build a position from it (eight
//! bytes of microseconds since the epoch, then an id) and encode it. Ids are either the raw bytes
//! or built from them as a token type prefix, an underscore and characters of the id alphabet, so
//! that valid ids and their near misses are both frequent.
//!
//! Checked: decoding never panics and refuses with a 400; a decoded position's id is a token id and
//! its time within the range both stores hold (`cursor_times`: a time PostgreSQL cannot compare
//! with was a 500 there), and encoding the position again decodes to the same position; an encoded
//! position decodes back to exactly the time and id it was made from whenever the id is a token id
//! and the time is in that range, and is refused otherwise.

#![no_main]

use access_tokens::error::Error;
use access_tokens::http::pagination::{
    cursor_times, decode_token_cursor as decode_cursor, encode_token_cursor as encode_cursor,
};
use access_tokens::tokens::{TokenId, TokenType};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_decode(&String::from_utf8_lossy(rest));
        return;
    }
    let Some((micros, id_bytes)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let micros = i64::from_le_bytes(*micros);
    // Outside chrono's range no record can have the time; clamp into it to keep the input useful.
    let time = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_else(|| {
        let bound = if micros < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        };
        DateTime::<Utc>::from_timestamp_micros(bound.timestamp_micros()).expect("in range")
    });
    let id = if mode & 0x2 == 0 {
        String::from_utf8_lossy(id_bytes).into_owned()
    } else {
        shaped_id(mode, id_bytes)
    };
    let cursor = encode_cursor(time, &id);
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let valid = TokenId::parse(&id).is_some() && cursor_times().contains(&time);
    match decode_cursor(&cursor) {
        Ok(position) => {
            assert!(valid, "cursor of {time}, {id:?} accepted");
            assert_eq!(position, (time, id));
        }
        Err(Error::BadRequest(_)) => {
            assert!(!valid, "cursor of {time}, {id:?} refused");
        }
        Err(other) => panic!("decode_cursor failed with {other:?}, not a 400"),
    }
});

fn check_decode(cursor: &str) {
    match decode_cursor(cursor) {
        Ok((time, id)) => {
            assert!(TokenId::parse(&id).is_some());
            assert!(
                cursor_times().contains(&time),
                "cursor time {time} accepted"
            );
            let again = encode_cursor(time, &id);
            assert_eq!(decode_cursor(&again).ok(), Some((time, id)));
        }
        Err(Error::BadRequest(_)) => {}
        Err(other) => panic!("decode_cursor failed with {other:?}, not a 400"),
    }
}

/// A token type's prefix, an underscore and alphabet characters, one per byte; a byte of 0xFF
/// puts a character from outside the alphabet instead.
fn shaped_id(mode: u8, bytes: &[u8]) -> String {
    let token_type = TokenType::ALL[usize::from(mode >> 2) % TokenType::ALL.len()];
    let mut id = format!("{}_", token_type.id_prefix());
    for &b in bytes {
        id.push(if b == 0xFF {
            ':'
        } else {
            char::from(ALPHABET[usize::from(b) % 62])
        });
    }
    id
}
