//! Why a compact JWS is refused.

/// Why a token is refused; the words name the rule broken, never the token. [`Error::detail`]
/// gives each a short fixed phrase for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a compact JWS with a JSON header and a JSON object of claims, or a claim read here has
    /// the wrong type.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not RS256 (`none`, HS256 and every other algorithm are refused
    /// before any key is looked up).
    #[error("algorithm {0:?} is not accepted: only RS256")]
    Algorithm(String),
    /// The header names `crit` extensions, none of which this crate understands (RFC 7515
    /// section 4.1.11: the token must then be rejected).
    #[error("the header lists crit extensions, which are not understood")]
    Critical,
    /// The header has no `kid`, so no key can be chosen.
    #[error("the header has no kid")]
    NoKid,
    /// The signature does not verify with the key named by `kid`.
    #[error("signature does not verify")]
    Signature,
    /// `iss` is not the expected issuer, as a single string, byte for byte.
    #[error("iss is not the expected issuer")]
    Issuer,
    /// A claim the rules require is absent.
    #[error("the token has no {0} claim")]
    Missing(&'static str),
    /// `exp` has passed (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
}

impl Error {
    /// A short fixed phrase for the log and for mapping to a client's reason.
    pub fn detail(&self) -> &'static str {
        match self {
            Error::Malformed(why) => why,
            Error::Algorithm(_) => "algorithm is not RS256",
            Error::Critical => "header has crit extensions",
            Error::NoKid => "no kid",
            Error::Signature => "signature invalid",
            Error::Issuer => "iss is not the expected issuer",
            Error::Missing("exp") => "no exp",
            Error::Missing("sub") => "no sub",
            Error::Missing(_) => "a required claim is missing",
            Error::Expired => "expired",
            Error::NotYetValid => "not yet valid",
        }
    }
}
