//! What a store does ([`Queries`]), the rows and records it reads and writes, and the SQL that
//! reads the same on both databases, written once (the `portable_queries!` macro) and expanded in each
//! store's `impl Queries`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteConnection;

pub use super::statements::Pg;
use super::types::{Named, TextList, Timestamp};
use crate::tokens::status_list::StatusRef;
use crate::tokens::{
    Actor, KeySetName, KeyState, Refused, TokenRecord, TokenStatus, TokenType, TypeFields,
};

pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// The columns of a token record, in [`TokenRow`] order (a macro so that queries stay
/// `&'static str`).
macro_rules! columns {
    () => {
        "id, org_id, created_by, token_type, name, assignments, read_only, anonymize, \
         journey_id, portal_id, portal_user_id, key_id, created_at, expires_at, revoked_at, \
         last_used, rotated_from, parent_id, suspended_at, status_list, status_idx"
    };
}
pub(super) use columns;

/// The columns of a stored key, in `KeyRow` order.
macro_rules! key_columns {
    () => {
        "kid, key_set, state, n, e, private_key_sealed, nonce"
    };
}
pub(super) use key_columns;

/// The SQL of one page of the token list, with the store's own ways to filter by type and name.
/// Parameters: org_id, types, name pattern, after (created_at, id), limit, now, creator.
macro_rules! list_page_sql {
    ($types:literal, $name:literal, $($status:literal),+) => {
        concat!(
            "select ", columns!(), " from access_tokens
             where org_id = $1 and ", $($status),+, "
               and ", $types, "
               and ", $name, "
               and ($8 is null or created_by = $8)
               and (created_at, id) < ($4, $5)
             order by created_at desc, id desc
             limit $6"
        )
    };
}
pub(super) use list_page_sql;

