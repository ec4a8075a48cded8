//! Why a rule of the domain refused something: a kind and a message for a person, nothing about
//! HTTP. The server maps each kind to its status in one place (`access_tokens::error`).

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value is malformed or out of range; the message names the field and the rule.
    #[error("{0}")]
    Invalid(String),
    /// The caller is known but may not do this (a role it does not hold, an organization it
    /// cannot act for).
    #[error("{0}")]
    Forbidden(String),
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden(message.into())
    }
}
