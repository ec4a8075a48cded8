//! The AccessTokenItem of the contract: what the API, and the lifecycle webhooks' `data`, show of
//! a token (never its JWT).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::record::{ShownFields, TokenRecord};

/// A time as the contract writes it: RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The AccessTokenItem of the contract.
#[derive(Debug, Serialize)]
pub struct AccessTokenItem<'a> {
    id: &'a str,
    created_at: String,
    name: &'a str,
    token_type: &'static str,
    assignments: &'a [String],
    read_only: bool,
    anonymize: bool,
    #[serde(flatten)]
    fields: ShownFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
    created_by: &'a str,
    /// `active`, `rotating`, `suspended`, `revoked` or `expired`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_from: Option<&'a str>,
    /// The token this one replaced (the same as `rotated_from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    replaces: Option<&'a str>,
    /// The token that replaced this one, when it was rotated with an overlap.
    #[serde(skip_serializing_if = "Option::is_none")]
    replaced_by: Option<&'a str>,
    /// When a rotating token is revoked by the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    retires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a str>,
}

impl<'a> From<&'a TokenRecord> for AccessTokenItem<'a> {
    fn from(r: &'a TokenRecord) -> Self {
        Self {
            id: &r.id,
            created_at: rfc3339(r.created_at),
            name: &r.name,
            token_type: r.token_type.as_str(),
            assignments: &r.assignments,
            read_only: r.read_only,
            anonymize: r.anonymize,
            fields: r.fields.shown(),
            expires_at: r.expires_at.map(rfc3339),
            last_used: r.last_used.map(|d| d.format("%Y-%m-%d").to_string()),
            created_by: &r.created_by,
            status: r.status(Utc::now()),
            revoked_at: r.revoked_at.map(rfc3339),
            suspended_at: r.suspended_at.map(rfc3339),
            rotated_from: r.rotated_from.as_deref(),
            replaces: r.rotated_from.as_deref(),
            replaced_by: r.replaced_by.as_deref(),
            // Once it is revoked, the revocation says when it ended.
            retires_at: r.retires_at.filter(|_| r.revoked_at.is_none()).map(rfc3339),
            parent_id: r.parent_id.as_deref(),
        }
    }
}
