//! The create, get, list, revoke and rotate rules, calling the store and the key ring. Every change
//! and its audit event share one transaction, and a JWT is returned only after its record is
//! committed, so a JWT that exists always has a row.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};
use crate::keys::{KeyRing, Keys};
use crate::store::types::Timestamp;
use crate::store::{Action, ListQuery, Lock, Queries, Store, Tx};
use crate::tokens::claims::Claims;
use crate::tokens::notice::ExpiryWarnings;
use crate::tokens::request::NewToken;
use crate::tokens::status_list::StatusClaim;
use crate::tokens::{
    Authority, Caller, Lifetime, TokenId, TokenRecord, TokenStatus, TokenType, TypeFields, roles,
};

use crate::policy::{self, Policies};

/// A new token: the JWT (shown once) and its record.
pub struct Created {
    pub jwt: String,
    pub record: TokenRecord,
}

fn refuse_read_only(caller: &Caller) -> Result<()> {
    if caller.read_only {
        return Err(Error::forbidden(
            "a read-only token cannot create, rotate or revoke tokens",
        ));
    }
    Ok(())
}

/// A token never sees more than its creator: an anonymizing caller makes anonymizing tokens.
fn check_anonymize(caller: &Caller, anonymize: bool) -> Result<()> {
    if caller.anonymize && !anonymize {
        return Err(Error::forbidden(
            "an anonymizing token cannot create a token that does not anonymize",
        ));
    }
    Ok(())
}

fn not_found() -> Error {
    Error::NotFound("access token not found".to_owned())
}

/// A token the caller manages, its row locked until `tx` ends (concurrent changes of one token
/// queue up); any other id is a 404.
async fn lock_managed(
    tx: &mut Tx,
    authority: &Authority,
    caller: &Caller,
    id: &str,
) -> Result<TokenRecord> {
    tx.db()
        .get_token(
            &caller.org_id,
            id,
            authority.owner_filter(caller),
            Lock::ForUpdate,
        )
        .await?
        .ok_or_else(not_found)
}

/// The token's roles, granted again by the caller (403 unless it holds every one): what rotating
/// or resuming a token asks, as each hands a credential out.
fn grant_again(caller: &Caller, token: &TokenRecord) -> Result<Vec<String>> {
    let requested = roles::parse_requested(&token.assignments)
        .map_err(|_| Error::forbidden("the token holds roles that cannot be granted again"))?;
    Ok(roles::grant(
        &caller.org_id,
        &caller.roles,
        Some(requested),
    )?)
}

/// What a new token is, before it gets an id, a key and its times.
struct Draft {
    token_type: TokenType,
    name: String,
    assignments: Vec<String>,
    read_only: bool,
    anonymize: bool,
    fields: TypeFields,
    /// Seconds, already held to the caller's expiry (`inherited_lifetime`).
    lifetime: Option<u64>,
    rotated_from: Option<String>,
    parent_id: Option<String>,
    /// The principal the token is for, as (user id, owner key): the caller's, but for a token
    /// rotated by someone else (an admin), whose owner it stays.
    owner: Option<(String, String)>,
}

/// A token created by a token of this service never outlives it: a chosen lifetime (`expires_in`)
/// past the caller's expiry is a 400 (never clamped); a default one, or none, becomes the time left
/// to the caller. Identity-provider callers (and tokens without `exp`) bound nothing.
fn inherited_lifetime(caller: &Caller, lifetime: Option<u64>, chosen: bool) -> Result<Option<u64>> {
    let Some(limit) = caller.expires_at else {
        return Ok(lifetime);
    };
    // Whole seconds, rounded up: `mint` cuts the expiry to the caller's own, to the millisecond.
    let left_ms = (limit - Utc::now()).num_milliseconds().max(0);
    let left = u64::try_from((left_ms + 999) / 1000).unwrap_or(0);
    match lifetime {
        Some(seconds) if seconds <= left => Ok(Some(seconds)),
        Some(_) if chosen => Err(Error::bad_request(format!(
            "expires_in reaches past the expiry of the calling token ({}): a token created by a \
             token never outlives it; ask for at most {left} seconds, or omit expires_in to get \
             the calling token's expiry",
            limit.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ))),
        _ => Ok(Some(left)),
    }
}

/// A record ready to be written, with the key sets it was made with: it is signed with that same
/// active key once the store has given it its status list index.
struct Minted {
    record: TokenRecord,
    keys: Arc<Keys>,
}

