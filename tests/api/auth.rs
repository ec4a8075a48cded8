//! Every way a caller is refused: 401 with `WWW-Authenticate: Bearer` and the JSON body.

use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, issuer_signer};

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn assert_refused(app: &TestApp, authorization: Option<String>, why: &str) {
    let mut request = app.client.get(app.url("/v1/access-tokens"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    assert_eq!(response.headers()["www-authenticate"], "Bearer", "{why}");
    let message = assert_error(response, StatusCode::UNAUTHORIZED).await;
    assert!(
        !message.contains("ey"),
        "the error never echoes a token: {message}"
    );
}

#[tokio::test]
async fn callers_without_a_valid_token_get_401() {
    let app = TestApp::spawn().await;
    let good = app.owner();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": app.issuer.url, "sub": "s", "custom:ivy_org_id": "1", "iat": now, "exp": now + 600});
    let kid = issuer_signer(0).kid().to_owned();

    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    // HS256 with the issuer's public modulus as the secret: the classic algorithm confusion.
    let jwks = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.issuer.url))
        .send()
        .await
        .unwrap();
    let jwks: serde_json::Value = jwks.json().await.unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    // Signed by a key the issuer does not publish, claiming the issuer's kid.
    let imposter = issuer_signer(1);
    let forged = {
        let real = issuer_signer(0);
        let token = imposter.sign(&claims).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let header = b64(&json!({"alg": "RS256", "typ": "JWT", "kid": real.kid()}));
        format!("{header}.{rest}")
    };
    let expired = app
        .issuer
        .token(json!({"sub": "s", "custom:ivy_org_id": "1", "iat": now - 7200, "exp": now - 3600}));
    let untrusted = app.issuer.token(json!({"iss": "https://cognito-idp.eu-central-1.amazonaws.com/other", "sub": "s", "custom:ivy_org_id": "1"}));
    let no_exp = issuer_signer(0)
        .sign(&json!({"iss": app.issuer.url, "sub": "s", "custom:ivy_org_id": "1"}))
        .unwrap();
    let tampered = {
        let (head, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let claims = b64(
            &json!({"iss": app.issuer.url, "sub": "s", "custom:ivy_org_id": "2", "exp": now + 600}),
        );
        format!("{head}.{claims}.{sig}")
    };
    let oversized = app
        .issuer
        .token(json!({"sub": "s", "custom:ivy_org_id": "1", "padding": "x".repeat(9000)}));

    let cases = [
        (None, "no Authorization header"),
        (Some("Basic dXNlcjpwYXNz".to_owned()), "not a bearer token"),
        (Some("Bearer".to_owned()), "empty bearer"),
        (Some("Bearer not.a.jwt".to_owned()), "malformed"),
        (Some("Bearer abc".to_owned()), "no dots"),
        (Some(format!("Bearer {alg_none}")), "alg none"),
        (Some(format!("Bearer {hs256}")), "HS256"),
        (Some(format!("Bearer {forged}")), "signed by another key"),
        (
            Some(format!("Bearer {tampered}")),
            "claims changed after signing",
        ),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {untrusted}")), "untrusted issuer"),
        (
            Some(format!("Bearer {no_exp}")),
            "trusted issuer token without exp",
        ),
        (Some(format!("Bearer {oversized}")), "over 8 KiB"),
    ];
    for (authorization, why) in cases {
        assert_refused(&app, authorization, why).await;
    }
    // The good token works, so the refusals above were for the stated reasons.
    assert_eq!(app.list(&good, "").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_own_token_past_its_exp_is_refused() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(
            &app.owner(),
            json!({"name": "short", "token_type": "app", "expires_in": 60}),
        )
        .await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(app.list(jwt, "").await.status(), StatusCode::OK);

    // The same token, re-signed by the service's own key with an exp an hour ago.
    let ring = app.key_ring().await;
    let keys = ring.current();
    let signing = &keys.set(access_tokens::keys::KeySetName::Api).signing;
    let mut claims = app.verify("", jwt).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let expired = signing.sign(&claims).unwrap();
    assert_refused(&app, Some(format!("Bearer {expired}")), "own token expired").await;
    claims["exp"] = json!(now + 3600);
    let renewed = signing.sign(&claims).unwrap();
    assert_eq!(
        app.list(&renewed, "").await.status(),
        StatusCode::OK,
        "only exp made the difference"
    );
}

#[tokio::test]
async fn unknown_kids_refetch_the_issuer_keys_at_most_once_per_cooldown() {
    let app = TestApp::spawn().await;
    assert_eq!(app.list(&app.owner(), "").await.status(), StatusCode::OK);
    let after_first = app.issuer.fetches.load(Ordering::SeqCst);
    assert_eq!(after_first, 1, "keys are fetched once and cached");
    for _ in 0..5 {
        assert_eq!(app.list(&app.owner(), "").await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.issuer.fetches.load(Ordering::SeqCst),
        1,
        "cached keys are not fetched again"
    );

    // A flood of random kids: within the cooldown none of them causes another fetch.
    let now = chrono::Utc::now().timestamp();
    let signer = issuer_signer(1);
    for i in 0..20 {
        let mut token = signer.sign(&json!({"iss": app.issuer.url, "sub": "s", "custom:ivy_org_id": "1", "exp": now + 60})).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        token = format!(
            "{}.{rest}",
            b64(&json!({"alg": "RS256", "typ": "JWT", "kid": format!("random-{i}")}))
        );
        assert_refused(&app, Some(format!("Bearer {token}")), "unknown kid").await;
    }
    assert!(
        app.issuer.fetches.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        app.issuer.fetches.load(Ordering::SeqCst)
    );
}
