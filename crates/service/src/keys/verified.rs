//! The service's own caller tokens already verified, so that a token presented again is not
//! verified again: a CI job or an integration calls with the same `api` token many times, and its
//! RSA verification, base64 and JSON parse are about 3 % of a creation's CPU.
//!
//! An entry is the token's claims under the SHA-256 of its compact form (the whole token: header,
//! claims and signature), for the key ring it was verified against. It is read only while that key
//! ring is the current one (a key removed from it clears every entry) and while the token's `exp`
//! holds, without leeway, as the full verification checks it. Revocation and suspension are not
//! cached: the caller checks them on every request, as for a token verified now. Only tokens
//! that verified are ever stored, so the map holds nothing an unauthenticated client chose; it is
//! bounded, and emptied when full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};

use super::Keys;
use crate::tokens::claims::OwnTokenClaims;

/// The most tokens remembered at once; past it the map starts over.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct VerifiedOwnTokens {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The key ring every entry was verified against.
    keys: Option<Arc<Keys>>,
    claims: HashMap<[u8; 32], Arc<OwnTokenClaims>>,
}

impl Inner {
    /// Whether the entries were verified against `keys` (the very key ring, not an equal one).
    fn verified_against(&self, keys: &Arc<Keys>) -> bool {
        self.keys.as_ref().is_some_and(|k| Arc::ptr_eq(k, keys))
    }
}

fn key_of(token: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    key
}

impl VerifiedOwnTokens {
    /// The claims of `token` if it verified against `keys` and has not expired at `now` (seconds
    /// since the epoch).
    pub fn get(&self, keys: &Arc<Keys>, token: &str, now: i64) -> Option<Arc<OwnTokenClaims>> {
        let key = key_of(token);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.verified_against(keys) {
            return None;
        }
        let claims = inner.claims.get(&key)?;
        // `verify_own`'s rule: expired once `exp` is in the past, with no leeway.
        if claims.exp.is_some_and(|exp| exp < now) {
            return None;
        }
        Some(claims.clone())
    }

    /// Remembers the claims of `token`, just verified against `keys`.
    pub fn insert(&self, keys: &Arc<Keys>, token: &str, claims: Arc<OwnTokenClaims>) {
        let key = key_of(token);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.verified_against(keys) {
            inner.claims.clear();
            inner.keys = Some(keys.clone());
        }
        if inner.claims.len() >= CAPACITY {
            inner.claims.clear();
        }
        inner.claims.insert(key, claims);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::KeySetName;

    fn claims(exp: Option<i64>) -> Arc<OwnTokenClaims> {
        Arc::new(
            serde_json::from_value(json!({
                "token_id": "t-1", "exp": exp, "token_type": "api", "token_use": "access",
                "org_id": "1", "user_id": "u-1", "cognito:username": null, "email": null,
            }))
            .unwrap(),
        )
    }

    #[test]
    fn an_entry_holds_for_its_key_ring_and_its_lifetime_only() {
        let keys = Arc::new(Keys::generate("https://tokens.example.com").unwrap());
        let token = keys
            .set(KeySetName::Api)
            .signing
            .sign(&json!({"sub": "u-1"}))
            .unwrap();
        let cache = VerifiedOwnTokens::default();
        assert!(cache.get(&keys, &token, 0).is_none());

        cache.insert(&keys, &token, claims(Some(100)));
        assert_eq!(cache.get(&keys, &token, 100).unwrap().token_id, "t-1");
        // Expired a second later, as the full verification has it.
        assert!(cache.get(&keys, &token, 101).is_none());
        // Another token, even one differing in its last character only, is not this one.
        let mut other = token.clone();
        other.pop();
        assert!(cache.get(&keys, &other, 0).is_none());

        // A new key ring (a key added or removed) is not the one the entry was verified against.
        let rotated = Arc::new(Keys::generate("https://tokens.example.com").unwrap());
        assert!(cache.get(&rotated, &token, 0).is_none());
        cache.insert(&rotated, &other, claims(None));
        assert!(cache.get(&keys, &token, 0).is_none());
        assert!(cache.get(&rotated, &token, 0).is_none());
        assert!(cache.get(&rotated, &other, i64::MAX).is_some());
    }

    #[test]
    fn the_map_is_bounded() {
        let keys = Arc::new(Keys::generate("https://tokens.example.com").unwrap());
        let cache = VerifiedOwnTokens::default();
        for i in 0..=CAPACITY {
            cache.insert(&keys, &format!("token-{i}"), claims(None));
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.claims.len() <= CAPACITY);
    }
}
