//! People who leave: every token a user created in an organization, and every token made from
//! them (the cascade that exists), revoked in one transaction, each with its own `revoked` event
//! whose `details.reason` is `offboarded`. An admin does it through the API; an operator without
//! an admin's token, with `access-tokens tokens offboard`.

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::store::{Queries, Store, Tx};
use crate::tokens::{Actor, TokenRecord};

/// The longest user id taken (the contract's ids are far shorter).
const MAX_USER_ID_CHARS: usize = 255;

/// What `POST /offboard` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffboardBody {
    pub user_id: String,
}

/// A user id as given (compared exactly, as `created_by` holds it), or a 400 saying what is
/// wrong with it.
pub fn user_id(user: &str) -> Result<&str> {
    if user.is_empty() || user.chars().count() > MAX_USER_ID_CHARS {
        return Err(Error::bad_request(format!(
            "user_id must be 1 to {MAX_USER_ID_CHARS} characters"
        )));
    }
    Ok(user)
}

/// Revokes the organization's unrevoked tokens whose principal is `user_id`, and the tokens
/// below each, as `actor` (`actor_type` when no caller acts: `operator`). Answers the tokens
/// revoked, each once, each with its audit event; none for a user with no tokens.
pub async fn offboard(
    store: &Store,
    org_id: &str,
    user_id: &str,
    actor: &Actor,
    actor_type: Option<&str>,
) -> Result<Vec<TokenRecord>> {
    let details = json!({ "reason": "offboarded", "user_id": user_id }).to_string();
    let mut tx = store.begin().await?;
    let revoked = revoke_created_by(&mut tx, org_id, user_id, actor, actor_type, &details).await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes, in `tx`, the organization's unrevoked tokens whose principal is `user_id` and the
/// tokens below each, each once with a `revoked` event holding `details`; answers them.
pub async fn revoke_created_by(
    tx: &mut Tx,
    org_id: &str,
    user_id: &str,
    actor: &Actor,
    actor_type: Option<&str>,
    details: &str,
) -> Result<Vec<TokenRecord>> {
    let theirs = tx.db().tokens_created_by(org_id, user_id).await?;
    let mut revoked = Vec::new();
    for token in theirs {
        // One revoked earlier in this loop, below another of theirs, answers `false`.
        if let Some((record, true)) = tx.db().revoke_token(org_id, &token.id, None).await? {
            tx.db()
                .record_revocation(&record, None, actor, actor_type, details)
                .await?;
            let below = tx.db().revoke_descendants(org_id, &record.id).await?;
            for child in &below {
                tx.db()
                    .record_revocation(child, Some(&record.id), actor, actor_type, details)
                    .await?;
            }
            revoked.push(record);
            revoked.extend(below);
        }
    }
    Ok(revoked)
}
