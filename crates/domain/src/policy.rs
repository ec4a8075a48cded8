//! An organization's policy: limits its admins set on the tokens its members create and rotate,
//! within each type's own rules. No policy set is the default policy, which limits nothing: the
//! service behaves as it does without policies. A policy applies when a token is made (created,
//! or made by rotation); tokens that exist are never changed by it.
//!
//! The JSON shape is the same in `PUT /v1/access-tokens/policy`, in its answers and in the store:
//! `{"max_expires_in": {"<type>": <seconds>, ...}, "require_expiry": <bool>,
//! "allowed_token_types": ["<type>", ...]}`, every field optional on the way in (absent or `null`:
//! its default) and `allowed_token_types` absent on the way out when every type is allowed.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, Error as _, MapAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

use super::token_type::{Lifetime, MIN_LIFETIME, TokenType, human};
use crate::error::{Error, Result};

/// The body of `PUT /v1/access-tokens/policy`, as sent: the whole policy. `null` counts as absent.
/// Only a JSON object is one (serde would take an array of the fields' values too).
#[derive(Debug, Default)]
pub struct PolicyBody {
    pub max_expires_in: Option<MaxExpiresInBody>,
    pub require_expiry: Option<bool>,
    pub allowed_token_types: Option<Vec<String>>,
}

/// `PolicyBody`'s fields, as serde reads them from an object.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFields {
    #[serde(default, deserialize_with = "object_or_null")]
    max_expires_in: Option<MaxExpiresInBody>,
    require_expiry: Option<bool>,
    allowed_token_types: Option<Vec<String>>,
}

impl<'de> Deserialize<'de> for PolicyBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields: PolicyFields = object_or_null(deserializer)?
            .ok_or_else(|| D::Error::invalid_type(Unexpected::Unit, &"a JSON object"))?;
        Ok(Self {
            max_expires_in: fields.max_expires_in,
            require_expiry: fields.require_expiry,
            allowed_token_types: fields.allowed_token_types,
        })
    }
}

/// `T` from a JSON object, or `None` from `null`; anything else (an array of the fields' values
/// included) is an error of its type.
fn object_or_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    struct ObjectOrNull<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNull<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }
    }
    deserializer.deserialize_any(ObjectOrNull(PhantomData))
}

/// `max_expires_in` as sent: seconds per token type, as a JSON object keyed by the types' names.
/// A name that is no type, or a name given twice, is refused by the parser; `null` for a type is
/// as if it were absent. A type whose lifetime is fixed gets a message of its own later.
#[derive(Debug, Default)]
pub struct MaxExpiresInBody(Vec<(TokenType, WholeSeconds)>);

impl<'de> Deserialize<'de> for MaxExpiresInBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Limits;
        impl<'de> Visitor<'de> for Limits {
            type Value = MaxExpiresInBody;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of seconds per token type")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut limits: Vec<(TokenType, WholeSeconds)> = Vec::new();
                let mut seen = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let Some(t) = TokenType::ALL.into_iter().find(|t| t.as_str() == name) else {
                        return Err(A::Error::unknown_field(&name, TYPE_NAMES));
                    };
                    if seen.contains(&t) {
                        return Err(A::Error::custom(format_args!("duplicate field `{name}`")));
                    }
                    seen.push(t);
                    if let Some(seconds) = map.next_value::<Option<WholeSeconds>>()? {
                        limits.push((t, seconds));
                    }
                }
                Ok(MaxExpiresInBody(limits))
            }
        }
        deserializer.deserialize_map(Limits)
    }
}

/// The names `max_expires_in` takes, for the parser's message.
const TYPE_NAMES: &[&str] = &[
    "api",
    "app",
    "assume",
    "journey",
    "portal",
    "portal_preview",
    "contact_identification",
];

/// The largest whole number a JSON number written with a fraction (`3600.0`) holds exactly.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0; // 2^53

/// Seconds: a whole, non-negative JSON number (`null` is an absent `Option<WholeSeconds>`). JSON
/// Schema's `integer` (the contract's) counts `3600.0` as one, so it is read as 3600; `3600.5` is
/// not a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeSeconds(pub u64);

