//! RSA public keys as JWKs (RFC 7517): their RFC 7638 thumbprints, the JWKS a key set publishes,
//! and the RS256 signing keys of a JWKS read into verifying keys parsed once.

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The sizes of RSA modulus an RS256 key may have: at least 2048 bits (RFC 7518 section 3.3), at
/// most 8192 (what aws-lc verifies).
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The JWS algorithms a verifying key may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: this service's own tokens and its trusted issuers'.
    Rs256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 section 3.4): taken from workloads' issuers only.
    Es256,
}

impl Algorithm {
    /// The `alg` of a JOSE header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// A public key for RS256 (or ES256) signatures, parsed once when it is loaded. The key decides
/// the algorithm: a token whose header names another is refused.
#[derive(Debug, Clone)]
pub struct VerifyingKey(ParsedPublicKey, Algorithm);

impl VerifyingKey {
    /// From a JWK's `n` and `e` (base64url without padding, RFC 7518 section 6.3.1). A modulus
    /// outside [`RSA_BITS`] is refused here, when the key is loaded, rather than failing every
    /// verification later.
    pub fn from_components(n: &str, e: &str) -> Option<Self> {
        let n = URL_SAFE_NO_PAD.decode(n).ok()?;
        let e = URL_SAFE_NO_PAD.decode(e).ok()?;
        let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
        if !RSA_BITS.contains(&bits) {
            return None;
        }
        RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .ok()
            .map(|key| Self(key, Algorithm::Rs256))
    }

    /// A P-256 key for ES256 from a JWK's `x` and `y` (base64url, 32 bytes each, RFC 7518
    /// section 6.2.1); a point not on the curve is refused here.
    pub fn from_p256(x: &str, y: &str) -> Option<Self> {
        let x = URL_SAFE_NO_PAD.decode(x).ok()?;
        let y = URL_SAFE_NO_PAD.decode(y).ok()?;
        if x.len() != 32 || y.len() != 32 {
            return None;
        }
        let point = [&[4u8][..], &x, &y].concat();
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .ok()
            .map(|key| Self(key, Algorithm::Es256))
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.1
    }

    /// From a JWK's public members.
    pub fn from_jwk(jwk: &PublicJwk) -> Option<Self> {
        Self::from_components(&jwk.n, &jwk.e)
    }

    /// Whether `signature` is this key's signature of `message` (RS256, or ES256's fixed `r || s`).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }
}

/// The public half of an RSA key, base64url-encoded as in a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub n: String,
    pub e: String,
}

impl PublicJwk {
    pub fn from_key_pair(pair: &aws_lc_rs::rsa::KeyPair) -> Self {
        use aws_lc_rs::signature::KeyPair as _;
        let public = pair.public_key();
        Self {
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order,
    /// base64url without padding. Any verifier can derive it from the published key.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, self.e, self.n);
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }
}

/// One published key of a JWKS: public members only, never a private one.
#[derive(Debug, Serialize)]
pub struct JwkOut<'a> {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: &'a str,
    pub n: &'a str,
    pub e: &'a str,
}

impl<'a> JwkOut<'a> {
    /// An RS256 signing key named `kid`.
    pub fn rs256(kid: &'a str, jwk: &'a PublicJwk) -> Self {
        Self {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid,
            n: &jwk.n,
            e: &jwk.e,
        }
    }
}

/// A JWKS document (RFC 7517 section 5).
#[derive(Debug, Serialize)]
pub struct JwksOut<'a> {
    pub keys: Vec<JwkOut<'a>>,
}

#[derive(Deserialize)]
struct JwksIn {
    keys: Vec<serde_json::Value>,
}

/// Why a JWKS could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a JWKS: {0}")]
pub struct JwksError(#[from] serde_json::Error);

/// The RS256 signing keys of a JWKS document, by `kid`. Keys of another `kty`, `use` or `alg`,
/// without a `kid`, or of a size outside [`RSA_BITS`] are left out (no token this crate accepts
/// can name them), not an error; a document that is not a JWKS is.
pub fn rs256_keys(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, JwksError> {
    let jwks: JwksIn = serde_json::from_slice(body)?;
    Ok(jwks
        .keys
        .iter()
        .filter_map(|jwk| {
            let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
            if field("kty") != Some("RSA")
                || jwk.get("use").is_some_and(|u| u.as_str() != Some("sig"))
                || jwk.get("alg").is_some_and(|a| a.as_str() != Some("RS256"))
            {
                return None;
            }
            let key = VerifyingKey::from_components(field("n")?, field("e")?)?;
            Some((field("kid")?.to_owned(), key))
        })
        .collect())
}

/// The signing keys of a JWKS document, by `kid`: RS256 keys as [`rs256_keys`] takes them, and
/// P-256 keys for ES256 (`kty` `EC`, `crv` `P-256`, `alg` ES256 or absent, `use` sig or absent).
/// Each key verifies only tokens whose header names its own algorithm.
pub fn signing_keys(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, JwksError> {
    let mut keys = rs256_keys(body)?;
    let jwks: JwksIn = serde_json::from_slice(body)?;
    for jwk in &jwks.keys {
        let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        if field("kty") != Some("EC")
            || field("crv") != Some("P-256")
            || jwk.get("use").is_some_and(|u| u.as_str() != Some("sig"))
            || jwk.get("alg").is_some_and(|a| a.as_str() != Some("ES256"))
        {
            continue;
        }
        if let (Some(kid), Some(x), Some(y)) = (field("kid"), field("x"), field("y"))
            && let Some(key) = VerifyingKey::from_p256(x, y)
        {
            keys.entry(kid.to_owned()).or_insert(key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RSA key of RFC 7517 appendix A.1.
    const N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn only_rs256_signing_keys_with_a_kid_and_a_good_size_are_kept() {
        let short = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS256", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "null-use", "use": null, "n": N, "e": "AQAB"},
            {"kty": "RSA", "n": N, "e": "AQAB"},
            {"kty": "RSA", "kid": "tiny", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "1024", "n": short, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
            "not a key",
        ]});
        let keys = rs256_keys(jwks.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["a", "b"]);
        assert!(rs256_keys(b"{\"keys\": 5}").is_err());
        assert!(rs256_keys(b"[]").is_err());
    }

    /// RFC 7638 section 3.1: the thumbprint of the key of RFC 7517 appendix A.1.
    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let jwk = PublicJwk {
            n: N.to_owned(),
            e: "AQAB".to_owned(),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
