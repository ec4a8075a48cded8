//! Compact JWS (RFC 7515) with RS256 (and ES256 where a caller allows it): splitting, the header, the signature and the claims'
//! issuer and NumericDates. Reading the header (and, with [`unverified_issuer`], the issuer)
//! before verifying is done here only, to choose the key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Error;
use crate::jwk::{Algorithm, VerifyingKey};

/// The members of a JOSE header this crate reads; others are ignored, except `crit`, which is
/// refused. A member named twice makes the header malformed.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    /// RFC 7515 section 4.1.11: extensions that must be understood. This crate understands
    /// none, so a header that carries the member at all (even empty, even null) is refused.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// The `typ` of this service's access tokens (and what [`crate::SigningKey::sign`] writes).
pub const TYP_JWT: &str = "JWT";
/// The `typ` of a Status List Token (draft-ietf-oauth-status-list section 5.1).
pub const TYP_STATUS_LIST: &str = "statuslist+jwt";

impl Header {
    /// Whether `typ` is `expected`: compared without regard to case, and with the
    /// `application/` prefix RFC 7515 section 4.1.9 lets a sender drop (either way). A header
    /// without `typ` is no type. RFC 8725 section 3.11: a recipient that checks `typ` cannot
    /// take one kind of JWT of an issuer (a status list) for another (an access token).
    pub fn typ_is(&self, expected: &str) -> bool {
        fn bare(typ: &str) -> &str {
            typ.get(..12)
                .filter(|p| p.eq_ignore_ascii_case("application/"))
                .map_or(typ, |_| &typ[12..])
        }
        self.typ
            .as_deref()
            .is_some_and(|typ| bare(typ).eq_ignore_ascii_case(bare(expected)))
    }
}

/// True for a member that is there, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A compact JWS split into its parts, with its header read and its algorithm pinned; nothing is
/// verified yet.
#[derive(Debug)]
pub struct Compact<'a> {
    /// `header.payload`, the bytes the signature covers.
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
    pub header: Header,
}

/// Splits `token` and reads its header, refusing any algorithm but RS256 and any `crit` before a
/// key is looked up (RFC 8725 section 3.1).
pub fn parse(token: &str) -> Result<Compact<'_>, Error> {
    parse_allowing(token, &[Algorithm::Rs256])
}

/// [`parse`], taking any of `allowed` (never `none`, never HMAC: this crate verifies neither).
pub fn parse_allowing<'a>(token: &'a str, allowed: &[Algorithm]) -> Result<Compact<'a>, Error> {
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
        .map_err(|_| Error::Malformed("malformed header"))?;
    // RFC 7515 section 4: the header is a JSON object (serde would read an array into `Header`
    // by position).
    if header.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::Malformed("malformed header"));
    }
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| Error::Malformed("malformed header"))?;
    if !allowed.iter().any(|a| a.as_str() == header.alg) {
        return Err(Error::Algorithm(header.alg));
    }
    if header.crit {
        return Err(Error::Critical);
    }
    Ok(Compact {
        signed,
        payload,
        signature,
        header,
    })
}

impl Compact<'_> {
    /// The header's `kid`, which chooses the key.
    pub fn kid(&self) -> Result<&str, Error> {
        self.header.kid.as_deref().ok_or(Error::NoKid)
    }

    /// Verifies the signature over the exact `header.payload` bytes with `key`, then decodes the
    /// claims, which must be a JSON object.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Map<String, Value>, Error> {
        // The key decides the algorithm: an ES256 key never checks an RS256 header, nor the
        // other way round (RFC 8725 section 3.1).
        if key.algorithm().as_str() != self.header.alg {
            return Err(Error::Algorithm(self.header.alg.clone()));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| Error::Malformed("signature is not base64url"))?;
        if !key.verifies(self.signed.as_bytes(), &signature) {
            return Err(Error::Signature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| Error::Malformed("claims are not base64url"))?;
        serde_json::from_slice(&payload)
            .map_err(|_| Error::Malformed("claims are not a JSON object"))
    }

    /// [`Compact::verify`], then the claims against `rules` at `now` (seconds since the epoch).
    pub fn verify_with(
        &self,
        key: &VerifyingKey,
        rules: &Rules,
        now: u64,
    ) -> Result<Map<String, Value>, Error> {
        let claims = self.verify(key)?;
        check(&claims, rules, now)?;
        Ok(claims)
    }
}

