//! `/v1/access-tokens/federated-credentials` (an organization's trust rules for workloads, admins
//! only) and `POST /v1/access-tokens/token`, where a workload exchanges its OIDC token for an
//! assume token (RFC 8693).

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::json::Json;
use super::pagination::{self, DEFAULT_LIMIT, QueryString, parse_limit};
use super::state::AppState;
use super::tokens::never_cached;
use crate::error::Result;
use crate::service::federation::{
    CreateCredentialBody, Credential, EXCHANGED_LIFETIME_SECONDS, ExchangeRequest, JWT_TYPE,
    Refused,
};
use crate::store::types::Timestamp;
use crate::tokens::Caller;

/// `POST /v1/access-tokens/federated-credentials`: 201 with the credential.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateCredentialBody>,
) -> Result<Response> {
    let created = state
        .service()
        .create_federated_credential(&caller, body)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// `GET /v1/access-tokens/federated-credentials`: a page, newest first, with `Link` to the next.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(query): QueryString,
) -> Result<Response> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => limit = parse_limit(&value)?,
            "cursor" if !value.is_empty() => after = Some(pagination::decode_position(&value)?),
            _ => {}
        }
    }
    let rows = state
        .service()
        .federated_credentials(
            &caller,
            after
                .as_ref()
                .map(|(time, id)| (Timestamp(*time), id.as_str())),
            i64::from(pagination::fetch_limit(limit)),
        )
        .await?;
    let (rows, next) = pagination::split_page(rows, limit, |last| {
        pagination::encode_token_cursor(last.created_at.0, &last.id)
    });
    let items: Vec<Credential> = rows.iter().map(Credential::from).collect();
    let url = format!(
        "{}/v1/access-tokens/federated-credentials",
        state.service().public_url()
    );
    Ok(pagination::page_response(items, &url, &query, next))
}

/// `GET /v1/access-tokens/federated-credentials/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let credential = state.service().federated_credential(&caller, &id).await?;
    Ok(axum::Json(credential).into_response())
}

/// `DELETE /v1/access-tokens/federated-credentials/{id}`: 204; its tokens, and every token made
/// from them, are revoked.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    state
        .service()
        .delete_federated_credential(&caller, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
struct Exchanged<'a> {
    access_token: &'a str,
    issued_token_type: &'static str,
    token_type: &'static str,
    expires_in: u64,
}

#[derive(Serialize)]
struct OauthError<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// A refusal as RFC 6749 section 5.2 writes it: 400, never cached.
fn refusal(refused: &Refused) -> Response {
    never_cached(
        (
            StatusCode::BAD_REQUEST,
            axum::Json(OauthError {
                error: refused.error,
                error_description: &refused.description,
            }),
        )
            .into_response(),
    )
}

/// `POST /v1/access-tokens/token` (form-encoded): a workload's OIDC token for an assume token.
pub async fn exchange(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let form = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Ok(refusal(&Refused {
            error: "invalid_request",
            description: "the request must be application/x-www-form-urlencoded (RFC 8693)"
                .to_owned(),
        }));
    }
    let mut request = ExchangeRequest::default();
    for (key, value) in form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "grant_type" => &mut request.grant_type,
            "subject_token" => &mut request.subject_token,
            "subject_token_type" => &mut request.subject_token_type,
            "organization" => &mut request.organization,
            _ => continue,
        };
        // RFC 6749 section 3.2: a parameter sent twice is an invalid request.
        if slot.is_some() {
            return Ok(refusal(&Refused {
                error: "invalid_request",
                description: format!("{key} is sent more than once"),
            }));
        }
        *slot = Some(value.into_owned());
    }
    let address = super::caller::peer_address(peer);
    match state
        .service()
        .exchange_token(
            &request,
            address.as_deref(),
            super::caller::user_agent(&headers),
        )
        .await?
    {
        Ok(created) => {
            tracing::Span::current().record("token_id", created.record.id.as_str());
            let body = Exchanged {
                access_token: &created.jwt,
                issued_token_type: JWT_TYPE,
                token_type: "Bearer",
                expires_in: EXCHANGED_LIFETIME_SECONDS,
            };
            Ok(never_cached(axum::Json(body).into_response()))
        }
        Err(refused) => Ok(refusal(&refused)),
    }
}
