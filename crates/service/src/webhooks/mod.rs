//! Lifecycle webhooks: an organization's admins register endpoints, and the service tells them,
//! at least once and signed as Standard Webhooks, of what happens to the organization's tokens
//! (created, revoked, rotated, suspended, resumed, about to expire, expired), its policy, the
//! signing keys and the endpoints themselves.
//!
//! The outbox is the audit trail ([`crate::Service::apply`] wakes the dispatcher; the migration
//! `webhooks` says how events reach `webhook_pending` in their change's transaction). Every
//! replica runs [`Webhooks::dispatch_and_scan`] (pending audit events to deliveries; expiry
//! notices, one replica at a time) and [`Webhooks::deliver`] (claims due deliveries with `FOR
//! UPDATE SKIP LOCKED` and a lease, posts, records, retries with backoff for a day).

pub mod address;
pub mod events;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::{Intervals, WebhookSettings};
use crate::error::{Error, Result};
use crate::keys::KeyEncryptionKey;
use crate::keys::seal::Sealed;
use crate::metrics::WebhookMetrics;
use crate::store::types::Timestamp;
use crate::store::{
    AttemptOutcome, ClaimedDelivery, DeliveryRow, NewDelivery, Queries, Store, Tx,
    WebhookEndpointRow,
};
use crate::tokens::id::random_id;
use crate::tokens::item::rfc3339;
use crate::tokens::notice::Notice;
use crate::tokens::{Authority, Caller};
use events::{EVENT_TYPES, Event, Extra};

/// Endpoints an organization may have.
pub const MAX_ENDPOINTS: usize = 20;
const MAX_URL_CHARS: usize = 2048;
const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long a delivery is retried before it is marked failed.
pub const RETRY_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long an endpoint may fail every delivery before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(3 * 24 * 3600);
/// The first retry's delay (then doubling, with jitter, up to [`MAX_RETRY_DELAY`]).
const FIRST_RETRY: Duration = Duration::from_secs(5);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// How long delivered and failed deliveries are kept (and shown) before they are deleted.
pub const DELIVERIES_KEPT_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a rotated secret goes on signing beside the new one.
pub const PREVIOUS_SECRET_SIGNS_FOR: Duration = Duration::from_secs(24 * 3600);
/// Deliveries a replica has in flight at once.
const IN_FLIGHT: i64 = 16;
/// Audit events dispatched, or tokens looked at for notices, per transaction.
const BATCH: i64 = 200;
/// The least time between two reads of the outbox by one replica.
const DISPATCH_SPACING: Duration = Duration::from_millis(100);
/// How often a worker reads the queue's gauges.
const QUEUE_OBSERVED_EVERY: Duration = Duration::from_secs(5);
/// The expiry scan's name in `scheduled_runs`.
const EXPIRY_SCAN: &str = "expiry_notices";

/// What a `POST /webhooks` body holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookBody {
    pub url: String,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// An endpoint as the API shows it (never its secret, but on creation and rotation).
#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    pub created_at: String,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
}

impl From<&WebhookEndpointRow> for Endpoint {
    fn from(row: &WebhookEndpointRow) -> Self {
        Self {
            id: row.id.clone(),
            url: row.url.clone(),
            events: subscribed(&row.events),
            description: row.description.clone(),
            enabled: row.enabled,
            created_at: rfc3339(row.created_at.0),
            created_by: row.created_by.clone(),
            disabled_at: row.disabled_at.map(|t| rfc3339(t.0)),
            failing_since: row.failing_since.map(|t| rfc3339(t.0)),
        }
    }
}