impl Minted {
    /// Signs `record` (the minted record as stored, or the minted one when it is never stored)
    /// with the key named in it.
    fn sign(&self, record: &TokenRecord, caller: &Caller) -> Result<String> {
        let key_set = self.keys.set(record.token_type.key_set());
        let mut claims = Claims::new(&key_set.issuer, record, caller);
        // The store's slot, published at its permuted index (as the set's lists show it).
        claims.status = record
            .status
            .map(|slot| StatusClaim::new(&key_set.issuer, key_set.status_index.publish(slot)));
        key_set
            .signing
            .sign(&claims)
            .map_err(|e| Error::internal("signing a new token", e))
    }
}

/// Gives the draft an id, the active key of its set and its times.
fn mint(
    keys: &KeyRing,
    warnings: &ExpiryWarnings,
    caller: &Caller,
    draft: Draft,
) -> Result<Minted> {
    let keys = keys.current();
    let key_set = keys.set(draft.token_type.key_set());
    let now = Utc::now();
    let expires_at = match draft.lifetime {
        Some(seconds) => {
            let seconds = i64::try_from(seconds)
                .map_err(|_| Error::bad_request("expires_in is too large"))?;
            Some(now + Duration::seconds(seconds))
        }
        None => None,
    };
    // `inherited_lifetime` decided the lifetime; what passed since cannot take it past the caller.
    let expires_at = match (expires_at, caller.expires_at) {
        (Some(at), Some(limit)) => Some(at.min(limit)),
        (at, _) => at,
    };
    let (created_by, owner) = draft
        .owner
        .unwrap_or_else(|| (caller.user_id.clone(), caller.owner.clone()));
    let record = TokenRecord {
        id: TokenId::generate(draft.token_type).to_string(),
        org_id: caller.org_id.clone(),
        created_by,
        owner,
        token_type: draft.token_type,
        name: draft.name,
        assignments: draft.assignments,
        read_only: draft.read_only,
        anonymize: draft.anonymize,
        fields: draft.fields,
        key_id: key_set.signing.kid().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        suspended_at: None,
        last_used: None,
        rotated_from: draft.rotated_from,
        parent_id: draft.parent_id,
        status: None,
        notice_at: warnings.first_notice(now, expires_at),
        retires_at: None,
        replaced_by: None,
    };
    Ok(Minted { record, keys })
}

/// Creates a token for the caller's organization.
/// Inserts a creation tries before it gives up on a policy that changes under it each time.
const POLICY_ATTEMPTS: u32 = 3;

