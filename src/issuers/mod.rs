//! Trusted issuers (`TRUSTED_ISSUERS`): their public keys, fetched from
//! `{issuer}/.well-known/jwks.json` as Cognito publishes them, cached in memory, and fetched again
//! when a token names an unknown `kid`, at most once per `REFETCH_COOLDOWN` per issuer, so a flood
//! of tokens with random kids cannot hammer the issuer. Only one fetch per issuer runs at a time.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::keys::jws::VerifyingKey;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The shortest time between two fetches of one issuer's JWKS.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(5);
/// A fetch that takes longer fails; requests waiting on it answer 401 instead of queueing.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// A JWKS larger than this is not a JWKS.
const MAX_JWKS_BYTES: usize = 256 * 1024;

pub struct TrustedIssuers {
    http: reqwest::Client,
    issuers: HashMap<String, Issuer>,
}

struct Issuer {
    jwks_url: String,
    keys: RwLock<Arc<HashMap<String, Arc<VerifyingKey>>>>,
    /// When the last fetch started; held while fetching so that fetches do not pile up.
    last_fetch: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct JwksDoc {
    keys: Vec<serde_json::Value>,
}

impl TrustedIssuers {
    pub fn new(issuers: &[String]) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client for issuer keys builds");
        let issuers = issuers
            .iter()
            .map(|iss| {
                let issuer = Issuer {
                    jwks_url: format!("{}/.well-known/jwks.json", iss.trim_end_matches('/')),
                    keys: RwLock::new(Arc::new(HashMap::new())),
                    last_fetch: Mutex::new(None),
                };
                (iss.clone(), issuer)
            })
            .collect();
        Self { http, issuers }
    }

    pub fn is_trusted(&self, iss: &str) -> bool {
        self.issuers.contains_key(iss)
    }

    /// The key of `iss` named `kid`, fetching the issuer's JWKS when the kid is unknown and the
    /// cooldown has passed. `None` when the issuer is not trusted or has no such key.
    pub async fn key(&self, iss: &str, kid: &str) -> Option<Arc<VerifyingKey>> {
        let issuer = self.issuers.get(iss)?;
        if let Some(key) = issuer.cached(kid) {
            return Some(key);
        }
        let mut last_fetch = issuer.last_fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(key) = issuer.cached(kid) {
            return Some(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < REFETCH_COOLDOWN) {
            return None;
        }
        *last_fetch = Some(Instant::now());
        match self.fetch(&issuer.jwks_url).await {
            Ok(keys) => {
                tracing::info!(
                    issuer = iss,
                    keys = keys.len(),
                    "fetched trusted issuer keys"
                );
                let keys = Arc::new(keys);
                if let Ok(mut slot) = issuer.keys.write() {
                    *slot = keys;
                }
            }
            Err(error) => {
                tracing::warn!(issuer = iss, %error, "could not fetch trusted issuer keys");
            }
        }
        issuer.cached(kid)
    }

    async fn fetch(&self, url: &str) -> Result<HashMap<String, Arc<VerifyingKey>>, String> {
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("{url} is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{url} is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let doc: JwksDoc = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(rsa_signing_keys(&doc.keys))
    }
}

impl Issuer {
    fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.read().ok()?.get(kid).cloned()
    }
}

/// The RS256 signing keys of a JWKS; keys of other types or uses are skipped, not an error.
fn rsa_signing_keys(keys: &[serde_json::Value]) -> HashMap<String, Arc<VerifyingKey>> {
    keys.iter()
        .filter_map(|jwk| {
            let field = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
            if field("kty") != Some("RSA")
                || field("use").is_some_and(|u| u != "sig")
                || field("alg").is_some_and(|a| a != "RS256")
            {
                return None;
            }
            let key = VerifyingKey::from_components(field("n")?, field("e")?)?;
            Some((field("kid")?.to_owned(), Arc::new(key)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rsa_signing_keys_with_a_kid_are_kept() {
        let keys = [
            json!({"kty": "RSA", "kid": "a", "n": "sXch", "e": "AQAB", "use": "sig", "alg": "RS256"}),
            json!({"kty": "RSA", "kid": "b", "n": "sXch", "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "c", "n": "sXch", "e": "AQAB", "use": "enc"}),
            json!({"kty": "RSA", "kid": "d", "n": "sXch", "e": "AQAB", "alg": "RS512"}),
            json!({"kty": "EC", "kid": "e", "crv": "P-256", "x": "AA", "y": "AA"}),
            json!({"kty": "RSA", "n": "sXch", "e": "AQAB"}),
            json!("not a key"),
        ];
        let mut kids: Vec<_> = rsa_signing_keys(&keys).into_keys().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b"]);
    }
}
