//! Verifies the tokens of an `access-tokens` issuer offline, and their status.
//!
//! A [`Verifier`] is built from an issuer URL: it reads `{issuer}/.well-known/openid-configuration`,
//! then the JWKS its `jwks_uri` names, and parses each key once. [`Verifier::verify`] then checks
//! a token without a call to the issuer, as RFC 8725 asks: the algorithm pinned to RS256 (refused
//! before any key is looked up), the signature, `iss` equal to the issuer byte for byte, and
//! `exp`/`nbf` within a small leeway (a token without `exp` is accepted: the issuer's api tokens
//! may never expire). When the token carries `status.status_list`, its Token Status List
//! (draft-ietf-oauth-status-list) is fetched on first use, verified against the same JWKS and
//! cached for its `ttl` within configured bounds, and the token is accepted only while its entry
//! there is 0 (VALID). One verifier is meant to be shared (it is cheap to clone) by every task of
//! a service: they share its keys and lists, and one fetch per list is in flight at a time.
//!
//! ```no_run
//! # async fn run() -> Result<(), access_tokens_verifier::Error> {
//! use access_tokens_verifier::Verifier;
//! let verifier = Verifier::builder("https://tokens.example.com/v1/access-tokens").build().await?;
//! let claims = verifier.verify("eyJhbGciOiJSUzI1NiIs...").await?;
//! println!("{:?} of organization {:?}", claims.user_id, claims.org_id);
//! # Ok(()) }
//! ```

mod claims;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod http;
mod keys;
mod status;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use access_tokens_jose::jws;
/// The Token Status List codec, the JOSE crate's (shared with the service that writes the lists).
pub use access_tokens_jose::{DecodeError, StatusList};
pub use claims::{Claims, StatusRef};
pub use error::Error;
#[cfg(feature = "axum")]
pub use extract::{Bearer, Rejection};

/// Clock skew allowed on `exp` and `nbf`, of tokens and of status lists: the issuer's clock and
/// the verifier's may differ by this much without a valid token being refused.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// How long after one read of the JWKS for an unknown `kid` another is allowed: a rotated-in key
/// is found at once, but a stream of tokens with made-up `kid`s costs the issuer one request per
/// cooldown at most.
pub const DEFAULT_JWKS_COOLDOWN: Duration = Duration::from_secs(30);
/// The least time a status list is cached, whatever its `ttl` says (and the least time between
/// two failed fetches of one list): bounds the load a verifier puts on the issuer.
pub const DEFAULT_STATUS_TTL_MIN: Duration = Duration::from_secs(5);
/// The longest a status list is cached, whatever its `ttl` says: bounds how late a revocation is
/// seen.
pub const DEFAULT_STATUS_TTL_MAX: Duration = Duration::from_secs(3600);
/// Timeout of each request the verifier makes (with the client it builds itself).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures and builds a [`Verifier`]; from [`Verifier::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Builder {
    issuer: String,
    config: Config,
    http: Option<reqwest::Client>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub leeway: Duration,
    pub jwks_cooldown: Duration,
    pub status_ttl_min: Duration,
    pub status_ttl_max: Duration,
    pub fail_open: bool,
    pub timeout: Duration,
    pub max_document_bytes: usize,
    pub max_status_list_bytes: usize,
    pub require_status: bool,
    pub require_list_exp: bool,
}

