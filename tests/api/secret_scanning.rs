//! GitHub's secret scanning alerts, from a key server and a "GitHub" the test plays on loopback:
//! a signed alert revokes the tokens of this service it names and labels them; a tampered body, a
//! wrong key, an unknown key id or a missing header revoke nothing; a key GitHub adds is fetched
//! once; the endpoint answers 404 unless it is turned on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, assert_error};

struct GitHub {
    keys: Vec<(String, EcdsaKeyPair)>,
    published: Arc<std::sync::Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    url: String,
}

fn pem(pair: &EcdsaKeyPair) -> String {
    let der = pair.public_key().as_der().unwrap();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der.as_ref())
    )
}

impl GitHub {
    /// A key server publishing the first of three keys.
    async fn start() -> Self {
        let keys: Vec<(String, EcdsaKeyPair)> = (0..3)
            .map(|n| {
                (
                    format!("{n:064x}"),
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap(),
                )
            })
            .collect();
        let published = Arc::new(std::sync::Mutex::new(vec![json!({
            "key_identifier": keys[0].0, "key": pem(&keys[0].1), "is_current": true
        })]));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = {
            let published = published.clone();
            let fetches = fetches.clone();
            axum::Router::new().route(
                "/meta/public_keys/secret_scanning",
                axum::routing::get(move || {
                    let published = published.clone();
                    let fetches = fetches.clone();
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        axum::Json(json!({ "public_keys": *published.lock().unwrap() }))
                    }
                }),
            )
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/meta/public_keys/secret_scanning",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            keys,
            published,
            fetches,
            url,
        }
    }

    fn publish(&self, n: usize) {
        self.published.lock().unwrap().push(json!({
            "key_identifier": self.keys[n].0, "key": pem(&self.keys[n].1), "is_current": false
        }));
    }

    fn sign(&self, n: usize, body: &[u8]) -> String {
        let signature = self.keys[n].1.sign(&SystemRandom::new(), body).unwrap();
        STANDARD.encode(signature.as_ref())
    }
}

async fn alert(
    app: &TestApp,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/access-tokens/secret-scanning/github"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(id) = key_id {
        request = request.header("Github-Public-Key-Identifier", id);
    }
    if let Some(s) = signature {
        request = request.header("Github-Public-Key-Signature", s);
    }
    request.send().await.unwrap()
}

