//! The JWT claims, named as Cognito and the epilot platform name them so that existing verifiers
//! and authorizers accept these tokens unchanged.

use serde::{Deserialize, Serialize};

use super::record::{Caller, ShownFields, TokenRecord};
use super::status_list::StatusClaim;
use super::token_type::TokenType;

/// Claims of a token this service issues. Serialized in one pass straight into the JWS payload.
#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub jti: &'a str,
    pub token_id: &'a str,
    pub token_use: &'static str,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub token_name: &'a str,
    pub token_type: &'static str,
    pub org_id: &'a str,
    #[serde(rename = "custom:ivy_org_id")]
    pub ivy_org_id: &'a str,
    pub user_id: &'a str,
    #[serde(rename = "custom:ivy_user_id")]
    pub ivy_user_id: &'a str,
    #[serde(rename = "cognito:username", skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub assignments: &'a [String],
    /// The same array as `assignments`: tools of the platform read this name.
    pub assume_roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymize: Option<bool>,
    /// The owner key of the principal the token acts for ([`owner_key`](crate::owner_key)):
    /// opaque, compared and never parsed. On the tokens that call the API (`api`, `app`,
    /// `assume`), so that what one creates is its owner's, and a token manages its owner's tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a str>,
    #[serde(flatten)]
    pub fields: ShownFields<'a>,
    #[serde(rename = "custom:surface_id", skip_serializing_if = "Option::is_none")]
    pub surface_id: Option<&'a str>,
    /// Where a verifier reads whether the token is revoked (draft-ietf-oauth-status-list,
    /// section 6.2): stored tokens with an index only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
}

impl<'a> Claims<'a> {
    /// Builds the claims of `record`, issued by `issuer` on behalf of `caller`.
    ///
    /// `cognito:username` is copied from the caller. `email` is the caller's too, except on
    /// contact identification tokens, where it is the identified contact's (or absent).
    pub fn new(issuer: &'a str, record: &'a TokenRecord, caller: &'a Caller) -> Self {
        let f = &record.fields;
        let has_flags = record.token_type.carries_roles();
        let email = if record.token_type == TokenType::ContactIdentification {
            f.email.as_deref()
        } else {
            caller.email.as_deref()
        };
        Self {
            iss: issuer,
            sub: &record.id,
            jti: &record.id,
            token_id: &record.id,
            token_use: "access",
            iat: record.created_at.timestamp(),
            exp: record.expires_at.map(|t| t.timestamp()),
            token_name: &record.name,
            token_type: record.token_type.as_str(),
            org_id: &record.org_id,
            ivy_org_id: &record.org_id,
            user_id: &record.created_by,
            ivy_user_id: &record.created_by,
            username: caller.username.as_deref(),
            email,
            assignments: &record.assignments,
            assume_roles: &record.assignments,
            read_only: has_flags.then_some(record.read_only),
            anonymize: has_flags.then_some(record.anonymize),
            owner: has_flags.then_some(record.owner.as_str()),
            fields: f.shown(),
            surface_id: f.surface_id.as_deref(),
            status: record.status.map(|at| StatusClaim::new(issuer, at)),
        }
    }
}

/// The claims read back from one of this service's own `api` key set tokens presented as a caller.
#[derive(Debug, Deserialize)]
pub struct OwnTokenClaims {
    pub token_id: String,
    /// Seconds since the epoch; absent on tokens that never expire.
    #[serde(default)]
    pub exp: Option<i64>,
    pub token_type: String,
    pub token_use: String,
    pub org_id: String,
    pub user_id: String,
    /// Absent on tokens issued before ownership named principals.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub assignments: Vec<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub anonymize: bool,
    #[serde(rename = "cognito:username")]
    pub username: Option<String>,
    pub email: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TypeFields;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn caller() -> Caller {
        Caller {
            username: Some("jane".into()),
            email: Some("jane@example.com".into()),
            ..Caller::user("https://issuer.example", "1", "u1", vec!["1:owner".into()])
        }
    }

    fn record(token_type: TokenType, fields: TypeFields) -> TokenRecord {
        TokenRecord {
            id: "api_5ZugdRXasLfWBypHi93Fk7".into(),
            org_id: "1".into(),
            created_by: "u1".into(),
            owner: "p1_owner".into(),
            token_type,
            name: "CI".into(),
            assignments: vec!["1:owner".into()],
            read_only: true,
            anonymize: false,
            fields,
            key_id: "kid".into(),
            created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            expires_at: Some(Utc.timestamp_opt(1_700_003_600, 0).unwrap()),
            revoked_at: None,
            suspended_at: None,
            last_used: None,
            rotated_from: None,
            parent_id: None,
            status: None,
            notice_at: None,
            retires_at: None,
            replaced_by: None,
        }
    }

    #[test]
    fn api_token_claims_are_cognito_compatible() {
        let caller = caller();
        let record = record(TokenType::Api, TypeFields::default());
        let claims =
            serde_json::to_value(Claims::new("https://x/v1/access-tokens", &record, &caller))
                .unwrap();
        assert_eq!(
            claims,
            json!({
                "iss": "https://x/v1/access-tokens",
                "sub": "api_5ZugdRXasLfWBypHi93Fk7",
                "jti": "api_5ZugdRXasLfWBypHi93Fk7",
                "token_id": "api_5ZugdRXasLfWBypHi93Fk7",
                "token_use": "access",
                "iat": 1_700_000_000,
                "exp": 1_700_003_600,
                "token_name": "CI",
                "token_type": "api",
                "org_id": "1",
                "custom:ivy_org_id": "1",
                "user_id": "u1",
                "custom:ivy_user_id": "u1",
                "cognito:username": "jane",
                "email": "jane@example.com",
                "assignments": ["1:owner"],
                "assume_roles": ["1:owner"],
                "read_only": true,
                "anonymize": false,
                "owner": "p1_owner"
            })
        );
    }

    #[test]
    fn contact_identification_claims_carry_the_contact_not_the_caller() {
        let caller = caller();
        let mut record = record(
            TokenType::ContactIdentification,
            TypeFields {
                portal_id: Some("p".into()),
                contact_id: Some("c".into()),
                surface_id: Some("s".into()),
                allowed_operations: Some(vec!["read".into()]),
                origin: Some("INSTALLER_PORTAL".into()),
                ..TypeFields::default()
            },
        );
        record.assignments.clear();
        let claims = serde_json::to_value(Claims::new("i", &record, &caller)).unwrap();
        assert_eq!(claims["custom:surface_id"], "s");
        assert_eq!(claims["contact_id"], "c");
        assert_eq!(claims["allowed_operations"], json!(["read"]));
        assert_eq!(claims["origin"], "INSTALLER_PORTAL");
        assert!(
            claims.get("email").is_none(),
            "the caller's email must not identify the contact"
        );
        assert!(claims.get("read_only").is_none());
        assert!(
            claims.get("owner").is_none(),
            "only tokens that call carry their owner"
        );
        assert_eq!(claims["assignments"], json!([]));
    }
}
