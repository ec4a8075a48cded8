//! The organization's policy: read by any member, replaced by admins, audited, and held by every
//! creation and rotation from the moment it changes, on every replica; denials write nothing.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

/// What an organization that never set a policy reads.
/// The policy of an organization that never set one.
pub(crate) fn defaults() -> Value {
    json!({"max_expires_in": {}, "require_expiry": false})
}

async fn get_policy(app: &TestApp, bearer: &str) -> Response {
    app.client
        .get(app.url("/v1/access-tokens/policy"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// The organization's policy as `bearer` reads it (`GET /v1/access-tokens/policy`, a 200).
pub(crate) async fn policy_of(app: &TestApp, bearer: &str) -> Value {
    let response = get_policy(app, bearer).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn put_policy(app: &TestApp, bearer: &str, body: Value) -> Response {
    app.client
        .put(app.url("/v1/access-tokens/policy"))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn policy_events(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["action"] == "policy_changed")
        .collect()
}

#[tokio::test]
async fn an_organization_that_never_set_a_policy_reads_the_defaults() {
    let app = TestApp::spawn().await;
    // Any member reads it, with or without an admin role.
    assert_eq!(policy_of(&app, &app.owner()).await, defaults());
    let member = app.issuer.user("1", "u-member", &["1:viewer"]);
    assert_eq!(policy_of(&app, &member).await, defaults());
    // So are today's rules: a token without expiry, of any type.
    app.create_ok(&member, json!({"name": "x"})).await;
    assert_error(
        get_policy(&app, "not-a-jwt").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn require_expiry_refuses_api_and_app_tokens_without_expires_in() {
    let app = TestApp::spawn().await;
    let answer = app.set_policy(json!({"require_expiry": true})).await;
    assert_eq!(
        answer,
        json!({"max_expires_in": {}, "require_expiry": true})
    );
    assert_eq!(policy_of(&app, &app.owner()).await, answer);
    let before = app.written().await;

    let message = assert_error(
        app.create(&app.owner(), json!({"name": "x"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        message,
        "the organization's policy requires an expires_in for api tokens (require_expiry)"
    );
    let message = assert_error(
        app.create(&app.owner(), json!({"name": "x", "token_type": "app"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("require_expiry"), "{message}");
    assert_eq!(app.written().await, before, "a denial writes nothing");

    app.create_ok(&app.owner(), json!({"name": "x", "expires_in": "1h"}))
        .await;
    // Other types keep their own rules.
    app.create_ok(
        &app.owner(),
        json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
    )
    .await;
    app.create_ok(&app.owner(), json!({"name": "a", "token_type": "assume"}))
        .await;
}

#[tokio::test]
async fn max_expires_in_refuses_beyond_and_accepts_within() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"max_expires_in": {"api": 86400, "contact_identification": 300}}))
        .await;
    let before = app.written().await;
    let message = assert_error(
        app.create(&app.owner(), json!({"name": "x", "expires_in": 86401}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        message.contains("max_expires_in") && message.contains("86400"),
        "{message}"
    );
    // A limit means the token must expire.
    let message = assert_error(
        app.create(&app.owner(), json!({"name": "x"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("max_expires_in"), "{message}");
    let contact = |expires_in: u64| {
        json!({
            "name": "c", "token_type": "contact_identification", "portal_id": "p",
            "contact_id": "c", "surface_id": "s", "allowed_operations": ["read"],
            "expires_in": expires_in,
        })
    };
    // Never stored, yet held to the policy, and its denial leaves no event.
    let message = assert_error(
        app.create(&app.owner(), contact(301)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("max_expires_in"), "{message}");
    assert_eq!(app.written().await, before, "a denial writes nothing");

    let within = app
        .create_ok(&app.owner(), json!({"name": "x", "expires_in": "1d"}))
        .await;
    assert!(within["expires_at"].is_string());
    app.create_ok(&app.owner(), contact(300)).await;
    // Types the policy does not limit are as before.
    app.create_ok(&app.owner(), json!({"name": "x", "token_type": "app"}))
        .await;
}

#[tokio::test]
async fn allowed_token_types_refuses_other_types() {
    let app = TestApp::spawn().await;
    let answer = app
        .set_policy(json!({"allowed_token_types": ["journey", "app"]}))
        .await;
    assert_eq!(answer["allowed_token_types"], json!(["app", "journey"]));
    let before = app.written().await;
    for body in [
        json!({"name": "x"}),
        json!({"name": "x", "token_type": "assume"}),
        json!({"name": "p", "token_type": "portal", "portal_id": "p1"}),
    ] {
        let message = assert_error(
            app.create(&app.owner(), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            message.contains("allowed_token_types: app, journey"),
            "{body}: {message}"
        );
    }
    assert_eq!(app.written().await, before, "a denial writes nothing");
    app.create_ok(&app.owner(), json!({"name": "x", "token_type": "app"}))
        .await;
    app.create_ok(
        &app.owner(),
        json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
    )
    .await;

    // An empty list allows no type; an admin can lift it.
    app.set_policy(json!({"allowed_token_types": []})).await;
    let message = assert_error(
        app.create(&app.owner(), json!({"name": "x", "token_type": "app"}))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("allowed_token_types: none"), "{message}");
    app.set_policy(json!({})).await;
    app.create_ok(&app.owner(), json!({"name": "x"})).await;
}

#[tokio::test]
async fn a_member_who_is_not_an_admin_cannot_change_the_policy() {
    let app = TestApp::spawn().await;
    let set = app.set_policy(json!({"require_expiry": true})).await;
    let before = app.written().await;

    let member = app.issuer.user("1", "u-member", &["1:viewer", "2:owner"]);
    let message = assert_error(
        put_policy(&app, &member, json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        message.contains("owner, admin") && message.contains("TOKEN_ADMIN_ROLES"),
        "{message}"
    );
    // Even a body that is not a valid policy: who may comes first.
    assert_error(
        put_policy(&app, &member, json!({"max_expires_in": {"assume": 60}})).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // An admin's read-only token may read the policy, not change it.
    let read_only = app
        .create_ok(
            &app.owner(),
            json!({"name": "ro", "read_only": true, "expires_in": "1h"}),
        )
        .await;
    let read_only = read_only["token"].as_str().unwrap();
    assert_eq!(policy_of(&app, read_only).await, set);
    assert_error(
        put_policy(&app, read_only, json!({})).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    assert_eq!(policy_of(&app, &member).await, set);
    let (tokens, events) = app.written().await;
    assert_eq!(
        (tokens.len(), events),
        (before.0.len() + 1, before.1 + 1),
        "only the read-only token and its event were written"
    );
    let events = app.audit_events(&app.owner(), "").await;
    assert_eq!(policy_events(&events).len(), 1);
}

#[tokio::test]
async fn a_policy_that_breaks_a_types_rules_is_refused() {
    let app = TestApp::spawn().await;
    let set = app
        .set_policy(json!({"max_expires_in": {"app": 3600}}))
        .await;
    let before = app.written().await;
    let cases = [
        (
            json!({"max_expires_in": {"api": 365 * 86_400 + 1}}),
            "api tokens live at most 31536000 s (365 days)",
        ),
        (
            json!({"max_expires_in": {"app": 7 * 86_400 + 1}}),
            "at most 604800 s (7 days)",
        ),
        (
            json!({"max_expires_in": {"contact_identification": 901}}),
            "at most 900 s",
        ),
        (json!({"max_expires_in": {"api": 29}}), "at least 30 s"),
        (
            json!({"max_expires_in": {"assume": 600}}),
            "does not apply to assume tokens",
        ),
        (
            json!({"max_expires_in": {"portal_preview": 600}}),
            "does not apply to portal_preview tokens",
        ),
        (json!({"max_expires_in": {"root": 600}}), "unknown field"),
        (json!({"max_expires_in": {"api": "1h"}}), "invalid type"),
        (json!({"max_expires_in": {"api": -5}}), "invalid value"),
        (json!({"max_expires_in": {"api": 60.5}}), "invalid value"),
        (json!({"require_expiry": "yes"}), "invalid type"),
        (
            json!({"allowed_token_types": ["root"]}),
            "unknown token_type",
        ),
        (json!({"allowed_token_types": "api"}), "invalid type"),
        (json!({"colour": "red"}), "unknown field"),
        (json!([]), "invalid type"),
    ];
    for (body, why) in cases {
        let message = assert_error(
            put_policy(&app, &app.owner(), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains(why), "{body}: {message}");
    }
    let malformed = app
        .client
        .put(app.url("/v1/access-tokens/policy"))
        .bearer_auth(app.owner())
        .header("content-type", "application/json")
        .body("{\"require_expiry\": tru")
        .send()
        .await
        .unwrap();
    assert_error(malformed, StatusCode::BAD_REQUEST).await;
    let twice = app
        .client
        .put(app.url("/v1/access-tokens/policy"))
        .bearer_auth(app.owner())
        .header("content-type", "application/json")
        .body(r#"{"max_expires_in": {"api": 60, "api": 7200}}"#)
        .send()
        .await
        .unwrap();
    assert_error(twice, StatusCode::BAD_REQUEST).await;
    let not_json = app
        .client
        .put(app.url("/v1/access-tokens/policy"))
        .bearer_auth(app.owner())
        .body("require_expiry=true")
        .send()
        .await
        .unwrap();
    assert_error(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    assert_eq!(policy_of(&app, &app.owner()).await, set);
    assert_eq!(app.written().await, before, "a denial writes nothing");
}

#[tokio::test]
async fn a_put_replaces_the_whole_policy_and_each_change_is_audited() {
    let app = TestApp::spawn().await;
    let first = app.set_policy(json!({"require_expiry": true, "allowed_token_types": ["api"], "max_expires_in": {"api": 7200}}),
    )
    .await;
    let second = app
        .set_policy(json!({"max_expires_in": {"app": 3600}}))
        .await;
    assert_eq!(
        second,
        json!({"max_expires_in": {"app": 3600}, "require_expiry": false})
    );
    assert_eq!(policy_of(&app, &app.owner()).await, second);
    // The same policy again changes nothing and records nothing.
    app.set_policy(json!({"max_expires_in": {"app": 3600}, "require_expiry": false}))
        .await;

    let events = app.audit_events(&app.owner(), "").await;
    let changes = policy_events(&events);
    assert_eq!(changes.len(), 2, "{events:?}");
    let (newest, oldest) = (changes[0], changes[1]);
    assert_eq!(newest["details"], json!({"old": first, "new": second}));
    assert_eq!(oldest["details"], json!({"old": defaults(), "new": first}));
    for event in [newest, oldest] {
        assert!(event.get("token_id").is_none(), "{event}");
        assert!(event.get("token_type").is_none(), "{event}");
        assert_eq!(event["actor"]["org_id"], "1");
        assert_eq!(event["actor"]["user_id"], "u-1");
        assert!(event["occurred_at"].is_string());
    }
    // A token's events leave policy events out.
    let created = app
        .create_ok(
            &app.owner(),
            json!({"name": "x", "token_type": "app", "expires_in": "1h"}),
        )
        .await;
    let of_token = app
        .audit_events(
            &app.owner(),
            &format!("?token_id={}", created["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(of_token.len(), 1);
    assert_eq!(of_token[0]["action"], "created");
}

#[tokio::test]
async fn rotation_is_held_to_the_policy_of_now() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let forever = app.create_ok(&owner, json!({"name": "forever"})).await;
    let two_days = app
        .create_ok(&owner, json!({"name": "two days", "expires_in": "2d"}))
        .await;
    let one_hour = app
        .create_ok(&owner, json!({"name": "one hour", "expires_in": "1h"}))
        .await;
    app.set_policy(json!({"require_expiry": true, "max_expires_in": {"api": 86400}}))
        .await;
    let before = app.written().await;

    let message = assert_error(
        app.rotate(&owner, forever["id"].as_str().unwrap()).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("require_expiry"), "{message}");
    let message = assert_error(
        app.rotate(&owner, two_days["id"].as_str().unwrap()).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        message.contains("max_expires_in") && message.contains("172800"),
        "{message}"
    );
    assert_eq!(app.written().await, before, "a denial writes nothing");
    // Existing tokens are unchanged: still active, and still calling.
    let active = app.list_ok(&owner, "").await;
    assert_eq!(active.len(), 3);
    let forever_jwt = forever["token"].as_str().unwrap();
    assert_eq!(app.list_ok(forever_jwt, "").await.len(), 3);

    let response = app.rotate(&owner, one_hour["id"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    app.set_policy(json!({"allowed_token_types": ["app"]}))
        .await;
    let message = assert_error(
        app.rotate(&owner, two_days["id"].as_str().unwrap()).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("allowed_token_types"), "{message}");
}

#[tokio::test]
async fn another_organizations_policy_is_untouched() {
    let app = TestApp::spawn().await;
    app.set_policy(json!({"require_expiry": true, "allowed_token_types": ["api"]}))
        .await;
    let other = app.caller("2", &["2:owner"]);
    assert_eq!(policy_of(&app, &other).await, defaults());
    app.create_ok(&other, json!({"name": "x", "token_type": "app"}))
        .await;
    // Its admin changes its own policy only, and sees only its own changes.
    let response = put_policy(&app, &other, json!({"max_expires_in": {"app": 600}})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        policy_of(&app, &app.owner()).await,
        json!({"max_expires_in": {}, "require_expiry": true, "allowed_token_types": ["api"]})
    );
    let events = app.audit_events(&other, "").await;
    let changes = policy_events(&events);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["details"]["new"]["max_expires_in"]["app"], 600);
}

#[tokio::test]
async fn a_change_holds_on_every_replica_at_once() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    b.create_ok(&b.owner(), json!({"name": "before"})).await;
    a.set_policy(json!({"require_expiry": true})).await;
    // No waiting: B reads the policy from the store on every creation.
    assert_error(
        b.create(&b.owner(), json!({"name": "after"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(policy_of(&b, &b.owner()).await["require_expiry"], true);
}

#[tokio::test]
async fn a_loosened_policy_holds_on_every_replica_at_once() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    a.set_policy(json!({"require_expiry": true})).await;
    // B refuses by the policy it reads, and holds it.
    assert_error(
        b.create(&b.owner(), json!({"name": "refused"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    a.set_policy(json!({"require_expiry": false})).await;
    // No waiting: a policy B holds that refuses is read again before it refuses.
    b.create_ok(&b.owner(), json!({"name": "allowed"})).await;
}

#[tokio::test]
async fn a_creation_checked_against_a_changed_policy_is_written_once_under_the_new_one() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    // B holds the defaults (version 0) from its first creation.
    b.create_ok(&b.owner(), json!({"name": "first"})).await;
    // A change on A that still allows B's next token: B's insert finds another version, writes
    // nothing, reads the policy again and writes the token once.
    a.set_policy(json!({"max_expires_in": {"app": 3600}})).await;
    let created = b.create_ok(&b.owner(), json!({"name": "second"})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let events = b.audit_events(&b.owner(), &format!("?token_id={id}")).await;
    let created_events = events.iter().filter(|e| e["action"] == "created").count();
    assert_eq!(created_events, 1, "{events:?}");
    let listed = b.list_ok(&b.owner(), "").await;
    let named = listed.iter().filter(|t| t["name"] == "second").count();
    assert_eq!(named, 1, "{listed:?}");
}

#[tokio::test]
async fn concurrent_changes_queue_and_each_event_follows_the_last() {
    let app = TestApp::spawn().await;
    // Changes of an organization that never set a policy, at once: each finds the row the one
    // before it wrote, so that the audit trail is a chain from the defaults.
    let bodies: Vec<Value> = (0..6)
        .map(|i| json!({"max_expires_in": {"app": 3600 + i}}))
        .collect();
    let owner = app.owner();
    let answers =
        futures_util::future::join_all(bodies.iter().map(|b| put_policy(&app, &owner, b.clone())))
            .await;
    for response in answers {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let events = app.audit_events(&owner, "").await;
    let mut changes: Vec<&Value> = policy_events(&events);
    changes.reverse();
    assert_eq!(changes.len(), 6);
    let mut expected_old = defaults();
    for change in changes {
        assert_eq!(change["details"]["old"], expected_old);
        expected_old = change["details"]["new"].clone();
    }
    assert_eq!(policy_of(&app, &owner).await, expected_old);
}
