//! The token aggregate: listing, reading, revoking (one and its descendants), suspending, the
//! revocation set read at start-up, `last_used` marks; the token row and the list's page query.

use super::*;

/// This aggregate's [`Queries`](super::Queries) methods whose SQL reads the same on both stores,
/// expanded in each store's `impl Queries` by `portable_queries!`:
/// `for_update` is the store's row lock clause, `id_in_list` its "`id` is one of the list in
/// `$1`".
macro_rules! token_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
        async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
            let (after_time, after_id) = q.position();
            let query = sqlx::query_as(list_sql(q.status, q.owner.is_some()))
                .bind(q.org_id)
                .bind(q.types.map(TextList::of))
                .bind(q.name_pattern())
                .bind(Timestamp(after_time))
                .bind(after_id)
                .bind(q.limit)
                .bind(Timestamp::now())
                .bind(q.created_by);
            let query = match q.owner {
                Some(owned) => query.bind(owned.owner).bind(owned.legacy),
                None => query,
            };
            let rows: Vec<TokenRow> =
                query.persistent(self.named()).fetch_all(self.conn()).await?;
            Ok(rows.into_iter().map(TokenRecord::from).collect())
        }
        async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()> {
            sqlx::query(concat!(
                "update access_tokens set last_used = $2
                 where ", $id_in_list, " and (last_used is null or last_used < $2)"
            ))
            .bind(TextList::of(ids))
            .bind(day)
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn get_token(
            &mut self,
            org_id: &str,
            id: &str,
            owner: Option<Owned<'_>>,
            lock: Lock,
        ) -> Result<Option<TokenRecord>> {
            let sql = match lock {
                Lock::None => concat!(
                    "select ", columns!(), " from access_tokens
                     where org_id = $1 and id = $2 and ($3 is null or owner = $3 or owner = $4)"
                ),
                Lock::ForUpdate => concat!(
                    "select ", columns!(), " from access_tokens
                     where org_id = $1 and id = $2 and ($3 is null or owner = $3 or owner = $4)",
                    $for_update
                ),
            };
            let row: Option<TokenRow> = sqlx::query_as(sql)
                .bind(org_id)
                .bind(id)
                .bind(owner.map(|o| o.owner))
                .bind(owner.map(|o| o.legacy))
                .persistent(self.named()).fetch_optional(self.conn())
                .await?;
            Ok(row.map(TokenRecord::from))
        }
        async fn revoke_token(
            &mut self,
            org_id: &str,
            id: &str,
            owner: Option<Owned<'_>>,
        ) -> Result<Option<(TokenRecord, bool)>> {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens set revoked_at = $3
                 where org_id = $1 and id = $2 and revoked_at is null
                   and ($4 is null or owner = $4 or owner = $5)
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(Timestamp::now())
            .bind(owner.map(|o| o.owner))
            .bind(owner.map(|o| o.legacy))
            .persistent(self.named()).fetch_optional(self.conn())
            .await?;
            match row {
                Some(row) => Ok(Some((row.into(), true))),
                None => Ok(self
                    .get_token(org_id, id, owner, Lock::None)
                    .await?
                    .map(|r| (r, false))),
            }
        }
        async fn begin_retirement(
            &mut self,
            org_id: &str,
            id: &str,
            replaced_by: &str,
            retires_at: Timestamp,
        ) -> Result<Option<TokenRecord>> {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens set retires_at = $3, replaced_by = $4
                 where org_id = $1 and id = $2 and revoked_at is null and retires_at is null
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(retires_at)
            .bind(replaced_by)
            .persistent(self.named()).fetch_optional(self.conn())
            .await?;
            Ok(row.map(TokenRecord::from))
        }
        async fn retire_due(&mut self, now: Timestamp, limit: i64) -> Result<Vec<TokenRecord>> {
            // `revoked_at is null` in the update itself: a replica that waited on another's row
            // lock finds the row revoked when it gets it, and leaves it.
            let rows: Vec<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens set revoked_at = $1
                 where id in (select id from access_tokens
                              where retires_at <= $1 and revoked_at is null
                              order by retires_at limit $2)
                   and retires_at <= $1 and revoked_at is null
                 returning ",
                columns!()
            ))
            .bind(now)
            .bind(limit)
            .persistent(self.named()).fetch_all(self.conn())
            .await?;
            let mut records: Vec<TokenRecord> = rows.into_iter().map(TokenRecord::from).collect();
            records.sort_by(|a, b| (&a.org_id, &a.id).cmp(&(&b.org_id, &b.id)));
            Ok(records)
        }
        async fn revoke_descendants(
            &mut self,
            org_id: &str,
            id: &str,
        ) -> Result<Vec<TokenRecord>> {
            // Every token below `id`, through revoked ones too: a grandchild of a revoked child
            // is still a descendant.
            let rows: Vec<TokenRow> = sqlx::query_as(concat!(
                "with recursive tree (id) as (
                     select id from access_tokens where org_id = $1 and parent_id = $2
                     union
                     select t.id from access_tokens t join tree on t.parent_id = tree.id
                     where t.org_id = $1
                 )
                 update access_tokens set revoked_at = $3
                 where org_id = $1 and revoked_at is null and id in (select id from tree)
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(Timestamp::now())
            .persistent(self.named()).fetch_all(self.conn())
            .await?;
            let mut records: Vec<TokenRecord> = rows.into_iter().map(TokenRecord::from).collect();
            records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(records)
        }
        async fn descendant_extent(
            &mut self,
            org_id: &str,
            id: &str,
            max_depth: i64,
        ) -> Result<(i64, i64)> {
            // Walked one level past `max_depth` at most, so that a deeper tree is seen as such
            // without being walked whole.
            sqlx::query_as(
                "with recursive tree (id, depth) as (
                     select id, cast(1 as bigint) from access_tokens
                     where org_id = $1 and parent_id = $2
                     union all
                     select t.id, tree.depth + 1 from access_tokens t join tree on t.parent_id = tree.id
                     where t.org_id = $1 and tree.depth <= $3
                 )
                 select count(*), coalesce(max(depth), 0) from tree",
            )
            .bind(org_id)
            .bind(id)
            .bind(max_depth)
            .persistent(self.named()).fetch_one(self.conn())
            .await
        }
        async fn refusal(&mut self, org_id: &str, id: &str) -> Result<Option<Refused>> {
            let row: Option<(bool, bool)> = sqlx::query_as(
                "select revoked_at is not null, suspended_at is not null from access_tokens
                 where org_id = $1 and id = $2",
            )
            .bind(org_id)
            .bind(id)
            .persistent(self.named()).fetch_optional(self.conn())
            .await?;
            Ok(match row {
                // No row: never stored here, or deleted, which counts as revoked.
                None | Some((true, _)) => Some(Refused::Revoked),
                Some((false, true)) => Some(Refused::Suspended),
                Some((false, false)) => None,
            })
        }
        async fn refused_unexpired(&mut self) -> Result<Vec<(String, Refused)>> {
            // A deleted row counts as revoked: its tombstone is read (see the deleted_tokens
            // migrations).
            let rows: Vec<(String, bool)> = sqlx::query_as(
                "select id, revoked_at is null from access_tokens
                 where (revoked_at is not null or suspended_at is not null)
                   and (expires_at is null or expires_at > $1)
                 union all
                 select id, false from deleted_tokens where expires_at is null or expires_at > $1",
            )
            .bind(Timestamp::now())
            .persistent(self.named()).fetch_all(self.conn())
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, suspended)| {
                    let why = if suspended { Refused::Suspended } else { Refused::Revoked };
                    (id, why)
                })
                .collect())
        }
        async fn set_suspended(
            &mut self,
            org_id: &str,
            id: &str,
            suspended: bool,
            by_admin: bool,
        ) -> Result<Option<TokenRecord>> {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens
                 set suspended_at = case when $3 then $4 end,
                     suspended_by_admin = ($3 and $5)
                 where org_id = $1 and id = $2
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(suspended)
            .bind(Timestamp::now())
            .bind(by_admin)
            .persistent(self.named()).fetch_optional(self.conn())
            .await?;
            Ok(row.map(TokenRecord::from))
        }
        async fn suspension(
            &mut self,
            org_id: &str,
            id: &str,
        ) -> Result<Option<(bool, Option<String>)>> {
            sqlx::query_as(
                "select suspended_by_admin, suspended_with from access_tokens
                 where org_id = $1 and id = $2 and suspended_at is not null",
            )
            .bind(org_id)
            .bind(id)
            .persistent(self.named()).fetch_optional(self.conn())
            .await
        }
        async fn suspend_descendants(
            &mut self,
            org_id: &str,
            id: &str,
            suspended: bool,
        ) -> Result<Vec<TokenRecord>> {
            // Suspending: every unrevoked token below `id` not already suspended on its own,
            // marked as suspended with `id`. Resuming: exactly those.
            let sql = if suspended {
                concat!(
                    "with recursive tree (id) as (
                         select id from access_tokens where org_id = $1 and parent_id = $2
                         union
                         select t.id from access_tokens t join tree on t.parent_id = tree.id
                         where t.org_id = $1
                     )
                     update access_tokens set suspended_at = $3, suspended_with = $2
                     where org_id = $1 and revoked_at is null and suspended_at is null
                       and id in (select id from tree)
                     returning ",
                    columns!()
                )
            } else {
                concat!(
                    "update access_tokens set suspended_at = null, suspended_with = null
                     where org_id = $1 and suspended_with = $2 and $3 is not null
                     returning ",
                    columns!()
                )
            };
            let rows: Vec<TokenRow> = sqlx::query_as(sql)
                .bind(org_id)
                .bind(id)
                .bind(Timestamp::now())
                .persistent(self.named()).fetch_all(self.conn())
                .await?;
            let mut records: Vec<TokenRecord> = rows.into_iter().map(TokenRecord::from).collect();
            records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(records)
        }
    };
}
pub(crate) use token_queries;

