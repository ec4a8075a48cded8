//! Verifying RS256 compact JWS tokens with public keys parsed once.
//!
//! `jsonwebtoken::decode` rebuilds the RSA public key from its components on every call (and reads
//! the header and the claims twice); this module holds each key as an aws-lc `ParsedPublicKey`,
//! built when the key is loaded, and reads each part of a token once. The checks are those the
//! service asked of `jsonwebtoken` (`Validation` with RS256 only, the issuer as a single string,
//! `exp` and `nbf` as NumericDates): see [`Rules`].

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a token is not valid; for debug logs only.
pub type Invalid = &'static str;

/// An RSA public key (2048 to 8192 bits) for RS256 signatures, parsed once.
#[derive(Debug, Clone)]
pub struct VerifyingKey(ParsedPublicKey);

impl VerifyingKey {
    /// From a JWK's `n` and `e` (base64url without padding, as RFC 7518 writes them).
    pub fn from_components(n: &str, e: &str) -> Option<Self> {
        let n = URL_SAFE_NO_PAD.decode(n).ok()?;
        let e = URL_SAFE_NO_PAD.decode(e).ok()?;
        RsaPublicKeyComponents { n: &n, e: &e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .ok()
            .map(Self)
    }
}

/// The `iss` claim, read without verifying, only to choose which keys to verify against: the one
/// unverified read of a token.
pub fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|i| i.iss)
}

/// The header of a compact JWS, read without verifying, to choose the key. Anything but RS256
/// (including `none`) is refused here, before any key is looked up.
pub fn rs256_header(token: &str) -> Result<Header, Invalid> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed header")?;
    if header.alg != Algorithm::RS256 {
        return Err("algorithm is not RS256");
    }
    Ok(header)
}

/// What the claims of a token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `iss` must be this very string.
    pub issuer: &'a str,
    /// `exp` must be present (it is checked whenever present).
    pub require_exp: bool,
    /// `sub` must be present, as a string.
    pub require_sub: bool,
    /// `nbf`, when present, must have passed.
    pub check_nbf: bool,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
}

/// Verifies the RS256 signature of `token` with `key`, then the claims against `rules`, and
/// returns the claims. The header is the caller's to read first ([`rs256_header`]).
pub fn verify(
    token: &str,
    key: &VerifyingKey,
    rules: &Rules,
) -> Result<Map<String, Value>, Invalid> {
    let (signed, signature) = token.rsplit_once('.').ok_or("not a compact JWS")?;
    let (_, payload) = signed.split_once('.').ok_or("not a compact JWS")?;
    if payload.contains('.') {
        return Err("not a compact JWS");
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "signature is not base64url")?;
    key.0
        .verify_sig(signed.as_bytes(), &signature)
        .map_err(|_| "signature invalid")?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "claims are not base64url")?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| "claims are not a JSON object")?;
    check(&claims, rules, jsonwebtoken::get_current_timestamp())?;
    Ok(claims)
}

/// A NumericDate claim as `jsonwebtoken` reads it: absent (or null), a non-negative number
/// (fractions rounded), or malformed.
enum Date {
    Absent,
    At(u64),
    Malformed,
}

fn date(claims: &Map<String, Value>, name: &str) -> Date {
    match claims.get(name) {
        None | Some(Value::Null) => Date::Absent,
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(at), _) => Date::At(at),
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                Date::At(f.round() as u64)
            }
            _ => Date::Malformed,
        },
        Some(_) => Date::Malformed,
    }
}

fn check(claims: &Map<String, Value>, rules: &Rules, now: u64) -> Result<(), Invalid> {
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer) {
        return Err("iss is not the expected issuer");
    }
    if rules.require_sub && !claims.get("sub").is_some_and(Value::is_string) {
        return Err("no sub");
    }
    match date(claims, "exp") {
        Date::Absent if rules.require_exp => return Err("no exp"),
        Date::Absent => {}
        Date::Malformed => return Err("exp is not a NumericDate"),
        Date::At(exp) if exp < now.saturating_sub(rules.leeway) => return Err("expired"),
        Date::At(_) => {}
    }
    if rules.check_nbf {
        match date(claims, "nbf") {
            Date::Absent => {}
            Date::Malformed => return Err("nbf is not a NumericDate"),
            Date::At(nbf) if nbf > now.saturating_add(rules.leeway) => return Err("not yet valid"),
            Date::At(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_issuer_reads_only_the_iss_claim() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://i.example","sub":"x"}"#);
        assert_eq!(
            unverified_issuer(&format!("h.{payload}.s")).as_deref(),
            Some("https://i.example")
        );
        assert_eq!(unverified_issuer("h.!!!.s"), None);
        assert_eq!(unverified_issuer("nodots"), None);
    }
    use serde_json::json;

    const RULES: Rules = Rules {
        issuer: "https://issuer.example",
        require_exp: false,
        require_sub: true,
        check_nbf: true,
        leeway: 10,
    };

    fn claims(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        map
    }

    #[test]
    fn claims_are_checked_as_jsonwebtoken_validation_did() {
        let ok = |v: Value, rules: &Rules| check(&claims(v), rules, 1_000);
        let base = |extra: Value| {
            let mut m = claims(json!({"iss": "https://issuer.example", "sub": "u-1"}));
            m.extend(claims(extra));
            Value::Object(m)
        };
        assert!(ok(base(json!({})), &RULES).is_ok());
        assert!(ok(base(json!({"exp": 1_000})), &RULES).is_ok());
        assert!(
            ok(base(json!({"exp": 990})), &RULES).is_ok(),
            "within the leeway"
        );
        assert!(ok(base(json!({"exp": 989})), &RULES).is_err());
        assert!(
            ok(base(json!({"exp": 1_500.4})), &RULES).is_ok(),
            "fractions round"
        );
        assert!(
            ok(base(json!({"exp": null})), &RULES).is_ok(),
            "null is absent"
        );
        for bad in [
            json!("2000"),
            json!(-1),
            json!(true),
            json!([2000]),
            json!(1e300),
        ] {
            assert!(ok(base(json!({ "exp": bad })), &RULES).is_err(), "{bad}");
        }
        assert!(ok(base(json!({"nbf": 1_010})), &RULES).is_ok());
        assert!(ok(base(json!({"nbf": 1_011})), &RULES).is_err());
        assert!(ok(base(json!({"nbf": "soon"})), &RULES).is_err());
        let unchecked_nbf = Rules {
            check_nbf: false,
            ..RULES
        };
        assert!(ok(base(json!({"nbf": 5_000})), &unchecked_nbf).is_ok());

        let exp_required = Rules {
            require_exp: true,
            ..RULES
        };
        assert!(ok(base(json!({})), &exp_required).is_err());
        assert!(ok(base(json!({"exp": 2_000})), &exp_required).is_ok());

        assert!(
            ok(json!({"iss": "https://issuer.example"}), &RULES).is_err(),
            "no sub"
        );
        assert!(ok(json!({"iss": "https://issuer.example", "sub": 5}), &RULES).is_err());
        for iss in [
            json!("https://other.example"),
            json!(["https://issuer.example"]),
            json!(null),
        ] {
            assert!(
                ok(json!({"iss": iss, "sub": "u-1"}), &RULES).is_err(),
                "{iss}"
            );
        }
    }
}
