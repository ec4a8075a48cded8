//! The domain: token types and their rules, who the caller is, the key set names, parsing of
//! requests and the claims of a token. It is the ground floor: nothing here imports the store,
//! the keys, the use cases or HTTP (see the README's architecture section). This file only names
//! the rooms; each type lives in its own.

pub mod authority;
pub mod claims;
pub mod expiry;
pub mod id;
pub mod key_set;
mod names;
pub mod policy;
pub mod record;
pub mod request;
pub mod roles;
pub mod status_list;
pub mod token_type;

pub use authority::Authority;
pub use expiry::ExpiresIn;
pub use id::TokenId;
pub use key_set::{KeySetName, KeyState};
pub use policy::Policy;
pub use record::{Actor, Caller, Refused, ShownFields, TokenRecord, TokenStatus, TypeFields};
pub use token_type::{Lifetime, MIN_LIFETIME, ONE_HOUR, TokenType};
