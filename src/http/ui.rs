//! The reference "Settings > Access Tokens" page at `/ui/` (and `/`, which redirects there): three
//! static files embedded in the binary, which call the REST API from the same origin with the
//! signed-in user's bearer token. No Node at run time, no CDN.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles from this origin
//! only (no inline script, no `eval`), `connect-src 'self'`, no plugins, no base URI, and
//! `frame-ancestors` from `UI_FRAME_ANCESTORS` (none by default), so that only the portals named
//! there may embed the page.

use axum::Router;
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
pub fn router<S: Clone + Send + Sync + 'static>(csp: HeaderValue) -> Router<S> {
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
}

async fn to_page() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static("/ui/"))],
    )
        .into_response()
}
