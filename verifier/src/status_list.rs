//! The Status List itself (draft-ietf-oauth-status-list, section 4): `bits` per token, packed
//! from the least significant bit of each byte, ZLIB-compressed and base64url-encoded in `lst`.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What is wrong with a `status_list` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// `bits` is not 1, 2, 4 or 8 (section 4.1, step 1).
    #[error("bits must be 1, 2, 4 or 8")]
    Bits,
    /// `lst` is not base64url (section 4.2).
    #[error("lst is not base64url")]
    Base64,
    /// `lst` is not a ZLIB stream (RFC 1950) of DEFLATE data.
    #[error("lst is not ZLIB-compressed")]
    Zlib,
    /// The decompressed list is larger than the configured limit.
    #[error("the decompressed list is larger than the limit")]
    TooLarge,
}

/// A decoded Status List: look up a token's status by its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl StatusList {
    /// Decodes the members of a `status_list` object: `bits` and `lst`. The decompressed bytes
    /// may be at most `max_bytes` long (a small `lst` can inflate to a great deal).
    pub fn decode(bits: u64, lst: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        let bits = match bits {
            1 => 1,
            2 => 2,
            4 => 4,
            8 => 8,
            _ => return Err(DecodeError::Bits),
        };
        let compressed = URL_SAFE_NO_PAD
            .decode(lst.trim_end_matches('='))
            .map_err(|_| DecodeError::Base64)?;
        let mut bytes = Vec::new();
        let limit = u64::try_from(max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|_| DecodeError::Zlib)?;
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge);
        }
        Ok(Self { bits, bytes })
    }

    /// Bits per token: 1, 2, 4 or 8.
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// How many indices the list holds (every bit of its bytes belongs to one).
    pub fn len(&self) -> u64 {
        (self.bytes.len() as u64) * u64::from(8 / self.bits)
    }

    /// Whether the list holds no index at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The status at `idx`, or `None` when `idx` is outside the list (which then says nothing
    /// about the token; section 8.3 step 6 rejects it).
    pub fn get(&self, idx: u64) -> Option<u8> {
        let per_byte = u64::from(8 / self.bits);
        let byte = usize::try_from(idx / per_byte).ok()?;
        let value = *self.bytes.get(byte)?;
        // Within a byte, index 0 is the least significant `bits` (section 4.1, step 3).
        let shift = (idx % per_byte) * u64::from(self.bits);
        let mask = u8::MAX >> (8 - self.bits);
        Some((value >> shift) & mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_other_than_1_2_4_8_are_refused() {
        for bits in [0, 3, 5, 16, 255] {
            assert_eq!(
                StatusList::decode(bits, "eNrbuRgAAhcBXQ", 1 << 20),
                Err(DecodeError::Bits)
            );
        }
        assert_eq!(
            StatusList::decode(1, "not base64!", 1 << 20),
            Err(DecodeError::Base64)
        );
        assert_eq!(
            StatusList::decode(1, "AAAA", 1 << 20),
            Err(DecodeError::Zlib)
        );
        assert_eq!(
            StatusList::decode(1, "eNrbuRgAAhcBXQ", 1),
            Err(DecodeError::TooLarge)
        );
    }
}
