//! Trusted issuers (`TRUSTED_ISSUERS`, `TRUSTED_ISSUERS_FILE`): their public keys, found through
//! OpenID Connect Discovery and cached in memory, and how their tokens become callers
//! ([`Mapping`]).
//!
//! An issuer's keys are read from the `jwks_uri` of its discovery document
//! (`{issuer}/.well-known/openid-configuration`, the issuer without its trailing slash, OpenID
//! Connect Discovery 1.0 section 4), whose `issuer` must equal the configured one byte for byte;
//! an issuer without a discovery document (a 404) is read at `{issuer}/.well-known/jwks.json`, as
//! Cognito publishes it. Discovery runs when the keys are first needed, never at start-up, and
//! again after a failed fetch of the keys.
//!
//! Keys are cached for a time-to-live taken from the JWKS response's `Cache-Control: max-age`,
//! bounded by [`KeysPolicy`], and fetched again once it has passed; a successful fetch replaces the
//! whole set, so a key the issuer no longer publishes stops verifying. The refetch on expiry runs in
//! the background: the request that finds the keys stale is answered with them (a key removed by the
//! issuer is trusted at most one fetch longer than the TTL), and no request ever waits on an issuer
//! whose keys are cached. When refetches fail, the cached keys stay usable for a bounded grace after
//! their TTL and are then dropped, so an issuer's blip does not lock its users out, and a long
//! outage does not keep old keys trusted forever.
//!
//! A token naming a `kid` that is not cached makes the request fetch at once, at most once per
//! `REFETCH_COOLDOWN` per issuer, so a flood of tokens with random kids cannot hammer the issuer.
//! Only one fetch per issuer runs at a time. A discovery document or JWKS body is read in chunks
//! and abandoned as soon as it passes `MAX_JWKS_BYTES`, whatever its `Content-Length` says or does
//! not say.

pub mod mapping;

pub use mapping::{IssuerSpec, Mapping, Organization, RolesFormat, TOKEN_USES};

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::keys::VerifyingKey;
use crate::metrics::IssuerFetches;
use crate::tokens::KeySetName;
use reqwest::header::{CACHE_CONTROL, HeaderMap};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The shortest time between two fetches of one issuer's JWKS.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(5);
/// A fetch that takes longer fails; requests waiting on it answer 401 instead of queueing.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A JWKS larger than this is not a JWKS (Cognito's holds two keys, about 1 KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Keys are kept this long when the JWKS response names no `max-age`.
pub const DEFAULT_KEYS_TTL: Duration = Duration::from_secs(10 * 60);
/// A shorter `max-age` is raised to this: refetching more often buys little and costs the issuer.
pub const MIN_KEYS_TTL: Duration = Duration::from_secs(30);
/// A longer `max-age` is cut to this: a key the issuer removed is trusted at most this long.
pub const MAX_KEYS_TTL: Duration = Duration::from_secs(60 * 60);
/// How long cached keys stay usable past their TTL while refetches fail. Cognito's ID and access
/// tokens live an hour by default, so an hour keeps every token issued before an outage working;
/// later, the keys are dropped and the issuer's callers get 401 until a fetch succeeds.
pub const KEYS_GRACE: Duration = Duration::from_secs(60 * 60);

/// How long fetched keys are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysPolicy {
    /// The TTL when the response has no `Cache-Control: max-age`.
    pub default_ttl: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// How long past their TTL the keys stay usable while refetches fail.
    pub grace: Duration,
}

impl Default for KeysPolicy {
    fn default() -> Self {
        Self {
            default_ttl: DEFAULT_KEYS_TTL,
            min_ttl: MIN_KEYS_TTL,
            max_ttl: MAX_KEYS_TTL,
            grace: KEYS_GRACE,
        }
    }
}

impl KeysPolicy {
    /// The TTL of keys fetched with `max_age` (`None`: the response named none), within the bounds.
    pub fn ttl(&self, max_age: Option<Duration>) -> Duration {
        // max then min rather than `clamp`, which panics on bounds given the wrong way round.
        max_age
            .unwrap_or(self.default_ttl)
            .max(self.min_ttl)
            .min(self.max_ttl)
    }
}

