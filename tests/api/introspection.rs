//! Introspection (RFC 7662): client authentication, every inactive case, and active answers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    INTROSPECTION_CLIENT, INTROSPECTION_SECRET, TestApp, assert_error, eventually,
};

#[tokio::test]
async fn clients_must_authenticate_with_basic() {
    let app = TestApp::spawn().await;
    let created = app.create_ok(&app.owner(), json!({"name": "x"})).await;
    let jwt = created["token"].as_str().unwrap();
    let post = |user: Option<(&str, &str)>| {
        let mut request = app
            .client
            .post(app.url("/v1/access-tokens/introspect"))
            .form(&[("token", jwt)]);
        if let Some((id, secret)) = user {
            request = request.basic_auth(id, Some(secret));
        }
        request.send()
    };
    let wrong = "unknown client id or wrong secret";
    for (credentials, says) in [
        (None, "client credentials (HTTP Basic) are required"),
        (
            Some((INTROSPECTION_CLIENT, "wrong-secret-0123456789")),
            wrong,
        ),
        (Some(("someone", INTROSPECTION_SECRET)), wrong),
    ] {
        let response = post(credentials).await.unwrap();
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(
            assert_error(response, StatusCode::UNAUTHORIZED).await,
            says,
            "{credentials:?}"
        );
    }
    // A bearer token is not client authentication.
    let bearer = app
        .client
        .post(app.url("/v1/access-tokens/introspect"))
        .bearer_auth(app.owner())
        .form(&[("token", jwt)])
        .send()
        .await
        .unwrap();
    assert_error(bearer, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn without_a_configured_client_introspection_says_it_is_off() {
    let app = TestApp::spawn_with(|s| s.introspection_clients.clear()).await;
    let response = app
        .client
        .post(app.url("/v1/access-tokens/introspect"))
        .basic_auth(INTROSPECTION_CLIENT, Some(INTROSPECTION_SECRET))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        assert_error(response, StatusCode::UNAUTHORIZED).await,
        "introspection is off: no client is configured (INTROSPECTION_CLIENTS)"
    );
}

#[tokio::test]
async fn an_active_token_answers_its_claims() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(
            &app.owner(),
            json!({"name": "gateway", "assignments": ["1:viewer"], "expires_in": "1h"}),
        )
        .await;
    let jwt = created["token"].as_str().unwrap();
    let answer = app.introspect(jwt).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "api");
    assert_eq!(answer["sub"], created["id"]);
    assert_eq!(answer["jti"], created["id"]);
    assert_eq!(
        answer["iss"],
        format!("{}/v1/access-tokens", app.public_url)
    );
    assert_eq!(answer["org_id"], "1");
    assert_eq!(answer["user_id"], "u-1");
    assert_eq!(answer["username"], "u-1@example.com");
    assert_eq!(answer["assignments"], json!(["1:viewer"]));
    assert_eq!(answer["read_only"], false);
    assert!(answer["exp"].is_i64() && answer["iat"].is_i64());

    // JSON bodies are accepted too.
    let by_json: Value = app
        .client
        .post(app.url("/v1/access-tokens/introspect"))
        .basic_auth(INTROSPECTION_CLIENT, Some(INTROSPECTION_SECRET))
        .json(&json!({"token": jwt}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_json, answer);

    // Tokens of the other key sets are active too; contact identification ones while exp holds.
    let journey = app
        .create_ok(
            &app.owner(),
            json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
        )
        .await;
    let answer = app.introspect(journey["token"].as_str().unwrap()).await;
    assert_eq!(
        (answer["active"].as_bool(), answer["journey_id"].as_str()),
        (Some(true), Some("j1"))
    );
    let cid = app
        .create_ok(&app.owner(), json!({"name": "c", "token_type": "contact_identification", "portal_id": "p", "contact_id": "c", "surface_id": "s", "allowed_operations": [], "expires_in": 60}))
        .await;
    let answer = app.introspect(cid["token"].as_str().unwrap()).await;
    assert_eq!(
        (answer["active"].as_bool(), answer["token_type"].as_str()),
        (Some(true), Some("contact_identification"))
    );
}

#[tokio::test]
async fn every_token_that_is_not_currently_valid_is_inactive() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app.create_ok(&owner, json!({"name": "soon revoked"})).await;
    let jwt = created["token"].as_str().unwrap().to_owned();

    let ring = app.key_ring().await;
    let keys = ring.current();
    let signing = &keys.set(access_tokens::keys::KeySetName::Api).signing;
    let mut claims = app.verify("", &jwt).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    claims["exp"] = json!(now - 10);
    let expired = signing.sign(&claims).unwrap();
    let tampered = {
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"iss": "x", "org_id": "2"}).to_string(),
        );
        parts.join(".")
    };
    let unknown_kid = {
        let signer = crate::helpers::issuer_signer(1);
        signer.sign(&app.verify("", &jwt).await.unwrap()).unwrap()
    };
    let foreign_issuer = app.caller("1", &["1:owner"]);
    // Signed by the public set's key but claiming to be an api token: the set does not sign that type.
    let wrong_set = {
        let public = &keys.set(access_tokens::keys::KeySetName::Public).signing;
        let mut c = app.verify("", &jwt).await.unwrap();
        c["iss"] = json!(format!("{}/v1/access-tokens/public", app.public_url));
        public.sign(&c).unwrap()
    };

    for (token, why) in [
        ("garbage".to_owned(), "malformed"),
        ("a.b.c".to_owned(), "malformed segments"),
        (expired, "expired"),
        (tampered, "claims changed after signing"),
        (unknown_kid, "signed by a key this service does not publish"),
        (
            foreign_issuer,
            "a trusted issuer's token is not one of ours",
        ),
        (wrong_set, "signed by the wrong key set for its type"),
    ] {
        assert_eq!(
            app.introspect(&token).await,
            json!({"active": false}),
            "{why}"
        );
    }

    assert_eq!(app.introspect(&jwt).await["active"], true);
    app.revoke(&owner, created["id"].as_str().unwrap()).await;
    assert_eq!(
        app.introspect(&jwt).await,
        json!({"active": false}),
        "revoked"
    );
}

#[tokio::test]
async fn a_revoke_on_one_replica_reaches_another() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let created = a.create_ok(&a.owner(), json!({"name": "shared"})).await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(b.introspect(jwt).await["active"], true);
    assert_eq!(
        a.revoke(&a.owner(), created["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // The other replica learns of it by notification, which is not ordered with the revoke's
    // answer: it arrives milliseconds after it; the bound is generous, for a busy machine.
    let started = std::time::Instant::now();
    assert!(
        eventually(30, || async {
            b.introspect(jwt).await == json!({"active": false})
        })
        .await,
        "the other replica still answers active after {:?}",
        started.elapsed()
    );
    assert_eq!(b.list(jwt, "").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_introspection_requests_are_400_or_415() {
    let app = TestApp::spawn().await;
    let post = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/v1/access-tokens/introspect"))
            .basic_auth(INTROSPECTION_CLIENT, Some(INTROSPECTION_SECRET))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        post("application/x-www-form-urlencoded", "other=1")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post("application/x-www-form-urlencoded", "token=")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post("application/json", "{\"token\": 5}").await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // An array holding a string is not an object with a token (found by the API fuzzer).
    assert_error(
        post("application/json", "[\"eyJ.x.y\"]").await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_error(
        post("text/plain", "token=x").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}
