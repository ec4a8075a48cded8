//! The settings page as the service serves it (the browser test, scripts/test-ui.sh, drives it):
//! its files with a strict Content-Security-Policy, and the development sign-in, which exists on
//! the embedded store only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StoreKind, TestApp, store};

#[tokio::test]
async fn the_page_is_served_with_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let root = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"], "/ui/");
    for (path, kind) in [
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        assert!(
            csp.contains("frame-ancestors https://portal.example.com"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let config: Value = app.get("/ui/config.json").await.json().await.unwrap();
    assert_eq!(config["oidc"], Value::Null);
    assert_eq!(config["embedders"], json!(["https://portal.example.com"]));
}

#[tokio::test]
async fn the_development_sign_in_exists_on_the_embedded_store_only() {
    let app = TestApp::spawn().await;
    let config: Value = app.get("/ui/config.json").await.json().await.unwrap();
    let response = app
        .client
        .post(app.url("/ui/dev-sign-in"))
        .json(&json!({"organization": "9", "user": "dev", "roles": ["owner"]}))
        .send()
        .await
        .unwrap();
    match store() {
        StoreKind::Postgres => {
            assert_eq!(config["development"], false);
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        StoreKind::Sqlite => {
            assert_eq!(config["development"], true);
            assert_eq!(response.status(), StatusCode::OK);
            let token: Value = response.json().await.unwrap();
            let caller = token["token"].as_str().unwrap();
            let listed = app.list_ok(caller, "").await;
            assert_eq!(listed[0]["name"], "dev caller dev");
            assert_eq!(listed[0]["assignments"], json!(["9:owner"]));
            let foreign = app
                .client
                .post(app.url("/ui/dev-sign-in"))
                .json(&json!({"organization": "9", "user": "dev", "roles": ["8:owner"]}))
                .send()
                .await
                .unwrap();
            assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
        }
    }
}
