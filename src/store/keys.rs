//! The `signing_keys` table.

use sqlx::{PgConnection, Postgres, Transaction};

/// Advisory lock key that serializes key creation (and later rotation) across replicas.
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
