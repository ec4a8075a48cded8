//! Why a token was refused, or why a verifier could not be built.

impl From<access_tokens_jose::Error> for Error {
    fn from(error: access_tokens_jose::Error) -> Self {
        use access_tokens_jose::Error as Jose;
        match error {
            Jose::Malformed(why) => Error::Malformed(why),
            Jose::Algorithm(alg) => Error::Algorithm(alg),
            Jose::Critical => Error::Malformed("header has crit extensions"),
            Jose::NoKid => Error::Malformed("header has no kid"),
            Jose::Signature => Error::Signature,
            Jose::Issuer => Error::Issuer,
            Jose::Expired => Error::Expired,
            Jose::NotYetValid => Error::NotYetValid,
            other => Error::Malformed(other.detail()),
        }
    }
}

/// Why a token is not accepted (or, for [`Error::Discovery`], why [`crate::Verifier`] could not
/// be built). The messages name the rule broken, never the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a compact JWS with a JSON header and a JSON object of claims, or a claim this crate
    /// reads has the wrong type.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not RS256 (`none`, HS256 and every other algorithm are refused
    /// before any key is looked up).
    #[error("algorithm {0:?} is not accepted: only RS256")]
    Algorithm(String),
    /// No key of the issuer's JWKS has this `kid`, even after refetching it (at most once per
    /// cooldown).
    #[error("no key of the issuer has kid {0:?}")]
    UnknownKey(String),
    /// The signature does not verify with the key named by `kid`.
    #[error("signature does not verify")]
    Signature,
    /// `iss` is not the configured issuer, byte for byte.
    #[error("iss is not the expected issuer")]
    Issuer,
    /// A JWT of the issuer that is not one of its access tokens: a `typ` other than `JWT` (a
    /// status list is `statuslist+jwt`), or no `token_type` or `token_id` claim.
    #[error("not an access token of the issuer: {0}")]
    NotAnAccessToken(&'static str),
    /// The token carries no `status` claim while [`crate::Builder::require_status`] is on (the
    /// default).
    #[error("token has no status claim, so its revocation cannot be checked")]
    NoStatus,
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The token's status list says 1 (INVALID): it was revoked.
    #[error("token has been revoked")]
    Revoked,
    /// The token's status list says 2 (SUSPENDED).
    #[error("token is suspended")]
    Suspended,
    /// The token's status list holds a value other than 0, 1 and 2 for it.
    #[error("token has status {0:#04x}")]
    InvalidStatus(u8),
    /// The token's index is outside its status list, so the list says nothing about it.
    #[error("status index {idx} is outside the status list ({len} entries)")]
    StatusIndex {
        /// The token's `status.status_list.idx`.
        idx: u64,
        /// How many entries the list holds.
        len: u64,
    },
    /// The token's status list URI is not under the issuer's URL, so it is not fetched.
    #[error("status list uri {0:?} is not under the issuer")]
    StatusUri(String),
    /// The status list was fetched but is not a valid Status List Token for this token (wrong
    /// `typ`, algorithm, signature, `sub`, an expired list, a malformed `status_list`).
    #[error("status list is not valid: {0}")]
    StatusListInvalid(&'static str),
    /// The status list could not be fetched and no copy within its `exp` is cached.
    #[error("status list unavailable: {0}")]
    StatusUnavailable(String),
    /// Building the verifier: the discovery document or the JWKS could not be read.
    #[error("issuer metadata unavailable: {0}")]
    Discovery(String),
}
