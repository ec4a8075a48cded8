//! When a token leaks: `POST /v1/access-tokens/revoke` (anyone who holds a token, RFC 7009's form
//! or a JSON batch) and `POST /v1/access-tokens/identify` (an organization's admins).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json as AxumJson};
use serde::Deserialize;

use super::json::Json;
use super::state::AppState;
use super::tokens::AccessTokenItem;
use crate::error::{Error, Result};
use crate::service::leaks::MAX_REPORTED;
use crate::tokens::Caller;

/// `{"tokens": [...]}`: the JSON form of a report.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    tokens: Vec<String>,
}

/// The tokens a body names: `token=` of RFC 7009's form (`token_type_hint` and anything else
/// ignored), or the `tokens` of a JSON body; with whether the answer is the form's.
fn reported(headers: &HeaderMap, body: &[u8]) -> crate::service::Result<(Vec<String>, bool)> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/x-www-form-urlencoded" => {
            let mut tokens = form_urlencoded::parse(body)
                .filter(|(key, _)| key == "token")
                .map(|(_, value)| value.into_owned());
            let token = tokens.next().filter(|t| !t.is_empty()).ok_or_else(|| {
                Error::bad_request("token is required (RFC 7009: token=<the token>)")
            })?;
            if tokens.next().is_some() {
                return Err(Error::bad_request(
                    "token is given more than once; send a batch as JSON {\"tokens\": [...]}",
                ));
            }
            Ok((vec![token], true))
        }
        "application/json" => {
            // An object only: serde would read `[[...]]` as a `Batch` by position.
            let batch: Batch = super::json::object(body).map_err(|e| {
                Error::bad_request(format!(
                    "the body must be {{\"tokens\": [\"<token>\", ...]}}: {e}"
                ))
            })?;
            if batch.tokens.len() > MAX_REPORTED {
                return Err(Error::bad_request(format!(
                    "at most {MAX_REPORTED} tokens per request ({} given); send the rest in another",
                    batch.tokens.len()
                )));
            }
            Ok((batch.tokens, false))
        }
        _ => Err(Error::UnsupportedMediaType),
    }
}

/// `POST /v1/access-tokens/revoke`: revokes the tokens it is given, whoever sends them; the same
/// answer whatever they were (RFC 7009 section 2.2): 200 with no body for the form, 202
/// `{"received": N}` for JSON.
pub async fn revoke(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let address = super::caller::peer_address(peer);
    let (tokens, form) = reported(&headers, &body)?;
    let user_agent = super::caller::user_agent(&headers);
    let received = state
        .service()
        .revoke_by_possession(address.as_deref(), user_agent, &tokens)
        .await?;
    let mut response = if form {
        StatusCode::OK.into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            AxumJson(serde_json::json!({ "received": received })),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifyBody {
    token: String,
}

/// `POST /v1/access-tokens/identify`: the item of the caller's organization's token the body
/// holds (admins only); 404 for anything else.
pub async fn identify(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<IdentifyBody>,
) -> Result<Response> {
    let record = state.service().identify(&caller, &body.token).await?;
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// `POST /v1/access-tokens/secret-scanning/github`: a GitHub secret scanning alert, signed by
/// GitHub; 200 with a label per match (see `service::secret_scanning`).
pub async fn github(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let address = super::caller::peer_address(peer);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let labels = state
        .service()
        .github_alert(
            header("github-public-key-identifier"),
            header("github-public-key-signature"),
            &body,
            address.as_deref(),
        )
        .await?;
    Ok(AxumJson(labels).into_response())
}

/// `POST /v1/access-tokens/offboard`: revokes every token a user created in the caller's
/// organization, and the tokens made from them (admins only); 200 `{"revoked": [ids]}`.
pub async fn offboard(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<crate::service::offboard::OffboardBody>,
) -> Result<Response> {
    let revoked = state.service().offboard(&caller, &body.user_id).await?;
    Ok(AxumJson(serde_json::json!({ "revoked": revoked })).into_response())
}