pub async fn create(
    store: &Store,
    policies: &Policies,
    keys: &KeyRing,
    warnings: &ExpiryWarnings,
    authority: &Authority,
    caller: &Caller,
    new: NewToken,
) -> Result<Created> {
    refuse_read_only(caller)?;
    let token_type = new.token_type;
    authority.may_create(caller, token_type)?;
    let chosen_lifetime =
        new.lifetime.is_some() && !matches!(token_type.lifetime(), Lifetime::Fixed(_));
    let (assignments, read_only, anonymize) = if token_type.carries_roles() {
        let assignments = roles::grant(&caller.org_id, &caller.roles, new.requested_roles)?;
        let anonymize = new.anonymize.unwrap_or(caller.anonymize);
        check_anonymize(caller, anonymize)?;
        (assignments, new.read_only.unwrap_or(false), anonymize)
    } else {
        (Vec::new(), false, false)
    };
    let lifetime = inherited_lifetime(caller, new.lifetime, chosen_lifetime)?;
    // The organization's policy holds the token it would make, with the lifetime it would get: a
    // token never stored is checked against the policy read now; a stored one against the policy
    // this replica holds, which its insert confirms (see `policy`).
    // A refusal is always the policy of now's: a held policy that refuses is read again first.
    let mut policy_version = match policies.held(&caller.org_id) {
        Some((policy, version))
            if token_type.is_stored() && policy.check(token_type, lifetime).is_ok() =>
        {
            version
        }
        _ => {
            let (policy, version) = policies.read(store, &caller.org_id).await?;
            policy.check(token_type, lifetime)?;
            version
        }
    };
    let mut minted = mint(
        keys,
        warnings,
        caller,
        Draft {
            token_type,
            name: new.name,
            assignments,
            read_only,
            anonymize,
            fields: new.fields,
            lifetime,
            rotated_from: None,
            parent_id: caller.token_id.clone(),
            owner: None,
        },
    )?;
    if !token_type.is_stored() {
        // Never stored, so its `created` event is its only trace; the JWT is answered only after
        // the event is written.
        let jwt = minted.sign(&minted.record, caller)?;
        store
            .acquire()
            .await?
            .db()
            .record_event(Action::Created, &minted.record, None, &caller.actor())
            .await?;
        return Ok(Created {
            jwt,
            record: minted.record,
        });
    }
    // Answered once the record is committed with its status list index: a JWT always has a row.
    // Where the index is reserved ahead (PostgreSQL), the JWT is signed while the row is written
    // (the signature is most of a creation's CPU, the write mostly waiting); else once the store
    // has given the index.
    minted.record.status = store.reserve_status(token_type.key_set()).await?;
    let write = async {
        let mut attempts = 1;
        loop {
            if let Some(record) = store
                .create_token(minted.record.clone(), caller.actor(), policy_version)
                .await?
            {
                return Ok(record);
            }
            // The policy changed since this replica read it: the policy of now decides.
            if attempts == POLICY_ATTEMPTS {
                return Err(Error::Conflict(
                    "the organization's policy kept changing while the token was created; try \
                     again"
                        .to_owned(),
                ));
            }
            attempts += 1;
            let (policy, version) = policies.read(store, &caller.org_id).await?;
            policy.check(token_type, lifetime)?;
            policy_version = version;
        }
    };
    // The write first: it queues the record for a writer, then waits while this signs.
    let (written, signed) = tokio::join!(write, async {
        minted
            .record
            .status
            .map(|_| minted.sign(&minted.record, caller))
    });
    let record: TokenRecord = written?;
    let jwt = match signed {
        Some(jwt) => jwt?,
        None => minted.sign(&record, caller)?,
    };
    Ok(Created { jwt, record })
}

/// One of the caller's organization's tokens, revoked or not: any of them for an admin, else one
/// the caller created (another user's is a 404, as a missing one is).
pub async fn get(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    id: &str,
) -> Result<TokenRecord> {
    TokenId::parse(id).ok_or_else(not_found)?;
    let owner = authority.owner_filter(caller);
    store
        .read_token(&caller.org_id, id, owner)
        .await?
        .ok_or_else(not_found)
}

/// Which tokens to list, and from where.
#[derive(Debug, Default)]
pub struct ListParams {
    pub types: Option<Vec<TokenType>>,
    pub status: TokenStatus,
    pub name: Option<String>,
    /// Only the tokens this user created (`created_by`).
    pub created_by: Option<String>,
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: u16,
}

/// A page of the caller's organization's tokens, newest first: all of them (or one creator's) for
/// an admin, else the caller's own.
pub async fn list(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    params: &ListParams,
) -> Result<Vec<TokenRecord>> {
    let names: Option<Vec<&str>> = params
        .types
        .as_ref()
        .map(|ts| ts.iter().map(|t| t.as_str()).collect());
    let query = ListQuery {
        org_id: &caller.org_id,
        types: names.as_deref(),
        status: params.status,
        name: params.name.as_deref(),
        created_by: params.created_by.as_deref(),
        owner: authority.owner_filter(caller),
        after: params.after.as_ref().map(|(t, id)| (*t, id.as_str())),
        limit: i64::from(params.limit),
    };
    Ok(store.read_tokens(&query).await?)
}

/// The most tokens one cascade revokes, and the deepest it walks: past either, a cascade is a 409
/// and revokes nothing, so that one request's work (and its transaction) stays bounded.
pub const MAX_CASCADE_TOKENS: i64 = 10_000;
pub const MAX_CASCADE_DEPTH: i64 = 64;

/// A revocation: the token, and with `cascade` every token below it (oldest first).
pub struct Revoked {
    pub record: TokenRecord,
    pub descendants: Vec<TokenRecord>,
}

