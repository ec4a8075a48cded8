//! Listing and revoking, and that organizations never see each other.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

fn ids(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn list_is_newest_first_and_leaves_revoked_tokens_out() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let mut created = Vec::new();
    for name in ["first", "second", "third"] {
        created.push(
            app.create_ok(&owner, json!({"name": name})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let items = app.list_ok(&owner, "").await;
    assert_eq!(ids(&items), [&created[2], &created[1], &created[0]]);
    assert!(
        items.iter().all(|i| i.get("token").is_none()),
        "the JWT is shown only once"
    );

    assert_eq!(
        app.revoke(&owner, &created[1]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        ids(&app.list_ok(&owner, "").await),
        [&created[2], &created[0]]
    );
}

#[tokio::test]
async fn list_filters_by_token_type_in_all_three_array_encodings() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let api = app.create_ok(&owner, json!({"name": "a"})).await;
    let appt = app
        .create_ok(&owner, json!({"name": "b", "token_type": "app"}))
        .await;
    app.create_ok(
        &owner,
        json!({"name": "c", "token_type": "journey", "journey_id": "j"}),
    )
    .await;
    let expected = [appt["id"].as_str().unwrap(), api["id"].as_str().unwrap()];
    for query in [
        "?token_type=api&token_type=app",
        "?token_type[]=api&token_type[]=app",
        "?token_type%5B%5D=api&token_type%5B%5D=app",
        "?token_type=api,app",
    ] {
        assert_eq!(ids(&app.list_ok(&owner, query).await), expected, "{query}");
    }
    assert_eq!(app.list_ok(&owner, "?token_type=journey").await.len(), 1);
    assert_eq!(app.list_ok(&owner, "").await.len(), 3);
    assert_error(
        app.list(&owner, "?token_type=root").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn revoke_answers_the_item_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app
        .create_ok(&owner, json!({"name": "r", "expires_in": "1d"}))
        .await;
    let id = created["id"].as_str().unwrap();

    let first = app.revoke(&owner, id).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["id"], id);
    assert_eq!(first["name"], "r");
    assert_eq!(first["expires_at"], created["expires_at"]);
    assert!(first["revoked_at"].is_string());

    let second = app.revoke(&owner, id).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        second["revoked_at"], first["revoked_at"],
        "the first revocation time stays"
    );

    for unknown in ["api_AAAAAAAAAAAAAAAAAAAAAA", "nonsense", "api_"] {
        assert_error(app.revoke(&owner, unknown).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn organizations_never_see_each_others_tokens() {
    let app = TestApp::spawn().await;
    let one = app.owner();
    let two = app.caller("2", &["2:owner"]);
    let token = app.create_ok(&one, json!({"name": "secret"})).await;
    let id = token["id"].as_str().unwrap();
    app.create_ok(&two, json!({"name": "theirs"})).await;

    assert_eq!(ids(&app.list_ok(&two, "").await).len(), 1);
    assert!(!ids(&app.list_ok(&two, "").await).contains(&id));
    // Another organization's id is a 404, never a 403, so that ids cannot be probed.
    assert_error(app.revoke(&two, id).await, StatusCode::NOT_FOUND).await;
    assert_eq!(
        app.list_ok(&one, "").await.len(),
        1,
        "the token is still active"
    );

    // Its own token, turned on its creator's organization, sees only its own organization too.
    let theirs = app.create_ok(&two, json!({"name": "t2"})).await;
    let t2 = theirs["token"].as_str().unwrap();
    assert_error(app.revoke(t2, id).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_as_a_caller() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(&app.owner(), json!({"name": "to revoke"}))
        .await;
    let jwt = created["token"].as_str().unwrap();
    assert_eq!(app.list(jwt, "").await.status(), StatusCode::OK);
    app.revoke(&app.owner(), created["id"].as_str().unwrap())
        .await;
    crate::auth::assert_refused_with(
        app.list(jwt, "").await,
        Some("the token has been revoked"),
        "revoked",
    )
    .await;
}

#[tokio::test]
async fn a_caller_without_an_organization_is_forbidden() {
    let app = TestApp::spawn().await;
    let no_org = app
        .issuer
        .token(json!({"sub": "someone", "assignments": ["1:owner"]}));
    assert_error(app.list(&no_org, "").await, StatusCode::FORBIDDEN).await;
    assert_error(
        app.create(&no_org, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn a_cursor_outside_the_stores_range_of_times_is_a_400() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = TestApp::spawn().await;
    let owner = app.owner();
    app.create_ok(&owner, json!({"name": "one"})).await;
    let id = "api_5ZugdRXasLfWBypHi93Fk7";
    // 4714 BC (before PostgreSQL's first day), chrono's first and last instants, year 10000.
    for micros in [
        -210_900_000_000_000_000_i64,
        -8_334_601_228_800_000_000,
        8_210_266_876_799_999_999,
        253_402_300_800_000_000,
    ] {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{micros}:{id}"));
        let response = app.list(&owner, &format!("?cursor={cursor}")).await;
        let message = assert_error(response, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("cursor"), "{micros}: {message}");
    }
    // A cursor within the range still pages.
    let cursor = URL_SAFE_NO_PAD.encode(format!("{}:{id}", 253_402_300_799_000_000_i64));
    assert_eq!(
        app.list(&owner, &format!("?cursor={cursor}"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn listing_contact_identification_tokens_finds_none_as_they_are_never_stored() {
    let app = TestApp::spawn().await;
    app.create_ok(&app.owner(), json!({"name": "listed"})).await;
    for query in [
        "?token_type=contact_identification",
        "?token_type[]=contact_identification",
    ] {
        assert!(app.list_ok(&app.owner(), query).await.is_empty(), "{query}");
    }
    assert_eq!(
        app.list_ok(&app.owner(), "?token_type=api,contact_identification")
            .await
            .len(),
        1
    );
}
