//! The create request: the JSON body as clients send it, parsed into a `NewToken` whose every
//! field is valid for its token type. The schemas are closed: a field the type does not take is a
//! 400, and so is an unknown field. Every message speaks of the contract's fields, never of the
//! parser: the body is read field by field (`CreateTokenBody`'s `Deserialize`), and a field that is
//! not the type's is named along with the fields the type takes.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::expiry::ExpiresIn;
use super::record::TypeFields;
use super::roles::{self, RoleId};
use super::token_type::TokenType;
use crate::error::Error;

const MAX_NAME_CHARS: usize = 255;
const MAX_FIELD_CHARS: usize = 255;
const MAX_ALLOWED_OPERATIONS: usize = 100;
const ORIGINS: [&str; 2] = ["END_CUSTOMER_PORTAL", "INSTALLER_PORTAL"];

/// The body of `POST /v1/access-tokens`, as sent. `null` counts as absent.
#[derive(Debug, Default)]
pub struct CreateTokenBody {
    pub name: Option<String>,
    pub token_type: Option<String>,
    pub assignments: Option<Vec<String>>,
    /// Older published examples name `assignments` this way.
    pub assume_roles: Option<Vec<String>>,
    pub expires_in: Option<Value>,
    pub read_only: Option<bool>,
    pub anonymize: Option<bool>,
    pub journey_id: Option<String>,
    pub portal_id: Option<String>,
    pub portal_user_id: Option<String>,
    pub contact_id: Option<String>,
    pub surface_id: Option<String>,
    pub allowed_operations: Option<Vec<String>>,
    pub origin: Option<String>,
    pub email: Option<String>,
    /// The first field of the body that no token type takes; `NewToken::parse` refuses it,
    /// naming the fields of the requested type.
    pub unknown_field: Option<String>,
}

/// What the body must look like, for a body that is not a JSON object.
const EXPECTED_SHAPE: &str = "the request body must be a JSON object of the new token's fields, \
     such as {\"name\": \"CI pipeline\", \"expires_in\": \"90d\"}";

impl<'de> Deserialize<'de> for CreateTokenBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl BodyVisitor {
    fn not_an_object<E: de::Error>(got: &str) -> E {
        E::custom(format!("{EXPECTED_SHAPE}, not {got}"))
    }
}

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = CreateTokenBody;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED_SHAPE)
    }

    /// Linear in the body's size: a known field given twice is found with one bit per field, and
    /// once a field no type takes is met (the body is refused for it), the remaining values are
    /// skipped unread but for `token_type`, which the refusal names.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CreateTokenBody, A::Error> {
        let mut body = CreateTokenBody::default();
        let mut seen: u32 = 0;
        while let Some(key) = map.next_key::<String>()? {
            let known = FIELDS.iter().position(|f| *f == key);
            if body.unknown_field.is_some() && key != "token_type" {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            if let Some(bit) = known {
                if seen & (1 << bit) != 0 {
                    return Err(de::Error::custom(format!(
                        "{key} appears twice in the request body"
                    )));
                }
                seen |= 1 << bit;
            }
            let value: Value = map.next_value()?;
            body.set(&key, value).map_err(de::Error::custom)?;
        }
        Ok(body)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<CreateTokenBody, A::Error> {
        Err(Self::not_an_object("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<CreateTokenBody, E> {
        Err(Self::not_an_object("null"))
    }
}

/// Every field some token type takes: what `CreateTokenBody::set` reads.
const FIELDS: [&str; 15] = [
    "name",
    "token_type",
    "assignments",
    "assume_roles",
    "expires_in",
    "read_only",
    "anonymize",
    "journey_id",
    "portal_id",
    "portal_user_id",
    "contact_id",
    "surface_id",
    "allowed_operations",
    "origin",
    "email",
];

impl CreateTokenBody {
    /// Takes one field of the body; a value of the wrong JSON type is refused in the contract's
    /// words (`null` counts as absent).
    fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        fn text(key: &str, value: Value) -> Result<Option<String>, String> {
            match value {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s)),
                _ => Err(format!("{key} must be a string")),
            }
        }
        fn flag(key: &str, value: Value) -> Result<Option<bool>, String> {
            match value {
                Value::Null => Ok(None),
                Value::Bool(b) => Ok(Some(b)),
                _ => Err(format!("{key} must be true or false")),
            }
        }
        fn list(key: &str, value: Value) -> Result<Option<Vec<String>>, String> {
            let wrong = || format!("{key} must be an array of strings");
            match value {
                Value::Null => Ok(None),
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        _ => Err(wrong()),
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                _ => Err(wrong()),
            }
        }
        match key {
            "name" => self.name = text(key, value)?,
            "token_type" => self.token_type = text(key, value)?,
            "assignments" => self.assignments = list(key, value)?,
            "assume_roles" => self.assume_roles = list(key, value)?,
            "expires_in" => self.expires_in = (!value.is_null()).then_some(value),
            "read_only" => self.read_only = flag(key, value)?,
            "anonymize" => self.anonymize = flag(key, value)?,
            "journey_id" => self.journey_id = text(key, value)?,
            "portal_id" => self.portal_id = text(key, value)?,
            "portal_user_id" => self.portal_user_id = text(key, value)?,
            "contact_id" => self.contact_id = text(key, value)?,
            "surface_id" => self.surface_id = text(key, value)?,
            "allowed_operations" => self.allowed_operations = list(key, value)?,
            "origin" => self.origin = text(key, value)?,
            "email" => self.email = text(key, value)?,
            _ => {
                if self.unknown_field.is_none() {
                    self.unknown_field = Some(key.to_owned());
                }
            }
        }
        Ok(())
    }
}

