//! People who leave: an admin (or an operator, with the CLI) revokes every token a user created,
//! and every token made from them, on every replica, leaving other users' tokens alone.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually};

async fn offboard(app: &TestApp, bearer: &str, user: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/access-tokens/offboard"))
        .bearer_auth(bearer)
        .json(&json!({ "user_id": user }))
        .send()
        .await
        .unwrap()
}

fn id(token: &Value) -> String {
    token["id"].as_str().unwrap().to_owned()
}

async fn refused(app: &TestApp, token: &Value) -> bool {
    app.list(token["token"].as_str().unwrap(), "")
        .await
        .status()
        == StatusCode::UNAUTHORIZED
}

#[tokio::test]
async fn an_admin_revokes_everything_a_leaving_user_created_on_every_replica() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    let leaving = a.issuer.user("1", "leaving", &["1:viewer"]);
    let staying = a.issuer.user("1", "staying", &["1:viewer"]);
    let first = a.create_ok(&leaving, json!({"name": "ci"})).await;
    let second = a.create_ok(&leaving, json!({"name": "laptop"})).await;
    // Made from the first (its child), and a token of someone else.
    let child = a
        .create_ok(
            first["token"].as_str().unwrap(),
            json!({"name": "made by ci"}),
        )
        .await;
    let kept = a
        .create_ok(&staying, json!({"name": "someone else's"}))
        .await;

    // Not for a member.
    assert_error(
        offboard(&a, &staying, "leaving").await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let response = offboard(&a, &a.owner(), "leaving").await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    let mut revoked: Vec<String> = answer["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    revoked.sort();
    let mut expected = vec![id(&first), id(&second), id(&child)];
    expected.sort();
    assert_eq!(revoked, expected);
    for token in [&first, &second, &child] {
        assert!(refused(&a, token).await);
        assert!(eventually(10, || async { refused(other, token).await }).await);
    }
    assert!(!refused(other, &kept).await, "other users' tokens stay");

    // Each has its own event with the reason.
    let events = a.audit_events(&a.owner(), "?limit=100").await;
    let offboarded: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "revoked" && e["details"]["reason"] == "offboarded")
        .collect();
    assert_eq!(offboarded.len(), 3);
    assert!(
        offboarded
            .iter()
            .all(|e| e["details"]["user_id"] == "leaving")
    );

    // Again, or for a user nobody knows: nothing.
    let again: Value = offboard(&a, &a.owner(), "leaving")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, json!({"revoked": []}));
    let unknown: Value = offboard(&a, &a.owner(), "nobody")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unknown, json!({"revoked": []}));
    assert_error(offboard(&a, &a.owner(), "").await, StatusCode::BAD_REQUEST).await;
    // Another organization's admin revokes nothing here.
    let stranger = a.caller("2", &["2:owner"]);
    let theirs: Value = offboard(&a, &stranger, "staying")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs, json!({"revoked": []}));
    assert!(!refused(&a, &kept).await);
}

// Multi-threaded: the command's process is waited for on this thread while the app goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_offboards_with_the_cli_after_confirming() {
    let app = TestApp::spawn().await;
    let leaving = app.issuer.user("1", "leaving", &["1:viewer"]);
    let token = app.create_ok(&leaving, json!({"name": "ci"})).await;
    let args = ["tokens", "offboard", "--org", "1", "--user", "leaving"];
    let (ok, _, _) = crate::keys::cli(&app, &args, "no\n");
    assert!(!ok, "not confirmed: nothing revoked");
    assert!(!refused(&app, &token).await);
    let (ok, out, _) = crate::keys::cli(&app, &args, "yes\n");
    assert!(ok);
    assert!(out.contains(&id(&token)), "{out}");
    assert!(eventually(10, || async { refused(&app, &token).await }).await);
    let events = app
        .audit_events(&app.owner(), &format!("?token_id={}", id(&token)))
        .await;
    assert_eq!(events[0]["actor"], json!({"type": "operator"}));
    assert_eq!(events[0]["details"]["reason"], "offboarded");
}
