//! The `audit_events` table: created / revoked / rotated, written in the transaction of the change.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::tokens::Caller;

/// Events recorded on their own; `created` events are written together with the token, in the
/// same statement, by `store::tokens::insert_created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Revoked,
    Rotated,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Revoked => "revoked",
            Action::Rotated => "rotated",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub org_id: String,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    pub token_id: String,
    pub related_token_id: Option<String>,
    pub actor_org_id: String,
    pub actor_user_id: String,
    pub actor_token_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Records that `actor` did `action` to `token_id` of `org_id`.
pub async fn record(
    conn: &mut PgConnection,
    org_id: &str,
    action: Action,
    token_id: &str,
    related_token_id: Option<&str>,
    actor: &Caller,
) -> Result<(), sqlx::Error> {
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
    .execute(conn)
    .await
    .map(|_| ())
}

/// A page of the organization's events, newest first, optionally of one token, before event `before`.
pub async fn list(
    conn: &mut PgConnection,
    org_id: &str,
    token_id: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
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
    .fetch_all(conn)
    .await
}