/// A create request that is valid for its type; roles are not yet checked against the caller.
#[derive(Debug)]
pub struct NewToken {
    pub token_type: TokenType,
    pub name: String,
    pub requested_roles: Option<Vec<RoleId>>,
    pub read_only: Option<bool>,
    pub anonymize: Option<bool>,
    /// Seconds the token lives, already checked against the type's rules; `None` never expires.
    pub lifetime: Option<u64>,
    pub fields: TypeFields,
}

/// Which optional and required fields each type takes (besides `name` and `token_type`).
fn fields_of(t: TokenType) -> (&'static [&'static str], &'static [&'static str]) {
    const ROLE_FIELDS: [&str; 5] = [
        "assignments",
        "assume_roles",
        "expires_in",
        "read_only",
        "anonymize",
    ];
    match t {
        TokenType::Api | TokenType::App => (&[], &ROLE_FIELDS),
        TokenType::Assume => (
            &[],
            &["assignments", "assume_roles", "read_only", "anonymize"],
        ),
        TokenType::Journey => (&["journey_id"], &["expires_in"]),
        TokenType::Portal => (&["portal_id"], &["expires_in"]),
        TokenType::PortalPreview => (&["portal_id", "portal_user_id"], &[]),
        TokenType::ContactIdentification => (
            &[
                "portal_id",
                "contact_id",
                "surface_id",
                "allowed_operations",
                "expires_in",
            ],
            &["origin", "email"],
        ),
    }
}

impl CreateTokenBody {
    fn present_fields(&self) -> Vec<&'static str> {
        let pairs = [
            ("assignments", self.assignments.is_some()),
            ("assume_roles", self.assume_roles.is_some()),
            (
                "expires_in",
                self.expires_in.as_ref().is_some_and(|v| !v.is_null()),
            ),
            ("read_only", self.read_only.is_some()),
            ("anonymize", self.anonymize.is_some()),
            ("journey_id", self.journey_id.is_some()),
            ("portal_id", self.portal_id.is_some()),
            ("portal_user_id", self.portal_user_id.is_some()),
            ("contact_id", self.contact_id.is_some()),
            ("surface_id", self.surface_id.is_some()),
            ("allowed_operations", self.allowed_operations.is_some()),
            ("origin", self.origin.is_some()),
            ("email", self.email.is_some()),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, present)| present.then_some(name))
            .collect()
    }
}

