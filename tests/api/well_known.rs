//! JWKS and discovery documents of the four key sets.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

const SETS: [&str; 4] = ["", "/public", "/portal-preview", "/contact-identification"];

#[tokio::test]
async fn each_key_set_publishes_its_own_public_key_only() {
    let app = TestApp::spawn().await;
    let mut kids = Vec::new();
    for set in SETS {
        let jwks = app.jwks(set).await;
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{set}: the active key and the next one");
        for key in keys {
            let key = key.as_object().unwrap();
            let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
            members.sort_unstable();
            assert_eq!(
                members,
                ["alg", "e", "kid", "kty", "n", "use"],
                "never a private member"
            );
            assert_eq!(
                (
                    key["kty"].as_str(),
                    key["use"].as_str(),
                    key["alg"].as_str()
                ),
                (Some("RSA"), Some("sig"), Some("RS256"))
            );
            assert_eq!(key["n"].as_str().unwrap().len(), 342, "RSA-2048 modulus");
            // The kid is the RFC 7638 thumbprint, derivable by any verifier.
            let thumbprint = access_tokens::keys::jwks::PublicJwk {
                n: key["n"].as_str().unwrap().to_owned(),
                e: key["e"].as_str().unwrap().to_owned(),
            }
            .thumbprint();
            assert_eq!(key["kid"], thumbprint);
            kids.push(thumbprint);
        }
    }
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), 8, "the key sets never share a key");
}

#[tokio::test]
async fn discovery_documents_name_the_issuer_and_jwks_uri() {
    let app = TestApp::spawn().await;
    for set in SETS {
        let response = app
            .get(&format!(
                "/v1/access-tokens{set}/.well-known/openid-configuration"
            ))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("public, max-age=")
        );
        let doc: Value = response.json().await.unwrap();
        let issuer = format!("{}/v1/access-tokens{set}", app.public_url);
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );
    }
}

#[tokio::test]
async fn claims_supported_names_the_claims_of_the_sets_own_tokens() {
    let app = TestApp::spawn().await;
    let app = &app;
    let claims_supported = |set: &'static str| async move {
        let doc: Value = app
            .get(&format!(
                "/v1/access-tokens{set}/.well-known/openid-configuration"
            ))
            .await
            .json()
            .await
            .unwrap();
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let bodies = [
        ("", serde_json::json!({"name": "api", "read_only": true})),
        (
            "/contact-identification",
            serde_json::json!({
                "name": "Contact", "token_type": "contact_identification", "portal_id": "p1",
                "contact_id": "c1", "surface_id": "checkout", "allowed_operations": ["read:contact"],
                "expires_in": 300, "origin": "END_CUSTOMER_PORTAL", "email": "contact@example.com"
            }),
        ),
    ];
    for (set, body) in bodies {
        let supported = claims_supported(set).await;
        let created = app.create_ok(&app.owner(), body).await;
        let claims = app
            .verify(set, created["token"].as_str().unwrap())
            .await
            .unwrap();
        for claim in claims.as_object().unwrap().keys() {
            assert!(supported.contains(claim), "{set}: {claim} in {supported:?}");
        }
    }
    let cid = claims_supported("/contact-identification").await;
    for claim in ["contact_id", "custom:surface_id", "allowed_operations"] {
        assert!(cid.contains(&claim.to_owned()), "{claim}");
    }
    for claim in ["read_only", "anonymize"] {
        assert!(!cid.contains(&claim.to_owned()), "{claim}");
        assert!(claims_supported("").await.contains(&claim.to_owned()));
    }
}

#[tokio::test]
async fn jwks_is_cacheable_with_etag_and_304() {
    let app = TestApp::spawn().await;
    for set in SETS {
        let path = format!("/v1/access-tokens{set}/.well-known/jwks.json");
        let first = app.get(&path).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()["content-type"], "application/json");
        let cache = first.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cache.starts_with("public, max-age="), "{cache}");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let body = first.bytes().await.unwrap();

        let again = app
            .client
            .get(app.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());

        let weak = app
            .client
            .get(app.url(&path))
            .header("if-none-match", format!("\"other\", W/{etag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(weak.status(), StatusCode::NOT_MODIFIED);

        let stale = app
            .client
            .get(app.url(&path))
            .header("if-none-match", "\"stale\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::OK);
        assert_eq!(stale.bytes().await.unwrap(), body);
    }
}

#[tokio::test]
async fn well_known_documents_need_no_token() {
    let app = TestApp::spawn().await;
    for set in SETS {
        for doc in ["jwks.json", "openid-configuration"] {
            let response = app
                .get(&format!("/v1/access-tokens{set}/.well-known/{doc}"))
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{set} {doc}");
        }
    }
}
