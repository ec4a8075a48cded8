//! The audit events: recording one, reading a page; what an event says.

use super::*;

/// This aggregate's [`Queries`](super::Queries) methods whose SQL reads the same on both stores,
/// expanded in each store's `impl Queries` by `portable_queries!`:
/// `for_update` is the store's row lock clause, `id_in_list` its "`id` is one of the list in
/// `$1`".
macro_rules! event_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
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
            .bind(&t.owner)
            .bind(&actor.home_org_id)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn record_revocation(
            &mut self,
            t: &TokenRecord,
            related_token_id: Option<&str>,
            actor: &Actor,
            actor_type: Option<&str>,
            details: &str,
        ) -> Result<()> {
            sqlx::query(
                "insert into audit_events (org_id, occurred_at, action, token_id, token_type,
                     related_token_id, actor_org_id, actor_home_org_id, actor_user_id,
                     actor_token_id, source_ip, user_agent, token_owner, actor_type, details)
                 values ($1, $2, 'revoked', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&t.org_id)
            .bind(Timestamp::now())
            .bind(&t.id)
            .bind(Named(t.token_type))
            .bind(related_token_id)
            .bind(&actor.org_id)
            .bind(&actor.home_org_id)
            .bind(&actor.user_id)
            .bind(&actor.token_id)
            .bind(&actor.source_ip)
            .bind(&actor.user_agent)
            .bind(&t.owner)
            .bind(actor_type)
            .bind(details)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn tokens_created_by(
            &mut self,
            org_id: &str,
            user_id: &str,
        ) -> Result<Vec<TokenRecord>> {
            let rows: Vec<TokenRow> = sqlx::query_as(concat!(
                "select ", $crate::queries::columns!(), " from access_tokens
                 where org_id = $1 and created_by = $2 and revoked_at is null
                 order by created_at, id"
            ))
            .bind(org_id)
            .bind(user_id)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await?;
            Ok(rows.into_iter().map(TokenRecord::from).collect())
        }
        async fn list_events(&mut self, q: &EventQuery<'_>) -> Result<Vec<AuditEvent>> {
            sqlx::query_as(
                "select id, org_id, occurred_at, action, token_id, related_token_id,
                        actor_org_id, actor_user_id, actor_token_id, source_ip, user_agent,
                        token_type, contact_id, surface_id, actor_home_org_id, details,
                        actor_type
                 from audit_events
                 where org_id = $1 and ($2 is null or token_id = $2)
                   and ($5 is null or token_owner = $5 or token_owner = $6) and id < $3
                 order by id desc
                 limit $4",
            )
            .bind(q.org_id)
            .bind(q.token_id)
            .bind(q.before.unwrap_or(i64::MAX))
            .bind(q.limit)
            .bind(q.owner.map(|o| o.owner))
            .bind(q.owner.map(|o| o.legacy))
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
    };
}
pub(crate) use event_queries;

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
    /// Who acted when it was no caller: `possession` (someone holding the token reported it) or
    /// `secret_scanning` (a scanner found it leaked).
    pub actor_type: Option<String>,
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
/// tokens `owner` owns, before event `before`.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    pub org_id: &'a str,
    pub token_id: Option<&'a str>,
    pub owner: Option<Owned<'a>>,
    pub before: Option<i64>,
    pub limit: i64,
}
