//! Operations on stored keys: creating the keys a set lacks, rotation, revocation, re-wrapping
//! under a new key-encryption key, and listing. Each runs in one transaction under the key-set lock
//! (an advisory lock on PostgreSQL, the write lock on SQLite),
//! so replicas starting together and operators acting at once never fork a key set.

use aws_lc_rs::rsa::{KeyPair, KeySize};

use super::binding::bound_key_pair;
use super::error::KeyError;
use super::jwks::PublicJwk;
use super::seal::{KeyEncryptionKey, associated_data, sealed};
use crate::store::{Db, KeyInfo, KeyRow, Queries, Store};
use crate::tokens::{KeySetName, KeyState};
use KeyState::{Active, Next, Retired};

/// Gives every set an active and a next key, creating what is missing. A set whose active key was
/// lost (never normally: revocation promotes the next key) gets its next key promoted.
///
/// First of all, the key-encryption key must open what is stored: an active key it cannot open,
/// or a set whose published keys it opens none of, means a wrong key-encryption key, and start-up
/// stops with nothing written (no key sealed under the wrong one is ever added).
pub async fn ensure_keys(store: &Store, kek: &KeyEncryptionKey) -> Result<(), KeyError> {
    let mut tx = store.begin().await?;
    tx.db().lock_key_sets().await?;
    let mut published = Vec::with_capacity(KeySetName::ALL.len());
    for name in KeySetName::ALL {
        let rows = tx.db().published_keys(name).await?;
        if let Some(active) = rows.iter().find(|r| r.state == Active) {
            bound_key_pair(kek, active)?;
        } else if let Some(first) = rows.first()
            && !rows.iter().any(|r| bound_key_pair(kek, r).is_ok())
        {
            bound_key_pair(kek, first)?;
        }
        published.push((name, rows));
    }
    for (name, rows) in published {
        let has_active = rows.iter().any(|r| r.state == Active);
        let next = bound_next(kek, &rows);
        match (has_active, next) {
            (true, Some(_)) => {}
            (true, None) => create(tx.db(), kek, name, Next).await?,
            (false, Some(next)) => {
                tx.db().set_key_state(&next.kid, Active).await?;
                create(tx.db(), kek, name, Next).await?;
            }
            (false, None) => {
                create(tx.db(), kek, name, Active).await?;
                create(tx.db(), kek, name, Next).await?;
            }
        }
        // The key that permutes the set's status list indices: the first start writes it, and
        // it never changes (every index published depends on it).
        if name.has_status_lists() {
            let mut candidate = [0u8; 16];
            aws_lc_rs::rand::fill(&mut candidate).map_err(|_| KeyError::Generate)?;
            tx.db().ensure_status_index_key(name, &candidate).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Rotates the given sets: next becomes active, active becomes retired, and a new next key is made.
/// Returns the new active kid of each set. Every organization's endpoints subscribed to
/// `key.rotated` are told, in the same transaction (`public_url`: the events' `source`).
pub async fn rotate(
    store: &Store,
    kek: &KeyEncryptionKey,
    sets: &[KeySetName],
    public_url: &str,
) -> Result<Vec<(KeySetName, String)>, KeyError> {
    let mut tx = store.begin().await?;
    tx.db().lock_key_sets().await?;
    let mut activated = Vec::new();
    for &name in sets {
        let rows = tx.db().published_keys(name).await?;
        let next = bound_next(kek, &rows).ok_or_else(|| {
            KeyError::Operation(format!(
                "key set {name} has no next key; start the service once to create it"
            ))
        })?;
        if let Some(active) = rows.iter().find(|r| r.state == Active) {
            tx.db().set_key_state(&active.kid, Retired).await?;
        }
        tx.db().set_key_state(&next.kid, Active).await?;
        create(tx.db(), kek, name, Next).await?;
        activated.push((name, next.kid.clone()));
    }
    for (name, kid) in &activated {
        crate::webhooks::Webhooks::key_rotated(&mut tx, public_url, name.as_str(), kid)
            .await
            .map_err(|e| KeyError::Operation(format!("queueing the key.rotated event: {e}")))?;
    }
    tx.commit().await?;
    Ok(activated)
}

/// What `revoke` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The key is revoked now; `promoted` names the next key that became active, when the revoked
    /// key was the active one.
    Now {
        key_set: String,
        promoted: Option<String>,
    },
    Already,
}

/// Revokes a key: it is no longer published, and every token it signed is refused. Revoking the
/// active key promotes the next key; the set gets a new next key whenever it lost one.
pub async fn revoke(store: &Store, kek: &KeyEncryptionKey, kid: &str) -> Result<Revoked, KeyError> {
    let mut tx = store.begin().await?;
    tx.db().lock_key_sets().await?;
    let row = tx.db().get_key(kid).await?.ok_or_else(|| {
        KeyError::Operation(format!(
            "no key {kid}; `access-tokens keys list` shows the kids"
        ))
    })?;
    if row.state == KeyState::Revoked {
        return Ok(Revoked::Already);
    }
    let name: KeySetName = row.key_set.parse().map_err(KeyError::Operation)?;
    tx.db().set_key_state(kid, KeyState::Revoked).await?;
    let mut promoted = None;
    match row.state {
        Active => {
            let rows = tx.db().published_keys(name).await?;
            let next = bound_next(kek, &rows).ok_or(KeyError::NoActiveKey(name))?;
            tx.db().set_key_state(&next.kid, Active).await?;
            promoted = Some(next.kid.clone());
            create(tx.db(), kek, name, Next).await?;
        }
        Next => create(tx.db(), kek, name, Next).await?,
        _ => {}
    }
    tx.commit().await?;
    Ok(Revoked::Now {
        key_set: row.key_set,
        promoted,
    })
}

/// Re-seals every private key under `new`, in one transaction; nothing changes unless every key
/// opens under `old`. Returns how many keys were re-sealed.
pub async fn rewrap(
    store: &Store,
    old: &KeyEncryptionKey,
    new: &KeyEncryptionKey,
) -> Result<usize, KeyError> {
    let mut tx = store.begin().await?;
    tx.db().lock_key_sets().await?;
    let rows = tx.db().all_keys().await?;
    for row in &rows {
        let associated = associated_data(&row.key_set, &row.kid);
        let der = old
            .open(&sealed(row), &associated)
            .map_err(|e| KeyError::Seal(e, row.kid.clone()))?;
        let sealed = new
            .seal(secrecy::ExposeSecret::expose_secret(&der), &associated)
            .map_err(|e| KeyError::Seal(e, row.kid.clone()))?;
        tx.db()
            .update_sealed(&row.kid, &sealed.nonce, &sealed.ciphertext)
            .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// The set's next key that is bound to the key-encryption key: a row written into the database
/// without the KEK is never promoted to signing.
fn bound_next<'a>(kek: &KeyEncryptionKey, rows: &'a [KeyRow]) -> Option<&'a KeyRow> {
    rows.iter()
        .find(|r| r.state == Next && bound_key_pair(kek, r).is_ok())
}

pub async fn list(store: &Store) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(store.acquire().await?.db().keys_with_counts().await?)
}

/// The kids of the published keys (next, active, retired) that `kek` does not open: sealed under
/// another key-encryption key, or not bound to their row. They are neither published nor trusted.
pub async fn unopened(
    store: &Store,
    kek: &KeyEncryptionKey,
) -> Result<std::collections::HashSet<String>, KeyError> {
    let rows = store.acquire().await?.db().all_keys().await?;
    Ok(rows
        .into_iter()
        .filter(|row| row.state.is_published() && bound_key_pair(kek, row).is_err())
        .map(|row| row.kid)
        .collect())
}

async fn create(
    mut db: Db<'_>,
    kek: &KeyEncryptionKey,
    name: KeySetName,
    state: KeyState,
) -> Result<(), KeyError> {
    let row = generate(kek, name, state).await?;
    db.insert_key(&row).await?;
    tracing::info!(key_set = %name, kid = %row.kid, %state, "created signing key");
    Ok(())
}

/// A new RSA-2048 key, sealed, as a row to insert. Key generation runs off the async threads.
async fn generate(
    kek: &KeyEncryptionKey,
    name: KeySetName,
    state: KeyState,
) -> Result<KeyRow, KeyError> {
    let pair = tokio::task::spawn_blocking(|| KeyPair::generate(KeySize::Rsa2048))
        .await
        .map_err(|_| KeyError::Generate)?
        .map_err(|_| KeyError::Generate)?;
    seal_row(kek, name, state, &pair)
}

/// A new RSA-2048 key, sealed, as a row (blocking; for in-memory key sets).
pub(super) fn generate_blocking(
    kek: &KeyEncryptionKey,
    name: KeySetName,
    state: KeyState,
) -> Result<KeyRow, KeyError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    seal_row(kek, name, state, &pair)
}

fn seal_row(
    kek: &KeyEncryptionKey,
    name: KeySetName,
    state: KeyState,
    pair: &KeyPair,
) -> Result<KeyRow, KeyError> {
    let public = PublicJwk::from_key_pair(pair);
    let kid = public.thumbprint();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(pair)
        .map_err(|_| KeyError::Generate)?;
    let sealed = kek
        .seal(der.as_ref(), &associated_data(name.as_str(), &kid))
        .map_err(|e| KeyError::Seal(e, kid.clone()))?;
    Ok(KeyRow {
        kid,
        key_set: name.as_str().to_owned(),
        state,
        n: public.n,
        e: public.e,
        private_key_sealed: sealed.ciphertext,
        nonce: sealed.nonce,
    })
}
