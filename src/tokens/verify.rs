//! Verifying tokens of this service: against the published key its `kid` names, for the issuer of
//! that key's set, with the algorithm pinned to RS256 and `exp` enforced without leeway (the
//! service's own clock issued it). Used by the Caller extractor and by introspection.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::keys::{KeySetName, Keys};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// A token whose signature, issuer and expiry hold. Revocation is the caller's next check.
#[derive(Debug)]
pub struct OwnToken {
    pub set: KeySetName,
    pub claims: Map<String, Value>,
}

impl OwnToken {
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// Why a token is not valid; for debug logs only.
pub type Invalid = &'static str;

pub fn verify_own(keys: &Keys, token: &str) -> Result<OwnToken, Invalid> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("token too large");
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed header")?;
    if header.alg != Algorithm::RS256 {
        return Err("algorithm is not RS256");
    }
    let kid = header.kid.ok_or("no kid")?;
    let set = keys.set_of_kid(&kid).ok_or("kid not published")?;
    let key = set.verifying_key(&kid).ok_or("kid not published")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&set.issuer]);
    validation.set_required_spec_claims(&["iss", "sub"]);
    validation.leeway = 0;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|_| "signature or claims invalid")?
        .claims;
    Ok(OwnToken {
        set: set.name,
        claims,
    })
}
