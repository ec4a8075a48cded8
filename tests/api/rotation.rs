//! Rotation with an overlap, and a token that manages itself: the old token works beside the new
//! one until `retires_at` on every replica, in introspection and in its status list, then the
//! service revokes it, once, whichever replica gets there (or comes back) first.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually};
use crate::status_lists::{status_at, status_of_token};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn jwt(v: &Value) -> String {
    v["token"].as_str().unwrap().to_owned()
}

async fn rotate_with(app: &TestApp, bearer: &str, id: &str, body: Value) -> Response {
    app.client
        .post(app.url(&format!("/v1/access-tokens/{id}/rotate")))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn created(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn item(app: &TestApp, id: &str) -> Value {
    let response = app.get_token(&app.owner(), id).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn own(app: &TestApp, bearer: &str, method: reqwest::Method, path: &str) -> Response {
    app.client
        .request(method, app.url(&format!("/v1/access-tokens/self{path}")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// The token's `revoked` events, oldest last.
async fn revocations(app: &TestApp, id: &str) -> Vec<Value> {
    app.audit_events(&app.owner(), &format!("?token_id={id}"))
        .await
        .into_iter()
        .filter(|e| e["action"] == "revoked")
        .collect()
}

async fn works(app: &TestApp, bearer: &str) -> bool {
    app.list(bearer, "").await.status() == StatusCode::OK
}

#[tokio::test]
async fn with_an_overlap_both_tokens_work_everywhere_until_retires_at_then_the_old_one_ends_once() {
    let app = TestApp::spawn().await;
    let replica = app.another_replica().await;
    let owner = app.owner();
    let old = app
        .create_ok(&owner, json!({"name": "fleet", "expires_in": "1d"}))
        .await;
    let (idx, uri) = status_of_token(&app, "", &old).await;
    let new = created(rotate_with(&app, &owner, &id(&old), json!({"overlap": 3})).await).await;
    assert_eq!(new["replaces"], id(&old));
    assert_eq!(new["rotated_from"], id(&old));
    assert_eq!(new["name"], "fleet");

    let rotating = item(&app, &id(&old)).await;
    assert_eq!(rotating["status"], "rotating");
    assert_eq!(rotating["replaced_by"], id(&new));
    let retires_at = chrono::DateTime::parse_from_rfc3339(rotating["retires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let left = retires_at - chrono::Utc::now();
    assert!(
        left <= chrono::Duration::seconds(3) && left > chrono::Duration::zero(),
        "{left}"
    );

    // Before retires_at: both work, on every replica, in introspection and in the list.
    let apps: Vec<&TestApp> = std::iter::once(&app).chain(replica.as_ref()).collect();
    for a in &apps {
        for token in [jwt(&old), jwt(&new)] {
            assert!(works(a, &token).await);
        }
    }
    assert_eq!(app.introspect(&jwt(&old)).await["active"], true);
    assert_eq!(status_at(&app, "", &uri, idx).await, 0);
    assert!(revocations(&app, &id(&old)).await.is_empty());

    // After: the old one is refused on every replica, inactive, 1 in its list; the new works.
    let waited = tokio::time::Instant::now();
    for a in &apps {
        let refused = eventually(30, || async { !works(a, &jwt(&old)).await }).await;
        assert!(refused, "the old token is refused once its overlap ends");
    }
    println!(
        "refused on every replica {} ms after retires_at (waited {:?})",
        (chrono::Utc::now() - retires_at).num_milliseconds(),
        waited.elapsed()
    );
    assert!(
        chrono::Utc::now() >= retires_at,
        "not refused before retires_at"
    );
    for a in &apps {
        assert!(works(a, &jwt(&new)).await, "the new token goes on");
    }
    assert_eq!(app.introspect(&jwt(&old)).await["active"], false);
    assert!(eventually(30, || async { status_at(&app, "", &uri, idx).await == 1 }).await);
    let ended = item(&app, &id(&old)).await;
    assert_eq!(ended["status"], "revoked");
    assert!(ended.get("retires_at").is_none());
    // Every replica looked again meanwhile (100 ms apart): still exactly one event.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = revocations(&app, &id(&old)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"]["reason"], "rotated");
    assert_eq!(events[0]["related_token_id"], id(&new));
}

#[tokio::test]
async fn a_deadline_passed_while_every_replica_was_down_is_kept_by_the_first_back() {
    let mut app = TestApp::spawn().await;
    let owner = app.owner();
    let old = app.create_ok(&owner, json!({"name": "offline"})).await;
    let new = created(rotate_with(&app, &owner, &id(&old), json!({"overlap": "2s"})).await).await;
    app.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let back = app.replica().await;
    let refused = eventually(30, || async { !works(&back, &jwt(&old)).await }).await;
    assert!(refused, "the first replica back retires the token");
    assert!(works(&back, &jwt(&new)).await);
    let events = revocations(&back, &id(&old)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"]["reason"], "rotated");
}

#[tokio::test]
async fn an_overlap_that_is_malformed_or_too_long_is_a_400_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let token = app.create_ok(&owner, json!({"name": "x"})).await;
    let before = app.written().await;
    for (body, says) in [
        (json!({"overlap": -1}), "overlap"),
        (json!({"overlap": 1.5}), "overlap"),
        (json!({"overlap": "soon"}), "overlap"),
        (json!({"overlap": [1]}), "overlap"),
        (json!({"overlap": null}), "overlap"),
        (json!({"overlap": "8d"}), "ROTATION_MAX_OVERLAP"),
        (json!({"overlap": 604_801}), "604800"),
        (json!({"overlapp": 60}), "unknown field"),
    ] {
        let message = assert_error(
            rotate_with(&app, &owner, &id(&token), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains(says), "{body}: {message}");
    }
    let not_json = app
        .client
        .post(app.url(&format!("/v1/access-tokens/{}/rotate", id(&token))))
        .bearer_auth(&owner)
        .header("content-type", "text/plain")
        .body("overlap=60")
        .send()
        .await
        .unwrap();
    assert_error(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(app.written().await, before, "nothing was written");
    assert_eq!(item(&app, &id(&token)).await["status"], "active");
    // The longest overlap there is, and no body at all (today's rotation), both work.
    created(rotate_with(&app, &owner, &id(&token), json!({"overlap": "7d"})).await).await;
    let other = app.create_ok(&owner, json!({"name": "y"})).await;
    let rotated = created(app.rotate(&owner, &id(&other)).await).await;
    assert_eq!(item(&app, &id(&other)).await["status"], "revoked");
    assert!(works(&app, &jwt(&rotated)).await);
}

#[tokio::test]
async fn during_the_overlap_the_old_token_is_revoked_at_once_but_never_rotated_again() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let old = app.create_ok(&owner, json!({"name": "a"})).await;
    let new = created(rotate_with(&app, &owner, &id(&old), json!({"overlap": "1h"})).await).await;
    let message = assert_error(
        rotate_with(&app, &owner, &id(&old), json!({"overlap": 60})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(message.contains(&id(&new)), "{message}");
    // Revoking the new one leaves the old one to its retires_at.
    assert_eq!(app.revoke(&owner, &id(&new)).await.status(), StatusCode::OK);
    assert_eq!(item(&app, &id(&old)).await["status"], "rotating");
    assert!(works(&app, &jwt(&old)).await);
    // Revoking the old one ends it now, with one event, and the service never revokes it again.
    assert_eq!(app.revoke(&owner, &id(&old)).await.status(), StatusCode::OK);
    assert!(!works(&app, &jwt(&old)).await);
    assert_eq!(item(&app, &id(&old)).await["status"], "revoked");
    let events = revocations(&app, &id(&old)).await;
    assert_eq!(events.len(), 1);
    assert!(events[0]["details"].get("reason").is_none());
}

#[tokio::test]
async fn lifetimes_carry_over_and_an_overlap_never_outlives_the_old_token() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let expiring = app
        .create_ok(&owner, json!({"name": "2h", "expires_in": "2h"}))
        .await;
    let new =
        created(rotate_with(&app, &owner, &id(&expiring), json!({"overlap": "1d"})).await).await;
    let at = |v: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(v[field].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let lifetime = at(&new, "expires_at") - chrono::Utc::now();
    assert!(
        lifetime > chrono::Duration::minutes(119) && lifetime <= chrono::Duration::hours(2),
        "the same two hours from now: {lifetime}"
    );
    let old = item(&app, &id(&expiring)).await;
    assert_eq!(
        at(&old, "retires_at"),
        at(&old, "expires_at"),
        "a day of overlap ends at the old token's own expiry"
    );
    let forever = app.create_ok(&owner, json!({"name": "forever"})).await;
    let new = created(app.rotate(&owner, &id(&forever)).await).await;
    assert!(new.get("expires_at").is_none());
}

#[tokio::test]
async fn a_token_looks_itself_up_rotates_itself_and_revokes_itself() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let parent = app.create_ok(&owner, json!({"name": "parent"})).await;
    let api = app
        .create_ok(
            &jwt(&parent),
            json!({"name": "ci", "expires_in": "30d", "assignments": ["1:owner"]}),
        )
        .await;

    // GET /self: its own item.
    let response = own(&app, &jwt(&api), reqwest::Method::GET, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["id"], id(&api));
    assert_eq!(me["status"], "active");

    // POST /self/rotate, with an overlap: the same name, type, roles, creator and parent.
    let response = app
        .client
        .post(app.url("/v1/access-tokens/self/rotate"))
        .bearer_auth(jwt(&api))
        .json(&json!({"overlap": "10m"}))
        .send()
        .await
        .unwrap();
    let renewed = created(response).await;
    for field in [
        "name",
        "token_type",
        "assignments",
        "created_by",
        "parent_id",
    ] {
        assert_eq!(renewed[field], api[field], "{field}");
    }
    assert_eq!(renewed["replaces"], id(&api));
    let lifetime = chrono::DateTime::parse_from_rfc3339(renewed["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::days(29), "{lifetime}");
    let me: Value = own(&app, &jwt(&api), reqwest::Method::GET, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["status"], "rotating");
    assert_eq!(me["replaced_by"], id(&renewed));
    // Rotating itself again while rotating: 409.
    let again = app
        .client
        .post(app.url("/v1/access-tokens/self/rotate"))
        .bearer_auth(jwt(&api))
        .send()
        .await
        .unwrap();
    assert_error(again, StatusCode::CONFLICT).await;
    // The audit event's actor is the token itself.
    let events = app
        .audit_events(&owner, &format!("?token_id={}", id(&api)))
        .await;
    let rotated = events.iter().find(|e| e["action"] == "rotated").unwrap();
    assert_eq!(rotated["actor"]["token_id"], id(&api));

    // DELETE /self: the new one ends itself.
    let response = own(&app, &jwt(&renewed), reqwest::Method::DELETE, "").await;
    assert_eq!(response.status(), StatusCode::OK);
    let ended: Value = response.json().await.unwrap();
    assert_eq!(ended["status"], "revoked");
    assert!(!works(&app, &jwt(&renewed)).await);
    let revoked = revocations(&app, &id(&renewed)).await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["actor"]["token_id"], id(&renewed));
    assert_error(
        own(&app, &jwt(&renewed), reqwest::Method::DELETE, "").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn self_is_for_each_stored_type_as_far_as_it_may_go() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let cases = [
        // (body, GET /self, POST /self/rotate)
        (json!({"name": "a"}), StatusCode::OK, StatusCode::CREATED),
        (
            json!({"name": "b", "token_type": "app", "expires_in": "7d"}),
            StatusCode::OK,
            StatusCode::CREATED,
        ),
        (
            json!({"name": "c", "token_type": "assume"}),
            StatusCode::OK,
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"name": "p", "token_type": "portal", "portal_id": "p1", "expires_in": 3600}),
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({"name": "v", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"}),
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (body, get, rotate) in cases {
        let made = app.create_ok(&owner, body.clone()).await;
        let token = jwt(&made);
        let got = own(&app, &token, reqwest::Method::GET, "").await;
        assert_eq!(got.status(), get, "GET /self {body}");
        let rotated = app
            .client
            .post(app.url("/v1/access-tokens/self/rotate"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = rotated.status();
        assert_eq!(status, rotate, "POST /self/rotate {body}");
        // Every stored type may end itself; a rotated one is revoked already.
        if status == StatusCode::CREATED {
            continue;
        }
        let deleted = own(&app, &token, reqwest::Method::DELETE, "").await;
        assert_eq!(deleted.status(), StatusCode::OK, "DELETE /self {body}");
        assert_eq!(item(&app, &id(&made)).await["status"], "revoked");
    }
    // A person is not a token of this service; a contact identification token is never stored.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        assert_error(own(&app, &owner, method, "").await, StatusCode::FORBIDDEN).await;
    }
    let cid = app
        .create_ok(
            &owner,
            json!({
                "name": "Contact", "token_type": "contact_identification", "portal_id": "p1",
                "contact_id": "c1", "surface_id": "checkout", "allowed_operations": ["read:contact"],
                "expires_in": 300, "origin": "END_CUSTOMER_PORTAL", "email": "contact@example.com"
            }),
        )
        .await;
    assert_error(
        own(&app, &jwt(&cid), reqwest::Method::DELETE, "").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        own(&app, "not-a-token", reqwest::Method::DELETE, "").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