impl<'de> Deserialize<'de> for WholeSeconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = WholeSeconds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(WholeSeconds(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(WholeSeconds)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                if v.fract() == 0.0 && (0.0..=MAX_EXACT_FLOAT).contains(&v) {
                    // Whole, non-negative and exact: the conversion loses nothing.
                    Ok(WholeSeconds(v as u64))
                } else {
                    Err(E::invalid_value(Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Seconds)
    }
}

impl MaxExpiresInBody {
    /// Every type, in `TokenType::ALL` order, with its limit if one was sent.
    fn entries(&self) -> impl Iterator<Item = (TokenType, Option<u64>)> + '_ {
        TokenType::ALL.into_iter().map(|t| {
            let limit = self.0.iter().find(|(listed, _)| *listed == t);
            (t, limit.map(|(_, seconds)| seconds.0))
        })
    }
}

/// An organization's policy, valid for the service's token types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The longest lifetime, in seconds, of a new token of each listed type; a token of a listed
    /// type must expire. In `TokenType::ALL` order, one entry per type at most.
    max_expires_in: Vec<(TokenType, u64)>,
    /// `api` and `app` tokens must expire.
    require_expiry: bool,
    /// The types that may be made; `None`: every type. In `TokenType::ALL` order, no repeats.
    allowed_token_types: Option<Vec<TokenType>>,
}

/// Types whose tokens never expire unless asked to: the ones `require_expiry` is about.
const EXPIRY_REQUIRABLE: [TokenType; 2] = [TokenType::Api, TokenType::App];

/// How much a policy read back is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A request: every value within its type's rules.
    Request,
    /// The store: written by the service, so well formed; a limit beyond a type's range (should
    /// a later version narrow one) is kept, the type's own rules applying first anyway.
    Store,
}

impl Policy {
    /// A policy from a request body; a 400 names the field and the rule it breaks.
    pub fn parse(body: PolicyBody) -> Result<Self> {
        Self::build(body, Source::Request).map_err(Error::Invalid)
    }

    /// A policy as the store keeps it (see [`Policy::to_json`]).
    pub fn from_stored(json: &str) -> Result<Self, String> {
        let body: PolicyBody = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Self::build(body, Source::Store)
    }

    /// The policy as JSON, for the store and for the audit trail.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn build(body: PolicyBody, source: Source) -> Result<Self, String> {
        let mut max_expires_in = Vec::new();
        for (t, max) in body.max_expires_in.unwrap_or_default().entries() {
            let Some(max) = max else { continue };
            let (min, cap) = match t.lifetime() {
                Lifetime::Fixed(seconds) => {
                    return Err(format!(
                        "max_expires_in does not apply to {t} tokens: they always live {seconds} s"
                    ));
                }
                Lifetime::Optional { cap } => (MIN_LIFETIME, cap),
                Lifetime::Required { min, max } => (min, max),
            };
            if source == Source::Request && max > cap {
                return Err(format!(
                    "max_expires_in.{t} is {max} s; {t} tokens live at most {cap} s ({})",
                    human(cap)
                ));
            }
            if source == Source::Request && max < min {
                return Err(format!(
                    "max_expires_in.{t} is {max} s; {t} tokens live at least {min} s"
                ));
            }
            max_expires_in.push((t, max));
        }
        let allowed_token_types = match body.allowed_token_types {
            None => None,
            Some(names) => {
                let mut types = Vec::new();
                for name in &names {
                    let t: TokenType = name
                        .parse()
                        .map_err(|e| format!("allowed_token_types: {e}"))?;
                    types.push(t);
                }
                Some(
                    TokenType::ALL
                        .into_iter()
                        .filter(|t| types.contains(t))
                        .collect(),
                )
            }
        };
        Ok(Self {
            max_expires_in,
            require_expiry: body.require_expiry.unwrap_or(false),
            allowed_token_types,
        })
    }

    /// The longest lifetime the policy allows tokens of `t`, if it limits them.
    pub fn max_expires_in(&self, t: TokenType) -> Option<u64> {
        self.max_expires_in
            .iter()
            .find(|(listed, _)| *listed == t)
            .map(|(_, max)| *max)
    }

    /// May a token of `token_type` that lives `lifetime` seconds (`None`: never expires) be
    /// created? A 400 names the rule it breaks. `lifetime` is the one the token would get, after
    /// the type's own rules.
    pub fn check(&self, token_type: TokenType, lifetime: Option<u64>) -> Result<()> {
        self.violation(token_type, lifetime)
            .map_or(Ok(()), |rule| Err(Error::Invalid(rule)))
    }

    /// As [`Policy::check`], for a token that a rotation would make: the old token's type and
    /// lifetime, under the policy of now.
    pub fn check_rotation(&self, token_type: TokenType, lifetime: Option<u64>) -> Result<()> {
        self.violation(token_type, lifetime).map_or(Ok(()), |rule| {
            Err(Error::Invalid(format!(
                "{rule}; this token cannot be rotated into one that breaks the policy: \
                 create a new token that follows it, then revoke this one"
            )))
        })
    }

    fn violation(&self, t: TokenType, lifetime: Option<u64>) -> Option<String> {
        if let Some(allowed) = &self.allowed_token_types
            && !allowed.contains(&t)
        {
            let names: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
            let allowed = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            return Some(format!(
                "the organization's policy does not allow {t} tokens \
                 (allowed_token_types: {allowed})"
            ));
        }
        if self.require_expiry && EXPIRY_REQUIRABLE.contains(&t) && lifetime.is_none() {
            return Some(format!(
                "the organization's policy requires an expires_in for {t} tokens (require_expiry)"
            ));
        }
        let max = self.max_expires_in(t)?;
        match lifetime {
            None => Some(format!(
                "the organization's policy requires an expires_in of at most {max} s ({}) for \
                 {t} tokens (max_expires_in)",
                human(max)
            )),
            Some(seconds) if seconds > max => Some(format!(
                "expires_in is {seconds} s; the organization's policy allows {t} tokens at most \
                 {max} s ({}) (max_expires_in)",
                human(max)
            )),
            Some(_) => None,
        }
    }
}