impl Builder {
    /// Clock skew allowed on `exp` and `nbf` ([`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.config.leeway = leeway;
        self
    }

    /// Least time between two reads of the JWKS for an unknown `kid`
    /// ([`DEFAULT_JWKS_COOLDOWN`]).
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.jwks_cooldown = cooldown;
        self
    }

    /// The bounds within which a status list's `ttl` is taken ([`DEFAULT_STATUS_TTL_MIN`],
    /// [`DEFAULT_STATUS_TTL_MAX`]; draft-ietf-oauth-status-list section 11.5). `min` is also
    /// the least time between two failed fetches of one list. A `max` below `min` is raised to
    /// it.
    pub fn status_ttl_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.config.status_ttl_min = min;
        self.config.status_ttl_max = max.max(min);
        self
    }

    /// Accept a token whose status list cannot be fetched (no copy within its `exp` held):
    /// `false` by default, so that such a token is refused with [`Error::StatusUnavailable`].
    /// Only fetch failures open; a list that is fetched but invalid, or that says the token is
    /// revoked or suspended, still refuses it.
    pub fn fail_open_when_status_unavailable(mut self, fail_open: bool) -> Self {
        self.config.fail_open = fail_open;
        self
    }

    /// Refuse a token that carries no `status` ([`Error::NoStatus`]): `true` by default, since
    /// every token the issuer stores carries one, so a token without it was not made to be
    /// revocable here. `contact_identification` tokens are never stored (they live 15 minutes at
    /// most) and carry none; they are accepted without it either way. Turn this off only for
    /// tokens minted before the issuer had status lists.
    pub fn require_status(mut self, require: bool) -> Self {
        self.config.require_status = require;
        self
    }

    /// Refuse a status list without `exp` (`true` by default: the issuer's lists always carry
    /// one, so that a copy held past it is never used). Without `exp`, a cached list could
    /// be used for as long as fetching it fails.
    pub fn require_status_list_exp(mut self, require: bool) -> Self {
        self.config.require_list_exp = require;
        self
    }

    /// Timeout of each request, with the client the verifier builds ([`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The largest discovery document, JWKS or Status List Token read (default 4 MiB), and the
    /// largest status list once decompressed (default 16 MiB; a list of 2^20 entries of 8 bits is
    /// 1 MiB).
    pub fn size_limits(mut self, document_bytes: usize, status_list_bytes: usize) -> Self {
        self.config.max_document_bytes = document_bytes;
        self.config.max_status_list_bytes = status_list_bytes;
        self
    }

    /// Use this HTTP client (its timeouts and redirect policy) instead of the one the verifier
    /// builds, which follows redirects only within an origin.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Reads the issuer's discovery document and JWKS.
    ///
    /// # Errors
    /// [`Error::Discovery`] when either cannot be read, or the discovery document's `issuer` is
    /// not this issuer (OpenID Connect Discovery 1.0 section 4.3).
    pub async fn build(self) -> Result<Verifier, Error> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let http = match self.http {
            Some(client) => client,
            None => http::client(self.config.timeout)
                .map_err(|e| Error::Discovery(format!("HTTP client: {e}")))?,
        };
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let fetched = http::get(
            &http,
            &url,
            "application/json",
            self.config.max_document_bytes,
        )
        .await
        .map_err(Error::Discovery)?;
        let discovery: Discovery = serde_json::from_slice(&fetched.body)
            .map_err(|e| Error::Discovery(format!("{url}: {e}")))?;
        if discovery.issuer != self.issuer {
            return Err(Error::Discovery(format!(
                "{url} names issuer {:?}",
                discovery.issuer
            )));
        }
        let keys = keys::Keys::fetch(
            &http,
            discovery.jwks_uri,
            self.config.jwks_cooldown,
            self.config.max_document_bytes,
        )
        .await
        .map_err(Error::Discovery)?;
        Ok(Verifier {
            inner: Arc::new(Inner {
                list_prefix: format!("{}/", self.issuer),
                issuer: self.issuer,
                http,
                keys,
                lists: status::Lists::default(),
                config: self.config,
            }),
        })
    }
}

