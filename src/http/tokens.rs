//! `/v1/access-tokens`: create, list and revoke.

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::AppState;
use super::json::Json;
use crate::error::{Error, Result};
use crate::tokens::request::{CreateTokenBody, NewToken};
use crate::tokens::{Caller, TokenRecord, TokenType, service};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    journey_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    portal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    portal_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_operations: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
    created_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl<'a> From<&'a TokenRecord> for AccessTokenItem<'a> {
    fn from(r: &'a TokenRecord) -> Self {
        let f = &r.fields;
        Self {
            id: &r.id,
            created_at: rfc3339(r.created_at),
            name: &r.name,
            token_type: r.token_type.as_str(),
            assignments: &r.assignments,
            read_only: r.read_only,
            anonymize: r.anonymize,
            journey_id: f.journey_id.as_deref(),
            portal_id: f.portal_id.as_deref(),
            portal_user_id: f.portal_user_id.as_deref(),
            contact_id: f.contact_id.as_deref(),
            origin: f.origin.as_deref(),
            allowed_operations: f.allowed_operations.as_deref(),
            expires_at: r.expires_at.map(rfc3339),
            last_used: r.last_used.map(|d| d.format("%Y-%m-%d").to_string()),
            created_by: &r.created_by,
            revoked_at: r.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
struct CreatedToken<'a> {
    token: &'a str,
    #[serde(flatten)]
    item: AccessTokenItem<'a>,
}

/// `POST /v1/access-tokens`: 201 with the JWT (shown only here) and the item.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTokenBody>,
) -> Result<Response> {
    let new = NewToken::parse(body)?;
    let created = service::create(&state.pool, &state.keys, &caller, new).await?;
    tracing::info!(
        token_id = %created.record.id,
        token_type = %created.record.token_type,
        org_id = %caller.org_id,
        "access token created"
    );
    let body = CreatedToken {
        token: &created.jwt,
        item: AccessTokenItem::from(&created.record),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    // A response that carries a credential is never cached (RFC 6749 section 5.1).
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /v1/access-tokens`: the organization's unrevoked tokens, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let types = token_type_filter(query.as_deref().unwrap_or(""))?;
    let records = service::list(&state.pool, &caller, types.as_deref()).await?;
    let items: Vec<AccessTokenItem<'_>> = records.iter().map(AccessTokenItem::from).collect();
    Ok(axum::Json(items).into_response())
}

/// `DELETE /v1/access-tokens/{id}`: 200 with the item, again on a second revoke; 404 for an id
/// the caller's organization does not own.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let record = service::revoke(&state.pool, &caller, &id).await?;
    tracing::info!(token_id = %record.id, org_id = %caller.org_id, "access token revoked");
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// The `token_type` filter, in the three encodings clients use: repeated keys
/// (`token_type=api&token_type=app`), brackets (`token_type[]=api`, what axios sends) and
/// comma-separated values (`token_type=api,app`). Other parameters are ignored.
pub fn token_type_filter(query: &str) -> Result<Option<Vec<TokenType>>> {
    let mut types: Vec<TokenType> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != "token_type" && key != "token_type[]" {
            continue;
        }
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let t: TokenType = name.parse().map_err(Error::BadRequest)?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
    }
    // An empty filter (`token_type=`) filters nothing.
    Ok((!types.is_empty()).then_some(types))
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenType::*;

    #[test]
    fn all_three_array_encodings_give_the_same_filter() {
        for query in [
            "token_type=api&token_type=app",
            "token_type%5B%5D=api&token_type%5B%5D=app",
            "token_type[]=api&token_type[]=app",
            "token_type=api,app",
            "token_type=api%2Capp",
            "limit=5&token_type=api&token_type=app,api",
        ] {
            assert_eq!(
                token_type_filter(query).unwrap(),
                Some(vec![Api, App]),
                "{query}"
            );
        }
        assert_eq!(token_type_filter("").unwrap(), None);
        assert_eq!(token_type_filter("other=1").unwrap(), None);
        assert_eq!(token_type_filter("token_type=").unwrap(), None);
        assert!(token_type_filter("token_type=root").is_err());
    }
}
