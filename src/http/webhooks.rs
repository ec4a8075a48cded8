//! `/v1/access-tokens/webhooks`: an organization's lifecycle webhook endpoints (admins only), their
//! deliveries and redeliveries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::json::Json;
use super::pagination::{self, DEFAULT_LIMIT, QueryString, parse_limit};
use super::state::AppState;
use super::tokens::never_cached;
use crate::error::Result;
use crate::service::webhooks::{CreateWebhookBody, WithSecret};
use crate::tokens::Caller;

/// An answer that shows a signing secret: never cached.
fn secret_response(status: StatusCode, body: &WithSecret) -> Response {
    never_cached((status, axum::Json(body)).into_response())
}

/// `POST /v1/access-tokens/webhooks`: 201 with the endpoint and its secret, shown once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateWebhookBody>,
) -> Result<Response> {
    let created = state.service().create_webhook(&caller, body).await?;
    Ok(secret_response(StatusCode::CREATED, &created))
}

/// `GET /v1/access-tokens/webhooks`: the organization's endpoints, oldest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    let endpoints = state.service().list_webhooks(&caller).await?;
    Ok(axum::Json(endpoints).into_response())
}

/// `GET /v1/access-tokens/webhooks/{id}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let endpoint = state.service().get_webhook(&caller, &id).await?;
    Ok(axum::Json(endpoint).into_response())
}

/// `DELETE /v1/access-tokens/webhooks/{id}`: 204; its pending deliveries are dropped.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    state.service().delete_webhook(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/access-tokens/webhooks/{id}/rotate-secret`: 200 with the new secret, shown once;
/// the old one signs beside it for 24 hours.
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let rotated = state.service().rotate_webhook_secret(&caller, &id).await?;
    Ok(secret_response(StatusCode::OK, &rotated))
}

/// `GET /v1/access-tokens/webhooks/{id}/deliveries`: a page of deliveries, newest first, with
/// `Link: rel="next"` when more remain.
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryString(query): QueryString,
) -> Result<Response> {
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "limit" => limit = parse_limit(&value)?,
            "cursor" if !value.is_empty() => {
                before = Some(pagination::decode_event_cursor(&value)?);
            }
            _ => {}
        }
    }
    let page = state
        .service()
        .webhook_deliveries(
            &caller,
            &id,
            before,
            i64::from(pagination::fetch_limit(limit)),
        )
        .await?;
    let (page, next) =
        pagination::split_page(page, limit, |last| pagination::encode_event_cursor(last.id));
    let url = format!(
        "{}/v1/access-tokens/webhooks/{id}/deliveries",
        state.service().public_url()
    );
    Ok(pagination::page_response(page, &url, &query, next))
}

/// `POST /v1/access-tokens/webhooks/{id}/deliveries/{delivery}/redeliver`: 202 with the new
/// delivery (the same message id), due now.
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response> {
    let queued = state
        .service()
        .redeliver_webhook(&caller, &id, &delivery)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(queued)).into_response())
}
