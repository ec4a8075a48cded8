//! Creating tokens of every type: the 201 body, the claims as a verifier sees them, expiry, roles.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

fn cid_body() -> Value {
    json!({
        "name": "Contact", "token_type": "contact_identification", "portal_id": "p1",
        "contact_id": "c1", "surface_id": "checkout", "allowed_operations": ["read:contact"],
        "expires_in": 300, "origin": "END_CUSTOMER_PORTAL", "email": "contact@example.com"
    })
}

#[tokio::test]
async fn api_token_is_created_with_inherited_roles_and_verifies_against_the_published_jwks() {
    let app = TestApp::spawn().await;
    let response = app
        .create(&app.owner(), json!({"name": "  CI pipeline  "}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();

    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("api_") && id.len() >= 20, "{id}");
    assert_eq!(body["name"], "CI pipeline");
    assert_eq!(body["token_type"], "api");
    assert_eq!(body["assignments"], json!(["1:owner", "1:viewer"]));
    assert_eq!(body["read_only"], false);
    assert_eq!(body["anonymize"], false);
    assert_eq!(body["created_by"], "u-1");
    assert!(
        body.get("expires_at").is_none(),
        "api tokens do not expire by default"
    );
    assert!(body.get("last_used").is_none());
    assert!(chrono::DateTime::parse_from_rfc3339(body["created_at"].as_str().unwrap()).is_ok());

    let claims = app
        .verify("", body["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        claims["iss"],
        format!("{}/v1/access-tokens", app.public_url)
    );
    for name in ["sub", "jti", "token_id"] {
        assert_eq!(claims[name], id, "{name}");
    }
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["token_name"], "CI pipeline");
    assert_eq!(claims["token_type"], "api");
    assert_eq!(claims["org_id"], "1");
    assert_eq!(claims["custom:ivy_org_id"], "1");
    assert_eq!(claims["user_id"], "u-1");
    assert_eq!(claims["custom:ivy_user_id"], "u-1");
    assert_eq!(claims["cognito:username"], "u-1@example.com");
    assert_eq!(claims["email"], "u-1@example.com");
    assert_eq!(claims["assignments"], json!(["1:owner", "1:viewer"]));
    assert_eq!(claims["assume_roles"], claims["assignments"]);
    assert_eq!(claims["read_only"], false);
    assert_eq!(claims["anonymize"], false);
    assert!(claims["iat"].is_i64());
    assert!(claims.get("exp").is_none());

    let header = jsonwebtoken::decode_header(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
}

#[tokio::test]
async fn every_token_type_is_signed_by_its_own_key_set() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"name": "a", "token_type": "app", "expires_in": "7d"}),
            "",
            "app_",
        ),
        (json!({"name": "a", "token_type": "assume"}), "", "asm_"),
        (
            json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
            "/public",
            "jrn_",
        ),
        (
            json!({"name": "p", "token_type": "portal", "portal_id": "p1", "expires_in": 3600}),
            "/public",
            "ptl_",
        ),
        (
            json!({"name": "v", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"}),
            "/portal-preview",
            "pvw_",
        ),
        (cid_body(), "/contact-identification", "cid_"),
    ];
    let sets = ["", "/public", "/portal-preview", "/contact-identification"];
    for (body, set, prefix) in cases {
        let created = app.create_ok(&app.owner(), body.clone()).await;
        let jwt = created["token"].as_str().unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(id.starts_with(prefix));
        // Every stored type is readable at once; a contact-identification token is never stored.
        let read = app.get_token(&app.owner(), id).await.status();
        let readable = if prefix == "cid_" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(read, readable, "GET of a fresh {prefix} token");
        let claims = app
            .verify(set, jwt)
            .await
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(
            claims["iss"],
            format!("{}/v1/access-tokens{set}", app.public_url)
        );
        assert_eq!(claims["token_type"], body["token_type"]);
        for other in sets.iter().filter(|s| **s != set) {
            assert!(
                app.verify(other, jwt).await.is_err(),
                "{prefix} token verified against {other:?}"
            );
        }
    }
}

