//! Token lifecycle: one token, paged and filtered lists, rotation, last_used, audit events.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, eventually};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn one_token_is_readable_by_its_organization_only() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(&app.owner(), json!({"name": "one", "expires_in": "1d"}))
        .await;
    let response = app.get_token(&app.owner(), &id(&created)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["name"], "one");
    assert_eq!(item["expires_at"], created["expires_at"]);
    assert!(item.get("token").is_none());

    app.revoke(&app.owner(), &id(&created)).await;
    let revoked: Value = app
        .get_token(&app.owner(), &id(&created))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        revoked["revoked_at"].is_string(),
        "a revoked token is still readable by id"
    );

    let other = app.caller("2", &["2:owner"]);
    assert_error(
        app.get_token(&other, &id(&created)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get_token(&app.owner(), "api_AAAAAAAAAAAAAAAAAAAAAA")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.get_token(&app.owner(), "garbage").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn pages_follow_link_headers_without_gaps_or_repeats_while_rows_arrive() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    app.seed("1", 3000).await;
    app.seed("2", 500).await;

    let mut seen = HashSet::new();
    let mut url = Some(app.url("/v1/access-tokens?limit=250&token_type=api"));
    let mut pages = 0;
    let mut previous: Option<(String, String)> = None;
    while let Some(next) = url {
        let response = app
            .client
            .get(&next)
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        url = crate::helpers::next_link(&response).map(|u| u.replace(&app.public_url, &app.base));
        if let Some(u) = &url {
            assert!(
                u.contains("token_type=api") && u.contains("limit=250"),
                "filters carry over: {u}"
            );
        }
        let items: Vec<Value> = response.json().await.unwrap();
        assert!(items.len() <= 250);
        for item in &items {
            let key = (item["created_at"].as_str().unwrap().to_owned(), id(item));
            if let Some(prev) = &previous {
                assert!(key.0 <= prev.0, "newest first");
            }
            previous = Some(key);
            assert!(seen.insert(id(item)), "repeated {}", id(item));
        }
        // New tokens arrive between pages; they are newer than every page still to come.
        app.create_ok(
            &owner,
            json!({"name": format!("arrived during page {pages}")}),
        )
        .await;
        pages += 1;
    }
    assert_eq!(pages, 12);
    let seeded: HashSet<String> = seen
        .iter()
        .filter(|i| i.starts_with("api_seed"))
        .cloned()
        .collect();
    assert_eq!(seeded.len(), 3000, "every seeded row exactly once");
    assert!(
        seen.iter()
            .all(|i| i.ends_with('1') || !i.starts_with("api_seed")),
        "only organization 1"
    );
}

#[tokio::test]
async fn status_and_name_filters() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let active = app.create_ok(&owner, json!({"name": "Deploy Bot"})).await;
    let expired = app
        .create_ok(
            &owner,
            json!({"name": "old deploy key", "expires_in": "1h"}),
        )
        .await;
    let revoked = app.create_ok(&owner, json!({"name": "100%_literal"})).await;
    app.revoke(&owner, &id(&revoked)).await;
    app.expire(&id(&expired)).await;

    let ids = |items: Vec<Value>| items.iter().map(id).collect::<Vec<_>>();
    assert_eq!(
        ids(app.list_ok(&owner, "").await),
        [id(&active), id(&expired)],
        "expired ones still show"
    );
    assert_eq!(
        ids(app.list_ok(&owner, "?status=active").await),
        [id(&active), id(&expired)]
    );
    assert_eq!(
        ids(app.list_ok(&owner, "?status=revoked").await),
        [id(&revoked)]
    );
    assert_eq!(
        ids(app.list_ok(&owner, "?status=expired").await),
        [id(&expired)]
    );
    assert_eq!(ids(app.list_ok(&owner, "?status=all").await).len(), 3);
    assert_eq!(
        ids(app.list_ok(&owner, "?name=DEPLOY").await),
        [id(&active), id(&expired)]
    );
    assert_eq!(ids(app.list_ok(&owner, "?name=bot").await), [id(&active)]);
    assert!(
        app.list_ok(&owner, "?name=%25").await.is_empty(),
        "% is a literal, not a wildcard"
    );
    assert_eq!(
        ids(app.list_ok(&owner, "?status=all&name=0%25_").await),
        [id(&revoked)]
    );
    for bad in [
        "?status=deleted",
        "?limit=0",
        "?limit=1001",
        "?cursor=not-a-cursor",
    ] {
        assert_error(app.list(&owner, bad).await, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn rotation_replaces_a_token_and_revokes_the_old_one() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let old = app
        .create_ok(&owner, json!({"name": "rotating", "token_type": "app", "expires_in": "2d", "assignments": ["1:viewer"], "read_only": true}))
        .await;
    let response = app.rotate(&owner, &id(&old)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let new: Value = response.json().await.unwrap();
    assert_ne!(id(&new), id(&old));
    assert!(id(&new).starts_with("app_"));
    assert_eq!(new["rotated_from"], id(&old));
    for field in [
        "name",
        "token_type",
        "assignments",
        "read_only",
        "anonymize",
    ] {
        assert_eq!(new[field], old[field], "{field}");
    }
    let claims = app
        .verify("", new["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        172_800,
        "same lifetime from now"
    );

    let old_item: Value = app.get_token(&owner, &id(&old)).await.json().await.unwrap();
    assert!(old_item["revoked_at"].is_string());
    assert_eq!(
        app.list(old["token"].as_str().unwrap(), "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.list(new["token"].as_str().unwrap(), "").await.status(),
        StatusCode::OK
    );

    assert_error(app.rotate(&owner, &id(&old)).await, StatusCode::CONFLICT).await;
    let other = app.caller("2", &["2:owner"]);
    assert_error(app.rotate(&other, &id(&new)).await, StatusCode::NOT_FOUND).await;
    // Type fields carry over too.
    let journey = app
        .create_ok(
            &owner,
            json!({"name": "j", "token_type": "journey", "journey_id": "j-9"}),
        )
        .await;
    let rotated: Value = app
        .rotate(&owner, &id(&journey))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["journey_id"], "j-9");
    assert!(
        rotated.get("expires_at").is_none(),
        "a token without expiry stays without"
    );
}

#[tokio::test]
async fn rotation_never_hands_out_roles_the_caller_lacks() {
    let app = TestApp::spawn().await;
    let owner_token = app
        .create_ok(
            &app.owner(),
            json!({"name": "owner's", "assignments": ["1:owner"]}),
        )
        .await;
    let viewer = app.caller("1", &["1:viewer"]);
    assert_error(
        app.rotate(&viewer, &id(&owner_token)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let ro = app
        .create_ok(&app.owner(), json!({"name": "ro", "read_only": true}))
        .await;
    assert_error(
        app.rotate(ro["token"].as_str().unwrap(), &id(&owner_token))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let item: Value = app
        .get_token(&app.owner(), &id(&owner_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        item.get("revoked_at").is_none(),
        "a refused rotation changes nothing"
    );
}

#[tokio::test]
async fn concurrent_rotations_and_revocations_end_in_one_consistent_state() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let token = app.create_ok(&owner, json!({"name": "raced"})).await;
    let token_id = id(&token);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (client, base, owner, token_id) = (
            app.client.clone(),
            app.base.clone(),
            owner.clone(),
            token_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let request = if i % 3 == 0 {
                client.delete(format!("{base}/v1/access-tokens/{token_id}"))
            } else {
                client.post(format!("{base}/v1/access-tokens/{token_id}/rotate"))
            };
            request.bearer_auth(owner).send().await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let rotated = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!(rotated <= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT].contains(s)),
        "{statuses:?}"
    );
    let children = app
        .count(
            "select count(*) from access_tokens where rotated_from = $1",
            &token_id,
        )
        .await;
    assert_eq!(children as usize, rotated);
    let revoked_events = app
        .count(
            "select count(*) from audit_events where token_id = $1 and action = 'revoked'",
            &token_id,
        )
        .await;
    assert_eq!(revoked_events, 1, "the token was revoked exactly once");
    let rotated_events = app
        .count(
            "select count(*) from audit_events where token_id = $1 and action = 'rotated'",
            &token_id,
        )
        .await;
    assert_eq!(rotated_events as usize, rotated, "and rotated at most once");
}

#[tokio::test]
async fn last_used_is_written_once_however_many_uses() {
    let app = TestApp::spawn().await;
    let created = app.create_ok(&app.owner(), json!({"name": "busy"})).await;
    let jwt = created["token"].as_str().unwrap();
    assert!(
        app.get_token(&app.owner(), &id(&created))
            .await
            .json::<Value>()
            .await
            .unwrap()
            .get("last_used")
            .is_none()
    );
    for _ in 0..20 {
        assert_eq!(app.list(jwt, "").await.status(), StatusCode::OK);
    }
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let shows_today = eventually(30, || async {
        let item: Value = app
            .get_token(&app.owner(), &id(&created))
            .await
            .json()
            .await
            .unwrap();
        item["last_used"] == today.as_str()
    })
    .await;
    assert!(shows_today, "last_used becomes today's date");
}

#[tokio::test]
async fn audit_events_record_who_changed_what_for_the_organization_only() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app.create_ok(&owner, json!({"name": "audited"})).await;
    let by_token = app
        .create_ok(
            created["token"].as_str().unwrap(),
            json!({"name": "child", "token_type": "assume"}),
        )
        .await;
    let rotated: Value = app
        .rotate(&owner, &id(&created))
        .await
        .json()
        .await
        .unwrap();
    app.revoke(&owner, &id(&rotated)).await;
    app.revoke(&owner, &id(&rotated)).await;

    let events = app.audit_events(&owner, "").await;
    let actions: Vec<(&str, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["token_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("revoked", id(&rotated)),
            ("created", id(&rotated)),
            ("revoked", id(&created)),
            ("rotated", id(&created)),
            ("created", id(&by_token)),
            ("created", id(&created)),
        ],
        "newest first; the second revoke records nothing; a rotation's end is its own event"
    );
    assert_eq!(events[2]["details"]["reason"], "rotated");
    assert_eq!(events[2]["related_token_id"], id(&rotated));
    let rotation = &events[3];
    assert_eq!(rotation["related_token_id"], id(&rotated));
    assert_eq!(rotation["actor"]["org_id"], "1");
    assert_eq!(rotation["actor"]["user_id"], "u-1");
    assert_eq!(rotation["source_ip"], "127.0.0.1");
    assert_eq!(rotation["user_agent"], crate::helpers::USER_AGENT);
    assert!(
        chrono::DateTime::parse_from_rfc3339(rotation["occurred_at"].as_str().unwrap()).is_ok()
    );
    assert_eq!(
        events[4]["actor"]["token_id"],
        id(&created),
        "a token as actor is named"
    );

    let filtered = app
        .audit_events(&owner, &format!("?token_id={}", id(&created)))
        .await;
    assert_eq!(filtered.len(), 3);

    let pages = app
        .pages(&owner, "/v1/access-tokens/audit-events?limit=2")
        .await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2]);

    let other = app.caller("2", &["2:owner"]);
    let theirs = app.audit_events(&other, "").await;
    assert!(
        theirs.is_empty(),
        "another organization sees none of these events"
    );
}

#[tokio::test]
async fn a_contact_identification_token_leaves_a_created_event_though_it_is_never_stored() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let stored = app.create_ok(&owner, json!({"name": "stored"})).await;
    let cid = app
        .create_ok(
            &owner,
            json!({
                "name": "Contact", "token_type": "contact_identification", "portal_id": "p1",
                "contact_id": "contact-7", "surface_id": "checkout", "allowed_operations": ["*"],
                "expires_in": 300
            }),
        )
        .await;

    let events = app.audit_events(&owner, "").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let issued = &events[0];
    assert_eq!(issued["action"], "created");
    assert_eq!(issued["token_id"], id(&cid));
    assert_eq!(issued["token_type"], "contact_identification");
    assert_eq!(issued["contact_id"], "contact-7");
    assert_eq!(issued["surface_id"], "checkout");
    assert_eq!(issued["actor"]["org_id"], "1");
    assert_eq!(issued["actor"]["user_id"], "u-1");
    assert_eq!(issued["source_ip"], "127.0.0.1");
    assert_eq!(issued["user_agent"], crate::helpers::USER_AGENT);
    assert!(issued.get("related_token_id").is_none());
    // A stored token's event names its type, and nothing of contacts.
    assert_eq!(events[1]["token_id"], id(&stored));
    assert_eq!(events[1]["token_type"], "api");
    assert!(events[1].get("contact_id").is_none());

    // The event is the organization's only, and filterable by the token's id.
    let by_id = app
        .audit_events(&owner, &format!("?token_id={}", id(&cid)))
        .await;
    assert_eq!(by_id, std::slice::from_ref(issued));
    let other = app.audit_events(&app.caller("2", &["2:owner"]), "").await;
    assert!(other.is_empty());
}
