//! The one error type of the API. Every failure on a request path ends here, and every response it
//! renders is the contract's body `{ "status": <code>, "error": "<message for a person>" }`.
//!
//! Client mistakes say what to fix; internal failures log their cause chain inside the request
//! span and answer a generic 500 that names nothing internal.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or a value is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// No bearer token was sent (RFC 6750 section 3.1: the challenge names no error then).
    #[error("a bearer token is required: send Authorization: Bearer <JWT>")]
    NoBearerToken,
    /// A bearer token was sent and refused. The reason is a short fixed phrase (never the token
    /// or anything read from it) and goes to the client in the body and in
    /// `WWW-Authenticate: Bearer error="invalid_token", error_description="..."`.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// The caller is known but may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state (rotating a revoked token).
    #[error("{0}")]
    Conflict(String),
    /// An introspection client failed HTTP Basic authentication; the message says why in words
    /// that reveal no secret (no credentials, wrong credentials, or no client configured at all).
    #[error("{0}")]
    ClientUnauthorized(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// A rate limit is used up; the client may retry after the given time.
    #[error("{0}")]
    TooManyRequests(&'static str, std::time::Duration),
    /// A dependency (the database) does not answer; the client may retry.
    #[error("service temporarily unavailable")]
    Unavailable,
    /// The replica is stopping: its readiness check says so while it drains.
    #[error("this replica is stopping; the load balancer should send requests to another")]
    Stopping,
    /// The database is away or overloaded (which of its errors mean that, the store decides:
    /// `store::is_unavailable`); the client may retry.
    #[error("the database does not answer")]
    DatabaseUnavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// A failure of the service itself; `context` says which step, `source` why.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NoBearerToken | Error::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::ClientUnauthorized(_) => StatusCode::UNAUTHORIZED,
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

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden(message.into())
    }
}

impl Error {
    /// A failure of the service itself at step `context`, keeping its cause for the log.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context,
            source: source.into(),
        }
    }
}

/// A rule of the domain refused the request: its kinds map to statuses here, and only here.
impl From<crate::tokens::Error> for Error {
    fn from(error: crate::tokens::Error) -> Self {
        match error {
            crate::tokens::Error::Invalid(message) => Error::BadRequest(message),
            crate::tokens::Error::Forbidden(message) => Error::Forbidden(message),
        }
    }
}

/// A database error: unavailable (503, the client may retry) or not (500), as the store decides.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::store::is_unavailable(&e) {
            Error::DatabaseUnavailable(e)
        } else {
            Error::Database(e)
        }
    }
}

/// The error and its causes, outermost first: `a: b: c`.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Error::Stopping = self {
            // Not a failure: the replica logged once that it is stopping.
            let mut response = error_response(status, &self.to_string());
            response.extensions_mut().insert(NotAFailure);
            return response;
        }
        if status.is_server_error() {
            // The cause chain goes to the log, inside the request span; the client sees nothing internal.
            tracing::error!(error = %cause_chain(&self), "request failed");
            let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                "service temporarily unavailable, retry shortly"
            } else {
                "internal server error"
            };
            return error_response(status, message);
        }
        let mut response = error_response(status, &self.to_string());
        match self {
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
        let response = Error::InvalidToken("the token has expired").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"the token has expired\""
        );
        let response = Error::NoBearerToken.into_response();
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
