//! Who calls, who the audit trail names, and a token as stored.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::status_list::StatusRef;
use super::token_type::TokenType;

/// Who is calling the management API, established once by the HTTP layer from a verified JWT.
/// Handlers and the domain never read raw claims.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub user_id: String,
    /// Role ids the caller holds (`ROLES_CLAIM` of a trusted issuer, `assignments` of our own tokens).
    pub roles: Vec<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub read_only: bool,
    pub anonymize: bool,
    /// Set when the caller is one of this service's own tokens.
    pub token_id: Option<String>,
    /// The calling token's `exp`, when the caller is one of this service's own tokens: nothing it
    /// creates may outlive it. `None` for identity-provider callers and for tokens without `exp`.
    pub expires_at: Option<DateTime<Utc>>,
    /// The caller's own organization, when it acts in another (`x-epilot-org-id`); `org_id` is
    /// then the organization it acts in.
    pub home_org_id: Option<String>,
    /// Where the request came from (the peer address), for audit events.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// A user of `org_id` holding `roles`, and nothing more known yet: no name or address, no
    /// flags, not a token of this service, acting in its own organization, from nowhere. The
    /// extractor and the commands fill in what they know.
    pub fn user(org_id: impl Into<String>, user_id: impl Into<String>, roles: Vec<String>) -> Self {
        Self {
            org_id: org_id.into(),
            user_id: user_id.into(),
            roles,
            username: None,
            email: None,
            read_only: false,
            anonymize: false,
            token_id: None,
            expires_at: None,
            home_org_id: None,
            source_ip: None,
            user_agent: None,
        }
    }

    /// Who the audit trail names for what this caller does.
    pub fn actor(&self) -> Actor {
        Actor {
            org_id: self.org_id.clone(),
            home_org_id: self.home_org_id.clone(),
            user_id: self.user_id.clone(),
            token_id: self.token_id.clone(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// The audit fields of a change: who made it (organization, user, and the token they called
/// with) and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The organization the change was made in.
    pub org_id: String,
    /// The actor's own organization, when it acted in another.
    pub home_org_id: Option<String>,
    pub user_id: String,
    pub token_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Which tokens a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenStatus {
    /// Not revoked (expired ones included, with their `expires_at`).
    #[default]
    Active,
    Revoked,
    /// Past `expires_at` and not revoked.
    Expired,
    /// Suspended and not revoked.
    Suspended,
    All,
}

impl FromStr for TokenStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => TokenStatus::Active,
            "revoked" => TokenStatus::Revoked,
            "expired" => TokenStatus::Expired,
            "suspended" => TokenStatus::Suspended,
            "all" => TokenStatus::All,
            other => {
                return Err(format!(
                    "unknown status {other:?}; expected active, suspended, revoked, expired or all"
                ));
            }
        })
    }
}

/// A token as stored (or, for contact identification tokens, as minted).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    pub id: String,
    pub org_id: String,
    pub created_by: String,
    pub token_type: TokenType,
    pub name: String,
    pub assignments: Vec<String>,
    pub read_only: bool,
    pub anonymize: bool,
    pub fields: TypeFields,
    pub key_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Set while the token is suspended (refused until resumed).
    pub suspended_at: Option<DateTime<Utc>>,
    pub last_used: Option<NaiveDate>,
    /// The token this one replaced, when it was made by rotation.
    pub rotated_from: Option<String>,
    /// The token of this service that created (or rotated) this one; `None` when an
    /// identity-provider caller did.
    pub parent_id: Option<String>,
    /// Its index in a status list of its key set, handed out by the store when the record is
    /// written; `None` before that, for tokens never stored, and for rows older than status lists.
    pub status: Option<StatusRef>,
}

impl TokenRecord {
    /// Where the token stands at `now`: `revoked` (for good) before `suspended` before `expired`,
    /// else `active`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.suspended_at.is_some() {
            "suspended"
        } else if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// Why a stored token is refused as a caller and by introspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Revoked, or its row deleted: for good.
    Revoked,
    /// Until it is resumed.
    Suspended,
}

/// The fields that only some token types take; which ones a type takes is decided by `request`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeFields {
    pub journey_id: Option<String>,
    pub portal_id: Option<String>,
    pub portal_user_id: Option<String>,
    pub contact_id: Option<String>,
    pub surface_id: Option<String>,
    pub origin: Option<String>,
    pub allowed_operations: Option<Vec<String>>,
    pub email: Option<String>,
}

impl TypeFields {
    /// The fields that a token's claims and its item in the API both carry, under the same names.
    pub fn shown(&self) -> ShownFields<'_> {
        ShownFields {
            journey_id: self.journey_id.as_deref(),
            portal_id: self.portal_id.as_deref(),
            portal_user_id: self.portal_user_id.as_deref(),
            contact_id: self.contact_id.as_deref(),
            origin: self.origin.as_deref(),
            allowed_operations: self.allowed_operations.as_deref(),
        }
    }
}

/// [`TypeFields::shown`], serialized into the claims and the item (`#[serde(flatten)]`); the
/// fields a token's type does not take are left out.
#[derive(Debug, Serialize)]
pub struct ShownFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    journey_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    portal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    portal_user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_operations: Option<&'a [String]>,
}
