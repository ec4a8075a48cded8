//! The signing keys: the key-set lock's companions, reading, inserting, changing state and
//! sealing; the stored key row and its `keys list` view.

use super::*;

/// This aggregate's [`Queries`](super::Queries) methods whose SQL reads the same on both stores,
/// expanded in each store's `impl Queries` by `portable_queries!`:
/// `for_update` is the store's row lock clause, `id_in_list` its "`id` is one of the list in
/// `$1`".
macro_rules! key_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
        async fn published_keys(&mut self, key_set: KeySetName) -> Result<Vec<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys where key_set = $1 and state <> 'revoked'
                  order by created_at, kid"
            ))
            .bind(key_set.as_str())
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn all_keys(&mut self) -> Result<Vec<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys order by created_at, kid"
            ))
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn get_key(&mut self, kid: &str) -> Result<Option<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys where kid = $1"
            ))
            .bind(kid)
            .persistent(self.named()).fetch_optional(self.conn())
            .await
        }
        async fn key_states(&mut self) -> Result<Vec<(String, KeyState, Option<Timestamp>)>> {
            let rows: Vec<(String, Named<KeyState>, Option<Timestamp>)> =
                sqlx::query_as("select key_set, state, activated_at from signing_keys")
                    .persistent(self.named()).fetch_all(self.conn())
                    .await?;
            Ok(rows.into_iter().map(|(set, state, at)| (set, state.0, at)).collect())
        }
        async fn key_fingerprint(&mut self) -> Result<Vec<(String, KeyState)>> {
            let rows: Vec<(String, Named<KeyState>)> =
                sqlx::query_as("select kid, state from signing_keys order by created_at, kid")
                    .persistent(self.named()).fetch_all(self.conn())
                    .await?;
            Ok(rows.into_iter().map(|(kid, state)| (kid, state.0)).collect())
        }
        async fn insert_key(&mut self, row: &KeyRow) -> Result<()> {
            sqlx::query(
                "insert into signing_keys (kid, key_set, state, n, e, private_key_sealed, nonce,
                     created_at, activated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, case when $3 = 'active' then $8 end)",
            )
            .bind(&row.kid)
            .bind(&row.key_set)
            .bind(Named(row.state))
            .bind(&row.n)
            .bind(&row.e)
            .bind(&row.private_key_sealed)
            .bind(&row.nonce)
            .bind(Timestamp::now())
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn set_key_state(&mut self, kid: &str, state: KeyState) -> Result<()> {
            sqlx::query(
                "update signing_keys set state = $2,
                     activated_at = case when $2 = 'active' then $3 else activated_at end,
                     retired_at = case when $2 = 'retired' then $3 else retired_at end,
                     revoked_at = case when $2 = 'revoked' then $3 else revoked_at end
                 where kid = $1",
            )
            .bind(kid)
            .bind(Named(state))
            .bind(Timestamp::now())
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn update_sealed(&mut self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<()> {
            sqlx::query("update signing_keys set nonce = $2, private_key_sealed = $3 where kid = $1")
                .bind(kid)
                .bind(nonce)
                .bind(sealed)
                .persistent(self.named()).execute(self.conn())
                .await
                .map(|_| ())
        }
        async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>> {
            sqlx::query_as(
                "select k.key_set, k.kid, k.state, k.created_at, k.activated_at, k.retired_at,
                        k.revoked_at,
                        (select count(*) from access_tokens t where t.key_id = k.kid)
                            as tokens_signed
                 from signing_keys k
                 order by k.key_set, k.created_at, k.kid",
            )
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
    };
}
pub(crate) use key_queries;

/// The columns of a stored key, in `KeyRow` order.
macro_rules! key_columns {
    () => {
        "kid, key_set, state, n, e, private_key_sealed, nonce"
    };
}
pub(crate) use key_columns;

/// A stored signing key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub key_set: String,
    #[sqlx(try_from = "Named<KeyState>")]
    pub state: KeyState,
    pub n: String,
    pub e: String,
    pub private_key_sealed: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// A key as `keys list` shows it: its dates and how many stored tokens it signed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyInfo {
    pub key_set: String,
    pub kid: String,
    #[sqlx(try_from = "Named<KeyState>")]
    pub state: KeyState,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub retired_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub tokens_signed: i64,
}
