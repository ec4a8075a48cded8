//! A stored key is the service's own only when it is bound to the key-encryption key: its sealed
//! private half opens under the KEK (with its set and kid as associated data), and its public half
//! and kid are that private key's. Anyone who can write to the database but does not hold the KEK
//! cannot add a key that is published or trusted.

use aws_lc_rs::rsa::KeyPair;
use secrecy::ExposeSecret;

use super::error::KeyError;
use super::jwks::PublicJwk;
use super::seal::{KeyEncryptionKey, associated_data, sealed};
use crate::store::KeyRow;

/// Opens a stored private key and checks that the row's public half and kid are its own; the
/// plaintext is wiped as soon as it is parsed.
pub(super) fn bound_key_pair(kek: &KeyEncryptionKey, row: &KeyRow) -> Result<KeyPair, KeyError> {
    let der = kek
        .open(&sealed(row), &associated_data(&row.key_set, &row.kid))
        .map_err(|e| KeyError::Seal(e, row.kid.clone()))?;
    let pair =
        KeyPair::from_pkcs8(der.expose_secret()).map_err(|_| KeyError::Corrupt(row.kid.clone()))?;
    let public = PublicJwk::from_key_pair(&pair);
    if public.n != row.n || public.e != row.e {
        return Err(KeyError::Unbound(
            row.kid.clone(),
            "n and e are not its private key's",
        ));
    }
    if public.thumbprint() != row.kid {
        return Err(KeyError::Unbound(
            row.kid.clone(),
            "kid is not its public key's thumbprint",
        ));
    }
    Ok(pair)
}
