//! The claims of a verified token: the common ones typed, all of them raw.

use serde_json::{Map, Value};

/// Where a token's status is kept: `status.status_list` (draft-ietf-oauth-status-list
/// section 6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRef {
    /// The token's index in the list.
    pub idx: u64,
    /// The URI of the Status List Token.
    pub uri: String,
}

/// The claims of a verified token. The typed fields are `None` (or empty) when the token does
/// not carry them as the expected type; `raw` holds every claim as signed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Claims {
    /// `sub`.
    pub sub: Option<String>,
    /// `token_id`: the id under which the issuer lists and revokes the token.
    pub token_id: Option<String>,
    /// `org_id`: the organization the token acts in.
    pub org_id: Option<String>,
    /// `user_id`: the user who created the token.
    pub user_id: Option<String>,
    /// `token_type`: `api`, `app`, `assume`, `journey`, `portal`, ...
    pub token_type: Option<String>,
    /// `assignments`: the role ids the token holds.
    pub assignments: Vec<String>,
    /// `exp`, seconds since the epoch; `None` for a token that never expires.
    pub exp: Option<u64>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<u64>,
    /// `status.status_list`, which was checked.
    pub status: Option<StatusRef>,
    /// Every claim of the token.
    pub raw: Map<String, Value>,
}

impl Claims {
    pub(crate) fn new(
        raw: Map<String, Value>,
        exp: Option<u64>,
        iat: Option<u64>,
        status: Option<StatusRef>,
    ) -> Self {
        let string = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
        let assignments = raw
            .get("assignments")
            .and_then(Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            sub: string("sub"),
            token_id: string("token_id"),
            org_id: string("org_id"),
            user_id: string("user_id"),
            token_type: string("token_type"),
            assignments,
            exp,
            iat,
            status,
            raw,
        }
    }
}
