//! The organization's policy: read by any member, replaced by its admins (with a `policy_changed`
//! audit event in the same transaction), and read again from the store by every creation and
//! rotation, so that a change holds on every replica from its commit on (no cache to go stale).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{Db, Queries, Store};
use crate::tokens::policy::PolicyBody;
use crate::tokens::{Authority, Caller, Policy};

/// The organization's policy as stored now: one primary-key read; the default policy when the
/// organization never set one.
pub(super) async fn read(db: &mut Db<'_>, org_id: &str) -> Result<Policy> {
    match db.get_policy(org_id).await? {
        None => Ok(Policy::default()),
        Some(json) => parse_stored(&json),
    }
}

fn parse_stored(json: &str) -> Result<Policy> {
    Policy::from_stored(json).map_err(|e| Error::internal("reading a stored policy", e))
}

/// The caller's organization's policy. Any member may read it: the rules it sets are the ones
/// their own creations must follow.
pub async fn get(store: &Store, caller: &Caller) -> Result<Policy> {
    // May be served by the read standby: after the caller's own change, it has replayed it.
    match store.read_policy(&caller.org_id).await? {
        None => Ok(Policy::default()),
        Some(json) => parse_stored(&json),
    }
}

/// What a `policy_changed` event holds.
#[derive(Serialize)]
struct Change<'a> {
    old: &'a Policy,
    new: &'a Policy,
}

/// Replaces the caller's organization's policy with `body`, for admins only (403 naming the admin
/// roles); a policy that breaks a type's rules is a 400. Answers the policy now in force. A policy
/// equal to the one in force changes nothing and records no event.
pub async fn put(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    body: PolicyBody,
) -> Result<Policy> {
    if !authority.is_admin(caller) {
        return Err(Error::forbidden(format!(
            "changing the organization's policy needs a role in organization {} with one of the \
             slugs {} (TOKEN_ADMIN_ROLES)",
            caller.org_id,
            authority.admin_roles.join(", ")
        )));
    }
    if caller.read_only {
        return Err(Error::forbidden(
            "a read-only token cannot change the organization's policy",
        ));
    }
    let new = Policy::parse(body)?;
    let new_json = new.to_json();
    let mut tx = store.begin().await?;
    let old = parse_stored(
        &tx.db()
            .lock_policy(
                &caller.org_id,
                &Policy::default().to_json(),
                &caller.user_id,
            )
            .await?,
    )?;
    if old == new {
        // Dropped without commit: a row written by `lock_policy` is rolled back too.
        return Ok(old);
    }
    let details = serde_json::to_string(&Change {
        old: &old,
        new: &new,
    })
    .map_err(|e| Error::internal("writing a policy change", e))?;
    tx.db()
        .update_policy(&caller.org_id, &new_json, &caller.user_id)
        .await?;
    tx.db()
        .record_policy_event(&caller.org_id, &details, &caller.actor())
        .await?;
    tx.commit().await?;
    Ok(new)
}
