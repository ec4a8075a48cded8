//! Identity providers other than Cognito, each started on loopback in the shape the real one has:
//! Keycloak (discovery, keys under `/protocol/openid-connect/certs`, bare role slugs at
//! `realm_access.roles`, the organization in a claim), Auth0 (an `iss` with a trailing slash,
//! namespaced claims) and Entra ID (a fixed organization, `roles`, `oid` as the user). Each signs a
//! user in who creates a token with the right roles; what does not match is a 403 that says why.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use access_tokens::issuers::IssuerSpec;
use access_tokens::issuers::mapping::parse_file;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::binary::{Served, command};
use crate::helpers::{
    TestApp, assert_error, database_env, fresh_database, issuer_public_jwk, issuer_signer,
};

/// An OpenID Connect provider on loopback: a discovery document under the issuer's path naming
/// `jwks_uri`, and the keys there (issuer key 0). `discovery_issuer` is what the document says
/// the issuer is (the real one unless a test wants them to differ).
struct Provider {
    /// The exact `iss` of its tokens.
    issuer: String,
    key_fetches: Arc<AtomicUsize>,
}

impl Provider {
    async fn spawn(issuer_path: &str, jwks_path: &str) -> Self {
        Self::spawn_claiming(issuer_path, jwks_path, None).await
    }

    async fn spawn_claiming(
        issuer_path: &str,
        jwks_path: &str,
        discovery_issuer: Option<&str>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}{issuer_path}");
        let document = json!({
            "issuer": discovery_issuer.map_or(issuer.clone(), str::to_owned),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}{jwks_path}"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let key_fetches = Arc::new(AtomicUsize::new(0));
        let counter = key_fetches.clone();
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer_path.trim_end_matches('/')
        );
        let router = axum::Router::new()
            .route(
                &discovery,
                get(move || {
                    let document = document.clone();
                    async move { axum::Json(document) }
                }),
            )
            .route(
                jwks_path,
                get(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { axum::Json(json!({ "keys": [issuer_public_jwk(0)] })) }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            issuer,
            key_fetches,
        }
    }

    /// A signed token of this provider with `claims` (`iss`, `iat`, `exp` added).
    fn token(&self, claims: Value) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut all = json!({"iss": self.issuer, "iat": now, "exp": now + 3600});
        all.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        issuer_signer(0).sign(&all).unwrap()
    }
}

/// The issuers of a `TRUSTED_ISSUERS_FILE` text (loopback http is allowed, as for any issuer).
fn file(text: &str) -> Vec<IssuerSpec> {
    parse_file(text, |_| Ok(())).unwrap()
}

async fn app_trusting(text: &str) -> TestApp {
    let specs = file(text);
    TestApp::spawn_with(|s| s.issuers_file = specs).await
}

async fn keycloak() -> Provider {
    Provider::spawn("/realms/acme", "/realms/acme/protocol/openid-connect/certs").await
}

fn keycloak_file(provider: &Provider) -> String {
    format!(
        r#"
[[issuer]]
url = "{}"
audiences = ["portal"]
organization_claim = "org_id"
roles_claim = "realm_access.roles"
roles_format = "slug"
"#,
        provider.issuer
    )
}

/// A Keycloak ID token: `aud` is the client, `azp` too; roles at `realm_access.roles`.
fn keycloak_user(provider: &Provider, org: &str, roles: &[&str]) -> String {
    provider.token(json!({
        "sub": "f1b2c3d4-kc-user", "typ": "ID", "azp": "portal", "aud": "portal",
        "preferred_username": "jane", "email": "jane@acme.example", "email_verified": true,
        "org_id": org,
        "realm_access": {"roles": roles},
    }))
}

