//! Lifecycle webhooks: an organization's endpoints, the outbox of audit events waiting to be
//! dispatched, the deliveries and their attempts, and the tokens whose expiry is due a notice.

use super::*;

/// This aggregate's [`Queries`](super::Queries) methods, written once for both stores and
/// expanded in each store's `impl Queries` by `portable_queries!`: `skip_locked` is the store's
/// "lock the rows read, passing over rows another transaction locked" (SQLite has none: one
/// writer at a time, and one worker).
macro_rules! webhook_queries {
    (for_update: $for_update:literal, skip_locked: $skip_locked:literal) => {
        async fn insert_webhook_endpoint(&mut self, e: &$crate::queries::WebhookEndpointRow) -> Result<()> {
            sqlx::query(
                "insert into webhook_endpoints (id, org_id, url, events, description,
                     secret_nonce, secret_sealed, enabled, created_at, created_by)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&e.id)
            .bind(&e.org_id)
            .bind(&e.url)
            .bind(&e.events)
            .bind(&e.description)
            .bind(&e.secret_nonce)
            .bind(&e.secret_sealed)
            .bind(e.enabled)
            .bind(e.created_at)
            .bind(&e.created_by)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn webhook_endpoints(&mut self, org_id: &str) -> Result<Vec<$crate::queries::WebhookEndpointRow>> {
            sqlx::query_as(concat!(
                "select ", $crate::queries::webhook_endpoint_columns!(), " from webhook_endpoints
                 where org_id = $1 order by created_at, id"
            ))
            .bind(org_id)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn webhook_endpoint(
            &mut self,
            org_id: Option<&str>,
            id: &str,
        ) -> Result<Option<$crate::queries::WebhookEndpointRow>> {
            sqlx::query_as(concat!(
                "select ", $crate::queries::webhook_endpoint_columns!(), " from webhook_endpoints
                 where id = $2 and ($1 is null or org_id = $1)"
            ))
            .bind(org_id)
            .bind(id)
            .persistent(self.named())
            .fetch_optional(self.conn())
            .await
        }
        async fn delete_webhook_endpoint(&mut self, org_id: &str, id: &str) -> Result<bool> {
            let done = sqlx::query("delete from webhook_endpoints where org_id = $1 and id = $2")
                .bind(org_id)
                .bind(id)
                .persistent(self.named())
                .execute(self.conn())
                .await?;
            Ok(done.rows_affected() > 0)
        }
        async fn lock_webhook_endpoint(
            &mut self,
            org_id: &str,
            id: &str,
        ) -> Result<Option<$crate::queries::WebhookEndpointRow>> {
            sqlx::query_as(concat!(
                "select ", $crate::queries::webhook_endpoint_columns!(), " from webhook_endpoints
                 where org_id = $1 and id = $2", $for_update
            ))
            .bind(org_id)
            .bind(id)
            .persistent(self.named())
            .fetch_optional(self.conn())
            .await
        }
        async fn prune_webhook_deliveries(&mut self, before: Timestamp, limit: i64)
            -> Result<u64> {
            let done = sqlx::query(
                "delete from webhook_deliveries where id in (
                     select id from webhook_deliveries
                     where status <> 'pending' and created_at < $1
                     order by created_at limit $2)",
            )
            .bind(before)
            .bind(limit)
            .persistent(self.named())
            .execute(self.conn())
            .await?;
            Ok(done.rows_affected())
        }
        async fn set_webhook_secret(
            &mut self,
            org_id: &str,
            id: &str,
            secret: (&[u8], &[u8]),
            previous: Option<(&[u8], &[u8], Timestamp)>,
        ) -> Result<bool> {
            let done = sqlx::query(
                "update webhook_endpoints set secret_nonce = $3, secret_sealed = $4,
                     previous_nonce = $5, previous_sealed = $6, previous_until = $7
                 where org_id = $1 and id = $2",
            )
            .bind(org_id)
            .bind(id)
            .bind(secret.0)
            .bind(secret.1)
            .bind(previous.map(|p| p.0))
            .bind(previous.map(|p| p.1))
            .bind(previous.map(|p| p.2))
            .persistent(self.named())
            .execute(self.conn())
            .await?;
            Ok(done.rows_affected() > 0)
        }
        async fn pending_webhook_events(&mut self, limit: i64) -> Result<Vec<AuditEvent>> {
            sqlx::query_as(concat!(
                "select a.id, a.org_id, a.occurred_at, a.action, a.token_id, a.related_token_id,
                        a.actor_org_id, a.actor_user_id, a.actor_token_id, a.source_ip,
                        a.user_agent, a.token_type, a.contact_id, a.surface_id,
                        a.actor_home_org_id, a.details, a.actor_type
                 from webhook_pending p
                 join audit_events a on a.org_id = p.org_id and a.id = p.event_id
                 where p.event_id in (select event_id from webhook_pending
                                      order by event_id limit $1", $skip_locked, ")
                 order by a.id"
            ))
            .bind(limit)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn webhook_work(&mut self, now: Timestamp, ran_before: Timestamp)
            -> Result<(bool, bool, bool)> {
            sqlx::query_as(concat!(
                "select exists (select 1 from webhook_pending),
                        exists (select 1 from webhook_deliveries d where ",
                $crate::queries::claimable!(),
                "),
                        exists (select 1 from scheduled_runs where ran_at <= $2)"
            ))
            .bind(now)
            .bind(ran_before)
            .persistent(self.named())
            .fetch_one(self.conn())
            .await
        }
        async fn forget_webhook_event(&mut self, event_id: i64) -> Result<()> {
            sqlx::query("delete from webhook_pending where event_id = $1")
                .bind(event_id)
                .persistent(self.named())
                .execute(self.conn())
                .await
                .map(|_| ())
        }
        async fn enqueue_webhook(&mut self, d: &$crate::queries::NewDelivery<'_>) -> Result<u64> {
            // Two statements rather than `$6 is null or org_id = $6`, which a generic plan would
            // answer with a scan of every endpoint for every event.
            let query = match d.org_id {
                Some(_) => sqlx::query(
                    "insert into webhook_deliveries (endpoint_id, org_id, message_id, event_type,
                         subject, payload, created_at, next_attempt_at)
                     select e.id, e.org_id, $1, $2, $3, $4, $5, $6 from webhook_endpoints e
                     where e.org_id = $7 and e.enabled
                       and (e.events = '' or e.events like '%,' || $2 || ',%')
                       and ($8 is null or e.id <> $8)",
                ),
                None => sqlx::query(
                    "insert into webhook_deliveries (endpoint_id, org_id, message_id, event_type,
                         subject, payload, created_at, next_attempt_at)
                     select e.id, e.org_id, $1, $2, $3, $4, $5, $6 from webhook_endpoints e
                     where e.enabled and (e.events = '' or e.events like '%,' || $2 || ',%')",
                ),
            };
            let query = query
                .bind(d.message_id)
                .bind(d.event_type)
                .bind(d.subject)
                .bind(d.payload)
                .bind(d.created_at)
                .bind(Timestamp::now());
            let query = match d.org_id {
                Some(org) => query.bind(org).bind(d.except_endpoint),
                None => query,
            };
            let done = query
                .persistent(self.named())
                .execute(self.conn())
                .await?;
            Ok(done.rows_affected())
        }
        async fn claim_webhook_deliveries(
            &mut self,
            now: Timestamp,
            lease_until: Timestamp,
            limit: i64,
        ) -> Result<Vec<$crate::queries::ClaimedDelivery>> {
            sqlx::query_as(concat!(
                "update webhook_deliveries
                 set attempts = attempts + 1, next_attempt_at = $2, last_attempt_at = $1
                 where id in (select d.id from webhook_deliveries d where ",
                              $crate::queries::claimable!(),
                              " order by d.next_attempt_at limit $3", $skip_locked, ")
                 returning id, endpoint_id, message_id, payload, attempts, created_at"
            ))
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn finish_webhook_delivery(
            &mut self,
            id: i64,
            attempts: i32,
            outcome: &$crate::queries::AttemptOutcome<'_>,
        ) -> Result<()> {
            sqlx::query(
                "update webhook_deliveries
                 set status = $3, next_attempt_at = $4, last_status = $5, last_error = $6,
                     delivered_at = $7
                 where id = $1 and attempts = $2",
            )
            .bind(id)
            .bind(attempts)
            .bind(outcome.status)
            .bind(outcome.next_attempt_at)
            .bind(outcome.response_status)
            .bind(outcome.error)
            .bind(outcome.delivered_at)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn webhook_endpoint_answered(&mut self, id: &str) -> Result<()> {
            sqlx::query(
                "update webhook_endpoints set failing_since = null
                 where id = $1 and failing_since is not null",
            )
            .bind(id)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn webhook_endpoint_failed(
            &mut self,
            id: &str,
            now: Timestamp,
            disable_if_failing_since: Timestamp,
        ) -> Result<Option<String>> {
            let row: Option<(String, i32)> = sqlx::query_as(
                "update webhook_endpoints
                 set failing_since = coalesce(failing_since, $2),
                     enabled = case when coalesce(failing_since, $2) <= $3 then false
                                    else enabled end,
                     disabled_at = case when enabled and coalesce(failing_since, $2) <= $3 then $2
                                        else disabled_at end
                 where id = $1
                 returning org_id,
                     case when disabled_at = $2 and not enabled then 1 else 0 end",
            )
            .bind(id)
            .bind(now)
            .bind(disable_if_failing_since)
            .persistent(self.named())
            .fetch_optional(self.conn())
            .await?;
            let disabled = row.and_then(|(org, disabled)| (disabled == 1).then_some(org));
            if disabled.is_some() {
                // Nothing is sent to a disabled endpoint: its queue is given up, not left pending.
                sqlx::query(
                    "update webhook_deliveries
                     set status = 'failed', next_attempt_at = null,
                         last_error = 'the endpoint was disabled'
                     where endpoint_id = $1 and status = 'pending'",
                )
                .bind(id)
                .persistent(self.named())
                .execute(self.conn())
                .await?;
            }
            Ok(disabled)
        }
        async fn webhook_deliveries(
            &mut self,
            org_id: &str,
            endpoint_id: &str,
            before: i64,
            limit: i64,
        ) -> Result<Vec<$crate::queries::DeliveryRow>> {
            sqlx::query_as(concat!(
                "select ", $crate::queries::delivery_columns!(), " from webhook_deliveries
                 where org_id = $1 and endpoint_id = $2 and id < $3
                 order by id desc limit $4"
            ))
            .bind(org_id)
            .bind(endpoint_id)
            .bind(before)
            .bind(limit)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn redeliver_webhook(
            &mut self,
            org_id: &str,
            endpoint_id: &str,
            delivery_id: i64,
            now: Timestamp,
        ) -> Result<Option<$crate::queries::DeliveryRow>> {
            sqlx::query_as(concat!(
                "insert into webhook_deliveries (endpoint_id, org_id, message_id, event_type,
                     subject, payload, created_at, next_attempt_at)
                 select endpoint_id, org_id, message_id, event_type, subject, payload, $4, $4
                 from webhook_deliveries
                 where org_id = $1 and endpoint_id = $2 and id = $3
                 returning ", $crate::queries::delivery_columns!()
            ))
            .bind(org_id)
            .bind(endpoint_id)
            .bind(delivery_id)
            .bind(now)
            .persistent(self.named())
            .fetch_optional(self.conn())
            .await
        }
        async fn webhook_queue(&mut self, now: Timestamp) -> Result<(i64, Option<Timestamp>)> {
            sqlx::query_as(concat!(
                "select (select count(*) from webhook_deliveries where status = 'pending'),
                        (select min(d.next_attempt_at) from webhook_deliveries d where ",
                $crate::queries::claimable!(),
                ")"
            ))
            .bind(now)
            .persistent(self.named())
            .fetch_one(self.conn())
            .await
        }
        async fn claim_scheduled_run(
            &mut self,
            name: &str,
            now: Timestamp,
            ran_before: Timestamp,
        ) -> Result<bool> {
            let done = sqlx::query(
                "update scheduled_runs set ran_at = $2 where name = $1 and ran_at <= $3",
            )
            .bind(name)
            .bind(now)
            .bind(ran_before)
            .persistent(self.named())
            .execute(self.conn())
            .await?;
            Ok(done.rows_affected() > 0)
        }
        async fn tokens_due_notice(
            &mut self,
            now: Timestamp,
            limit: i64,
        ) -> Result<Vec<TokenRecord>> {
            // Locked, passing over rows another scan holds: a token is told of once.
            let rows: Vec<TokenRow> =
                sqlx::query_as(concat!($crate::queries::due_notice_sql!(), $skip_locked))
            .bind(now)
            .bind(limit)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await?;
            Ok(rows.into_iter().map(TokenRecord::from).collect())
        }
        async fn set_notice_at(&mut self, id: &str, notice_at: Option<Timestamp>) -> Result<()> {
            sqlx::query("update access_tokens set notice_at = $2 where id = $1")
                .bind(id)
                .bind(notice_at)
                .persistent(self.named())
                .execute(self.conn())
                .await
                .map(|_| ())
        }
    };
}
pub(crate) use webhook_queries;

/// The tokens whose expiry notice is due: a range of the partial index `access_tokens_notice`.
/// Parameters: now, limit.
macro_rules! due_notice_sql {
    () => {
        concat!(
            "select ",
            $crate::queries::columns!(),
            " from access_tokens where notice_at <= $1 order by notice_at limit $2"
        )
    };
}
pub(crate) use due_notice_sql;

/// The text of `due_notice_sql!`, for a test to EXPLAIN (the store adds its row lock to it).
pub const DUE_NOTICE_SQL: &str = due_notice_sql!();

/// Whether delivery `d` may be sent at `$1`: pending and due, to an enabled endpoint, and (in
/// order per token and endpoint) no earlier event of its token to that endpoint still pending.
/// The claim, the work probe and the queue's age gauge read the same condition, so that a
/// delivery held back is neither claimed nor counted as waiting for a worker.
macro_rules! claimable {
    () => {
        "d.status = 'pending' and d.next_attempt_at <= $1
         and d.endpoint_id in (select id from webhook_endpoints where enabled)
         and not exists (
             select 1 from webhook_deliveries o
             where o.endpoint_id = d.endpoint_id and o.subject = d.subject
               and o.status = 'pending'
               and (o.created_at < d.created_at or (o.created_at = d.created_at and o.id < d.id)))"
    };
}
pub(crate) use claimable;

macro_rules! webhook_endpoint_columns {
    () => {
        "id, org_id, url, events, description, secret_nonce, secret_sealed, previous_nonce, \
         previous_sealed, previous_until, enabled, disabled_at, failing_since, created_at, \
         created_by"
    };
}
pub(crate) use webhook_endpoint_columns;

macro_rules! delivery_columns {
    () => {
        "id, endpoint_id, message_id, event_type, subject, created_at, status, attempts, \
         next_attempt_at, last_attempt_at, last_status, last_error, delivered_at"
    };
}
pub(crate) use delivery_columns;

/// An organization's webhook endpoint, its secrets sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookEndpointRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    /// Each type between commas; empty: every type.
    pub events: String,
    pub description: String,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub previous_nonce: Option<Vec<u8>>,
    pub previous_sealed: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
    pub enabled: bool,
    pub disabled_at: Option<Timestamp>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// One event to deliver to every enabled endpoint subscribed to its type: of `org_id`, or of
/// every organization (`None`: a key rotation), except `except_endpoint`.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub org_id: Option<&'a str>,
    pub message_id: &'a str,
    pub event_type: &'a str,
    pub subject: Option<&'a str>,
    pub payload: &'a str,
    pub created_at: Timestamp,
    pub except_endpoint: Option<&'a str>,
}

/// A delivery a worker claimed: its lease runs until the `next_attempt_at` it set.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub message_id: String,
    pub payload: String,
    /// Counting this one.
    pub attempts: i32,
    pub created_at: Timestamp,
}

/// How an attempt ended: `status` `delivered`, `pending` (tried again at `next_attempt_at`) or
/// `failed`.
#[derive(Debug, Clone, Copy)]
pub struct AttemptOutcome<'a> {
    pub status: &'a str,
    pub next_attempt_at: Option<Timestamp>,
    pub response_status: Option<i32>,
    pub error: Option<&'a str>,
    pub delivered_at: Option<Timestamp>,
}

/// A delivery as its endpoint's list shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub endpoint_id: String,
    pub message_id: String,
    pub event_type: String,
    pub subject: Option<String>,
    pub created_at: Timestamp,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}