/// Revokes one of the caller's organization's tokens that the caller manages; any other id is a
/// 404. Revoking a revoked token answers its record again and records no second event. With
/// `cascade`, every token created from it (children, their children, ...) is revoked in the same
/// transaction, each with its own event (written in one batch), whether the token itself was
/// revoked before or not.
pub async fn revoke(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    id: &str,
    cascade: bool,
) -> Result<Revoked> {
    refuse_read_only(caller)?;
    TokenId::parse(id).ok_or_else(not_found)?;
    let mut tx = store.begin().await?;
    let (record, revoked_now) = tx
        .db()
        .revoke_token(&caller.org_id, id, authority.owner_filter(caller))
        .await?
        .ok_or_else(not_found)?;
    let actor = caller.actor();
    if revoked_now {
        tx.db()
            .record_event(Action::Revoked, &record, None, &actor)
            .await?;
    }
    let descendants = if cascade {
        let (count, depth) = tx
            .db()
            .descendant_extent(&caller.org_id, id, MAX_CASCADE_DEPTH)
            .await?;
        if depth > MAX_CASCADE_DEPTH || count > MAX_CASCADE_TOKENS {
            return Err(Error::Conflict(format!(
                "the token has {count} tokens below it{}, more than one cascade revokes (at most {MAX_CASCADE_TOKENS} tokens, {MAX_CASCADE_DEPTH} levels deep): revoke the tokens below it in parts first; nothing was revoked",
                if depth > MAX_CASCADE_DEPTH {
                    format!(" over more than {MAX_CASCADE_DEPTH} levels")
                } else {
                    String::new()
                }
            )));
        }
        tx.db().revoke_descendants(&caller.org_id, id).await?
    } else {
        Vec::new()
    };
    // One statement for all of them: a cascade's events cost one round trip, however many.
    tx.db()
        .record_events(Action::Revoked, &descendants, Some(&record.id), &actor)
        .await?;
    tx.commit().await?;
    Ok(Revoked {
        record,
        descendants,
    })
}

/// How a rotation goes: with an overlap (the old token stays valid that long), and whether the
/// token rotates itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rotation {
    /// Zero: the old token is revoked at once.
    pub overlap: std::time::Duration,
    /// The calling token rotates itself (`/self/rotate`): authorised by holding it, whatever
    /// roles it has, and not bounded by its own expiry (it replaces itself).
    pub itself: bool,
}

/// Revokes the token that `actor` is (its `token_id`), acting as itself; a second revocation
/// answers the record again and records nothing. 404 when it is not stored (a deleted row).
pub async fn revoke_itself(store: &Store, actor: &crate::tokens::Actor) -> Result<TokenRecord> {
    let id = actor.token_id.as_deref().ok_or_else(not_found)?;
    let mut tx = store.begin().await?;
    let (record, revoked_now) = tx
        .db()
        .revoke_token(&actor.org_id, id, None)
        .await?
        .ok_or_else(not_found)?;
    if revoked_now {
        tx.db()
            .record_event(Action::Revoked, &record, None, actor)
            .await?;
    }
    tx.commit().await?;
    Ok(record)
}