/// The `iss` claim, read without verifying, only to choose which keys to verify against: the one
/// unverified read of a token's claims.
pub fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|i| i.iss)
}

/// What the claims of a token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `iss` must be this very string (an array merely holding it is refused).
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

/// Checks `claims` against `rules` at `now` (seconds since the epoch).
pub fn check(claims: &Map<String, Value>, rules: &Rules, now: u64) -> Result<(), Error> {
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer) {
        return Err(Error::Issuer);
    }
    if rules.require_sub && !claims.get("sub").is_some_and(Value::is_string) {
        return Err(Error::Missing("sub"));
    }
    let exp = date(claims, "exp")?;
    if rules.require_exp && exp.is_none() {
        return Err(Error::Missing("exp"));
    }
    if exp.is_some_and(|exp| exp < now.saturating_sub(rules.leeway)) {
        return Err(Error::Expired);
    }
    if rules.check_nbf
        && date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(rules.leeway))
    {
        return Err(Error::NotYetValid);
    }
    Ok(())
}

/// `exp` (absent is accepted) and `nbf`, each with `leeway` seconds of clock skew, at `now`;
/// returns `exp` and `iat`, which must be NumericDates when present.
pub fn check_times(
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
    Ok((exp, date(claims, "iat")?))
}

/// A NumericDate claim (RFC 7519 section 2): absent (or null), seconds since the epoch (a
/// fraction rounds), or malformed.
pub fn date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, Error> {
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
            _ => Err(Error::Malformed(not_a_date(name))),
        },
        Some(_) => Err(Error::Malformed(not_a_date(name))),
    }
}