fn sha256_hex(text: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn a_signed_alert_revokes_the_leaked_tokens_and_labels_them() {
    let github = GitHub::start().await;
    let url = github.url.clone();
    let app = TestApp::spawn_with(|s| s.secret_scanning_github = Some(url)).await;
    let owner = app.owner();
    let (receiver, address) = crate::webhooks::Receiver::start().await;
    crate::webhooks::endpoint(
        &app,
        &format!("http://{address}/hook"),
        Some(&["token.revoked"]),
    )
    .await;
    let leaked = app
        .create_ok(&owner, json!({"name": "pushed to a repository"}))
        .await;
    let token = leaked["token"].as_str().unwrap();
    let revoked = app
        .create_ok(&owner, json!({"name": "revoked before"}))
        .await;
    app.revoke(&owner, revoked["id"].as_str().unwrap()).await;
    let body = json!([
        {"token": token, "type": "access_tokens_api", "url": "https://github.com/acme/app/blob/abc/.env", "source": "content"},
        {"token": revoked["token"], "type": "access_tokens_api", "url": "https://github.com/acme/app", "source": "content"},
        {"token": "not one of ours", "type": "access_tokens_api", "url": "https://gist.github.com/x", "source": "gist"},
    ])
    .to_string();

    // Refused, revoking nothing: a tampered body, another key's signature, an unknown key id,
    // missing headers.
    let signature = github.sign(0, body.as_bytes());
    let tampered = body.replace("content", "contents");
    for (id, sig, sent) in [
        (
            Some(github.keys[0].0.as_str()),
            Some(signature.as_str()),
            tampered.as_str(),
        ),
        (
            Some(github.keys[0].0.as_str()),
            Some(github.sign(1, body.as_bytes())).as_deref(),
            body.as_str(),
        ),
        (Some("f00d"), Some(signature.as_str()), body.as_str()),
        (None, Some(signature.as_str()), body.as_str()),
        (Some(github.keys[0].0.as_str()), None, body.as_str()),
        (
            Some(github.keys[0].0.as_str()),
            Some("not base64!"),
            body.as_str(),
        ),
    ] {
        assert_error(alert(&app, id, sig, sent).await, StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(
        app.list(token, "").await.status(),
        StatusCode::OK,
        "not revoked"
    );

    let response = alert(&app, Some(&github.keys[0].0), Some(&signature), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let labels: Value = response.json().await.unwrap();
    assert_eq!(
        labels,
        json!([
            {"token_hash": sha256_hex(token), "token_type": "access_tokens_api", "label": "true_positive"},
            {"token_hash": sha256_hex(revoked["token"].as_str().unwrap()), "token_type": "access_tokens_api", "label": "false_positive"},
            {"token_hash": sha256_hex("not one of ours"), "token_type": "access_tokens_api", "label": "false_positive"},
        ])
    );
    assert_eq!(app.list(token, "").await.status(), StatusCode::UNAUTHORIZED);
    let events = app
        .audit_events(
            &owner,
            &format!("?token_id={}", leaked["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(events[0]["actor"], json!({"type": "secret_scanning"}));
    assert_eq!(events[0]["details"]["reason"], "leaked");
    assert_eq!(
        events[0]["details"]["leak"],
        json!({"url": "https://github.com/acme/app/blob/abc/.env", "source": "content"})
    );

    // The owner's webhooks are told where it was found.
    assert!(
        crate::helpers::eventually(30, || async {
            receiver
                .got()
                .iter()
                .any(|r| r.event()["subject"] == leaked["id"])
        })
        .await
    );
    let told = receiver
        .got()
        .iter()
        .map(crate::webhooks::Received::event)
        .find(|e| e["subject"] == leaked["id"])
        .unwrap();
    assert_eq!(told["data"]["reason"], "leaked");
    assert_eq!(
        told["data"]["leak"]["url"],
        "https://github.com/acme/app/blob/abc/.env"
    );

    // A signed body that is not an alert is a 400.
    let not_alert = r#"{"token": "x"}"#;
    let response = alert(
        &app,
        Some(&github.keys[0].0),
        Some(&github.sign(0, not_alert.as_bytes())),
        not_alert,
    )
    .await;
    assert_error(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_key_github_adds_is_fetched_once_and_unknown_ones_at_most_once_a_minute() {
    let github = GitHub::start().await;
    let url = github.url.clone();
    let app = TestApp::spawn_with(|s| s.secret_scanning_github = Some(url)).await;
    let body = json!([{"token": "x", "type": "t", "url": "u", "source": "content"}]).to_string();
    let ok = alert(
        &app,
        Some(&github.keys[0].0),
        Some(&github.sign(0, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        github.fetches.load(Ordering::SeqCst),
        1,
        "fetched when first needed"
    );
    // Known: no fetch.
    alert(
        &app,
        Some(&github.keys[0].0),
        Some(&github.sign(0, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(github.fetches.load(Ordering::SeqCst), 1);
    // GitHub adds a key: the first alert naming it fetches the keys again, once.
    github.publish(1);
    let ok = alert(
        &app,
        Some(&github.keys[1].0),
        Some(&github.sign(1, body.as_bytes())),
        &body,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(github.fetches.load(Ordering::SeqCst), 2);
    // Then unknown ids fetch nothing more within the minute.
    github.publish(2);
    for _ in 0..5 {
        let refused = alert(
            &app,
            Some(&github.keys[2].0),
            Some(&github.sign(2, body.as_bytes())),
            &body,
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(github.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn alerts_are_not_received_unless_turned_on() {
    let app = TestApp::spawn().await;
    let response = alert(&app, Some("k"), Some("c2ln"), "[]").await;
    assert_error(response, StatusCode::NOT_FOUND).await;
    // Unsigned, it is refused as unsigned either way.
    let unsigned = alert(&app, Some("k"), None, "[]").await;
    assert_error(unsigned, StatusCode::UNAUTHORIZED).await;
}
