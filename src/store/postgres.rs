//! The production store: PostgreSQL. Role arrays are `text[]`, times `timestamptz`; revocations
//! are announced to every replica by a trigger (LISTEN/NOTIFY, see `revocations`); key operations
//! are serialized across replicas by an advisory lock.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::{
    Action, AuditEvent, KeyRow, ListQuery, Lock, Queries, Result, key_columns, portable_queries,
};
use crate::keys::lifecycle::KeyInfo;
use crate::tokens::{Caller, TokenRecord, TokenStatus, TokenType, TypeFields};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Advisory lock key that serializes key creation, rotation and revocation across replicas and
/// operators.
const KEY_SETS_LOCK: i64 = 0x6b65_7973_6574; // "keyset"

/// The columns of a token record, in `Row` order (a macro so that queries stay `&'static str`).
macro_rules! columns {
    () => {
        "id, org_id, created_by, token_type, name, assignments, read_only, anonymize, \
         journey_id, portal_id, portal_user_id, key_id, created_at, expires_at, revoked_at, \
         last_used, rotated_from"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    org_id: String,
    created_by: String,
    token_type: String,
    name: String,
    assignments: Vec<String>,
    read_only: bool,
    anonymize: bool,
    journey_id: Option<String>,
    portal_id: Option<String>,
    portal_user_id: Option<String>,
    key_id: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used: Option<NaiveDate>,
    rotated_from: Option<String>,
}

impl TryFrom<Row> for TokenRecord {
    type Error = sqlx::Error;
    fn try_from(row: Row) -> Result<Self> {
        Ok(TokenRecord {
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
            token_type: token_type(&row.token_type)?,
            name: row.name,
            assignments: row.assignments,
            read_only: row.read_only,
            anonymize: row.anonymize,
            fields: TypeFields {
                journey_id: row.journey_id,
                portal_id: row.portal_id,
                portal_user_id: row.portal_user_id,
                ..TypeFields::default()
            },
            key_id: row.key_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used: row.last_used,
            rotated_from: row.rotated_from,
        })
    }
}

/// A stored token type; the store's check constraint keeps it one the service knows.
pub(super) fn token_type(text: &str) -> Result<TokenType> {
    text.parse()
        .map_err(|e: String| sqlx::Error::Decode(e.into()))
}

/// One SQL text per status, so that the planner sees the status condition as a constant and the
/// default list walks the partial index `access_tokens_org_unrevoked`. The position is a row
/// comparison on the index's own columns: a page is one index range scan, however deep.
macro_rules! list_sql {
    ($status:literal) => {
        concat!(
            "select ",
            columns!(),
            " from access_tokens
             where org_id = $1 and ",
            $status,
            " and ($2::text[] is null or token_type = any($2))
               and ($3::text is null or name ilike $3 escape '\\')
               and (created_at, id) < ($4, $5)
             order by created_at desc, id desc
             limit $6"
        )
    };
}

/// The SQL of one list page for `status` (public so that a test can EXPLAIN it). Parameters:
/// org_id, types, name pattern, after (created_at, id), limit.
pub fn list_sql(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => list_sql!("revoked_at is null"),
        TokenStatus::Revoked => list_sql!("revoked_at is not null"),
        TokenStatus::Expired => list_sql!("revoked_at is null and expires_at <= now()"),
        TokenStatus::All => list_sql!("true"),
    }
}

/// Inserts the records of one or more creations with their `created` audit events in one
/// statement: all of them or none (outside a transaction, one commit for all). Returns the records
/// as stored, in no particular order. Role lists travel as JSON arrays (a `text[][]` must be
/// rectangular).
pub(super) async fn insert_created_group(
    conn: &mut PgConnection,
    group: &[(&TokenRecord, &Caller)],
) -> Result<Vec<TokenRecord>> {
    let column = |f: fn(&TokenRecord, &Caller) -> Option<String>| -> Vec<Option<String>> {
        group.iter().map(|(t, a)| f(t, a)).collect()
    };
    let assignments = group
        .iter()
        .map(|(t, _)| serde_json::to_string(&t.assignments))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(e.into()))?;
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "with v as (
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::bool[], $8::bool[], $9::text[], $10::text[], $11::text[],
                 $12::text[], $13::timestamptz[], $14::timestamptz[], $15::text[], $16::text[],
                 $17::text[], $18::text[], $19::text[], $20::text[])
                 as v(id, org_id, created_by, token_type, name, assignments, read_only, anonymize,
                     journey_id, portal_id, portal_user_id, key_id, created_at, expires_at,
                     rotated_from, actor_org_id, actor_user_id, actor_token_id, source_ip,
                     user_agent)
         ), t as (
             insert into access_tokens (id, org_id, created_by, token_type, name, assignments,
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id,
                 created_at, expires_at, rotated_from)
             select id, org_id, created_by, token_type, name,
                 array(select json_array_elements_text(assignments::json)),
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id,
                 created_at, expires_at, rotated_from
             from v
             returning ",
        columns!(),
        "
         ), e as (
             insert into audit_events (org_id, action, token_id, related_token_id,
                 actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent)
             select org_id, 'created', id, rotated_from, actor_org_id, actor_user_id,
                 actor_token_id, source_ip, user_agent
             from v
         )
         select ",
        columns!(),
        " from t"
    ))
    .bind(column(|t, _| Some(t.id.clone())))
    .bind(column(|t, _| Some(t.org_id.clone())))
    .bind(column(|t, _| Some(t.created_by.clone())))
    .bind(column(|t, _| Some(t.token_type.as_str().to_owned())))
    .bind(column(|t, _| Some(t.name.clone())))
    .bind(assignments)
    .bind(group.iter().map(|(t, _)| t.read_only).collect::<Vec<_>>())
    .bind(group.iter().map(|(t, _)| t.anonymize).collect::<Vec<_>>())
    .bind(column(|t, _| t.fields.journey_id.clone()))
    .bind(column(|t, _| t.fields.portal_id.clone()))
    .bind(column(|t, _| t.fields.portal_user_id.clone()))
    .bind(column(|t, _| Some(t.key_id.clone())))
    .bind(group.iter().map(|(t, _)| t.created_at).collect::<Vec<_>>())
    .bind(group.iter().map(|(t, _)| t.expires_at).collect::<Vec<_>>())
    .bind(column(|t, _| t.rotated_from.clone()))
    .bind(column(|_, a| Some(a.org_id.clone())))
    .bind(column(|_, a| Some(a.user_id.clone())))
    .bind(column(|_, a| a.token_id.clone()))
    .bind(column(|_, a| a.source_ip.clone()))
    .bind(column(|_, a| a.user_agent.clone()))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TokenRecord::try_from).collect()
}

