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

mod error;
pub mod jwks;
pub mod jws;
pub mod lifecycle;
pub mod seal;
pub mod signer;
pub mod verify;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rsa::KeyPair;
use secrecy::ExposeSecret;

use crate::store::{KeyRow, Queries, Store};
/// The key set names live in the domain; re-exported where the keys are.
pub use crate::tokens::{KeySetName, KeyState};
pub use error::KeyError;
use jwks::{PublicJwk, Rendered};
use jws::VerifyingKey;
pub use seal::KeyEncryptionKey;
use seal::{associated_data, sealed};
pub use signer::SigningKey;

/// One key set, loaded: the signing key, the keys its tokens verify against, and the documents.
pub struct KeySet {
    pub name: KeySetName,
    pub issuer: String,
    pub signing: SigningKey,
    verifying: HashMap<String, VerifyingKey>,
    pub jwks: Rendered,
    pub discovery: Rendered,
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
        build_keys(&kek, public_url, &rows)
    }

    /// The set that publishes `kid`, if any.
    pub fn set_of_kid(&self, kid: &str) -> Option<&KeySet> {
        self.sets.iter().find(|s| s.verifying.contains_key(kid))
    }
}

/// The key sets in memory, swapped whole when the stored keys change.
pub struct KeyRing {
    public_url: String,
    current: RwLock<Arc<Keys>>,
}

impl KeyRing {
    /// Creates the keys a set lacks (an active and a next key), then loads every key set.
    pub async fn load_or_create(
        store: &Store,
        kek: &KeyEncryptionKey,
        public_url: &str,
    ) -> Result<Self, KeyError> {
        lifecycle::ensure_keys(store, kek).await?;
        let keys = load(store, kek, public_url).await?;
        Ok(Self {
            public_url: public_url.to_owned(),
            current: RwLock::new(Arc::new(keys)),
        })
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
        let keys = load(store, kek, &self.public_url).await?;
        let mut slot = match self.current.write() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(keys);
        Ok(true)
    }
}

async fn load(store: &Store, kek: &KeyEncryptionKey, public_url: &str) -> Result<Keys, KeyError> {
    let rows = store.acquire().await?.db().all_keys().await?;
    build_keys(kek, public_url, &rows)
}

fn build_keys(kek: &KeyEncryptionKey, public_url: &str, rows: &[KeyRow]) -> Result<Keys, KeyError> {
    let fingerprint = rows.iter().map(|r| (r.kid.clone(), r.state)).collect();
    let mut sets = Vec::with_capacity(4);
    for name in KeySetName::ALL {
        let rows: Vec<&KeyRow> = rows
            .iter()
            .filter(|r| r.key_set == name.as_str() && r.state.is_published())
            .collect();
        sets.push(build_set(kek, public_url, name, &rows)?);
    }
    let sets: [KeySet; 4] = sets
        .try_into()
        .map_err(|_| KeyError::Corrupt("key ring".into()))?;
    Ok(Keys { sets, fingerprint })
}

fn build_set(
    kek: &KeyEncryptionKey,
    public_url: &str,
    name: KeySetName,
    rows: &[&KeyRow],
) -> Result<KeySet, KeyError> {
    let active = rows
        .iter()
        .find(|r| r.state == KeyState::Active)
        .ok_or(KeyError::NoActiveKey(name))?;
    let pair = open_key_pair(kek, active)?;
    let signing = SigningKey::new(active.kid.clone(), pair);

    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    for row in rows {
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
    }
    let issuer = name.issuer(public_url);
    Ok(KeySet {
        name,
        jwks: jwks::render_jwks(&published),
        discovery: jwks::render_discovery(&issuer),
        issuer,
        signing,
        verifying,
    })
}

/// Opens a stored private key; the plaintext is wiped as soon as it is parsed.
fn open_key_pair(kek: &KeyEncryptionKey, row: &KeyRow) -> Result<KeyPair, KeyError> {
    let der = kek
        .open(&sealed(row), &associated_data(&row.key_set, &row.kid))
        .map_err(|e| KeyError::Seal(e, row.kid.clone()))?;
    KeyPair::from_pkcs8(der.expose_secret()).map_err(|_| KeyError::Corrupt(row.kid.clone()))
}
