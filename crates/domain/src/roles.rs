//! Role ids and the rule that a token never holds more than its creator.

use crate::error::Error;

/// The most role ids one token may carry; a JWT has to stay small enough for HTTP headers.
pub const MAX_ASSIGNMENTS: usize = 100;

/// A role id of the form `<organization_id>:<slug>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleId(String);

impl RoleId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("role id {text:?} must have the form <organization_id>:<slug>");
        let (org, slug) = text.split_once(':').ok_or_else(bad)?;
        // The contract's pattern refuses ECMAScript's `\s` and the C0, DEL and C1 controls:
        // together, Unicode's whitespace, U+FEFF (the byte order mark) and the controls.
        let refused = |c: char| c.is_whitespace() || c == '\u{feff}' || c.is_control();
        let printable = |s: &str| !s.is_empty() && !s.chars().any(refused);
        if text.chars().count() > 255 || !printable(org) || !printable(slug) {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn org_id(&self) -> &str {
        self.0.split_once(':').map_or("", |(org, _)| org)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses the requested role ids of a create request (400 on malformed input).
pub fn parse_requested(ids: &[String]) -> Result<Vec<RoleId>, Error> {
    if ids.len() > MAX_ASSIGNMENTS {
        return Err(Error::invalid(format!(
            "assignments holds {} role ids; at most {MAX_ASSIGNMENTS} are allowed",
            ids.len()
        )));
    }
    // Each id within RoleId's 255 characters: with the count, the token's size budget.
    ids.iter()
        .map(|id| RoleId::parse(id).map_err(Error::Invalid))
        .collect()
}

/// Decides the roles of a new token.
///
/// Omitted, the token inherits every role the caller holds in the caller's organization. Requested,
/// every role must be one the caller holds, in the caller's organization: anything else is a 403,
/// so a token can never hold more than its creator.
///
/// Inherited roles are held to the budget of requested ones (at most [`MAX_ASSIGNMENTS`] ids, each a
/// valid [`RoleId`], so at most 255 characters): a caller holding more cannot mint a token too
/// large to call with, and is told to name the roles (400).
pub fn grant(
    caller_org: &str,
    caller_roles: &[String],
    requested: Option<Vec<RoleId>>,
) -> Result<Vec<String>, Error> {
    let mut granted: Vec<String> = Vec::new();
    match requested {
        None => {
            for role in caller_roles {
                let in_org = RoleId::parse(role).is_ok_and(|r| r.org_id() == caller_org);
                if in_org && !granted.contains(role) {
                    granted.push(role.clone());
                }
            }
            if granted.len() > MAX_ASSIGNMENTS {
                return Err(Error::invalid(format!(
                    "you hold {} roles in organization {caller_org} and a token inherits all of \
                     them when assignments is omitted, but it can carry at most \
                     {MAX_ASSIGNMENTS}: name the roles it needs in assignments",
                    granted.len()
                )));
            }
        }
        Some(requested) => {
            for role in requested {
                if role.org_id() != caller_org {
                    return Err(Error::forbidden(format!(
                        "role {} belongs to another organization",
                        role.as_str()
                    )));
                }
                if !caller_roles.iter().any(|held| held == role.as_str()) {
                    return Err(Error::forbidden(format!(
                        "you do not hold role {}, so a token cannot be given it",
                        role.as_str()
                    )));
                }
                if !granted.iter().any(|g| g == role.as_str()) {
                    granted.push(role.0);
                }
            }
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    fn request(ids: &[&str]) -> Option<Vec<RoleId>> {
        Some(parse_requested(&roles(ids)).unwrap())
    }

    #[test]
    fn omitted_roles_inherit_the_callers_roles_in_its_organization() {
        let held = roles(&["1:owner", "1:viewer", "2:owner", "bogus", "1:owner"]);
        assert_eq!(
            grant("1", &held, None).unwrap(),
            roles(&["1:owner", "1:viewer"])
        );
    }

    #[test]
    fn inherited_roles_are_held_to_the_cap_of_requested_ones() {
        let held = |n: usize| -> Vec<String> { (0..n).map(|i| format!("1:r{i}")).collect() };
        assert_eq!(
            grant("1", &held(MAX_ASSIGNMENTS), None).unwrap().len(),
            MAX_ASSIGNMENTS
        );
        for n in [MAX_ASSIGNMENTS + 1, 550] {
            let Err(Error::Invalid(message)) = grant("1", &held(n), None) else {
                panic!("{n} inherited roles must be a 400");
            };
            assert!(message.contains("assignments"), "{message}");
        }
        // What counts is what the token would carry: duplicates, malformed ids and roles of other
        // organizations are not inherited, so they do not count.
        let mut mixed = held(MAX_ASSIGNMENTS);
        mixed.extend(held(MAX_ASSIGNMENTS));
        mixed.extend((0..200).map(|i| format!("2:r{i}")));
        mixed.push(format!("1:{}", "x".repeat(300)));
        assert_eq!(grant("1", &mixed, None).unwrap().len(), MAX_ASSIGNMENTS);
        // Naming the roles is the way out: 100 of the 550 are granted.
        let many = held(550);
        let named = parse_requested(&many[..MAX_ASSIGNMENTS]).unwrap();
        assert_eq!(
            grant("1", &many, Some(named)).unwrap().len(),
            MAX_ASSIGNMENTS
        );
    }

    #[test]
    fn a_subset_of_held_roles_is_granted_without_duplicates() {
        let held = roles(&["1:owner", "1:viewer"]);
        assert_eq!(
            grant("1", &held, request(&["1:viewer", "1:viewer"])).unwrap(),
            roles(&["1:viewer"])
        );
        assert_eq!(
            grant("1", &held, request(&[])).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn roles_never_escalate() {
        let held = roles(&["1:viewer", "2:owner"]);
        for (requested, why) in [
            (&["1:owner"][..], "a role the caller does not hold"),
            (&["2:owner"][..], "a held role of another organization"),
            (
                &["1:viewer", "1:owner"][..],
                "one escalating role among held ones",
            ),
        ] {
            let err = grant("1", &held, request(requested)).unwrap_err();
            assert!(matches!(err, Error::Forbidden(_)), "{why}");
        }
    }

    #[test]
    fn a_role_id_is_at_most_255_characters_not_bytes() {
        // Found by schemathesis: the spec counts characters, as JSON Schema's maxLength does.
        let accented = format!("1:{}", "é".repeat(253));
        assert_eq!(accented.chars().count(), 255);
        assert!(RoleId::parse(&accented).is_ok());
        assert!(RoleId::parse(&format!("1:{}", "é".repeat(254))).is_err());
        // C1 control characters are refused like the C0 ones.
        assert!(RoleId::parse("1:own\u{85}er").is_err());
    }

    #[test]
    fn a_byte_order_mark_is_whitespace_as_the_contract_says() {
        // Found by the role_id fuzz target: openapi.yaml's `\s` (ECMAScript) includes U+FEFF,
        // which Unicode's White_Space does not.
        for bad in ["\u{feff}:=", "1:\u{feff}owner", "1\u{feff}:owner"] {
            assert!(RoleId::parse(bad).is_err(), "{bad:?}");
        }
        // Other format characters are not whitespace in either definition.
        assert!(RoleId::parse("1:own\u{200b}er").is_ok());
    }

    #[test]
    fn malformed_role_ids_are_rejected() {
        for bad in ["", "owner", ":owner", "1:", "1 :owner", "1:own er", "1:\nx"] {
            assert!(RoleId::parse(bad).is_err(), "{bad:?}");
        }
        let too_many: Vec<String> = (0..=MAX_ASSIGNMENTS).map(|i| format!("1:r{i}")).collect();
        assert!(matches!(parse_requested(&too_many), Err(Error::Invalid(_))));
    }
}