fn not_a_date(name: &str) -> &'static str {
    match name {
        "exp" => "exp is not a NumericDate",
        "nbf" => "nbf is not a NumericDate",
        "iat" => "iat is not a NumericDate",
        _ => "a date claim is not a NumericDate",
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
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

    fn token_with_header(header: &str) -> String {
        format!("{}.{}.sig", b64(header), b64("{}"))
    }

    #[test]
    fn only_rs256_passes_the_header() {
        for alg in ["none", "HS256", "RS384", "PS256", "ES256", "rs256", ""] {
            let token = token_with_header(&format!(r#"{{"alg":"{alg}"}}"#));
            assert_eq!(
                parse(&token).unwrap_err(),
                Error::Algorithm(alg.to_owned()),
                "{alg}"
            );
        }
        let ok = token_with_header(r#"{"alg":"RS256","kid":"k","typ":"JWT"}"#);
        let parsed = parse(&ok).unwrap();
        assert_eq!(parsed.kid(), Ok("k"));
        assert_eq!(parsed.header.typ.as_deref(), Some("JWT"));
    }

    #[test]
    fn typ_compares_without_case_and_the_application_prefix() {
        let typ_of = |typ: &str| {
            let header = if typ == "-" {
                r#"{"alg":"RS256"}"#.to_owned()
            } else {
                format!(r#"{{"alg":"RS256","typ":"{typ}"}}"#)
            };
            parse(&token_with_header(&header)).unwrap().header
        };
        for typ in ["JWT", "jwt", "application/jwt", "Application/JWT"] {
            assert!(typ_of(typ).typ_is(TYP_JWT), "{typ}");
            assert!(!typ_of(typ).typ_is(TYP_STATUS_LIST), "{typ}");
        }
        for typ in [
            "statuslist+jwt",
            "application/statuslist+jwt",
            "STATUSLIST+JWT",
        ] {
            assert!(typ_of(typ).typ_is(TYP_STATUS_LIST), "{typ}");
            assert!(!typ_of(typ).typ_is(TYP_JWT), "{typ}");
        }
        for typ in ["-", "", "at+jwt", "JWS", "application/", "jwt "] {
            assert!(!typ_of(typ).typ_is(TYP_JWT), "{typ}");
        }
    }

    #[test]
    fn a_crit_header_is_refused_whatever_it_lists() {
        for crit in [r#"["exp"]"#, "[]", r#""b64""#, "null", "{}"] {
            let token = token_with_header(&format!(r#"{{"alg":"RS256","kid":"k","crit":{crit}}}"#));
            assert_eq!(parse(&token).unwrap_err(), Error::Critical, "{crit}");
        }
    }

    #[test]
    fn malformed_tokens_are_malformed() {
        let not_object = token_with_header("[1]");
        let array = token_with_header(r#"["RS256","k","JWT"]"#);
        let twice = token_with_header(r#"{"alg":"RS256","alg":"RS256"}"#);
        let no_alg = token_with_header(r#"{"kid":"k"}"#);
        for bad in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "!!.e30.s",
            &not_object,
            &array,
            &twice,
            &no_alg,
        ] {
            assert!(matches!(parse(bad), Err(Error::Malformed(_))), "{bad}");
        }
        let no_kid = token_with_header(r#"{"alg":"RS256"}"#);
        assert_eq!(parse(&no_kid).unwrap().kid(), Err(Error::NoKid));
    }

    #[test]
    fn unverified_issuer_reads_only_the_iss_claim() {
        let payload = b64(r#"{"iss":"https://i.example","sub":"x"}"#);
        assert_eq!(
            unverified_issuer(&format!("h.{payload}.s")).as_deref(),
            Some("https://i.example")
        );
        assert_eq!(unverified_issuer("h.!!!.s"), None);
        assert_eq!(unverified_issuer("nodots"), None);
    }

    const RULES: Rules = Rules {
        issuer: "https://issuer.example",
        require_exp: false,
        require_sub: true,
        check_nbf: true,
        leeway: 10,
    };

    fn object(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("an object")
        };
        map
    }

    #[test]
    fn times_are_checked_with_leeway_and_exp_may_be_absent() {
        let at = |v: Value| check_times(&object(v), 1_000, 10);
        assert_eq!(at(json!({})), Ok((None, None)));
        assert_eq!(
            at(json!({"exp": 990, "iat": 900})),
            Ok((Some(990), Some(900)))
        );
        assert_eq!(at(json!({"exp": 989})), Err(Error::Expired));
        assert!(at(json!({"nbf": 1_010})).is_ok());
        assert_eq!(at(json!({"nbf": 1_011})), Err(Error::NotYetValid));
        for bad in [json!("2000"), json!(-1), json!(true), json!(1e300)] {
            assert!(matches!(
                at(json!({ "exp": bad })),
                Err(Error::Malformed(_))
            ));
            assert!(matches!(
                at(json!({ "iat": bad })),
                Err(Error::Malformed(_))
            ));
        }
    }

    #[test]
    fn claims_are_checked_against_the_rules() {
        let ok = |v: Value, rules: &Rules| check(&object(v), rules, 1_000);
        let base = |extra: Value| {
            let mut m = object(json!({"iss": "https://issuer.example", "sub": "u-1"}));
            m.extend(object(extra));
            Value::Object(m)
        };
        assert!(ok(base(json!({})), &RULES).is_ok());
        assert!(ok(base(json!({"exp": 1_000})), &RULES).is_ok());
        assert!(
            ok(base(json!({"exp": 990})), &RULES).is_ok(),
            "within the leeway"
        );
        assert_eq!(ok(base(json!({"exp": 989})), &RULES), Err(Error::Expired));
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
            assert!(
                matches!(
                    ok(base(json!({ "exp": bad })), &RULES),
                    Err(Error::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert!(ok(base(json!({"nbf": 1_010})), &RULES).is_ok());
        assert_eq!(
            ok(base(json!({"nbf": 1_011})), &RULES),
            Err(Error::NotYetValid)
        );
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
        assert_eq!(
            ok(base(json!({})), &exp_required),
            Err(Error::Missing("exp"))
        );
        assert!(ok(base(json!({"exp": 2_000})), &exp_required).is_ok());

        assert_eq!(
            ok(json!({"iss": "https://issuer.example"}), &RULES),
            Err(Error::Missing("sub"))
        );
        assert!(ok(json!({"iss": "https://issuer.example", "sub": 5}), &RULES).is_err());
        for iss in [
            json!("https://other.example"),
            json!(["https://issuer.example"]),
            json!(null),
        ] {
            assert_eq!(
                ok(json!({"iss": iss, "sub": "u-1"}), &RULES),
                Err(Error::Issuer),
                "{iss}"
            );
        }
    }
}
