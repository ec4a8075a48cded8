//! Every way a caller is refused: 401 with `WWW-Authenticate: Bearer`, and when a token was sent
//! `error="invalid_token"` with the reason (RFC 6750 section 3), the same reason in the JSON body.

use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, issuer_signer};

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The body of a 401 to a request that sent no bearer token.
pub const NO_TOKEN: &str = "a bearer token is required: send Authorization: Bearer <JWT>";

/// Asserts a 401 whose challenge and body give `reason`; `None`: no token was sent, so the
/// challenge names no error (RFC 6750 section 3.1).
pub async fn assert_refused_with(response: reqwest::Response, reason: Option<&str>, why: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let message = assert_error(response, StatusCode::UNAUTHORIZED).await;
    match reason {
        None => {
            assert_eq!(challenge, "Bearer", "{why}");
            assert_eq!(message, NO_TOKEN, "{why}");
        }
        Some(reason) => {
            assert_eq!(
                challenge,
                format!("Bearer error=\"invalid_token\", error_description=\"{reason}\""),
                "{why}"
            );
            assert_eq!(message, reason, "{why}: the body says the same");
        }
    }
    assert!(
        !message.contains("eyJ"),
        "the error never echoes a token: {message}"
    );
}

async fn assert_refused(
    app: &TestApp,
    authorization: Option<String>,
    reason: Option<&str>,
    why: &str,
) {
    let mut request = app.client.get(app.url("/v1/access-tokens"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    assert_refused_with(request.send().await.unwrap(), reason, why).await;
}

const MALFORMED: Option<&str> = Some("malformed token");

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

    let unknown_kid = app.issuer.token_of_unpublished_key("1", "u1");
    let bad_signature = Some("the signature does not verify");

    let cases = [
        (None, None, "no Authorization header"),
        (
            Some("Basic dXNlcjpwYXNz".to_owned()),
            None,
            "not a bearer token",
        ),
        (Some("Bearer".to_owned()), None, "empty bearer"),
        (Some("Bearer not.a.jwt".to_owned()), MALFORMED, "malformed"),
        (Some("Bearer abc".to_owned()), MALFORMED, "no dots"),
        (
            Some(format!("Bearer {alg_none}")),
            Some("the token's algorithm is not RS256"),
            "alg none",
        ),
        (
            Some(format!("Bearer {hs256}")),
            Some("the token's algorithm is not RS256"),
            "HS256",
        ),
        (
            Some(format!("Bearer {forged}")),
            bad_signature,
            "signed by another key",
        ),
        (
            Some(format!("Bearer {tampered}")),
            bad_signature,
            "claims changed after signing",
        ),
        (
            Some(format!("Bearer {expired}")),
            Some("the token has expired"),
            "expired",
        ),
        (
            Some(format!("Bearer {untrusted}")),
            Some("untrusted issuer"),
            "untrusted issuer",
        ),
        (
            Some(format!("Bearer {unknown_kid}")),
            Some("unknown signing key (kid)"),
            "a kid the issuer does not publish",
        ),
        (
            Some(format!("Bearer {no_exp}")),
            Some("the token has no exp claim"),
            "trusted issuer token without exp",
        ),
        (
            Some(format!("Bearer {oversized}")),
            Some("the token is larger than 8 KiB"),
            "over 8 KiB",
        ),
    ];
    for (authorization, reason, why) in cases {
        assert_refused(&app, authorization, reason, why).await;
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
    assert_refused(
        &app,
        Some(format!("Bearer {expired}")),
        Some("the token has expired"),
        "own token expired",
    )
    .await;
    claims["exp"] = json!(now + 3600);
    let renewed = signing.sign(&claims).unwrap();
    assert_eq!(
        app.list(&renewed, "").await.status(),
        StatusCode::OK,
        "only exp made the difference"
    );
}

/// RFC 7515 section 4.1.11: a JWS whose header lists `crit` extensions, none of which the service
/// understands, is refused, though its signature, issuer and claims hold: as a caller (own token
/// and trusted issuer's) and at introspection.
#[tokio::test]
async fn a_token_whose_header_carries_crit_is_refused_everywhere() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(&app.owner(), json!({"name": "crit", "token_type": "api"}))
        .await;
    let jwt = created["token"].as_str().unwrap();
    let claims = app.verify("", jwt).await.unwrap();
    let ring = app.key_ring().await;
    let keys = ring.current();
    let signing = &keys.set(access_tokens::keys::KeySetName::Api).signing;
    let with_header = |members: serde_json::Value, claims: &serde_json::Value| {
        signing
            .sign_with_members(members.as_object().unwrap(), claims)
            .unwrap()
    };
    let plain = with_header(json!({"typ": "JWT"}), &claims);
    assert_eq!(app.list(&plain, "").await.status(), StatusCode::OK);
    assert_eq!(app.introspect(&plain).await["active"], json!(true));

    for crit in [json!(["exp"]), json!([]), json!(["b64"])] {
        let members = json!({"typ": "JWT", "crit": crit, "exp": 1, "b64": true});
        let token = with_header(members, &claims);
        assert_refused(
            &app,
            Some(format!("Bearer {token}")),
            MALFORMED,
            "own, crit",
        )
        .await;
        assert_eq!(
            app.introspect(&token).await,
            json!({"active": false}),
            "introspection, crit {crit}"
        );
    }

    let user = app.issuer.user("123", "u-1", &["123:owner"]);
    assert_eq!(app.list(&user, "").await.status(), StatusCode::OK);
    let payload = user.split('.').nth(1).unwrap();
    let issuer_claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let issuer_token = issuer_signer(0)
        .sign_with_members(
            json!({"crit": ["exp"], "exp": 1}).as_object().unwrap(),
            &issuer_claims,
        )
        .unwrap();
    assert_refused(
        &app,
        Some(format!("Bearer {issuer_token}")),
        MALFORMED,
        "trusted issuer, crit",
    )
    .await;
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
        assert_refused(
            &app,
            Some(format!("Bearer {token}")),
            Some("unknown signing key (kid)"),
            "unknown kid",
        )
        .await;
    }
    assert!(
        app.issuer.fetches.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        app.issuer.fetches.load(Ordering::SeqCst)
    );
}
