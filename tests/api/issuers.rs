//! Trusted issuers as a security review found them wanting: a JWKS body without end, keys the
//! issuer removed, the service's own issuers listed as trusted, plain-http issuers, and tokens of
//! the wrong app client or kind.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use access_tokens::App;
use access_tokens::config::KeysPolicy;
use access_tokens::keys::KeySetName;
use axum::http::{HeaderValue, header::CACHE_CONTROL};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binary::command;
use crate::helpers::{
    TestApp, eventually, fresh_database, issuer_public_jwk, issuer_signer, settings,
    test_kek_base64,
};

/// A token of `iss` for a user of organization 1 (an owner), signed by issuer key `key`.
fn token_of(iss: &str, key: usize, extra: Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": iss, "sub": "sub-u1", "iat": now, "exp": now + 3600, "token_use": "id",
        "custom:ivy_org_id": "1", "custom:ivy_user_id": "u1", "assignments": ["1:owner"],
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    issuer_signer(key).sign(&claims).unwrap()
}

/// What a [`ScriptedIssuer`] answers to a JWKS fetch.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    cache_control: Option<&'static str>,
    /// Indexes of the issuer keys published.
    keys: Vec<usize>,
}

/// A trusted issuer whose JWKS answer the test changes as it goes, counting fetches.
struct ScriptedIssuer {
    url: String,
    answer: Arc<Mutex<Answer>>,
    fetches: Arc<AtomicUsize>,
}

impl ScriptedIssuer {
    async fn spawn(answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answer = Arc::new(Mutex::new(answer));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (current, counter) = (answer.clone(), fetches.clone());
        let router = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = current.lock().unwrap().clone();
                async move {
                    let keys: Vec<Value> =
                        answer.keys.iter().map(|&i| issuer_public_jwk(i)).collect();
                    let mut response =
                        (answer.status, axum::Json(json!({ "keys": keys }))).into_response();
                    if let Some(value) = answer.cache_control {
                        response
                            .headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static(value));
                    }
                    response
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            answer,
            fetches,
        }
    }

    fn set(&self, change: impl FnOnce(&mut Answer)) {
        change(&mut self.answer.lock().unwrap());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// Keys cached for `ttl` unless the issuer's max-age says otherwise, with `grace`; no lower bound,
/// so that a test need not wait 30 s.
fn short_keys(ttl: Duration, grace: Duration) -> KeysPolicy {
    KeysPolicy {
        default_ttl: ttl,
        min_ttl: Duration::ZERO,
        max_ttl: Duration::from_secs(3600),
        grace,
    }
}

async fn status_of(app: &TestApp, bearer: &str) -> StatusCode {
    app.list(bearer, "").await.status()
}

// --- A JWKS body without end ---------------------------------------------------------------

/// Bytes an endless issuer sends at most, so that a service reading without a cap still ends.
const ENDLESS_SAFETY_STOP: usize = 64 * 1024 * 1024;

/// An issuer whose JWKS is a chunked body that never ends: it writes until the connection is
/// closed (or `ENDLESS_SAFETY_STOP`), and records how many body bytes it wrote.
struct EndlessIssuer {
    url: String,
    sent: Arc<AtomicUsize>,
    closed: Arc<AtomicBool>,
}

impl EndlessIssuer {
    async fn spawn() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // A small send buffer, inherited by accepted connections: what was sent is close to what
        // the service received.
        socket.set_send_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (sent, closed) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (counter, done) = (sent.clone(), closed.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (counter, done) = (counter.clone(), done.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let header = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                    if stream.write_all(header.as_bytes()).await.is_err() {
                        return;
                    }
                    let data = vec![b' '; 64 * 1024];
                    let chunk = [
                        format!("{:x}\r\n", data.len()).into_bytes(),
                        data,
                        b"\r\n".to_vec(),
                    ]
                    .concat();
                    let _ = stream.write_all(b"1\r\n{\r\n").await;
                    while counter.load(Ordering::SeqCst) < ENDLESS_SAFETY_STOP {
                        if stream.write_all(&chunk).await.is_err() {
                            done.store(true, Ordering::SeqCst);
                            return;
                        }
                        counter.fetch_add(64 * 1024, Ordering::SeqCst);
                    }
                    // The safety stop: the body ends unfinished.
                    done.store(true, Ordering::SeqCst);
                });
            }
        });
        Self { url, sent, closed }
    }
}