/// The columns of a token record, in [`TokenRow`] order (a macro so that queries stay
/// `&'static str`).
macro_rules! columns {
    () => {
        "id, org_id, created_by, owner, token_type, name, assignments, read_only, anonymize, \
         journey_id, portal_id, portal_user_id, key_id, created_at, expires_at, revoked_at, \
         last_used, rotated_from, parent_id, suspended_at, status_list, status_idx, notice_at, \
         retires_at, replaced_by"
    };
}
pub(crate) use columns;

/// The SQL of one page of the token list, with the store's own ways to filter by type and name.
/// Parameters: org_id, types, name pattern, after (created_at, id), limit, now, creator; `$owner`
/// is `""` for the organization's tokens or a condition on `owner` ending in `and`.
macro_rules! list_page_sql {
    ($types:literal, $name:literal, $status:literal) => {
        list_page_sql!($types, $name, $status, "")
    };
    ($types:literal, $name:literal, $status:literal, $owner:literal) => {
        concat!(
            "select ",
            columns!(),
            " from access_tokens
             where org_id = $1 and ",
            $owner,
            $status,
            "
               and ",
            $types,
            "
               and ",
            $name,
            "
               and ($8 is null or created_by = $8)
               and (created_at, id) < ($4, $5)
             order by created_at desc, id desc
             limit $6"
        )
    };
}
pub(crate) use list_page_sql;

