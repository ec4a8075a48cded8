//! Who may do what: own tokens and admins, the roles that gate creation and impersonation,
//! lifetimes inherited from a calling token, parents and cascading revocation, and acting in
//! another organization.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items.iter().map(id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A member of organization 1 who is not an admin (user `member`).
fn member(app: &TestApp) -> String {
    app.issuer.user("1", "member", &["1:viewer"])
}

async fn send_in_org(app: &TestApp, org: &str, bearer: &str, body: Value) -> Response {
    app.client
        .post(app.url("/v1/access-tokens"))
        .bearer_auth(bearer)
        .header("x-epilot-org-id", org)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn list_in_org(app: &TestApp, org: &str, bearer: &str, path: &str) -> Response {
    app.client
        .get(app.url(path))
        .bearer_auth(bearer)
        .header("x-epilot-org-id", org)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_member_manages_their_own_tokens_and_an_admin_everyones() {
    let app = TestApp::spawn().await;
    let admins = app
        .create_ok(&app.owner(), json!({"name": "admin's"}))
        .await;
    let members = app
        .create_ok(&member(&app), json!({"name": "member's"}))
        .await;
    assert_eq!(members["created_by"], "member");

    // Another user's token is a 404 to a member, whatever they try; nothing changes.
    let before = app.written().await;
    let theirs = id(&admins);
    assert_error(
        app.get_token(&member(&app), &theirs).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.revoke(&member(&app), &theirs).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_error(
        app.rotate(&member(&app), &theirs).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.written().await, before);

    // A member lists their own tokens only, also when asking for someone else's.
    let own = app.list_ok(&member(&app), "").await;
    assert_eq!(ids(&own), [id(&members)]);
    assert!(
        app.list_ok(&member(&app), "?created_by=u-1")
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&app.list_ok(&member(&app), "?created_by=member").await),
        [id(&members)]
    );
    // ... and the audit events of their own tokens only.
    let events = app.audit_events(&member(&app), "").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["token_id"], members["id"]);

    // An admin sees all, filters by creator, and revokes a member's token.
    assert_eq!(
        ids(&app.list_ok(&app.owner(), "").await),
        sorted(vec![id(&admins), id(&members)])
    );
    assert_eq!(
        ids(&app.list_ok(&app.owner(), "?created_by=member").await),
        [id(&members)]
    );
    assert_eq!(app.audit_events(&app.owner(), "").await.len(), 2);
    let revoked = app.revoke(&app.owner(), &id(&members)).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    // The member sees that revocation among their token's events.
    let events = app.audit_events(&member(&app), "").await;
    assert_eq!(events[0]["action"], "revoked");
    assert_eq!(events[0]["actor"]["user_id"], "u-1");

    // A member's own token sees what its user sees, never more.
    let ci = app
        .create_ok(&member(&app), json!({"name": "ci", "expires_in": "1d"}))
        .await;
    let ci_token = ci["token"].as_str().unwrap();
    assert_error(
        app.get_token(ci_token, &theirs).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        ids(&app.list_ok(ci_token, "").await),
        [id(&ci)],
        "the member's other token is revoked"
    );
}

#[tokio::test]
async fn admin_roles_are_a_setting() {
    let app = TestApp::spawn_with(|s| {
        s.authority.admin_roles = vec!["token_admin".to_owned()];
    })
    .await;
    app.create_ok(&member(&app), json!({"name": "member's"}))
        .await;
    // `owner` is no admin here; `token_admin` is.
    assert!(app.list_ok(&app.owner(), "").await.is_empty());
    let token_admin = app.issuer.user("1", "boss", &["1:token_admin"]);
    assert_eq!(app.list_ok(&token_admin, "").await.len(), 1);
}

#[tokio::test]
async fn create_roles_when_set_gate_creation_and_rotation() {
    let app = TestApp::spawn_with(|s| {
        s.authority.create_roles = Some(vec!["token_creator".to_owned()]);
    })
    .await;
    let creator = app
        .issuer
        .user("1", "creator", &["1:token_creator", "1:viewer"]);
    let before = app.written().await;
    let message = assert_error(
        app.create(&member(&app), json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(message.contains("token_creator"), "{message}");
    assert!(message.contains("TOKEN_CREATE_ROLES"), "{message}");
    assert_eq!(app.written().await, before);

    app.create_ok(&app.owner(), json!({"name": "an admin may"}))
        .await;
    // A token holding only `viewer` is the creator's, but cannot create or rotate.
    let ci = app
        .create_ok(&creator, json!({"name": "ci", "assignments": ["1:viewer"]}))
        .await;
    let ci_token = ci["token"].as_str().unwrap();
    let before = app.written().await;
    assert_error(
        app.create(ci_token, json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_error(app.rotate(ci_token, &id(&ci)).await, StatusCode::FORBIDDEN).await;
    assert_eq!(app.written().await, before);
    assert_eq!(
        app.rotate(&creator, &id(&ci)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn only_impersonation_roles_mint_tokens_that_act_for_someone_else() {
    let app = TestApp::spawn().await;
    let preview = json!({"name": "p", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"});
    let contact = json!({
        "name": "c", "token_type": "contact_identification", "portal_id": "p1",
        "contact_id": "c1", "surface_id": "s1", "allowed_operations": ["read"], "expires_in": 300,
    });
    let before = app.written().await;
    for body in [&preview, &contact] {
        let message = assert_error(
            app.create(&member(&app), body.clone()).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(message.contains("IMPERSONATION_ROLES"), "{message}");
    }
    assert_eq!(app.written().await, before);
    for body in [&preview, &contact] {
        app.create_ok(&app.owner(), body.clone()).await;
    }

    let app = TestApp::spawn_with(|s| {
        s.authority.impersonation_roles = vec!["support".to_owned()];
    })
    .await;
    let support = app.issuer.user("1", "support", &["1:support"]);
    app.create_ok(&support, preview.clone()).await;
    assert_error(
        app.create(&app.owner(), preview).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

/// The `exp` claim of a JWT, read without verifying (the tests verify elsewhere).
fn exp_of(jwt: &str) -> Option<i64> {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["exp"].as_i64()
}

fn expires_at(item: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(item["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp()
}

#[tokio::test]
async fn a_token_never_outlives_the_token_that_created_it() {
    let app = TestApp::spawn().await;
    let assume = app
        .create_ok(
            &app.owner(),
            json!({"name": "for an hour", "token_type": "assume"}),
        )
        .await;
    let caller = assume["token"].as_str().unwrap();
    let limit = exp_of(caller).unwrap();

    // Without expires_in an api token would never expire: it gets the caller's expiry.
    let child = app.create_ok(caller, json!({"name": "child"})).await;
    assert_eq!(expires_at(&child), limit);
    assert_eq!(exp_of(child["token"].as_str().unwrap()), Some(limit));
    assert_eq!(child["parent_id"], assume["id"]);

    // Asking for more is a 400, never clamped; nothing is written.
    let before = app.written().await;
    for expires_in in [json!("2h"), json!(7200), json!("365d")] {
        let message = assert_error(
            app.create(caller, json!({"name": "longer", "expires_in": expires_in}))
                .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains("calling token"), "{message}");
    }
    assert_eq!(app.written().await, before);

    // Within the caller's lifetime, the asked-for lifetime stands.
    let short = app
        .create_ok(caller, json!({"name": "short", "expires_in": 600}))
        .await;
    let lifetime = expires_at(&short) - chrono::Utc::now().timestamp();
    assert!((590..=600).contains(&lifetime), "{lifetime}");

    // A rotation by the token keeps within it too; identity-provider callers are not bounded.
    let rotated = app.rotate(caller, &id(&short)).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    assert!(expires_at(&rotated) <= limit);
    assert_eq!(rotated["parent_id"], assume["id"]);
    let free = app.create_ok(&app.owner(), json!({"name": "free"})).await;
    assert!(free.get("expires_at").is_none());
    assert!(free.get("parent_id").is_none());
}

async fn revoke_cascade(app: &TestApp, bearer: &str, id: &str) -> Value {
    let response = app
        .client
        .delete(app.url(&format!("/v1/access-tokens/{id}?cascade=true")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn is_revoked(app: &TestApp, token: &Value) -> bool {
    let item: Value = app
        .get_token(&app.owner(), &id(token))
        .await
        .json()
        .await
        .unwrap();
    item.get("revoked_at").is_some()
}

#[tokio::test]
async fn cascade_revokes_descendants_and_leaves_siblings() {
    let app = TestApp::spawn().await;
    let root = app.create_ok(&app.owner(), json!({"name": "root"})).await;
    let root_token = root["token"].as_str().unwrap().to_owned();
    let child = app.create_ok(&root_token, json!({"name": "child"})).await;
    let sibling = app.create_ok(&root_token, json!({"name": "sibling"})).await;
    let grandchild = app
        .create_ok(
            child["token"].as_str().unwrap(),
            json!({"name": "grandchild"}),
        )
        .await;
    assert_eq!(grandchild["parent_id"], child["id"]);

    // Without cascade, revoking is as it always was.
    let plain = app.revoke(&app.owner(), &id(&sibling)).await;
    let plain: Value = plain.json().await.unwrap();
    assert!(plain.get("revoked_descendants").is_none());

    let events_before = app.audit_events(&app.owner(), "").await.len();
    let revoked = revoke_cascade(&app, &app.owner(), &id(&child)).await;
    assert_eq!(revoked["id"], child["id"]);
    assert_eq!(revoked["revoked_descendants"], json!([id(&grandchild)]));
    assert!(is_revoked(&app, &child).await);
    assert!(is_revoked(&app, &grandchild).await);
    assert!(!is_revoked(&app, &root).await);
    // One event per revoked token; the descendant's names the token the cascade started at.
    let events = app.audit_events(&app.owner(), "").await;
    assert_eq!(events.len(), events_before + 2);
    assert_eq!(events[0]["token_id"], grandchild["id"]);
    assert_eq!(events[0]["related_token_id"], child["id"]);
    // The grandchild no longer calls.
    let refused = app
        .list(grandchild["token"].as_str().unwrap(), "")
        .await
        .status();
    assert_eq!(refused, StatusCode::UNAUTHORIZED);

    // Cascading from the root reaches what is left below it; a second cascade finds nothing.
    let again = revoke_cascade(&app, &app.owner(), &id(&root)).await;
    assert_eq!(again["revoked_descendants"], json!([]));
    for bad in ["yes", "", "TRUE"] {
        assert_error(
            app.client
                .delete(app.url(&format!("/v1/access-tokens/{}?cascade={bad}", id(&root))))
                .bearer_auth(app.owner())
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}

#[tokio::test]
async fn x_epilot_org_id_acts_in_another_organization_with_the_roles_held_there() {
    let app = TestApp::spawn().await;
    let traveller = app.issuer.user("1", "traveller", &["1:owner", "2:viewer"]);
    let created = send_in_org(&app, "2", &traveller, json!({"name": "in 2"})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["assignments"], json!(["2:viewer"]));
    let org2_admin = app.caller("2", &["2:owner"]);
    assert_eq!(ids(&app.list_ok(&org2_admin, "").await), [id(&created)]);
    assert!(app.list_ok(&app.owner(), "").await.is_empty());
    let events = app.audit_events(&org2_admin, "").await;
    assert_eq!(events[0]["actor"]["org_id"], "2");
    assert_eq!(events[0]["actor"]["home_org_id"], "1");

    // In 2 the traveller is a viewer: their own tokens only, and no impersonation.
    let own = list_in_org(&app, "2", &traveller, "/v1/access-tokens").await;
    assert_eq!(own.status(), StatusCode::OK);
    let preview = json!({"name": "p", "token_type": "portal_preview", "portal_id": "p1", "portal_user_id": "pu1"});
    assert_error(
        send_in_org(&app, "2", &traveller, preview).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // No role in 3: 403, and nothing is written anywhere.
    let before = app.written().await;
    let message = assert_error(
        send_in_org(&app, "3", &traveller, json!({"name": "in 3"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(message.contains('3'), "{message}");
    assert_error(
        list_in_org(&app, "3", &traveller, "/v1/access-tokens").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(app.written().await, before);
    assert!(
        app.list_ok(&app.caller("3", &["3:owner"]), "")
            .await
            .is_empty()
    );
    // A token of this service holds roles of its own organization only: it cannot switch.
    let own_token = app.create_ok(&traveller, json!({"name": "home"})).await;
    assert_error(
        send_in_org(
            &app,
            "2",
            own_token["token"].as_str().unwrap(),
            json!({"name": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Naming the home organization changes nothing.
    assert_eq!(
        send_in_org(&app, "1", &traveller, json!({"name": "home too"}))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Sent twice (whatever the values, the same one too), the header names no one organization.
    let before = app.written().await;
    for (first, second) in [("2", "1"), ("1", "2"), ("2", "2")] {
        let twice = app
            .client
            .post(app.url("/v1/access-tokens"))
            .bearer_auth(&traveller)
            .header("x-epilot-org-id", first)
            .header("x-epilot-org-id", second)
            .json(&json!({"name": "twice"}))
            .send()
            .await
            .unwrap();
        let message = assert_error(twice, StatusCode::BAD_REQUEST).await;
        assert!(message.contains("more than once"), "{message}");
    }
    assert_eq!(app.written().await, before);
}

#[tokio::test]
async fn an_inherited_expiry_is_held_to_the_organization_policy() {
    let app = TestApp::spawn().await;
    let assume = app
        .create_ok(
            &app.owner(),
            json!({"name": "for an hour", "token_type": "assume"}),
        )
        .await;
    let caller = assume["token"].as_str().unwrap();
    // An inherited expiry is an expiry: require_expiry holds.
    app.set_policy(json!({"require_expiry": true})).await;
    let child = app.create_ok(caller, json!({"name": "child"})).await;
    assert_eq!(expires_at(&child), exp_of(caller).unwrap());
    // ... and it counts against max_expires_in: an hour left is more than ten minutes.
    app.set_policy(json!({"max_expires_in": {"api": 600}}))
        .await;
    let before = app.written().await;
    let message = assert_error(
        app.create(caller, json!({"name": "too long"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("max_expires_in"), "{message}");
    assert_eq!(app.written().await, before);
    app.create_ok(caller, json!({"name": "short", "expires_in": 600}))
        .await;
}

#[tokio::test]
async fn a_token_rotated_by_an_admin_stays_its_members() {
    let app = TestApp::spawn().await;
    let members = app
        .create_ok(&member(&app), json!({"name": "member's ci"}))
        .await;
    // An admin holding the token's role, rotating through a token of their own.
    let boss = app.issuer.user("1", "boss", &["1:admin", "1:viewer"]);
    let boss_token = app
        .create_ok(&boss, json!({"name": "boss's", "expires_in": "1d"}))
        .await;
    let rotated = app
        .rotate(boss_token["token"].as_str().unwrap(), &id(&members))
        .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    assert_eq!(rotated["created_by"], "member", "the owner is kept");
    assert_eq!(
        rotated["parent_id"],
        Value::Null,
        "not below the admin's token, whose cascade would revoke it"
    );
    // The member still sees and manages it; the audit event names the admin who rotated it.
    assert_eq!(ids(&app.list_ok(&member(&app), "").await), [id(&rotated)]);
    let events = app.audit_events(&member(&app), "").await;
    let rotation = events
        .iter()
        .find(|e| e["action"] == "rotated")
        .expect("the rotation is among the member's token's events");
    assert_eq!(rotation["actor"]["user_id"], "boss");
    // The new token acts for the member, and carries none of the admin's identity.
    let claims = app
        .verify("", rotated["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["user_id"], "member");
    assert!(claims.get("email").is_none() && claims.get("cognito:username").is_none());
    assert_eq!(
        ids(&app.list_ok(rotated["token"].as_str().unwrap(), "").await),
        [id(&rotated)]
    );
    // Revoking the admin's token with its descendants leaves the member's token alone.
    let cascade = app
        .client
        .delete(app.url(&format!(
            "/v1/access-tokens/{}?cascade=true",
            id(&boss_token)
        )))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(cascade.status(), StatusCode::OK);
    assert_eq!(ids(&app.list_ok(&member(&app), "").await), [id(&rotated)]);

    // A member rotating their own token still gets their own email in it.
    let again = app.rotate(&member(&app), &id(&rotated)).await;
    let again: Value = again.json().await.unwrap();
    let claims = app
        .verify("", again["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims["email"], "member@example.com");
}

/// Ownership names the principal: the issuer, the home organization and the user. The same user
/// id under another identity provider, or of another organization acting here, owns nothing of
/// this one's; what a token creates is its owner's.
#[tokio::test]
async fn ownership_names_the_issuer_the_home_organization_and_the_user() {
    let other_idp = crate::helpers::TestIssuer::spawn().await;
    let other_url = other_idp.url.clone();
    let app = TestApp::spawn_with(|s| s.trusted_issuers.push(other_url)).await;
    let bob = app.issuer.user("1", "bob", &["1:viewer"]);
    let bobs = app.create_ok(&bob, json!({"name": "bob's"})).await;

    // User `bob` of organization 1, signed in through another identity provider.
    let other_bob = other_idp.user("1", "bob", &["1:viewer"]);
    let others = app
        .create_ok(&other_bob, json!({"name": "other bob's"}))
        .await;
    assert_eq!(
        others["created_by"], "bob",
        "the contract's created_by is the user id"
    );
    assert_eq!(ids(&app.list_ok(&bob, "").await), [id(&bobs)]);
    assert_eq!(ids(&app.list_ok(&other_bob, "").await), [id(&others)]);
    assert_eq!(
        app.list_ok(&other_bob, "?created_by=bob").await.len(),
        1,
        "filtering by the user id shows only what the principal owns"
    );
    for (caller, theirs) in [(&bob, &others), (&other_bob, &bobs)] {
        assert_eq!(
            app.get_token(caller, &id(theirs)).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_error(app.revoke(caller, &id(theirs)).await, StatusCode::NOT_FOUND).await;
        assert_error(app.rotate(caller, &id(theirs)).await, StatusCode::NOT_FOUND).await;
        let events = app.audit_events(caller, "").await;
        assert!(
            events.iter().all(|e| e["token_id"] != theirs["id"]),
            "{events:?}"
        );
    }

    // What bob's token creates is bob's (this identity provider's bob), and the token manages
    // its owner's tokens, not the other bob's.
    let bobs_token = bobs["token"].as_str().unwrap();
    let child = app.create_ok(bobs_token, json!({"name": "child"})).await;
    assert_eq!(
        ids(&app.list_ok(&bob, "").await),
        sorted(vec![id(&bobs), id(&child)])
    );
    assert_eq!(ids(&app.list_ok(&other_bob, "").await), [id(&others)]);
    assert_eq!(
        app.get_token(bobs_token, &id(&others)).await.status(),
        StatusCode::NOT_FOUND
    );
    let claims = app.verify("", bobs_token).await.unwrap();
    let owner = claims["owner"]
        .as_str()
        .expect("a calling token names its owner");
    assert!(
        owner.starts_with("p1_") && !owner.contains("bob"),
        "{owner}"
    );

    // User `bob` of organization 2, holding a role in 1 and acting there: another principal.
    let visitor = app.issuer.user("2", "bob", &["2:viewer", "1:viewer"]);
    let listed: Vec<Value> = list_in_org(&app, "1", &visitor, "/v1/access-tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, Vec::<Value>::new());
    let path = format!("/v1/access-tokens/{}", id(&bobs));
    let read = list_in_org(&app, "1", &visitor, &path).await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let made = send_in_org(&app, "1", &visitor, json!({"name": "visitor's"})).await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    assert_eq!(ids(&app.list_ok(&bob, "").await).len(), 2, "not bob of 1's");
    let listed: Vec<Value> = list_in_org(&app, "1", &visitor, "/v1/access-tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&listed), [id(&made)]);
}

/// Tokens written before ownership named principals carry a legacy key (the user and its
/// organization, the issuer unknown): their user still manages them from that organization, a
/// visitor with the same user id does not, and the owner's rotation gives the new token the full
/// key.
#[tokio::test]
async fn tokens_from_before_principals_stay_their_users() {
    let app = TestApp::spawn().await;
    let bob = app.issuer.user("1", "bob", &["1:viewer"]);
    let old = app.create_ok(&bob, json!({"name": "from before"})).await;
    app.execute_with(
        "update access_tokens set owner = 'legacy:1:1:bob' where id = $1",
        &id(&old),
    )
    .await;
    assert_eq!(ids(&app.list_ok(&bob, "").await), [id(&old)]);
    let visitor = app.issuer.user("2", "bob", &["2:viewer", "1:viewer"]);
    let read = list_in_org(
        &app,
        "1",
        &visitor,
        &format!("/v1/access-tokens/{}", id(&old)),
    )
    .await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);

    let rotated = app.rotate(&bob, &id(&old)).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    let owner = app
        .count(
            "select count(*) from access_tokens where id = $1 and owner like 'p1%'",
            &id(&rotated),
        )
        .await;
    assert_eq!(owner, 1, "the rotated token has the full owner key");
    assert_eq!(ids(&app.list_ok(&bob, "").await), [id(&rotated)]);
}
