//! Our JSON extractor: axum's, with every rejection turned into the contract's error body.

use axum::body::Bytes;
use axum::extract::FromRequest;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Error};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body: `application/json` (or `application/*+json`, else 415), at most
/// [`MAX_BODY_BYTES`] (else 413), and a JSON object read into `T` (else 400).
///
/// Every body the API takes is an object. serde's derived `Deserialize` for a struct would also
/// read an array by position (`["x"]` as `{"name": "x"}`), so a value that is not an object is
/// refused even where `T` took it.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Rejected;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Rejected> {
        if !is_json(request.headers()) {
            return Err(Rejected(Error::UnsupportedMediaType));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(Rejected::from)?;
        parse(&bytes).map(Self)
    }
}

/// `bytes` as `T`, when they hold a JSON object.
///
/// `T` reads the bytes first, so that a body type which says in its own words why a body is not
/// one (`tokens::request`, the policy) still does, and broken JSON is told where it breaks; a
/// value `T` took that is not an object (an array read by position) is then refused.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Rejected> {
    let value = axum::Json::<T>::from_bytes(bytes)
        .map(|axum::Json(value)| value)
        .map_err(Rejected::from)?;
    if !starts_an_object(bytes) {
        return Err(Rejected(Error::bad_request(
            "request body must be a JSON object",
        )));
    }
    Ok(value)
}

/// `bytes` as `T` when they hold a JSON object, for a handler that reads its body itself (a form
/// or JSON): else why not, in serde's words.
pub(super) fn object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if !starts_an_object(bytes) {
        return Err("it is not a JSON object".to_owned());
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Whether `bytes`, whitespace aside, begin a JSON object.
fn starts_an_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Whether the request says its body is JSON: `application/json` or `application/<x>+json`,
/// parameters (`; charset=utf-8`) aside.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
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
        })
}

/// A body the extractor refused, answered as the contract's error.
#[derive(Debug)]
pub struct Rejected(Error);

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        ApiError(self.0).into_response()
    }
}

/// What the parser refused (the content type and the size are checked before it runs).
impl From<JsonRejection> for Rejected {
    fn from(rejection: JsonRejection) -> Self {
        Rejected(match rejection {
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

impl From<BytesRejection> for Rejected {
    fn from(rejection: BytesRejection) -> Self {
        Rejected(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge(MAX_BODY_BYTES)
        } else {
            Error::bad_request(rejection.body_text())
        })
    }
}

/// A JSON body that may be left out: no body at all (or only whitespace) is `None`; a body must be
/// `application/json` (else 415) and parse (else 400, said as [`Json`] says it).
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = Rejected;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Rejected> {
        let json_type = is_json(request.headers());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(Rejected::from)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !json_type {
            return Err(Rejected(Error::UnsupportedMediaType));
        }
        parse(&bytes).map(|v| Self(Some(v)))
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
