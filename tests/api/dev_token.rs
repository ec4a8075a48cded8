//! `access-tokens dev-token`: a caller for a fresh install without an identity provider.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::json;

use crate::binary::command;
use crate::helpers::{StoreKind, TestApp, database_env, test_kek_base64};

async fn dev_token(app: &TestApp, args: &[&str]) -> Output {
    dev_token_at(app, args, ("PUBLIC_URL", &app.public_url)).await
}

/// `dev-token` with `args` on the app's database, told where the service is by one variable
/// (`PUBLIC_URL`, or `LISTEN_ADDR` as `serve` would read it).
async fn dev_token_at(app: &TestApp, args: &[&str], (name, address): (&str, &str)) -> Output {
    let mut command = command();
    command
        .arg("dev-token")
        .args(args)
        .envs(database_env(&app.database))
        .env("KEY_ENCRYPTION_KEY", test_kek_base64())
        .env(name, address);
    run(command).await
}

/// Runs the command off the test's runtime, which keeps serving the app the command may call.
async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
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
    let output = if crate::helpers::store() == StoreKind::Postgres {
        let refused = dev_token(&app, &args).await;
        assert!(!refused.status.success());
        let message = stderr(&refused);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message.contains("--allow-production") && message.contains("PostgreSQL"),
            "says why: {message}"
        );
        dev_token(&app, &[&args[..], &["--allow-production"]].concat()).await
    } else {
        dev_token(&app, &args).await
    };
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("warning"),
        "the service answers at PUBLIC_URL with its JWKS: {}",
        stderr(&output)
    );
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
    )
    .await;
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("8:owner") && message.contains("organization 7"),
        "{message}"
    );
}

#[tokio::test]
async fn a_dev_token_for_an_address_where_the_service_does_not_answer_warns() {
    let app = TestApp::spawn().await;
    // A port that nothing listens on: bound, noted, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let owner_of_7 = [
        "--org",
        "7",
        "--user",
        "dev",
        "--role",
        "owner",
        "--allow-production",
    ];
    let listen = format!("127.0.0.1:{port}");
    let output = dev_token_at(&app, &owner_of_7, ("LISTEN_ADDR", &listen)).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "the token is still printed");
    assert!(
        message.contains(&format!(
            "warning: nothing answers at http://127.0.0.1:{port}/v1/access-tokens/.well-known/openid-configuration"
        )) && message.contains("LISTEN_ADDR, PUBLIC_URL and DATABASE_URL"),
        "{message}"
    );
    // The address is LISTEN_ADDR's, as serve derives it: the running service does not take it.
    let refused = app.list(&token, "").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // The running service under another name: `localhost` serves the same keys as 127.0.0.1,
    // but the service's issuer is 127.0.0.1's, so the token would be refused; the warning says so.
    let elsewhere = app.public_url.replace("127.0.0.1", "localhost");
    let output = dev_token_at(&app, &owner_of_7, ("PUBLIC_URL", &elsewhere)).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "warning: the service at {elsewhere} is the issuer"
        )),
        "{message}"
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(
        app.list(&token, "").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn dev_token_help_shows_only_the_options_it_uses() {
    let output = command().args(["dev-token", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for used in [
        "--org",
        "--user",
        "--role",
        "--expires-in",
        "--allow-production",
        "--database-url",
        "--key-encryption-key",
        "--listen-addr",
        "--public-url",
    ] {
        assert!(help.contains(used), "{used}: {help}");
    }
    for unused in [
        "--trusted-issuers",
        "--introspection-clients",
        "--rate-limit",
    ] {
        assert!(!help.contains(unused), "{unused}: {help}");
    }
    // Variables are named without their values, set or not.
    assert!(help.contains("[env: LISTEN_ADDR]"), "{help}");
    assert!(!help.contains("[env: LISTEN_ADDR="), "{help}");
}

#[test]
fn an_unknown_log_format_is_refused() {
    let output = command()
        .args(["keys", "list"])
        .env("LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("LOG_FORMAT=\"xml\"") && message.contains("json or pretty"),
        "{message}"
    );
}
