//! `/v1/access-tokens`: create, list and revoke.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::json::{Json, OptionalJson};
use super::pagination::{self, DEFAULT_LIMIT, QueryString, parse_limit};
use super::state::AppState;
use crate::error::{Error, Result};
use crate::service::{Created, ListParams, Rotation};
pub(crate) use crate::tokens::item::{AccessTokenItem, rfc3339};
use crate::tokens::request::CreateTokenBody;
use crate::tokens::{Caller, ExpiresIn, TokenStatus, TokenType};

#[derive(Serialize)]
struct CreatedToken<'a> {
    token: &'a str,
    #[serde(flatten)]
    item: AccessTokenItem<'a>,
}

/// 201 with the JWT (shown only here) and the item; never cached (RFC 6749 section 5.1).
fn created_response(created: &Created) -> Response {
    let body = CreatedToken {
        token: &created.jwt,
        item: AccessTokenItem::from(&created.record),
    };
    never_cached((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// `response` with `Cache-Control: no-store` and `Pragma: no-cache`: an answer that shows a
/// secret (a JWT, a webhook's signing secret) is kept by no cache (RFC 6749 section 5.1).
pub(crate) fn never_cached(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /v1/access-tokens`: create a token.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTokenBody>,
) -> Result<Response> {
    let created = state.service().create_token(&caller, body).await?;
    tracing::Span::current().record("token_id", created.record.id.as_str());
    Ok(created_response(&created))
}

/// `GET /v1/access-tokens/{id}`: one token of the caller's organization.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let record = state.service().get_token(&caller, &id).await?;
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// `GET /v1/access-tokens`: a page of the organization's tokens, newest first. The body stays a
/// plain array; when more remain, `Link: <...>; rel="next"` carries the next page's full URL.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryString(query): QueryString,
) -> Result<Response> {
    let mut params = list_params(&query)?;
    let limit = params.limit;
    params.limit = pagination::fetch_limit(limit);
    let records = state.service().list_tokens(&caller, &params).await?;
    let (records, next) = pagination::split_page(records, limit, |last| {
        pagination::encode_token_cursor(last.created_at, &last.id)
    });
    let items: Vec<AccessTokenItem<'_>> = records.iter().map(AccessTokenItem::from).collect();
    let url = format!("{}/v1/access-tokens", state.service().public_url());
    Ok(pagination::page_response(items, &url, &query, next))
}

#[derive(Serialize)]
struct RevokedToken<'a> {
    #[serde(flatten)]
    item: AccessTokenItem<'a>,
    /// With `cascade=true`: the ids of the tokens below it that this call revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_descendants: Option<Vec<&'a str>>,
}

/// `DELETE /v1/access-tokens/{id}[?cascade=true]`: 200 with the item, again on a second revoke;
/// 404 for an id the caller does not manage.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryString(query): QueryString,
) -> Result<Response> {
    let cascade = cascade_param(&query)?;
    let revoked = state.service().revoke_token(&caller, &id, cascade).await?;
    tracing::Span::current().record("token_id", revoked.record.id.as_str());
    let body = RevokedToken {
        item: AccessTokenItem::from(&revoked.record),
        revoked_descendants: cascade
            .then(|| revoked.descendants.iter().map(|t| t.id.as_str()).collect()),
    };
    Ok(axum::Json(body).into_response())
}

/// `cascade=true` or `cascade=false` (absent: false; any other value is a 400); other parameters
/// are ignored.
fn cascade_param(query: &str) -> crate::service::Result<bool> {
    let mut cascade = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == "cascade" {
            cascade = match value.as_ref() {
                "true" => true,
                "false" => false,
                _ => return Err(Error::bad_request("cascade must be true or false")),
            };
        }
    }
    Ok(cascade)
}

/// `POST /v1/access-tokens/{id}/suspend`: refused until resumed; 200 with the item.
pub async fn suspend(state: State<AppState>, caller: Caller, id: Path<String>) -> Result<Response> {
    set_suspended(state, caller, id, true).await
}

/// `POST /v1/access-tokens/{id}/resume`: valid again; 200 with the item.
pub async fn resume(state: State<AppState>, caller: Caller, id: Path<String>) -> Result<Response> {
    set_suspended(state, caller, id, false).await
}

async fn set_suspended(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    suspend: bool,
) -> Result<Response> {
    let record = state.service().set_suspended(&caller, &id, suspend).await?;
    tracing::Span::current().record("token_id", record.id.as_str());
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// The body of a rotation, which may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old token stays valid beside the new one: seconds, or a string such as
    /// `"1h"` (the notation of `expires_in`). Absent: 0, the old token is revoked at once; `null`
    /// is no duration (a 400).
    #[serde(default, deserialize_with = "present")]
    overlap: Option<serde_json::Value>,
}

/// A member that is there, `null` included: serde would read `null` as an absent `Option`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

impl RotateBody {
    fn overlap(&self) -> crate::service::Result<std::time::Duration> {
        match &self.overlap {
            None => Ok(std::time::Duration::ZERO),
            Some(value) => ExpiresIn::parse(value)
                .map(|e| std::time::Duration::from_secs(e.seconds()))
                .map_err(|e| Error::BadRequest(e.replace("expires_in", "overlap"))),
        }
    }
}

/// `POST /v1/access-tokens/{id}/rotate` (optional body `{"overlap": ...}`): a new token in place
/// of the old, which is revoked at once or at the end of the overlap.
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<RotateBody>,
) -> Result<Response> {
    let how = Rotation {
        overlap: body.unwrap_or_default().overlap()?,
        itself: false,
    };
    let created = state.service().rotate_token(&caller, &id, how).await?;
    tracing::Span::current().record("token_id", created.record.id.as_str());
    Ok(created_response(&created))
}

/// `GET /v1/access-tokens/self`: the calling token's own item.
pub async fn get_self(State(state): State<AppState>, caller: Caller) -> Result<Response> {
    let record = state.service().own_token(&caller).await?;
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// `POST /v1/access-tokens/self/rotate` (optional body `{"overlap": ...}`): the calling api or
/// app token replaces itself.
pub async fn rotate_self(
    State(state): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson<RotateBody>,
) -> Result<Response> {
    let overlap = body.unwrap_or_default().overlap()?;
    let created = state.service().rotate_own_token(&caller, overlap).await?;
    tracing::Span::current().record("token_id", created.record.id.as_str());
    Ok(created_response(&created))
}

/// `DELETE /v1/access-tokens/self`: the bearer token, of any stored type, revokes itself; 200
/// with its item.
pub async fn revoke_self(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    let record = state
        .service()
        .revoke_own_token(
            super::caller::bearer_token(&headers),
            super::caller::peer_address(peer).as_deref(),
            super::caller::user_agent(&headers),
        )
        .await?;
    tracing::Span::current().record("token_id", record.id.as_str());
    Ok(axum::Json(AccessTokenItem::from(&record)).into_response())
}

/// The list's query: `token_type` in the three encodings clients use (repeated keys, brackets as
/// axios sends them, comma-separated values), `status`, `name`, `created_by`, `limit` and
/// `cursor`. Other parameters are ignored.
pub fn list_params(query: &str) -> crate::service::Result<ListParams> {
    let mut params = ListParams {
        limit: DEFAULT_LIMIT,
        ..ListParams::default()
    };
    let mut types: Vec<TokenType> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "token_type" | "token_type[]" => {
                for name in value
                    .split(',')
                    .map(|s| s.trim_matches(' '))
                    .filter(|s| !s.is_empty())
                {
                    let t: TokenType = name.parse().map_err(Error::BadRequest)?;
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            "status" => params.status = value.parse::<TokenStatus>().map_err(Error::BadRequest)?,
            "name" if !value.is_empty() => {
                if value.chars().count() > 255 {
                    return Err(Error::bad_request(
                        "name filter is longer than 255 characters",
                    ));
                }
                params.name = Some(value.into_owned());
            }
            "created_by" if !value.is_empty() => {
                if value.chars().count() > 255 {
                    return Err(Error::bad_request(
                        "created_by is longer than 255 characters",
                    ));
                }
                params.created_by = Some(value.into_owned());
            }
            "limit" => params.limit = parse_limit(&value)?,
            "cursor" if !value.is_empty() => {
                params.after = Some(pagination::decode_token_cursor(&value)?);
            }
            _ => {}
        }
    }
    // An empty filter (`token_type=`) filters nothing.
    params.types = (!types.is_empty()).then_some(types);
    Ok(params)
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
                list_params(query).unwrap().types,
                Some(vec![Api, App]),
                "{query}"
            );
        }
        assert_eq!(list_params("").unwrap().types, None);
        assert_eq!(list_params("other=1").unwrap().types, None);
        assert_eq!(list_params("token_type=").unwrap().types, None);
        assert!(list_params("token_type=root").is_err());
        // What openapi.yaml's pattern allows, and nothing more (found by schemathesis): spaces
        // around the commas are trimmed, other whitespace is part of the value.
        assert_eq!(
            list_params("token_type=%20api%20,%20,app%20")
                .unwrap()
                .types,
            Some(vec![Api, App])
        );
        assert!(list_params("token_type=api%09").is_err());
        assert!(list_params("token_type=apiapp").is_err());
    }

    #[test]
    fn list_parameters_are_checked() {
        let p = list_params("").unwrap();
        assert_eq!(
            (p.limit, p.status, p.name, p.after),
            (DEFAULT_LIMIT, TokenStatus::Active, None, None)
        );
        let p = list_params("limit=1000&status=all&name=ci%20bot").unwrap();
        assert_eq!(
            (p.limit, p.status, p.name.as_deref()),
            (1000, TokenStatus::All, Some("ci bot"))
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=-1",
            "limit=ten",
            "status=gone",
            "cursor=%%%",
            "cursor=bm9wZQ",
        ] {
            assert!(
                matches!(list_params(bad), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
