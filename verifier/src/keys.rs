//! The issuer's signing keys: read from its JWKS, each parsed once, and the JWKS read again on
//! an unknown `kid` (a key rotated in) at most once per cooldown.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::http;
use crate::jws::VerifyingKey;

type KeyMap = HashMap<String, Arc<VerifyingKey>>;

pub(crate) struct Keys {
    jwks_uri: String,
    current: RwLock<Arc<KeyMap>>,
    /// When the JWKS was last read for an unknown `kid`; held while it is read again, so that
    /// concurrent misses wait for one fetch instead of each making their own.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The RS256 signing keys of a JWKS document; other keys (another `kty`, `use` or `alg`, or no
/// `kid`) are left out, since no token this crate accepts can name them.
fn parse_jwks(body: &[u8]) -> Result<KeyMap, String> {
    let jwks: Jwks = serde_json::from_slice(body).map_err(|e| format!("JWKS: {e}"))?;
    Ok(jwks
        .keys
        .into_iter()
        .filter(|k| k.kty == "RSA")
        .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
        .filter_map(|k| {
            let key = VerifyingKey::from_components(k.n.as_deref()?, k.e.as_deref()?)?;
            Some((k.kid?, Arc::new(key)))
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rs256_signing_keys_with_a_kid_are_kept() {
        // The RSA key of RFC 7517 appendix A.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
        ]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["a", "b"]);
    }
}
