//! The issuer's signing keys: read from its JWKS, each parsed once, and the JWKS read again on
//! an unknown `kid` (a key rotated in) at most once per cooldown.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::http;
use access_tokens_jose::VerifyingKey;

type KeyMap = HashMap<String, Arc<VerifyingKey>>;

pub(crate) struct Keys {
    jwks_uri: String,
    current: RwLock<Arc<KeyMap>>,
    /// When the JWKS was last read for an unknown `kid`; held while it is read again, so that
    /// concurrent misses wait for one fetch instead of each making their own.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
}

/// The RS256 signing keys of a JWKS document, each parsed once (the JOSE crate's rule: other
/// keys, keys without a `kid` and keys under 2048 bits are left out).
fn parse_jwks(body: &[u8]) -> Result<KeyMap, String> {
    let keys = access_tokens_jose::jwk::rs256_keys(body).map_err(|e| format!("JWKS: {e}"))?;
    Ok(keys
        .into_iter()
        .map(|(kid, key)| (kid, Arc::new(key)))
        .collect())
}

impl Keys {
    pub(crate) async fn fetch(
        client: &reqwest::Client,
        jwks_uri: String,
        cooldown: Duration,
        max_bytes: usize,
    ) -> Result<Self, String> {
        let fetched = http::get(client, &jwks_uri, "application/json", max_bytes).await?;
        let keys = parse_jwks(&fetched.body)?;
        Ok(Self {
            jwks_uri,
            current: RwLock::new(Arc::new(keys)),
            last_refetch: tokio::sync::Mutex::new(None),
            cooldown,
        })
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// The key named `kid`: from the keys held, else from the JWKS read again when the last such
    /// read is older than the cooldown.
    pub(crate) async fn get(
        &self,
        client: &reqwest::Client,
        kid: &str,
        max_bytes: usize,
    ) -> Option<Arc<VerifyingKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let mut last = self.last_refetch.lock().await;
        // Another task may have read the JWKS while this one waited.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.cooldown) {
            return None;
        }
        *last = Some(Instant::now());
        match http::get(client, &self.jwks_uri, "application/json", max_bytes).await {
            Ok(fetched) => match parse_jwks(&fetched.body) {
                Ok(keys) => {
                    let key = keys.get(kid).cloned();
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                    key
                }
                // A broken JWKS does not replace the keys held.
                Err(_) => None,
            },
            Err(_) => None,
        }
    }
}
