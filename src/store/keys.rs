//! The `signing_keys` table.

use sqlx::{PgConnection, Postgres, Transaction};

use crate::keys::lifecycle::KeyInfo;
use crate::keys::seal::Sealed;

/// Advisory lock key that serializes key creation, rotation and revocation across replicas and
/// operators.
const KEY_SETS_LOCK: i64 = 0x6b65_7973_6574; // "keyset"

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub key_set: String,
    pub state: String,
    pub n: String,
    pub e: String,
    pub private_key_sealed: Vec<u8>,
    pub nonce: Vec<u8>,
}

impl KeyRow {
    pub fn sealed(&self) -> Sealed {
        Sealed {
            nonce: self.nonce.clone(),
            ciphertext: self.private_key_sealed.clone(),
        }
    }
}

pub async fn lock_key_sets(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(KEY_SETS_LOCK)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// The keys a set publishes (every state but revoked), oldest first.
pub async fn published(conn: &mut PgConnection, key_set: &str) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select kid, key_set, state, n, e, private_key_sealed, nonce
         from signing_keys
         where key_set = $1 and state <> 'revoked'
         order by created_at, kid",
    )
    .bind(key_set)
    .fetch_all(conn)
    .await
}

/// Every key, oldest first.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select kid, key_set, state, n, e, private_key_sealed, nonce
         from signing_keys order by created_at, kid",
    )
    .fetch_all(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, kid: &str) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select kid, key_set, state, n, e, private_key_sealed, nonce from signing_keys where kid = $1",
    )
    .bind(kid)
    .fetch_optional(conn)
    .await
}

/// (kid, state) of every key: what replicas compare to notice a rotation or revocation.
pub async fn fingerprint(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("select kid, state from signing_keys order by created_at, kid")
        .fetch_all(conn)
        .await
}

pub async fn insert(conn: &mut PgConnection, row: &KeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into signing_keys (kid, key_set, state, n, e, private_key_sealed, nonce, activated_at)
         values ($1, $2, $3, $4, $5, $6, $7, case when $3 = 'active' then now() end)",
    )
    .bind(&row.kid)
    .bind(&row.key_set)
    .bind(&row.state)
    .bind(&row.n)
    .bind(&row.e)
    .bind(&row.private_key_sealed)
    .bind(&row.nonce)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Moves a key to `state`, stamping the time of the transition.
pub async fn set_state(conn: &mut PgConnection, kid: &str, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update signing_keys set state = $2,
             activated_at = case when $2 = 'active' then now() else activated_at end,
             retired_at = case when $2 = 'retired' then now() else retired_at end,
             revoked_at = case when $2 = 'revoked' then now() else revoked_at end
         where kid = $1",
    )
    .bind(kid)
    .bind(state)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn update_sealed(
    conn: &mut PgConnection,
    kid: &str,
    nonce: &[u8],
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("update signing_keys set nonce = $2, private_key_sealed = $3 where kid = $1")
        .bind(kid)
        .bind(nonce)
        .bind(sealed)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn list_with_counts(conn: &mut PgConnection) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "select k.key_set, k.kid, k.state, k.created_at, k.activated_at, k.retired_at, k.revoked_at,
                (select count(*) from access_tokens t where t.key_id = k.kid) as tokens_signed
         from signing_keys k
         order by k.key_set, k.created_at, k.kid",
    )
    .fetch_all(conn)
    .await
}
