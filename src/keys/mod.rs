//! Key sets, signing keys, and the published JWKS and discovery documents.
//!
//! Each of the four key sets has its own RSA-2048 key, issuer, JWKS and discovery document; they
//! never share a key. Keys are created on first start, stored sealed in the database, and loaded
//! into memory once: signing parses no key, and serving JWKS does no JSON work and no database
//! round trip. Replicas on one database publish the same keys because the first to start creates
//! them under an advisory lock and the others load them.

pub mod jwks;
pub mod seal;
pub mod signer;

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::rsa::{KeyPair, KeySize};
use jsonwebtoken::DecodingKey;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::store;
use jwks::{PublicJwk, Rendered};
pub use seal::KeyEncryptionKey;
pub use signer::SigningKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySetName {
    Api,
    Public,
    PortalPreview,
    ContactIdentification,
}

impl KeySetName {
    pub const ALL: [KeySetName; 4] = [
        KeySetName::Api,
        KeySetName::Public,
        KeySetName::PortalPreview,
        KeySetName::ContactIdentification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeySetName::Api => "api",
            KeySetName::Public => "public",
            KeySetName::PortalPreview => "portal-preview",
            KeySetName::ContactIdentification => "contact-identification",
        }
    }

    /// The path of the set below `/v1/access-tokens` (the `api` set sits at the base).
    pub fn path_prefix(self) -> &'static str {
        match self {
            KeySetName::Api => "",
            KeySetName::Public => "/public",
            KeySetName::PortalPreview => "/portal-preview",
            KeySetName::ContactIdentification => "/contact-identification",
        }
    }

    /// The issuer of the set: the `iss` of its tokens and the `issuer` of its discovery document.
    pub fn issuer(self, public_url: &str) -> String {
        format!("{public_url}/v1/access-tokens{}", self.path_prefix())
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for KeySetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key set, loaded: the signing key, the keys tokens verify against, and the documents.
pub struct KeySet {
    pub name: KeySetName,
    pub issuer: String,
    pub signing: SigningKey,
    verifying: HashMap<String, DecodingKey>,
    pub jwks: Rendered,
    pub discovery: Rendered,
}

impl KeySet {
    /// The key a token naming `kid` verifies against, if the set publishes it.
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }
}

/// All four key sets, held in memory.
pub struct KeyRing {
    public_url: String,
    sets: [KeySet; 4],
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database error while loading signing keys: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "KEY_ENCRYPTION_KEY {0} (key {1}); start with the key-encryption key the keys were sealed with"
    )]
    Seal(seal::SealError, String),
    #[error("stored signing key {0} is not a valid RSA key")]
    Corrupt(String),
    #[error("RSA key generation failed")]
    Generate,
}

impl KeyRing {
    /// Loads every key set from the database, creating the keys a set lacks.
    pub async fn load_or_create(
        pool: &PgPool,
        kek: &KeyEncryptionKey,
        public_url: &str,
    ) -> Result<Self, KeyError> {
        let mut sets = Vec::with_capacity(4);
        for name in KeySetName::ALL {
            sets.push(load_set(pool, kek, public_url, name).await?);
        }
        let sets: [KeySet; 4] = sets
            .try_into()
            .map_err(|_| KeyError::Corrupt("key ring".into()))?;
        Ok(Self {
            public_url: public_url.to_owned(),
            sets,
        })
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn set(&self, name: KeySetName) -> &KeySet {
        &self.sets[name.index()]
    }
}

async fn load_set(
    pool: &PgPool,
    kek: &KeyEncryptionKey,
    public_url: &str,
    name: KeySetName,
) -> Result<KeySet, KeyError> {
    let mut tx = pool.begin().await?;
    // Replicas starting together on an empty database: one creates the key, the others wait
    // here and then load it. The lock is released with the transaction.
    store::keys::lock_key_sets(&mut tx).await?;
    let mut rows = store::keys::published(&mut tx, name.as_str()).await?;
    if !rows.iter().any(|r| r.state == "active") {
        let row = generate(kek, name).await?;
        store::keys::insert(&mut tx, &row).await?;
        tracing::info!(key_set = %name, kid = %row.kid, "created signing key");
        rows.push(row);
    }
    tx.commit().await?;

    let active = rows
        .iter()
        .find(|r| r.state == "active")
        .ok_or_else(|| KeyError::Corrupt(name.to_string()))?;
    let associated = associated_data(name, &active.kid);
    let sealed = seal::Sealed {
        nonce: active.nonce.clone(),
        ciphertext: active.private_key_sealed.clone(),
    };
    let der = kek
        .open(&sealed, &associated)
        .map_err(|e| KeyError::Seal(e, active.kid.clone()))?;
    let pair = KeyPair::from_pkcs8(der.expose_secret())
        .map_err(|_| KeyError::Corrupt(active.kid.clone()))?;
    drop(der);
    let signing = SigningKey::new(active.kid.clone(), pair);

    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    for row in &rows {
        let key = DecodingKey::from_rsa_components(&row.n, &row.e)
            .map_err(|_| KeyError::Corrupt(row.kid.clone()))?;
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

/// The associated data a sealed key is bound to: its set and kid.
fn associated_data(name: KeySetName, kid: &str) -> String {
    format!("{}:{kid}", name.as_str())
}

/// A new RSA-2048 key, sealed, as a row to insert. Key generation runs off the async threads.
async fn generate(
    kek: &KeyEncryptionKey,
    name: KeySetName,
) -> Result<store::keys::KeyRow, KeyError> {
    let pair = tokio::task::spawn_blocking(|| KeyPair::generate(KeySize::Rsa2048))
        .await
        .map_err(|_| KeyError::Generate)?
        .map_err(|_| KeyError::Generate)?;
    let public = PublicJwk::from_key_pair(&pair);
    let kid = public.thumbprint();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|_| KeyError::Generate)?;
    let sealed = kek
        .seal(der.as_ref(), &associated_data(name, &kid))
        .map_err(|e| KeyError::Seal(e, kid.clone()))?;
    Ok(store::keys::KeyRow {
        kid,
        key_set: name.as_str().to_owned(),
        state: "active".to_owned(),
        n: public.n,
        e: public.e,
        private_key_sealed: sealed.ciphertext,
        nonce: sealed.nonce,
    })
}
