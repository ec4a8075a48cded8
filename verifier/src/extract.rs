//! An axum extractor of verified claims (feature `axum`).

use axum::extract::{FromRef, FromRequestParts};
use std::time::Duration;

use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Error, Verifier};

/// The verified claims of the request's `Authorization: Bearer` token. The [`Verifier`] comes
/// from the router's state (`Verifier: FromRef<S>`). A request without a valid token is answered
/// 401 with `WWW-Authenticate` as RFC 6750 section 3 says; one whose token's status cannot be
/// known (its status list unavailable, [`Error::StatusUnavailable`]) is answered 503: it is
/// refused, but the token may well be valid, and the client should retry rather than discard it.
///
/// ```no_run
/// use access_tokens_verifier::{Bearer, Verifier};
/// use axum::{Router, routing::get};
///
/// async fn me(Bearer(claims): Bearer) -> String {
///     claims.user_id.unwrap_or_default()
/// }
///
/// # async fn run() -> Result<(), access_tokens_verifier::Error> {
/// let verifier = Verifier::builder("https://tokens.example.com/v1/access-tokens").build().await?;
/// let app: Router = Router::new().route("/me", get(me)).with_state(verifier);
/// # let _ = app;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

/// Why a request was refused: 401, or 503 for [`Rejection::Unavailable`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization: Bearer` header: `WWW-Authenticate: Bearer` (RFC 6750 section 3.1
    /// gives no error code to a request without credentials).
    Missing,
    /// A token that does not verify: `WWW-Authenticate: Bearer error="invalid_token"`.
    Invalid(Error),
    /// The token's status could not be learnt ([`Error::StatusUnavailable`]): 503 with
    /// `Retry-After`, and no challenge, since the token itself was not found wrong.
    Unavailable {
        /// Why.
        error: Error,
        /// When the verifier fetches the list again: the minimum of its `status_ttl_bounds`.
        retry_after: Duration,
    },
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let challenge = match self {
            Self::Missing => HeaderValue::from_static("Bearer"),
            Self::Invalid(_) => HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            Self::Unavailable { retry_after, .. } => {
                let seconds = retry_after.as_secs().max(1);
                return (StatusCode::SERVICE_UNAVAILABLE, [(RETRY_AFTER, seconds)]).into_response();
            }
        };
        (StatusCode::UNAUTHORIZED, [(WWW_AUTHENTICATE, challenge)]).into_response()
    }
}

impl<S> FromRequestParts<S> for Bearer
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Rejection::Missing)?;
        // The scheme is case-insensitive (RFC 9110 section 11.1).
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(Rejection::Missing)?;
        let verifier = Verifier::from_ref(state);
        verifier
            .verify(token)
            .await
            .map(Bearer)
            .map_err(|error| match error {
                Error::StatusUnavailable(_) => Rejection::Unavailable {
                    error,
                    retry_after: verifier.inner.config.status_ttl_min,
                },
                error => Rejection::Invalid(error),
            })
    }
}