impl NewToken {
    pub fn parse(body: CreateTokenBody) -> Result<Self, Error> {
        let token_type = match body.token_type.as_deref() {
            None => TokenType::Api,
            Some(t) => t.parse().map_err(Error::Invalid)?,
        };
        let (required, optional) = fields_of(token_type);
        let present = body.present_fields();
        if let Some(extra) = body.unknown_field.as_deref().or_else(|| {
            present
                .iter()
                .find(|f| !required.contains(f) && !optional.contains(f))
                .copied()
        }) {
            let mut takes = vec!["name", "token_type"];
            takes.extend(required);
            takes.extend(optional);
            return Err(Error::invalid(format!(
                "{extra} is not a field of {token_type} tokens, which take {}",
                takes.join(", ")
            )));
        }
        if let Some(missing) = required.iter().find(|f| !present.contains(f)) {
            return Err(Error::invalid(format!(
                "{missing} is required for {token_type} tokens"
            )));
        }

        let name = parse_name(body.name.as_deref())?;
        let requested_roles = match (body.assignments, body.assume_roles) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "send assignments or assume_roles (another name for it), not both",
                ));
            }
            (Some(ids), None) | (None, Some(ids)) => Some(roles::parse_requested(&ids)?),
            (None, None) => None,
        };
        let expires_in = match body.expires_in.as_ref().filter(|v| !v.is_null()) {
            None => None,
            // Contact identification takes an integer of seconds only.
            Some(v) if token_type == TokenType::ContactIdentification && !v.is_u64() => {
                return Err(Error::invalid(
                    "expires_in of contact_identification tokens is an integer number of seconds (60-900)",
                ));
            }
            Some(v) => Some(ExpiresIn::parse(v).map_err(Error::Invalid)?),
        };
        // A bare number string is milliseconds (as the `ms` package reads it): say so where it
        // bites, since `"3600"` is rarely meant as 3.6 s.
        let bare_number = body
            .expires_in
            .as_ref()
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
        let lifetime = token_type.resolve_lifetime(expires_in).map_err(
            |message| match bare_number {
                Some(digits) => Error::Invalid(format!(
                    "{message}: a string of digits alone, such as \"{digits}\", is milliseconds; \
                     send {digits} as a number, or \"{digits}s\", for seconds"
                )),
                None => Error::Invalid(message),
            },
        )?;

        let fields = TypeFields {
            journey_id: text_field("journey_id", body.journey_id, MAX_FIELD_CHARS)?,
            portal_id: text_field("portal_id", body.portal_id, MAX_FIELD_CHARS)?,
            portal_user_id: text_field("portal_user_id", body.portal_user_id, MAX_FIELD_CHARS)?,
            contact_id: text_field("contact_id", body.contact_id, MAX_FIELD_CHARS)?,
            surface_id: text_field("surface_id", body.surface_id, 64)?,
            origin: match body.origin {
                Some(o) if !ORIGINS.contains(&o.as_str()) => {
                    return Err(Error::invalid(format!(
                        "origin {o:?} must be END_CUSTOMER_PORTAL or INSTALLER_PORTAL"
                    )));
                }
                other => other,
            },
            allowed_operations: match body.allowed_operations {
                Some(ops) => Some(parse_operations(ops)?),
                None => None,
            },
            email: match body.email {
                Some(e) => Some(parse_email(e)?),
                None => None,
            },
        };

        Ok(Self {
            token_type,
            name,
            requested_roles,
            read_only: body.read_only,
            anonymize: body.anonymize,
            lifetime,
            fields,
        })
    }
}

