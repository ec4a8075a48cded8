//! `GET /v1/access-tokens/audit-events`: who created, revoked and rotated the organization's
//! tokens (contact identification tokens, never stored, included) and who changed its policy,
//! newest first, a page at a time.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::pagination::{self, DEFAULT_LIMIT, QueryString, parse_limit};
use super::state::AppState;
use super::tokens::rfc3339;
use crate::error::{Error, Result};
use crate::service::{AuditEvent, Identified};
use crate::tokens::{Caller, TokenId};

#[derive(Serialize)]
struct Actor<'a> {
    org_id: &'a str,
    /// The actor's own organization, when it acted in this one with `x-epilot-org-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    home_org_id: Option<&'a str>,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<&'a str>,
}

/// A caller, or who acted when no caller did: `{"type": "possession"}` (whoever held the token
/// reported it) or `{"type": "secret_scanning"}`.
#[derive(Serialize)]
#[serde(untagged)]
enum ActorItem<'a> {
    Caller(Actor<'a>),
    Reported {
        #[serde(rename = "type")]
        kind: &'a str,
    },
}

#[derive(Serialize)]
struct EventItem<'a> {
    id: String,
    occurred_at: String,
    action: &'a str,
    /// Absent on events about no token (`policy_changed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<&'a str>,
    /// Absent on events recorded before the type was.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    related_token_id: Option<&'a str>,
    #[serde(flatten)]
    identified: &'a Identified,
    actor: ActorItem<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    /// `policy_changed`: the old and the new policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

impl<'a> From<&'a AuditEvent> for EventItem<'a> {
    fn from(e: &'a AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            occurred_at: rfc3339(e.occurred_at),
            action: &e.action,
            token_id: e.token_id.as_deref(),
            related_token_id: e.related_token_id.as_deref(),
            token_type: e.token_type.map(|t| t.0.as_str()),
            identified: &e.identified,
            actor: match e.actor_type.as_deref() {
                Some(kind) => ActorItem::Reported { kind },
                None => ActorItem::Caller(Actor {
                    org_id: &e.actor_org_id,
                    home_org_id: e.actor_home_org_id.as_deref(),
                    user_id: &e.actor_user_id,
                    token_id: e.actor_token_id.as_deref(),
                }),
            },
            source_ip: e.source_ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            // Written by the service as JSON (and checked to be JSON by SQLite).
            details: e
                .details
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(query): QueryString,
) -> Result<Response> {
    let mut token_id = None;
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "token_id" if !value.is_empty() => {
                // An id that no token can have matches no event.
                TokenId::parse(&value)
                    .ok_or_else(|| Error::bad_request("token_id is not a token id"))?;
                token_id = Some(value.into_owned());
            }
            "limit" => limit = parse_limit(&value)?,
            "cursor" if !value.is_empty() => {
                before = Some(pagination::decode_event_cursor(&value)?);
            }
            _ => {}
        }
    }
    let events = state
        .service()
        .audit_events(
            &caller,
            token_id.as_deref(),
            before,
            i64::from(pagination::fetch_limit(limit)),
        )
        .await?;
    let (events, next) = pagination::split_page(events, limit, |last| {
        pagination::encode_event_cursor(last.id)
    });
    let items: Vec<EventItem<'_>> = events.iter().map(EventItem::from).collect();
    let url = format!(
        "{}/v1/access-tokens/audit-events",
        state.service().public_url()
    );
    Ok(pagination::page_response(items, &url, &query, next))
}
