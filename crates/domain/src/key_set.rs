//! The four key sets and the states of their keys: names the domain, the store and the key ring
//! share. Which token types a set signs is `TokenType::key_set`.

use super::names::named_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySetName {
    Api,
    Public,
    PortalPreview,
    ContactIdentification,
}

impl KeySetName {
    pub const ALL: [KeySetName; 4] = [
        KeySetName::Api,
        KeySetName::Public,
        KeySetName::PortalPreview,
        KeySetName::ContactIdentification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeySetName::Api => "api",
            KeySetName::Public => "public",
            KeySetName::PortalPreview => "portal-preview",
            KeySetName::ContactIdentification => "contact-identification",
        }
    }

    /// The path of the set below `/v1/access-tokens` (the `api` set sits at the base).
    pub fn path_prefix(self) -> &'static str {
        match self {
            KeySetName::Api => "",
            KeySetName::Public => "/public",
            KeySetName::PortalPreview => "/portal-preview",
            KeySetName::ContactIdentification => "/contact-identification",
        }
    }

    /// The issuer of the set: the `iss` of its tokens and the `issuer` of its discovery document.
    pub fn issuer(self, public_url: &str) -> String {
        format!("{public_url}/v1/access-tokens{}", self.path_prefix())
    }

    /// Whether the set's tokens are stored and so have status lists: every set but
    /// `contact-identification`, whose tokens are minted, never stored, and live 15 minutes at most.
    pub fn has_status_lists(self) -> bool {
        self != KeySetName::ContactIdentification
    }

    /// The set's position in [`KeySetName::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

named_enum!(
    KeySetName,
    "key set",
    "; expected api, public, portal-preview or contact-identification"
);

/// Where a key is in its life. Every state but `Revoked` is published in the set's JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published, not yet signing: verifiers that cache the JWKS hold it before it signs.
    Next,
    /// Signing; exactly one per set.
    Active,
    /// Published, no longer signing: the tokens it signed keep verifying.
    Retired,
    /// Not published; every token it signed is refused.
    Revoked,
}

impl KeyState {
    pub const ALL: [KeyState; 4] = [
        KeyState::Next,
        KeyState::Active,
        KeyState::Retired,
        KeyState::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }

    pub fn is_published(self) -> bool {
        self != KeyState::Revoked
    }
}

named_enum!(KeyState, "key state", "");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_states_round_trip() {
        for name in KeySetName::ALL {
            assert_eq!(name.as_str().parse::<KeySetName>(), Ok(name));
            assert_eq!(KeySetName::ALL[name.index()], name);
        }
        for state in KeyState::ALL {
            assert_eq!(state.as_str().parse::<KeyState>(), Ok(state));
        }
        assert!("Active".parse::<KeyState>().is_err());
        assert!("API".parse::<KeySetName>().is_err());
    }
}
