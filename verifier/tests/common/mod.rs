//! A test issuer on loopback: a discovery document, a JWKS and Status List Tokens signed by RSA
//! keys made here with aws-lc-rs, served by axum on port 0. Tests change what it serves and
//! count what it is asked for.

#![allow(dead_code, reason = "each test binary uses its own part of the helper")]

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use access_tokens_verifier::{Builder, Verifier};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// RSA key generation is slow; the tests of one binary share two keys.
static KEYS: LazyLock<[Arc<KeyPair>; 2]> = LazyLock::new(|| {
    [
        Arc::new(KeyPair::generate(KeySize::Rsa2048).unwrap()),
        Arc::new(KeyPair::generate(KeySize::Rsa2048).unwrap()),
    ]
});

pub const KID: &str = "key-1";
pub const ROTATED_KID: &str = "key-2";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signer with a `kid`.
#[derive(Clone)]
pub struct Signer {
    pub kid: String,
    pair: Arc<KeyPair>,
}

impl Signer {
    pub fn new(kid: &str, which: usize) -> Self {
        Self {
            kid: kid.into(),
            pair: KEYS[which].clone(),
        }
    }

    /// The public key, DER-encoded (RFC 8017 RSAPublicKey), for aws-lc-rs.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact JWS of `claims` under `header`, signed with RS256 whatever `header` says.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    pub fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
}

/// Packs `statuses` of `bits` each, least significant bits first, and ZLIB-compresses them
/// (draft-ietf-oauth-status-list section 4.1).
pub fn encode_list(bits: u8, statuses: &[u8]) -> String {
    let per_byte = usize::from(8 / bits);
    let mut bytes = vec![0u8; statuses.len().div_ceil(per_byte)];
    for (idx, status) in statuses.iter().enumerate() {
        bytes[idx / per_byte] |= status << ((idx % per_byte) * usize::from(bits));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&bytes).unwrap();
    URL_SAFE_NO_PAD.encode(z.finish().unwrap())
}

/// What the issuer serves; tests change it through [`TestIssuer::with`].
pub struct Served {
    /// Status values per list name, 2 bits each.
    pub lists: HashMap<String, Vec<u8>>,
    pub ttl: Option<u64>,
    /// `exp` of a list, seconds after it is served; `None`: no `exp`.
    pub exp_in: Option<u64>,
    /// `sub` of every list instead of its URI.
    pub sub: Option<String>,
    pub typ: String,
    /// Lists answer 503.
    pub unavailable: bool,
    /// Keys in the JWKS.
    pub jwks: Vec<Signer>,
    /// The signer of the lists.
    pub list_signer: Signer,
    /// What the discovery document names as issuer, when not the issuer.
    pub discovery_issuer: Option<String>,
}

#[derive(Clone)]
struct AppState {
    issuer: String,
    served: Arc<Mutex<Served>>,
    jwks_hits: Arc<AtomicUsize>,
    list_hits: Arc<AtomicUsize>,
}

pub struct TestIssuer {
    pub issuer: String,
    pub origin: String,
    pub signer: Signer,
    state: AppState,
}

impl TestIssuer {
    /// Serves the issuer `http://127.0.0.1:<port>/v1/access-tokens` with one list, `1`, of 64
    /// entries, all 0, `ttl` 1 s and `exp` 300 s ahead.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{origin}/v1/access-tokens");
        let signer = Signer::new(KID, 0);
        let served = Served {
            lists: HashMap::from([("1".to_owned(), vec![0; 64])]),
            ttl: Some(1),
            exp_in: Some(300),
            sub: None,
            typ: "statuslist+jwt".into(),
            unavailable: false,
            jwks: vec![signer.clone()],
            list_signer: signer.clone(),
            discovery_issuer: None,
        };
        let state = AppState {
            issuer: issuer.clone(),
            served: Arc::new(Mutex::new(served)),
            jwks_hits: Arc::default(),
            list_hits: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/v1/access-tokens/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/v1/access-tokens/.well-known/jwks.json", get(jwks))
            .route("/v1/access-tokens/status-lists/{name}", get(status_list))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            origin,
            signer,
            state,
        }
    }

    pub fn with<R>(&self, change: impl FnOnce(&mut Served) -> R) -> R {
        change(&mut self.state.served.lock().unwrap())
    }

    pub fn set_status(&self, list: &str, idx: usize, value: u8) {
        self.with(|s| s.lists.get_mut(list).unwrap()[idx] = value);
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn list_hits(&self) -> usize {
        self.state.list_hits.load(Ordering::SeqCst)
    }

    pub fn list_uri(&self, name: &str) -> String {
        format!("{}/status-lists/{name}", self.issuer)
    }

    /// Claims as the service writes them, pointing at `idx` of list `1`.
    pub fn claims(&self, idx: u64) -> Value {
        json!({
            "iss": self.issuer, "sub": "u-1", "jti": "t-1", "token_id": "t-1",
            "token_use": "access", "iat": now(), "token_type": "api",
            "org_id": "123", "user_id": "u-1", "assignments": ["123:owner"],
            "status": {"status_list": {"idx": idx, "uri": self.list_uri("1")}},
        })
    }

    pub fn token(&self, idx: u64) -> String {
        self.signer.token(&self.claims(idx))
    }

    /// A builder with no leeway and list ttls taken between 0 and 60 s, so tests wait little.
    pub fn builder(&self) -> Builder {
        Verifier::builder(&self.issuer)
            .leeway(Duration::ZERO)
            .status_ttl_bounds(Duration::ZERO, Duration::from_secs(60))
    }

    pub async fn verifier(&self) -> Verifier {
        self.builder().build().await.unwrap()
    }
}

async fn discovery(State(state): State<AppState>) -> Response {
    let served = state.served.lock().unwrap();
    let issuer = served
        .discovery_issuer
        .clone()
        .unwrap_or(state.issuer.clone());
    axum::Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", state.issuer),
    }))
    .into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let served = state.served.lock().unwrap();
    let keys: Vec<Value> = served.jwks.iter().map(Signer::jwk).collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn status_list(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    state.list_hits.fetch_add(1, Ordering::SeqCst);
    let served = state.served.lock().unwrap();
    if served.unavailable {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let Some(statuses) = served.lists.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let uri = format!("{}/status-lists/{name}", state.issuer);
    let now = now();
    let mut claims = json!({
        "sub": served.sub.clone().unwrap_or(uri),
        "iss": state.issuer,
        "iat": now,
        "status_list": {"bits": 2, "lst": encode_list(2, statuses)},
    });
    if let Some(exp_in) = served.exp_in {
        claims["exp"] = json!(now + exp_in);
    }
    if let Some(ttl) = served.ttl {
        claims["ttl"] = json!(ttl);
    }
    let header = json!({"alg": "RS256", "typ": served.typ, "kid": served.list_signer.kid});
    let body = served.list_signer.sign(&header, &claims);
    ([(header::CONTENT_TYPE, "application/statuslist+jwt")], body).into_response()
}

/// Polls `check` every 50 ms until it holds, for at most `bound`; returns whether it did.
pub async fn eventually(bound: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
