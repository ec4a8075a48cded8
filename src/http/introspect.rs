//! `POST /v1/access-tokens/introspect`: token introspection (RFC 7662). The handler reads the
//! client's HTTP Basic credentials and the `token` parameter, and renders what
//! `Service::introspect` answers: `{"active": false}`, or the token's claims with `active: true`.

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::state::AppState;
use crate::error::{Error, Result};

pub async fn introspect(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let service = state.service();
    let address = super::caller::peer_address(peer);
    let credentials = basic_credentials(&headers);
    let client = service.authenticate_introspection_client(
        address.as_deref(),
        credentials
            .as_ref()
            .map(|(id, secret)| (id.as_str(), secret.as_str())),
    )?;
    let token = token_of(&headers, &body)?;
    let answer = match service.introspect(&client, &token).await? {
        Some(claims) => serde_json::to_vec(&Active(&claims))
            .map_err(|e| Error::internal("rendering the introspection answer", e))?,
        None => br#"{"active":false}"#.to_vec(),
    };
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        // The answer describes a credential: not for caches.
        (CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((headers, answer).into_response())
}

/// The answer for an active token: `active`, `username` (RFC 7662; the token's own `username`
/// claim, else its `cognito:username`), and the token's claims, written straight from the
/// verified claims without building a second map.
struct Active<'a>(&'a Map<String, Value>);

impl Serialize for Active<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let claims = self.0;
        let username = claims
            .get("username")
            .or_else(|| claims.get("cognito:username"));
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("active", &true)?;
        if let Some(username) = username {
            map.serialize_entry("username", username)?;
        }
        for (name, value) in claims {
            if name != "active" && name != "username" {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())?;
    let (id, secret) = credentials.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[derive(Deserialize)]
struct JsonRequest {
    token: String,
}

/// The `token` parameter: form-encoded as RFC 7662 says, or JSON.
fn token_of(headers: &HeaderMap, body: &[u8]) -> crate::service::Result<String> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let token = if content_type.starts_with("application/x-www-form-urlencoded") {
        match plain_token(body) {
            Some(token) => Some(token.to_owned()),
            None => form_urlencoded::parse(body)
                .find(|(key, _)| key == "token")
                .map(|(_, value)| value.into_owned()),
        }
    } else if content_type.starts_with("application/json") {
        // An object only: serde would also read `["<token>"]` into `JsonRequest` by position.
        super::json::object::<JsonRequest>(body)
            .map(|r| Some(r.token))
            .map_err(|_| Error::bad_request("body must be JSON with a string field token"))?
    } else {
        return Err(Error::UnsupportedMediaType);
    };
    token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::bad_request("token is required"))
}

/// The usual form body, `token=<JWT>` alone with nothing encoded in it (a JWT is base64url and
/// dots), read without decoding; anything else goes through the form parser.
fn plain_token(body: &[u8]) -> Option<&str> {
    let value = body.strip_prefix(b"token=")?;
    let plain = value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}