/// The settings of `TRUSTED_ISSUERS` entries (Cognito-shaped issuers), and how long any trusted
/// issuer's keys are cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Cognito app client ids whose tokens may call: the `aud` of an ID token, the `client_id` of
    /// an access token (as aws-jwt-verify matches them). Empty: any client of the issuer.
    pub audiences: Vec<String>,
    /// The accepted `token_use` values, `id` and/or `access`. A token without `token_use` is
    /// refused: without it neither the kind of token nor the claim naming its client is known.
    pub token_uses: Vec<String>,
    pub keys: KeysPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            audiences: Vec::new(),
            token_uses: TOKEN_USES.map(str::to_owned).to_vec(),
            keys: KeysPolicy::default(),
        }
    }
}

/// A trusted issuer that is one of this service's own: refused at start-up.
#[derive(Debug, thiserror::Error)]
#[error(
    "TRUSTED_ISSUERS lists {issuer}, the issuer of this service's own {set} key set: {why}; remove it from TRUSTED_ISSUERS"
)]
pub struct OwnIssuer {
    pub issuer: String,
    pub set: KeySetName,
    why: &'static str,
}

/// Refuses trusted issuers equal to an issuer of this service's own key sets under `public_url`.
/// Listed, the tokens of the public, portal-preview or contact-identification set (handed to end
/// customers and browsers) would be accepted as callers of the management API; the api set's
/// tokens are trusted already, and only while unrevoked.
pub fn refuse_own_issuers(trusted: &[String], public_url: &str) -> Result<(), OwnIssuer> {
    for set in KeySetName::ALL {
        let own = set.issuer(public_url);
        // Scheme and host are case-insensitive; refusing a case variant of a path costs nothing.
        // A trailing slash makes another `iss`, but the same place to fetch keys from.
        if let Some(issuer) = trusted
            .iter()
            .find(|t| t.trim_end_matches('/').eq_ignore_ascii_case(&own))
        {
            let why = match set {
                KeySetName::Api => {
                    "its api, app and assume tokens are trusted already without being listed, and only while unrevoked"
                }
                _ => {
                    "its tokens are given to end customers and browsers and must never call the management API"
                }
            };
            return Err(OwnIssuer {
                issuer: issuer.clone(),
                set,
                why,
            });
        }
    }
    Ok(())
}

pub struct TrustedIssuers {
    http: reqwest::Client,
    keys: KeysPolicy,
    /// Whether a discovery document may name a plain-http `jwks_uri` off loopback
    /// (`ALLOW_INSECURE_ISSUERS`).
    allow_insecure: bool,
    issuers: HashMap<String, Arc<Issuer>>,
}

struct Issuer {
    name: String,
    mapping: Mapping,
    /// Where its keys are, once discovered; `None` until then and after a failed fetch, when the
    /// next fetch discovers it again.
    jwks_url: RwLock<Option<Arc<str>>>,
    cached: RwLock<Arc<Cached>>,
    /// When the last fetch started; held while fetching so that fetches do not pile up.
    last_fetch: Arc<Mutex<Option<Instant>>>,
    fetches: IssuerFetches,
}

/// The keys of one fetch and how long they may be used.
struct Cached {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// Refetch (in the background) from this instant on.
    fresh_until: Instant,
    /// Not used from this instant on: `fresh_until` plus the grace.
    usable_until: Instant,
}

impl Cached {
    fn key(&self, kid: &str, now: Instant) -> Option<Arc<VerifyingKey>> {
        if now >= self.usable_until {
            return None;
        }
        self.keys.get(kid).cloned()
    }
}

/// What one fetch of a JWKS yields.
struct Fetched {
    keys: HashMap<String, Arc<VerifyingKey>>,
    max_age: Option<Duration>,
}

impl TrustedIssuers {
    pub fn new(issuers: &[IssuerSpec], keys: KeysPolicy, allow_insecure: bool) -> Self {
        Self::counted(issuers, keys, allow_insecure, |_| IssuerFetches::default())
    }

