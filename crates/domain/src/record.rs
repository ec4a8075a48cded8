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
    /// The principal the caller is ([`owner_key`]): the owner of every token it creates, and
    /// whose tokens it manages when it is not an admin. A token of this service carries its
    /// owner's key (the `owner` claim), so a token acts for the principal that owns it.
    pub owner: String,
    /// The key the same user's tokens written before ownership named principals carry
    /// ([`legacy_owner_key`]): the caller manages those too.
    pub legacy_owner: String,
    /// Where an identity provider's caller's roles were read, so that a caller without roles in
    /// the organization it acts in is told which claim of which issuer held none. `None` for
    /// this service's own tokens.
    pub roles_claim: Option<RolesClaim>,
}

/// The issuer and the claim an identity provider's caller's roles were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolesClaim {
    pub issuer: String,
    pub claim: String,
}

/// The owner key of a principal: the issuer that vouches for it, its home organization (its own,
/// even while it acts in another with `x-epilot-org-id`) and its user id, hashed into an opaque,
/// fixed-length key (`p1_` and 22 base64url characters: 128 bits of SHA-256). Two identity
/// providers, or two organizations, with the same user id are two owners. Each part is length-
/// prefixed, so no choice of characters in one part can make another principal's key.
pub fn owner_key(issuer: &str, home_org_id: &str, user_id: &str) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut input = Vec::with_capacity(issuer.len() + home_org_id.len() + user_id.len() + 24);
    for part in [issuer, home_org_id, user_id] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    format!("p1_{}", URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]))
}

/// The owner key of the tokens written before ownership named principals: the creating user and
/// the organization it was a member of, without the issuer (which was not recorded). The
/// migration that added owners wrote it as `legacy:{characters of the organization}:{organization}:{user}`.
pub fn legacy_owner_key(home_org_id: &str, user_id: &str) -> String {
    format!(
        "legacy:{}:{home_org_id}:{user_id}",
        home_org_id.chars().count()
    )
}

/// Whose tokens a caller who is not an admin manages: the tokens its principal owns, and the
/// same user's tokens from before principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned<'a> {
    pub owner: &'a str,
    pub legacy: &'a str,
}

impl Owned<'_> {
    /// Whether a token with this owner key is one of them.
    pub fn includes(&self, owner: &str) -> bool {
        owner == self.owner || owner == self.legacy
    }
}

impl Caller {
    /// A user of `org_id`, vouched for by `issuer`, holding `roles`, and nothing more known yet:
    /// no name or address, no flags, not a token of this service, acting in its own organization,
    /// from nowhere. The extractor and the commands fill in what they know.
    pub fn user(
        issuer: &str,
        org_id: impl Into<String>,
        user_id: impl Into<String>,
        roles: Vec<String>,
    ) -> Self {
        let (org_id, user_id) = (org_id.into(), user_id.into());
        Self {
            owner: owner_key(issuer, &org_id, &user_id),
            legacy_owner: legacy_owner_key(&org_id, &user_id),
            org_id,
            user_id,
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
            roles_claim: None,
        }
    }

    /// The caller acts in organization `org_id` (`x-epilot-org-id`): its own stays on record as
    /// its home, and it stays the principal it is (its owner keys name its home organization).
    pub fn act_in(&mut self, org_id: String) {
        self.home_org_id = Some(std::mem::replace(&mut self.org_id, org_id));
    }

    /// What the caller owns, for the tokens it manages without being an admin.
    pub fn owned(&self) -> Owned<'_> {
        Owned {
            owner: &self.owner,
            legacy: &self.legacy_owner,
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
    /// The user id of the principal that owns the token (the contract's `created_by`).
    pub created_by: String,
    /// The owner key of that principal ([`owner_key`]; [`legacy_owner_key`] for tokens written
    /// before principals): what ownership compares, never `created_by` alone.
    pub owner: String,
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
    /// When the service next looks at the token to tell of its expiry ([`crate::notice`]);
    /// `None` when nothing is left to tell, or it never expires.
    pub notice_at: Option<DateTime<Utc>>,
    /// Set while the token is rotating: it stays valid until then, when the service revokes it.
    pub retires_at: Option<DateTime<Utc>>,
    /// The token that replaced it, when it was rotated with an overlap.
    pub replaced_by: Option<String>,
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
        } else if self.retires_at.is_some() {
            "rotating"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_keys_name_the_issuer_the_home_organization_and_the_user() {
        let bob = owner_key("https://a.example", "1", "bob");
        assert!(bob.starts_with("p1_") && bob.len() == 25, "{bob}");
        assert_eq!(bob, owner_key("https://a.example", "1", "bob"));
        for other in [
            owner_key("https://b.example", "1", "bob"),
            owner_key("https://a.example", "2", "bob"),
            owner_key("https://a.example", "1", "bob2"),
            // No shift of characters between the parts makes the same key.
            owner_key("https://a.example1", "", "bob"),
            owner_key("https://a.example", "1b", "ob"),
        ] {
            assert_ne!(bob, other);
        }
        assert_eq!(legacy_owner_key("1", "bob"), "legacy:1:1:bob");
        assert_ne!(legacy_owner_key("a:b", "c"), legacy_owner_key("a", "b:c"));
        assert_eq!(legacy_owner_key("ü", "x"), "legacy:1:ü:x");
    }

    #[test]
    fn acting_elsewhere_keeps_the_principal() {
        let mut caller = Caller::user("https://a.example", "1", "bob", vec!["2:owner".into()]);
        let (owner, legacy) = (caller.owner.clone(), caller.legacy_owner.clone());
        caller.act_in("2".into());
        assert_eq!(
            (caller.org_id.as_str(), caller.home_org_id.as_deref()),
            ("2", Some("1"))
        );
        assert_eq!((caller.owner, caller.legacy_owner), (owner, legacy));
        assert_ne!(
            Caller::user("https://a.example", "2", "bob", Vec::new()).owner,
            Caller::user("https://a.example", "1", "bob", Vec::new()).owner
        );
    }
}
