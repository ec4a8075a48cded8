//! The seven token types: their names, id prefixes, key sets, and lifetimes.

use super::names::named_enum;

use super::expiry::ExpiresIn;
use super::key_set::KeySetName;

/// The lifetime of tokens that always live one hour (`assume`, `portal_preview`).
pub const ONE_HOUR: u64 = 3600;
/// No token lives shorter than this; a shorter `expires_in` is a client mistake, not clamped.
pub const MIN_LIFETIME: u64 = 30;
const DAY: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    Api,
    App,
    Assume,
    Journey,
    Portal,
    PortalPreview,
    ContactIdentification,
}

/// How long a token of a type lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// No `exp` unless `expires_in` is given, which may not exceed the cap (seconds).
    Optional { cap: u64 },
    /// Always this long; `expires_in` is not a field of the type.
    Fixed(u64),
    /// `expires_in` is required, an integer number of seconds within the range.
    Required { min: u64, max: u64 },
}

impl TokenType {
    pub const ALL: [TokenType; 7] = [
        TokenType::Api,
        TokenType::App,
        TokenType::Assume,
        TokenType::Journey,
        TokenType::Portal,
        TokenType::PortalPreview,
        TokenType::ContactIdentification,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Api => "api",
            TokenType::App => "app",
            TokenType::Assume => "assume",
            TokenType::Journey => "journey",
            TokenType::Portal => "portal",
            TokenType::PortalPreview => "portal_preview",
            TokenType::ContactIdentification => "contact_identification",
        }
    }

    pub fn id_prefix(self) -> &'static str {
        match self {
            TokenType::Api => "api",
            TokenType::App => "app",
            TokenType::Assume => "asm",
            TokenType::Journey => "jrn",
            TokenType::Portal => "ptl",
            TokenType::PortalPreview => "pvw",
            TokenType::ContactIdentification => "cid",
        }
    }

    pub fn from_id_prefix(prefix: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id_prefix() == prefix)
    }

    pub fn key_set(self) -> KeySetName {
        match self {
            TokenType::Api | TokenType::App | TokenType::Assume => KeySetName::Api,
            TokenType::Journey | TokenType::Portal => KeySetName::Public,
            TokenType::PortalPreview => KeySetName::PortalPreview,
            TokenType::ContactIdentification => KeySetName::ContactIdentification,
        }
    }

    /// Contact identification tokens are minted and never stored, so they cannot be listed or revoked.
    pub fn is_stored(self) -> bool {
        self != TokenType::ContactIdentification
    }

    /// Types that act for someone other than their creator: a portal user (`portal_preview`) or a
    /// contact (`contact_identification`). Minting one needs an impersonation role.
    pub fn impersonates(self) -> bool {
        matches!(
            self,
            TokenType::PortalPreview | TokenType::ContactIdentification
        )
    }

    /// Types that carry roles and flags, and that may call the management API.
    pub fn carries_roles(self) -> bool {
        matches!(self, TokenType::Api | TokenType::App | TokenType::Assume)
    }

    pub fn lifetime(self) -> Lifetime {
        match self {
            TokenType::Api => Lifetime::Optional { cap: 365 * DAY },
            TokenType::App | TokenType::Journey | TokenType::Portal => {
                Lifetime::Optional { cap: 7 * DAY }
            }
            TokenType::Assume | TokenType::PortalPreview => Lifetime::Fixed(ONE_HOUR),
            TokenType::ContactIdentification => Lifetime::Required { min: 60, max: 900 },
        }
    }

    /// The lifetime of a new token in seconds (`None`: it never expires), or a 400 message.
    pub fn resolve_lifetime(self, requested: Option<ExpiresIn>) -> Result<Option<u64>, String> {
        match (self.lifetime(), requested) {
            (Lifetime::Fixed(seconds), _) => Ok(Some(seconds)),
            (Lifetime::Optional { .. }, None) => Ok(None),
            (Lifetime::Optional { cap }, Some(e)) => {
                check_range(self, e.seconds(), MIN_LIFETIME, cap).map(Some)
            }
            (Lifetime::Required { .. }, None) => {
                Err(format!("expires_in is required for {self} tokens"))
            }
            (Lifetime::Required { min, max }, Some(e)) => {
                check_range(self, e.seconds(), min, max).map(Some)
            }
        }
    }
}

fn check_range(t: TokenType, seconds: u64, min: u64, max: u64) -> Result<u64, String> {
    if seconds < min {
        return Err(format!(
            "expires_in is {seconds} s; {t} tokens live at least {min} s"
        ));
    }
    if seconds > max {
        return Err(format!(
            "expires_in is {seconds} s; {t} tokens live at most {max} s ({})",
            human(max)
        ));
    }
    Ok(seconds)
}

pub(super) fn human(seconds: u64) -> String {
    if seconds.is_multiple_of(DAY) {
        format!("{} days", seconds / DAY)
    } else if seconds.is_multiple_of(60) {
        format!("{} minutes", seconds / 60)
    } else {
        format!("{seconds} seconds")
    }
}

named_enum!(
    TokenType,
    "token_type",
    "; expected one of api, app, assume, journey, portal, portal_preview, contact_identification"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_follow_each_types_rules() {
        let e = |s| Some(ExpiresIn::from_seconds(s));
        use TokenType::*;
        assert_eq!(Api.resolve_lifetime(None), Ok(None));
        assert_eq!(Api.resolve_lifetime(e(365 * DAY)), Ok(Some(365 * DAY)));
        assert!(Api.resolve_lifetime(e(365 * DAY + 1)).is_err());
        assert!(Api.resolve_lifetime(e(29)).is_err());
        assert_eq!(Api.resolve_lifetime(e(30)), Ok(Some(30)));
        for t in [App, Journey, Portal] {
            assert_eq!(t.resolve_lifetime(None), Ok(None));
            assert_eq!(t.resolve_lifetime(e(7 * DAY)), Ok(Some(7 * DAY)));
            assert!(t.resolve_lifetime(e(7 * DAY + 1)).is_err());
        }
        for t in [Assume, PortalPreview] {
            assert_eq!(t.resolve_lifetime(None), Ok(Some(ONE_HOUR)));
        }
        assert!(ContactIdentification.resolve_lifetime(None).is_err());
        assert!(ContactIdentification.resolve_lifetime(e(59)).is_err());
        assert_eq!(ContactIdentification.resolve_lifetime(e(60)), Ok(Some(60)));
        assert_eq!(
            ContactIdentification.resolve_lifetime(e(900)),
            Ok(Some(900))
        );
        assert!(ContactIdentification.resolve_lifetime(e(901)).is_err());
    }

    #[test]
    fn type_names_round_trip_and_unknown_names_fail() {
        for t in TokenType::ALL {
            assert_eq!(t.as_str().parse::<TokenType>(), Ok(t));
            assert_eq!(TokenType::from_id_prefix(t.id_prefix()), Some(t));
        }
        assert!("API".parse::<TokenType>().is_err());
        assert!("".parse::<TokenType>().is_err());
    }
}
