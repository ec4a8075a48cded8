//! `GET /v1/access-tokens/audit-events`: who created, revoked and rotated the organization's
//! tokens, newest first, a page at a time.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::AppState;
use super::tokens::{DEFAULT_LIMIT, page_response, parse_limit, rfc3339};
use crate::error::{Error, Result};
use crate::store::{AuditEvent, Queries};
use crate::tokens::{Caller, TokenId};

#[derive(Serialize)]
struct Actor<'a> {
    org_id: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<&'a str>,
}

#[derive(Serialize)]
struct EventItem<'a> {
    id: String,
    occurred_at: String,
    action: &'a str,
    token_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    related_token_id: Option<&'a str>,
    actor: Actor<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
}

impl<'a> From<&'a AuditEvent> for EventItem<'a> {
    fn from(e: &'a AuditEvent) -> Self {
        Self {
            id: e.id.to_string(),
            occurred_at: rfc3339(e.occurred_at),
            action: &e.action,
            token_id: &e.token_id,
            related_token_id: e.related_token_id.as_deref(),
            actor: Actor {
                org_id: &e.actor_org_id,
                user_id: &e.actor_user_id,
                token_id: e.actor_token_id.as_deref(),
            },
            source_ip: e.source_ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let query = query.unwrap_or_default();
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
            "cursor" if !value.is_empty() => before = Some(decode_cursor(&value)?),
            _ => {}
        }
    }
    let mut events = state
        .store
        .acquire()
        .await?
        .db()
        .list_events(
            &caller.org_id,
            token_id.as_deref(),
            before,
            i64::from(limit) + 1,
        )
        .await?;
    let next = (events.len() > usize::from(limit)).then(|| {
        events.truncate(usize::from(limit));
        events
            .last()
            .map(|e| URL_SAFE_NO_PAD.encode(e.id.to_string()))
    });
    let items: Vec<EventItem<'_>> = events.iter().map(EventItem::from).collect();
    let url = format!("{}/v1/access-tokens/audit-events", state.keys.public_url());
    Ok(page_response(
        items,
        &url,
        &query,
        next.flatten().as_deref(),
    ))
}

// Public for the fuzz targets.
pub fn decode_cursor(cursor: &str) -> Result<i64> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::bad_request("cursor is not one this service gave out"))
}