#[tokio::test]
async fn a_keycloak_user_signs_in_through_discovery_and_creates_a_token_with_its_roles() {
    let provider = keycloak().await;
    let app = app_trusting(&keycloak_file(&provider)).await;
    let jane = keycloak_user(&provider, "42", &["owner", "default-roles-acme"]);

    let created = app
        .create_ok(&jane, json!({"name": "ci", "assignments": ["42:owner"]}))
        .await;
    assert_eq!(created["assignments"], json!(["42:owner"]));
    assert_eq!(created["created_by"], "f1b2c3d4-kc-user");
    // Keys came from the discovery document's jwks_uri (the provider serves no jwks.json).
    assert!(provider.key_fetches.load(Ordering::SeqCst) >= 1);
    // Inheriting: every slug is a role of the caller's organization.
    let all = app.create_ok(&jane, json!({"name": "all"})).await;
    let mut roles: Vec<String> = serde_json::from_value(all["assignments"].clone()).unwrap();
    roles.sort();
    assert_eq!(roles, ["42:default-roles-acme", "42:owner"]);
    // The token made is one of this service's, verified against the published JWKS.
    let token = created["token"].as_str().unwrap();
    let claims = app.verify("", token).await.unwrap();
    assert_eq!(claims["custom:ivy_org_id"], "42");
    assert_eq!(claims["assignments"], json!(["42:owner"]));

    // Another client of the realm is not the portal.
    let other_client = provider.token(json!({
        "sub": "u", "azp": "admin-cli", "aud": "account", "org_id": "42",
        "realm_access": {"roles": ["owner"]},
    }));
    assert_error(app.list(&other_client, "").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn roles_at_another_claim_are_a_403_naming_the_issuer_and_the_claim() {
    let provider = keycloak().await;
    let app = app_trusting(&keycloak_file(&provider)).await;
    let before = app.written().await;
    // The roles are where another mapping would put them, not at realm_access.roles.
    let misplaced = provider.token(json!({
        "sub": "u", "azp": "portal", "org_id": "42",
        "resource_access": {"portal": {"roles": ["owner"]}},
    }));
    for response in [
        app.create(&misplaced, json!({"name": "x"})).await,
        app.list(&misplaced, "").await,
    ] {
        let message = assert_error(response, StatusCode::FORBIDDEN).await;
        assert_eq!(
            message,
            format!(
                "the token of {} carries no roles at realm_access.roles: give the user a role there, or map the claim that holds its roles",
                provider.issuer
            )
        );
    }
    // A role id where a bare slug belongs is not taken as another organization's role.
    let foreign = keycloak_user(&provider, "42", &["7:owner"]);
    let message = assert_error(
        app.create(&foreign, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(message.contains("realm_access.roles"), "{message}");
    // No organization: the claim looked for is named.
    let homeless = provider.token(json!({
        "sub": "u", "azp": "portal", "realm_access": {"roles": ["owner"]},
    }));
    let message = assert_error(
        app.create(&homeless, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        message.starts_with(&format!(
            "the token of {} carries no organization at org_id",
            provider.issuer
        )),
        "{message}"
    );
    assert_eq!(app.written().await, before, "nothing was written");
}

#[tokio::test]
async fn a_cognito_caller_without_roles_is_told_so_too() {
    let app = TestApp::spawn().await;
    let nobody = app.issuer.user("1", "u-nobody", &[]);
    let message = assert_error(
        app.create(&nobody, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        message.starts_with(&format!(
            "the token of {} carries no roles at assignments",
            app.issuer.url
        )),
        "{message}"
    );
    // Roles of another organization only: none in the one it acts in.
    let elsewhere = app.issuer.user("1", "u-elsewhere", &["2:owner"]);
    let message = assert_error(app.list(&elsewhere, "").await, StatusCode::FORBIDDEN).await;
    assert!(
        message.contains("carries no roles of organization 1 at assignments"),
        "{message}"
    );
}

#[tokio::test]
async fn an_auth0_issuer_is_its_iss_exactly_with_the_trailing_slash_and_namespaced_claims() {
    // Auth0: iss "https://tenant.auth0.com/", discovery at /.well-known/openid-configuration, keys
    // at /.well-known/jwks.json, custom claims under a namespace URL.
    let provider = Provider::spawn("/", "/.well-known/jwks.json").await;
    assert!(provider.issuer.ends_with('/'));
    let app = app_trusting(&format!(
        r#"
[[issuer]]
url = "{}"
audiences = ["kx1Rclient"]
organization_claim = "https://example.com/org_id"
roles_claim = "https://example.com/roles"
"#,
        provider.issuer
    ))
    .await;
    let user = |iss: &str| {
        let now = chrono::Utc::now().timestamp();
        issuer_signer(0)
            .sign(&json!({
                "iss": iss, "iat": now, "exp": now + 3600,
                "sub": "auth0|65f1", "aud": ["https://api.example.com", "https://tenant.auth0.com/userinfo"],
                "azp": "kx1Rclient",
                "https://example.com/org_id": "77",
                "https://example.com/roles": ["admin"],
            }))
            .unwrap()
    };
    let created = app
        .create_ok(&user(&provider.issuer), json!({"name": "deploy"}))
        .await;
    assert_eq!(created["assignments"], json!(["77:admin"]));
    assert_eq!(created["created_by"], "auth0|65f1");
    // Without the slash it is another issuer, trusted by no one.
    let unslashed = user(provider.issuer.trim_end_matches('/'));
    assert_error(app.list(&unslashed, "").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn an_entra_id_tenant_is_one_organization_with_roles_and_oid_as_the_user() {
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let provider = Provider::spawn(
        &format!("/{tenant}/v2.0"),
        &format!("/{tenant}/discovery/v2.0/keys"),
    )
    .await;
    let app = app_trusting(&format!(
        r#"
[[issuer]]
url = "{}"
audiences = ["api://access-tokens"]
organization = "7"
user_claim = "oid"
roles_claim = "roles"
"#,
        provider.issuer
    ))
    .await;
    let user = provider.token(json!({
        "aud": "api://access-tokens", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81", "tid": tenant, "ver": "2.0",
        "preferred_username": "jane@contoso.example", "roles": ["owner", "viewer"],
    }));
    let created = app
        .create_ok(
            &user,
            json!({"name": "pipeline", "assignments": ["7:viewer"]}),
        )
        .await;
    assert_eq!(created["assignments"], json!(["7:viewer"]));
    assert_eq!(
        created["created_by"],
        "00000000-0000-0000-66f3-3332eca7ea81"
    );
    // The fixed organization is the only one: a claim naming another changes nothing.
    let listed = app.list_ok(&user, "").await;
    assert_eq!(listed.len(), 1);
    // Tokens without roles.
    let no_roles = provider.token(json!({"aud": "api://access-tokens", "oid": "o2"}));
    let message = assert_error(app.list(&no_roles, "").await, StatusCode::FORBIDDEN).await;
    assert!(message.contains("carries no roles at roles"), "{message}");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_yields_no_keys() {
    let provider = Provider::spawn_claiming(
        "/realms/acme",
        "/realms/acme/protocol/openid-connect/certs",
        Some("https://sso.example.com/realms/acme"),
    )
    .await;
    let app = app_trusting(&keycloak_file(&provider)).await;
    let jane = keycloak_user(&provider, "42", &["owner"]);
    assert_error(app.list(&jane, "").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(provider.key_fetches.load(Ordering::SeqCst), 0);
}

#[test]
fn mistakes_in_the_issuers_file_stop_start_up_with_one_line() {
    let folder = crate::helpers::fresh_folder();
    for (text, expected) in [
        (
            "[[issuer]]\nurl = \"https://sso.example.com/realms/acme\"\norganization_claim = \"org_id\"\nrole_claim = \"roles\"\n",
            "issuer https://sso.example.com/realms/acme: unknown field `role_claim`",
        ),
        (
            "[[issuer]]\nurl = \"https://sso.example.com/realms/acme\"\n",
            "issuer https://sso.example.com/realms/acme: no organization",
        ),
        (
            "[[issuer]]\nurl = \"http://sso.example.com/realms/acme\"\norganization = \"1\"\n",
            "ALLOW_INSECURE_ISSUERS=true",
        ),
    ] {
        let path = folder.join("issuers.toml");
        std::fs::write(&path, text).unwrap();
        let output = command()
            .current_dir(&folder)
            .args(["serve", "--listen-addr", "127.0.0.1:0"])
            .env("TRUSTED_ISSUERS_FILE", &path)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "access-tokens: TRUSTED_ISSUERS_FILE {}: ",
                path.display()
            )) && stderr.contains(expected),
            "{stderr}"
        );
        assert!(!folder.join("data").exists(), "nothing was created");
    }
    let output = command()
        .args(["serve", "--listen-addr", "127.0.0.1:0"])
        .env("TRUSTED_ISSUERS_FILE", folder.join("missing.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("TRUSTED_ISSUERS_FILE") && stderr.contains("cannot be read"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_logs_the_effective_trust_and_a_refusal_names_the_iss() {
    let provider = keycloak().await;
    let folder = crate::helpers::fresh_folder();
    let path = folder.join("issuers.toml");
    std::fs::write(&path, keycloak_file(&provider)).unwrap();
    let database = fresh_database().await;
    let kek = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 32]);
    let mut command = command();
    command
        .arg("serve")
        .envs(database_env(&database))
        .env("KEY_ENCRYPTION_KEY", &kek)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("TRUSTED_ISSUERS_FILE", &path);
    let served = Served::start(command);
    let base = served.base.clone();
    let stranger = issuer_signer(0)
        .sign(&json!({"iss": "https://stranger.example/realm", "sub": "s", "exp": chrono::Utc::now().timestamp() + 60}))
        .unwrap();
    let refused = reqwest::Client::new()
        .get(format!("{base}/v1/access-tokens"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let lines = tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    let entries: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let trusting = entries
        .iter()
        .find(|e| e["fields"]["message"] == "trusting issuer")
        .expect("the trust is logged");
    assert_eq!(trusting["fields"]["issuer"], provider.issuer);
    assert_eq!(trusting["fields"]["from"], "TRUSTED_ISSUERS_FILE");
    let mapping = trusting["fields"]["mapping"].as_str().unwrap();
    assert!(
        mapping.contains("organization claim org_id")
            && mapping.contains("roles realm_access.roles as slug")
            && mapping.contains("audiences portal"),
        "{mapping}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["fields"]["message"] == "token introspection"),
        "{lines:?}"
    );
    let refusal = entries
        .iter()
        .find(|e| e["fields"]["message"] == "caller refused")
        .expect("the refusal is logged");
    assert_eq!(refusal["fields"]["iss"], "https://stranger.example/realm");
    assert!(!lines.join("\n").contains(&stranger));
}
