//! The one error type of the use cases: what went wrong, as a kind, never as a status code. The
//! binary's HTTP layer maps each kind to its status and renders the contract's body
//! `{ "status": <code>, "error": "<message for a person>" }` in one place.
//!
//! Client mistakes say what to fix; internal failures keep their cause chain for the log.

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
    /// A signed request (a secret scanning alert) whose signature does not hold; the reason is a
    /// fixed phrase.
    #[error("{0}")]
    InvalidSignature(&'static str),
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
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden(message.into())
    }

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

/// A rule of the domain refused the request: its kinds become this crate's kinds here, and only
/// here.
impl From<crate::tokens::Error> for Error {
    fn from(error: crate::tokens::Error) -> Self {
        match error {
            crate::tokens::Error::Invalid(message) => Error::BadRequest(message),
            crate::tokens::Error::Forbidden(message) => Error::Forbidden(message),
        }
    }
}

/// A database error: unavailable (the client may retry) or not, as the store decides.
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
