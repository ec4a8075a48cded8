//! The Token Status List (draft-ietf-oauth-status-list, section 4): `bits` per index, packed
//! from the least significant bit of each byte (so index 0 is the lowest bits of byte 0), and its
//! wire form `lst`: the bytes compressed with DEFLATE in the ZLIB format (RFC 1950) and base64url
//! encoded without padding (sections 4.1 and 4.2). Checked against the draft's test vectors.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;

/// A status list in memory: `bits` per index, packed least significant bits first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("bits must be 1, 2, 4 or 8")]
    Bits,
    #[error("lst is not base64url without padding")]
    Base64,
    #[error("lst is not ZLIB-compressed DEFLATE data")]
    Zlib,
    #[error("lst decompresses to more than the limit")]
    TooLarge,
}

impl StatusList {
    /// A list of `size` indices, all valid (0). Panics on a `bits` the draft does not allow, which
    /// only a programming error can pass.
    pub fn new(bits: u8, size: u32) -> Self {
        assert!(matches!(bits, 1 | 2 | 4 | 8), "bits must be 1, 2, 4 or 8");
        let per_byte = 8 / u32::from(bits);
        Self {
            bits,
            bytes: vec![0; size.div_ceil(per_byte) as usize],
        }
    }

    /// A list made of its uncompressed bytes.
    pub fn from_bytes(bits: u8, bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(DecodeError::Bits);
        }
        Ok(Self { bits, bytes })
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// The uncompressed bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many indices the list holds (every bit of its bytes belongs to one).
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64 * u64::from(8 / self.bits)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The byte, shift and mask of `idx`; `None` outside the list.
    fn position(&self, idx: u64) -> Option<(usize, u32, u8)> {
        let per_byte = u64::from(8 / self.bits);
        let byte = usize::try_from(idx / per_byte).ok()?;
        if byte >= self.bytes.len() {
            return None;
        }
        // Both below 8: the index within its byte times bits per index.
        let shift = u32::try_from((idx % per_byte) * u64::from(self.bits)).ok()?;
        let mask = u8::MAX >> (8 - self.bits);
        Some((byte, shift, mask))
    }

    /// The value at `idx`; `None` outside the list (which says nothing about the token: a
    /// verifier must reject it, section 8.3 step 6).
    pub fn get(&self, idx: u64) -> Option<u8> {
        let (byte, shift, mask) = self.position(idx)?;
        Some((self.bytes[byte] >> shift) & mask)
    }

    /// Sets the value at `idx` (only its low `bits` bits count). Returns false outside the list.
    pub fn set(&mut self, idx: u64, value: u8) -> bool {
        let Some((byte, shift, mask)) = self.position(idx) else {
            return false;
        };
        let b = &mut self.bytes[byte];
        *b = (*b & !(mask << shift)) | ((value & mask) << shift);
        true
    }

    /// `lst`: ZLIB at the highest level (as section 4.1 recommends), base64url without padding.
    pub fn encode(&self) -> String {
        let mut encoder = ZlibEncoder::new(
            Vec::with_capacity(self.bytes.len() / 16 + 64),
            Compression::best(),
        );
        // Writing to a Vec cannot fail.
        encoder
            .write_all(&self.bytes)
            .expect("compressing into memory cannot fail");
        let compressed = encoder
            .finish()
            .expect("compressing into memory cannot fail");
        URL_SAFE_NO_PAD.encode(compressed)
    }

