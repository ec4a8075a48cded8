//! Hostile clients: rate limits with `Retry-After`, and a client that sends its headers too slowly.

use std::time::{Duration, Instant};

use access_tokens::config::RateLimitSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, assert_throttled};

#[tokio::test]
async fn token_creation_is_limited_per_caller_and_per_organization() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimitSettings {
            create_per_org: 5,
            create_per_caller: 3,
            failed_auth_per_address: 0,
            ..RateLimitSettings::OFF
        }
    })
    .await;
    let alice = app.issuer.user("1", "alice", &["1:owner"]);
    let bob = app.issuer.user("1", "bob", &["1:owner"]);
    let mut last = String::new();
    for i in 0..3 {
        last = app
            .create_ok(&alice, json!({"name": format!("a{i}")}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let message = assert_throttled(app.create(&alice, json!({"name": "a4"})).await).await;
    assert!(message.contains("caller"), "{message}");
    // Rotation hands out a token too.
    assert_throttled(app.rotate(&alice, &last).await).await;
    // Another caller of the organization has room until the organization's limit.
    app.create_ok(&bob, json!({"name": "b1"})).await;
    app.create_ok(&bob, json!({"name": "b2"})).await;
    let message = assert_throttled(app.create(&bob, json!({"name": "b3"})).await).await;
    assert!(message.contains("organization"), "{message}");
    // Other organizations, and reads, are not affected.
    app.create_ok(&app.caller("2", &["2:owner"]), json!({"name": "c"}))
        .await;
    assert_eq!(app.list_ok(&alice, "").await.len(), 5);
    assert_eq!(
        app.count("select count(*) from access_tokens where org_id = $1", "1")
            .await,
        5,
        "a refused creation writes nothing"
    );
}

#[tokio::test]
async fn an_address_that_fails_authentication_too_often_is_turned_away_for_a_while() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimitSettings {
            create_per_org: 0,
            create_per_caller: 0,
            failed_auth_per_address: 3,
            ..RateLimitSettings::OFF
        }
    })
    .await;
    let owner = app.owner();
    assert_eq!(app.list(&owner, "").await.status(), StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            app.list("guessed.token.value", "").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let message = assert_throttled(app.list("guessed.token.value", "").await).await;
    assert!(message.contains("address"), "{message}");
    // Even a valid token from that address waits: the check comes before any verification.
    assert_throttled(app.list(&owner, "").await).await;
    // Verifiers of the JWKS are never turned away.
    assert_eq!(
        app.get("/v1/access-tokens/.well-known/jwks.json")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected() {
    let app =
        TestApp::spawn_with(|s| s.http.header_read_timeout = Duration::from_millis(500)).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    // ... and the blank line that ends the headers never comes.
    let started = Instant::now();
    let mut answer = Vec::new();
    // The header timeout is 0.5 s here and the request timeout 30 s: 20 s tells them apart
    // however busy the machine.
    let closed = tokio::time::timeout(Duration::from_secs(25), slow.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the server closes the connection");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "within the header timeout, not the request timeout: {:?}",
        started.elapsed()
    );
    // A client that connects and says nothing is closed the same way.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let closed =
        tokio::time::timeout(Duration::from_secs(25), silent.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "an idle connection is closed too");
    // Others are served meanwhile and after.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_headers_are_refused_and_deep_json_is_a_400() {
    let app = TestApp::spawn().await;
    // Over 32 KiB of headers in total: the contract's 431.
    let mut request = app.client.get(app.url("/v1/access-tokens"));
    for i in 0..5 {
        request = request.header(format!("x-padding-{i}"), "p".repeat(8 * 1024));
    }
    let response = request.bearer_auth(app.owner()).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 431);
    // Beyond the 64 KiB the server reads of a request head, the connection is refused early.
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-padding", "p".repeat(70 * 1024))
        .send()
        .await;
    assert!(
        response.map_or(true, |r| r.status()
            == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        "refused"
    );

    // JSON nested far deeper than any request needs: a 400, not a stack overflow.
    for depth in [200, 100_000 / 2] {
        let body = format!(
            "{{\"name\": \"deep\", \"assignments\": {}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let response = app
            .client
            .post(app.url("/v1/access-tokens"))
            .bearer_auth(app.owner())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{depth}: {status}"
        );
    }
    // The service is still there.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revocations_suspensions_and_resumptions_are_limited_per_caller_and_per_organization() {
    // Each one re-renders a status list on every replica: a cheap request must not be a storm.
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimitSettings {
            change_per_org: 5,
            change_per_caller: 3,
            ..RateLimitSettings::OFF
        }
    })
    .await;
    let alice = app.issuer.user("1", "alice", &["1:owner"]);
    let bob = app.issuer.user("1", "bob", &["1:owner"]);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            app.create_ok(&alice, json!({"name": format!("t{i}")}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let act = |bearer: &str, id: &str, action: &str| {
        app.client
            .post(app.url(&format!("/v1/access-tokens/{id}/{action}")))
            .bearer_auth(bearer.to_owned())
            .send()
    };
    assert_eq!(act(&alice, &ids[0], "suspend").await.unwrap().status(), 200);
    assert_eq!(act(&alice, &ids[0], "resume").await.unwrap().status(), 200);
    assert_eq!(app.revoke(&alice, &ids[1]).await.status(), 200);
    let message = assert_throttled(app.revoke(&alice, &ids[2]).await).await;
    assert!(message.contains("caller"), "{message}");
    assert_throttled(act(&alice, &ids[3], "suspend").await.unwrap()).await;
    // Another caller of the organization has room until the organization's limit.
    assert_eq!(app.revoke(&bob, &ids[2]).await.status(), 200);
    assert_eq!(app.revoke(&bob, &ids[3]).await.status(), 200);
    let message = assert_throttled(app.revoke(&bob, &ids[4]).await).await;
    assert!(message.contains("organization"), "{message}");
    // A refused change changes nothing; reads and creations are not affected.
    let item: serde_json::Value = app.get_token(&alice, &ids[4]).await.json().await.unwrap();
    assert_eq!(item["status"], "active");
    app.create_ok(&alice, json!({"name": "after"})).await;
}