/// Replaces a token with a new one of the same type, name, roles, flags and type fields (and, for
/// an expiring token, the same lifetime from now). Without an overlap the old one is revoked in the
/// same transaction; with one it stays valid until `retires_at` (now plus the overlap, or its own
/// expiry when sooner), when the service revokes it ([`retire_due`]). The caller must hold every
/// role of the token: rotation hands out a new credential.
pub async fn rotate(
    store: &Store,
    keys: &KeyRing,
    warnings: &ExpiryWarnings,
    authority: &Authority,
    caller: &Caller,
    id: &str,
    how: Rotation,
) -> Result<Created> {
    if !how.itself {
        refuse_read_only(caller)?;
    }
    TokenId::parse(id).ok_or_else(not_found)?;
    let mut tx = store.begin().await?;
    // The row lock makes concurrent rotations and revocations of one token queue up: the first
    // rotates, the others find it revoked (or rotating).
    let old = if how.itself {
        tx.db()
            .get_token(&caller.org_id, id, None, Lock::ForUpdate)
            .await?
            .ok_or_else(not_found)?
    } else {
        let old = lock_managed(&mut tx, authority, caller, id).await?;
        // Rotation hands out a new credential: the same right as creating one.
        authority.may_create(caller, old.token_type)?;
        old
    };
    if old.revoked_at.is_some() {
        return Err(Error::Conflict(
            "the token is revoked; only an active token can be rotated".to_owned(),
        ));
    }
    if let (Some(retires_at), Some(replaced_by)) = (old.retires_at, &old.replaced_by) {
        return Err(Error::Conflict(format!(
            "the token is rotating already: {replaced_by} replaces it, and it is revoked at {}; rotate {replaced_by} instead, or revoke this one to end it now",
            crate::tokens::item::rfc3339(retires_at)
        )));
    }
    if old.suspended_at.is_some() {
        return Err(Error::Conflict(
            "the token is suspended; resume it before rotating it".to_owned(),
        ));
    }
    let assignments = grant_again(caller, &old)?;
    check_anonymize(caller, old.anonymize)?;
    let lifetime = old
        .expires_at
        .map(|expires_at| u64::try_from((expires_at - old.created_at).num_seconds()).unwrap_or(0));
    let lifetime = if how.itself {
        // It replaces itself: its own expiry bounds nothing, only the policy does.
        lifetime
    } else {
        inherited_lifetime(caller, lifetime, false)?
    };
    // A token rotated by someone else (an admin) stays its owner's: listed to them, acting for
    // them, in its place below its parent (never below the rotating caller's token, where a cascade
    // would revoke what its owner cannot see). Its owner's email and username are not known here,
    // and the rotating caller's are never written in: the new token carries neither.
    let by_owner = caller.owned().includes(&old.owner);
    // The policy of now holds the new token, whatever held the old one.
    policy::read(&mut tx.db(), &caller.org_id)
        .await?
        .check_rotation(old.token_type, lifetime)?;
    let minted = mint(
        keys,
        warnings,
        caller,
        Draft {
            token_type: old.token_type,
            name: old.name.clone(),
            assignments,
            read_only: old.read_only,
            anonymize: old.anonymize,
            fields: old.fields.clone(),
            lifetime,
            rotated_from: Some(old.id.clone()),
            // The new token takes the old one's place below its parent, unless another token of
            // its owner rotates it: then it is that token's, and never outlives it. A token
            // rotating itself keeps its place.
            parent_id: caller
                .token_id
                .clone()
                .filter(|_| by_owner && !how.itself)
                .or_else(|| old.parent_id.clone()),
            // Its owner rotating it makes it the caller's principal's (a token from before
            // principals, with its legacy key, gets the full one).
            owner: (!by_owner).then(|| (old.created_by.clone(), old.owner.clone())),
        },
    )?;
    let new_id = minted.record.id.clone();
    let actor = caller.actor();
    // The end of the old token: now, or at `retires_at` (never past its own expiry).
    let overlap = Duration::from_std(how.overlap).unwrap_or(Duration::MAX);
    let retires_at = (!how.overlap.is_zero()).then(|| {
        let at = Utc::now()
            .checked_add_signed(overlap)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        old.expires_at.map_or(at, |expires| at.min(expires))
    });
    tx.db()
        .record_event(Action::Rotated, &old, Some(&new_id), &actor)
        .await?;
    match retires_at {
        Some(at) => {
            tx.db()
                .begin_retirement(&caller.org_id, &old.id, &new_id, Timestamp(at))
                .await?;
        }
        None => {
            if let Some((revoked, true)) =
                tx.db().revoke_token(&caller.org_id, &old.id, None).await?
            {
                tx.db()
                    .record_revocation(&revoked, Some(&new_id), &actor, None, ROTATED)
                    .await?;
            }
        }
    }
    // The new token's `created` event names the token it replaced (its `rotated_from`).
    // Checked against the policy read in this transaction above.
    let record = tx
        .db()
        .insert_token(&minted.record, &actor, None)
        .await?
        .ok_or_else(|| Error::internal("rotating a token", sqlx::Error::RowNotFound))?;
    tx.commit().await?;
    let jwt = if by_owner {
        minted.sign(&record, caller)?
    } else {
        let unnamed = Caller {
            username: None,
            email: None,
            ..caller.clone()
        };
        minted.sign(&record, &unnamed)?
    };
    Ok(Created { jwt, record })
}

/// The details of the `revoked` event that ends a rotated token.
const ROTATED: &str = r#"{"reason":"rotated"}"#;

/// At most this many rotating tokens are retired in one transaction.
pub const RETIRE_BATCH: i64 = 100;

/// Revokes the rotating tokens whose `retires_at` has come, each with its `revoked` event
/// (`details.reason: "rotated"`, the related token the one that replaced it, acted by the service
/// itself), in one transaction; returns them. Any replica may run it at any time: the store
/// revokes each once.
pub async fn retire_due(store: &Store) -> Result<Vec<TokenRecord>> {
    let mut tx = store.begin().await?;
    let retired = tx.db().retire_due(Timestamp::now(), RETIRE_BATCH).await?;
    for record in &retired {
        let actor = crate::tokens::Actor {
            org_id: record.org_id.clone(),
            home_org_id: None,
            user_id: String::new(),
            token_id: None,
            source_ip: None,
            user_agent: None,
        };
        tx.db()
            .record_revocation(
                record,
                record.replaced_by.as_deref(),
                &actor,
                Some("service"),
                ROTATED,
            )
            .await?;
    }
    tx.commit().await?;
    Ok(retired)
}