/// Whitespace as `openapi.yaml`'s patterns read it (ECMAScript's `\s`): Unicode's White_Space and
/// U+FEFF, the byte order mark.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

fn parse_name(name: Option<&str>) -> Result<String, Error> {
    let name = name
        .ok_or_else(|| Error::invalid("name is required"))?
        .trim_matches(is_space);
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Error::invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters after trimming"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("name must not contain control characters"));
    }
    Ok(name.to_owned())
}

fn text_field(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    let Some(value) = value else { return Ok(None) };
    let chars = value.chars().count();
    if chars == 0
        || chars > max
        || value.chars().any(char::is_control)
        || value.trim_matches(is_space) != value
    {
        return Err(Error::invalid(format!(
            "{field} must be 1 to {max} characters, without control characters or surrounding spaces"
        )));
    }
    Ok(Some(value))
}

fn parse_operations(ops: Vec<String>) -> Result<Vec<String>, Error> {
    if ops.len() > MAX_ALLOWED_OPERATIONS {
        return Err(Error::invalid(format!(
            "allowed_operations holds at most {MAX_ALLOWED_OPERATIONS} entries"
        )));
    }
    ops.into_iter()
        .map(|op| text_field("each of allowed_operations", Some(op), MAX_FIELD_CHARS))
        .map(|r| r.map(Option::unwrap_or_default))
        .collect()
}

