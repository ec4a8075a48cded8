//! The axum extractor (feature `axum`): claims for a valid bearer token, 401 otherwise.
#![cfg(feature = "axum")]

mod common;

use access_tokens_verifier::{Bearer, Verifier};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use common::TestIssuer;

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

#[tokio::test]
async fn the_extractor_gives_claims_or_a_401_with_a_bearer_challenge() {
    let issuer = TestIssuer::start().await;
    issuer.set_status("1", 1, 1);
    let state = AppState {
        verifier: issuer.verifier().await,
    };
    let app = Router::new().route("/me", get(me)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