/// A store's `list_sql`: one SQL text per status, so that the planner sees the status condition
/// as a constant and the default list walks the partial index `access_tokens_org_unrevoked`. The
/// position is a row comparison on the index's own columns: a page is one index range scan,
/// however deep. The time `expired` compares with is the application's (`$7`), as on every record.
macro_rules! list_sql_fn {
    ($(#[$meta:meta])* $vis:vis fn $fn:ident, types: $types:literal, name: $name:literal) => {
        $(#[$meta])*
        $vis fn $fn(status: TokenStatus) -> &'static str {
            match status {
                TokenStatus::Active => list_page_sql!($types, $name, "revoked_at is null"),
                TokenStatus::Revoked => list_page_sql!($types, $name, "revoked_at is not null"),
                TokenStatus::Suspended => {
                    list_page_sql!($types, $name, "revoked_at is null and suspended_at is not null")
                }
                TokenStatus::Expired => {
                    list_page_sql!($types, $name, "revoked_at is null and expires_at <= $7")
                }
                TokenStatus::All => list_page_sql!($types, $name, "true"),
            }
        }
    };
}
pub(super) use list_sql_fn;

/// The [`Queries`] methods whose SQL reads the same on both stores, written once: each store's
/// `impl Queries` expands them for its own connection type, with the store's own words for what
/// the two databases say differently: `for_update`, the row lock clause (SQLite has none: its
/// transactions hold the write lock from their start), and `id_in_list`, "`id` is one of the list
/// in `$1`". The list queries call the store's own `list_sql`.
macro_rules! portable_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
        async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
            let (after_time, after_id) = q.position();
            let rows: Vec<TokenRow> = sqlx::query_as(list_sql(q.status))
                .bind(q.org_id)
                .bind(q.types.map(TextList::of))
                .bind(q.name_pattern())
                .bind(Timestamp(after_time))
                .bind(after_id)
                .bind(q.limit)
                .bind(Timestamp::now())
                .bind(q.created_by)
                .persistent(self.named()).fetch_all(self.conn())
                .await?;
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
            owner: Option<&str>,
            lock: Lock,
        ) -> Result<Option<TokenRecord>> {
            let sql = match lock {
                Lock::None => concat!(
                    "select ", columns!(), " from access_tokens
                     where org_id = $1 and id = $2 and ($3 is null or created_by = $3)"
                ),
                Lock::ForUpdate => concat!(
                    "select ", columns!(), " from access_tokens
                     where org_id = $1 and id = $2 and ($3 is null or created_by = $3)",
                    $for_update
                ),
            };
            let row: Option<TokenRow> = sqlx::query_as(sql)
                .bind(org_id)
                .bind(id)
                .bind(owner)
                .persistent(self.named()).fetch_optional(self.conn())
                .await?;
            Ok(row.map(TokenRecord::from))
        }
        async fn revoke_token(
            &mut self,
            org_id: &str,
            id: &str,
            owner: Option<&str>,
        ) -> Result<Option<(TokenRecord, bool)>> {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens set revoked_at = $3
                 where org_id = $1 and id = $2 and revoked_at is null
                   and ($4 is null or created_by = $4)
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(Timestamp::now())
            .bind(owner)
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
        ) -> Result<Option<TokenRecord>> {
            let row: Option<TokenRow> = sqlx::query_as(concat!(
                "update access_tokens
                 set suspended_at = case when $3 then $4 end
                 where org_id = $1 and id = $2
                 returning ",
                columns!()
            ))
            .bind(org_id)
            .bind(id)
            .bind(suspended)
            .bind(Timestamp::now())
            .persistent(self.named()).fetch_optional(self.conn())
            .await?;
            Ok(row.map(TokenRecord::from))
        }
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
        async fn record_event(
            &mut self,
            action: Action,
            t: &TokenRecord,
            related_token_id: Option<&str>,
            actor: &Actor,
        ) -> Result<()> {
            // A `created` event's time is its token's creation time.
            let at = match action {
                Action::Created => Timestamp(t.created_at),
                Action::Revoked | Action::Rotated | Action::Suspended | Action::Resumed => {
                    Timestamp::now()
                }
            };
            sqlx::query(
                "insert into audit_events (org_id, occurred_at, action, token_id,
                     related_token_id, token_type, contact_id, surface_id, actor_org_id,
                     actor_user_id, actor_token_id, source_ip, user_agent, token_owner,
                     actor_home_org_id)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&t.org_id)
            .bind(at)
            .bind(action.as_str())
            .bind(&t.id)
            .bind(related_token_id)
            .bind(Named(t.token_type))
            .bind(&t.fields.contact_id)
            .bind(&t.fields.surface_id)
            .bind(&actor.org_id)
            .bind(&actor.user_id)
            .bind(&actor.token_id)
            .bind(&actor.source_ip)
            .bind(&actor.user_agent)
            .bind(&t.created_by)
            .bind(&actor.home_org_id)
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn list_events(&mut self, q: &EventQuery<'_>) -> Result<Vec<AuditEvent>> {
            sqlx::query_as(
                "select id, org_id, occurred_at, action, token_id, related_token_id,
                        actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent,
                        token_type, contact_id, surface_id, actor_home_org_id, details
                 from audit_events
                 where org_id = $1 and ($2 is null or token_id = $2)
                   and ($5 is null or token_owner = $5) and id < $3
                 order by id desc
                 limit $4",
            )
            .bind(q.org_id)
            .bind(q.token_id)
            .bind(q.before.unwrap_or(i64::MAX))
            .bind(q.limit)
            .bind(q.owner)
            .persistent(self.named()).fetch_all(self.conn())
            .await
        }
        async fn get_policy(&mut self, org_id: &str) -> Result<Option<String>> {
            sqlx::query_scalar("select policy from org_policies where org_id = $1")
                .bind(org_id)
                .persistent(self.named()).fetch_optional(self.conn())
                .await
        }
        async fn lock_policy(
            &mut self,
            org_id: &str,
            default_policy: &str,
            updated_by: &str,
        ) -> Result<String> {
            // A missing row is written first, so that concurrent first changes of an
            // organization's policy queue on the row lock like later ones; a transaction that
            // changes nothing rolls it back.
            sqlx::query(
                "insert into org_policies (org_id, policy, updated_at, updated_by)
                 values ($1, $2, $3, $4)
                 on conflict (org_id) do nothing",
            )
            .bind(org_id)
            .bind(default_policy)
            .bind(Timestamp::now())
            .bind(updated_by)
            .persistent(self.named()).execute(self.conn())
            .await?;
            sqlx::query_scalar(concat!(
                "select policy from org_policies where org_id = $1",
                $for_update
            ))
            .bind(org_id)
            .persistent(self.named()).fetch_one(self.conn())
            .await
        }
        async fn update_policy(
            &mut self,
            org_id: &str,
            policy: &str,
            updated_by: &str,
        ) -> Result<()> {
            sqlx::query(
                "update org_policies set policy = $2, updated_at = $3, updated_by = $4
                 where org_id = $1",
            )
            .bind(org_id)
            .bind(policy)
            .bind(Timestamp::now())
            .bind(updated_by)
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn record_policy_event(
            &mut self,
            org_id: &str,
            details: &str,
            actor: &Actor,
        ) -> Result<()> {
            // About no token: no token id, type or owner (so only admins list it).
            sqlx::query(
                "insert into audit_events (org_id, occurred_at, action, details, actor_org_id,
                     actor_home_org_id, actor_user_id, actor_token_id, source_ip, user_agent)
                 values ($1, $2, 'policy_changed', $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(org_id)
            .bind(Timestamp::now())
            .bind(details)
            .bind(&actor.org_id)
            .bind(&actor.home_org_id)
            .bind(&actor.user_id)
            .bind(&actor.token_id)
            .bind(&actor.source_ip)
            .bind(&actor.user_agent)
            .persistent(self.named()).execute(self.conn())
            .await
            .map(|_| ())
        }
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
pub(super) use portable_queries;

/// A token record as both stores hold it; the column types encode themselves per database.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    id: String,
    org_id: String,
    created_by: String,
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
}

impl From<TokenRow> for TokenRecord {
    fn from(row: TokenRow) -> Self {
        TokenRecord {
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
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
            status: row
                .status_list
                .and_then(|list| u32::try_from(list).ok())
                .zip(row.status_idx.and_then(|idx| u32::try_from(idx).ok()))
                .map(|(list, idx)| StatusRef { list, idx }),
        }
    }
}

/// An index of a status list whose value is not 0 (valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusEntry {
    pub list: i64,
    pub idx: i64,
    pub status: i64,
}

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

