//! The domain of `access-tokens`: token types and their rules, who the caller is, the key set
//! names, parsing of requests and the claims of a token. It is the ground floor: it depends on
//! the JOSE crate alone of the workspace, and on no HTTP or database crate (Cargo refuses an
//! upward dependency; `scripts/check-crates.sh` refuses axum and sqlx). Its [`Error`] is a kind and a
//! message, which the server maps to a status. This file only names the rooms; each type lives in
//! its own.

pub mod authority;
pub mod claims;
mod error;
pub mod expiry;
pub mod id;
pub mod item;
pub mod key_set;
mod names;
pub mod notice;
pub mod policy;
pub mod record;
pub mod request;
pub mod roles;
pub mod secret_pattern;
pub mod status_list;
pub mod token_type;

pub use authority::Authority;
pub use error::{Error, Result};
pub use expiry::ExpiresIn;
pub use id::TokenId;
pub use key_set::{KeySetName, KeyState};
pub use policy::Policy;
pub use record::{
    Actor, Caller, Owned, Refused, RolesClaim, ShownFields, TokenRecord, TokenStatus, TypeFields,
    legacy_owner_key, owner_key,
};
pub use token_type::{Lifetime, MIN_LIFETIME, ONE_HOUR, TokenType};
