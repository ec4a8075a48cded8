//! Public keys as JWKs (RFC 7517), their RFC 7638 thumbprints, and the JWKS and discovery
//! documents rendered once per key change into bytes with an `ETag`, so serving them does no
//! JSON work.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::HeaderValue;
use serde::Serialize;

use crate::tokens::KeySetName;
use crate::tokens::status_list::aggregation_uri;

pub use access_tokens_jose::PublicJwk;
use access_tokens_jose::jwk::{JwkOut, JwksOut};

/// A document rendered once, served many times.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: HeaderValue,
}

impl Rendered {
    pub fn json<T: Serialize>(value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("key documents serialize");
        let hash = digest(&SHA256, &body);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]));
        Self {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).expect("base64url is a valid header value"),
        }
    }
}

/// The JWKS of a key set: public members only, never a private one.
pub fn render_jwks(keys: &[(String, PublicJwk)]) -> Rendered {
    Rendered::json(&JwksOut {
        keys: keys
            .iter()
            .map(|(kid, jwk)| JwkOut::rs256(kid, jwk))
            .collect(),
    })
}

#[derive(Serialize)]
struct Discovery<'a> {
    issuer: &'a str,
    jwks_uri: String,
    /// The key set's status lists (draft-ietf-oauth-status-list-21, section 9.1); absent for a
    /// set whose tokens are never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_list_aggregation_endpoint: Option<String>,
    response_types_supported: [&'static str; 1],
    subject_types_supported: [&'static str; 1],
    id_token_signing_alg_values_supported: [&'static str; 1],
    token_endpoint_auth_signing_alg_values_supported: [&'static str; 1],
    claims_supported: Vec<&'static str>,
}

/// Claims every token of this service carries (`exp`, `cognito:username` and `email` when they
/// apply).
const COMMON_CLAIMS: [&str; 18] = [
    "iss",
    "sub",
    "jti",
    "iat",
    "exp",
    "token_id",
    "token_use",
    "token_name",
    "token_type",
    "org_id",
    "custom:ivy_org_id",
    "user_id",
    "custom:ivy_user_id",
    "cognito:username",
    "email",
    "assignments",
    "assume_roles",
    "read_only",
];

/// The claims a key set's tokens carry, for its discovery document's `claims_supported`: the
/// common ones, and the type fields of the token types that set signs (`tokens::claims`).
pub fn claims_supported(set: KeySetName) -> Vec<&'static str> {
    // `read_only`, `anonymize` and `owner` are on api, app and assume tokens only.
    let common = COMMON_CLAIMS.iter().copied().filter(|c| *c != "read_only");
    let own: &[&str] = match set {
        KeySetName::Api => &["read_only", "anonymize", "owner"],
        KeySetName::Public => &["journey_id", "portal_id"],
        KeySetName::PortalPreview => &["portal_id", "portal_user_id"],
        KeySetName::ContactIdentification => &[
            "portal_id",
            "contact_id",
            "custom:surface_id",
            "allowed_operations",
            "origin",
        ],
    };
    // Stored tokens point into a status list of their set.
    let status: &[&str] = if set.has_status_lists() {
        &["status"]
    } else {
        &[]
    };
    common
        .chain(own.iter().copied())
        .chain(status.iter().copied())
        .collect()
}

/// The discovery document of a key set; `issuer` equals the tokens' `iss` byte for byte. With
/// `status_lists`, it names the set's status list aggregation, `{issuer}/status-lists`.
pub fn render_discovery(set: KeySetName, issuer: &str, status_lists: bool) -> Rendered {
    Rendered::json(&Discovery {
        issuer,
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        status_list_aggregation_endpoint: status_lists.then(|| aggregation_uri(issuer)),
        response_types_supported: ["token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        token_endpoint_auth_signing_alg_values_supported: ["RS256"],
        claims_supported: claims_supported(set),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_7638_section_3_1() {
        // The example key of RFC 7638, section 3.1, and its published thumbprint.
        let jwk = PublicJwk {
            n: "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn jwks_holds_public_members_only_and_etag_follows_content() {
        let key = (
            "k1".to_owned(),
            PublicJwk {
                n: "bg".into(),
                e: "AQAB".into(),
            },
        );
        let a = render_jwks(std::slice::from_ref(&key));
        let doc: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        let members: Vec<_> = doc["keys"][0]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        let b = render_jwks(&[key.clone(), ("k2".into(), key.1.clone())]);
        assert_ne!(a.etag, b.etag);
        assert_eq!(a.etag, render_jwks(&[key]).etag);
    }
}
