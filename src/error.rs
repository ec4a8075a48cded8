//! Where the use cases' errors become answers: each kind of `access_tokens_service::Error` maps to
//! its status here, and only here, and every response renders the contract's body
//! `{ "status": <code>, "error": "<message for a person>" }`.
//!
//! Client mistakes say what to fix; internal failures log their cause chain inside the request
//! span and answer a generic 500 that names nothing internal.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use access_tokens_service::error::{Error, cause_chain};

/// What a handler answers: its value, or an error rendered as the contract's body.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An error of the use cases on its way to the client: `?` turns any of them into one.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(error.into())
    }
}

/// The status of each kind of error, in one place.
pub fn status(error: &Error) -> StatusCode {
    match error {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::NoBearerToken | Error::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::ClientUnauthorized(_) | Error::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::TooManyRequests(..) => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable | Error::Stopping | Error::DatabaseUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Error::Database(_) | Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Marks a 5xx answer that is no failure of the service (a stopping replica's readiness), so
/// that the request log writes it at the request's own level instead of `warn`.
#[derive(Debug, Clone, Copy)]
pub struct NotAFailure;

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub status: u16,
    pub error: &'a str,
}

/// Renders the contract's error body for any status; used by the error type and by the layer
/// that turns bodies written by the HTTP stack (timeouts, oversized bodies) into the same shape.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let body = serde_json::to_vec(&ErrorBody {
        status: status.as_u16(),
        error: message,
    })
    .unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// `Bearer error="invalid_token", error_description="<reason>"` (RFC 6750 section 3). The
/// description may hold only visible ASCII other than `"` and `\` (section 3, `error-description`),
/// so anything else in a reason becomes a space.
fn invalid_token_challenge(reason: &str) -> HeaderValue {
    let description: String = reason
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => ' ',
        })
        .collect();
    HeaderValue::from_str(&format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ApiError(error) = self;
        let status = status(&error);
        if let Error::Stopping = error {
            // Not a failure: the replica logged once that it is stopping.
            let mut response = error_response(status, &error.to_string());
            response.extensions_mut().insert(NotAFailure);
            return response;
        }
        if status.is_server_error() {
            // The cause chain goes to the log, inside the request span; the client sees nothing internal.
            tracing::error!(error = %cause_chain(&error), "request failed");
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "service temporarily unavailable, retry shortly"
            } else {
                "internal server error"
            };
            return error_response(status, message);
        }
        let mut response = error_response(status, &error.to_string());
        match error {
            Error::InvalidToken(reason) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, invalid_token_challenge(reason));
            }
            Error::ClientUnauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"access-tokens introspection\""),
                );
            }
            Error::TooManyRequests(_, retry_after) => {
                // Whole seconds, rounded up, so that a client waiting that long finds room.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_says_why_in_the_challenge_and_the_body() {
        let response = ApiError(Error::InvalidToken("the token has expired")).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"the token has expired\""
        );
        let response = ApiError(Error::NoBearerToken).into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn a_description_holds_only_the_characters_rfc_6750_allows() {
        let value = invalid_token_challenge("a \"quoted\" \\ reason\u{e9}\n");
        assert_eq!(
            value,
            "Bearer error=\"invalid_token\", error_description=\"a  quoted    reason  \""
        );
    }
}
