//! The organization's policy: read by any member, replaced by its admins (with a `policy_changed`
//! audit event in the same transaction), and holding every creation and rotation from its commit
//! on, on every replica.
//!
//! A rotation reads it in its transaction. A creation checks the policy a replica holds in memory
//! ([`Policies`]) and its insert writes the token only while the stored policy is still at the
//! version it was checked against (`store::Queries::insert_token`); when another replica changed
//! it meanwhile, the insert writes nothing, and the creation reads the policy again, checks it
//! and inserts again. No read per creation, and no cache that can go stale: a change holds for
//! every creation whose insert starts after its commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{Db, NO_POLICY_VERSION, Queries, Store, StoredPolicy};
use crate::tokens::policy::PolicyBody;
use crate::tokens::{Authority, Caller, Policy};

/// Organizations whose policy a replica holds; past it, the map starts again empty (each
/// organization then costs one read on its next creation).
const MAX_HELD: usize = 10_000;

/// The organization's policy as stored now: one primary-key read; the default policy when the
/// organization never set one.
pub(super) async fn read(db: &mut Db<'_>, org_id: &str) -> Result<Policy> {
    Ok(versioned(db.get_policy(org_id).await?)?.0)
}

fn versioned(stored: Option<StoredPolicy>) -> Result<(Policy, i64)> {
    match stored {
        None => Ok((Policy::default(), NO_POLICY_VERSION)),
        Some(stored) => Ok((parse_stored(&stored.policy)?, stored.version)),
    }
}

/// The policies this replica checked creations against, with their versions: a hint, never the
/// truth (the insert compares the version with the stored one).
#[derive(Debug, Default)]
pub struct Policies {
    held: Mutex<HashMap<String, (Arc<Policy>, i64)>>,
}

impl Policies {
    /// The organization's policy as this replica last read or wrote it, with its version.
    pub fn held(&self, org_id: &str) -> Option<(Arc<Policy>, i64)> {
        self.lock().get(org_id).cloned()
    }

    /// Reads the organization's policy from the primary and holds it.
    pub async fn read(&self, store: &Store, org_id: &str) -> Result<(Arc<Policy>, i64)> {
        let stored = store.acquire().await?.db().get_policy(org_id).await?;
        let (policy, version) = versioned(stored)?;
        let read = (Arc::new(policy), version);
        self.hold(org_id, read.clone());
        Ok(read)
    }

    fn hold(&self, org_id: &str, policy: (Arc<Policy>, i64)) {
        let mut held = self.lock();
        if held.len() >= MAX_HELD && !held.contains_key(org_id) {
            held.clear();
        }
        // A version older than the one held (a read that raced a change here) is not kept.
        match held.get(org_id) {
            Some((_, version)) if *version > policy.1 => {}
            _ => {
                held.insert(org_id.to_owned(), policy);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Policy>, i64)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn parse_stored(json: &str) -> Result<Policy> {
    Policy::from_stored(json).map_err(|e| Error::internal("reading a stored policy", e))
}

/// The caller's organization's policy. Any member may read it: the rules it sets are the ones
/// their own creations must follow.
pub async fn get(store: &Store, caller: &Caller) -> Result<Policy> {
    // May be served by the read standby: after the caller's own change, it has replayed it.
    Ok(versioned(store.read_policy(&caller.org_id).await?)?.0)
}

/// What a `policy_changed` event holds.
#[derive(Serialize)]
struct Change<'a> {
    old: &'a Policy,
    new: &'a Policy,
}

/// Replaces the caller's organization's policy with `body`, for admins only (403 naming the admin
/// roles); a policy that breaks a type's rules is a 400. Answers the policy now in force, and
/// whether it changed: a policy equal to the one in force changes nothing and records no event.
pub async fn put(
    store: &Store,
    policies: &Policies,
    authority: &Authority,
    caller: &Caller,
    body: PolicyBody,
) -> Result<(Policy, bool)> {
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
        return Ok((old, false));
    }
    let details = serde_json::to_string(&Change {
        old: &old,
        new: &new,
    })
    .map_err(|e| Error::internal("writing a policy change", e))?;
    let version = tx
        .db()
        .update_policy(&caller.org_id, &new_json, &caller.user_id)
        .await?;
    tx.db()
        .record_org_event(&caller.org_id, "policy_changed", &details, &caller.actor())
        .await?;
    tx.commit().await?;
    policies.hold(&caller.org_id, (Arc::new(new.clone()), version));
    Ok((new, true))
}
