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

/// The headers of an answer but its request id and date, sorted: what two answers to the same
/// request must share.
fn headers_of(response: &reqwest::Response) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    headers
}

/// The documents are answered ahead of the router's layers when none of them has anything to do
/// for the request; one the layers must see (here an `Origin`, which CORS answers, from an origin
/// it does not allow) goes through them. Both answer the same, header for header.
#[tokio::test]
async fn documents_are_answered_alike_ahead_of_the_layers_and_through_them() {
    let app = TestApp::spawn().await;
    for set in SETS {
        for doc in ["jwks.json", "openid-configuration"] {
            let url = app.url(&format!("/v1/access-tokens{set}/.well-known/{doc}"));
            let get = |origin: bool, etag: Option<&str>| {
                let mut request = app.client.get(&url);
                if origin {
                    request = request.header("origin", "https://elsewhere.example");
                }
                if let Some(etag) = etag {
                    request = request.header("if-none-match", etag);
                }
                request.send()
            };
            let direct = get(false, None).await.unwrap();
            let layered = get(true, None).await.unwrap();
            assert_eq!(direct.status(), StatusCode::OK, "{set} {doc}");
            assert_eq!(layered.status(), StatusCode::OK, "{set} {doc}");
            assert_eq!(headers_of(&direct), headers_of(&layered), "{set} {doc}");
            for answer in [&direct, &layered] {
                assert!(!answer.headers()["x-request-id"].is_empty());
                assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
                assert!(
                    answer
                        .headers()
                        .get("access-control-allow-origin")
                        .is_none()
                );
            }
            let etag = direct.headers()["etag"].to_str().unwrap().to_owned();
            assert_eq!(
                direct.bytes().await.unwrap(),
                layered.bytes().await.unwrap()
            );

            let direct = get(false, Some(&etag)).await.unwrap();
            let layered = get(true, Some(&etag)).await.unwrap();
            assert_eq!(direct.status(), StatusCode::NOT_MODIFIED, "{set} {doc}");
            assert_eq!(layered.status(), StatusCode::NOT_MODIFIED, "{set} {doc}");
            assert_eq!(headers_of(&direct), headers_of(&layered), "{set} {doc}");
        }
    }
}

/// What the layers give every request holds for the documents too: a client's usable request id
/// is echoed and any other replaced, an allowed origin gets CORS's answer, a request with headers
/// beyond the limit is refused, a method other than GET is the router's.
#[tokio::test]
async fn the_documents_keep_what_the_layers_give_every_request() {
    let app = TestApp::spawn().await;
    let path = "/v1/access-tokens/.well-known/jwks.json";
    let with = |name: &'static str, value: String| {
        app.client.get(app.url(path)).header(name, value).send()
    };

    let echoed = with("x-request-id", "trace-1.a:b_c".to_owned())
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-1.a:b_c");
    let replaced = with("x-request-id", "not usable".to_owned()).await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(!id.is_empty() && id != "not usable", "{id}");
    let twice = app
        .client
        .get(app.url(path))
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .send()
        .await
        .unwrap();
    let id = twice.headers()["x-request-id"].to_str().unwrap();
    assert!(id != "one" && id != "two", "{id}");

    let allowed = with("origin", "https://portal.example.com".to_owned())
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://portal.example.com"
    );

    let large = with("x-filler", "a".repeat(40 * 1024)).await.unwrap();
    assert_eq!(large.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(large.headers()["content-type"], "application/json");

    let posted = app.client.post(app.url(path)).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(posted.headers()["content-type"], "application/json");
    let head = app.client.head(app.url(path)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}
