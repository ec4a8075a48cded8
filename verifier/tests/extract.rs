//! The axum extractor (feature `axum`): claims for a valid bearer token, 401 for a refused one, 503
//! when the token's status cannot be learnt.
#![cfg(feature = "axum")]

mod common;

use access_tokens_verifier::{Bearer, Verifier};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use common::TestIssuer;
use std::time::Duration;

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

async fn me(Bearer(claims): Bearer) -> String {
    claims.user_id.unwrap_or_default()
}

/// Serves `/me` behind the extractor with `verifier`; its URL.
async fn serve(verifier: Verifier) -> String {
    let app = Router::new()
        .route("/me", get(me))
        .with_state(AppState { verifier });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_extractor_gives_claims_or_a_401_with_a_bearer_challenge() {
    let issuer = TestIssuer::start().await;
    issuer.set_status("1", 1, 1);
    let url = serve(issuer.verifier().await).await;
    let client = reqwest::Client::new();

    let ok = client
        .get(&url)
        .header("Authorization", format!("Bearer {}", issuer.token(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "u-1");

    let lower = client
        .get(&url)
        .header("Authorization", format!("bearer {}", issuer.token(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");

    for token in [issuer.token(1), "not-a-token".to_owned()] {
        let refused = client
            .get(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(
            refused.headers()["www-authenticate"],
            r#"Bearer error="invalid_token""#
        );
    }

    for header in [None, Some("Basic dXNlcjpwYXNz")] {
        let mut request = client.get(&url);
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let missing = request.send().await.unwrap();
        assert_eq!(missing.status(), 401);
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn a_token_whose_status_list_is_unavailable_is_a_503_to_retry_not_a_401() {
    let issuer = TestIssuer::start().await;
    let url = serve(
        issuer
            .builder()
            .status_ttl_bounds(Duration::from_secs(2), Duration::from_secs(60))
            .build()
            .await
            .unwrap(),
    )
    .await;
    issuer.with(|s| s.unavailable = true);
    let client = reqwest::Client::new();
    let refused = client
        .get(&url)
        .header("Authorization", format!("Bearer {}", issuer.token(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "2");
    assert!(
        !refused.headers().contains_key("www-authenticate"),
        "the token was not found invalid"
    );

    // The list back, once the verifier tries it again: the same token passes.
    issuer.with(|s| s.unavailable = false);
    let issuer = &issuer;
    let url = &url;
    let client = &client;
    assert!(
        common::eventually(Duration::from_secs(30), async || {
            client
                .get(url)
                .header("Authorization", format!("Bearer {}", issuer.token(0)))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await,
        "the token is accepted once its list answers again"
    );
}
