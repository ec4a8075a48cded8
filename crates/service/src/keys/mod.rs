//! Key sets, signing keys, and the published JWKS and discovery documents.
//!
//! Each of the four key sets has its own RSA-2048 keys, issuer, JWKS and discovery document; they
//! never share a key. A key is `next` (published, not yet signing), `active` (signing; exactly one
//! per set), `retired` (published, no longer signing) or `revoked` (not published; its tokens are
//! refused). Every set always publishes a `next` key, so verifiers that cache the JWKS hold a key
//! before it starts to sign.
//!
//! Keys are stored sealed in the database and loaded into memory: signing parses no key, and
//! serving JWKS does no JSON work and no database round trip. Each replica polls a fingerprint of
//! the key table (`refresh`) and rebuilds its ring when an operator rotated or revoked a key, so
//! replicas switch within one refresh interval without a restart.
//!
//! A stored key counts only when it is bound to the key-encryption key: its sealed private half
//! opens under the KEK (with its set and kid as associated data), and its `n`, `e` and kid (the RFC
//! 7638 thumbprint) are that private key's public half. Write access to the database alone cannot
//! add a key that is published or trusted: an unbound row is skipped (and logged once per kid), and
//! the good keys keep working.

mod binding;
mod error;
pub mod jwks;
pub mod lifecycle;
pub mod seal;
pub mod verified;
pub mod verify;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::store::types::Timestamp;
use crate::store::{KeyRow, Queries, StatusIndexKey, Store};
use crate::tokens::status_list::IndexPermutation;
/// The key set names live in the domain; re-exported where the keys are.
pub use crate::tokens::{KeySetName, KeyState};
/// JWS, signing and verifying keys are the JOSE crate's, shared with the verifier crate.
pub use access_tokens_jose::{SigningKey, VerifyingKey, jws};
use binding::bound_key_pair;
pub use error::KeyError;
use jwks::{PublicJwk, Rendered};
pub use seal::KeyEncryptionKey;

/// One key set, loaded: the signing key, the keys its tokens verify against, and the documents.
pub struct KeySet {
    pub name: KeySetName,
    pub issuer: String,
    pub signing: SigningKey,
    verifying: HashMap<String, VerifyingKey>,
    pub jwks: Rendered,
    pub discovery: Rendered,
    /// Where the store's status list slots are published (a keyed permutation of each list).
    pub status_index: IndexPermutation,
}

impl KeySet {
    /// The key a token naming `kid` verifies against, if the set publishes it (next, active or
    /// retired; never a revoked key).
    pub fn verifying_key(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.get(kid)
    }
}

/// All four key sets at one moment.
pub struct Keys {
    sets: [KeySet; 4],
    /// (kid, state) of every key, to notice changes cheaply.
    fingerprint: Vec<(String, KeyState)>,
    /// (set, state, activated_at) of every stored key, as the metrics show them.
    states: Vec<(String, KeyState, Option<Timestamp>)>,
}

impl Keys {
    pub fn set(&self, name: KeySetName) -> &KeySet {
        &self.sets[name.index()]
    }

    /// Key sets made in memory, an active and a next key each, without a database: for
    /// benchmarks and tests of the signing and verification paths.
    pub fn generate(public_url: &str) -> Result<Self, KeyError> {
        let kek = KeyEncryptionKey::generate();
        let mut rows = Vec::new();
        for name in KeySetName::ALL {
            for state in [KeyState::Active, KeyState::Next] {
                rows.push(lifecycle::generate_blocking(&kek, name, state)?);
            }
        }
        let mut index_key = [0u8; 16];
        aws_lc_rs::rand::fill(&mut index_key).map_err(|_| KeyError::Generate)?;
        let index_keys = KeySetName::ALL.map(|name| StatusIndexKey {
            key_set: name.as_str().to_owned(),
            index_key: Some(index_key.to_vec()),
            permuted_from: 0,
        });
        build_keys(&kek, public_url, &rows, &index_keys).map(|(keys, _)| keys)
    }

    /// How many stored keys each set has in each state, and when each set's active key became
    /// active, as loaded (start-up and every key change).
    pub fn states(&self) -> KeyStates {
        let mut states = KeyStates::default();
        for set in KeySetName::ALL {
            let of_set = || self.states.iter().filter(|(s, ..)| s == set.as_str());
            for state in KeyState::ALL {
                let n = of_set().filter(|(_, st, _)| *st == state).count() as u64;
                states.counts.push((set, state, n));
            }
            if let Some((_, _, Some(at))) = of_set().find(|(_, st, _)| *st == KeyState::Active) {
                states.activated.push((set, *at));
            }
        }
        states
    }

    /// The set that publishes `kid`, if any.
    pub fn set_of_kid(&self, kid: &str) -> Option<&KeySet> {
        self.sets.iter().find(|s| s.verifying.contains_key(kid))
    }
}

/// What the stored keys are, for the metrics: `(set, state, how many)` for every set and state,
/// and `(set, when it became active)` of each set's active key.
#[derive(Debug, Default)]
pub struct KeyStates {
    pub counts: Vec<(KeySetName, KeyState, u64)>,
    pub activated: Vec<(KeySetName, Timestamp)>,
}