/// One page of the tokens a caller who is not an admin manages: the same filters, then those its
/// owner key owns (`$9`) and those the same user's legacy key owns (`$10`), each one range scan of
/// `(org_id, owner, created_at desc, id desc)`, merged in order (an `or` of the two keys would read
/// all of both and sort them).
macro_rules! owned_page_sql {
    ($types:literal, $name:literal, $status:literal) => {
        concat!(
            "select * from (
                 select * from (",
            list_page_sql!($types, $name, $status, "owner = $9 and "),
            ") by_principal
                 union all
                 select * from (",
            list_page_sql!($types, $name, $status, "owner = $10 and "),
            ") by_legacy_key
             ) page
             order by created_at desc, id desc
             limit $6"
        )
    };
}
pub(crate) use owned_page_sql;

/// A store's `list_sql`: one SQL text per status and per scope (the organization's tokens, or
/// those a caller owns), so that the planner sees the status condition as a constant and the
/// organization's list walks the partial index `access_tokens_org_unrevoked`. The position is a
/// row comparison on the index's own columns: a page is one index range scan, however deep. The
/// time `expired` compares with is the application's (`$7`), as on every record.
macro_rules! list_sql_fn {
    ($(#[$meta:meta])* $vis:vis fn $fn:ident, types: $types:literal, name: $name:literal) => {
        $(#[$meta])*
        $vis fn $fn(status: TokenStatus, owned: bool) -> &'static str {
            macro_rules! page {
                ($status:literal) => {
                    if owned {
                        owned_page_sql!($types, $name, $status)
                    } else {
                        list_page_sql!($types, $name, $status)
                    }
                };
            }
            match status {
                TokenStatus::Active => page!("revoked_at is null"),
                TokenStatus::Revoked => page!("revoked_at is not null"),
                TokenStatus::Suspended => page!("revoked_at is null and suspended_at is not null"),
                TokenStatus::Expired => page!("revoked_at is null and expires_at <= $7"),
                TokenStatus::All => page!("true"),
            }
        }
    };
}
pub(crate) use list_sql_fn;

/// A token record as both stores hold it; the column types encode themselves per database.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    org_id: String,
    created_by: String,
    owner: String,
    #[sqlx(try_from = "Named<TokenType>")]
    token_type: TokenType,
    name: String,
    assignments: TextList,
    read_only: bool,
    anonymize: bool,
    journey_id: Option<String>,
    portal_id: Option<String>,
    portal_user_id: Option<String>,
    key_id: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    last_used: Option<NaiveDate>,
    rotated_from: Option<String>,
    parent_id: Option<String>,
    suspended_at: Option<Timestamp>,
    status_list: Option<i32>,
    status_idx: Option<i32>,
    notice_at: Option<Timestamp>,
    retires_at: Option<Timestamp>,
    replaced_by: Option<String>,
}

/// A row's place in its key set's status lists, from its two columns (both set, or none).
pub(crate) fn status_ref(list: Option<i32>, idx: Option<i32>) -> Option<StatusRef> {
    let list = u32::try_from(list?).ok()?;
    let idx = u32::try_from(idx?).ok()?;
    Some(StatusRef { list, idx })
}

impl From<TokenRow> for TokenRecord {
    fn from(row: TokenRow) -> Self {
        TokenRecord {
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
            owner: row.owner,
            token_type: row.token_type,
            name: row.name,
            assignments: row.assignments.0,
            read_only: row.read_only,
            anonymize: row.anonymize,
            fields: TypeFields {
                journey_id: row.journey_id,
                portal_id: row.portal_id,
                portal_user_id: row.portal_user_id,
                ..TypeFields::default()
            },
            key_id: row.key_id,
            created_at: row.created_at.0,
            expires_at: row.expires_at.map(|t| t.0),
            revoked_at: row.revoked_at.map(|t| t.0),
            suspended_at: row.suspended_at.map(|t| t.0),
            last_used: row.last_used,
            rotated_from: row.rotated_from,
            parent_id: row.parent_id,
            status: status_ref(row.status_list, row.status_idx),
            notice_at: row.notice_at.map(|t| t.0),
            retires_at: row.retires_at.map(|t| t.0),
            replaced_by: row.replaced_by,
        }
    }
}

/// A page of the token list: filters, and the position after which it starts.
pub struct ListQuery<'a> {
    pub org_id: &'a str,
    pub types: Option<&'a [&'a str]>,
    pub status: TokenStatus,
    /// Case-insensitive substring of the name.
    pub name: Option<&'a str>,
    /// Only the tokens of this user id (`created_by`, the contract's filter).
    pub created_by: Option<&'a str>,
    /// Only the tokens these keys own: a caller who is not an admin.
    pub owner: Option<Owned<'a>>,
    /// Start after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, &'a str)>,
    pub limit: i64,
}

impl ListQuery<'_> {
    /// The name filter as a LIKE pattern (`\` escapes), so `%` and `_` in a name match literally.
    pub(crate) fn name_pattern(&self) -> Option<String> {
        self.name.map(|n| {
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }

    /// The position the page starts after; the first page starts after the newest possible one.
    pub(crate) fn position(&self) -> (DateTime<Utc>, &str) {
        self.after
            .unwrap_or((DateTime::<Utc>::MAX_UTC, "\u{10FFFF}"))
    }
}
