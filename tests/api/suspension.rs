//! Suspending and resuming tokens: refused while suspended, on every replica; valid again once
//! resumed; revoking a suspended token is for good.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn jwt(v: &Value) -> &str {
    v["token"].as_str().unwrap()
}

async fn act(app: &TestApp, bearer: &str, id: &str, action: &str) -> Response {
    app.client
        .post(app.url(&format!("/v1/access-tokens/{id}/{action}")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

async fn act_ok(app: &TestApp, bearer: &str, id: &str, action: &str) -> Value {
    let response = act(app, bearer, id, action).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{action}: {body}");
    body
}

/// A token made by the owner, one made by it, and one made by that one, each asking for less time
/// than its maker has left.
async fn three_generations(app: &TestApp) -> [Value; 3] {
    let parent = app
        .create_ok(&app.owner(), json!({"name": "parent", "expires_in": "1d"}))
        .await;
    let child = app
        .create_ok(jwt(&parent), json!({"name": "child", "expires_in": "1h"}))
        .await;
    let grandchild = app
        .create_ok(
            jwt(&child),
            json!({"name": "grandchild", "expires_in": "30m"}),
        )
        .await;
    [parent, child, grandchild]
}

#[tokio::test]
async fn a_suspended_token_is_refused_until_it_is_resumed() {
    let app = TestApp::spawn().await;
    let token = app.create_ok(&app.owner(), json!({"name": "ci"})).await;
    assert_eq!(token["status"], "active");
    assert_eq!(app.list(jwt(&token), "").await.status(), StatusCode::OK);

    let suspended = act_ok(&app, &app.owner(), &id(&token), "suspend").await;
    assert_eq!(suspended["status"], "suspended");
    assert!(suspended["suspended_at"].is_string());
    let refused = app.list(jwt(&token), "").await;
    assert_eq!(
        refused.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="the token is suspended""#
    );
    let message = assert_error(refused, StatusCode::UNAUTHORIZED).await;
    assert_eq!(message, "the token is suspended");
    assert_eq!(app.introspect(jwt(&token)).await, json!({"active": false}));
    // Listed by default (it is not revoked) with its status, and by `status=suspended`.
    let listed = app.list_ok(&app.owner(), "").await;
    assert_eq!(listed[0]["status"], "suspended");
    let only = app.list_ok(&app.owner(), "?status=suspended").await;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["id"], token["id"]);
    // Suspending again answers the item and records nothing more.
    act_ok(&app, &app.owner(), &id(&token), "suspend").await;

    let resumed = act_ok(&app, &app.owner(), &id(&token), "resume").await;
    assert_eq!(resumed["status"], "active");
    assert!(resumed.get("suspended_at").is_none());
    assert_eq!(app.list(jwt(&token), "").await.status(), StatusCode::OK);
    assert_eq!(app.introspect(jwt(&token)).await["active"], true);
    assert!(
        app.list_ok(&app.owner(), "?status=suspended")
            .await
            .is_empty()
    );
    let actions: Vec<Value> = app
        .audit_events(&app.owner(), "")
        .await
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        actions,
        [json!("resumed"), json!("suspended"), json!("created")]
    );
}

#[tokio::test]
async fn revoking_a_suspended_token_is_for_good() {
    let app = TestApp::spawn().await;
    let token = app.create_ok(&app.owner(), json!({"name": "ci"})).await;
    act_ok(&app, &app.owner(), &id(&token), "suspend").await;
    assert_error(
        app.rotate(&app.owner(), &id(&token)).await,
        StatusCode::CONFLICT,
    )
    .await;
    let revoked: Value = app
        .revoke(&app.owner(), &id(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["status"], "revoked");
    for action in ["resume", "suspend"] {
        assert_error(
            act(&app, &app.owner(), &id(&token), action).await,
            StatusCode::CONFLICT,
        )
        .await;
    }
    assert_error(app.list(jwt(&token), "").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn suspension_follows_the_rules_of_revoking_and_writes_nothing_when_refused() {
    let app = TestApp::spawn().await;
    let admin_token = app
        .create_ok(
            &app.owner(),
            json!({"name": "owner's", "assignments": ["1:owner"]}),
        )
        .await;
    let member = app.issuer.user("1", "member", &["1:viewer"]);
    let read_only = app
        .create_ok(&app.owner(), json!({"name": "ro", "read_only": true}))
        .await;
    let events = app.audit_events(&app.owner(), "").await.len();
    for action in ["suspend", "resume"] {
        // Another user's token: 404 to a member.
        assert_error(
            act(&app, &member, &id(&admin_token), action).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        // Read-only tokens change nothing.
        assert_error(
            act(&app, jwt(&read_only), &id(&admin_token), action).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        // Unknown ids and contact identification ids (never stored) are 404.
        assert_error(
            act(&app, &app.owner(), "api_0000000000000000", action).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_error(
            act(&app, &app.owner(), "nonsense", action).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_eq!(app.audit_events(&app.owner(), "").await.len(), events);
    // An admin without the token's roles suspends it (that hands nothing out), but cannot hand
    // the credential back: resuming needs every role it carries.
    let other_admin = app.issuer.user("1", "boss", &["1:admin"]);
    let suspended = act_ok(&app, &other_admin, &id(&admin_token), "suspend").await;
    assert_eq!(suspended["status"], "suspended");
    let events = app.audit_events(&app.owner(), "").await.len();
    assert_error(
        act(&app, &other_admin, &id(&admin_token), "resume").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(app.audit_events(&app.owner(), "").await.len(), events);
    let item: Value = app
        .get_token(&app.owner(), &id(&admin_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(item["status"], "suspended");
    assert_eq!(
        act_ok(&app, &app.owner(), &id(&admin_token), "resume").await["status"],
        "active"
    );
}

#[tokio::test]
async fn every_replica_refuses_a_suspended_token_and_accepts_it_once_resumed() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let token = a.create_ok(&a.owner(), json!({"name": "shared"})).await;
    assert_eq!(b.list(jwt(&token), "").await.status(), StatusCode::OK);
    act_ok(&a, &a.owner(), &id(&token), "suspend").await;
    assert!(
        eventually(30, || async {
            b.list(jwt(&token), "").await.status() == StatusCode::UNAUTHORIZED
        })
        .await
    );
    assert_eq!(b.introspect(jwt(&token)).await["active"], false);
    // Resumed on B, usable on A again.
    act_ok(&b, &b.owner(), &id(&token), "resume").await;
    assert!(
        eventually(30, || async {
            a.list(jwt(&token), "").await.status() == StatusCode::OK
        })
        .await
    );
    // A replica that starts while a token is suspended refuses it from the start.
    act_ok(&a, &a.owner(), &id(&token), "suspend").await;
    let c = a.replica().await;
    assert_error(c.list(jwt(&token), "").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn an_admins_suspension_is_lifted_only_by_an_admin() {
    let app = TestApp::spawn().await;
    let member = app.issuer.user("1", "member", &["1:viewer"]);
    let token = app.create_ok(&member, json!({"name": "member's"})).await;
    // The member suspends and resumes their own token.
    act_ok(&app, &member, &id(&token), "suspend").await;
    act_ok(&app, &member, &id(&token), "resume").await;
    // Suspended by an admin, the member cannot lift it; an admin can.
    act_ok(&app, &app.owner(), &id(&token), "suspend").await;
    let events = app.audit_events(&app.owner(), "").await.len();
    let message = assert_error(
        act(&app, &member, &id(&token), "resume").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(message.contains("only an admin"), "{message}");
    assert_eq!(app.audit_events(&app.owner(), "").await.len(), events);
    let admin = app.issuer.user("1", "boss", &["1:admin", "1:viewer"]);
    assert_eq!(
        act_ok(&app, &admin, &id(&token), "resume").await["status"],
        "active"
    );
    // Once lifted, the next suspension is the member's own again.
    act_ok(&app, &member, &id(&token), "suspend").await;
    act_ok(&app, &member, &id(&token), "resume").await;
}

#[tokio::test]
async fn a_token_never_resumes_a_token_it_descends_from() {
    let app = TestApp::spawn().await;
    let [parent, child, grandchild] = three_generations(&app).await;
    assert_eq!(child["parent_id"], parent["id"]);
    // The child is suspended with its parent, so it cannot call at all; and were it able to, the
    // service refuses a resumption by a token descending from the suspended one (403).
    act_ok(&app, &app.owner(), &id(&parent), "suspend").await;
    for descendant in [&child, &grandchild] {
        let refused = act(&app, jwt(descendant), &id(&parent), "resume").await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&refused.status()),
            "{}",
            refused.status()
        );
    }
    act_ok(&app, &app.owner(), &id(&parent), "resume").await;
    // Suspended again, the same holds: only a caller outside the suspended tree lifts it.
    act_ok(&app, &app.owner(), &id(&parent), "suspend").await;
    assert_ne!(
        act(&app, jwt(&grandchild), &id(&parent), "resume")
            .await
            .status(),
        StatusCode::OK
    );
    act_ok(&app, &app.owner(), &id(&parent), "resume").await;
    assert_eq!(
        app.list(jwt(&grandchild), "").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_tokens_made_from_a_suspended_token_are_suspended_with_it() {
    let app = TestApp::spawn().await;
    let [parent, child, grandchild] = three_generations(&app).await;
    let sibling = app
        .create_ok(
            jwt(&parent),
            json!({"name": "on its own", "expires_in": "1h"}),
        )
        .await;
    // A descendant suspended on its own stays so, whatever its ancestor does.
    act_ok(&app, &app.owner(), &id(&sibling), "suspend").await;

    act_ok(&app, &app.owner(), &id(&parent), "suspend").await;
    for token in [&parent, &child, &grandchild, &sibling] {
        assert_eq!(
            app.list(jwt(token), "").await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(app.introspect(jwt(token)).await["active"], false);
        let item: Value = app
            .get_token(&app.owner(), &id(token))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(item["status"], "suspended");
        let (idx, uri) = crate::status_lists::status_of_token(&app, "", token).await;
        assert!(
            eventually(30, || async {
                crate::status_lists::status_at(&app, "", &uri, idx).await == 2
            })
            .await,
            "its status list says suspended"
        );
    }
    // Each is audited; a child comes back only with its ancestor.
    let events = app.audit_events(&app.owner(), "").await;
    let suspended: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "suspended")
        .collect();
    assert_eq!(
        suspended.len(),
        4,
        "the sibling's own, the parent's and its two"
    );
    let message = assert_error(
        act(&app, &app.owner(), &id(&child), "resume").await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains(&id(&parent)), "{message}");

    act_ok(&app, &app.owner(), &id(&parent), "resume").await;
    for token in [&parent, &child, &grandchild] {
        assert_eq!(app.list(jwt(token), "").await.status(), StatusCode::OK);
        assert_eq!(app.introspect(jwt(token)).await["active"], true);
    }
    assert_eq!(
        app.list(jwt(&sibling), "").await.status(),
        StatusCode::UNAUTHORIZED,
        "suspended on its own"
    );
    act_ok(&app, &app.owner(), &id(&sibling), "resume").await;
    assert_eq!(app.list(jwt(&sibling), "").await.status(), StatusCode::OK);
}