/// Verifies the tokens of one issuer; clones share keys and cached status lists.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub issuer: String,
    /// Status lists are fetched only from URIs that start with this (the issuer and a `/`).
    pub list_prefix: String,
    pub http: reqwest::Client,
    pub keys: keys::Keys,
    pub lists: status::Lists,
    pub config: Config,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A builder for a verifier of the tokens whose `iss` is `issuer` (exactly, e.g.
    /// `https://tokens.example.com/v1/access-tokens`, with no trailing `/`).
    pub fn builder(issuer: impl Into<String>) -> Builder {
        Builder {
            issuer: issuer.into(),
            config: Config {
                leeway: DEFAULT_LEEWAY,
                jwks_cooldown: DEFAULT_JWKS_COOLDOWN,
                status_ttl_min: DEFAULT_STATUS_TTL_MIN,
                status_ttl_max: DEFAULT_STATUS_TTL_MAX,
                fail_open: false,
                timeout: DEFAULT_TIMEOUT,
                max_document_bytes: 4 << 20,
                max_status_list_bytes: 16 << 20,
                require_status: true,
                require_list_exp: true,
            },
            http: None,
        }
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Verifies `token` (a compact JWS, without `Bearer `) and, when it has one, its status
    /// (draft-ietf-oauth-status-list section 8.3), and returns its claims.
    ///
    /// # Errors
    /// The first rule the token breaks, in this order: [`Error::Malformed`],
    /// [`Error::Algorithm`], [`Error::NotAnAccessToken`] (its header's `typ`),
    /// [`Error::UnknownKey`], [`Error::Signature`], [`Error::Issuer`], [`Error::Expired`] /
    /// [`Error::NotYetValid`], [`Error::NotAnAccessToken`] (its claims), [`Error::NoStatus`],
    /// then for its status [`Error::StatusUri`],
    /// [`Error::StatusUnavailable`], [`Error::StatusListInvalid`], [`Error::StatusIndex`],
    /// [`Error::Revoked`], [`Error::Suspended`], [`Error::InvalidStatus`].
    pub async fn verify(&self, token: &str) -> Result<Claims, Error> {
        let inner = &*self.inner;
        let jws = jws::parse(token)?;
        // RFC 8725 section 3.11: the issuer signs its status lists with the same keys and `iss`
        // as its tokens, and they are public; only its access tokens' `typ` passes here.
        if !jws.header.typ_is(jws::TYP_JWT) {
            return Err(Error::NotAnAccessToken("its typ is not JWT"));
        }
        let kid = jws.kid()?;
        let key = inner
            .keys
            .get(&inner.http, kid, inner.config.max_document_bytes)
            .await
            .ok_or_else(|| Error::UnknownKey(kid.to_owned()))?;
        let raw = jws.verify(&key)?;
        if raw.get("iss").and_then(Value::as_str) != Some(&inner.issuer) {
            return Err(Error::Issuer);
        }
        let (exp, iat) = jws::check_times(&raw, jws::now(), inner.config.leeway.as_secs())?;
        // Every token of the issuer names its type and id; nothing else it signs does.
        let token_type = raw
            .get("token_type")
            .and_then(Value::as_str)
            .ok_or(Error::NotAnAccessToken("it has no token_type claim"))?;
        if !raw.get("token_id").is_some_and(Value::is_string) {
            return Err(Error::NotAnAccessToken("it has no token_id claim"));
        }
        // Section 8.3: the status is looked at only once the token itself is valid.
        let status = status_ref(&raw)?;
        if status.is_none() && inner.config.require_status && token_type != UNSTORED_TYPE {
            return Err(Error::NoStatus);
        }
        if let Some(status) = &status {
            self.check_status(status).await?;
        }
        Ok(Claims::new(raw, exp, iat, status))
    }

    async fn check_status(&self, status: &StatusRef) -> Result<(), Error> {
        let inner = &*self.inner;
        // The URI comes from a token signed by the issuer; still, only the issuer's own URLs
        // are fetched, so that no token makes the verifier call another host.
        if !status.uri.starts_with(&inner.list_prefix) {
            return Err(Error::StatusUri(status.uri.clone()));
        }
        let cached = match status::list(inner, &status.uri).await {
            Ok(cached) => cached,
            Err(status::ListError::Unavailable(_)) if inner.config.fail_open => return Ok(()),
            Err(status::ListError::Unavailable(why)) => return Err(Error::StatusUnavailable(why)),
            Err(status::ListError::Invalid(why)) => return Err(Error::StatusListInvalid(why)),
        };
        match cached.list.get(status.idx) {
            None => Err(Error::StatusIndex {
                idx: status.idx,
                len: cached.list.len(),
            }),
            Some(0) => Ok(()),
            Some(1) => Err(Error::Revoked),
            Some(2) => Err(Error::Suspended),
            Some(other) => Err(Error::InvalidStatus(other)),
        }
    }
}

/// The one token type the issuer never stores, and so never gives a status.
const UNSTORED_TYPE: &str = "contact_identification";

/// `status.status_list` of a token (section 6.2): `None` when the token has no `status`, or one
/// without `status_list` (another status mechanism, which this crate does not know).
fn status_ref(claims: &Map<String, Value>) -> Result<Option<StatusRef>, Error> {
    let status = match claims.get("status") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(status)) => status,
        Some(_) => return Err(Error::Malformed("status is not an object")),
    };
    let Some(list) = status.get("status_list") else {
        return Ok(None);
    };
    let list = list
        .as_object()
        .ok_or(Error::Malformed("status.status_list is not an object"))?;
    let idx = list
        .get("idx")
        .and_then(Value::as_u64)
        .ok_or(Error::Malformed(
            "status.status_list.idx is not a non-negative integer",
        ))?;
    let uri = list
        .get("uri")
        .and_then(Value::as_str)
        .ok_or(Error::Malformed("status.status_list.uri is not a string"))?;
    Ok(Some(StatusRef {
        idx,
        uri: uri.to_owned(),
    }))
}
