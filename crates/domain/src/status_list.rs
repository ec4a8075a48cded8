//! Token Status Lists (draft-ietf-oauth-status-list-21): the bit array that says, for every index
//! handed out to a stored token, whether the token is valid, revoked or suspended, and its wire
//! form, `lst`: the array compressed with DEFLATE in the ZLIB format (RFC 1950) and base64url
//! encoded without padding (section 4.1, "Compressed Byte Array", and 4.2).
//!
//! Each index takes [`BITS`] bits; indices are packed from the least significant bit of each
//! byte to the most significant one, so index 0 is bits 0-1 of byte 0 (section 4.1). A list
//! holds [`LIST_SIZE`] indices; the store hands them out and starts a new list when one is full.

use serde::Serialize;

/// Bits per token: two, so that a list can say `suspended` (0x02) besides valid and invalid.
pub const BITS: u8 = 2;

/// Indices per list: 2^20, the size the draft's test vectors use. At two bits that is 256 KiB
/// uncompressed; a list of a million tokens with one percent revoked compresses to 13.8 KB, a
/// 25 KB list token (see bench/RESULTS.md). Smaller lists would be smaller downloads but
/// smaller herds (a verifier's fetch tells the service which list its token is in), and the
/// size is part of every index already handed out (`n / 2^20`, `n % 2^20`).
pub const LIST_SIZE: u32 = 1 << 20;

/// The largest uncompressed list a reader of this service's lists passes to
/// [`StatusList::decode`]: a hostile `lst` of a few kilobytes must not make it inflate gigabytes.
pub const MAX_DECODED_BYTES: usize = 16 << 20;

/// What a token's index says (section 7.1, "Status Types Values").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// 0x00: the token is valid.
    Valid = 0,
    /// 0x01: revoked, or its record deleted; for good.
    Invalid = 1,
    /// 0x02: suspended; may become valid again.
    Suspended = 2,
}

/// Where a stored token's status is: list number and index within the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRef {
    pub list: u32,
    pub idx: u32,
}

impl StatusRef {
    /// The place of the `n`th index a key set handed out (0-based): lists fill one after the other.
    pub fn from_sequence(n: u64) -> Option<Self> {
        let list = u32::try_from(n / u64::from(LIST_SIZE)).ok()?;
        let idx = u32::try_from(n % u64::from(LIST_SIZE)).ok()?;
        Some(Self { list, idx })
    }
}

/// The URI of list `list` of the key set whose issuer is `issuer`: `{issuer}/status-lists/{list}`.
/// The `uri` of the tokens' `status` claim and the `sub` of the list token, byte for byte.
pub fn list_uri(issuer: &str, list: u32) -> String {
    format!("{issuer}/status-lists/{list}")
}

/// The URI of a key set's status list aggregation (section 9): `{issuer}/status-lists`,
/// answering `{"status_lists": [uri, ...]}`.
pub fn aggregation_uri(issuer: &str) -> String {
    format!("{issuer}/status-lists")
}

/// The `status` claim of a token (section 6.2): `{"status_list": {"idx": .., "uri": ..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusClaim {
    pub status_list: StatusListRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusListRef {
    pub idx: u32,
    pub uri: String,
}

impl StatusClaim {
    pub fn new(issuer: &str, at: StatusRef) -> Self {
        Self {
            status_list: StatusListRef {
                idx: at.idx,
                uri: list_uri(issuer, at.list),
            },
        }
    }
}

/// The list itself and its wire form are the JOSE crate's codec, shared with the verifier crate.
pub use access_tokens_jose::{DecodeError, StatusList};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_fill_lists_one_after_the_other() {
        assert_eq!(
            StatusRef::from_sequence(0),
            Some(StatusRef { list: 0, idx: 0 })
        );
        assert_eq!(
            StatusRef::from_sequence(u64::from(LIST_SIZE) + 5),
            Some(StatusRef { list: 1, idx: 5 })
        );
        assert_eq!(
            list_uri("https://t/v1/access-tokens/public", 3),
            "https://t/v1/access-tokens/public/status-lists/3"
        );
    }
}
