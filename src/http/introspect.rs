//! `POST /v1/access-tokens/introspect`: token introspection (RFC 7662) for verifiers that must see
//! revocations. Clients authenticate with HTTP Basic against `INTROSPECTION_CLIENTS`; the answer
//! is `{"active": false}` for anything not currently valid (bad signature, unknown or revoked key,
//! expired, revoked, malformed), and the token's claims with `active: true` otherwise.
//!
//! Failed client authentications are counted per address (with failed caller authentications, in
//! the same limit) and per configured client id; once either is used up, the endpoint answers 429
//! before any secret is compared.

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
use crate::config::{IntrospectionClient, sha256};
use crate::error::{Error, Result};
use crate::keys::verify::verify_own;
use crate::metrics::Introspection;
use crate::tokens::TokenType;

pub async fn introspect(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip().to_string());
    if let Err(refused) = authenticate_client(&state, address.as_deref(), &headers) {
        state.metrics.introspection(Introspection::ClientRefused);
        return Err(refused);
    }
    let token = token_of(&headers, &body)?;
    let answer = match evaluate(&state, &token).await? {
        Some(claims) => {
            state.metrics.introspection(Introspection::Active);
            serde_json::to_vec(&Active(&claims))
                .map_err(|e| Error::internal("rendering the introspection answer", e))?
        }
        None => {
            state.metrics.introspection(Introspection::Inactive);
            br#"{"active":false}"#.to_vec()
        }
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

/// HTTP Basic against the configured clients, within the failed-authentication limits of the
/// client's address and of the client id it names.
fn authenticate_client(state: &AppState, address: Option<&str>, headers: &HeaderMap) -> Result<()> {
    let limits = &state.rate_limits;
    if let Some(address) = address {
        limits.check_address(address)?;
    }
    let clients = &state.settings.introspection_clients;
    let credentials = basic_credentials(headers);
    // Only configured ids are counted per client: made-up ids have no secret to guess, and
    // counting them would let anyone fill the limiter.
    let known_id = credentials
        .as_ref()
        .and_then(|(id, _)| clients.iter().find(|client| client.id == *id))
        .map(|client| client.id.as_str());
    if let Some(id) = known_id {
        limits.check_introspection_client(id)?;
    }
    if let Some((id, secret)) = &credentials
        && is_client(clients, id, secret)
    {
        return Ok(());
    }
    if let Some(address) = address {
        limits.failed_authentication(address);
    }
    if let Some(id) = known_id {
        limits.failed_introspection_client(id);
    }
    Err(Error::ClientUnauthorized(if clients.is_empty() {
        "introspection is off: no client is configured (INTROSPECTION_CLIENTS)"
    } else if credentials.is_none() {
        "client credentials (HTTP Basic) are required"
    } else {
        "unknown client id or wrong secret"
    }))
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

/// Whether `id` and `secret` are a configured client's; secrets are compared as SHA-256 digests
/// in constant time.
fn is_client(clients: &[IntrospectionClient], id: &str, secret: &str) -> bool {
    let given = sha256(secret.as_bytes());
    clients.iter().any(|client| {
        let same_secret =
            aws_lc_rs::constant_time::verify_slices_are_equal(&client.secret_sha256, &given)
                .is_ok();
        same_secret && client.id == id
    })
}

#[derive(Deserialize)]
struct JsonRequest {
    token: String,
}

/// The `token` parameter: form-encoded as RFC 7662 says, or JSON.
fn token_of(headers: &HeaderMap, body: &[u8]) -> Result<String> {
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
        serde_json::from_slice::<JsonRequest>(body)
            .map(|r| r.token)
            .map_err(|_| Error::bad_request("body must be JSON with a string field token"))
            .map(Some)?
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

/// The claims of a currently valid token of this service, or `None`.
async fn evaluate(state: &AppState, token: &str) -> Result<Option<Map<String, Value>>> {
    let keys = state.keys.current();
    let Ok(own) = verify_own(&keys, token) else {
        return Ok(None);
    };
    let Some(token_type) = own
        .claim_str("token_type")
        .and_then(|t| t.parse::<TokenType>().ok())
    else {
        return Ok(None);
    };
    if token_type.key_set() != own.set {
        return Ok(None);
    }
    if token_type.is_stored() {
        let (Some(org_id), Some(token_id)) = (own.claim_str("org_id"), own.claim_str("token_id"))
        else {
            return Ok(None);
        };
        // Fails closed: when the revocation set is stale and the database does not answer, the
        // answer is an error, never a wrong `active`.
        if state.revocations.refusal(org_id, token_id).await?.is_some() {
            return Ok(None);
        }
        state.usage.mark(token_id);
    }
    Ok(Some(own.claims))
}