    /// As `new`, with each issuer's fetches counted in the handles `fetches` gives for it.
    pub fn counted(
        issuers: &[IssuerSpec],
        keys: KeysPolicy,
        allow_insecure: bool,
        fetches: impl Fn(&str) -> IssuerFetches,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client for issuer keys builds");
        let now = Instant::now();
        let issuers = issuers
            .iter()
            .map(|spec| {
                let issuer = Issuer {
                    name: spec.url.clone(),
                    mapping: spec.mapping.clone(),
                    jwks_url: RwLock::new(None),
                    cached: RwLock::new(Arc::new(Cached {
                        keys: HashMap::new(),
                        fresh_until: now,
                        usable_until: now,
                    })),
                    last_fetch: Arc::new(Mutex::new(None)),
                    fetches: fetches(&spec.url),
                };
                (spec.url.clone(), Arc::new(issuer))
            })
            .collect();
        Self {
            http,
            keys,
            allow_insecure,
            issuers,
        }
    }

    pub fn is_trusted(&self, iss: &str) -> bool {
        self.issuers.contains_key(iss)
    }

    /// How the tokens of `iss` become callers; `None` when it is not trusted.
    pub fn mapping(&self, iss: &str) -> Option<&Mapping> {
        self.issuers.get(iss).map(|issuer| &issuer.mapping)
    }