/// The policy's JSON shape (see the module's documentation).
#[derive(Serialize)]
struct View {
    max_expires_in: BTreeMap<&'static str, u64>,
    require_expiry: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_token_types: Option<Vec<&'static str>>,
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        View {
            max_expires_in: self
                .max_expires_in
                .iter()
                .map(|(t, max)| (t.as_str(), *max))
                .collect(),
            require_expiry: self.require_expiry,
            allowed_token_types: self
                .allowed_token_types
                .as_ref()
                .map(|types| types.iter().map(|t| t.as_str()).collect()),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(body: Value) -> Result<Policy> {
        let body: PolicyBody =
            serde_json::from_value(body).map_err(|e| Error::invalid(e.to_string()))?;
        Policy::parse(body)
    }

    fn message(result: Result<()>) -> String {
        match result {
            Err(Error::Invalid(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_default_policy_allows_what_the_types_allow() {
        let p = Policy::default();
        assert_eq!(parse(json!({})).unwrap(), p);
        let nulls =
            json!({"max_expires_in": null, "require_expiry": null, "allowed_token_types": null});
        assert_eq!(parse(nulls).unwrap(), p);
        for t in TokenType::ALL {
            assert!(p.check(t, None).is_ok());
            assert!(p.check(t, Some(365 * 86_400)).is_ok());
        }
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"max_expires_in": {}, "require_expiry": false})
        );
    }

    #[test]
    fn a_policy_round_trips_through_its_json() {
        let p = parse(json!({
            "max_expires_in": {"app": 3600, "api": 86400, "contact_identification": 300},
            "require_expiry": true,
            "allowed_token_types": ["app", "api", "app"],
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "max_expires_in": {"api": 86400, "app": 3600, "contact_identification": 300},
                "require_expiry": true,
                "allowed_token_types": ["api", "app"],
            })
        );
        assert_eq!(Policy::from_stored(&p.to_json()).unwrap(), p);
        let none_allowed = parse(json!({"allowed_token_types": []})).unwrap();
        assert_eq!(
            Policy::from_stored(&none_allowed.to_json()),
            Ok(none_allowed)
        );
    }

    #[test]
    fn invalid_policies_fail_with_a_reason() {
        let cases = [
            (
                json!({"max_expires_in": {"api": 365 * 86_400 + 1}}),
                "365 days",
            ),
            (json!({"max_expires_in": {"app": 7 * 86_400 + 1}}), "7 days"),
            (json!({"max_expires_in": {"api": 29}}), "at least 30 s"),
            (
                json!({"max_expires_in": {"contact_identification": 59}}),
                "at least 60 s",
            ),
            (
                json!({"max_expires_in": {"contact_identification": 901}}),
                "at most 900 s",
            ),
            (
                json!({"max_expires_in": {"assume": 600}}),
                "always live 3600 s",
            ),
            (
                json!({"max_expires_in": {"portal_preview": 600}}),
                "always live",
            ),
            (json!({"max_expires_in": {"root": 600}}), "unknown field"),
            (json!({"max_expires_in": {"api": -1}}), "invalid value"),
            (json!({"max_expires_in": {"api": 60.5}}), "invalid value"),
            (json!({"max_expires_in": {"api": 1e300}}), "invalid value"),
            (json!({"max_expires_in": {"api": "1h"}}), "invalid type"),
            (json!({"max_expires_in": [600]}), "invalid type"),
            (json!({"require_expiry": "yes"}), "invalid type"),
            (
                json!({"allowed_token_types": ["root"]}),
                "unknown token_type",
            ),
            (json!({"allowed_token_types": "api"}), "invalid type"),
            (json!({"allowed_token_types": [1]}), "invalid type"),
            (json!({"colour": "red"}), "unknown field"),
            // serde would read a struct from an array of its fields' values.
            (json!([null, true, null]), "invalid type"),
            (json!(null), "invalid type"),
            (
                json!({"max_expires_in": [60, null, null, null, null, null, null]}),
                "invalid type",
            ),
        ];
        for (body, why) in cases {
            match parse(body.clone()) {
                Err(Error::Invalid(m)) => assert!(m.contains(why), "{body}: {m}"),
                other => panic!("{body} must fail ({why}), gave {other:?}"),
            }
        }
        let twice = r#"{"max_expires_in": {"api": 60, "api": 70}}"#;
        let err = serde_json::from_str::<PolicyBody>(twice).unwrap_err();
        assert!(err.to_string().contains("duplicate field `api`"), "{err}");
        let twice_null = r#"{"max_expires_in": {"api": null, "api": 70}}"#;
        assert!(serde_json::from_str::<PolicyBody>(twice_null).is_err());
    }

    #[test]
    fn the_parsers_type_names_are_the_token_types() {
        let names: Vec<&str> = TokenType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, TYPE_NAMES);
    }

    #[test]
    fn each_rule_names_itself() {
        let p = parse(json!({"require_expiry": true})).unwrap();
        let m = message(p.check(TokenType::Api, None));
        assert_eq!(
            m,
            "the organization's policy requires an expires_in for api tokens (require_expiry)"
        );
        assert!(message(p.check(TokenType::App, None)).contains("require_expiry"));
        assert!(p.check(TokenType::Api, Some(60)).is_ok());
        // Only api and app tokens: the other types keep their own rules.
        assert!(p.check(TokenType::Journey, None).is_ok());
        assert!(p.check(TokenType::Assume, Some(3600)).is_ok());

        let p = parse(json!({"max_expires_in": {"api": 86400, "journey": 3600}})).unwrap();
        assert!(p.check(TokenType::Api, Some(86400)).is_ok());
        let m = message(p.check(TokenType::Api, Some(86401)));
        assert!(m.contains("max_expires_in") && m.contains("86400"), "{m}");
        // A limit means the token must expire.
        assert!(message(p.check(TokenType::Journey, None)).contains("max_expires_in"));
        assert!(p.check(TokenType::App, None).is_ok());

        let p = parse(json!({"allowed_token_types": ["api"]})).unwrap();
        assert!(p.check(TokenType::Api, None).is_ok());
        let m = message(p.check(TokenType::App, None));
        assert!(m.contains("allowed_token_types: api"), "{m}");
        let none = parse(json!({"allowed_token_types": []})).unwrap();
        assert!(message(none.check(TokenType::Api, None)).contains("allowed_token_types: none"));

        let p = parse(json!({"require_expiry": true})).unwrap();
        let m = message(p.check_rotation(TokenType::Api, None));
        assert!(m.contains("require_expiry") && m.contains("rotated"), "{m}");
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_is_seconds() {
        let p = parse(json!({"max_expires_in": {"api": 3600.0, "app": null}})).unwrap();
        assert_eq!(p.max_expires_in(TokenType::Api), Some(3600));
        assert_eq!(p.max_expires_in(TokenType::App), None);
    }

    #[test]
    fn a_stored_limit_beyond_a_types_range_still_reads() {
        let stored = r#"{"max_expires_in": {"api": 99999999999}, "require_expiry": false}"#;
        let p = Policy::from_stored(stored).unwrap();
        assert_eq!(p.max_expires_in(TokenType::Api), Some(99_999_999_999));
    }
}
