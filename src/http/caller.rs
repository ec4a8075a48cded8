//! The `Caller` extractor: the bearer token and the peer handed to `Service::authenticate`, the
//! organization the caller asks to act in (`x-epilot-org-id`) and its user agent.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;

use super::state::AppState;
use crate::error::ApiError;
use crate::service::authenticate::{ORG_HEADER, act_in_requested_organization, require_roles};
use crate::tokens::Caller;

/// User agents longer than this are cut before they reach an audit event.
const MAX_USER_AGENT_CHARS: usize = 512;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let mut caller = state
            .service()
            .authenticate(bearer_token(&parts.headers), address.as_deref())
            .await?;
        let requested = parts.headers.get_all(ORG_HEADER).iter();
        act_in_requested_organization(&mut caller, requested.map(|value| value.as_bytes()))?;
        require_roles(&caller)?;
        caller.user_agent = user_agent(&parts.headers);
        tracing::Span::current().record("org_id", caller.org_id.as_str());
        Ok(caller)
    }
}

/// The request's `User-Agent`, cut to what an audit event keeps.
pub fn user_agent(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// The client's address, as the connection gives it (behind a load balancer, the balancer's).
pub fn peer_address(peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>) -> Option<String> {
    peer.map(|axum::Extension(ConnectInfo(addr))| addr.ip().to_string())
}

/// The credentials of `Authorization: Bearer <token>` (the scheme in any case), if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