/// What an audit event records. Stored tokens' `created` events are written together with the
/// token by [`Queries::insert_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Revoked,
    Rotated,
    Suspended,
    Resumed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Revoked => "revoked",
            Action::Rotated => "rotated",
            Action::Suspended => "suspended",
            Action::Resumed => "resumed",
        }
    }
}

/// Who changed which token (or the organization's policy), when and from where; the token's
/// type is absent on events recorded before it was written.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub org_id: String,
    #[sqlx(try_from = "Timestamp")]
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    /// Absent on events about no token (`policy_changed`).
    pub token_id: Option<String>,
    pub related_token_id: Option<String>,
    pub actor_org_id: String,
    pub actor_user_id: String,
    pub actor_token_id: Option<String>,
    /// The actor's own organization, when it acted in this one from another.
    pub actor_home_org_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub token_type: Option<Named<TokenType>>,
    #[sqlx(flatten)]
    pub identified: Identified,
    /// JSON, on events that change more than a token: `{"old": ..., "new": ...}` policies of
    /// `policy_changed`.
    pub details: Option<String>,
}

/// Whom and where a contact identification token identifies, on its `created` event.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Identified {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surface_id: Option<String>,
}

/// A page of an organization's audit events: optionally of one token, optionally only about
/// tokens `owner` created, before event `before`.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    pub org_id: &'a str,
    pub token_id: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// A page of the token list: filters, and the position after which it starts.
pub struct ListQuery<'a> {
    pub org_id: &'a str,
    pub types: Option<&'a [&'a str]>,
    pub status: TokenStatus,
    /// Case-insensitive substring of the name.
    pub name: Option<&'a str>,
    /// Only the tokens this user created.
    pub created_by: Option<&'a str>,
    /// Start after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, &'a str)>,
    pub limit: i64,
}

impl ListQuery<'_> {
    /// The name filter as a LIKE pattern (`\` escapes), so `%` and `_` in a name match literally.
    pub(super) fn name_pattern(&self) -> Option<String> {
        self.name.map(|n| {
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }

    /// The position the page starts after; the first page starts after the newest possible one.
    pub(super) fn position(&self) -> (DateTime<Utc>, &str) {
        self.after
            .unwrap_or((DateTime::<Utc>::MAX_UTC, "\u{10FFFF}"))
    }
}

/// Whether a read locks the row until the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    None,
    ForUpdate,
}

