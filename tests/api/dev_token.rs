//! `access-tokens dev-token`: a caller for a fresh install without an identity provider.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::json;

use crate::binary::command;
use crate::helpers::{StoreKind, TestApp, database_url, test_kek_base64};

fn dev_token(app: &TestApp, args: &[&str]) -> Output {
    command()
        .arg("dev-token")
        .args(args)
        .env("DATABASE_URL", database_url(&app.database))
        .env("KEY_ENCRYPTION_KEY", test_kek_base64())
        .env("PUBLIC_URL", &app.public_url)
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_dev_token_is_a_stored_caller_the_api_accepts_and_can_revoke() {
    let app = TestApp::spawn().await;
    let args = [
        "--org", "7", "--user", "dev", "--role", "owner", "--role", "7:admin",
    ];
    let output = if crate::STORE == StoreKind::Postgres {
        let refused = dev_token(&app, &args);
        assert!(!refused.status.success());
        let message = stderr(&refused);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.contains("--allow-production") && message.contains("PostgreSQL"),
            "says why: {message}"
        );
        dev_token(&app, &[&args[..], &["--allow-production"]].concat())
    } else {
        dev_token(&app, &args)
    };
    assert!(output.status.success(), "{}", stderr(&output));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "stdout is the token alone");

    // Signed by the api key set, as the published JWKS shows.
    let claims = app.verify("", &token).await.unwrap();
    assert_eq!(claims["org_id"], "7");
    assert_eq!(claims["user_id"], "dev");
    assert_eq!(claims["assignments"], json!(["7:owner", "7:admin"]));
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    // The management API takes it; the token is listed like any other.
    let created = app.create_ok(&token, json!({"name": "made by dev"})).await;
    assert_eq!(created["assignments"], json!(["7:owner", "7:admin"]));
    let listed = app.list_ok(&token, "").await;
    let dev = listed
        .iter()
        .find(|t| t["name"] == "dev caller dev")
        .expect("the dev caller is a stored token");
    let dev_id = dev["id"].as_str().unwrap();
    assert_eq!(claims["token_id"], dev_id);

    // Revoked, it calls no more.
    assert_eq!(app.revoke(&token, dev_id).await.status(), StatusCode::OK);
    assert_eq!(
        app.list(&token, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_role_of_another_organization_is_refused() {
    let app = TestApp::spawn().await;
    let output = dev_token(
        &app,
        &[
            "--org",
            "7",
            "--user",
            "dev",
            "--role",
            "8:owner",
            "--allow-production",
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("8:owner") && message.contains("organization 7"),
        "{message}"
    );
}
