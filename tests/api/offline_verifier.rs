//! An offline verifier (the `access-tokens-verifier` crate, as a gateway would run it) sees
//! revocations and suspensions through the status lists, with no call per token to the service.

use std::time::Duration;

use access_tokens_verifier::{Error, Verifier};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn act(app: &TestApp, id: &str, action: &str) {
    let response = app
        .client
        .post(app.url(&format!("/v1/access-tokens/{id}/{action}")))
        .bearer_auth(app.owner())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK, "{action}");
}

#[tokio::test]
async fn an_offline_verifier_refuses_revoked_and_suspended_tokens_after_the_lists_ttl() {
    // Lists live one second in the verifier's cache: a change reaches it within ttl + 1 s. The
    // test waits for the condition, never for a time.
    let app = TestApp::spawn_with(|s| s.status_list_ttl = Duration::from_secs(1)).await;
    let verifier = Verifier::builder(format!("{}/v1/access-tokens", app.public_url))
        .status_ttl_bounds(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let revoked = app
        .create_ok(&app.owner(), json!({"name": "to revoke"}))
        .await;
    let suspended = app
        .create_ok(&app.owner(), json!({"name": "to suspend"}))
        .await;
    for token in [&revoked, &suspended] {
        let claims = verifier
            .verify(token["token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims.token_id.as_deref(), token["id"].as_str());
    }

    app.revoke(&app.owner(), &id(&revoked)).await;
    act(&app, &id(&suspended), "suspend").await;
    let refused = |token: &Value, expected: fn(&Error) -> bool| {
        let jwt = token["token"].as_str().unwrap().to_owned();
        let verifier = verifier.clone();
        async move {
            eventually(30, || async {
                verifier
                    .verify(&jwt)
                    .await
                    .as_ref()
                    .err()
                    .is_some_and(expected)
            })
            .await
        }
    };
    assert!(refused(&revoked, |e| matches!(e, Error::Revoked)).await);
    assert!(refused(&suspended, |e| matches!(e, Error::Suspended)).await);

    // Resumed, the token verifies again once the verifier's copy of the list is renewed.
    act(&app, &id(&suspended), "resume").await;
    let jwt = suspended["token"].as_str().unwrap();
    assert!(eventually(30, || async { verifier.verify(jwt).await.is_ok() }).await);
    // A token of the public set is checked against its own set's lists.
    let journey = app
        .create_ok(
            &app.owner(),
            json!({"name": "j", "token_type": "journey", "journey_id": "j1"}),
        )
        .await;
    let public = Verifier::builder(format!("{}/v1/access-tokens/public", app.public_url))
        .status_ttl_bounds(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let jwt = journey["token"].as_str().unwrap();
    public.verify(jwt).await.unwrap();
    app.revoke(&app.owner(), &id(&journey)).await;
    assert!(
        eventually(30, || async {
            matches!(public.verify(jwt).await, Err(Error::Revoked))
        })
        .await
    );
}

#[tokio::test]
async fn the_services_own_status_list_is_refused_as_an_access_token_everywhere() {
    // A list is signed with the key set's key and `iss`, and anyone may fetch it.
    let app = TestApp::spawn().await;
    let token = app.create_ok(&app.owner(), json!({"name": "listed"})).await;
    let claims = app
        .verify("", token["token"].as_str().unwrap())
        .await
        .unwrap();
    let uri = claims["status"]["status_list"]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = app
        .client
        .get(&uri)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verifier = Verifier::builder(format!("{}/v1/access-tokens", app.public_url))
        .build()
        .await
        .unwrap();
    assert!(
        matches!(
            verifier.verify(&list).await,
            Err(Error::NotAnAccessToken(_))
        ),
        "the verifier refuses the list"
    );
    let response = app
        .client
        .get(app.url("/v1/access-tokens"))
        .bearer_auth(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(app.introspect(&list).await, json!({"active": false}));
    // The token itself, with its status, verifies; the service's contact identification tokens
    // (never stored, no status) verify with the default rules too.
    verifier
        .verify(token["token"].as_str().unwrap())
        .await
        .unwrap();
    let contact = app
        .create_ok(
            &app.owner(),
            json!({"name": "c", "token_type": "contact_identification", "portal_id": "p",
                   "contact_id": "c1", "surface_id": "s", "allowed_operations": ["read"],
                   "expires_in": 300}),
        )
        .await;
    let contacts = Verifier::builder(format!(
        "{}/v1/access-tokens/contact-identification",
        app.public_url
    ))
    .build()
    .await
    .unwrap();
    contacts
        .verify(contact["token"].as_str().unwrap())
        .await
        .unwrap();
}
