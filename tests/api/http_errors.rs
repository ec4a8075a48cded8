//! Bad requests at the HTTP level, CORS, health checks and a sabotaged database: every error is the
//! contract's JSON body.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, eventually};

#[tokio::test]
async fn malformed_bodies_are_400_415_or_413() {
    let app = TestApp::spawn().await;
    let post = |body: Vec<u8>, content_type: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/v1/access-tokens"))
            .bearer_auth(app.owner())
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    assert_error(
        post(b"{\"name\": ".to_vec(), Some("application/json"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A syntax error names where the JSON breaks.
    let message = assert_error(
        post(
            b"{\n  \"name\": \"x\",\n  \"expires_in\": 90d\n}".to_vec(),
            Some("application/json"),
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        message.starts_with("request body is not valid JSON") && message.contains("line 3 column"),
        "{message}"
    );
    assert_error(
        post(b"[1, 2]".to_vec(), Some("application/json"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post(b"\"name\"".to_vec(), Some("application/json"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post(
            b"name=x".to_vec(),
            Some("application/x-www-form-urlencoded"),
        )
        .await
        .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert_error(
        post(b"{\"name\": \"x\"}".to_vec(), Some("text/plain"))
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert_error(
        post(b"{\"name\": \"x\"}".to_vec(), None).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let big = serde_json::to_vec(&json!({"name": "x".repeat(70 * 1024)})).unwrap();
    assert_error(
        post(big, Some("application/json")).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    // A body over the limit sent without a length (chunked) is refused the same way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"name\": \"".to_vec()),
        Ok(vec![b'x'; 70 * 1024]),
        Ok(b"\"}".to_vec()),
    ];
    let streamed = app
        .client
        .post(app.url("/v1/access-tokens"))
        .bearer_auth(app.owner())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util_stream(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(streamed, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(
        app.list_ok(&app.owner(), "").await.is_empty(),
        "nothing half-written"
    );
}

/// Every JSON body the API takes is an object: an array (which serde would read into a struct by
/// position), a string, a number or `null` is a 400 on every operation, and nothing is written.
#[tokio::test]
async fn a_json_body_that_is_not_an_object_is_400_everywhere() {
    let app = TestApp::spawn().await;
    let created = app.create_ok(&app.owner(), json!({"name": "ci"})).await;
    let own = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let owner = app.owner();
    let post = reqwest::Method::POST;
    let operations = [
        ("/v1/access-tokens".to_owned(), post.clone(), &owner),
        (
            format!("/v1/access-tokens/{id}/rotate"),
            post.clone(),
            &owner,
        ),
        (
            "/v1/access-tokens/self/rotate".to_owned(),
            post.clone(),
            &own,
        ),
        (
            "/v1/access-tokens/policy".to_owned(),
            reqwest::Method::PUT,
            &owner,
        ),
        (
            "/v1/access-tokens/offboard".to_owned(),
            post.clone(),
            &owner,
        ),
        (
            "/v1/access-tokens/identify".to_owned(),
            post.clone(),
            &owner,
        ),
        (
            "/v1/access-tokens/webhooks".to_owned(),
            post.clone(),
            &owner,
        ),
        (
            "/v1/access-tokens/federated-credentials".to_owned(),
            post.clone(),
            &owner,
        ),
        ("/v1/access-tokens/revoke".to_owned(), post.clone(), &owner),
    ];
    let token = serde_json::to_string(&own).unwrap();
    let bodies = [
        "[]".to_owned(),
        "[\"ci\"]".to_owned(),
        "[\"u-1\"]".to_owned(),
        format!("[{token}]"),
        format!("[[{token}]]"),
        format!(" {token}"),
        "1".to_owned(),
        "null".to_owned(),
        "true".to_owned(),
    ];
    for (path, method, bearer) in &operations {
        for body in &bodies {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(bearer)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{method} {path} with {body}"
            );
            assert_error(response, StatusCode::BAD_REQUEST).await;
        }
    }
    // Nothing was created, rotated, revoked, offboarded or set.
    let listed = app.list_ok(&app.owner(), "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(listed[0]["revoked_at"].is_null(), "{listed:?}");
    assert_eq!(app.list(&own, "").await.status(), StatusCode::OK);
    let policy = crate::policy::policy_of(&app, &app.owner()).await;
    assert_eq!(policy, crate::policy::defaults(), "{policy}");
    // A body type with words of its own for a body that is not an object keeps them; where serde
    // would have read the array, the extractor says why it is refused.
    let message = assert_error(
        app.create(&app.owner(), json!(["ci"])).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("not an array"), "{message}");
    let message = assert_error(
        app.client
            .post(app.url("/v1/access-tokens/offboard"))
            .bearer_auth(app.owner())
            .json(&json!(["u-1"]))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(message, "request body must be a JSON object");
}

fn futures_util_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/v2/access-tokens").await, StatusCode::NOT_FOUND).await;
    // `/` redirects to the settings page (settings_page.rs); other unknown paths are 404s.
    assert_error(app.get("/nowhere").await, StatusCode::NOT_FOUND).await;
    let put = app
        .client
        .put(app.url("/v1/access-tokens"))
        .send()
        .await
        .unwrap();
    assert!(put.headers().contains_key("allow"));
    assert_error(put, StatusCode::METHOD_NOT_ALLOWED).await;
    let post = app
        .client
        .post(app.url("/v1/access-tokens/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_error(post, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = TestApp::spawn().await;
    for path in [
        "/health/live",
        "/v1/access-tokens",
        "/nowhere",
        "/v1/access-tokens/.well-known/jwks.json",
    ] {
        assert_eq!(
            app.get(path).await.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
}

#[tokio::test]
async fn browsers_on_allowed_origins_pass_the_cors_preflight() {
    let app = TestApp::spawn().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/access-tokens"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://portal.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let allow_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allow_headers.contains("authorization") && allow_headers.contains("content-type"));

    let other = preflight("https://evil.example.com").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let simple = app
        .client
        .get(app.url("/v1/access-tokens"))
        .header("origin", "https://portal.example.com")
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://portal.example.com"
    );
}

#[tokio::test]
async fn health_checks_report_liveness_and_database_readiness() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stopping_replica_fails_readiness_while_it_drains_then_stops_accepting() {
    let mut app =
        TestApp::spawn_with(|s| s.http.shutdown_drain = std::time::Duration::from_secs(20)).await;
    app.stop();
    let draining = eventually(30, || async {
        app.get("/health/ready").await.status() == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(draining, "readiness fails once the replica is told to stop");
    let ready = app.get("/health/ready").await;
    let message = assert_error(ready, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(message.contains("stopping"), "{message}");
    // Still serving while the balancer takes it out.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    app.create_ok(&app.owner(), json!({"name": "during the drain"}))
        .await;
    let stopped = app.stopped.take().expect("the server task");
    tokio::time::timeout(std::time::Duration::from_secs(120), stopped)
        .await
        .expect("the drain ends and the server stops")
        .unwrap()
        .unwrap();
    assert!(
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_sabotaged_database_answers_a_generic_500() {
    let app = TestApp::spawn().await;
    app.execute("alter table access_tokens rename to access_tokens_gone")
        .await;
    let response = app.create(&app.owner(), json!({"name": "x"})).await;
    let message = assert_error(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(message, "internal server error", "no internals leak");
    assert_error(
        app.list(&app.owner(), "").await,
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
}