/// An endpoint with its signing secret: the only answers that show it.
#[derive(Serialize)]
pub struct WithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_` and the base64 of the key (Standard Webhooks).
    #[serde(serialize_with = "expose")]
    pub secret: SecretString,
}

fn expose<S: serde::Serializer>(
    secret: &SecretString,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// A delivery as the API shows it.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub id: i64,
    /// The `webhook-id` (and CloudEvent `id`): the same on every attempt and redelivery.
    pub message_id: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub created_at: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status on the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl From<&DeliveryRow> for Delivery {
    fn from(d: &DeliveryRow) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id.clone(),
            event_type: d.event_type.clone(),
            subject: d.subject.clone(),
            created_at: rfc3339(d.created_at.0),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: (d.status == "pending")
                .then_some(d.next_attempt_at)
                .flatten()
                .map(|t| rfc3339(t.0)),
            last_attempt_at: d.last_attempt_at.map(|t| rfc3339(t.0)),
            response_status: d.last_status,
            error: d.last_error.clone(),
            delivered_at: d.delivered_at.map(|t| rfc3339(t.0)),
        }
    }
}

/// The types an endpoint's stored `events` names (every type when empty).
fn subscribed(events: &str) -> Vec<String> {
    if events.is_empty() {
        return EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect();
    }
    events
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A replica's webhooks: the endpoints' use cases, the dispatcher, the expiry scan and the
/// delivery worker.
pub struct Webhooks {
    store: Store,
    kek: KeyEncryptionKey,
    settings: WebhookSettings,
    intervals: Intervals,
    /// The CloudEvents' `source`: the service's API.
    source: String,
    client: reqwest::Client,
    /// Woken by a change this replica committed: there may be audit events to dispatch.
    dispatch: Notify,
    /// Woken when deliveries were queued.
    deliver: Notify,
    metrics: Arc<WebhookMetrics>,
}

impl Webhooks {
    pub fn new(
        store: Store,
        kek: KeyEncryptionKey,
        settings: WebhookSettings,
        intervals: Intervals,
        public_url: &str,
        metrics: Arc<WebhookMetrics>,
    ) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "access-tokens-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .redirect(reqwest::redirect::Policy::none())
            // Never through a proxy from the environment: the proxy would resolve the receiver's
            // name itself, past the resolver that keeps deliveries off private addresses.
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .dns_resolver(address::GuardedResolver {
                allow_private: settings.allow_private,
            })
            .build()
            .unwrap_or_else(|error| {
                // Only a TLS backend that cannot start fails here: deliveries then fail and retry.
                tracing::error!(%error, "could not build the webhook client");
                reqwest::Client::new()
            });
        Self {
            store,
            kek,
            settings,
            intervals,
            source: format!("{public_url}/v1/access-tokens"),
            client,
            dispatch: Notify::new(),
            deliver: Notify::new(),
            metrics,
        }
    }

    /// A change was committed on this replica: dispatch its events now rather than at the next
    /// poll.
    pub fn changed(&self) {
        self.dispatch.notify_one();
    }

    fn require_admin(authority: &Authority, caller: &Caller, writes: bool) -> Result<()> {
        if !authority.is_admin(caller) {
            return Err(Error::forbidden(format!(
                "webhooks are managed by the organization's admins: a role in organization {} \
                 with one of the slugs {} (TOKEN_ADMIN_ROLES)",
                caller.org_id,
                authority.admin_roles.join(", ")
            )));
        }
        if writes && caller.read_only {
            return Err(Error::forbidden("a read-only token cannot change webhooks"));
        }
        Ok(())
    }

    /// Checks a webhook URL: https (http to a loopback host with `WEBHOOK_ALLOW_INSECURE`), no
    /// credentials, and a host that is and resolves only to public addresses (unless
    /// `WEBHOOK_ALLOW_PRIVATE`).
    async fn check_url(&self, text: &str) -> Result<url::Url> {
        if text.len() > MAX_URL_CHARS {
            return Err(Error::bad_request(format!(
                "url is longer than {MAX_URL_CHARS} characters"
            )));
        }
        let url = url::Url::parse(text)
            .map_err(|e| Error::bad_request(format!("url is not a URL: {e}")))?;
        let host = url
            .host()
            .ok_or_else(|| Error::bad_request("url has no host"))?;
        let loopback = match host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.settings.allow_insecure && loopback => {}
            "http" => {
                return Err(Error::bad_request(
                    "url must be https:// (plain http is accepted only to a loopback host, with \
                     WEBHOOK_ALLOW_INSECURE=true)",
                ));
            }
            other => {
                return Err(Error::bad_request(format!(
                    "url must be https://, not {other}://"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::bad_request(
                "url must not hold credentials: the signature authenticates each delivery",
            ));
        }
        if url.fragment().is_some() {
            return Err(Error::bad_request("url must not have a fragment"));
        }
        if !self.settings.allow_private {
            let port = url.port_or_known_default().unwrap_or(443);
            let addresses: Vec<std::net::IpAddr> = match host {
                url::Host::Ipv4(ip) => vec![ip.into()],
                url::Host::Ipv6(ip) => vec![ip.into()],
                url::Host::Domain(d) => tokio::net::lookup_host((d, port))
                    .await
                    .map_err(|_| Error::bad_request(format!("url's host {d} does not resolve")))?
                    .map(|a| a.ip())
                    .collect(),
            };
            if let Some(ip) = addresses.iter().find(|ip| !address::is_public(**ip)) {
                // A name's addresses are not told: they would map the deployment's network.
                let what = match host {
                    url::Host::Domain(_) => "resolves to an address".to_owned(),
                    _ => format!("is {ip}, an address"),
                };
                return Err(Error::bad_request(format!(
                    "url's host {what} inside a private, loopback, link-local or metadata \
                     range; webhooks are sent to public addresses only \
                     (WEBHOOK_ALLOW_PRIVATE=true allows them)"
                )));
            }
        }
        Ok(url)
    }

    fn seal(&self, id: &str, secret: &SecretBox<Vec<u8>>) -> Result<Sealed> {
        self.kek
            .seal(secret.expose_secret(), &format!("webhook:{id}"))
            .map_err(|e| Error::internal("sealing a webhook secret", e))
    }

    fn open(&self, id: &str, nonce: &[u8], sealed: &[u8]) -> Result<SecretBox<Vec<u8>>> {
        let sealed = Sealed {
            nonce: nonce.to_vec(),
            ciphertext: sealed.to_vec(),
        };
        self.kek
            .open(&sealed, &format!("webhook:{id}"))
            .map_err(|e| Error::internal("opening a webhook secret", e))
    }

    pub async fn create(
        &self,
        authority: &Authority,
        caller: &Caller,
        body: CreateWebhookBody,
    ) -> Result<WithSecret> {
        Self::require_admin(authority, caller, true)?;
        let url = self.check_url(body.url.trim()).await?;
        let events = match body.events {
            None => String::new(),
            Some(list) if list.is_empty() => {
                return Err(Error::bad_request(
                    "events is empty: leave it out to receive every event type",
                ));
            }
            Some(list) => {
                let mut chosen: Vec<&str> = Vec::new();
                for name in &list {
                    let known = EVENT_TYPES.iter().find(|t| **t == name).ok_or_else(|| {
                        Error::bad_request(format!(
                            "events: `{name}` is not an event type; the types are {}",
                            EVENT_TYPES.join(", ")
                        ))
                    })?;
                    if !chosen.contains(known) {
                        chosen.push(known);
                    }
                }
                format!(",{},", chosen.join(","))
            }
        };
        let description = body.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Error::bad_request(format!(
                "description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let mut tx = self.store.begin().await?;
        if tx.db().webhook_endpoints(&caller.org_id).await?.len() >= MAX_ENDPOINTS {
            return Err(Error::Conflict(format!(
                "the organization has {MAX_ENDPOINTS} webhook endpoints, the most it may have; \
                 delete one first"
            )));
        }
        let id = random_id("wh");
        let (secret, text) = signature::generate();
        let sealed = self.seal(&id, &secret)?;
        let row = WebhookEndpointRow {
            id,
            org_id: caller.org_id.clone(),
            url: url.to_string(),
            events,
            description,
            secret_nonce: sealed.nonce,
            secret_sealed: sealed.ciphertext,
            previous_nonce: None,
            previous_sealed: None,
            previous_until: None,
            enabled: true,
            disabled_at: None,
            failing_since: None,
            created_at: Timestamp::now(),
            created_by: caller.user_id.clone(),
        };
        tx.db().insert_webhook_endpoint(&row).await?;
        audit(&mut tx, caller, "webhook_created", &row).await?;
        tx.commit().await?;
        tracing::info!(endpoint = %row.id, org = %row.org_id, "webhook endpoint created");
        Ok(WithSecret {
            endpoint: Endpoint::from(&row),
            secret: text,
        })
    }

    pub async fn list(&self, authority: &Authority, caller: &Caller) -> Result<Vec<Endpoint>> {
        Self::require_admin(authority, caller, false)?;
        let mut conn = self.store.acquire().await?;
        let rows = conn.db().webhook_endpoints(&caller.org_id).await?;
        Ok(rows.iter().map(Endpoint::from).collect())
    }

    async fn row(&self, caller: &Caller, id: &str) -> Result<WebhookEndpointRow> {
        let mut conn = self.store.acquire().await?;
        conn.db()
            .webhook_endpoint(Some(&caller.org_id), id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn get(&self, authority: &Authority, caller: &Caller, id: &str) -> Result<Endpoint> {
        Self::require_admin(authority, caller, false)?;
        Ok(Endpoint::from(&self.row(caller, id).await?))
    }

    pub async fn delete(&self, authority: &Authority, caller: &Caller, id: &str) -> Result<()> {
        Self::require_admin(authority, caller, true)?;
        let row = self.row(caller, id).await?;
        let mut tx = self.store.begin().await?;
        if !tx.db().delete_webhook_endpoint(&caller.org_id, id).await? {
            return Err(not_found(id));
        }
        audit(&mut tx, caller, "webhook_deleted", &row).await?;
        tx.commit().await?;
        tracing::info!(endpoint = %id, org = %caller.org_id, "webhook endpoint deleted");
        Ok(())
    }

    /// A new secret; the one it replaces goes on signing beside it for a day, so that receivers
    /// can switch without losing a delivery.
    pub async fn rotate_secret(
        &self,
        authority: &Authority,
        caller: &Caller,
        id: &str,
    ) -> Result<WithSecret> {
        Self::require_admin(authority, caller, true)?;
        let (secret, text) = signature::generate();
        let sealed = self.seal(id, &secret)?;
        let until = Timestamp(Utc::now() + to_chrono(PREVIOUS_SECRET_SIGNS_FOR));
        let mut tx = self.store.begin().await?;
        // Locked: two rotations at once each keep the secret the other replaced.
        let mut row = tx
            .db()
            .lock_webhook_endpoint(&caller.org_id, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let previous = (
            row.secret_nonce.as_slice(),
            row.secret_sealed.as_slice(),
            until,
        );
        if !tx
            .db()
            .set_webhook_secret(
                &caller.org_id,
                id,
                (&sealed.nonce, &sealed.ciphertext),
                Some(previous),
            )
            .await?
        {
            return Err(not_found(id));
        }
        audit(&mut tx, caller, "webhook_secret_rotated", &row).await?;
        tx.commit().await?;
        row.secret_nonce = sealed.nonce;
        row.secret_sealed = sealed.ciphertext;
        Ok(WithSecret {
            endpoint: Endpoint::from(&row),
            secret: text,
        })
    }

    pub async fn deliveries(
        &self,
        authority: &Authority,
        caller: &Caller,
        id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        Self::require_admin(authority, caller, false)?;
        self.row(caller, id).await?;
        let mut conn = self.store.acquire().await?;
        let rows = conn
            .db()
            .webhook_deliveries(&caller.org_id, id, before.unwrap_or(i64::MAX), limit)
            .await?;
        Ok(rows.iter().map(Delivery::from).collect())
    }

    /// Queues a delivery's event again, as a new delivery with the same message id, due now.
    pub async fn redeliver(
        &self,
        authority: &Authority,
        caller: &Caller,
        id: &str,
        delivery: &str,
    ) -> Result<Delivery> {
        Self::require_admin(authority, caller, true)?;
        let missing = || Error::NotFound(format!("endpoint {id} has no delivery {delivery}"));
        let delivery_id: i64 = delivery.parse().map_err(|_| missing())?;
        self.row(caller, id).await?;
        let mut conn = self.store.acquire().await?;
        let row = conn
            .db()
            .redeliver_webhook(&caller.org_id, id, delivery_id, Timestamp::now())
            .await?
            .ok_or_else(missing)?;
        self.deliver.notify_one();
        Ok(Delivery::from(&row))
    }

    /// Queues `event` for the endpoints subscribed to it, in the caller's transaction.
    pub async fn enqueue(tx: &mut Tx, event: &Event, except: Option<&str>) -> Result<u64> {
        Ok(tx
            .db()
            .enqueue_webhook(&NewDelivery {
                org_id: event.org_id.as_deref(),
                message_id: &event.message_id,
                event_type: event.event_type,
                subject: event.subject.as_deref(),
                payload: &event.payload,
                // The event's own time: a token's deliveries go in this order, and a delivery is
                // retried for a day after it.
                created_at: Timestamp(event.time),
                except_endpoint: except,
            })
            .await?)
    }

    /// Every event of a key rotation, to every organization's subscribed endpoints, in the
    /// rotation's transaction.
    pub async fn key_rotated(
        tx: &mut Tx,
        public_url: &str,
        key_set: &str,
        kid: &str,
    ) -> Result<()> {
        let event = Event::new(
            &format!("{public_url}/v1/access-tokens"),
            events::KEY_ROTATED,
            None,
            None,
            Utc::now(),
            serde_json::json!({ "key_set": key_set, "kid": kid }),
        )
        .map_err(|e| Error::internal("rendering a webhook event", e))?;
        Self::enqueue(tx, &event, None).await.map(drop)
    }

    /// Turns pending audit events into deliveries, a batch per transaction, until none is left.
    /// What there is to do, read without taking a lock: (audit events pending, deliveries due,
    /// the expiry scan due). An idle replica only reads.
    async fn work(&self) -> Result<(bool, bool, bool)> {
        let now = Utc::now();
        let ran_before = Timestamp(now - to_chrono(self.intervals.expiry_scan / 2));
        let mut conn = self.store.acquire().await?;
        Ok(conn.db().webhook_work(Timestamp(now), ran_before).await?)
    }

    async fn dispatch_pending(&self) -> Result<u64> {
        let mut queued = 0;
        if !self.work().await?.0 {
            return Ok(0);
        }
        loop {
            let mut tx = self.store.begin().await?;
            let pending = tx.db().pending_webhook_events(BATCH).await?;
            for e in &pending {
                let token = match &e.token_id {
                    Some(id) => {
                        tx.db()
                            .get_token(&e.org_id, id, None, crate::store::Lock::None)
                            .await?
                    }
                    None => None,
                };
                let events = events::from_audit_event(&self.source, e, token.as_ref())
                    .map_err(|err| Error::internal("rendering a webhook event", err))?;
                for event in &events {
                    queued += Self::enqueue(&mut tx, event, None).await?;
                }
                tx.db().forget_webhook_event(e.id).await?;
            }
            tx.commit().await?;
            if i64::try_from(pending.len()).unwrap_or(0) < BATCH {
                return Ok(queued);
            }
        }
    }

    /// Tells of the expiries that are due, when no replica did within the interval.
    async fn scan_expiries(&self) -> Result<u64> {
        if !self.work().await?.2 {
            return Ok(0);
        }
        let now = Utc::now();
        let mut tx = self.store.begin().await?;
        let ran_before = Timestamp(now - to_chrono(self.intervals.expiry_scan / 2));
        if !tx
            .db()
            .claim_scheduled_run(EXPIRY_SCAN, Timestamp(now), ran_before)
            .await?
        {
            return Ok(0);
        }
        let mut queued = 0;
        // A batch a transaction, so that no lock is held long; the claim (`ran_at` moved to now)
        // keeps other replicas from starting a scan for half an interval, and the due rows are
        // locked as read, so a token is told of once whatever overlaps.
        let mut claimed = Some(tx);
        for _ in 0..50 {
            let mut tx = match claimed.take() {
                Some(tx) => tx,
                None => self.store.begin().await?,
            };
            let due = tx.db().tokens_due_notice(Timestamp(now), BATCH).await?;
            for token in &due {
                let next = match (token.expires_at, token.revoked_at) {
                    (Some(expires_at), None) => {
                        let (notice, next) = self.settings.expiry_warnings.due(expires_at, now);
                        let event = match notice {
                            Notice::Expiring(days) => Some(Event::about_token(
                                &self.source,
                                events::TOKEN_EXPIRING,
                                token,
                                now,
                                Extra {
                                    expires_in_days: Some(days),
                                    ..Extra::default()
                                },
                            )),
                            Notice::Expired => Some(Event::about_token(
                                &self.source,
                                events::TOKEN_EXPIRED,
                                token,
                                expires_at,
                                Extra::default(),
                            )),
                            Notice::Nothing => None,
                        };
                        if let Some(event) = event {
                            let event = event
                                .map_err(|e| Error::internal("rendering a webhook event", e))?;
                            queued += Self::enqueue(&mut tx, &event, None).await?;
                        }
                        next
                    }
                    // Revoked, or no expiry: nothing to tell.
                    _ => None,
                };
                tx.db()
                    .set_notice_at(&token.id, next.map(Timestamp))
                    .await?;
            }
            tx.commit().await?;
            if i64::try_from(due.len()).unwrap_or(0) < BATCH {
                break;
            }
        }
        // The replica that scans also prunes: deliveries done with are kept for a while.
        let before = Timestamp(now - to_chrono(DELIVERIES_KEPT_FOR));
        let pruned = self
            .store
            .acquire()
            .await?
            .db()
            .prune_webhook_deliveries(before, 10_000)
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "old webhook deliveries deleted");
        }
        Ok(queued)
    }

    /// Dispatches audit events as they come (woken by this replica's changes, polling for other
    /// replicas'), and scans for expiry notices, until the task is dropped.
    pub async fn dispatch_and_scan(&self) {
        let mut poll = tokio::time::interval(self.intervals.webhook_poll);
        let mut scan = tokio::time::interval(self.intervals.expiry_scan);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_dispatch = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.dispatch.notified() => {}
                _ = poll.tick() => {}
                _ = scan.tick() => {
                    match self.scan_expiries().await {
                        Ok(0) => {}
                        Ok(_) => self.deliver.notify_one(),
                        Err(error) => tracing::warn!(%error, "could not scan for expiry notices; trying again at the next interval"),
                    }
                    continue;
                }
            }
            // Changes arriving meanwhile are taken together: under a storm of creations the
            // dispatcher reads the outbox ten times a second, not once per change.
            tokio::time::sleep_until(next_dispatch).await;
            next_dispatch = tokio::time::Instant::now() + DISPATCH_SPACING;
            match self.dispatch_pending().await {
                Ok(0) => {}
                Ok(_) => self.deliver.notify_one(),
                Err(error) => {
                    tracing::warn!(%error, "could not dispatch webhook events; trying again");
                }
            }
        }
    }

    /// Claims due deliveries and sends them, until the task is dropped.
    pub async fn deliver(self: Arc<Self>) {
        let mut observed: Option<tokio::time::Instant> = None;
        loop {
            let claimed = match self.claim().await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "could not claim webhook deliveries; trying again");
                    Vec::new()
                }
            };
            if observed.is_none_or(|at| at.elapsed() >= QUEUE_OBSERVED_EVERY) {
                self.observe_queue().await;
                observed = Some(tokio::time::Instant::now());
            }
            if claimed.is_empty() {
                tokio::select! {
                    () = self.deliver.notified() => {}
                    () = tokio::time::sleep(self.intervals.webhook_poll) => {}
                }
                continue;
            }
            let mut attempts = tokio::task::JoinSet::new();
            for delivery in claimed {
                let webhooks = self.clone();
                attempts.spawn(async move { webhooks.attempt(delivery).await });
            }
            while let Some(done) = attempts.join_next().await {
                if let Ok(Err(error)) = done {
                    tracing::warn!(%error, "could not record a webhook delivery attempt");
                }
            }
        }
    }

    async fn claim(&self) -> Result<Vec<ClaimedDelivery>> {
        if !self.work().await?.1 {
            return Ok(Vec::new());
        }
        let now = Utc::now();
        // A claim is a lease: past it (the worker died mid-attempt) another replica claims the
        // delivery again.
        let lease = Timestamp(now + to_chrono(self.settings.timeout + Duration::from_secs(5)));
        let mut conn = self.store.acquire().await?;
        Ok(conn
            .db()
            .claim_webhook_deliveries(Timestamp(now), lease, IN_FLIGHT)
            .await?)
    }

    async fn observe_queue(&self) {
        let Ok(mut conn) = self.store.acquire().await else {
            return;
        };
        let now = Utc::now();
        if let Ok((depth, oldest)) = conn.db().webhook_queue(Timestamp(now)).await {
            self.metrics.queue_depth.set(depth);
            let age = oldest.map_or(0.0, |t| {
                (now - t.0).num_milliseconds().max(0) as f64 / 1000.0
            });
            self.metrics.oldest_pending_seconds.set(age);
        }
    }

    /// Sends one delivery and records how it went.
    async fn attempt(&self, delivery: ClaimedDelivery) -> Result<()> {
        let endpoint = {
            let mut conn = self.store.acquire().await?;
            conn.db()
                .webhook_endpoint(None, &delivery.endpoint_id)
                .await?
        };
        // `Ok(status)`: a 2xx; else the receiver's status, if it answered, and why it failed.
        let result = match &endpoint {
            Some(endpoint) => self.send(endpoint, &delivery).await,
            None => Err((None, "the endpoint was deleted".to_owned())),
        };
        let now = Utc::now();
        let mut conn = self.store.acquire().await?;
        let (status, error) = match &result {
            Ok(status) => (Some(*status), None),
            Err((status, error)) => (*status, Some(error.as_str())),
        };
        if result.is_ok() {
            conn.db()
                .finish_webhook_delivery(
                    delivery.id,
                    delivery.attempts,
                    &AttemptOutcome {
                        status: "delivered",
                        next_attempt_at: None,
                        response_status: status,
                        error: None,
                        delivered_at: Some(Timestamp(now)),
                    },
                )
                .await?;
            conn.db()
                .webhook_endpoint_answered(&delivery.endpoint_id)
                .await?;
            self.metrics.delivered();
            return Ok(());
        }
        let error_text = error.map(str::to_owned);
        let given_up = now - delivery.created_at.0 >= to_chrono(RETRY_FOR);
        let outcome = AttemptOutcome {
            status: if given_up { "failed" } else { "pending" },
            next_attempt_at: (!given_up)
                .then(|| Timestamp(now + to_chrono(retry_delay(delivery.attempts)))),
            response_status: status,
            error: error_text.as_deref(),
            delivered_at: None,
        };
        conn.db()
            .finish_webhook_delivery(delivery.id, delivery.attempts, &outcome)
            .await?;
        if given_up {
            self.metrics.failed();
        } else {
            self.metrics.retried();
        }
        if endpoint.is_some() {
            let disabled = conn
                .db()
                .webhook_endpoint_failed(
                    &delivery.endpoint_id,
                    Timestamp(now),
                    Timestamp(now - to_chrono(DISABLE_AFTER)),
                )
                .await?;
            drop(conn);
            if let Some(org) = disabled {
                self.disabled(&org, &delivery.endpoint_id).await?;
            }
        }
        Ok(())
    }

    /// An endpoint was disabled: its organization's other endpoints are told.
    async fn disabled(&self, org: &str, endpoint_id: &str) -> Result<()> {
        tracing::warn!(endpoint = %endpoint_id, %org, "webhook endpoint disabled: every delivery failed for 3 days");
        let event = Event::new(
            &self.source,
            events::WEBHOOK_DISABLED,
            Some(org),
            Some(endpoint_id),
            Utc::now(),
            serde_json::json!({ "id": endpoint_id, "reason": "every delivery failed for 3 days" }),
        )
        .map_err(|e| Error::internal("rendering a webhook event", e))?;
        let mut tx = self.store.begin().await?;
        Self::enqueue(&mut tx, &event, Some(endpoint_id)).await?;
        tx.commit().await?;
        self.deliver.notify_one();
        Ok(())
    }

    /// Posts a delivery, signed; `Ok(status)` on a 2xx answer, else the status the receiver
    /// answered (if it did) and why the attempt failed (a status, a timeout, a refused address).
    async fn send(
        &self,
        endpoint: &WebhookEndpointRow,
        delivery: &ClaimedDelivery,
    ) -> std::result::Result<i32, (Option<i32>, String)> {
        let failed = |why: String| (None, why);
        let url = url::Url::parse(&endpoint.url)
            .map_err(|e| failed(format!("the url is invalid: {e}")))?;
        // An address written as such is not resolved: checked here, for every attempt.
        if !self.settings.allow_private {
            let literal: Option<std::net::IpAddr> = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(ip.into()),
                Some(url::Host::Ipv6(ip)) => Some(ip.into()),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| !address::is_public(*ip)) {
                return Err(failed(format!(
                    "{ip} is not a public address (WEBHOOK_ALLOW_PRIVATE is off)"
                )));
            }
        }
        let mut secrets = vec![
            self.open(
                &endpoint.id,
                &endpoint.secret_nonce,
                &endpoint.secret_sealed,
            )
            .map_err(|e| failed(e.to_string()))?,
        ];
        if let (Some(nonce), Some(sealed), Some(until)) = (
            &endpoint.previous_nonce,
            &endpoint.previous_sealed,
            endpoint.previous_until,
        ) && until.0 > Utc::now()
        {
            secrets.push(
                self.open(&endpoint.id, nonce, sealed)
                    .map_err(|e| failed(e.to_string()))?,
            );
        }
        let timestamp = Utc::now().timestamp();
        let signed = signature::header(
            &secrets.iter().collect::<Vec<_>>(),
            &delivery.message_id,
            timestamp,
            delivery.payload.as_bytes(),
        );
        let response = self
            .client
            .post(url)
            .header(
                "content-type",
                "application/cloudevents+json; charset=utf-8",
            )
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| failed(describe(&e)))?;
        let status = i32::from(response.status().as_u16());
        if response.status().is_success() {
            Ok(status)
        } else {
            Err((Some(status), format!("answered {status}")))
        }
    }
}

/// Why a request failed, without its URL (which may hold a receiver's own secret).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Records an endpoint change in the audit trail, in the change's transaction.
async fn audit(tx: &mut Tx, caller: &Caller, action: &str, row: &WebhookEndpointRow) -> Result<()> {
    let details = serde_json::json!({
        "id": row.id,
        "url": row.url,
        "events": subscribed(&row.events),
    })
    .to_string();
    tx.db()
        .record_org_event(&caller.org_id, action, &details, &caller.actor())
        .await?;
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("the organization has no webhook endpoint {id}"))
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The delay before the retry after attempt `attempts`: 5 s doubling to an hour, each within
/// ±20 % so that endpoints that failed together do not come back together.
fn retry_delay(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let base = FIRST_RETRY
        .saturating_mul(1 << exponent)
        .min(MAX_RETRY_DELAY);
    let mut byte = [0u8; 1];
    let jitter = if aws_lc_rs::rand::fill(&mut byte).is_ok() {
        0.8 + 0.4 * f64::from(byte[0]) / 255.0
    } else {
        1.0
    };
    base.mul_f64(jitter)
}

/// When a token of `created_at`..`expires_at` is first looked at for an expiry notice.
pub fn first_notice(
    settings: &WebhookSettings,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    settings
        .expiry_warnings
        .first_notice(created_at, expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_thirty_seconds_and_back_off_to_an_hour() {
        let first = retry_delay(1);
        assert!(first >= Duration::from_secs(4) && first <= Duration::from_secs(6));
        let later = retry_delay(30);
        assert!(later <= Duration::from_secs(3600 * 6 / 5));
        assert!(later >= Duration::from_secs(3600 * 4 / 5));
        // Within a day, about thirty attempts.
        let mut total = Duration::ZERO;
        let mut n = 0;
        while total < RETRY_FOR {
            n += 1;
            total += retry_delay(n);
        }
        assert!((20..60).contains(&n), "{n} attempts in a day");
    }
}
