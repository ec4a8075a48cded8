//! Our JSON extractor: axum's, with every rejection turned into the contract's error body.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;

use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, Error};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(Rejected))]
pub struct Json<T>(pub T);

/// A body the extractor refused, answered as the contract's error.
#[derive(Debug)]
pub struct Rejected(Error);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        ApiError(self.0).into_response()
    }
}

impl From<JsonRejection> for Rejected {
    fn from(rejection: JsonRejection) -> Self {
        Rejected(match rejection {
            JsonRejection::MissingJsonContentType(_) => Error::UnsupportedMediaType,
            JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge(MAX_BODY_BYTES)
            }
            // The body types speak the contract's words (`tokens::request`); only the parser's
            // position is cut, as it names a place in the bytes rather than a field.
            JsonRejection::JsonDataError(e) => Error::BadRequest(without_position(
                &std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string()),
            )),
            // Where the JSON breaks, so that a hand-written body can be fixed: serde_json's
            // message ends with its line and column.
            JsonRejection::JsonSyntaxError(e) => {
                Error::BadRequest(std::error::Error::source(&e).map_or_else(
                    || "request body is not valid JSON".to_owned(),
                    |s| format!("request body is not valid JSON: {s}"),
                ))
            }
            other => Error::bad_request(other.body_text()),
        })
    }
}

/// A JSON body that may be left out: no body at all (or only whitespace) is `None`; a body must be
/// `application/json` (else 415) and parse (else 400, said as [`Json`] says it).
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Rejected;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Rejected> {
        let json_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|r| {
                Rejected(if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge(MAX_BODY_BYTES)
                } else {
                    Error::bad_request(r.body_text())
                })
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json_type {
            return Err(Rejected(Error::UnsupportedMediaType));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| {
                Rejected(Error::BadRequest(match e.classify() {
                    serde_json::error::Category::Data => without_position(&e.to_string()),
                    _ => format!("request body is not valid JSON: {e}"),
                }))
            })
    }
}

/// `message` without serde_json's ` at line L column C` suffix.
fn without_position(message: &str) -> String {
    if let Some((text, position)) = message.rsplit_once(" at line ")
        && let Some((line, column)) = position.split_once(" column ")
        && !line.is_empty()
        && !column.is_empty()
        && line
            .bytes()
            .chain(column.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return text.to_owned();
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::without_position;

    #[test]
    fn the_parsers_position_is_cut_and_nothing_else() {
        assert_eq!(
            without_position("name must be a string at line 1 column 12"),
            "name must be a string"
        );
        assert_eq!(
            without_position("a field at line one"),
            "a field at line one"
        );
    }
}
