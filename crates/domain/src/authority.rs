//! Who may do what: which role slugs make a caller an admin of its organization's tokens, which
//! may create tokens, and which may mint tokens that act for someone else.

use super::record::{Caller, Owned};
use super::token_type::TokenType;
use crate::error::{Error, Result};

/// The role slugs that grant authority (`TOKEN_ADMIN_ROLES`, `TOKEN_CREATE_ROLES`,
/// `IMPERSONATION_ROLES`). A slug is the part of a role id after the organization:
/// `123:owner` is the slug `owner` in organization 123.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Holders manage every token of their organization; others only the tokens they created.
    pub admin_roles: Vec<String>,
    /// When set, only holders (or admins) may create and rotate tokens; unset, any member may.
    pub create_roles: Option<Vec<String>>,
    /// Holders may mint `portal_preview` and `contact_identification` tokens.
    pub impersonation_roles: Vec<String>,
}

impl Default for Authority {
    fn default() -> Self {
        let admin_roles = vec!["owner".to_owned(), "admin".to_owned()];
        Self {
            impersonation_roles: admin_roles.clone(),
            admin_roles,
            create_roles: None,
        }
    }
}

/// Whether `caller` holds, in the organization it acts in, a role whose slug is one of `slugs`.
fn holds_any(caller: &Caller, slugs: &[String]) -> bool {
    caller.roles.iter().any(|role| {
        role.split_once(':')
            .is_some_and(|(org, slug)| org == caller.org_id && slugs.iter().any(|s| s == slug))
    })
}

fn slug_list(slugs: &[String]) -> String {
    slugs.join(", ")
}

impl Authority {
    /// Whether the caller manages every token of its organization, not only its own.
    pub fn is_admin(&self, caller: &Caller) -> bool {
        holds_any(caller, &self.admin_roles)
    }

    /// Whose tokens the caller manages: `None` for all of the organization's (an admin), else the
    /// principal's the caller is (for a token of this service, its owner's).
    pub fn owner_filter<'a>(&self, caller: &'a Caller) -> Option<Owned<'a>> {
        (!self.is_admin(caller)).then(|| caller.owned())
    }

    /// May the caller create (or rotate into) a token of `token_type`? A 403 names the roles
    /// that would allow it.
    pub fn may_create(&self, caller: &Caller, token_type: TokenType) -> Result<()> {
        let admin = self.is_admin(caller);
        if let Some(create) = &self.create_roles
            && !admin
            && !holds_any(caller, create)
        {
            return Err(Error::forbidden(format!(
                "creating tokens needs a role in organization {} with one of the slugs {} \
                 (TOKEN_CREATE_ROLES) or {} (TOKEN_ADMIN_ROLES)",
                caller.org_id,
                slug_list(create),
                slug_list(&self.admin_roles),
            )));
        }
        if token_type.impersonates() && !holds_any(caller, &self.impersonation_roles) {
            return Err(Error::forbidden(format!(
                "{token_type} tokens act for someone else: creating one needs a role in \
                 organization {} with one of the slugs {} (IMPERSONATION_ROLES)",
                caller.org_id,
                slug_list(&self.impersonation_roles),
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(org: &str, roles: &[&str]) -> Caller {
        Caller::user(
            "https://issuer.example",
            org,
            "u",
            roles.iter().map(|r| (*r).to_owned()).collect(),
        )
    }

    #[test]
    fn only_roles_of_the_acting_organization_count() {
        let a = Authority::default();
        assert!(a.is_admin(&caller("1", &["1:owner"])));
        assert!(a.is_admin(&caller("1", &["2:viewer", "1:admin"])));
        assert!(!a.is_admin(&caller("1", &["2:owner", "1:viewer"])));
        assert!(!a.is_admin(&caller("1", &["owner", "1:owners", "11:owner"])));
        let member = caller("1", &["1:viewer"]);
        assert_eq!(a.owner_filter(&member), Some(member.owned()));
        assert_eq!(a.owner_filter(&caller("1", &["1:owner"])), None);
    }

    #[test]
    fn create_roles_when_set_and_impersonation_roles_always() {
        let open = Authority::default();
        let member = caller("1", &["1:viewer"]);
        assert!(open.may_create(&member, TokenType::Api).is_ok());
        assert!(open.may_create(&member, TokenType::PortalPreview).is_err());
        assert!(
            open.may_create(&member, TokenType::ContactIdentification)
                .is_err()
        );
        assert!(
            open.may_create(&caller("1", &["1:owner"]), TokenType::PortalPreview)
                .is_ok()
        );
        let closed = Authority {
            create_roles: Some(vec!["token_creator".to_owned()]),
            ..Authority::default()
        };
        let refused = closed.may_create(&member, TokenType::Api).unwrap_err();
        assert!(refused.to_string().contains("token_creator"), "{refused}");
        assert!(
            closed
                .may_create(&caller("1", &["1:token_creator"]), TokenType::Api)
                .is_ok()
        );
        assert!(
            closed
                .may_create(&caller("1", &["1:admin"]), TokenType::App)
                .is_ok()
        );
    }
}
