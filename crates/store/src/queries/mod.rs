//! What a store does ([`Queries`]), by aggregate: tokens, status lists, audit events, policies
//! and signing keys, each module with its rows and the SQL that reads the same on both databases
//! (its `*_queries!` macro, which `portable_queries!` expands in each store's `impl Queries`).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::SqliteConnection;

pub use super::statements::Pg;
use super::types::{Named, TextList, Timestamp};
use crate::tokens::status_list::StatusRef;
use crate::tokens::{
    Actor, KeySetName, KeyState, Owned, Refused, TokenRecord, TokenStatus, TokenType, TypeFields,
};

pub type Result<T> = std::result::Result<T, sqlx::Error>;

mod events;
mod federation;
mod keys;
mod policy;
mod status_lists;
mod tokens;
mod webhooks;

pub(crate) use events::event_queries;
pub use events::{Action, AuditEvent, EventQuery, Identified};
pub use federation::FederatedCredentialRow;
pub(crate) use federation::{credential_columns, federation_queries};
pub use keys::{KeyInfo, KeyRow};
pub(crate) use keys::{key_columns, key_queries};
pub(crate) use policy::policy_queries;
pub use policy::{NO_POLICY_VERSION, StoredPolicy};
pub(crate) use status_lists::status_list_queries;
pub use status_lists::{StatusEntry, StatusIndexKey, TokenStatusEntry};
pub use tokens::ListQuery;
pub(crate) use tokens::{
    TokenRow, columns, list_page_sql, list_sql_fn, owned_page_sql, status_ref, token_queries,
};
pub use webhooks::{
    AttemptOutcome, ClaimedDelivery, DUE_NOTICE_SQL, DeliveryRow, NewDelivery, WebhookEndpointRow,
};
pub(crate) use webhooks::{
    claimable, delivery_columns, due_notice_sql, webhook_endpoint_columns, webhook_queries,
};

