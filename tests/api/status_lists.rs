//! Token Status Lists (draft-ietf-oauth-status-list): every stored token names an index in a list
//! of its own key set; the list verifies against that set's JWKS and shows the token's status, on
//! every replica.

use std::collections::HashSet;
use std::io::Read;

use access_tokens::tokens::status_list::{MAX_DECODED_BYTES, StatusList};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{StoreKind, TestApp, eventually};

/// The path of `uri` on `app`, which serves it (`uri` starts with the public URL).
fn path_of<'a>(app: &TestApp, uri: &'a str) -> &'a str {
    uri.strip_prefix(&app.public_url)
        .expect("a URI of this service")
}

/// Fetches the list at `uri` and verifies it as a relying party would (section 8.3): the
/// response's type, the JWT's `typ`, RS256 and a key of the set's published JWKS (reached through
/// its discovery document), `sub` equal to `uri`, and a fresh `exp`. Returns its claims and the
/// decoded list.
async fn fetch_list(app: &TestApp, prefix: &str, uri: &str) -> (Value, StatusList) {
    let response = app.get(path_of(app, uri)).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    assert_eq!(
        response.headers()["content-type"],
        "application/statuslist+jwt"
    );
    let jwt = response.text().await.unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("statuslist+jwt"));
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.expect("a kid");
    let jwks = app.jwks(prefix).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the list's kid is in the key set's JWKS");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let issuer = format!("{}/v1/access-tokens{prefix}", app.public_url);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer.as_str()]);
    validation.set_required_spec_claims(&["iss", "sub", "iat", "exp"]);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(&jwt, &key, &validation)
        .expect("the list verifies against the key set's JWKS")
        .claims;
    assert_eq!(claims["sub"], uri, "sub is the URI byte for byte");
    // The test's STATUS_LIST_TTL (60 s unless a test sets another), and valid for ten of it.
    let ttl = claims["ttl"].as_i64().expect("an integer ttl");
    assert!(ttl > 0, "ttl {ttl}");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        10 * ttl
    );
    assert_eq!(claims["status_list"]["bits"], 2);
    let list = StatusList::decode(
        2,
        claims["status_list"]["lst"].as_str().unwrap(),
        MAX_DECODED_BYTES,
    )
    .unwrap();
    (claims, list)
}

/// The claims of a JWT, read without verifying it (to compare two versions of one list).
fn unverified_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The status the list at `uri` shows for index `idx`.
pub(crate) async fn status_at(app: &TestApp, prefix: &str, uri: &str, idx: u64) -> u8 {
    let (_, list) = fetch_list(app, prefix, uri).await;
    list.get(idx).expect("the index is inside the list")
}

/// The `status_list` member of a token's `status` claim, as a verifier reads it.
fn status_of(claims: &Value) -> (u64, String) {
    let reference = &claims["status"]["status_list"];
    (
        reference["idx"].as_u64().expect("an integer idx"),
        reference["uri"].as_str().expect("a string uri").to_owned(),
    )
}

/// Every token of `created` names a place of its own in the `api` set's lists.
async fn assert_no_index_twice(app: &TestApp, created: &[Value]) {
    let mut seen = HashSet::new();
    for token in created {
        assert!(
            seen.insert(status_of_token(app, "", token).await),
            "an index handed out twice"
        );
    }
}

/// The status reference of a created token, read from its claims once they verify against the
/// key set's published JWKS (`prefix`: the set's path, `""` for api).
pub(crate) async fn status_of_token(app: &TestApp, prefix: &str, created: &Value) -> (u64, String) {
    let claims = app
        .verify(prefix, created["token"].as_str().unwrap())
        .await
        .unwrap();
    status_of(&claims)
}