    /// Reads `bits` and `lst` as a list token carries them; the decompressed bytes may be at most
    /// `max_bytes` long (a small `lst` can inflate to a great deal). Neither padding nor
    /// whitespace is allowed in `lst` (the draft's printed examples wrap lines; callers strip
    /// them first).
    pub fn decode(bits: u8, lst: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return Err(DecodeError::Bits);
        }
        let compressed = URL_SAFE_NO_PAD
            .decode(lst)
            .map_err(|_| DecodeError::Base64)?;
        let mut bytes = Vec::new();
        let read = ZlibDecoder::new(compressed.as_slice())
            .take(
                u64::try_from(max_bytes)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            )
            .read_to_end(&mut bytes)
            .map_err(|_| DecodeError::Zlib)?;
        if read > max_bytes {
            return Err(DecodeError::TooLarge);
        }
        Ok(Self { bits, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The draft's test vectors hold 2^20 indices.
    const LIST_SIZE: u32 = 1 << 20;
    const MAX_DECODED_BYTES: usize = 16 << 20;

    fn unwrap_lines(lst: &str) -> String {
        lst.split_whitespace().collect()
    }

    /// draft-ietf-oauth-status-list-21, section 4.1: 16 indices at 1 bit, bytes [0xB9, 0xA3],
    /// and section 4.2: `lst` "eNrbuRgAAhcBXQ".
    #[test]
    fn one_bit_example_of_section_4_1() {
        let values = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        let mut list = StatusList::new(1, 16);
        for (i, v) in (0u64..).zip(values.iter()) {
            assert!(list.set(i, *v));
        }
        assert_eq!(list.bytes(), [0xB9, 0xA3]);
        assert_eq!(list.encode(), "eNrbuRgAAhcBXQ");
        let decoded = StatusList::decode(1, "eNrbuRgAAhcBXQ", MAX_DECODED_BYTES).unwrap();
        assert_eq!(decoded, list);
        for (i, v) in (0u64..).zip(values.iter()) {
            assert_eq!(decoded.get(i), Some(*v), "index {i}");
        }
    }

    /// Section 4.1: 12 indices at 2 bits (with SUSPENDED), bytes [0xC9, 0x44, 0xF9], and section
    /// 4.2: `lst` "eNo76fITAAPfAgc".
    #[test]
    fn two_bit_example_of_section_4_1() {
        let values = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        let mut list = StatusList::new(2, 12);
        for (i, v) in (0u64..).zip(values.iter()) {
            assert!(list.set(i, *v));
        }
        assert_eq!(list.bytes(), [0xC9, 0x44, 0xF9]);
        assert_eq!(list.encode(), "eNo76fITAAPfAgc");
        let decoded = StatusList::decode(2, "eNo76fITAAPfAgc", MAX_DECODED_BYTES).unwrap();
        assert_eq!(decoded, list);
        for (i, v) in (0u64..).zip(values.iter()) {
            assert_eq!(decoded.get(i), Some(*v), "index {i}");
        }
    }

    /// Appendix C.1, "1-bit Status List": 2^20 entries, these set to 1.
    const ONE_BIT: [(u64, u8); 11] = [
        (0, 1),
        (1993, 1),
        (25460, 1),
        (159495, 1),
        (495669, 1),
        (554353, 1),
        (645645, 1),
        (723232, 1),
        (854545, 1),
        (934534, 1),
        (1000345, 1),
    ];
    const ONE_BIT_LST: &str = "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogE
  AAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
  AAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAA
  A7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAA
  ACAZC8L2AEb";

    /// Appendix C.2, "2-bit Status List": 2^20 entries, these set.
    const TWO_BIT: [(u64, u8); 11] = [
        (0, 1),
        (1993, 2),
        (25460, 1),
        (159495, 3),
        (495669, 1),
        (554353, 1),
        (645645, 2),
        (723232, 1),
        (854545, 1),
        (934534, 2),
        (1000345, 3),
    ];
    const TWO_BIT_LST: &str = "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGV
  IAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5WwIAAAAAA
  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAA
  AAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAA
  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9S
  wIAAAAAAAAAAAAAAAAAAACoYUoAAAAAAAAAAAAAAEBqH81gAQw";

    fn check_vector(bits: u8, set: &[(u64, u8)], lst: &str) {
        let lst = unwrap_lines(lst);
        // The decoder reads the draft's encoding...
        let decoded = StatusList::decode(bits, &lst, MAX_DECODED_BYTES).unwrap();
        assert_eq!(decoded.len(), u64::from(LIST_SIZE));
        let nonzero: Vec<(u64, u8)> = (0..decoded.len())
            .filter_map(|i| decoded.get(i).filter(|v| *v != 0).map(|v| (i, v)))
            .collect();
        let mut expected = set.to_vec();
        expected.sort_unstable();
        assert_eq!(nonzero, expected);
        // ...and the encoder writes the same bytes, which any ZLIB reader (ours too) gets back.
        let mut list = StatusList::new(bits, LIST_SIZE);
        for (i, v) in set {
            assert!(list.set(*i, *v));
        }
        assert_eq!(list, decoded);
        let encoded = list.encode();
        assert_eq!(
            StatusList::decode(bits, &encoded, MAX_DECODED_BYTES).unwrap(),
            decoded
        );
        // Compressed as the draft's implementation compresses (ZLIB at its highest level); a
        // different DEFLATE encoder may choose other, equally valid, bytes, so the test holds the
        // size to the draft's rather than the bytes.
        assert!(
            encoded.len() <= lst.len() + 16,
            "{} vs the draft's {}",
            encoded.len(),
            lst.len()
        );
    }

    #[test]
    fn test_vector_of_appendix_c_1_one_bit() {
        check_vector(1, &ONE_BIT, ONE_BIT_LST);
    }

    #[test]
    fn test_vector_of_appendix_c_2_two_bits() {
        check_vector(2, &TWO_BIT, TWO_BIT_LST);
    }

    #[test]
    fn indices_outside_the_list_are_refused() {
        let mut list = StatusList::new(2, 8);
        assert!(!list.set(8, 1));
        assert_eq!(list.get(8), None);
        assert_eq!(list.get(7), Some(0));
    }

    #[test]
    fn bad_encodings_are_errors_not_panics() {
        assert_eq!(
            StatusList::decode(3, "eNo76fITAAPfAgc", MAX_DECODED_BYTES),
            Err(DecodeError::Bits)
        );
        assert_eq!(
            StatusList::decode(2, "eNo7==", MAX_DECODED_BYTES),
            Err(DecodeError::Base64)
        );
        assert_eq!(
            StatusList::decode(2, "AAAA", MAX_DECODED_BYTES),
            Err(DecodeError::Zlib)
        );
        // 32 MiB of zeros compress to a few kilobytes: refused, not inflated.
        let bomb = StatusList::from_bytes(8, vec![0; 2 * MAX_DECODED_BYTES])
            .unwrap()
            .encode();
        assert_eq!(
            StatusList::decode(8, &bomb, MAX_DECODED_BYTES),
            Err(DecodeError::TooLarge)
        );
    }
}
