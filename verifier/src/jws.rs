//! Compact JWS (RFC 7515) with RS256 only: splitting, the header, the signature and the
//! NumericDate claims. Reading the header without verifying is done here only, to pick the key.

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Error;

/// An RSA public key (2048 to 8192 bits) for RS256, parsed once when the JWKS is read.
#[derive(Debug)]
pub(crate) struct VerifyingKey(ParsedPublicKey);

impl VerifyingKey {
    /// From a JWK's `n` and `e` (base64url without padding, RFC 7518 section 6.3.1).
    pub(crate) fn from_components(n: &str, e: &str) -> Option<Self> {
        let n = URL_SAFE_NO_PAD.decode(n).ok()?;
        let e = URL_SAFE_NO_PAD.decode(e).ok()?;
        // RS256 keys are at least 2048 bits (RFC 7518 section 3.3); a shorter one is left out
        // when the JWKS is read rather than failing every verification later.
        let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
        if !(2048..=8192).contains(&bits) {
            return None;
        }
        RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .ok()
            .map(Self)
    }
}

/// The members of a JOSE header this crate reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// RFC 7515 section 4.1.11: extensions that must be understood. This crate understands
    /// none, so a header that lists any is refused.
    pub crit: Option<Value>,
}

/// A compact JWS split into its parts; nothing is verified yet.
pub(crate) struct Compact<'a> {
    /// `header.payload`, the bytes the signature covers.
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
    pub header: Header,
}

/// Splits `token` and reads its header, refusing any algorithm but RS256 before a key is looked
/// up (RFC 8725 section 3.1).
pub(crate) fn parse(token: &str) -> Result<Compact<'_>, Error> {
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or(Error::Malformed("not a compact JWS"))?;
    let (header, payload) = signed
        .split_once('.')
        .ok_or(Error::Malformed("not a compact JWS"))?;
    if payload.contains('.') {
        return Err(Error::Malformed("not a compact JWS"));
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Error::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|_| Error::Malformed("header is not a JOSE header"))?;
    if header.alg != "RS256" {
        return Err(Error::Algorithm(header.alg));
    }
    if header.crit.is_some() {
        return Err(Error::Malformed("header has crit extensions"));
    }
    Ok(Compact {
        signed,
        payload,
        signature,
        header,
    })
}

impl Compact<'_> {
    /// Verifies the signature with `key`, then decodes the claims.
    pub(crate) fn verify(&self, key: &VerifyingKey) -> Result<Map<String, Value>, Error> {
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| Error::Malformed("signature is not base64url"))?;
        key.0
            .verify_sig(self.signed.as_bytes(), &signature)
            .map_err(|_| Error::Signature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| Error::Malformed("claims are not base64url"))?;
        serde_json::from_slice(&payload).map_err(|_| Error::Malformed("claims are not an object"))
    }
}

/// A NumericDate claim (RFC 7519 section 2): absent (or null), seconds since the epoch (a
/// fraction rounds), or malformed.
pub(crate) fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Error> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(at), _) => Ok(Some(at)),
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "checked finite, non-negative and below u64::MAX"
            )]
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Ok(Some(f.round() as u64))
            }
            _ => Err(Error::Malformed(name_error(name))),
        },
        Some(_) => Err(Error::Malformed(name_error(name))),
    }
}

fn name_error(name: &str) -> &'static str {
    match name {
        "exp" => "exp is not a NumericDate",
        "nbf" => "nbf is not a NumericDate",
        "iat" => "iat is not a NumericDate",
        _ => "a date claim is not a NumericDate",
    }
}

/// `exp` (absent is accepted: tokens of the service may never expire) and `nbf`, each with
/// `leeway` seconds of clock skew.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: u64,
    leeway: u64,
) -> Result<(Option<u64>, Option<u64>), Error> {
    let exp = date(claims, "exp")?;
    if exp.is_some_and(|exp| exp < now.saturating_sub(leeway)) {
        return Err(Error::Expired);
    }
    if date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(Error::NotYetValid);
    }
    let iat = date(claims, "iat")?;
    Ok((exp, iat))
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn only_rs256_passes_the_header() {
        for alg in ["none", "HS256", "RS384", "PS256", "ES256", "rs256", ""] {
            let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert!(
                matches!(parse(&token), Err(Error::Algorithm(a)) if a == alg),
                "{alg}"
            );
        }
        let ok = format!("{}.{}.sig", b64(r#"{"alg":"RS256","kid":"k"}"#), b64("{}"));
        assert_eq!(parse(&ok).unwrap().header.kid.as_deref(), Some("k"));
    }

    #[test]
    fn malformed_tokens_are_malformed() {
        let crit = format!(
            "{}.{}.s",
            b64(r#"{"alg":"RS256","crit":["exp"]}"#),
            b64("{}")
        );
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.e30.s", &crit] {
            assert!(matches!(parse(bad), Err(Error::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn times_are_checked_with_leeway_and_exp_may_be_absent() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        assert!(check_times(&claims(json!({})), 1_000, 10).is_ok());
        assert!(check_times(&claims(json!({"exp": 990})), 1_000, 10).is_ok());
        assert!(matches!(
            check_times(&claims(json!({"exp": 989})), 1_000, 10),
            Err(Error::Expired)
        ));
        assert!(check_times(&claims(json!({"nbf": 1_010})), 1_000, 10).is_ok());
        assert!(matches!(
            check_times(&claims(json!({"nbf": 1_011})), 1_000, 10),
            Err(Error::NotYetValid)
        ));
        for bad in [json!("2000"), json!(-1), json!(true), json!(1e300)] {
            assert!(matches!(
                check_times(&claims(json!({ "exp": bad })), 1_000, 10),
                Err(Error::Malformed(_))
            ));
        }
    }
}