#[tokio::test]
async fn every_stored_token_names_its_own_index_in_a_list_of_its_key_set() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let mut seen = HashSet::new();
    for body in [
        json!({"name": "a"}),
        json!({"name": "b", "token_type": "app"}),
        json!({"name": "c", "token_type": "assume"}),
    ] {
        let created = app.create_ok(&owner, body).await;
        let (idx, uri) = status_of_token(&app, "", &created).await;
        assert_eq!(
            uri,
            format!("{}/v1/access-tokens/status-lists/0", app.public_url)
        );
        assert!(seen.insert(idx), "index {idx} handed out twice");
    }
    let journey = app
        .create_ok(
            &owner,
            json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
        )
        .await;
    let (_, uri) = status_of_token(&app, "/public", &journey).await;
    assert_eq!(
        uri,
        format!("{}/v1/access-tokens/public/status-lists/0", app.public_url)
    );
}

/// Indices are a keyed permutation of the order in which tokens are minted: tokens created one
/// after the other do not sit side by side in the list, and the list shows each one's status at
/// the index its own token names, on both stores.
#[tokio::test]
async fn tokens_minted_together_are_not_neighbours_in_the_list() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let mut created = Vec::new();
    for n in 0..12 {
        created.push(
            app.create_ok(&owner, json!({"name": format!("t{n}")}))
                .await,
        );
    }
    let mut indices = Vec::new();
    for token in &created {
        indices.push(status_of_token(&app, "", token).await.0);
    }
    let close = indices
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) < 8)
        .count();
    assert!(close <= 2, "consecutive tokens at {indices:?}");
    let mut sorted = indices.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), indices.len(), "never shared: {indices:?}");
    // The list agrees with every token: the revoked one is 1 at its index, the others 0.
    let revoked = &created[5];
    assert_eq!(
        app.revoke(&owner, revoked["id"].as_str().unwrap())
            .await
            .status(),
        reqwest::StatusCode::OK
    );
    let uri = status_of_token(&app, "", revoked).await.1;
    assert!(
        eventually(30, || async {
            status_at(&app, "", &uri, indices[5]).await == 1
        })
        .await,
        "the revoked token's own index reads 1"
    );
    for (n, idx) in indices.iter().enumerate() {
        let expected = u8::from(n == 5);
        assert_eq!(status_at(&app, "", &uri, *idx).await, expected, "token {n}");
    }
}

#[tokio::test]
async fn a_rotated_token_gets_a_new_index() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app.create_ok(&owner, json!({"name": "r"})).await;
    let before = status_of_token(&app, "", &created).await;
    let rotated: Value = app
        .rotate(&owner, created["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let after = status_of_token(&app, "", &rotated).await;
    assert_eq!(before.1, after.1);
    assert_ne!(before.0, after.0);
}

#[tokio::test]
async fn contact_identification_tokens_carry_no_status() {
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(
            &app.owner(),
            json!({"name": "c", "token_type": "contact_identification", "portal_id": "p",
                   "contact_id": "c1", "surface_id": "s", "allowed_operations": ["read"],
                   "expires_in": 600}),
        )
        .await;
    let claims = app
        .verify(
            "/contact-identification",
            created["token"].as_str().unwrap(),
        )
        .await
        .unwrap();
    assert!(claims.get("status").is_none(), "{claims}");
}

#[tokio::test]
async fn concurrent_creations_never_share_an_index() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let creations = (0..40).map(|i| app.create_ok(&owner, json!({"name": format!("t{i}")})));
    let created = futures_util::future::join_all(creations).await;
    assert_no_index_twice(&app, &created).await;
}