/// The [`Queries`] methods whose SQL reads the same on both stores, written once per aggregate:
/// each store's `impl Queries` expands them for its own connection type, with the store's own
/// words for what the two databases say differently: `for_update`, the row lock clause (SQLite
/// has none: its transactions hold the write lock from their start), and `id_in_list`, "`id` is
/// one of the list in `$1`". The list queries call the store's own `list_sql`.
macro_rules! portable_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal,
     skip_locked: $skip_locked:literal) => {
        $crate::queries::webhook_queries!(for_update: $for_update, skip_locked: $skip_locked);
        $crate::queries::token_queries!(for_update: $for_update, id_in_list: $id_in_list);
        $crate::queries::status_list_queries!(for_update: $for_update, id_in_list: $id_in_list);
        $crate::queries::event_queries!(for_update: $for_update, id_in_list: $id_in_list);
        $crate::queries::policy_queries!(for_update: $for_update, id_in_list: $id_in_list);
        $crate::queries::key_queries!(for_update: $for_update, id_in_list: $id_in_list);
        $crate::queries::federation_queries!();
    };
}
pub(crate) use portable_queries;

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
                        Db::Postgres(c) => {
                            c.on_one_server(async |c| c.$name($($arg),*).await).await
                        }
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
    /// record as stored; `None`, writing nothing, when `policy_version` is given and is no longer
    /// the version of the organization's stored policy (it changed since it was checked).
    async fn insert_token(&mut self, t: &TokenRecord, actor: &Actor, policy_version: Option<i64>)
        -> Result<Option<TokenRecord>>;
    /// One token of the organization, revoked or not; with `owner`, only one those keys own.
    async fn get_token(&mut self, org_id: &str, id: &str, owner: Option<Owned<'_>>, lock: Lock)
        -> Result<Option<TokenRecord>>;
    /// A page of the organization's tokens, newest first.
    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>>;
    /// Revokes a token of the organization. `Some((record, true))` when this call revoked it,
    /// `Some((record, false))` when it was revoked already (the first revocation time stays),
    /// `None` when the organization has no such token (owned by `owner`, when given).
    async fn revoke_token(&mut self, org_id: &str, id: &str, owner: Option<Owned<'_>>)
        -> Result<Option<(TokenRecord, bool)>>;
    /// Writes a federated credential.
    async fn insert_federated_credential(&mut self, c: &FederatedCredentialRow) -> Result<()>;
    /// A page of the organization's federated credentials, newest first, after `(created_at, id)`.
    async fn federated_credentials(&mut self, org_id: &str, after: Option<(Timestamp, &str)>,
        limit: i64) -> Result<Vec<FederatedCredentialRow>>;
    /// One federated credential of the organization.
    async fn federated_credential(&mut self, org_id: &str, id: &str)
        -> Result<Option<FederatedCredentialRow>>;
    /// Deletes one; `false` when the organization has no such credential.
    async fn delete_federated_credential(&mut self, org_id: &str, id: &str) -> Result<bool>;
    /// The credentials naming `issuer`, of every organization (an exchange matches among them).
    async fn credentials_of_issuer(&mut self, issuer: &str)
        -> Result<Vec<FederatedCredentialRow>>;
    /// Remembers a workload token's `jti` until `expires_at`; `false` when it was used before.
    async fn remember_jti(&mut self, issuer: &str, jti: &str, expires_at: Timestamp)
        -> Result<bool>;
    /// Forgets the `jti`s of workload tokens that have expired (they can no longer be replayed).
    async fn forget_expired_jtis(&mut self, now: Timestamp) -> Result<u64>;
    /// Sets the `details` of a token's `created` event (written by `insert_token` without).
    async fn set_creation_details(&mut self, token_id: &str, details: &str) -> Result<()>;
    /// Marks an unrevoked token that is not rotating yet as rotating: replaced by `replaced_by`,
    /// valid until `retires_at`. `None` when it is revoked or rotating already.
    async fn begin_retirement(&mut self, org_id: &str, id: &str, replaced_by: &str,
        retires_at: Timestamp) -> Result<Option<TokenRecord>>;
    /// Revokes at most `limit` rotating tokens whose `retires_at` has come (at `now`), each once
    /// however many replicas race; returns them.
    async fn retire_due(&mut self, now: Timestamp, limit: i64) -> Result<Vec<TokenRecord>>;
    /// Revokes every unrevoked token below `id` (its children, their children, ...), returning
    /// them oldest first.
    async fn revoke_descendants(&mut self, org_id: &str, id: &str) -> Result<Vec<TokenRecord>>;
    /// Why the organization's token is refused (revoked, deleted or never stored: `Revoked`), or
    /// `None` when it is usable (expiry is read from the JWT).
    async fn refusal(&mut self, org_id: &str, id: &str) -> Result<Option<Refused>>;
    /// Revoked and suspended tokens that have not expired (the ones whose refusal still matters),
    /// tokens whose row was deleted included (as revoked).
    async fn refused_unexpired(&mut self) -> Result<Vec<(String, Refused)>>;
    /// Suspends (`true`) or resumes a token of the organization, recording whether an admin
    /// suspended it; `None` when there is no such token. The caller checks its state first,
    /// under a row lock.
    async fn set_suspended(&mut self, org_id: &str, id: &str, suspended: bool, by_admin: bool)
        -> Result<Option<TokenRecord>>;
    /// How many tokens are below `id`, and how deep the deepest is, walked at most one level past
    /// `max_depth`: what a cascade would revoke.
    async fn descendant_extent(&mut self, org_id: &str, id: &str, max_depth: i64)
        -> Result<(i64, i64)>;
    /// How a suspended token was suspended: by an admin (whose suspension only an admin lifts),
    /// and with which ancestor (whose resumption lifts it); `None` when it is not suspended.
    async fn suspension(&mut self, org_id: &str, id: &str)
        -> Result<Option<(bool, Option<String>)>>;
    /// Suspends (`true`) the unrevoked tokens below `id` not suspended on their own, marking them
    /// as suspended with it, or resumes (`false`) the tokens so marked; returns them, oldest first.
    async fn suspend_descendants(&mut self, org_id: &str, id: &str, suspended: bool)
        -> Result<Vec<TokenRecord>>;
    /// The indices of a key set's status lists that are not 0: revoked and deleted tokens (1),
    /// suspended ones (2).
    async fn status_entries(&mut self, key_set: KeySetName) -> Result<Vec<StatusEntry>>;
    /// The current entries of the given tokens (those with an index, deleted ones included):
    /// what a change to them makes their lists say, without reading the rest of the lists.
    async fn status_of_tokens(&mut self, ids: &[String]) -> Result<Vec<TokenStatusEntry>>;
    /// Writes `candidate` (16 random bytes) as the key set's status list index key unless it has
    /// one: the first writer wins, and the key never changes.
    async fn ensure_status_index_key(&mut self, key_set: KeySetName, candidate: &[u8])
        -> Result<()>;
    /// Every key set's status list index key, and the first list it permutes.
    async fn status_index_keys(&mut self) -> Result<Vec<StatusIndexKey>>;
    /// The number of a key set's newest status list (0 before its first token).
    async fn last_status_list(&mut self, key_set: KeySetName) -> Result<i64>;
    /// Sets `last_used` to `day` on the given tokens, skipping rows that already say so.
    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()>;
    /// Records that `actor` did `action` to token `t` (its organization, id, type, and contact and
    /// surface when it has them). A `created` event of a token that is never stored (contact
    /// identification) is written alone: it is the token's only trace.
    async fn record_event(&mut self, action: Action, t: &TokenRecord,
        related_token_id: Option<&str>, actor: &Actor) -> Result<()>;
    /// Records that `actor` did `action` to each of `tokens` (a cascade: every one with the same
    /// related token), in one statement on PostgreSQL (one round trip however many), one insert
    /// each inside the caller's transaction on SQLite (in the process: no round trips to save).
    async fn record_events(&mut self, action: Action, tokens: &[TokenRecord],
        related_token_id: Option<&str>, actor: &Actor) -> Result<()>;
    /// Records that token `t` was revoked (below `related_token_id`, in a cascade) with
    /// `details` (JSON: `{"reason": ...}` and what a report said); `actor_type` names who acted
    /// when no caller did (`possession`, `secret_scanning`, `operator`).
    async fn record_revocation(&mut self, t: &TokenRecord, related_token_id: Option<&str>,
        actor: &Actor, actor_type: Option<&str>, details: &str) -> Result<()>;
    /// The organization's unrevoked tokens whose principal is user `user_id` (`created_by`).
    async fn tokens_created_by(&mut self, org_id: &str, user_id: &str)
        -> Result<Vec<TokenRecord>>;
    /// A page of the organization's events, newest first ([`EventQuery`]).
    async fn list_events(&mut self, q: &EventQuery<'_>) -> Result<Vec<AuditEvent>>;
    /// The organization's policy as stored (JSON, see `tokens::policy`); `None`: it never set one.
    async fn get_policy(&mut self, org_id: &str) -> Result<Option<StoredPolicy>>;
    /// The organization's stored policy, its row locked until the transaction ends; an
    /// organization without one gets a row of `default_policy` first.
    async fn lock_policy(&mut self, org_id: &str, default_policy: &str, updated_by: &str)
        -> Result<String>;
    /// Replaces the organization's policy (its row exists: see `lock_policy`); answers its new
    /// version.
    async fn update_policy(&mut self, org_id: &str, policy: &str, updated_by: &str)
        -> Result<i64>;
    /// Records that `actor` changed the organization itself rather than a token: `action` is
    /// `policy_changed` (`details`: the JSON `{"old": ..., "new": ...}`), or `webhook_created`,
    /// `webhook_deleted`, `webhook_secret_rotated` (`details`: the endpoint's `{"id", "url",
    /// "events"}`).
    async fn record_org_event(&mut self, org_id: &str, action: &str, details: &str,
        actor: &Actor) -> Result<()>;
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
    async fn insert_webhook_endpoint(&mut self, e: &WebhookEndpointRow) -> Result<()>;
    /// The organization's webhook endpoints, oldest first.
    async fn webhook_endpoints(&mut self, org_id: &str) -> Result<Vec<WebhookEndpointRow>>;
    /// One endpoint: of the organization, or (`None`, for a delivery) of any.
    async fn webhook_endpoint(&mut self, org_id: Option<&str>, id: &str)
        -> Result<Option<WebhookEndpointRow>>;
    /// Deletes an endpoint of the organization with its deliveries; false: there was none.
    async fn delete_webhook_endpoint(&mut self, org_id: &str, id: &str) -> Result<bool>;
    /// One endpoint of the organization, its row locked until the transaction ends.
    async fn lock_webhook_endpoint(&mut self, org_id: &str, id: &str)
        -> Result<Option<WebhookEndpointRow>>;
    /// Deletes up to `limit` delivered or failed deliveries made before `before`; answers how many.
    async fn prune_webhook_deliveries(&mut self, before: Timestamp, limit: i64) -> Result<u64>;
    /// Replaces an endpoint's sealed secret `(nonce, ciphertext)`, keeping the one it replaces
    /// (with the time it stops signing) or none.
    async fn set_webhook_secret(&mut self, org_id: &str, id: &str, secret: (&[u8], &[u8]),
        previous: Option<(&[u8], &[u8], Timestamp)>) -> Result<bool>;
    /// The oldest audit events waiting to be dispatched to webhooks, locked (on PostgreSQL,
    /// skipping those another replica holds) until the transaction ends.
    async fn pending_webhook_events(&mut self, limit: i64) -> Result<Vec<AuditEvent>>;
    /// Whether there is webhook work, read without a lock (so that an idle replica never writes,
    /// nor takes SQLite's write lock): audit events to dispatch, deliveries due at `now`, and
    /// scheduled work last run at `ran_before` or earlier.
    async fn webhook_work(&mut self, now: Timestamp, ran_before: Timestamp)
        -> Result<(bool, bool, bool)>;
    /// Takes a dispatched event out of the outbox.
    async fn forget_webhook_event(&mut self, event_id: i64) -> Result<()>;
    /// Queues one event for every enabled endpoint subscribed to it; answers how many.
    async fn enqueue_webhook(&mut self, d: &NewDelivery<'_>) -> Result<u64>;
    /// Claims up to `limit` due deliveries to enabled endpoints, counting an attempt and leasing
    /// each until `lease_until` (a worker that dies leaves it to be claimed again then); of a
    /// token's deliveries to an endpoint, only the oldest pending one (in order per token).
    async fn claim_webhook_deliveries(&mut self, now: Timestamp, lease_until: Timestamp,
        limit: i64) -> Result<Vec<ClaimedDelivery>>;
    /// Records how attempt `attempts` of a delivery ended (unless a later claim took it over).
    async fn finish_webhook_delivery(&mut self, id: i64, attempts: i32,
        outcome: &AttemptOutcome<'_>) -> Result<()>;
    /// An endpoint answered a delivery with success: it is failing no longer.
    async fn webhook_endpoint_answered(&mut self, id: &str) -> Result<()>;
    /// An endpoint failed a delivery; disables it when it has failed everything since
    /// `disable_if_failing_since` or before. Answers its organization when this call disabled it.
    async fn webhook_endpoint_failed(&mut self, id: &str, now: Timestamp,
        disable_if_failing_since: Timestamp) -> Result<Option<String>>;
    /// A page of an endpoint's deliveries, newest first, before delivery `before`.
    async fn webhook_deliveries(&mut self, org_id: &str, endpoint_id: &str, before: i64,
        limit: i64) -> Result<Vec<DeliveryRow>>;
    /// Queues a delivery's event again (same message id) as a new delivery, due now.
    async fn redeliver_webhook(&mut self, org_id: &str, endpoint_id: &str, delivery_id: i64,
        now: Timestamp) -> Result<Option<DeliveryRow>>;
    /// How many deliveries are pending, and since when the longest-due of those due at `now`
    /// has been due (claimed ones are not due: their lease runs).
    async fn webhook_queue(&mut self, now: Timestamp) -> Result<(i64, Option<Timestamp>)>;
    /// Claims scheduled work `name` for this transaction when it last ran at `ran_before` or
    /// earlier; false: it ran since, or another replica holds it.
    async fn claim_scheduled_run(&mut self, name: &str, now: Timestamp, ran_before: Timestamp)
        -> Result<bool>;
    /// Tokens whose expiry notice is due at `now`, the earliest first.
    async fn tokens_due_notice(&mut self, now: Timestamp, limit: i64) -> Result<Vec<TokenRecord>>;
    /// When a token is next looked at for an expiry notice; `None`: never again.
    async fn set_notice_at(&mut self, id: &str, notice_at: Option<Timestamp>) -> Result<()>;
}
