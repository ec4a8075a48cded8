//! JOSE for `access-tokens` and its verifier crate, in one implementation:
//!
//! - [`jws`]: compact JWS (RFC 7515) with RS256 only. The header is parsed once, `alg` is pinned
//!   before any key is looked up (RFC 8725 section 3.1), a `crit` header is refused (RFC 7515
//!   section 4.1.11: this crate understands no extension), and the claims' NumericDates and
//!   issuer are checked by one set of [`jws::Rules`].
//! - [`sign`]: signing with an aws-lc-rs RSA key pair parsed once, the compact JWS assembled here.
//! - [`jwk`]: RSA public keys as JWKs, their RFC 7638 thumbprints, and the RS256 signing keys of
//!   a JWKS read into verifying keys parsed once (2048 to 8192 bits; shorter keys are left out
//!   when the JWKS is read).
//! - [`status_list`]: the Token Status List codec (draft-ietf-oauth-status-list), checked
//!   against the draft's test vectors.
//!
//! It knows no HTTP and no database: the service and the verifier bring their own.

mod error;
pub mod jwk;
pub mod jws;
pub mod sign;
pub mod status_list;

pub use error::Error;
pub use jwk::{PublicJwk, VerifyingKey};
pub use sign::{SignError, SigningKey};
pub use status_list::{DecodeError, StatusList};
