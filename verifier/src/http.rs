//! Fetching the issuer's documents: bounded in size and time, redirects only within an origin.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};

/// A response body and its media type (without parameters, lower case).
pub(crate) struct Fetched {
    pub media_type: String,
    pub body: Vec<u8>,
}

/// The client the verifier builds when none is given: a timeout on every request, and redirects
/// followed (at most 5) only within the origin of the first URL, so that a redirect cannot take
/// a fetch of the issuer's documents to another host (draft-ietf-oauth-status-list section 11.4
/// asks clients to follow RFC 9110 section 15.4).
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let previous = attempt.previous();
        if previous.len() > 5 {
            attempt.error("too many redirects")
        } else if previous
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin())
        {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(policy)
        .build()
}

/// GETs `url`, asking for `accept`; anything but a 2xx, or a body over `max_bytes`, is an error.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    accept: &str,
    max_bytes: usize,
) -> Result<Fetched, String> {
    let mut response = client
        .get(url)
        .header(ACCEPT, accept)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(format!("GET {url}: body larger than {max_bytes} bytes"));
    }
    let media_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // Read in chunks and stopped at the limit: a body without Content-Length (chunked) is never
    // held whole before its size is known.
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("GET {url}: body larger than {max_bytes} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { media_type, body })
}
