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
    /// A key whose public half or kid is not its sealed private key's.
    #[error("stored signing key {0} is not bound to its private key: {1}")]
    Unbound(String, &'static str),
    #[error("key set {0} has no active key")]
    NoActiveKey(KeySetName),
    #[error("RSA key generation failed")]
    Generate,
    #[error("{0}")]
    Operation(String),
}

impl KeyError {
    /// Why a stored key is not bound to the key-encryption key, for the log (no key material).
    pub(super) fn why(&self) -> &'static str {
        match self {
            KeyError::Seal(..) => "its private half does not open under the key-encryption key",
            KeyError::Corrupt(_) => "its private half is not an RSA private key",
            KeyError::Unbound(_, why) => why,
            _ => "it cannot be loaded",
        }
    }
}