/// Declares [`Queries`] from one list of signatures and implements it for [`Db`], which calls
/// the same method on whichever store it holds: the list is the only place a method is named.
macro_rules! queries {
    ($(
        $(#[doc = $doc:literal])*
        async fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty;
    )*) => {
        /// What a store does. PostgreSQL and SQLite implement it on their connection types, so
        /// both run the same service and pass the same tests.
        #[allow(async_fn_in_trait)] // implemented in this crate only, and called on concrete types
        pub trait Queries {
            $( $(#[doc = $doc])* async fn $name(&mut self $(, $arg: $ty)*) -> $ret; )*
        }

        impl Queries for Db<'_> {
            $(
                async fn $name(&mut self $(, $arg: $ty)*) -> $ret {
                    match self {
                        // Behind a transaction pooler, a call outside a transaction is one of its
                        // own, so that its statements' Parse and Bind reach the same server.
                        Db::Postgres(c) if c.needs_transaction() => {
                            let mut tx = c.begin().await?;
                            let out = tx.pg().$name($($arg),*).await?;
                            tx.commit().await?;
                            Ok(out)
                        }
                        Db::Postgres(c) => c.$name($($arg),*).await,
                        Db::Sqlite(c) => c.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

/// A connection (or transaction) of either store, to run [`Queries`] on.
pub enum Db<'c> {
    Postgres(Pg<'c>),
    Sqlite(&'c mut SqliteConnection),
}

queries! {
    /// Inserts a token record together with its `created` audit event, atomically. Returns the
    /// record as stored.
    async fn insert_token(&mut self, t: &TokenRecord, actor: &Actor) -> Result<TokenRecord>;
    /// One token of the organization, revoked or not; with `owner`, only if that user created it.
    async fn get_token(&mut self, org_id: &str, id: &str, owner: Option<&str>, lock: Lock)
        -> Result<Option<TokenRecord>>;
    /// A page of the organization's tokens, newest first.
    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>>;
    /// Revokes a token of the organization. `Some((record, true))` when this call revoked it,
    /// `Some((record, false))` when it was revoked already (the first revocation time stays),
    /// `None` when the organization has no such token (created by `owner`, when given).
    async fn revoke_token(&mut self, org_id: &str, id: &str, owner: Option<&str>)
        -> Result<Option<(TokenRecord, bool)>>;
    /// Revokes every unrevoked token below `id` (its children, their children, ...), returning
    /// them oldest first.
    async fn revoke_descendants(&mut self, org_id: &str, id: &str) -> Result<Vec<TokenRecord>>;
    /// Why the organization's token is refused (revoked, deleted or never stored: `Revoked`), or
    /// `None` when it is usable (expiry is read from the JWT).
    async fn refusal(&mut self, org_id: &str, id: &str) -> Result<Option<Refused>>;
    /// Revoked and suspended tokens that have not expired (the ones whose refusal still matters),
    /// tokens whose row was deleted included (as revoked).
    async fn refused_unexpired(&mut self) -> Result<Vec<(String, Refused)>>;
    /// Suspends (`true`) or resumes a token of the organization; `None` when there is no such
    /// token. The caller checks its state first, under a row lock.
    async fn set_suspended(&mut self, org_id: &str, id: &str, suspended: bool)
        -> Result<Option<TokenRecord>>;
    /// The indices of a key set's status lists that are not 0: revoked and deleted tokens (1),
    /// suspended ones (2).
    async fn status_entries(&mut self, key_set: KeySetName) -> Result<Vec<StatusEntry>>;
    /// The number of a key set's newest status list (0 before its first token).
    async fn last_status_list(&mut self, key_set: KeySetName) -> Result<i64>;
    /// Sets `last_used` to `day` on the given tokens, skipping rows that already say so.
    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()>;
    /// Records that `actor` did `action` to token `t` (its organization, id, type, and contact and
    /// surface when it has them). A `created` event of a token that is never stored (contact
    /// identification) is written alone: it is the token's only trace.
    async fn record_event(&mut self, action: Action, t: &TokenRecord,
        related_token_id: Option<&str>, actor: &Actor) -> Result<()>;
    /// A page of the organization's events, newest first ([`EventQuery`]).
    async fn list_events(&mut self, q: &EventQuery<'_>) -> Result<Vec<AuditEvent>>;
    /// The organization's policy as stored (JSON, see `tokens::policy`); `None`: it never set one.
    async fn get_policy(&mut self, org_id: &str) -> Result<Option<String>>;
    /// The organization's stored policy, its row locked until the transaction ends; an
    /// organization without one gets a row of `default_policy` first.
    async fn lock_policy(&mut self, org_id: &str, default_policy: &str, updated_by: &str)
        -> Result<String>;
    /// Replaces the organization's policy (its row exists: see `lock_policy`).
    async fn update_policy(&mut self, org_id: &str, policy: &str, updated_by: &str) -> Result<()>;
    /// Records that `actor` changed the organization's policy; `details` is the JSON
    /// `{"old": ..., "new": ...}`.
    async fn record_policy_event(&mut self, org_id: &str, details: &str, actor: &Actor)
        -> Result<()>;
    /// Serializes key creation, rotation and revocation across replicas and operators until the
    /// transaction ends.
    async fn lock_key_sets(&mut self) -> Result<()>;
    /// The keys a set publishes (every state but revoked), oldest first.
    async fn published_keys(&mut self, key_set: KeySetName) -> Result<Vec<KeyRow>>;
    /// Every key, oldest first.
    async fn all_keys(&mut self) -> Result<Vec<KeyRow>>;
    async fn get_key(&mut self, kid: &str) -> Result<Option<KeyRow>>;
    /// (key set, state, activated_at) of every key: what the metrics show of them.
    async fn key_states(&mut self) -> Result<Vec<(String, KeyState, Option<Timestamp>)>>;
    /// (kid, state) of every key: what replicas compare to notice a rotation or revocation.
    async fn key_fingerprint(&mut self) -> Result<Vec<(String, KeyState)>>;
    async fn insert_key(&mut self, row: &KeyRow) -> Result<()>;
    /// Moves a key to `state`, stamping the time of the transition.
    async fn set_key_state(&mut self, kid: &str, state: KeyState) -> Result<()>;
    async fn update_sealed(&mut self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<()>;
    /// Every key with how many stored tokens it signed (`keys list`).
    async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>>;
}