fn parse_email(email: String) -> Result<String, Error> {
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(Error::invalid("email is not an email address"));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<NewToken, Error> {
        let body: CreateTokenBody =
            serde_json::from_value(body).map_err(|e| Error::invalid(e.to_string()))?;
        NewToken::parse(body)
    }

    fn cid() -> Value {
        json!({
            "name": "c", "token_type": "contact_identification", "portal_id": "p", "contact_id": "c",
            "surface_id": "s", "allowed_operations": ["read"], "expires_in": 300
        })
    }

    #[test]
    fn every_known_field_is_read_and_a_field_twice_is_refused() {
        for field in FIELDS {
            let mut body = CreateTokenBody::default();
            body.set(field, Value::Null).unwrap();
            assert_eq!(body.unknown_field, None, "{field}");
            let twice = format!(r#"{{"{field}": null, "{field}": null}}"#);
            let err = serde_json::from_str::<CreateTokenBody>(&twice).unwrap_err();
            assert!(err.to_string().contains("appears twice"), "{field}: {err}");
        }
    }

    #[test]
    fn after_the_first_unknown_field_only_token_type_is_read() {
        // 7,000 keys no type takes: the first is named, the rest are skipped unread, and a
        // token_type given after them still names the type in the refusal.
        let mut text = String::from("{");
        for i in 0..7_000 {
            text.push_str(&format!(r#""k{i}": [1, {{"deep": "value"}}], "#));
        }
        text.push_str(r#""token_type": "journey", "k0": 1, "name": 5}"#);
        let body: CreateTokenBody = serde_json::from_str(&text).unwrap();
        assert_eq!(body.unknown_field.as_deref(), Some("k0"));
        assert_eq!(body.name, None, "skipped, though of the wrong type");
        let err = NewToken::parse(body).unwrap_err().to_string();
        assert!(err.contains("k0 is not a field of journey tokens"), "{err}");
        // token_type twice is still refused after an unknown field.
        let twice = r#"{"x": 1, "token_type": "api", "token_type": "app"}"#;
        assert!(serde_json::from_str::<CreateTokenBody>(twice).is_err());
    }

    #[test]
    fn valid_bodies_of_each_type_parse() {
        let api = parse(json!({"name": "  CI  "})).unwrap();
        assert_eq!(
            (api.token_type, api.name.as_str(), api.lifetime),
            (TokenType::Api, "CI", None)
        );
        let app = parse(json!({"name": "a", "token_type": "app", "expires_in": "7d"})).unwrap();
        assert_eq!(app.lifetime, Some(7 * 86_400));
        let asm = parse(json!({"name": "a", "token_type": "assume", "assume_roles": ["1:owner"]}))
            .unwrap();
        assert_eq!(asm.lifetime, Some(3600));
        assert_eq!(asm.requested_roles.unwrap()[0].as_str(), "1:owner");
        assert!(parse(json!({"name": "j", "token_type": "journey", "journey_id": "j1"})).is_ok());
        assert!(
            parse(
                json!({"name": "p", "token_type": "portal", "portal_id": "p1", "expires_in": null})
            )
            .is_ok()
        );
        assert!(parse(json!({"name": "p", "token_type": "portal_preview", "portal_id": "p", "portal_user_id": "u"})).is_ok());
        let c = parse(cid()).unwrap();
        assert_eq!(c.lifetime, Some(300));
    }

    #[test]
    fn invalid_bodies_fail_with_a_reason() {
        let mut cid_string_expiry = cid();
        cid_string_expiry["expires_in"] = json!("5m");
        let mut cid_bad_origin = cid();
        cid_bad_origin["origin"] = json!("ELSEWHERE");
        let mut cid_long_surface = cid();
        cid_long_surface["surface_id"] = json!("s".repeat(65));
        let mut cid_bad_email = cid();
        cid_bad_email["email"] = json!("nobody");
        let cases = [
            (json!({}), "name missing"),
            (json!({"name": "   "}), "blank name"),
            (json!({"name": "x".repeat(256)}), "name too long"),
            (json!({"name": "a\u{0007}b"}), "control character in name"),
            // The contract's `\s` counts the byte order mark as whitespace.
            (
                json!({"name": "\u{feff}"}),
                "a name of a byte order mark only",
            ),
            (
                json!({"name": "a", "token_type": "journey", "journey_id": "\u{feff}j"}),
                "a type field starting with a byte order mark",
            ),
            (json!({"name": 5}), "name not a string"),
            (json!({"name": "a", "token_type": "root"}), "unknown type"),
            (json!({"name": "a", "colour": "red"}), "unknown field"),
            (
                json!({"name": "a", "journey_id": "j"}),
                "field of another type",
            ),
            (
                json!({"name": "a", "token_type": "assume", "expires_in": 60}),
                "assume takes no expires_in",
            ),
            (
                json!({"name": "a", "token_type": "journey"}),
                "journey_id missing",
            ),
            (
                json!({"name": "a", "token_type": "journey", "journey_id": "j", "assignments": []}),
                "journey takes no roles",
            ),
            (
                json!({"name": "a", "token_type": "portal_preview", "portal_id": "p"}),
                "portal_user_id missing",
            ),
            (
                json!({"name": "a", "assignments": [], "assume_roles": []}),
                "both role names",
            ),
            (
                json!({"name": "a", "assignments": ["owner"]}),
                "malformed role",
            ),
            (
                json!({"name": "a", "assignments": "1:owner"}),
                "roles not an array",
            ),
            (json!({"name": "a", "expires_in": 29}), "too short"),
            (
                json!({"name": "a", "expires_in": "366d"}),
                "over the api cap",
            ),
            (
                json!({"name": "a", "token_type": "app", "expires_in": "8d"}),
                "over the app cap",
            ),
            (json!({"name": "a", "expires_in": "soon"}), "not a duration"),
            (
                json!({"name": "a", "read_only": "yes"}),
                "flag not a boolean",
            ),
            (cid_string_expiry, "cid expiry as a string"),
            (cid_bad_origin, "unknown origin"),
            (cid_long_surface, "surface_id over 64"),
            (cid_bad_email, "bad email"),
        ];
        for (body, why) in cases {
            let result = parse(body.clone());
            assert!(
                matches!(result, Err(Error::Invalid(_))),
                "{why}: {body} gave {result:?}"
            );
        }
    }
}
