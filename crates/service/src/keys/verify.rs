//! Verifying tokens of this service: against the published key its `kid` names, for the issuer of
//! that key's set, with the algorithm pinned to RS256, a `crit` header refused and `exp` enforced
//! without leeway (the service's own clock issued it). Used by the Caller extractor and by
//! introspection.

use serde_json::{Map, Value};

use super::jws::{self, Rules};
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

/// Why a token is not valid: a short fixed phrase, for the log and the client's reason.
pub type Invalid = &'static str;

pub fn verify_own(keys: &Keys, token: &str) -> Result<OwnToken, Invalid> {
    verify_own_at(keys, token, jws::now())
}

/// [`verify_own`] without the expiry: whether the service issued `token` at all, expired or not
/// (an admin identifying a token found in a log).
pub fn verify_own_any_time(keys: &Keys, token: &str) -> Result<OwnToken, Invalid> {
    verify_own_at(keys, token, 0)
}

/// [`verify_own`] as of `now` (seconds since the epoch).
fn verify_own_at(keys: &Keys, token: &str, now: u64) -> Result<OwnToken, Invalid> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("token too large");
    }
    let jws = jws::parse(token).map_err(|e| e.detail())?;
    // RFC 8725 section 3.11: the status lists are signed by the same keys for the same issuer,
    // and are public; only a token's `typ` passes.
    if !jws.header.typ_is(jws::TYP_JWT) {
        return Err("typ is not JWT");
    }
    let kid = jws.kid().map_err(|e| e.detail())?;
    let set = keys.set_of_kid(kid).ok_or("kid not published")?;
    let key = set.verifying_key(kid).ok_or("kid not published")?;
    // The issuer is the set's, as a single string (an array merely holding it is refused); `exp`
    // is optional (api tokens may live until revoked) and has no leeway: this service's clock set it.
    let rules = Rules {
        issuer: &set.issuer,
        require_exp: false,
        require_sub: true,
        check_nbf: false,
        leeway: 0,
    };
    let claims = jws.verify_with(key, &rules, now).map_err(|e| e.detail())?;
    Ok(OwnToken {
        set: set.name,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_single_string_issuer_of_the_key_set_verifies() {
        // Caught by the issuer property of the caller_jwt fuzz target (on a hand-made input): an
        // `iss` array holding the set's issuer passed.
        let keys = Keys::generate("https://tokens.example.com").unwrap();
        let set = keys.set(KeySetName::Api);
        let token = |iss: Value| {
            set.signing
                .sign(&json!({ "iss": iss, "sub": "u-1" }))
                .unwrap()
        };

        let own = verify_own(&keys, &token(json!(set.issuer))).unwrap();
        assert_eq!(own.set, KeySetName::Api);
        // RFC 7515 section 4.1.11: a `crit` member, whatever it lists, refuses the token.
        let crit = set
            .signing
            .sign_with_members(
                json!({"crit": ["exp"], "exp": 1}).as_object().unwrap(),
                &json!({ "iss": set.issuer, "sub": "u-1" }),
            )
            .unwrap();
        assert_eq!(
            verify_own(&keys, &crit).unwrap_err(),
            "header has crit extensions"
        );
        for iss in [
            json!([set.issuer]),
            json!([set.issuer, "https://other.example"]),
            json!("https://other.example"),
            json!(null),
        ] {
            assert!(verify_own(&keys, &token(iss.clone())).is_err(), "{iss}");
        }
        // A status list's typ, or none, is not a token of this service.
        let claims = json!({ "iss": set.issuer, "sub": "u-1" });
        let typed = set.signing.sign_typed("statuslist+jwt", &claims).unwrap();
        assert_eq!(verify_own(&keys, &typed).unwrap_err(), "typ is not JWT");
        let untyped = set
            .signing
            .sign_with_members(json!({"typ": null}).as_object().unwrap(), &claims)
            .unwrap();
        assert!(verify_own(&keys, &untyped).is_err());
    }
}
