//! GitHub's secret scanning partner program: GitHub finds a token of this service pushed to a
//! public repository (or a gist, an issue, a package) and posts an alert, signed with ECDSA P-256
//! over the raw body. The alert is verified against GitHub's published keys, each token of this
//! service in it is revoked (`details.reason: "leaked"`, with where it was found), and the answer
//! labels each token `true_positive` (it was valid until this alert) or `false_positive`.
//!
//! GitHub's keys (`SECRET_SCANNING_GITHUB_KEYS_URL`) are read when first needed and kept; an alert
//! naming a key not among them fetches them again (GitHub rotated its keys), at most once a
//! minute, so a flood of forged key ids costs GitHub's API one request a minute and this service
//! nothing more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// GitHub's keys are fetched again on an unknown key id at most this often.
const REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The keys document is refused beyond this size.
const MAX_KEYS_BYTES: usize = 64 * 1024;
/// Tokens one alert may hold.
pub const MAX_ALERT_TOKENS: usize = 1000;

/// One match of an alert.
#[derive(Debug, Deserialize)]
pub struct Match {
    pub token: String,
    #[serde(rename = "type")]
    pub token_type: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// What the answer says of one match.
#[derive(Debug, Serialize)]
pub struct Label {
    /// SHA-256 of the token, in hex.
    pub token_hash: String,
    pub token_type: String,
    /// `true_positive` (a token of this service, valid until this alert) or `false_positive`.
    pub label: &'static str,
}

#[derive(Deserialize)]
struct KeysDocument {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

/// GitHub's public keys, by identifier (SubjectPublicKeyInfo DER).
pub struct GithubKeys {
    url: String,
    http: reqwest::Client,
    state: Mutex<KeysState>,
    /// One fetch at a time.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct KeysState {
    keys: HashMap<String, Vec<u8>>,
    /// Whether the keys were ever fetched (the first time is when first needed).
    fetched: bool,
    /// When an unknown key id last made them fetched again.
    refetched_at: Option<Instant>,
}

/// Why an alert is refused: 401 (its signature) or 400 (its form).
#[derive(Debug)]
pub enum Refused {
    Signature(&'static str),
    Format(String),
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Signature(why) => Error::InvalidSignature(why),
            Refused::Format(why) => Error::BadRequest(why),
        }
    }
}

impl GithubKeys {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("access-tokens/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url,
            http,
            state: Mutex::new(KeysState::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, id: &str) -> (Option<Vec<u8>>, bool) {
        let state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        let may_fetch = !state.fetched
            || state
                .refetched_at
                .is_none_or(|at| at.elapsed() >= REFETCH_COOLDOWN);
        (state.keys.get(id).cloned(), may_fetch)
    }

    /// The key `id` names: from the cache, else fetched (at most once a minute).
    async fn key(&self, id: &str) -> Option<Vec<u8>> {
        if let (Some(key), _) = self.cached(id) {
            return Some(key);
        }
        let _one = self.fetching.lock().await;
        let (key, may_fetch) = self.cached(id);
        if key.is_some() || !may_fetch {
            return key;
        }
        let fetched = self.fetch().await;
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.fetched {
            state.refetched_at = Some(Instant::now());
        }
        state.fetched = true;
        match fetched {
            Ok(keys) => state.keys = keys,
            Err(error) => {
                tracing::warn!(%error, url = %self.url, "could not fetch GitHub's secret scanning keys")
            }
        }
        state.keys.get(id).cloned()
    }

    async fn fetch(&self) -> std::result::Result<HashMap<String, Vec<u8>>, String> {
        let mut response = self
            .http
            .get(&self.url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_KEYS_BYTES {
                return Err(format!("larger than {MAX_KEYS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let document: KeysDocument = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(document
            .public_keys
            .into_iter()
            .filter_map(|k| pem_der(&k.key).map(|der| (k.key_identifier, der)))
            .collect())
    }

    /// The matches of an alert whose signature, by the key `key_id` names, holds over `body`.
    pub async fn verify(
        &self,
        key_id: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> std::result::Result<Vec<Match>, Refused> {
        let key_id =
            key_id
                .filter(|k| !k.is_empty() && k.len() <= 256)
                .ok_or(Refused::Signature(
                    "Github-Public-Key-Identifier is missing",
                ))?;
        let signature = signature
            .filter(|s| !s.is_empty())
            .and_then(|s| STANDARD.decode(s.trim()).ok())
            .ok_or(Refused::Signature(
                "Github-Public-Key-Signature is missing or not base64",
            ))?;
        let key = self.key(key_id).await.ok_or(Refused::Signature(
            "the key identifier is not one of GitHub's keys",
        ))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key)
            .verify(body, &signature)
            .map_err(|_| Refused::Signature("the signature does not verify"))?;
        let matches: Vec<Match> = serde_json::from_slice(body).map_err(|e| {
            Refused::Format(format!(
                "the alert must be [{{\"token\", \"type\", \"url\", \"source\"}}, ...]: {e}"
            ))
        })?;
        if matches.len() > MAX_ALERT_TOKENS {
            return Err(Refused::Format(format!(
                "at most {MAX_ALERT_TOKENS} tokens per alert"
            )));
        }
        Ok(matches)
    }
}

/// The DER inside a PEM block (`-----BEGIN PUBLIC KEY-----` ...).
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    STANDARD.decode(body).ok()
}

/// SHA-256 of `token` in lower-case hex.
pub fn token_hash(token: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