/// The most parents walked up from a caller's token: deeper chains are refused (no token of this
/// service is made that deep in practice, and the walk must stay bounded).
const MAX_ANCESTRY: usize = 64;

/// 403 when the caller is a token of this service that is `id` or descends from it: a suspended
/// token must not be lifted by itself or by the tokens it made. (Those are suspended with it and
/// refused as callers already; this holds should one ever get through, e.g. between the two.)
async fn refuse_resuming_an_ancestor(tx: &mut Tx, caller: &Caller, id: &str) -> Result<()> {
    let mut next = caller.token_id.clone();
    for _ in 0..MAX_ANCESTRY {
        let Some(current) = next else {
            return Ok(());
        };
        if current == id {
            return Err(Error::forbidden(
                "a token cannot resume itself or a token it descends from",
            ));
        }
        next = tx
            .db()
            .get_token(&caller.org_id, &current, None, Lock::None)
            .await?
            .and_then(|record| record.parent_id);
    }
    Err(Error::forbidden(
        "the caller's token descends from too many tokens to resume one",
    ))
}

/// Suspends (`true`) or resumes a token the caller manages: refused as a caller and by
/// introspection until it is resumed. As for revoking, the caller is not read-only; to resume, as
/// for rotating, it holds every role of the token (resuming hands a credential back). A revoked token
/// is a 409; a token already in the asked-for state answers its record again with no second event.
pub async fn set_suspended(
    store: &Store,
    authority: &Authority,
    caller: &Caller,
    id: &str,
    suspend: bool,
) -> Result<Suspension> {
    refuse_read_only(caller)?;
    TokenId::parse(id).ok_or_else(not_found)?;
    let mut tx = store.begin().await?;
    let token = lock_managed(&mut tx, authority, caller, id).await?;
    if token.revoked_at.is_some() {
        let verb = if suspend { "suspended" } else { "resumed" };
        return Err(Error::Conflict(format!(
            "the token is revoked for good; a revoked token cannot be {verb}"
        )));
    }
    // Suspending hands nothing out: whoever manages the token (an admin, any token of the
    // organization) may, holding none of its roles. Resuming gives its access back: only a
    // caller holding every role it carries, never the token itself or a token descending from
    // it, and only an admin when an admin suspended it.
    if !suspend {
        grant_again(caller, &token)?;
        refuse_resuming_an_ancestor(&mut tx, caller, id).await?;
        match tx.db().suspension(&caller.org_id, id).await? {
            Some((_, Some(ancestor))) => {
                return Err(Error::Conflict(format!(
                    "the token is suspended with {ancestor}, a token it descends from: resuming that one resumes it"
                )));
            }
            Some((true, None)) if !authority.is_admin(caller) => {
                return Err(Error::forbidden(
                    "an admin suspended this token: only an admin of the organization resumes it",
                ));
            }
            _ => {}
        }
    }
    if token.suspended_at.is_some() == suspend {
        return Ok(Suspension {
            record: token,
            changed: false,
            descendants: Vec::new(),
        });
    }
    let record = tx
        .db()
        .set_suspended(&caller.org_id, id, suspend, authority.is_admin(caller))
        .await?
        .ok_or_else(not_found)?;
    let action = if suspend {
        Action::Suspended
    } else {
        Action::Resumed
    };
    let actor = caller.actor();
    tx.db().record_event(action, &record, None, &actor).await?;
    // Every token made from it is refused with it, and comes back with it.
    let descendants = tx
        .db()
        .suspend_descendants(&caller.org_id, id, suspend)
        .await?;
    tx.db()
        .record_events(action, &descendants, None, &actor)
        .await?;
    tx.commit().await?;
    Ok(Suspension {
        record,
        changed: true,
        descendants,
    })
}

/// What a suspension or resumption did: the token as it is now, whether it changed, and the
/// tokens below it that changed with it.
pub struct Suspension {
    pub record: TokenRecord,
    pub changed: bool,
    pub descendants: Vec<TokenRecord>,
}
