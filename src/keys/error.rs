//! Why loading or changing the signing keys failed; each says what to fix.

use super::seal::SealError;
use crate::tokens::KeySetName;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database error while loading signing keys: {0}")]
    Database(#[from] sqlx::Error),
    #[error(
        "the key-encryption key {0} (key {1}); start with the key the keys were sealed with (KEY_ENCRYPTION_KEY, or on the embedded store its key-encryption-key file)"
    )]
    Seal(SealError, String),
    #[error("stored signing key {0} is not a valid RSA key")]
    Corrupt(String),
    #[error("key set {0} has no active key")]
    NoActiveKey(KeySetName),
    #[error("RSA key generation failed")]
    Generate,
    #[error("{0}")]
    Operation(String),
}
