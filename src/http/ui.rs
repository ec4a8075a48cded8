//! The reference "Settings > Access Tokens" page at `/ui/` (and `/`, which redirects there): three
//! static files embedded in the binary, which call the REST API from the same origin with the
//! signed-in user's bearer token. No Node at run time, no CDN.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this origin
//! only (no inline script, no `eval`), `connect-src 'self'`, no plugins, no base URI, and
//! `frame-ancestors` from `UI_FRAME_ANCESTORS` (none by default), so that only the portals named
//! there may embed the page.

use axum::Router;
use axum::extract::State;
use serde::Deserialize;

use super::json::Json;
use super::state::AppState;
use super::tokens::never_cached;
use crate::error::{Error, Result};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../../ui/index.html");
const SCRIPT: &str = include_str!("../../ui/app.js");
const STYLE: &str = include_str!("../../ui/app.css");

/// The page's Content-Security-Policy, with `frame-ancestors` from the setting.
pub fn content_security_policy(frame_ancestors: &[String]) -> String {
    let ancestors = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; form-action 'self'; base-uri 'none'; object-src 'none'; \
         frame-ancestors {ancestors}"
    )
}

/// The page's routes, answering every file with `csp`.
pub fn router(csp: HeaderValue) -> Router<AppState> {
    let file = move |content_type: &'static str, body: &'static str| {
        let csp = csp.clone();
        move || {
            let csp = csp.clone();
            async move {
                (
                    [
                        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                        (CONTENT_SECURITY_POLICY, csp),
                        // Always revalidated: a new release's page never runs an old script.
                        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
                    ],
                    body,
                )
                    .into_response()
            }
        }
    };
    Router::new()
        .route("/", get(to_page))
        .route("/ui", get(to_page))
        .route("/ui/", get(file("text/html; charset=utf-8", INDEX)))
        .route(
            "/ui/app.js",
            get(file("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route("/ui/app.css", get(file("text/css; charset=utf-8", STYLE)))
        .route("/ui/config.json", get(config))
        .route("/ui/sign-in", axum::routing::post(sign_in))
        .route("/ui/dev-sign-in", axum::routing::post(development_sign_in))
}

/// Whether the request comes from this machine, as the connection says (never a header).
fn from_loopback(
    peer: &Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> bool {
    peer.as_ref()
        .is_some_and(|axum::Extension(axum::extract::ConnectInfo(addr))| addr.ip().is_loopback())
}

/// `GET /ui/config.json`: how the page signs a user in (`oidc`: the identity provider's sign-in,
/// or `null`), whether the development sign-in is offered (the embedded store, to a loopback
/// client), and which origins may hand the page a token (`postMessage`).
async fn config(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
) -> Result<Response> {
    let service = state.service();
    let oidc = match service.ui_sign_in() {
        Some(sign_in) => Some(sign_in.config().await?),
        None => None,
    };
    let development = service.offers_development_sign_in() && from_loopback(&peer);
    Ok(never_cached(
        axum::Json(serde_json::json!({
            "oidc": oidc,
            "development": development,
            "embedders": service.http_settings().ui_frame_ancestors,
        }))
        .into_response(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DevelopmentSignIn {
    organization: String,
    user: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// `POST /ui/dev-sign-in` `{"organization", "user", "roles"}`: on the embedded store, to a
/// loopback client only, a caller minted as `access-tokens dev-token` mints one; 404 otherwise.
async fn development_sign_in(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Json(body): Json<DevelopmentSignIn>,
) -> Result<Response> {
    let service = state.service();
    if !service.offers_development_sign_in() || !from_loopback(&peer) {
        return Err(Error::NotFound(
            "the development sign-in exists on the embedded store, for clients on this machine only".to_owned(),
        )
        .into());
    }
    let created = service
        .development_sign_in(&body.organization, &body.user, &body.roles)
        .await?;
    Ok(never_cached(
        axum::Json(serde_json::json!({ "token": created.jwt })).into_response(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    code: String,
    code_verifier: String,
}

/// `POST /ui/sign-in` `{"code", "code_verifier"}`: the ID token the issuer gives for them.
async fn sign_in(State(state): State<AppState>, Json(body): Json<SignIn>) -> Result<Response> {
    let sign_in = state.service().ui_sign_in().ok_or_else(|| {
        Error::NotFound(
            "the settings page has no identity provider sign-in (UI_OIDC_ISSUER)".to_owned(),
        )
    })?;
    let id_token = sign_in.redeem(&body.code, &body.code_verifier).await?;
    Ok(never_cached(
        axum::Json(serde_json::json!({ "id_token": id_token })).into_response(),
    ))
}

async fn to_page() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static("/ui/"))],
    )
        .into_response()
}
