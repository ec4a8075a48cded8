//! `openapi.yaml` and the router describe the same operations.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_yaml_ng::Value;

use crate::helpers::TestApp;

fn spec() -> Value {
    serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml is YAML")
}

#[test]
fn the_spec_and_the_router_list_the_same_operations() {
    let spec = spec();
    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().expect("paths") {
        for method in item.as_mapping().unwrap().keys() {
            let method = method.as_str().unwrap();
            if ["get", "post", "delete", "put", "patch", "head", "options"].contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = access_tokens::http::routes()
        .operations()
        .iter()
        .map(|(m, p)| (m.to_string(), p.clone()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}

/// The well-known operations carry the platform spec's `operationId`s, so that clients generated
/// from either spec call the same names.
#[test]
fn the_well_known_operations_have_the_platform_operation_ids() {
    let spec = spec();
    let expected = [
        ("", "AccessToken"),
        ("/public", "PublicToken"),
        ("/portal-preview", "PortalPreviewToken"),
        ("/contact-identification", "ContactIdentificationToken"),
    ];
    for (prefix, name) in expected {
        for (document, suffix) in [("jwks.json", "Jwks"), ("openid-configuration", "OIDC")] {
            let path = format!("/v1/access-tokens{prefix}/.well-known/{document}");
            let id = spec["paths"][path.as_str()]["get"]["operationId"].as_str();
            assert_eq!(id, Some(format!("get{name}{suffix}").as_str()), "{path}");
        }
    }
    let mut ids = BTreeSet::new();
    for (_, item) in spec["paths"].as_mapping().unwrap() {
        for (_, op) in item.as_mapping().unwrap() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            }
        }
    }
}

#[test]
fn the_spec_is_openapi_3_1_and_every_operation_documents_its_errors() {
    let spec = spec();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, op) in item.as_mapping().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_mapping) else {
                continue;
            };
            assert!(!responses.is_empty(), "{path:?} {method:?}");
            let path = path.as_str().unwrap();
            // Operations of no caller (`security: []`: revocation by possession, secret scanning
            // alerts) have no caller to refuse.
            let callerless = op
                .get("security")
                .and_then(Value::as_sequence)
                .is_some_and(|s| s.is_empty());
            // The public documents (keys, discovery, status lists) need no caller.
            if path.starts_with("/v1/access-tokens")
                && !callerless
                && !path.contains(".well-known")
                && !path.contains("/status-lists")
            {
                for code in ["400", "401", "403"] {
                    // Path-only operations have no input to reject; introspection clients are
                    // authenticated, not authorized per organization.
                    if (code == "400" && path.contains('{'))
                        || (code == "403" && path.ends_with("/introspect"))
                    {
                        continue;
                    }
                    assert!(
                        responses.contains_key(code),
                        "{method:?} {path} lacks {code}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_spec_is_served() {
    let app = TestApp::spawn().await;
    let response = app.get("/openapi.yaml").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    assert_eq!(
        response.text().await.unwrap(),
        include_str!("../../openapi.yaml")
    );
}