#[tokio::test]
async fn type_fields_reach_the_item_and_the_claims() {
    let app = TestApp::spawn().await;
    let journey = app
        .create_ok(&app.owner(), json!({"name": "j", "token_type": "journey", "journey_id": "j1", "expires_in": "2 days"}))
        .await;
    assert_eq!(journey["journey_id"], "j1");
    assert_eq!(journey["assignments"], json!([]));
    let claims = app
        .verify("/public", journey["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["journey_id"], "j1");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        172_800
    );
    assert!(claims.get("read_only").is_none());

    let preview = app
        .create_ok(&app.owner(), json!({"name": "v", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"}))
        .await;
    assert_eq!(
        (
            preview["portal_id"].as_str(),
            preview["portal_user_id"].as_str()
        ),
        (Some("p1"), Some("pu1"))
    );
    let claims = app
        .verify("/portal-preview", preview["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["portal_user_id"], "pu1");

    let cid = app.create_ok(&app.owner(), cid_body()).await;
    assert_eq!(cid["contact_id"], "c1");
    assert_eq!(cid["origin"], "END_CUSTOMER_PORTAL");
    assert_eq!(cid["allowed_operations"], json!(["read:contact"]));
    let claims = app
        .verify("/contact-identification", cid["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["custom:surface_id"], "checkout");
    assert_eq!(claims["contact_id"], "c1");
    assert_eq!(claims["portal_id"], "p1");
    assert_eq!(claims["email"], "contact@example.com");
    assert_eq!(claims["allowed_operations"], json!(["read:contact"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn contact_identification_tokens_are_never_stored() {
    let app = TestApp::spawn().await;
    let cid = app.create_ok(&app.owner(), cid_body()).await;
    assert!(app.list_ok(&app.owner(), "").await.is_empty());
    assert_error(
        app.revoke(&app.owner(), cid["id"].as_str().unwrap()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn expiry_formats_set_exp_and_expires_at() {
    let app = TestApp::spawn().await;
    for (expires_in, seconds) in [
        (json!(3600), 3600),
        (json!("3600000"), 3600),
        (json!("1h"), 3600),
        (json!("90 minutes"), 5400),
        (json!("2 days"), 172_800),
        (json!("1w"), 604_800),
        (json!("1y"), 31_536_000),
        (json!("365d"), 31_536_000),
        (json!(30), 30),
    ] {
        let body = app
            .create_ok(&app.owner(), json!({"name": "e", "expires_in": expires_in}))
            .await;
        let claims = app
            .verify("", body["token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            seconds,
            "{expires_in}"
        );
        let expires_at =
            chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires_at.timestamp(), claims["exp"].as_i64().unwrap());
    }
}

#[tokio::test]
async fn expiry_outside_a_types_range_is_a_400_never_clamped() {
    let app = TestApp::spawn().await;
    let mut cid_short = cid_body();
    cid_short["expires_in"] = json!(59);
    let mut cid_long = cid_body();
    cid_long["expires_in"] = json!(901);
    let mut cid_missing = cid_body();
    cid_missing.as_object_mut().unwrap().remove("expires_in");
    for body in [
        json!({"name": "e", "expires_in": 29}),
        json!({"name": "e", "expires_in": "29s"}),
        json!({"name": "e", "expires_in": "366d"}),
        json!({"name": "e", "expires_in": "2y"}),
        json!({"name": "e", "token_type": "app", "expires_in": "8d"}),
        json!({"name": "e", "token_type": "journey", "journey_id": "j", "expires_in": "169h"}),
        json!({"name": "e", "token_type": "portal", "portal_id": "p", "expires_in": 604_801}),
        json!({"name": "e", "expires_in": "tomorrow"}),
        json!({"name": "e", "expires_in": -60}),
        json!({"name": "e", "expires_in": 3600.5}),
        cid_short,
        cid_long,
        cid_missing,
    ] {
        let message = assert_error(
            app.create(&app.owner(), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains("expires_in"), "{body}: {message}");
    }
    assert!(
        app.list_ok(&app.owner(), "").await.is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn bad_bodies_are_told_in_the_contracts_words() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!([]),
            "the request body must be a JSON object of the new token's fields, such as {\"name\": \"CI pipeline\", \"expires_in\": \"90d\"}, not an array",
        ),
        (
            json!("CI pipeline"),
            "the request body must be a JSON object of the new token's fields, such as {\"name\": \"CI pipeline\", \"expires_in\": \"90d\"}, not a string",
        ),
        (
            json!({"name": "a", "scopes": ["read"]}),
            "scopes is not a field of api tokens, which take name, token_type, assignments, assume_roles, expires_in, read_only, anonymize",
        ),
        (
            json!({"name": "a", "token_type": "journey", "journey_id": "j", "assignments": []}),
            "assignments is not a field of journey tokens, which take name, token_type, journey_id, expires_in",
        ),
        (json!({"name": 42}), "name must be a string"),
        (
            json!({"name": "a", "assignments": "1:owner"}),
            "assignments must be an array of strings",
        ),
        (
            json!({"name": "a", "read_only": "yes"}),
            "read_only must be true or false",
        ),
        (
            json!({"name": "a", "expires_in": "3600"}),
            "expires_in is 3 s; api tokens live at least 30 s: a string of digits alone, such as \"3600\", is milliseconds; send 3600 as a number, or \"3600s\", for seconds",
        ),
    ];
    for (body, says) in cases {
        let message = assert_error(
            app.create(&app.owner(), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(message, says, "{body}");
        assert!(!message.contains("line 1"), "no parser position: {message}");
    }
    // A field sent twice is refused by name too, whatever the parser keeps.
    let twice = app
        .client
        .post(app.url("/v1/access-tokens"))
        .bearer_auth(app.owner())
        .header("content-type", "application/json")
        .body(r#"{"name": "a", "name": "b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_error(twice, StatusCode::BAD_REQUEST).await,
        "name appears twice in the request body"
    );
    assert!(app.list_ok(&app.owner(), "").await.is_empty());
}

#[tokio::test]
async fn closed_schemas_refuse_fields_a_type_does_not_take() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(256)}), "name"),
        (json!({"name": "a\u{0000}b"}), "name"),
        (json!({"name": 42}), "name"),
        (
            json!({"name": "a", "token_type": "superuser"}),
            "token_type",
        ),
        (json!({"name": "a", "unknown": true}), "unknown"),
        (json!({"name": "a", "journey_id": "j"}), "journey_id"),
        (
            json!({"name": "a", "token_type": "assume", "expires_in": 60}),
            "expires_in",
        ),
        (json!({"name": "a", "token_type": "journey"}), "journey_id"),
        (
            json!({"name": "a", "token_type": "journey", "journey_id": "j", "read_only": true}),
            "read_only",
        ),
        (json!({"name": "a", "token_type": "portal"}), "portal_id"),
        (
            json!({"name": "a", "token_type": "portal", "portal_id": "p", "assignments": []}),
            "assignments",
        ),
        (
            json!({"name": "a", "token_type": "portal_preview", "portal_id": "p"}),
            "portal_user_id",
        ),
        (
            json!({"name": "a", "token_type": "portal_preview", "portal_id": "p", "portal_user_id": "u", "expires_in": 60}),
            "expires_in",
        ),
        (
            json!({"name": "a", "token_type": "contact_identification", "portal_id": "p"}),
            "contact_id",
        ),
        (
            json!({"name": "a", "assignments": ["1:owner"], "assume_roles": ["1:owner"]}),
            "assume_roles",
        ),
        (json!({"name": "a", "assignments": ["owner"]}), "owner"),
        (json!({"name": "a", "read_only": "true"}), "read_only"),
        (json!({"name": "a", "origin": "INSTALLER_PORTAL"}), "origin"),
    ];
    for (body, mentions) in cases {
        let message = assert_error(
            app.create(&app.owner(), body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            message.contains(mentions),
            "{body}: {message:?} should mention {mentions}"
        );
    }
    let mut cid = cid_body();
    cid["surface_id"] = json!("s".repeat(65));
    assert_error(app.create(&app.owner(), cid).await, StatusCode::BAD_REQUEST).await;
    let mut cid = cid_body();
    cid["origin"] = json!("PARTNER_PORTAL");
    assert_error(app.create(&app.owner(), cid).await, StatusCode::BAD_REQUEST).await;
    let mut cid = cid_body();
    cid["allowed_operations"] = json!("read");
    assert_error(app.create(&app.owner(), cid).await, StatusCode::BAD_REQUEST).await;
    assert!(
        app.list_ok(&app.owner(), "").await.is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn requested_roles_are_a_subset_of_the_callers() {
    let app = TestApp::spawn().await;
    let body = app
        .create_ok(
            &app.owner(),
            json!({"name": "r", "assignments": ["1:viewer"]}),
        )
        .await;
    assert_eq!(body["assignments"], json!(["1:viewer"]));
    let claims = app
        .verify("", body["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["assignments"], json!(["1:viewer"]));
    assert_eq!(claims["assume_roles"], json!(["1:viewer"]));

    // `assume_roles` is another name for `assignments`.
    let body = app
        .create_ok(
            &app.owner(),
            json!({"name": "r", "token_type": "assume", "assume_roles": ["1:owner"]}),
        )
        .await;
    assert_eq!(body["assignments"], json!(["1:owner"]));

    let empty = app
        .create_ok(&app.owner(), json!({"name": "r", "assignments": []}))
        .await;
    assert_eq!(empty["assignments"], json!([]));
}

#[tokio::test]
async fn roles_never_escalate() {
    let app = TestApp::spawn().await;
    let viewer = app.caller("1", &["1:viewer", "2:owner"]);
    for roles in [
        json!(["1:owner"]),
        json!(["2:owner"]),
        json!(["1:viewer", "1:admin"]),
    ] {
        assert_error(
            app.create(&viewer, json!({"name": "r", "assignments": roles}))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    // Inherited roles are only those of the caller's organization.
    let body = app.create_ok(&viewer, json!({"name": "r"})).await;
    assert_eq!(body["assignments"], json!(["1:viewer"]));
    assert_eq!(
        app.list_ok(&viewer, "").await.len(),
        1,
        "refused requests wrote nothing"
    );
}

#[tokio::test]
async fn inherited_roles_are_held_to_the_cap_of_requested_ones() {
    let app = TestApp::spawn().await;
    let held: Vec<String> = (0..550).map(|i| format!("1:r{i}")).collect();
    let held: Vec<&str> = held.iter().map(String::as_str).collect();
    let caller = app.caller("1", &held);
    let message = assert_error(
        app.create(&caller, json!({"name": "everything"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("assignments"), "{message}");
    assert!(
        app.list_ok(&caller, "").await.is_empty(),
        "the refused request wrote nothing"
    );
    // Naming at most 100 of them works, and the token calls the API.
    let named = app
        .create_ok(
            &caller,
            json!({"name": "named", "assignments": &held[..100]}),
        )
        .await;
    let jwt = named["token"].as_str().unwrap();
    assert_eq!(app.list_ok(jwt, "").await.len(), 1);
}

#[tokio::test]
async fn tokens_of_this_service_call_the_api_within_their_own_roles() {
    let app = TestApp::spawn().await;
    let api = app
        .create_ok(
            &app.owner(),
            json!({"name": "automation", "assignments": ["1:viewer"]}),
        )
        .await;
    let api_jwt = api["token"].as_str().unwrap();

    // The token lists its organization's tokens and creates narrower ones.
    assert_eq!(app.list_ok(api_jwt, "").await.len(), 1);
    let child = app
        .create_ok(api_jwt, json!({"name": "child", "token_type": "assume"}))
        .await;
    assert_eq!(child["assignments"], json!(["1:viewer"]));
    let claims = app
        .verify("", child["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["user_id"], "u-1", "the creating user carries over");
    assert_error(
        app.create(api_jwt, json!({"name": "x", "assignments": ["1:owner"]}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Read-only tokens read, and neither create nor revoke.
    let ro = app
        .create_ok(&app.owner(), json!({"name": "ro", "read_only": true}))
        .await;
    let ro_jwt = ro["token"].as_str().unwrap();
    assert_eq!(app.list_ok(ro_jwt, "").await.len(), 3);
    assert_error(
        app.create(ro_jwt, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(
        app.revoke(ro_jwt, api["id"].as_str().unwrap()).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // An anonymizing token only makes anonymizing tokens.
    let anon = app
        .create_ok(&app.owner(), json!({"name": "anon", "anonymize": true}))
        .await;
    let anon_jwt = anon["token"].as_str().unwrap();
    let inherited = app.create_ok(anon_jwt, json!({"name": "x"})).await;
    assert_eq!(inherited["anonymize"], true);
    assert_error(
        app.create(anon_jwt, json!({"name": "x", "anonymize": false}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Tokens of the other key sets are not callers.
    let journey = app
        .create_ok(
            &app.owner(),
            json!({"name": "j", "token_type": "journey", "journey_id": "j"}),
        )
        .await;
    assert_error(
        app.list(journey["token"].as_str().unwrap(), "").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
