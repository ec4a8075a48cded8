//! The body of `PUT /v1/access-tokens/policy`: `PolicyBody` from any JSON text, `Policy::parse`,
//! the stored form read back (`Policy::from_stored`), and `Policy::check` of every token type.
//!
//! Checked: nothing panics and every refusal is a 400; a body that is not a JSON object is
//! refused; an accepted policy limits only types whose lifetime can be chosen, each within the
//! type's range; its JSON lists allowed types in the order of `TokenType::ALL` without repeats,
//! reads back from the store as the same policy and parses again, as a request, to the same
//! policy; a check refuses with a 400 exactly when a rule is broken: a type outside
//! `allowed_token_types`, an api or app token without expiry under `require_expiry`, a token of a
//! limited type without expiry or living longer than its limit.

#![no_main]

use access_tokens::tokens::Error;
use access_tokens::tokens::policy::PolicyBody;
use access_tokens::tokens::{Lifetime, MIN_LIFETIME, Policy, TokenType};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = serde_json::from_str::<PolicyBody>(text) else {
        return;
    };
    assert!(
        text.trim_start().starts_with('{'),
        "only an object is a policy: {text}"
    );
    let policy = match Policy::parse(body) {
        Ok(policy) => policy,
        Err(Error::Invalid(message)) => {
            assert!(!message.is_empty());
            return;
        }
        Err(other) => panic!("Policy::parse failed with {other:?}, not a 400"),
    };
    let json = policy.to_json();
    assert_eq!(Policy::from_stored(&json).as_ref(), Ok(&policy), "{json}");
    let again: PolicyBody = serde_json::from_str(&json).expect("a policy's JSON is a body");
    assert_eq!(Policy::parse(again).ok().as_ref(), Some(&policy), "{json}");

    let shown: Value = serde_json::from_str(&json).expect("a policy's JSON is JSON");
    let require_expiry = shown["require_expiry"].as_bool().expect("require_expiry");
    let allowed: Option<Vec<TokenType>> = shown.get("allowed_token_types").map(|types| {
        let names: Vec<TokenType> = types
            .as_array()
            .expect("allowed_token_types is an array")
            .iter()
            .map(|t| t.as_str().and_then(|t| t.parse().ok()).expect("a type"))
            .collect();
        let in_order: Vec<TokenType> = TokenType::ALL
            .into_iter()
            .filter(|t| names.contains(t))
            .collect();
        assert_eq!(
            names, in_order,
            "in the order of TokenType::ALL, no repeats"
        );
        names
    });

    for t in TokenType::ALL {
        let max = policy.max_expires_in(t);
        if let Some(max) = max {
            match t.lifetime() {
                Lifetime::Fixed(_) => panic!("{t} takes no max_expires_in"),
                Lifetime::Optional { cap } => assert!((MIN_LIFETIME..=cap).contains(&max)),
                Lifetime::Required { min, max: cap } => assert!((min..=cap).contains(&max)),
            }
        }
        for lifetime in [
            None,
            Some(MIN_LIFETIME),
            Some(3600),
            Some(86_400),
            Some(u64::MAX),
        ] {
            let broken = allowed.as_ref().is_some_and(|a| !a.contains(&t))
                || (require_expiry
                    && matches!(t, TokenType::Api | TokenType::App)
                    && lifetime.is_none())
                || max.is_some_and(|max| lifetime.is_none_or(|s| s > max));
            for result in [
                policy.check(t, lifetime),
                policy.check_rotation(t, lifetime),
            ] {
                match result {
                    Ok(()) => assert!(!broken, "{t} {lifetime:?} under {json}"),
                    Err(Error::Invalid(message)) => {
                        assert!(broken, "{t} {lifetime:?} under {json}: {message}")
                    }
                    Err(other) => panic!("check failed with {other:?}, not a 400"),
                }
            }
        }
    }
});