/// The key sets in memory, swapped whole when the stored keys change.
pub struct KeyRing {
    public_url: String,
    current: RwLock<Arc<Keys>>,
    /// Kids of unbound keys already logged: each is reported once, not at every reload.
    reported: Mutex<HashSet<String>>,
}

impl KeyRing {
    /// Creates the keys a set lacks (an active and a next key), then loads every key set.
    pub async fn load_or_create(
        store: &Store,
        kek: &KeyEncryptionKey,
        public_url: &str,
    ) -> Result<Self, KeyError> {
        lifecycle::ensure_keys(store, kek).await?;
        let (keys, unbound) = load(store, kek, public_url).await?;
        let ring = Self {
            public_url: public_url.to_owned(),
            current: RwLock::new(Arc::new(keys)),
            reported: Mutex::default(),
        };
        ring.report(unbound);
        Ok(ring)
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The key sets as they are now; cheap (one reference count).
    pub fn current(&self) -> Arc<Keys> {
        match self.current.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the key sets when the stored keys changed. Returns whether they did.
    pub async fn refresh(&self, store: &Store, kek: &KeyEncryptionKey) -> Result<bool, KeyError> {
        let fingerprint = store.acquire().await?.db().key_fingerprint().await?;
        if fingerprint == self.current().fingerprint {
            return Ok(false);
        }
        let (keys, unbound) = load(store, kek, &self.public_url).await?;
        self.report(unbound);
        let mut slot = match self.current.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(keys);
        Ok(true)
    }

    /// Logs the unbound keys not reported before: once per kid for the life of the process.
    fn report(&self, unbound: Vec<Unbound>) {
        let mut reported = match self.reported.lock() {
            Ok(reported) => reported,
            Err(poisoned) => poisoned.into_inner(),
        };
        for Unbound { kid, key_set, why } in unbound {
            if reported.insert(kid.clone()) {
                tracing::warn!(
                    %kid, %key_set, why,
                    "stored signing key is not bound to the key-encryption key: neither published nor trusted"
                );
            }
        }
    }
}

async fn load(
    store: &Store,
    kek: &KeyEncryptionKey,
    public_url: &str,
) -> Result<(Keys, Vec<Unbound>), KeyError> {
    let mut conn = store.acquire().await?;
    let rows = conn.db().all_keys().await?;
    let states = conn.db().key_states().await?;
    let index_keys = conn.db().status_index_keys().await?;
    let (mut keys, unbound) = build_keys(kek, public_url, &rows, &index_keys)?;
    keys.states = states;
    Ok((keys, unbound))
}

/// A stored key that does not count, and why (no key material).
struct Unbound {
    kid: String,
    key_set: String,
    why: &'static str,
}

fn build_keys(
    kek: &KeyEncryptionKey,
    public_url: &str,
    rows: &[KeyRow],
    index_keys: &[StatusIndexKey],
) -> Result<(Keys, Vec<Unbound>), KeyError> {
    let fingerprint = rows.iter().map(|r| (r.kid.clone(), r.state)).collect();
    let mut unbound = Vec::new();
    let mut sets = Vec::with_capacity(4);
    for name in KeySetName::ALL {
        let rows: Vec<&KeyRow> = rows
            .iter()
            .filter(|r| r.key_set == name.as_str() && r.state.is_published())
            .collect();
        let mut set = build_set(kek, public_url, name, &rows, &mut unbound)?;
        set.status_index = status_index(name, index_keys)?;
        sets.push(set);
    }
    let sets: [KeySet; 4] = sets
        .try_into()
        .map_err(|_| KeyError::Corrupt("key ring".into()))?;
    let states = Vec::new();
    Ok((
        Keys {
            sets,
            fingerprint,
            states,
        },
        unbound,
    ))
}

/// One set from its published rows. Unbound rows are left out (and listed in `unbound`); a set
/// whose active key does not open fails, as a wrong key-encryption key must stop start-up.
fn build_set(
    kek: &KeyEncryptionKey,
    public_url: &str,
    name: KeySetName,
    rows: &[&KeyRow],
    unbound: &mut Vec<Unbound>,
) -> Result<KeySet, KeyError> {
    let mut signing = None;
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    for row in rows {
        let pair = match bound_key_pair(kek, row) {
            Ok(pair) => pair,
            Err(error) if row.state == KeyState::Active => return Err(error),
            Err(error) => {
                unbound.push(Unbound {
                    kid: row.kid.clone(),
                    key_set: row.key_set.clone(),
                    why: error.why(),
                });
                continue;
            }
        };
        let key = VerifyingKey::from_components(&row.n, &row.e)
            .ok_or_else(|| KeyError::Corrupt(row.kid.clone()))?;
        verifying.insert(row.kid.clone(), key);
        published.push((
            row.kid.clone(),
            PublicJwk {
                n: row.n.clone(),
                e: row.e.clone(),
            },
        ));
        if row.state == KeyState::Active {
            signing = Some(SigningKey::new(row.kid.clone(), pair));
        }
    }
    let signing = signing.ok_or(KeyError::NoActiveKey(name))?;
    let issuer = name.issuer(public_url);
    Ok(KeySet {
        name,
        jwks: jwks::render_jwks(&published),
        discovery: jwks::render_discovery(name, &issuer, name.has_status_lists()),
        issuer,
        signing,
        verifying,
        status_index: IndexPermutation::identity(),
    })
}

/// The set's index permutation from its stored index key. A set without status lists, or one
/// whose key the first start has not written yet (`ensure_keys` writes it before anything signs),
/// publishes slots as they are.
fn status_index(
    name: KeySetName,
    index_keys: &[StatusIndexKey],
) -> Result<IndexPermutation, KeyError> {
    let Some(stored) = index_keys
        .iter()
        .find(|k| k.key_set == name.as_str() && name.has_status_lists())
    else {
        return Ok(IndexPermutation::identity());
    };
    let Some(key) = &stored.index_key else {
        return Ok(IndexPermutation::identity());
    };
    let from_list = u32::try_from(stored.permuted_from).unwrap_or(u32::MAX);
    IndexPermutation::new(key, from_list)
        .ok_or_else(|| KeyError::Corrupt(format!("status list index key of {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seal::{associated_data, sealed};
    use secrecy::ExposeSecret;

    fn rows(kek: &KeyEncryptionKey) -> Vec<KeyRow> {
        let mut rows = Vec::new();
        for name in KeySetName::ALL {
            for state in [KeyState::Active, KeyState::Next] {
                rows.push(lifecycle::generate_blocking(kek, name, state).unwrap());
            }
        }
        rows
    }

    /// A retired api key whose parts come from different keys, made by `forge`.
    fn forged(kek: &KeyEncryptionKey, forge: impl FnOnce(&mut KeyRow, &KeyRow)) -> KeyRow {
        let mut row =
            lifecycle::generate_blocking(kek, KeySetName::Api, KeyState::Retired).unwrap();
        let other = lifecycle::generate_blocking(kek, KeySetName::Api, KeyState::Retired).unwrap();
        forge(&mut row, &other);
        row
    }

    fn reseal(kek: &KeyEncryptionKey, row: &mut KeyRow, from: &KeyRow) {
        let der = kek
            .open(&sealed(from), &associated_data(&from.key_set, &from.kid))
            .unwrap();
        let resealed = kek
            .seal(
                der.expose_secret(),
                &associated_data(&row.key_set, &row.kid),
            )
            .unwrap();
        row.private_key_sealed = resealed.ciphertext;
        row.nonce = resealed.nonce;
    }

    #[test]
    fn keys_not_bound_to_the_key_encryption_key_are_neither_published_nor_trusted() {
        let kek = KeyEncryptionKey::generate();
        let mut all = rows(&kek);
        let good = forged(&kek, |_, _| {});
        let forgeries = [
            // Written without the KEK: an attacker's public key and junk sealed bytes.
            forged(&kek, |row, _| {
                row.private_key_sealed = vec![0; 1200];
                row.nonce = vec![0; 12];
            }),
            // A genuine private key, sealed for this row, under another key's n and e and kid.
            forged(&kek, |row, other| {
                let mine = row.clone();
                row.n.clone_from(&other.n);
                row.e.clone_from(&other.e);
                row.kid.clone_from(&other.kid);
                reseal(&kek, row, &mine);
            }),
            // Its own n and e, but a kid that is not their thumbprint.
            forged(&kek, |row, _| {
                let mine = row.clone();
                row.kid = "forged-kid".into();
                reseal(&kek, row, &mine);
            }),
            // Another set's sealed bytes copied onto the row: the associated data differs.
            forged(&kek, |row, other| {
                row.private_key_sealed.clone_from(&other.private_key_sealed);
                row.nonce.clone_from(&other.nonce);
            }),
        ];
        all.push(good.clone());
        all.extend(forgeries.iter().cloned());

        let (keys, unbound) = build_keys(&kek, "https://t.example", &all, &[]).unwrap();
        let api = keys.set(KeySetName::Api);
        assert!(
            api.verifying_key(&good.kid).is_some(),
            "a bound retired key verifies"
        );
        let jwks = String::from_utf8(api.jwks.body.to_vec()).unwrap();
        assert!(jwks.contains(&good.kid));
        for forged in &forgeries {
            assert!(api.verifying_key(&forged.kid).is_none(), "{}", forged.kid);
            assert!(keys.set_of_kid(&forged.kid).is_none(), "{}", forged.kid);
            assert!(!jwks.contains(&forged.kid), "{}", forged.kid);
        }
        let reported: Vec<&str> = unbound.iter().map(|u| u.kid.as_str()).collect();
        let expected: Vec<&str> = forgeries.iter().map(|f| f.kid.as_str()).collect();
        assert_eq!(reported, expected);

        // An active key that does not open still stops the load: the KEK is the wrong one.
        let error = build_keys(
            &KeyEncryptionKey::generate(),
            "https://t.example",
            &all,
            &[],
        )
        .err()
        .unwrap();
        assert!(matches!(error, KeyError::Seal(..)), "{error}");
    }
}
