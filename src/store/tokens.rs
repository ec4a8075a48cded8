//! The `access_tokens` table. Every query is scoped to an organization: there is no read or
//! change of a token by id alone.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::tokens::{Caller, TokenRecord, TokenStatus, TokenType, TypeFields};

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
    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let token_type: TokenType = row
            .token_type
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?;
        Ok(TokenRecord {
            id: row.id,
            org_id: row.org_id,
            created_by: row.created_by,
            token_type,
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

fn records(rows: Vec<Row>) -> Result<Vec<TokenRecord>, sqlx::Error> {
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Inserts a new token record together with its `created` audit event, in one statement (atomic,
/// one round trip). Returns the record as stored.
pub async fn insert_created(
    conn: &mut PgConnection,
    t: &TokenRecord,
    actor: &Caller,
) -> Result<TokenRecord, sqlx::Error> {
    let row: Row = sqlx::query_as(concat!(
        "with t as (
             insert into access_tokens (id, org_id, created_by, token_type, name, assignments,
                 read_only, anonymize, journey_id, portal_id, portal_user_id, key_id, created_at,
                 expires_at, rotated_from)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             returning ",
        columns!(),
        "
         ), e as (
             insert into audit_events (org_id, action, token_id, related_token_id, actor_org_id,
                 actor_user_id, actor_token_id, source_ip, user_agent)
             select org_id, 'created', id, rotated_from, $16, $17, $18, $19, $20 from t
         )
         select ",
        columns!(),
        " from t"
    ))
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.created_by)
    .bind(t.token_type.as_str())
    .bind(&t.name)
    .bind(&t.assignments)
    .bind(t.read_only)
    .bind(t.anonymize)
    .bind(&t.fields.journey_id)
    .bind(&t.fields.portal_id)
    .bind(&t.fields.portal_user_id)
    .bind(&t.key_id)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(&t.rotated_from)
    .bind(&actor.org_id)
    .bind(&actor.user_id)
    .bind(&actor.token_id)
    .bind(&actor.source_ip)
    .bind(&actor.user_agent)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// One token of the organization, revoked or not.
pub async fn get(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
) -> Result<Option<TokenRecord>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from access_tokens where org_id = $1 and id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// One token of the organization, locked until the transaction ends (rotation).
pub async fn get_for_update(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
) -> Result<Option<TokenRecord>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from access_tokens where org_id = $1 and id = $2 for update"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
}

/// A page of the list: filters, and the position after which it starts.
pub struct ListQuery<'a> {
    pub org_id: &'a str,
    pub types: Option<&'a [&'a str]>,
    pub status: TokenStatus,
    /// Case-insensitive substring of the name.
    pub name: Option<&'a str>,
    /// Start after this (created_at, id), newest first.
    pub after: Option<(DateTime<Utc>, &'a str)>,
    pub limit: i64,
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

pub async fn list(
    conn: &mut PgConnection,
    q: &ListQuery<'_>,
) -> Result<Vec<TokenRecord>, sqlx::Error> {
    let sql = list_sql(q.status);
    let pattern = q.name.map(|n| {
        let escaped = n
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    // The first page starts after the newest possible position.
    let (after_time, after_id) = q.after.unwrap_or((DateTime::<Utc>::MAX_UTC, "\u{10FFFF}"));
    let rows: Vec<Row> = sqlx::query_as(sql)
        .bind(q.org_id)
        .bind(q.types)
        .bind(pattern)
        .bind(after_time)
        .bind(after_id)
        .bind(q.limit)
        .fetch_all(conn)
        .await?;
    records(rows)
}

/// Revokes a token of the organization. `Some((record, true))` when this call revoked it,
/// `Some((record, false))` when it was revoked already (the first revocation time stays), `None`
/// when the organization has no such token.
pub async fn revoke(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
) -> Result<Option<(TokenRecord, bool)>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(concat!(
        "update access_tokens set revoked_at = now()
         where org_id = $1 and id = $2 and revoked_at is null
         returning ",
        columns!()
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some((row.try_into()?, true))),
        None => Ok(get(conn, org_id, id).await?.map(|r| (r, false))),
    }
}

/// Whether the organization's token exists and is not revoked (expiry is checked from the JWT).
pub async fn is_unrevoked(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from access_tokens where org_id = $1 and id = $2 and revoked_at is null)",
    )
    .bind(org_id)
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Ids of revoked tokens that have not expired (the ones whose revocation still matters).
pub async fn revoked_unexpired(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from access_tokens
         where revoked_at is not null and (expires_at is null or expires_at > now())",
    )
    .fetch_all(conn)
    .await
}

/// Sets `last_used` to `day` on the given tokens, skipping rows that already say so, so a day's
/// first mark is the only write.
pub async fn mark_used(
    conn: &mut PgConnection,
    ids: &[String],
    day: NaiveDate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update access_tokens set last_used = $2
         where id = any($1) and (last_used is null or last_used < $2)",
    )
    .bind(ids)
    .bind(day)
    .execute(conn)
    .await
    .map(|_| ())
}