#[tokio::test]
async fn an_endless_jwks_body_is_abandoned_at_the_cap() {
    let endless = EndlessIssuer::spawn().await;
    let url = endless.url.clone();
    let app = TestApp::spawn_with(|s| s.trusted_issuers.push(url)).await;

    let caller = token_of(&endless.url, 0, json!({}));
    assert_eq!(status_of(&app, &caller).await, StatusCode::UNAUTHORIZED);
    assert!(
        eventually(30, || async { endless.closed.load(Ordering::SeqCst) }).await,
        "the service closes the connection"
    );
    let sent = endless.sent.load(Ordering::SeqCst);
    // The cap is 256 KiB; what the kernel buffers on both ends of a loopback connection comes on
    // top. A service reading the body whole reads it to the safety stop (64 MiB).
    assert!(
        sent < 16 * 1024 * 1024,
        "{sent} bytes were sent before the service gave up"
    );
    // The other issuer's callers are served as ever.
    assert_eq!(status_of(&app, &app.owner()).await, StatusCode::OK);
}

// --- Keys the issuer removed ----------------------------------------------------------------

/// The issuer publishes keys 0 and 1, then removes key 1: after the TTL, key 1's tokens are
/// refused and key 0's still work.
async fn a_removed_key_stops_verifying(answer: Answer, keys: KeysPolicy) {
    let issuer = ScriptedIssuer::spawn(answer).await;
    let url = issuer.url.clone();
    let app = TestApp::spawn_with(|s| {
        s.trusted_issuers.push(url);
        s.issuer_policy.keys = keys;
    })
    .await;
    let (kept, removed) = (
        token_of(&issuer.url, 0, json!({})),
        token_of(&issuer.url, 1, json!({})),
    );
    assert_eq!(status_of(&app, &kept).await, StatusCode::OK);
    assert_eq!(status_of(&app, &removed).await, StatusCode::OK);
    assert_eq!(issuer.fetches(), 1);

    issuer.set(|a| a.keys = vec![0]);
    assert!(
        eventually(60, || async {
            status_of(&app, &removed).await == StatusCode::UNAUTHORIZED
        })
        .await,
        "a key the issuer removed is refused once the TTL has passed"
    );
    assert_eq!(status_of(&app, &kept).await, StatusCode::OK);
    assert!(issuer.fetches() >= 2);
}

#[tokio::test]
async fn keys_are_refetched_after_the_jwks_max_age_and_removed_ones_refused() {
    // The default TTL is an hour: only the response's max-age=1 can make the service refetch.
    a_removed_key_stops_verifying(
        Answer {
            status: StatusCode::OK,
            cache_control: Some("public, max-age=1"),
            keys: vec![0, 1],
        },
        short_keys(Duration::from_secs(3600), Duration::from_secs(3600)),
    )
    .await;
}

#[tokio::test]
async fn keys_are_refetched_after_the_default_ttl_when_the_jwks_names_no_max_age() {
    a_removed_key_stops_verifying(
        Answer {
            status: StatusCode::OK,
            cache_control: None,
            keys: vec![0, 1],
        },
        short_keys(Duration::from_secs(1), Duration::from_secs(3600)),
    )
    .await;
}

#[tokio::test]
async fn a_failed_refetch_keeps_the_cached_keys_for_the_grace_and_no_longer() {
    let answer = Answer {
        status: StatusCode::OK,
        cache_control: None,
        keys: vec![0],
    };
    // A long grace: an issuer's blip changes nothing for its callers.
    let blip = ScriptedIssuer::spawn(answer.clone()).await;
    let outage = ScriptedIssuer::spawn(answer).await;
    let (blip_url, outage_url) = (blip.url.clone(), outage.url.clone());
    let app = TestApp::spawn_with(|s| {
        s.trusted_issuers.push(blip_url);
        s.issuer_policy.keys = short_keys(Duration::from_secs(1), Duration::from_secs(3600));
    })
    .await;
    let caller = token_of(&blip.url, 0, json!({}));
    assert_eq!(status_of(&app, &caller).await, StatusCode::OK);
    blip.set(|a| a.status = StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        eventually(60, || async {
            assert_eq!(
                status_of(&app, &caller).await,
                StatusCode::OK,
                "within the grace"
            );
            blip.fetches() >= 3
        })
        .await,
        "the service tries to refetch once the TTL has passed"
    );
    assert_eq!(status_of(&app, &caller).await, StatusCode::OK);

    // A short grace: once it is over, the keys are dropped; when the issuer is back, so are they.
    let short = TestApp::spawn_with(|s| {
        s.trusted_issuers.push(outage_url);
        s.issuer_policy.keys = short_keys(Duration::from_secs(1), Duration::from_secs(1));
    })
    .await;
    let caller = token_of(&outage.url, 0, json!({}));
    assert_eq!(status_of(&short, &caller).await, StatusCode::OK);
    outage.set(|a| a.status = StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        eventually(60, || async {
            status_of(&short, &caller).await == StatusCode::UNAUTHORIZED
        })
        .await,
        "keys past their grace are not used"
    );
    outage.set(|a| a.status = StatusCode::OK);
    assert!(
        eventually(60, || async {
            status_of(&short, &caller).await == StatusCode::OK
        })
        .await,
        "keys are fetched again when the issuer is back"
    );
}

