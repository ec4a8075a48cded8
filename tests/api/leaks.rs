//! When a token leaks: whoever holds it revokes it (`POST /revoke`, RFC 7009's form or a JSON
//! batch of up to a thousand), with an answer that says nothing of any token; the revocation
//! reaches every replica and the status lists like any other, and the owner's webhooks are told;
//! an organization's admin learns whose a found token is (`POST /identify`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually};
use crate::status_lists::{status_at, status_of_token};

async fn revoke_form(app: &TestApp, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/access-tokens/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn revoke_json(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/access-tokens/revoke"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn refused(app: &TestApp, token: &str) -> bool {
    app.list(token, "").await.status() == StatusCode::UNAUTHORIZED
}

#[tokio::test]
async fn whoever_holds_a_token_revokes_it_everywhere_and_learns_nothing() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    let owner = a.owner();
    let leaked = a
        .create_ok(&owner, json!({"name": "pasted in a ticket"}))
        .await;
    let token = leaked["token"].as_str().unwrap();
    // Whoever held it made a token with it.
    let made = a
        .create_ok(token, json!({"name": "made with the leaked one"}))
        .await;
    let (idx, uri) = status_of_token(&a, "", &leaked).await;
    assert!(!refused(other, token).await);

    // RFC 7009's form, no credentials: 200 and no body.
    let response = revoke_form(
        &a,
        &format!(
            "token={}&token_type_hint=access_token",
            crate::helpers::urlencode(token)
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.text().await.unwrap().is_empty());
    assert!(
        refused(&a, token).await,
        "refused at once where it was reported"
    );
    assert!(
        refused(&a, made["token"].as_str().unwrap()).await,
        "the tokens made from it go with it"
    );
    assert!(eventually(10, || async { refused(other, token).await }).await);
    assert!(eventually(10, || async { status_at(other, "", &uri, idx).await == 1 }).await);
    assert_eq!(a.introspect(token).await["active"], false);

    // Audited: no caller, the reason.
    let events = a
        .audit_events(
            &owner,
            &format!("?token_id={}", leaked["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(events[0]["action"], "revoked");
    assert_eq!(events[0]["actor"], json!({"type": "possession"}));
    assert_eq!(events[0]["details"]["reason"], "reported");

    // The same answer whatever was sent: revoked already, garbage, an identity provider's token,
    // an expired one. Nothing is recorded for them.
    // The same stored token, re-signed by the service's own key with an exp an hour ago.
    let expired = a
        .create_ok(&owner, json!({"name": "old", "expires_in": 60}))
        .await;
    let ring = a.key_ring().await;
    let keys = ring.current();
    let signing = &keys.set(access_tokens::keys::KeySetName::Api).signing;
    let mut claims = a
        .verify("", expired["token"].as_str().unwrap())
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired_jwt = signing.sign(&claims).unwrap();
    let cognito = a.issuer.user("1", "u1", &["1:owner"]);
    for sent in [token, "garbage", cognito.as_str(), expired_jwt.as_str()] {
        let response = revoke_form(&a, &format!("token={}", crate::helpers::urlencode(sent))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().await.unwrap().is_empty());
    }
    let after = a
        .audit_events(
            &owner,
            &format!("?token_id={}", leaked["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(after.len(), events.len(), "a second report records nothing");
    let still = a.list_ok(&owner, "?status=active").await;
    assert!(
        still.iter().any(|t| t["id"] == expired["id"]),
        "an expired JWT revokes nothing"
    );

    // A JSON batch: 202 with the count, whatever the tokens were.
    let second = a.create_ok(&owner, json!({"name": "second"})).await;
    let response = revoke_json(
        &a,
        &json!({"tokens": ["not a token", second["token"], token, ""]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"received": 4})
    );
    assert!(refused(&a, second["token"].as_str().unwrap()).await);
}

#[tokio::test]
async fn a_batch_holds_a_thousand_tokens_and_no_more() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let mut tokens = Vec::new();
    for n in 0..1000 {
        let created = app
            .create_ok(&owner, json!({"name": format!("fleet member {n:04} with a long name"), "assignments": ["1:owner", "1:viewer"]}))
            .await;
        tokens.push(created["token"].as_str().unwrap().to_owned());
    }
    let body = json!({ "tokens": tokens });
    assert!(
        body.to_string().len() > 1_000_000,
        "a real batch is over a megabyte"
    );
    let response = revoke_json(&app, &body).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.json::<Value>().await.unwrap()["received"], 1000);
    let active = app.list_ok(&owner, "?limit=1000").await;
    assert!(active.is_empty(), "{} still active", active.len());

    let mut over: Vec<Value> = tokens.iter().map(|t| json!(t)).collect();
    over.push(json!("one more"));
    let message = assert_error(
        revoke_json(&app, &json!({ "tokens": over })).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("1000"), "{message}");

    // Malformed: no token, another media type, another shape.
    assert_error(
        revoke_form(&app, "token_type_hint=access_token").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let plain = app
        .client
        .post(app.url("/v1/access-tokens/revoke"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(plain, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_error(
        revoke_json(&app, &json!({"token": "x"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A thousand strings of garbage are answered like any batch.
    let garbage: Vec<String> = (0..1000).map(|n| format!("eyJ{n}.garbage.{n}")).collect();
    let response = revoke_json(&app, &json!({ "tokens": garbage })).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn revocation_by_possession_is_limited_per_address() {
    let app = TestApp::spawn_with(|s| s.rate_limits.revoke_per_address = 3).await;
    for _ in 0..3 {
        assert_eq!(revoke_form(&app, "token=x").await.status(), StatusCode::OK);
    }
    let response = revoke_form(&app, "token=x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 60 && retry <= 3600, "an hour's window: {retry}");
}

#[tokio::test]
async fn an_admin_learns_whose_a_found_token_is() {
    let app = TestApp::spawn().await;
    let member = app.caller("1", &["1:viewer"]);
    let found = app.create_ok(&member, json!({"name": "in a log"})).await;
    let identify = |bearer: String, token: Value| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/access-tokens/identify"))
                .bearer_auth(bearer)
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap()
        }
    };
    let response = identify(app.owner(), found["token"].clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["id"], found["id"]);
    assert_eq!(item["created_by"], "u-1");
    assert_eq!(item["status"], "active");
    assert!(item.get("token").is_none());

    // Not for a member; the same 404 for another organization's admin and for garbage.
    assert_error(
        identify(member.clone(), found["token"].clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let stranger = app.caller("2", &["2:owner"]);
    let theirs = assert_error(
        identify(stranger, found["token"].clone()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let garbage = assert_error(
        identify(app.owner(), json!("garbage")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(theirs, garbage);

    // Revoked or expired, it is still told whose it is.
    app.revoke(&app.owner(), found["id"].as_str().unwrap())
        .await;
    let response = identify(app.owner(), found["token"].clone()).await;
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "revoked");
}