impl Queries for PgConnection {
    portable_queries!();

    async fn insert_created(&mut self, t: &TokenRecord, actor: &Caller) -> Result<TokenRecord> {
        // The group statement with one row: the record and its audit event, atomic, one round trip.
        insert_created_group(self, &[(t, actor)])
            .await?
            .pop()
            .ok_or(sqlx::Error::RowNotFound)
    }

    async fn get_token(
        &mut self,
        org_id: &str,
        id: &str,
        lock: Lock,
    ) -> Result<Option<TokenRecord>> {
        let sql = match lock {
            Lock::None => concat!(
                "select ",
                columns!(),
                " from access_tokens where org_id = $1 and id = $2"
            ),
            Lock::ForUpdate => concat!(
                "select ",
                columns!(),
                " from access_tokens where org_id = $1 and id = $2 for update"
            ),
        };
        let row: Option<Row> = sqlx::query_as(sql)
            .bind(org_id)
            .bind(id)
            .fetch_optional(self)
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
        let (after_time, after_id) = q.position();
        let rows: Vec<Row> = sqlx::query_as(list_sql(q.status))
            .bind(q.org_id)
            .bind(q.types)
            .bind(q.name_pattern())
            .bind(after_time)
            .bind(after_id)
            .bind(q.limit)
            .fetch_all(self)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn revoke_token(
        &mut self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<(TokenRecord, bool)>> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "update access_tokens set revoked_at = now()
             where org_id = $1 and id = $2 and revoked_at is null
             returning ",
            columns!()
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        match row {
            Some(row) => Ok(Some((row.try_into()?, true))),
            None => Ok(self
                .get_token(org_id, id, Lock::None)
                .await?
                .map(|r| (r, false))),
        }
    }

    async fn revoked_unexpired(&mut self) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "select id from access_tokens
             where revoked_at is not null and (expires_at is null or expires_at > now())",
        )
        .fetch_all(self)
        .await
    }

    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()> {
        sqlx::query(
            "update access_tokens set last_used = $2
             where id = any($1) and (last_used is null or last_used < $2)",
        )
        .bind(ids)
        .bind(day)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn record_event(
        &mut self,
        org_id: &str,
        action: Action,
        token_id: &str,
        related_token_id: Option<&str>,
        actor: &Caller,
    ) -> Result<()> {
        sqlx::query(
            "insert into audit_events (org_id, action, token_id, related_token_id, actor_org_id,
                 actor_user_id, actor_token_id, source_ip, user_agent)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(org_id)
        .bind(action.as_str())
        .bind(token_id)
        .bind(related_token_id)
        .bind(&actor.org_id)
        .bind(&actor.user_id)
        .bind(&actor.token_id)
        .bind(&actor.source_ip)
        .bind(&actor.user_agent)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn list_events(
        &mut self,
        org_id: &str,
        token_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        sqlx::query_as(
            "select id, org_id, occurred_at, action, token_id, related_token_id, actor_org_id,
                    actor_user_id, actor_token_id, source_ip, user_agent
             from audit_events
             where org_id = $1 and ($2::text is null or token_id = $2) and id < $3
             order by id desc
             limit $4",
        )
        .bind(org_id)
        .bind(token_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self)
        .await
    }

    async fn lock_key_sets(&mut self) -> Result<()> {
        sqlx::query("select pg_advisory_xact_lock($1)")
            .bind(KEY_SETS_LOCK)
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn insert_key(&mut self, row: &KeyRow) -> Result<()> {
        sqlx::query(
            "insert into signing_keys (kid, key_set, state, n, e, private_key_sealed, nonce,
                 activated_at)
             values ($1, $2, $3, $4, $5, $6, $7, case when $3 = 'active' then now() end)",
        )
        .bind(&row.kid)
        .bind(&row.key_set)
        .bind(&row.state)
        .bind(&row.n)
        .bind(&row.e)
        .bind(&row.private_key_sealed)
        .bind(&row.nonce)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn set_key_state(&mut self, kid: &str, state: &str) -> Result<()> {
        sqlx::query(
            "update signing_keys set state = $2,
                 activated_at = case when $2 = 'active' then now() else activated_at end,
                 retired_at = case when $2 = 'retired' then now() else retired_at end,
                 revoked_at = case when $2 = 'revoked' then now() else revoked_at end
             where kid = $1",
        )
        .bind(kid)
        .bind(state)
        .execute(self)
        .await
        .map(|_| ())
    }

    async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>> {
        sqlx::query_as(
            "select k.key_set, k.kid, k.state, k.created_at, k.activated_at, k.retired_at,
                    k.revoked_at,
                    (select count(*) from access_tokens t where t.key_id = k.kid) as tokens_signed
             from signing_keys k
             order by k.key_set, k.created_at, k.kid",
        )
        .fetch_all(self)
        .await
    }
}