    /// The key of `iss` named `kid`. Cached keys past their TTL are returned and refreshed in the
    /// background; a kid not cached (or keys past their grace) makes this fetch the issuer's JWKS
    /// now, unless the cooldown has not passed. `None` when the issuer is not trusted or has no
    /// such key.
    pub async fn key(&self, iss: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        let issuer = self.issuers.get(iss)?;
        let cached = issuer.snapshot();
        let now = Instant::now();
        if let Some(key) = cached.key(kid, now) {
            if now >= cached.fresh_until {
                self.refresh_in_background(issuer);
            }
            return Some(key);
        }
        let mut last_fetch = issuer.last_fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(key) = issuer.snapshot().key(kid, Instant::now()) {
            return Some(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < REFETCH_COOLDOWN) {
            return None;
        }
        self.fetcher().refetch(issuer, &mut last_fetch).await;
        issuer.snapshot().key(kid, Instant::now())
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher {
            http: self.http.clone(),
            keys: self.keys,
            allow_insecure: self.allow_insecure,
        }
    }

    /// Starts a refetch unless one is running or the cooldown has not passed.
    fn refresh_in_background(&self, issuer: &Arc<Issuer>) {
        let Ok(mut last_fetch) = issuer.last_fetch.clone().try_lock_owned() else {
            return;
        };
        if last_fetch.is_some_and(|at| at.elapsed() < REFETCH_COOLDOWN) {
            return;
        }
        let (fetcher, issuer) = (self.fetcher(), issuer.clone());
        tokio::spawn(async move { fetcher.refetch(&issuer, &mut last_fetch).await });
    }
}

impl Issuer {
    fn snapshot(&self) -> Arc<Cached> {
        match self.cached.read() {
            Ok(cached) => cached.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn jwks_url(&self) -> Option<Arc<str>> {
        match self.jwks_url.read() {
            Ok(url) => url.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_jwks_url(&self, url: Option<Arc<str>>) {
        match self.jwks_url.write() {
            Ok(mut slot) => *slot = url,
            Err(poisoned) => *poisoned.into_inner() = url,
        }
    }
}

/// What a fetch of an issuer's keys needs.
struct Fetcher {
    http: reqwest::Client,
    keys: KeysPolicy,
    allow_insecure: bool,
}

impl Fetcher {
    /// Fetches the issuer's JWKS (discovering where it is first, when not known) and, when that
    /// works, replaces its cached keys (dropping those it no longer publishes). When it fails, the
    /// cached keys stay as they are, usable until their grace ends, and the next fetch discovers
    /// the JWKS again. `last_fetch` is the issuer's lock, held by the caller.
    async fn refetch(&self, issuer: &Issuer, last_fetch: &mut Option<Instant>) {
        let started = Instant::now();
        *last_fetch = Some(started);
        match self.fetch_keys(issuer).await {
            Ok(fetched) => {
                issuer.fetches.ok.inc();
                let ttl = self.keys.ttl(fetched.max_age);
                tracing::info!(
                    issuer = issuer.name,
                    keys = fetched.keys.len(),
                    ttl_seconds = ttl.as_secs(),
                    "fetched trusted issuer keys"
                );
                let fresh_until = later(started, ttl);
                let cached = Arc::new(Cached {
                    keys: fetched.keys,
                    fresh_until,
                    usable_until: later(fresh_until, self.keys.grace),
                });
                match issuer.cached.write() {
                    Ok(mut slot) => *slot = cached,
                    Err(poisoned) => *poisoned.into_inner() = cached,
                }
            }
            Err(error) => {
                issuer.fetches.failed.inc();
                issuer.set_jwks_url(None);
                let cached = issuer.snapshot();
                let usable_for = cached
                    .usable_until
                    .saturating_duration_since(Instant::now());
                tracing::warn!(
                    issuer = issuer.name,
                    %error,
                    cached_keys = cached.keys.len(),
                    usable_for_seconds = usable_for.as_secs(),
                    "could not fetch trusted issuer keys; the cached ones stay usable until their grace ends"
                );
            }
        }
    }

    async fn fetch_keys(&self, issuer: &Issuer) -> Result<Fetched, String> {
        let known = issuer.jwks_url();
        let url = match known {
            Some(url) => url,
            None => {
                let url: Arc<str> = self.discover(&issuer.name).await?.into();
                issuer.set_jwks_url(Some(url.clone()));
                url
            }
        };
        let (body, max_age) = get_bounded(&self.http, &url).await?;
        // RS256 and ES256 keys: each verifies only tokens whose header names its algorithm, and
        // callers pin RS256, so an ES256 key serves the workloads' exchange only.
        let keys = access_tokens_jose::jwk::signing_keys(&body).map_err(|e| e.to_string())?;
        Ok(Fetched {
            keys: keys
                .into_iter()
                .map(|(kid, key)| (kid, Arc::new(key)))
                .collect(),
            max_age,
        })
    }

    /// Where `issuer` publishes its keys: its discovery document's `jwks_uri`, or
    /// `{issuer}/.well-known/jwks.json` when it has no discovery document (a 404).
    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let base = issuer.trim_end_matches('/');
        let url = format!("{base}/.well-known/openid-configuration");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(format!("{base}/.well-known/jwks.json"));
        }
        let (body, _) = read_bounded(&url, response).await?;
        let document: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} is not a JSON object: {e}"))?;
        match document.get("issuer") {
            Some(Value::String(named)) if named == issuer => {}
            named => {
                return Err(format!(
                    "{url} names the issuer {}, not {issuer}: the issuer's tokens carry another iss; configure the issuer exactly as its discovery document names it",
                    named.map_or("(none)".to_owned(), Value::to_string)
                ));
            }
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{url} has no jwks_uri"))?;
        let parsed = url::Url::parse(jwks_uri)
            .map_err(|_| format!("{url} names a jwks_uri that is not a URL"))?;
        let secure = parsed.scheme() == "https"
            || (parsed.scheme() == "http"
                && (self.allow_insecure || crate::config::is_loopback(&parsed)));
        if !secure {
            return Err(format!(
                "{url} names a jwks_uri that is not https ({jwks_uri}): its keys could be replaced in transit"
            ));
        }
        Ok(jwks_uri.to_owned())
    }
}

/// `at + after`, or `at` itself when that is beyond what an `Instant` holds (an expiry, so the
/// shorter time is the safe one).
fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after).unwrap_or(at)
}

/// The body of a successful GET of `url` (at most `MAX_JWKS_BYTES`) and its `max-age`.
async fn get_bounded(
    http: &reqwest::Client,
    url: &str,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    read_bounded(url, response).await
}

async fn read_bounded(
    url: &str,
    mut response: reqwest::Response,
) -> Result<(Vec<u8>, Option<Duration>), String> {
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let too_large = || format!("{url} is larger than {MAX_JWKS_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
    {
        return Err(too_large());
    }
    let max_age = max_age(response.headers());
    // Read chunk by chunk and stop at the cap: a chunked (or lying) body is never held beyond it.
    // Dropping the response mid-body closes the connection.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, max_age))
}

/// The `max-age` of `Cache-Control`, zero for `no-cache` and `no-store` (the TTL's lower bound then
/// applies), `None` when the response names neither.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-cache")
                || directive.eq_ignore_ascii_case("no-store")
            {
                return Some(Duration::ZERO);
            }
            if let Some((name, seconds)) = directive.split_once('=')
                && name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(seconds) = seconds.trim().trim_matches('"').parse::<u64>()
            {
                found = Some(Duration::from_secs(seconds));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    #[test]
    fn the_ttl_is_max_age_within_the_bounds() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for v in values {
                map.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["public, max-age=300"])), secs(300));
        assert_eq!(max_age(&headers(&["Max-Age = \"120\""])), secs(120));
        assert_eq!(max_age(&headers(&["public", "max-age=60"])), secs(60));
        assert_eq!(max_age(&headers(&["max-age=-5"])), None);
        assert_eq!(max_age(&headers(&["max-age=60, no-cache"])), secs(0));
        assert_eq!(max_age(&headers(&["no-store"])), secs(0));

