//! The events, as CloudEvents 1.0 in JSON (structured mode): `specversion`, `id` (also the
//! `webhook-id` of every delivery of it), `source` (the service's API), `type`, `time`, `subject`
//! (the token's id), `organization` (an extension attribute: the organization whose endpoints
//! receive it) and `data`: for a token, its AccessTokenItem (never a JWT) with what the event
//! adds (`reason`, `expires_in_days`, `replaced_by`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::store::AuditEvent;
use crate::tokens::TokenRecord;
use crate::tokens::id::random_id;
use crate::tokens::item::{AccessTokenItem, rfc3339};

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 10] = [
    TOKEN_CREATED,
    TOKEN_REVOKED,
    TOKEN_ROTATED,
    TOKEN_SUSPENDED,
    TOKEN_RESUMED,
    TOKEN_EXPIRING,
    TOKEN_EXPIRED,
    KEY_ROTATED,
    POLICY_CHANGED,
    WEBHOOK_DISABLED,
];
pub const TOKEN_CREATED: &str = "token.created";
pub const TOKEN_REVOKED: &str = "token.revoked";
pub const TOKEN_ROTATED: &str = "token.rotated";
pub const TOKEN_SUSPENDED: &str = "token.suspended";
pub const TOKEN_RESUMED: &str = "token.resumed";
pub const TOKEN_EXPIRING: &str = "token.expiring";
pub const TOKEN_EXPIRED: &str = "token.expired";
pub const KEY_ROTATED: &str = "key.rotated";
pub const POLICY_CHANGED: &str = "policy.changed";
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";

/// An event to deliver: its message id, type, subject, organization (`None`: every
/// organization's endpoints) and the CloudEvent's bytes.
#[derive(Debug, Clone)]
pub struct Event {
    pub message_id: String,
    pub event_type: &'static str,
    pub subject: Option<String>,
    pub org_id: Option<String>,
    pub time: DateTime<Utc>,
    pub payload: String,
}

#[derive(Serialize)]
struct CloudEvent<'a, D: Serialize> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<&'a str>,
    datacontenttype: &'static str,
    data: D,
}

/// A token's item and what the event adds to it.
#[derive(Serialize)]
pub struct TokenData<'a> {
    #[serde(flatten)]
    pub item: AccessTokenItem<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<&'a str>,
    /// Where a leaked token was found: `{url, source}` of the scanner's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak: Option<&'a Value>,
}

impl Event {
    /// Renders an event of `event_type` with `data`.
    pub fn new(
        source: &str,
        event_type: &'static str,
        org_id: Option<&str>,
        subject: Option<&str>,
        time: DateTime<Utc>,
        data: impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        let message_id = random_id("msg");
        let payload = serde_json::to_string(&CloudEvent {
            specversion: "1.0",
            id: &message_id,
            source,
            event_type,
            time: rfc3339(time),
            subject,
            organization: org_id,
            datacontenttype: "application/json",
            data,
        })?;
        Ok(Self {
            message_id,
            event_type,
            subject: subject.map(str::to_owned),
            org_id: org_id.map(str::to_owned),
            time,
            payload,
        })
    }

    /// A token event: `data` is the token's item, with `reason`, `expires_in_days` or
    /// `replaced_by` where the event has them.
    pub fn about_token(
        source: &str,
        event_type: &'static str,
        token: &TokenRecord,
        time: DateTime<Utc>,
        extra: Extra<'_>,
    ) -> Result<Self, serde_json::Error> {
        Self::new(
            source,
            event_type,
            Some(&token.org_id),
            Some(&token.id),
            time,
            TokenData {
                item: AccessTokenItem::from(token),
                reason: extra.reason,
                expires_in_days: extra.expires_in_days,
                replaced_by: extra.replaced_by,
                leak: extra.leak,
            },
        )
    }
}

/// What a token event adds to the token's item.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra<'a> {
    pub reason: Option<&'a str>,
    pub expires_in_days: Option<u32>,
    pub replaced_by: Option<&'a str>,
    pub leak: Option<&'a Value>,
}

/// A token that is no longer stored (contact identification tokens never are): what its audit
/// event knows of it.
#[derive(Serialize)]
struct UnstoredToken<'a> {
    id: &'a str,
    token_type: Option<&'static str>,
    created_at: String,
}

/// The events an audit event stands for, with the token as it stands now (`None` when it is not
/// stored): a rotation is the old token's `token.rotated`, and its end a `token.revoked` (reason
/// `rotated`); another revocation with a related token is a cascade.
pub fn from_audit_event(
    source: &str,
    e: &AuditEvent,
    token: Option<&TokenRecord>,
) -> Result<Vec<Event>, serde_json::Error> {
    let time = e.occurred_at;
    let org = Some(e.org_id.as_str());
    let Some(token_id) = e.token_id.as_deref() else {
        return Ok(match e.action.as_str() {
            "policy_changed" => {
                let details: Value = e
                    .details
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                vec![Event::new(
                    source,
                    POLICY_CHANGED,
                    org,
                    None,
                    time,
                    serde_json::json!({
                        "old": details.get("old"),
                        "new": details.get("new"),
                        "changed_by": e.actor_user_id,
                    }),
                )?]
            }
            _ => Vec::new(),
        });
    };
    let Some(token) = token else {
        // Only a creation is told of a token that is not stored.
        return Ok(match e.action.as_str() {
            "created" => vec![Event::new(
                source,
                TOKEN_CREATED,
                org,
                Some(token_id),
                time,
                UnstoredToken {
                    id: token_id,
                    token_type: e.token_type.map(|t| t.0.as_str()),
                    created_at: rfc3339(time),
                },
            )?],
            _ => Vec::new(),
        });
    };
    let about = |event_type, extra| Event::about_token(source, event_type, token, time, extra);
    Ok(match e.action.as_str() {
        "created" => vec![about(TOKEN_CREATED, Extra::default())?],
        "revoked" => {
            // A report says why (`reported`, `leaked`); else a cascade or a caller's revocation.
            let details: Option<Value> = e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok());
            let reported = details
                .as_ref()
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str);
            let reason = reported.unwrap_or(if e.related_token_id.is_some() {
                "cascade"
            } else {
                "revoked"
            });
            vec![about(
                TOKEN_REVOKED,
                Extra {
                    reason: Some(reason),
                    leak: details.as_ref().and_then(|d| d.get("leak")),
                    replaced_by: e
                        .related_token_id
                        .as_deref()
                        .filter(|_| reason == "rotated"),
                    ..Extra::default()
                },
            )?]
        }
        // The end of the old token is its own `revoked` event (reason `rotated`), at once or at
        // the end of the overlap; the item shows `replaced_by` and, while rotating, `retires_at`.
        "rotated" => vec![about(
            TOKEN_ROTATED,
            Extra {
                replaced_by: e.related_token_id.as_deref(),
                ..Extra::default()
            },
        )?],
        "suspended" => vec![about(TOKEN_SUSPENDED, Extra::default())?],
        "resumed" => vec![about(TOKEN_RESUMED, Extra::default())?],
        _ => Vec::new(),
    })
}