#[tokio::test]
async fn replicas_creating_at_once_never_share_an_index_and_each_jwt_names_its_rows_place() {
    // On PostgreSQL each replica reserves indices ahead, a block at a time, and signs a JWT while
    // its row is written: two replicas' blocks never overlap, and the place a JWT names is the
    // place its row was written at (a revocation, which marks the row's place, shows there).
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    // Each replica's own caller (each trusts its own issuer), of the same organization.
    let callers = [(&a, a.owner()), (other, other.owner())];
    let creations = (0..30).map(|i| {
        let (app, owner) = &callers[i % 2];
        app.create_ok(owner, json!({"name": format!("r{i}")}))
    });
    let created = futures_util::future::join_all(creations).await;
    assert_no_index_twice(&a, &created).await;
    for (i, token) in created.iter().enumerate().step_by(7) {
        let (app, owner) = &callers[i % 2];
        let response = app.revoke(owner, token["id"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    for (i, token) in created.iter().enumerate() {
        let (idx, uri) = status_of_token(&a, "", token).await;
        let expected = u8::from(i % 7 == 0);
        assert!(
            eventually(10, || async {
                status_at(&a, "", &uri, idx).await == expected
            })
            .await,
            "token {i} shows {expected} at the index its JWT names"
        );
    }
}

#[tokio::test]
async fn a_new_token_shows_valid_and_a_revoked_one_invalid_on_another_replica() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    let owner = a.owner();
    let created = a
        .create_ok(&owner, json!({"name": "gateway-checked"}))
        .await;
    let (idx, uri) = status_of_token(&a, "", &created).await;
    assert_eq!(status_at(&a, "", &uri, idx).await, 0);
    assert_eq!(status_at(other, "", &uri, idx).await, 0);

    let response = a.revoke(&owner, created["id"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The bound is a second (the feed's delivery and one render); the test allows more so that a
    // loaded machine does not fail it, and never measures time.
    assert!(
        eventually(10, || async { status_at(other, "", &uri, idx).await == 1 }).await,
        "the revocation reached the other replica's list"
    );
    assert!(eventually(10, || async { status_at(&a, "", &uri, idx).await == 1 }).await);
}

#[tokio::test]
async fn public_tokens_are_in_the_public_sets_lists_signed_by_its_key() {
    let app = TestApp::spawn().await;
    let owner = app.owner();
    let created = app
        .create_ok(
            &owner,
            json!({"name": "p", "token_type": "portal", "portal_id": "p1"}),
        )
        .await;
    let (idx, uri) = status_of_token(&app, "/public", &created).await;
    assert!(
        uri.contains("/v1/access-tokens/public/status-lists/"),
        "{uri}"
    );
    let (list_claims, list) = fetch_list(&app, "/public", &uri).await;
    assert_eq!(list.get(idx), Some(0));
    assert_eq!(
        list_claims["iss"],
        format!("{}/v1/access-tokens/public", app.public_url)
    );
    // Not signed by the api set's keys.
    let response = app.get(path_of(&app, &uri)).await;
    let jwt = response.text().await.unwrap();
    let kid = jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap();
    let api = app.jwks("").await;
    assert!(
        api["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != kid),
        "a public list is not signed by an api key"
    );
    app.revoke(&owner, created["id"].as_str().unwrap()).await;
    assert!(
        eventually(10, || async {
            status_at(&app, "/public", &uri, idx).await == 1
        })
        .await
    );
}

#[tokio::test]
async fn a_deleted_row_shows_invalid() {
    // A row deleted by hand is announced by the revocation feed on PostgreSQL; the embedded store
    // has no feed and sees it when the lists are next signed (half their validity).
    if crate::helpers::store() == StoreKind::Sqlite {
        return;
    }
    let app = TestApp::spawn().await;
    let created = app
        .create_ok(&app.owner(), json!({"name": "deleted"}))
        .await;
    let (idx, uri) = status_of_token(&app, "", &created).await;
    app.execute_with(
        "delete from access_tokens where id = $1",
        created["id"].as_str().unwrap(),
    )
    .await;
    assert!(eventually(10, || async { status_at(&app, "", &uri, idx).await == 1 }).await);
}

#[tokio::test]
async fn lists_are_cached_compressed_and_open_to_any_origin() {
    let app = TestApp::spawn().await;
    let path = "/v1/access-tokens/status-lists/0";
    let client = reqwest::Client::new();
    let plain = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    let headers = plain.headers().clone();
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("content-encoding").is_none());
    let etag = headers["etag"].clone();
    let jwt = plain.text().await.unwrap();
    assert_eq!(unverified_claims(&jwt)["ttl"], 60, "STATUS_LIST_TTL");

    let again = client
        .get(app.url(path))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag);

    let zipped = client
        .get(app.url(path))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(
        zipped.headers()["content-type"],
        "application/statuslist+jwt"
    );
    let bytes = zipped.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(bytes.as_ref())
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, jwt);
    assert!(bytes.len() < jwt.len());
}

#[tokio::test]
async fn an_unknown_list_is_a_404_with_the_contract_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/access-tokens/status-lists/1",
        "/v1/access-tokens/status-lists/00",
        "/v1/access-tokens/status-lists/%30",
        "/v1/access-tokens/status-lists/x",
        "/v1/access-tokens/status-lists/99999999999999999999",
        "/v1/access-tokens/public/status-lists/-1",
        "/v1/access-tokens/contact-identification/status-lists/0",
        "/v1/access-tokens/contact-identification/status-lists",
    ] {
        crate::helpers::assert_error(app.get(path).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn discovery_names_the_aggregation_which_names_every_list() {
    let app = TestApp::spawn().await;
    for prefix in ["", "/public", "/portal-preview"] {
        let discovery: Value = app
            .get(&format!(
                "/v1/access-tokens{prefix}/.well-known/openid-configuration"
            ))
            .await
            .json()
            .await
            .unwrap();
        let issuer = discovery["issuer"].as_str().unwrap();
        let endpoint = discovery["status_list_aggregation_endpoint"]
            .as_str()
            .unwrap();
        assert_eq!(endpoint, format!("{issuer}/status-lists"));
        let response = app.get(path_of(&app, endpoint)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let aggregation: Value = response.json().await.unwrap();
        assert_eq!(
            aggregation,
            json!({"status_lists": [format!("{issuer}/status-lists/0")]})
        );
        fetch_list(&app, prefix, &format!("{issuer}/status-lists/0")).await;
    }
    let discovery: Value = app
        .get("/v1/access-tokens/contact-identification/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert!(discovery.get("status_list_aggregation_endpoint").is_none());
}

#[tokio::test]
async fn lists_are_signed_again_before_they_expire() {
    let app = TestApp::spawn_with(|s| s.status_list_ttl = std::time::Duration::from_secs(1)).await;
    let uri = format!("{}/v1/access-tokens/status-lists/0", app.public_url);
    let first: Value = {
        let jwt = app.get(path_of(&app, &uri)).await.text().await.unwrap();
        unverified_claims(&jwt)
    };
    // Valid for ten ttls, signed again when half of that is gone.
    assert_eq!(
        first["exp"].as_i64().unwrap() - first["iat"].as_i64().unwrap(),
        10
    );
    assert!(
        eventually(20, || async {
            let jwt = app.get(path_of(&app, &uri)).await.text().await.unwrap();
            let claims = unverified_claims(&jwt);
            claims["iat"].as_i64() > first["iat"].as_i64()
        })
        .await
    );
}

#[tokio::test]
async fn a_full_list_is_followed_by_a_new_one_that_every_replica_serves() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    // As if 2^20 api tokens had been created: the next index is the first of list 1.
    match crate::helpers::store() {
        StoreKind::Postgres => {
            a.execute("select setval('status_index_api', 1048575)")
                .await
        }
        StoreKind::Sqlite => {
            a.execute("update status_list_counters set next_index = 1048576 where key_set = 'api'")
                .await
        }
    }
    let created = a
        .create_ok(&a.owner(), json!({"name": "first of list 1"}))
        .await;
    let (idx, uri) = status_of_token(&a, "", &created).await;
    // The list's first slot, published at its (permuted) index.
    let first_slot = a
        .count(
            "select count(*) from access_tokens where id = $1 and status_list = 1 and status_idx = 0",
            created["id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(first_slot, 1);
    assert!(idx < 1 << 20, "{idx}");
    assert_eq!(
        uri,
        format!("{}/v1/access-tokens/status-lists/1", a.public_url)
    );
    assert!(
        eventually(10, || async {
            other.get(path_of(other, &uri)).await.status() == StatusCode::OK
        })
        .await,
        "the new list is served by the other replica"
    );
    assert_eq!(status_at(other, "", &uri, idx).await, 0);
    let aggregation: Value = other
        .get("/v1/access-tokens/status-lists")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(aggregation["status_lists"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_suspended_token_shows_suspended_on_another_replica_and_valid_once_resumed() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let other = b.as_ref().unwrap_or(&a);
    let owner = a.owner();
    let created = a.create_ok(&owner, json!({"name": "suspended"})).await;
    let (idx, uri) = status_of_token(&a, "", &created).await;
    let id = created["id"].as_str().unwrap();
    for (action, shown) in [("suspend", 2), ("resume", 0), ("suspend", 2)] {
        let response = a
            .client
            .post(a.url(&format!("/v1/access-tokens/{id}/{action}")))
            .bearer_auth(&owner)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            eventually(10, || async {
                status_at(other, "", &uri, idx).await == shown
            })
            .await,
            "{action}: {shown} on the other replica"
        );
    }
    // Revoking a suspended token is for good: 1.
    a.revoke(&owner, id).await;
    assert!(eventually(10, || async { status_at(other, "", &uri, idx).await == 1 }).await);
}

/// The list's `ETag` as served.
async fn etag(app: &TestApp, uri: String) -> String {
    let response = app.get(path_of(app, &uri)).await;
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// A change updates the bit it touches and re-signs only that token's list, on this replica and
/// on another one (which reads the one token the feed names, not every revoked row): the other
/// lists keep their bytes, and their ETag.
#[tokio::test]
async fn a_change_re_signs_only_the_list_it_touches() {
    let a = TestApp::spawn().await;
    let b = a.another_replica().await;
    let owner = a.owner();
    let in_zero = a.create_ok(&owner, json!({"name": "in list 0"})).await;
    match crate::helpers::store() {
        StoreKind::Postgres => {
            a.execute("select setval('status_index_api', 1048575)")
                .await
        }
        StoreKind::Sqlite => {
            a.execute("update status_list_counters set next_index = 1048576 where key_set = 'api'")
                .await
        }
    }
    // On PostgreSQL a replica holds the indices it reserved before the jump: the token of list 1
    // comes from the other replica, which reserves its first block after it.
    let (creator, creator_owner) = match &b {
        Some(b) => (b, b.owner()),
        None => (&a, owner.clone()),
    };
    let in_one = creator
        .create_ok(&creator_owner, json!({"name": "in list 1"}))
        .await;
    let (idx_zero, uri_zero) = status_of_token(&a, "", &in_zero).await;
    let (idx_one, uri_one) = status_of_token(&a, "", &in_one).await;
    assert!(uri_one.ends_with("/status-lists/1"), "{uri_one}");
    for app in std::iter::once(&a).chain(b.as_ref()) {
        assert!(
            eventually(30, || async {
                app.get(path_of(app, &uri_one)).await.status() == StatusCode::OK
            })
            .await
        );
    }
    let mut before = Vec::new();
    for app in std::iter::once(&a).chain(b.as_ref()) {
        before.push(etag(app, uri_zero.clone()).await);
        // Past the second list 0 was signed in, so that signing it again would change its bytes.
        let jwt = app.get(path_of(app, &uri_zero)).await.text().await.unwrap();
        let iat = unverified_claims(&jwt)["iat"].as_i64().unwrap();
        assert!(eventually(10, || async { chrono::Utc::now().timestamp() > iat }).await);
    }
    assert_eq!(
        creator
            .revoke(&creator_owner, in_one["id"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    for (app, zero_etag) in std::iter::once(&a).chain(b.as_ref()).zip(before) {
        assert!(
            eventually(30, || async {
                status_at(app, "", &uri_one, idx_one).await == 1
            })
            .await,
            "the revoked token's list shows it"
        );
        assert_eq!(status_at(app, "", &uri_zero, idx_zero).await, 0);
        assert_eq!(
            etag(app, uri_zero.clone()).await,
            zero_etag,
            "list 0 is not signed again for a change in list 1"
        );
    }
}
