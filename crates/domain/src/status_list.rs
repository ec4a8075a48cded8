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

    /// The sequence number this place is the place of: the inverse of [`Self::from_sequence`].
    pub fn sequence(self) -> u64 {
        u64::from(self.list) * u64::from(LIST_SIZE) + u64::from(self.idx)
    }
}

/// Where the store's slots are published: a keyed permutation of each list's indices, so that a
/// list does not show which tokens were minted together (draft-ietf-oauth-status-list, section
/// 12.5, "Correlation Risks"; the store fills a list slot by slot in creation order).
///
/// The permutation is a balanced Feistel network on the 20 bits of an index (two halves of 10
/// bits, [`ROUNDS`] rounds), each round's function AES-128 of (list, round, half) under the key
/// set's index key, cut to 10 bits: a bijection on each list, different for every list, that no
/// one without the key can invert or predict. Lists before `from_list` were started before
/// indices were permuted, and tokens naming their slots as indices are out there: those lists
/// keep the identity.
pub struct IndexPermutation {
    cipher: Option<aws_lc_rs::cipher::EncryptingKey>,
    from_list: u32,
}

/// Feistel rounds: as many as FF1 (NIST SP 800-38G) uses on small domains.
pub const ROUNDS: u8 = 10;

const HALF_BITS: u32 = 10;
const HALF_MASK: u32 = (1 << HALF_BITS) - 1;
const _: () = assert!(LIST_SIZE == 1 << (2 * HALF_BITS));

impl IndexPermutation {
    /// The permutation under a 16-byte index key, for lists `from_list` and later.
    pub fn new(key: &[u8], from_list: u32) -> Option<Self> {
        use aws_lc_rs::cipher::{AES_128, EncryptingKey, UnboundCipherKey};
        let key = UnboundCipherKey::new(&AES_128, key).ok()?;
        Some(Self {
            cipher: Some(EncryptingKey::ecb(key).ok()?),
            from_list,
        })
    }

    /// Slots published as they are: for tests and for sets whose tokens are never stored.
    pub fn identity() -> Self {
        Self {
            cipher: None,
            from_list: u32::MAX,
        }
    }

    /// The published place of a slot the store handed out: the same list, the slot's index.
    pub fn publish(&self, slot: StatusRef) -> StatusRef {
        let mut idx = [slot.idx];
        self.publish_all(slot.list, &mut idx);
        StatusRef {
            list: slot.list,
            idx: idx[0],
        }
    }

    /// Publishes many slots of one list in place (a list's render): each round is one call of
    /// the cipher over all of them.
    pub fn publish_all(&self, list: u32, slots: &mut [u32]) {
        let Some(cipher) = self.cipher.as_ref().filter(|_| list >= self.from_list) else {
            return;
        };
        let mut blocks = vec![0u8; slots.len() * 16];
        for round in 0..ROUNDS {
            for (slot, block) in slots.iter().zip(blocks.chunks_exact_mut(16)) {
                block.fill(0);
                block[..4].copy_from_slice(&list.to_be_bytes());
                block[4] = round;
                block[5..9].copy_from_slice(&(slot & HALF_MASK).to_be_bytes());
            }
            // ECB over whole blocks cannot fail; were it to, the slots would stay as they are
            // for every caller alike (signing and rendering), so tokens and lists still agree.
            if cipher.encrypt(&mut blocks).is_err() {
                return;
            }
            for (slot, block) in slots.iter_mut().zip(blocks.chunks_exact(16)) {
                let f = u32::from(u16::from_be_bytes([block[0], block[1]])) & HALF_MASK;
                let (left, right) = (*slot >> HALF_BITS, *slot & HALF_MASK);
                *slot = (right << HALF_BITS) | ((left ^ f) & HALF_MASK);
            }
        }
    }
}

impl std::fmt::Debug for IndexPermutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("IndexPermutation")
            .field("keyed", &self.cipher.is_some())
            .field("from_list", &self.from_list)
            .finish()
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
        for n in [
            0,
            5,
            u64::from(LIST_SIZE) - 1,
            u64::from(LIST_SIZE),
            7 * u64::from(LIST_SIZE) + 9,
        ] {
            assert_eq!(
                StatusRef::from_sequence(n).map(StatusRef::sequence),
                Some(n)
            );
        }
        assert_eq!(
            list_uri("https://t/v1/access-tokens/public", 3),
            "https://t/v1/access-tokens/public/status-lists/3"
        );
    }

    #[test]
    fn indices_are_a_keyed_permutation_of_each_list_from_the_first_permuted_list() {
        let p = IndexPermutation::new(&[7; 16], 1).unwrap();
        // A bijection on a whole list: every slot gets its own index, and every index is used.
        let mut slots: Vec<u32> = (0..LIST_SIZE).collect();
        p.publish_all(1, &mut slots);
        let mut seen = vec![false; LIST_SIZE as usize];
        for idx in &slots {
            assert!(
                !std::mem::replace(&mut seen[*idx as usize], true),
                "{idx} twice"
            );
        }
        // Neighbouring slots are not neighbouring indices.
        let spread = slots[..1000]
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 16)
            .count();
        assert!(spread < 20, "{spread} of 999 neighbours stay close");
        // One at a time as in batches; another list, another key: another order.
        let at = |p: &IndexPermutation, list, idx| p.publish(StatusRef { list, idx }).idx;
        assert_eq!(at(&p, 1, 5), slots[5]);
        assert_ne!((0..8).map(|i| at(&p, 2, i)).collect::<Vec<_>>(), slots[..8]);
        let other = IndexPermutation::new(&[8; 16], 1).unwrap();
        assert_ne!(
            (0..8).map(|i| at(&other, 1, i)).collect::<Vec<_>>(),
            slots[..8]
        );
        // Lists started before permutation keep their slots as indices.
        assert_eq!(at(&p, 0, 5), 5);
        assert_eq!(at(&IndexPermutation::identity(), 9, 5), 5);
        assert!(IndexPermutation::new(&[0; 15], 0).is_none());
        assert!(!format!("{p:?}").contains('7'));
    }
}