// --- The service's own issuers --------------------------------------------------------------

#[tokio::test]
async fn start_up_refuses_the_services_own_issuers_as_trusted() {
    let public_url = "https://tokens.example.com";
    for set in KeySetName::ALL {
        let kek = access_tokens::keys::KeyEncryptionKey::from_base64(&test_kek_base64()).unwrap();
        let mut s = settings(
            fresh_database().await,
            kek,
            vec![
                "https://cognito.example/pool".to_owned(),
                set.issuer(public_url),
            ],
        );
        s.http.public_url = Some(public_url.to_owned());
        let Err(error) = App::build(s).await else {
            panic!("the {set} issuer was accepted as trusted");
        };
        let message = error.to_string();
        assert!(
            message.starts_with("TRUSTED_ISSUERS")
                && message.contains(&set.issuer(public_url))
                && message.contains("remove it"),
            "{message}"
        );
    }
}

#[test]
fn the_binary_exits_when_trusted_issuers_name_its_own_issuer() {
    let output = command()
        .args([
            "serve",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            "postgres://postgres@127.0.0.1:9/unused",
            "--key-encryption-key",
            &test_kek_base64(),
            "--public-url",
            "https://tokens.example.com",
            "--trusted-issuers",
            "https://tokens.example.com/v1/access-tokens/contact-identification",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("TRUSTED_ISSUERS") && stderr.contains("contact-identification"),
        "{stderr}"
    );
}

#[tokio::test]
async fn own_keys_under_another_trusted_issuer_name_are_refused() {
    // The service's public JWKS reached by another host name, listed as a trusted issuer: tokens
    // signed by the public key set under that name must not become callers.
    let app = TestApp::spawn().await;
    let alias = format!(
        "{}/v1/access-tokens/public",
        app.base.replace("127.0.0.1", "localhost")
    );
    let (database, public_url, issuer) =
        (app.database.clone(), app.public_url.clone(), alias.clone());
    let replica = TestApp::spawn_with(|s| {
        s.database = database;
        s.http.public_url = Some(public_url);
        s.trusted_issuers.push(issuer);
    })
    .await;
    let ring = replica.key_ring().await;
    let keys = ring.current();
    let now = chrono::Utc::now().timestamp();
    let forged = keys
        .set(KeySetName::Public)
        .signing
        .sign(&json!({
            "iss": alias, "sub": "jrn_x", "iat": now, "exp": now + 600, "token_use": "access",
            "custom:ivy_org_id": "1", "custom:ivy_user_id": "u1", "assignments": ["1:owner"],
        }))
        .unwrap();
    let created = replica.create(&forged, json!({"name": "escalated"})).await;
    assert_eq!(created.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&replica, &replica.owner()).await, StatusCode::OK);
}

// --- Plain-http issuers ---------------------------------------------------------------------

