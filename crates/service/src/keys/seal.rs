//! Private keys at rest: sealed with AES-256-GCM under the key-encryption key
//! (`KEY_ENCRYPTION_KEY`), a fresh 96-bit nonce per key, and the key set and kid as associated
//! data, so a sealed key copied onto another row does not open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::store::KeyRow;

/// The 32-byte key that seals private keys. Its `Debug` is redacted and it is never logged.
pub struct KeyEncryptionKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([REDACTED])")
    }
}

impl Clone for KeyEncryptionKey {
    fn clone(&self) -> Self {
        Self(SecretBox::new(Box::new(*self.0.expose_secret())))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("is not valid base64")]
    NotBase64,
    #[error(
        "decodes to {0} bytes; it must be exactly 32 (generate one with: head -c 32 /dev/urandom | base64)"
    )]
    WrongLength(usize),
    #[error(
        "does not open this sealed key: it is not the key-encryption key the keys were sealed with"
    )]
    Open,
    #[error("encryption failed")]
    Seal,
}

/// A private key as stored: nonce and ciphertext (with the GCM tag appended).
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl KeyEncryptionKey {
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::NotBase64)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealError::WrongLength(bytes.len()))?;
        secrecy::zeroize::Zeroize::zeroize(&mut bytes);
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key, for first runs and tests.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("the system random number generator failed");
        Self(SecretBox::new(Box::new(key)))
    }

    /// A fresh random key and its base64 text (for the embedded store's key file).
    pub fn generate_base64() -> (Self, SecretString) {
        let key = Self::generate();
        let text = SecretString::from(STANDARD.encode(key.0.expose_secret()));
        (key, text)
    }

    fn aead(&self) -> LessSafeKey {
        let unbound = UnboundKey::new(&AES_256_GCM, self.0.expose_secret())
            .expect("a 32-byte key is a valid AES-256 key");
        LessSafeKey::new(unbound)
    }

    pub fn seal(&self, plaintext: &[u8], associated: &str) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut in_out = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError::Seal)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext: in_out,
        })
    }

    /// Opens a sealed key; the plaintext is wiped when the returned box is dropped.
    pub fn open(&self, sealed: &Sealed, associated: &str) -> Result<SecretBox<Vec<u8>>, SealError> {
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce).map_err(|_| SealError::Open)?;
        let mut in_out = sealed.ciphertext.clone();
        let len = self
            .aead()
            .open_in_place(nonce, Aad::from(associated.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Open)?
            .len();
        in_out.truncate(len);
        Ok(SecretBox::new(Box::new(in_out)))
    }
}

/// The sealed private half of a stored key.
pub(super) fn sealed(row: &KeyRow) -> Sealed {
    Sealed {
        nonce: row.nonce.clone(),
        ciphertext: row.private_key_sealed.clone(),
    }
}

/// The associated data a sealed key is bound to: its set and kid.
pub(super) fn associated_data(key_set: &str, kid: &str) -> String {
    format!("{key_set}:{kid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_associated_data() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal(b"private key", "api:kid1").unwrap();
        assert_ne!(sealed.ciphertext[..11], b"private key"[..]);
        assert_eq!(
            kek.open(&sealed, "api:kid1").unwrap().expose_secret(),
            b"private key"
        );
        assert_eq!(
            kek.open(&sealed, "public:kid1").unwrap_err(),
            SealError::Open
        );
        assert_eq!(
            KeyEncryptionKey::generate()
                .open(&sealed, "api:kid1")
                .unwrap_err(),
            SealError::Open
        );
    }

    #[test]
    fn the_key_encryption_key_must_be_32_bytes_of_base64() {
        assert!(KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert_eq!(
            KeyEncryptionKey::from_base64("not base64!").unwrap_err(),
            SealError::NotBase64
        );
        assert_eq!(
            KeyEncryptionKey::from_base64(&STANDARD.encode([7u8; 16])).unwrap_err(),
            SealError::WrongLength(16)
        );
        assert_eq!(
            format!("{:?}", KeyEncryptionKey::generate()),
            "KeyEncryptionKey([REDACTED])"
        );
    }
}
