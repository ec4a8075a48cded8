//! The caller-token path: the unverified `iss` read that picks the keys
//! (`keys::jws::unverified_issuer`), `jsonwebtoken::decode_header`, `keys::verify::verify_own`
//! against an in-memory key ring, and the own-token claims a verified caller is read from.
//!
//! The first byte picks how the rest becomes a token:
//! - raw: the bytes as the token text, or repeated past `MAX_TOKEN_BYTES`;
//! - parts: header, claims and signature bytes (split at 0xFF), each base64url-encoded, so the
//!   fuzzer reaches the JSON of header and claims rather than only base64 errors;
//! - kid: a genuine RS256 header naming a published key, fuzzed claims and signature;
//! - signed: a JSON claims value signed with a published key (the string `"ISS"` anywhere in it
//!   stands for that key set's issuer), optionally given a `sub` and padded past `MAX_TOKEN_BYTES`;
//! - genuine: an object signed with the right issuer and a `sub`, which must verify and keep its
//!   claims unchanged.
//!
//! Checked: nothing panics; no token over `MAX_TOKEN_BYTES` verifies; a token that verifies has
//! an RS256 header without `crit` whose `kid` is published by the set it verified for, carries
//! that set's issuer as its `iss` string, a string `sub` and no `exp` in the past, and the
//! unverified issuer read gives that same issuer.

#![no_main]

use std::sync::OnceLock;

use access_tokens::keys::jws::unverified_issuer;
use access_tokens::keys::verify::{MAX_TOKEN_BYTES, verify_own};
use access_tokens::keys::{KeySetName, Keys};
use access_tokens::tokens::claims::OwnTokenClaims;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    // RSA key generation takes seconds: once per process, not per input.
    KEYS.get_or_init(|| Keys::generate("https://tokens.example.com").expect("in-memory key sets"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    let set = keys.set(KeySetName::ALL[usize::from(mode >> 4) % KeySetName::ALL.len()]);
    match mode % 5 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            if mode & 0x80 != 0 && !text.is_empty() {
                let oversized = text.repeat(MAX_TOKEN_BYTES / text.len() + 1);
                assert!(oversized.len() > MAX_TOKEN_BYTES);
                check(keys, &oversized, None);
            } else {
                check(keys, &text, None);
            }
        }
        1 => {
            let mut parts = rest
                .splitn(3, |b| *b == 0xFF)
                .map(|p| URL_SAFE_NO_PAD.encode(p));
            let token = [
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            ]
            .join(".");
            check(keys, &token, None);
        }
        2 => {
            let header =
                serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": set.signing.kid() });
            let mut parts = rest.splitn(2, |b| *b == 0xFF);
            let claims = parts.next().unwrap_or_default();
            let signature = parts.next().unwrap_or_default();
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims),
                URL_SAFE_NO_PAD.encode(signature)
            );
            check(keys, &token, None);
        }
        3 => {
            let Ok(mut claims) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            substitute_issuer(&mut claims, &set.issuer);
            if let Value::Object(map) = &mut claims {
                if mode & 0x40 != 0 {
                    map.entry("sub")
                        .or_insert_with(|| Value::String("user".into()));
                }
                if mode & 0x80 != 0 {
                    map.insert("pad".into(), Value::String("x".repeat(MAX_TOKEN_BYTES)));
                }
            }
            let token = set.signing.sign(&claims).expect("signs any JSON value");
            check(keys, &token, None);
        }
        _ => {
            let Ok(Value::Object(mut claims)) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            // `exp` is the one claim whose value decides validity; the others must pass as sent.
            claims.remove("exp");
            let sub = match claims.get("sub") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "user".to_owned(),
            };
            claims.insert("iss".into(), Value::String(set.issuer.clone()));
            claims.insert("sub".into(), Value::String(sub));
            let token = set.signing.sign(&claims).expect("signs a JSON object");
            let expected: Map<String, Value> =
                serde_json::from_slice(&serde_json::to_vec(&claims).expect("serializes"))
                    .expect("parses back");
            check(keys, &token, Some((set.name, expected)));
        }
    }
});

fn check(keys: &Keys, token: &str, genuine: Option<(KeySetName, Map<String, Value>)>) {
    let issuer = unverified_issuer(token);
    let header = jsonwebtoken::decode_header(token);
    let verified = verify_own(keys, token);

    if token.len() > MAX_TOKEN_BYTES {
        assert_eq!(verified.as_ref().err(), Some(&"token too large"));
        return;
    }
    if let Some((name, claims)) = genuine {
        let own = verified
            .as_ref()
            .expect("a genuine token of this service verifies");
        assert_eq!(own.set, name);
        assert_eq!(own.claims, claims, "claims come back as they were signed");
    }
    let Ok(own) = verified else {
        return;
    };
    let set = keys.set(own.set);
    let header = header.expect("a verified token has a header");
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a verified token names its key");
    // RFC 7515 section 4.1.11: no extension is understood, so a verified header lists none.
    let raw_header = token.split('.').next().expect("a header part");
    let raw_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(raw_header)
            .expect("a verified header is base64url"),
    )
    .expect("a verified header is JSON");
    assert!(
        raw_header.get("crit").is_none(),
        "a token with crit verified"
    );
    assert_eq!(keys.set_of_kid(&kid).map(|s| s.name), Some(own.set));
    assert_eq!(
        own.claim_str("iss"),
        Some(set.issuer.as_str()),
        "iss is the set's issuer"
    );
    assert!(
        own.claims.get("sub").is_some_and(Value::is_string),
        "sub is a string"
    );
    // `exp`, when there, is a NumericDate that has not passed (no leeway for own tokens).
    match own.claims.get("exp") {
        None | Some(Value::Null) => {}
        Some(Value::Number(exp)) => {
            let now = jsonwebtoken::get_current_timestamp() as f64;
            let exp = exp.as_f64().expect("a JSON number");
            assert!(
                exp.round() >= now - 1.0,
                "an expired token verified: exp {exp}"
            );
        }
        Some(other) => panic!("a token with exp {other} verified"),
    }
    assert_eq!(
        issuer.as_deref(),
        Some(set.issuer.as_str()),
        "the key-picking read agrees"
    );
    // What a caller presenting an own token is read from: never a panic, whatever the claims.
    let _ = serde_json::from_value::<OwnTokenClaims>(Value::Object(own.claims));
}

/// Replaces every string `"ISS"` in `value` by `issuer`, so that issuer-dependent paths are
/// reachable without the fuzzer guessing the URL.
fn substitute_issuer(value: &mut Value, issuer: &str) {
    match value {
        Value::String(s) if s == "ISS" => *s = issuer.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute_issuer(v, issuer)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute_issuer(v, issuer)),
        _ => {}
    }
}