#[test]
fn the_binary_refuses_plain_http_issuers_off_loopback_unless_allowed() {
    let serve = |extra: &[&str]| {
        let mut c = command();
        c.args([
            "serve",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            "postgres://postgres@127.0.0.1:9/unused",
            "--key-encryption-key",
            &test_kek_base64(),
            "--trusted-issuers",
            "http://issuer.example/pool",
        ]);
        c.args(extra).env_remove("ALLOW_INSECURE_ISSUERS");
        c.output().unwrap()
    };
    let refused = serve(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("TRUSTED_ISSUERS") && stderr.contains("ALLOW_INSECURE_ISSUERS=true"),
        "{stderr}"
    );
    // Allowed, validation passes and start-up goes on to the database (which nothing serves here).
    let allowed = serve(&["--allow-insecure-issuers", "true"]);
    assert!(!allowed.status.success());
    let stderr = String::from_utf8(allowed.stderr).unwrap();
    assert!(
        !stderr.contains("TRUSTED_ISSUERS") && !stderr.contains("ALLOW_INSECURE_ISSUERS"),
        "{stderr}"
    );
}

// --- Audiences, token_use and email ---------------------------------------------------------

#[tokio::test]
async fn trusted_audiences_match_aud_of_id_tokens_and_client_id_of_access_tokens() {
    let app =
        TestApp::spawn_with(|s| s.issuer_policy.audiences = vec!["portal-client".into()]).await;
    let cases = [
        (
            json!({"token_use": "id", "aud": "portal-client"}),
            StatusCode::OK,
        ),
        (
            json!({"token_use": "id", "aud": ["other", "portal-client"]}),
            StatusCode::OK,
        ),
        (
            json!({"token_use": "access", "client_id": "portal-client"}),
            StatusCode::OK,
        ),
        (
            json!({"token_use": "id", "aud": "other-client"}),
            StatusCode::UNAUTHORIZED,
        ),
        (json!({"token_use": "id"}), StatusCode::UNAUTHORIZED),
        (
            json!({"token_use": "id", "client_id": "portal-client"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"token_use": "access", "client_id": "other-client"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"token_use": "access", "aud": "portal-client"}),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (claims, expected) in cases {
        let token = token_of(&app.issuer.url, 0, claims.clone());
        assert_eq!(status_of(&app, &token).await, expected, "{claims}");
    }
}

#[tokio::test]
async fn only_the_accepted_token_uses_may_call() {
    let no_token_use = |app: &TestApp| {
        let now = chrono::Utc::now().timestamp();
        issuer_signer(0)
            .sign(&json!({"iss": app.issuer.url, "sub": "s", "exp": now + 600, "custom:ivy_org_id": "1"}))
            .unwrap()
    };
    // By default both Cognito kinds are accepted; a token without token_use never is.
    let app = TestApp::spawn().await;
    for (token_use, expected) in [
        ("id", StatusCode::OK),
        ("access", StatusCode::OK),
        ("refresh", StatusCode::UNAUTHORIZED),
    ] {
        let token = token_of(&app.issuer.url, 0, json!({ "token_use": token_use }));
        assert_eq!(status_of(&app, &token).await, expected, "{token_use}");
    }
    assert_eq!(
        status_of(&app, &no_token_use(&app)).await,
        StatusCode::UNAUTHORIZED
    );

    let id_only = TestApp::spawn_with(|s| s.issuer_policy.token_uses = vec!["id".into()]).await;
    for (token_use, expected) in [("id", StatusCode::OK), ("access", StatusCode::UNAUTHORIZED)] {
        let token = token_of(&id_only.issuer.url, 0, json!({ "token_use": token_use }));
        assert_eq!(status_of(&id_only, &token).await, expected, "{token_use}");
    }
}

#[tokio::test]
async fn a_callers_email_is_copied_only_when_marked_verified() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"email_verified": true}), true),
        (json!({"email_verified": "true"}), true),
        (json!({}), false),
        (json!({"email_verified": false}), false),
        (json!({"email_verified": "false"}), false),
        (json!({"email_verified": 0}), false),
        (json!({"email_verified": "0"}), false),
        (json!({"email_verified": "no"}), false),
        (json!({"email_verified": null}), false),
    ];
    for (verified, copied) in cases {
        let mut claims = json!({"email": "jane@example.com", "cognito:username": "jane"});
        claims
            .as_object_mut()
            .unwrap()
            .extend(verified.as_object().unwrap().clone());
        let caller = token_of(&app.issuer.url, 0, claims);
        let created = app.create_ok(&caller, json!({"name": "mail"})).await;
        let jwt = app
            .verify("", created["token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(jwt["cognito:username"], "jane");
        assert_eq!(jwt.get("email").is_some(), copied, "{verified}: {jwt}");
    }
}
