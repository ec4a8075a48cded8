//! The `access_tokens` table. Every query is scoped to an organization: there is no read or
//! change of a token by id alone.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use crate::tokens::{TokenRecord, TokenType, TypeFields};

/// The columns of a token record, in `Row` order (a macro so that queries stay `&'static str`).
macro_rules! columns {
    () => {
        "id, org_id, created_by, token_type, name, assignments, read_only, anonymize, \
         journey_id, portal_id, portal_user_id, key_id, created_at, expires_at, revoked_at, last_used"
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
        })
    }
}

/// Inserts a new token record and returns it as stored (times at the database's precision).
pub async fn insert(conn: &mut PgConnection, t: &TokenRecord) -> Result<TokenRecord, sqlx::Error> {
    let row: Row = sqlx::query_as(concat!(
        "insert into access_tokens (id, org_id, created_by, token_type, name, assignments, read_only,
             anonymize, journey_id, portal_id, portal_user_id, key_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         returning ",
        columns!()
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
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The organization's unrevoked tokens, newest first, optionally of the given types only.
pub async fn list(
    conn: &mut PgConnection,
    org_id: &str,
    types: Option<&[&str]>,
) -> Result<Vec<TokenRecord>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from access_tokens
         where org_id = $1 and revoked_at is null
           and ($2::text[] is null or token_type = any($2))
         order by created_at desc, id desc"
    ))
    .bind(org_id)
    .bind(types)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Revokes a token of the organization; revoking a revoked token keeps its first revocation time.
/// `None` when the organization has no such token.
pub async fn revoke(
    conn: &mut PgConnection,
    org_id: &str,
    id: &str,
) -> Result<Option<TokenRecord>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(concat!(
        "update access_tokens set revoked_at = coalesce(revoked_at, now())
         where org_id = $1 and id = $2
         returning ",
        columns!()
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(TryInto::try_into).transpose()
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