        let policy = KeysPolicy::default();
        assert_eq!(policy.ttl(None), DEFAULT_KEYS_TTL);
        assert_eq!(policy.ttl(secs(300)), Duration::from_secs(300));
        assert_eq!(policy.ttl(secs(0)), MIN_KEYS_TTL);
        assert_eq!(policy.ttl(secs(86_400 * 365)), MAX_KEYS_TTL);
        let upside_down = KeysPolicy {
            min_ttl: MAX_KEYS_TTL,
            max_ttl: MIN_KEYS_TTL,
            ..policy
        };
        assert_eq!(upside_down.ttl(None), MIN_KEYS_TTL, "no panic");
    }

    #[tokio::test]
    async fn a_stale_key_is_returned_at_once_and_refreshed_in_the_background() {
        use futures_util::FutureExt;
        // An issuer that accepts connections and never answers: a refetch hangs until its timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, mut connections) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = tx.send(stream);
            }
        });
        let spec = IssuerSpec {
            url: url.clone(),
            mapping: Mapping::cognito(vec![], vec![], "assignments".into()),
        };
        let issuers = TrustedIssuers::new(&[spec], KeysPolicy::default(), false);
        let own = crate::keys::Keys::generate("https://tokens.example.com").unwrap();
        let set = own.set(KeySetName::Api);
        let kid = set.signing.kid().to_owned();
        let key = set.verifying_key(&kid).unwrap().clone();
        let now = Instant::now();
        *issuers.issuers[&url].cached.write().unwrap() = Arc::new(Cached {
            keys: HashMap::from([(kid.clone(), Arc::new(key))]),
            fresh_until: now,
            usable_until: now + Duration::from_secs(3600),
        });

        // Answered on the first poll: the request does not wait for the issuer.
        let found = issuers.key(&url, &kid).now_or_never();
        assert!(
            matches!(found, Some(Some(_))),
            "a stale key is served at once"
        );
        // Meanwhile the refetch has started (a generous bound, not a measure of speed).
        let held = tokio::time::timeout(Duration::from_secs(30), connections.recv()).await;
        assert!(
            matches!(held, Ok(Some(_))),
            "a refetch of stale keys starts"
        );
        let again = issuers.key(&url, &kid).now_or_never();
        assert!(
            matches!(again, Some(Some(_))),
            "served while the refetch hangs"
        );
    }

    #[test]
    fn own_issuers_are_refused() {
        let url = "https://tokens.example.com";
        assert!(refuse_own_issuers(&["https://cognito.example/pool".into()], url).is_ok());
        for set in KeySetName::ALL {
            let e = refuse_own_issuers(&["https://a.example".into(), set.issuer(url)], url)
                .unwrap_err();
            assert_eq!(e.set, set);
            assert!(e.to_string().starts_with("TRUSTED_ISSUERS"), "{e}");
        }
        let shouted = "HTTPS://TOKENS.EXAMPLE.COM/v1/access-tokens/contact-identification";
        assert!(refuse_own_issuers(&[shouted.into()], url).is_err());
    }
}
