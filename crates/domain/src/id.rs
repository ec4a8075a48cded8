//! Token ids: the token type's short prefix, an underscore and 22 random characters of
//! `[A-Za-z0-9]` (about 131 bits), e.g. `api_5ZugdRXasLfWBypHi93Fk7`.

use std::fmt;

use super::token_type::TokenType;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const RANDOM_LEN: usize = 22;
/// Ids from other deployments of the same API may be shorter or longer; accept a range when parsing.
const MIN_RANDOM_LEN: usize = 16;
const MAX_RANDOM_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenId(String);

impl TokenId {
    /// A fresh id for a token of `token_type`, from the operating system's CSPRNG.
    pub fn generate(token_type: TokenType) -> Self {
        Self(random_id(token_type.id_prefix()))
    }

    /// Accepts an id of a stored token type; anything else is not an id this service issued.
    pub fn parse(text: &str) -> Option<Self> {
        let (prefix, random) = text.split_once('_')?;
        TokenType::from_id_prefix(prefix)?;
        let valid = (MIN_RANDOM_LEN..=MAX_RANDOM_LEN).contains(&random.len())
            && random.bytes().all(|b| b.is_ascii_alphanumeric());
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `prefix`, an underscore and 22 random characters of `[A-Za-z0-9]` (about 131 bits), from the
/// operating system's CSPRNG: the ids of tokens, webhook endpoints and webhook messages.
pub fn random_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + RANDOM_LEN);
    id.push_str(prefix);
    id.push('_');
    let full = id.len() + RANDOM_LEN;
    let mut buf = [0u8; 64];
    while id.len() < full {
        // A failing system RNG leaves no safe way to mint credentials: stop loudly.
        aws_lc_rs::rand::fill(&mut buf).expect("the system random number generator failed");
        // Rejection sampling keeps every character equally likely (248 = 4 * 62).
        for b in buf.iter().filter(|b| **b < 248) {
            if id.len() == full {
                break;
            }
            id.push(ALPHABET[usize::from(*b % 62)] as char);
        }
    }
    id
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_have_the_type_prefix_and_enough_randomness() {
        for token_type in TokenType::ALL {
            let id = TokenId::generate(token_type);
            let (prefix, random) = id.as_str().split_once('_').unwrap();
            assert_eq!(prefix, token_type.id_prefix());
            assert_eq!(random.len(), RANDOM_LEN);
            assert!(random.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(TokenId::parse(id.as_str()), Some(id));
        }
    }

    #[test]
    fn generated_ids_do_not_repeat() {
        let ids: HashSet<_> = (0..10_000)
            .map(|_| TokenId::generate(TokenType::Api))
            .collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn parse_rejects_what_is_not_an_id() {
        for bad in [
            "",
            "api",
            "api_",
            "api_short",
            "xyz_5ZugdRXasLfWBypHi93Fk",
            "api-5ZugdRXasLfWBypHi93Fk",
            "api_5ZugdRXasLfWBypHi93F!",
            "api_5Zugd RXasLfWBypHi93Fk",
            "api_5ZugdRXasLfWBypHi93Fk_x",
        ] {
            assert_eq!(TokenId::parse(bad), None, "{bad:?}");
        }
        assert!(TokenId::parse("api_5ZugdRXasLfWBypHi93Fk").is_some());
    }
}
