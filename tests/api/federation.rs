//! Tokens for CI without secrets: an admin trusts a CI platform's OIDC tokens once (a federated
//! credential), and a job exchanges the token its platform gives it for an assume token (RFC
//! 8693). The platform is an OIDC issuer started on loopback, with GitHub Actions' claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_error, eventually, issuer_public_jwk, issuer_signer, urlencode,
};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const AUDIENCE: &str = "https://tokens.example.com";

/// A CI platform's OIDC issuer: discovery at `/.well-known/openid-configuration`, keys (issuer
/// key 0, RS256, and a P-256 key for ES256) at `/.well-known/jwks`, as GitHub Actions serves them.
struct Platform {
    issuer: String,
    ec: Arc<aws_lc_rs::signature::EcdsaKeyPair>,
}

const EC_KID: &str = "ec-p256";

/// A P-256 key pair for ES256.
fn ec_pair() -> aws_lc_rs::signature::EcdsaKeyPair {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
}

/// The public JWK of a P-256 pair.
fn ec_jwk(pair: &aws_lc_rs::signature::EcdsaKeyPair) -> Value {
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine;
    let point = pair.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": EC_KID,
           "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

/// `claims` signed with ES256 by `pair`, as compact JWS.
fn es256(pair: &aws_lc_rs::signature::EcdsaKeyPair, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": EC_KID});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let signature = pair.sign(&rng, signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(signature.as_ref()))
}

static JTI: AtomicUsize = AtomicUsize::new(0);

impl Platform {
    async fn spawn() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let ec = Arc::new(ec_pair());
        let keys = json!({ "keys": [issuer_public_jwk(0), ec_jwk(&ec)] });
        let document = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/.well-known/jwks"),
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let router = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let document = document.clone();
                    async move { axum::Json(document) }
                }),
            )
            .route(
                "/.well-known/jwks",
                get(move || {
                    let keys = keys.clone();
                    async move { axum::Json(keys) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { issuer, ec }
    }

    /// A job's token of `repository` at `git_ref`, with `changes` applied (a `null` removes a
    /// claim), signed by issuer key `key`.
    fn job_token(&self, repository: &str, git_ref: &str, key: usize, changes: Value) -> String {
        issuer_signer(key)
            .sign(&self.job_claims(repository, git_ref, changes))
            .unwrap()
    }

    /// A job's claims, as [`Platform::job_token`] signs them.
    fn job_claims(&self, repository: &str, git_ref: &str, changes: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let jti = format!(
            "job-{}-{}",
            std::process::id(),
            JTI.fetch_add(1, Ordering::SeqCst)
        );
        let mut claims = json!({
            "jti": jti, "sub": format!("repo:{repository}:ref:{git_ref}"), "aud": AUDIENCE,
            "ref": git_ref, "sha": "a1b2c3", "repository": repository,
            "repository_owner": repository.split('/').next().unwrap(),
            "run_id": "7", "event_name": "push", "ref_type": "branch",
            "job_workflow_ref": format!("{repository}/.github/workflows/deploy.yml@{git_ref}"),
            "iss": self.issuer, "nbf": now - 5, "iat": now - 5, "exp": now + 300,
        });
        let object = claims.as_object_mut().unwrap();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                object.remove(name);
            } else {
                object.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    fn main_job(&self) -> String {
        self.job_token("acme/app", "refs/heads/main", 0, json!({}))
    }
}

async fn app_with(platform: &Platform) -> TestApp {
    let issuer = platform.issuer.clone();
    TestApp::spawn_with(|s| s.federation_issuers = vec![issuer]).await
}

/// An admin of organization 1 who also holds `deployer`.
fn admin(app: &TestApp) -> String {
    app.caller("1", &["1:owner", "1:deployer"])
}

async fn create_credential(app: &TestApp, bearer: &str, body: Value) -> Response {
    app.client
        .post(app.url("/v1/access-tokens/federated-credentials"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn main_branch(platform: &Platform) -> Value {
    json!({
        "name": "deploy from main", "issuer": platform.issuer, "audience": AUDIENCE,
        "claims": {"repository": "acme/app", "ref": "refs/heads/main"},
        "assignments": ["1:deployer"],
    })
}

async fn exchange_form(app: &TestApp, form: &[(&str, &str)]) -> Response {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    app.client
        .post(app.url("/v1/access-tokens/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn exchange(app: &TestApp, subject_token: &str) -> Response {
    exchange_form(
        app,
        &[
            ("grant_type", GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", JWT),
        ],
    )
    .await
}

/// The refusal's `error_description`, after checking the RFC 6749 body and `error`.
async fn refused(response: Response, error: &str) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    body["error_description"].as_str().unwrap().to_owned()
}

async fn exchanged(response: Response) -> String {
    let status = response.status();
    let cache = response.headers().get("cache-control").cloned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache.unwrap(), "no-store");
    assert_eq!(body["issued_token_type"], JWT);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_ci_job_exchanges_its_token_for_one_with_exactly_the_credentials_roles() {
    let platform = Platform::spawn().await;
    let app = app_with(&platform).await;
    let credential: Value = create_credential(&app, &admin(&app), main_branch(&platform))
        .await
        .json()
        .await
        .unwrap();
    let id = credential["id"].as_str().unwrap().to_owned();
    assert_eq!(credential["assignments"], json!(["1:deployer"]));

    let job = platform.main_job();
    let token = exchanged(exchange(&app, &job).await).await;
    // A third-party library verifies it against the published JWKS.
    let claims = app.verify("", &token).await.unwrap();
    assert_eq!(claims["token_type"], "assume");
    assert_eq!(claims["assignments"], json!(["1:deployer"]));
    assert!(claims["status"]["status_list"]["uri"].is_string());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);
    // It calls the API with those roles and no more.
    assert_eq!(app.list(&token, "").await.status(), StatusCode::OK);
    assert_error(
        app.create(&token, json!({"name": "x", "assignments": ["1:owner"]}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Stored and listed like any other, created by the credential.
    let listed = app.list_ok(&app.owner(), "").await;
    let stored = listed
        .iter()
        .find(|t| t["token_type"] == "assume")
        .expect("listed");
    assert_eq!(stored["created_by"], format!("federated:{id}"));
    let events = app
        .audit_events(
            &app.owner(),
            &format!("?token_id={}", stored["id"].as_str().unwrap()),
        )
        .await;
    let created = events.iter().find(|e| e["action"] == "created").unwrap();
    assert_eq!(created["actor"]["user_id"], format!("federated:{id}"));
    assert_eq!(created["details"]["workload"]["iss"], platform.issuer);
    assert_eq!(
        created["details"]["workload"]["sub"],
        "repo:acme/app:ref:refs/heads/main"
    );
    assert!(created["details"]["workload"]["jti"].is_string());
    assert!(!created.to_string().contains(&job), "never the token");
    let org_events = app.audit_events(&app.owner(), "").await;
    assert!(
        org_events
            .iter()
            .any(|e| e["action"] == "federated_credential_created")
    );
}

#[tokio::test]
async fn every_mismatch_is_invalid_request_and_stores_nothing() {
    let platform = Platform::spawn().await;
    let unlisted = Platform::spawn().await;
    let app = app_with(&platform).await;
    create_credential(&app, &admin(&app), main_branch(&platform)).await;
    let replica = app
        .another_replica_with(|s| s.federation_issuers = vec![platform.issuer.clone()])
        .await;
    let before = app.written().await;
    let now = chrono::Utc::now().timestamp();
    let hs256 = {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": issuer_signer(0).kid()});
        let claims = json!({"iss": platform.issuer, "sub": "repo:acme/app:ref:refs/heads/main",
            "aud": AUDIENCE, "repository": "acme/app", "ref": "refs/heads/main", "jti": "h",
            "iat": now, "exp": now + 300});
        format!("{}.{}.c2lnbmF0dXJl", b64(&header), b64(&claims))
    };
    let cases = [
        (
            platform.job_token("acme/other", "refs/heads/main", 0, json!({})),
            "matches its sub and claims",
        ),
        (
            platform.job_token("acme/app", "refs/heads/feature", 0, json!({})),
            "matches its sub and claims",
        ),
        (
            platform.job_token(
                "acme/app",
                "refs/heads/main",
                0,
                json!({"aud": "sts.amazonaws.com"}),
            ),
            "accepts its aud",
        ),
        (unlisted.main_job(), "FEDERATION_ISSUERS"),
        (
            platform.job_token(
                "acme/app",
                "refs/heads/main",
                0,
                json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600}),
            ),
            "expired",
        ),
        (
            platform.job_token("acme/app", "refs/heads/main", 0, json!({"iat": now + 600})),
            "future",
        ),
        (
            platform.job_token("acme/app", "refs/heads/main", 1, json!({})),
            "key its issuer does not publish",
        ),
        (hs256, "RS256"),
        (
            platform.job_token("acme/app", "refs/heads/main", 0, json!({"jti": null})),
            "jti",
        ),
        ("not.a.jwt".to_owned(), "JWT"),
    ];
    for (token, says) in &cases {
        let description = refused(exchange(&app, token).await, "invalid_request").await;
        assert!(description.contains(says), "{says}: {description}");
        assert!(!description.contains(token.as_str()));
    }
    assert_eq!(app.written().await, before, "nothing was stored");

    let wrong_grant = exchange_form(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("subject_token", &platform.main_job()),
            ("subject_token_type", JWT),
        ],
    )
    .await;
    refused(wrong_grant, "unsupported_grant_type").await;
    let not_a_form = app
        .client
        .post(app.url("/v1/access-tokens/token"))
        .json(&json!({"grant_type": GRANT}))
        .send()
        .await
        .unwrap();
    refused(not_a_form, "invalid_request").await;

    // A replayed jti, on another replica where there is one.
    let job = platform.main_job();
    exchanged(exchange(&app, &job).await).await;
    let second = replica.as_ref().unwrap_or(&app);
    let description = refused(exchange(second, &job).await, "invalid_request").await;
    assert!(description.contains("exchanged before"), "{description}");
}

#[tokio::test]
async fn only_admins_make_credentials_and_never_with_roles_they_lack() {
    let platform = Platform::spawn().await;
    let app = app_with(&platform).await;
    let member = app.issuer.user("1", "u-member", &["1:deployer"]);
    assert_error(
        create_credential(&app, &member, main_branch(&platform)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let owner_only = app.caller("1", &["1:owner"]);
    assert_error(
        create_credential(&app, &owner_only, main_branch(&platform)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    for (change, says) in [
        (
            json!({"issuer": "https://token.actions.githubusercontent.com"}),
            "FEDERATION_ISSUERS",
        ),
        (json!({"claims": null, "subject": null}), "subject"),
        (json!({"claims": {}}), "claims is empty"),
        (json!({"claims": {"ref": 5}}), "claims.ref"),
        (json!({"audience": ""}), "audience"),
    ] {
        let mut body = main_branch(&platform);
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let message = assert_error(
            create_credential(&app, &admin(&app), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains(says), "{body}: {message}");
    }
    // Another organization's credential is a 404.
    let made: Value = create_credential(&app, &admin(&app), main_branch(&platform))
        .await
        .json()
        .await
        .unwrap();
    let other = app.caller("2", &["2:owner"]);
    let response = app
        .client
        .get(app.url(&format!(
            "/v1/access-tokens/federated-credentials/{}",
            made["id"].as_str().unwrap()
        )))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_FOUND).await;
    let pages = app
        .pages(
            &admin(&app),
            "/v1/access-tokens/federated-credentials?limit=1",
        )
        .await;
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 1);
}

#[tokio::test]
async fn a_token_matching_several_organizations_must_name_one() {
    let platform = Platform::spawn().await;
    let app = app_with(&platform).await;
    create_credential(&app, &admin(&app), main_branch(&platform)).await;
    let mut theirs = main_branch(&platform);
    theirs["assignments"] = json!(["2:owner"]);
    let status = create_credential(&app, &app.caller("2", &["2:owner"]), theirs)
        .await
        .status();
    assert_eq!(status, StatusCode::CREATED);
    let description = refused(
        exchange(&app, &platform.main_job()).await,
        "invalid_request",
    )
    .await;
    assert!(
        description.contains("several organizations"),
        "{description}"
    );
    let job = platform.main_job();
    let token = exchanged(
        exchange_form(
            &app,
            &[
                ("grant_type", GRANT),
                ("subject_token", &job),
                ("subject_token_type", JWT),
                ("organization", "2"),
            ],
        )
        .await,
    )
    .await;
    let claims = app.verify("", &token).await.unwrap();
    assert_eq!(claims["org_id"], "2");
}

#[tokio::test]
async fn deleting_a_credential_revokes_its_tokens_everywhere() {
    let platform = Platform::spawn().await;
    let app = app_with(&platform).await;
    let replica = app.another_replica().await;
    let credential: Value = create_credential(&app, &admin(&app), main_branch(&platform))
        .await
        .json()
        .await
        .unwrap();
    let id = credential["id"].as_str().unwrap().to_owned();
    let token = exchanged(exchange(&app, &platform.main_job()).await).await;
    let child = app
        .create_ok(
            &token,
            json!({"name": "made by the job", "token_type": "assume"}),
        )
        .await;
    let child = child["token"].as_str().unwrap().to_owned();
    let apps: Vec<&TestApp> = std::iter::once(&app).chain(replica.as_ref()).collect();
    for a in &apps {
        assert_eq!(a.list(&token, "").await.status(), StatusCode::OK);
    }
    let deleted = app
        .client
        .delete(app.url(&format!("/v1/access-tokens/federated-credentials/{id}")))
        .bearer_auth(admin(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for a in &apps {
        for t in [&token, &child] {
            let gone = eventually(10, || async {
                a.list(t, "").await.status() == StatusCode::UNAUTHORIZED
            })
            .await;
            assert!(gone, "refused on every replica");
        }
    }
    let again = app
        .client
        .get(app.url(&format!("/v1/access-tokens/federated-credentials/{id}")))
        .bearer_auth(admin(&app))
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::NOT_FOUND).await;
    let description = refused(
        exchange(&app, &platform.main_job()).await,
        "invalid_request",
    )
    .await;
    assert!(
        description.contains("no federated credential"),
        "{description}"
    );
    let events = app.audit_events(&app.owner(), "").await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "federated_credential_deleted")
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "revoked" && e["details"]["reason"] == "credential_deleted")
            .count(),
        2,
        "the token and its child"
    );
}

#[tokio::test]
async fn an_es256_workload_token_is_taken_with_its_keys_algorithm_only() {
    let platform = Platform::spawn().await;
    let app = app_with(&platform).await;
    create_credential(&app, &admin(&app), main_branch(&platform)).await;
    let claims = platform.job_claims("acme/app", "refs/heads/main", json!({}));
    let token = exchanged(exchange(&app, &es256(&platform.ec, &claims)).await).await;
    assert_eq!(app.list(&token, "").await.status(), StatusCode::OK);
    // Another P-256 key under the published kid does not verify.
    let forged = es256(
        &ec_pair(),
        &platform.job_claims("acme/app", "refs/heads/main", json!({})),
    );
    let description = refused(exchange(&app, &forged).await, "invalid_request").await;
    assert!(description.contains("signature"), "{description}");
    // The RS256 key's kid under an ES256 header: the key decides the algorithm.
    let mixed = {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": issuer_signer(0).kid()});
        let claims = platform.job_claims("acme/app", "refs/heads/main", json!({}));
        format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(&[7u8; 64])
        )
    };
    let description = refused(exchange(&app, &mixed).await, "invalid_request").await;
    assert!(description.contains("algorithm"), "{description}");
    // A person's ES256 token is no caller: callers stay RS256.
    let person = es256(
        &platform.ec,
        &json!({"iss": app.issuer.url, "sub": "s", "exp": chrono::Utc::now().timestamp() + 60,
                "token_use": "id", "custom:ivy_org_id": "1", "assignments": ["1:owner"]}),
    );
    assert_error(app.list(&person, "").await, StatusCode::UNAUTHORIZED).await;
}
