//! The status lists: the non-zero entries of a key set's lists and its last list number.

/// This aggregate's [`Queries`](super::Queries) methods whose SQL reads the same on both stores,
/// expanded in each store's `impl Queries` by `portable_queries!`:
/// `for_update` is the store's row lock clause, `id_in_list` its "`id` is one of the list in
/// `$1`".
macro_rules! status_list_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
        async fn status_entries(&mut self, key_set: KeySetName) -> Result<Vec<StatusEntry>> {
            // Every index that is not 0 (valid). A deleted row counts as revoked, as everywhere:
            // its tombstone keeps its place. Expiry is not a status: an expired revoked token
            // stays 1. A suspended token that is not revoked is 2.
            sqlx::query_as(
                "select cast(status_list as bigint) as list, cast(status_idx as bigint) as idx,
                     cast(1 as bigint) as status
                 from access_tokens
                 where status_key_set = $1 and revoked_at is not null
                 union all
                 select cast(status_list as bigint), cast(status_idx as bigint), cast(2 as bigint)
                 from access_tokens
                 where status_key_set = $1 and revoked_at is null and suspended_at is not null
                 union all
                 select cast(status_list as bigint), cast(status_idx as bigint), cast(1 as bigint)
                 from deleted_tokens
                 where status_key_set = $1 and status_list is not null",
            )
            .bind(key_set.as_str())
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn status_of_tokens(&mut self, ids: &[String]) -> Result<Vec<TokenStatusEntry>> {
            // Where each token is and what its list says now: 1 revoked (or deleted: its
            // tombstone), 2 suspended, 0 valid. Tokens without an index are not listed.
            sqlx::query_as(concat!(
                "select status_key_set as key_set, cast(status_list as bigint) as list,
                     cast(status_idx as bigint) as idx,
                     cast(case when revoked_at is not null then 1
                               when suspended_at is not null then 2 else 0 end as bigint) as status
                 from access_tokens
                 where ", $id_in_list, " and status_key_set is not null
                 union all
                 select status_key_set, cast(status_list as bigint), cast(status_idx as bigint),
                     cast(1 as bigint)
                 from deleted_tokens
                 where ", $id_in_list, " and status_key_set is not null"
            ))
            .bind(TextList::of(ids))
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn ensure_status_index_key(
            &mut self,
            key_set: KeySetName,
            candidate: &[u8],
        ) -> Result<()> {
            sqlx::query(
                "update status_list_index_keys set index_key = $2
                 where key_set = $1 and index_key is null",
            )
            .bind(key_set.as_str())
            .bind(candidate)
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn status_index_keys(&mut self) -> Result<Vec<StatusIndexKey>> {
            sqlx::query_as(
                "select key_set, index_key, cast(permuted_from as bigint) as permuted_from
                 from status_list_index_keys",
            )
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn last_status_list(&mut self, key_set: KeySetName) -> Result<i64> {
            // The highest list any token of the set names: list 0, and every list up to this one,
            // exists (lists fill one after the other).
            let last: Option<i64> = sqlx::query_scalar(
                "select cast(max(list) as bigint) from (
                     select max(status_list) as list from access_tokens where status_key_set = $1
                     union all
                     select max(status_list) from deleted_tokens where status_key_set = $1
                 ) as lists",
            )
            .bind(key_set.as_str())
            .persistent(self.named()).fetch_one(self.conn())
            .await?;
            Ok(last.unwrap_or(0))
        }
    };
}
pub(crate) use status_list_queries;

/// Where one token is in its key set's lists, and what its entry says now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenStatusEntry {
    pub key_set: String,
    pub list: i64,
    pub idx: i64,
    pub status: i64,
}

/// A key set's status list index key and the first list it permutes.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusIndexKey {
    pub key_set: String,
    /// `None` until the first start after the migration wrote it.
    pub index_key: Option<Vec<u8>>,
    pub permuted_from: i64,
}

/// An index of a status list whose value is not 0 (valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusEntry {
    pub list: i64,
    pub idx: i64,
    pub status: i64,
}
