//! Findings of a security review: failed introspection-client authentication is limited, a
//! client's request id is echoed only when it is a plain short id, and the embedded store's files
//! are readable by the service's user alone.

use access_tokens::config::{IntrospectionClient, RateLimitSettings};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    INTROSPECTION_CLIENT, INTROSPECTION_SECRET, StoreKind, TestApp, assert_error, assert_throttled,
};

const OTHER_CLIENT: &str = "other-gateway";
const OTHER_SECRET: &str = "other-gateway-secret-0123";

async fn introspect(app: &TestApp, id: &str, secret: &str, jwt: &str) -> Response {
    app.client
        .post(app.url("/v1/access-tokens/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", jwt)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_introspection_client_authentications_are_limited_per_address() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits = RateLimitSettings {
            failed_auth_per_address: 3,
            ..RateLimitSettings::OFF
        }
    })
    .await;
    let jwt = app.create_ok(&app.owner(), json!({"name": "x"})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = introspect(&app, INTROSPECTION_CLIENT, INTROSPECTION_SECRET, &jwt).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // Wrong secrets, unknown clients and missing credentials all count for the address.
    for (id, secret) in [
        (INTROSPECTION_CLIENT, "wrong-secret-0123456789"),
        ("nobody", INTROSPECTION_SECRET),
    ] {
        let response = introspect(&app, id, secret, &jwt).await;
        assert_error(response, StatusCode::UNAUTHORIZED).await;
    }
    let anonymous = app
        .client
        .post(app.url("/v1/access-tokens/introspect"))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED).await;
    let message =
        assert_throttled(introspect(&app, "nobody", "guess-0123456789", &jwt).await).await;
    assert!(message.contains("address"), "{message}");
    // The right secret waits too: the limit is checked before any secret is compared.
    assert_throttled(introspect(&app, INTROSPECTION_CLIENT, INTROSPECTION_SECRET, &jwt).await)
        .await;
    // It is the address's one budget: management calls from it wait as well.
    assert_throttled(app.list(&app.owner(), "").await).await;
}

#[tokio::test]
async fn failed_introspection_client_authentications_are_limited_per_client() {
    let app = TestApp::spawn_with(|s| {
        s.introspection_clients
            .push(IntrospectionClient::parse(&format!("{OTHER_CLIENT}:{OTHER_SECRET}")).unwrap());
        s.rate_limits = RateLimitSettings {
            failed_introspection_per_client: 2,
            ..RateLimitSettings::OFF
        }
    })
    .await;
    let jwt = app.create_ok(&app.owner(), json!({"name": "x"})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let response =
            introspect(&app, INTROSPECTION_CLIENT, "wrong-secret-0123456789", &jwt).await;
        assert_error(response, StatusCode::UNAUTHORIZED).await;
    }
    let message = assert_throttled(
        introspect(&app, INTROSPECTION_CLIENT, "wrong-secret-0123456789", &jwt).await,
    )
    .await;
    assert!(message.contains("client"), "{message}");
    assert_throttled(introspect(&app, INTROSPECTION_CLIENT, INTROSPECTION_SECRET, &jwt).await)
        .await;
    // Other clients are not affected, and made-up client ids are never counted per client.
    let other = introspect(&app, OTHER_CLIENT, OTHER_SECRET, &jwt).await;
    assert_eq!(other.status(), StatusCode::OK);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["active"], true);
    for _ in 0..5 {
        let response = introspect(&app, "nobody", "guess-0123456789", &jwt).await;
        assert_error(response, StatusCode::UNAUTHORIZED).await;
    }
}

fn request_id(response: &Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_clients_request_id_is_echoed_only_when_short_and_plain() {
    let app = TestApp::spawn().await;
    let with_id = |id: &str| {
        app.client
            .get(app.url("/health/live"))
            .header("x-request-id", id)
            .send()
    };
    let generated = request_id(&app.get("/health/live").await);
    assert!(
        !generated.is_empty() && generated.bytes().all(|b| b.is_ascii_hexdigit()),
        "{generated}"
    );
    for id in ["req-1", "0f3c:abc.DEF_9", &"a".repeat(128)] {
        let response = with_id(id).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(request_id(&response), id);
    }
    for id in [
        "r".repeat(2048),
        "a".repeat(129),
        "has space".to_owned(),
        "<script>".to_owned(),
        "a\"b".to_owned(),
        "tab\there".to_owned(),
    ] {
        let response = with_id(&id).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let echoed = request_id(&response);
        assert_ne!(echoed, id);
        assert!(
            echoed.len() <= 128 && echoed.bytes().all(|b| b.is_ascii_hexdigit()),
            "replaced by a generated id: {echoed}"
        );
    }
    // Error answers carry the generated id too.
    let response = app
        .client
        .get(app.url("/v1/access-tokens"))
        .header("x-request-id", "r".repeat(2048))
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&response).len(), generated.len());
    assert_error(response, StatusCode::UNAUTHORIZED).await;
}

/// The embedded store's folder, database, `-wal`, `-shm` and key file, as `serve` with no settings
/// creates them in `./data`, are the service user's alone. (The files are the embedded store's:
/// the test runs in the embedded store's suite.)
#[cfg(unix)]
#[tokio::test]
async fn the_embedded_stores_files_are_readable_by_the_service_user_alone() {
    use std::os::unix::fs::PermissionsExt;
    if crate::helpers::store() != StoreKind::Sqlite {
        return;
    }
    let folder = crate::helpers::fresh_folder();
    let mut command = crate::binary::command();
    command
        .arg("serve")
        .current_dir(&folder)
        .env("LISTEN_ADDR", "127.0.0.1:0");
    let served = crate::binary::Served::start(command);
    let ready = reqwest::get(format!("{}/health/ready", served.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let mode = |name: &str| {
        let path = folder.join(name);
        let metadata =
            std::fs::metadata(&path).unwrap_or_else(|e| panic!("{} exists: {e}", path.display()));
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode("data"), 0o700, "data folder");
    for file in [
        "data/access-tokens.db",
        "data/access-tokens.db-wal",
        "data/access-tokens.db-shm",
        "data/key-encryption-key",
    ] {
        assert_eq!(mode(file), 0o600, "{file}: {:o}", mode(file));
    }
    served.stop();
}
