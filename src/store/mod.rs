//! Where token records, keys and audit events live: PostgreSQL in production, or an embedded
//! SQLite file for a first run and development.
//!
//! Both implement one interface, [`Queries`], on their connection type; [`Store`], [`Conn`] and
//! [`Tx`] hold whichever the settings chose, and [`Db`] dispatches to it. The rest of the service
//! sees only these. Every query that reads or changes a token takes the caller's organization in
//! its WHERE clause: there is no read or change of a token by id alone.

mod creates;
pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::keys::lifecycle::KeyInfo;
use crate::keys::seal::Sealed;
use crate::tokens::{Caller, TokenRecord, TokenStatus};

type Result<T> = std::result::Result<T, sqlx::Error>;

/// Where the records live, as the settings name it.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(Box<PgConnectOptions>),
    /// The embedded store: one SQLite file, for one process.
    Sqlite(PathBuf),
}

/// How long a request waits for a free connection before it answers 503 instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Operator commands wait longer than requests: nobody is queueing behind them.
const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Who opens the store: the service (many short requests) or an operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Service,
    Command,
}

/// Why the store could not be opened; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot reach the database at DATABASE_URL: {0}")]
    Postgres(#[source] sqlx::Error),
    #[error("{0}")]
    Sqlite(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A pool on one of the two stores.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqlitePool),
}

/// The PostgreSQL pool and the writers that group token creations ([`creates`]).
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    creates: creates::Creates,
}

impl PgStore {
    fn new(pool: PgPool) -> Self {
        let creates = creates::Creates::start(pool.clone());
        Self { pool, creates }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Store {
    /// Opens the store, checks that it answers and applies pending migrations.
    pub async fn open(
        database: &Database,
        purpose: Purpose,
    ) -> std::result::Result<Self, OpenError> {
        let store = match database {
            Database::Postgres(options) => {
                let pool = pg_pool(PgConnectOptions::clone(options), purpose);
                let store = Store::Postgres(PgStore::new(pool));
                store.ping().await.map_err(OpenError::Postgres)?;
                store
            }
            Database::Sqlite(path) => Store::Sqlite(sqlite::open(path, purpose).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        match self {
            Store::Postgres(pg) => postgres::MIGRATOR.run(&pg.pool).await,
            Store::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await,
        }
    }

    /// A connection for one or more statements outside a transaction.
    pub async fn acquire(&self) -> Result<Conn> {
        Ok(match self {
            Store::Postgres(pg) => Conn::Postgres(pg.pool.acquire().await?),
            Store::Sqlite(pool) => Conn::Sqlite(pool.acquire().await?),
        })
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes never fails to upgrade its lock.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Store::Postgres(pg) => Tx::Postgres(pg.pool.begin().await?),
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Writes a new token's record with its `created` audit event, atomically, and returns the
    /// record as stored. On PostgreSQL concurrent creations share one statement and one commit
    /// ([`creates`]); each is answered only after its row is committed.
    pub async fn insert_created(&self, record: TokenRecord, actor: &Caller) -> Result<TokenRecord> {
        match self {
            Store::Postgres(pg) => pg.creates.insert(record, actor.clone()).await,
            Store::Sqlite(pool) => pool.acquire().await?.insert_created(&record, actor).await,
        }
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        match self {
            Store::Postgres(pg) => sqlx::query("select 1").execute(&pg.pool).await.map(|_| ()),
            Store::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.map(|_| ()),
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Postgres(pg) => pg.pool.close().await,
            Store::Sqlite(pool) => pool.close().await,
        }
    }
}

/// The service's pool on PostgreSQL. Connections open lazily: a database that is away later is
/// reported by the query that needs it (503), not by a hang.
fn pg_pool(options: PgConnectOptions, purpose: Purpose) -> PgPool {
    let (connections, acquire) = match purpose {
        Purpose::Service => (16, ACQUIRE_TIMEOUT),
        Purpose::Command => (2, COMMAND_ACQUIRE_TIMEOUT),
    };
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(0)
        .acquire_timeout(acquire)
        .connect_lazy_with(options)
}

/// A pooled connection of either store.
pub enum Conn {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

impl Conn {
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Conn::Postgres(c) => Db::Postgres(c),
            Conn::Sqlite(c) => Db::Sqlite(c),
        }
    }
}

/// A transaction of either store; dropped without `commit`, it rolls back.
pub enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Tx::Postgres(t) => Db::Postgres(t),
            Tx::Sqlite(t) => Db::Sqlite(t),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(t) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
}

/// A connection (or transaction) of either store, to run [`Queries`] on.
pub enum Db<'c> {
    Postgres(&'c mut PgConnection),
    Sqlite(&'c mut SqliteConnection),
}

/// The columns of a stored key, in `KeyRow` order.
macro_rules! key_columns {
    () => {
        "kid, key_set, state, n, e, private_key_sealed, nonce"
    };
}
use key_columns;

/// The `Queries` methods whose SQL reads the same on both stores, written once: each store's
/// `impl Queries` expands them for its own connection type.
macro_rules! portable_queries {
    () => {
        async fn is_unrevoked(&mut self, org_id: &str, id: &str) -> Result<bool> {
            sqlx::query_scalar(
                "select exists (select 1 from access_tokens
                                where org_id = $1 and id = $2 and revoked_at is null)",
            )
            .bind(org_id)
            .bind(id)
            .fetch_one(self)
            .await
        }
        async fn published_keys(&mut self, key_set: &str) -> Result<Vec<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys where key_set = $1 and state <> 'revoked' order by created_at, kid"
            ))
            .bind(key_set)
            .fetch_all(self)
            .await
        }
        async fn all_keys(&mut self) -> Result<Vec<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys order by created_at, kid"
            ))
            .fetch_all(self)
            .await
        }
        async fn get_key(&mut self, kid: &str) -> Result<Option<KeyRow>> {
            sqlx::query_as(concat!(
                "select ",
                key_columns!(),
                " from signing_keys where kid = $1"
            ))
            .bind(kid)
            .fetch_optional(self)
            .await
        }
        async fn key_fingerprint(&mut self) -> Result<Vec<(String, String)>> {
            sqlx::query_as("select kid, state from signing_keys order by created_at, kid")
                .fetch_all(self)
                .await
        }
        async fn update_sealed(&mut self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<()> {
            sqlx::query("update signing_keys set nonce = $2, private_key_sealed = $3 where kid = $1")
                .bind(kid)
                .bind(nonce)
                .bind(sealed)
                .execute(self)
                .await
                .map(|_| ())
        }
    };
}
use portable_queries;

/// A stored signing key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub key_set: String,
    pub state: String,
    pub n: String,
    pub e: String,
    pub private_key_sealed: Vec<u8>,
    pub nonce: Vec<u8>,
}

impl KeyRow {
    pub fn sealed(&self) -> Sealed {
        Sealed {
            nonce: self.nonce.clone(),
            ciphertext: self.private_key_sealed.clone(),
        }
    }
}

/// Audit events recorded on their own; `created` events are written together with the token by
/// [`Queries::insert_created`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Revoked,
    Rotated,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Revoked => "revoked",
            Action::Rotated => "rotated",
        }
    }
}

/// Who changed which token, when and from where.
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

/// A page of the token list: filters, and the position after which it starts.
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

impl ListQuery<'_> {
    /// The name filter as a LIKE pattern (`\` escapes), so `%` and `_` in a name match literally.
    fn name_pattern(&self) -> Option<String> {
        self.name.map(|n| {
            let escaped = n
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        })
    }

    /// The position the page starts after; the first page starts after the newest possible one.
    fn position(&self) -> (DateTime<Utc>, &str) {
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

/// What a store does. PostgreSQL and SQLite implement it on their connection types, so both run
/// the same service and pass the same tests.
#[allow(async_fn_in_trait)] // implemented in this crate only, and called on concrete types
pub trait Queries {
    /// Inserts a token record together with its `created` audit event, atomically. Returns the
    /// record as stored.
    async fn insert_created(&mut self, t: &TokenRecord, actor: &Caller) -> Result<TokenRecord>;
    /// One token of the organization, revoked or not.
    async fn get_token(
        &mut self,
        org_id: &str,
        id: &str,
        lock: Lock,
    ) -> Result<Option<TokenRecord>>;
    /// A page of the organization's tokens, newest first.
    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>>;
    /// Revokes a token of the organization. `Some((record, true))` when this call revoked it,
    /// `Some((record, false))` when it was revoked already (the first revocation time stays),
    /// `None` when the organization has no such token.
    async fn revoke_token(&mut self, org_id: &str, id: &str)
    -> Result<Option<(TokenRecord, bool)>>;
    /// Whether the organization's token exists and is not revoked (expiry is read from the JWT).
    async fn is_unrevoked(&mut self, org_id: &str, id: &str) -> Result<bool>;
    /// Ids of revoked tokens that have not expired (the ones whose revocation still matters).
    async fn revoked_unexpired(&mut self) -> Result<Vec<String>>;
    /// Sets `last_used` to `day` on the given tokens, skipping rows that already say so.
    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()>;

    /// Records that `actor` did `action` to `token_id` of `org_id`.
    async fn record_event(
        &mut self,
        org_id: &str,
        action: Action,
        token_id: &str,
        related_token_id: Option<&str>,
        actor: &Caller,
    ) -> Result<()>;
    /// A page of the organization's events, newest first, optionally of one token, before event
    /// `before`.
    async fn list_events(
        &mut self,
        org_id: &str,
        token_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>>;

    /// Serializes key creation, rotation and revocation across replicas and operators until the
    /// transaction ends.
    async fn lock_key_sets(&mut self) -> Result<()>;
    /// The keys a set publishes (every state but revoked), oldest first.
    async fn published_keys(&mut self, key_set: &str) -> Result<Vec<KeyRow>>;
    /// Every key, oldest first.
    async fn all_keys(&mut self) -> Result<Vec<KeyRow>>;
    async fn get_key(&mut self, kid: &str) -> Result<Option<KeyRow>>;
    /// (kid, state) of every key: what replicas compare to notice a rotation or revocation.
    async fn key_fingerprint(&mut self) -> Result<Vec<(String, String)>>;
    async fn insert_key(&mut self, row: &KeyRow) -> Result<()>;
    /// Moves a key to `state`, stamping the time of the transition.
    async fn set_key_state(&mut self, kid: &str, state: &str) -> Result<()>;
    async fn update_sealed(&mut self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<()>;
    /// Every key with how many stored tokens it signed (`keys list`).
    async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>>;
}

/// Calls the same method on whichever store `self` holds.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Db::Postgres(c) => c.$method($($arg),*).await,
            Db::Sqlite(c) => c.$method($($arg),*).await,
        }
    };
}

impl Queries for Db<'_> {
    async fn insert_created(&mut self, t: &TokenRecord, actor: &Caller) -> Result<TokenRecord> {
        dispatch!(self.insert_created(t, actor))
    }
    async fn get_token(
        &mut self,
        org_id: &str,
        id: &str,
        lock: Lock,
    ) -> Result<Option<TokenRecord>> {
        dispatch!(self.get_token(org_id, id, lock))
    }
    async fn list_tokens(&mut self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
        dispatch!(self.list_tokens(q))
    }
    async fn revoke_token(
        &mut self,
        org_id: &str,
        id: &str,
    ) -> Result<Option<(TokenRecord, bool)>> {
        dispatch!(self.revoke_token(org_id, id))
    }
    async fn is_unrevoked(&mut self, org_id: &str, id: &str) -> Result<bool> {
        dispatch!(self.is_unrevoked(org_id, id))
    }
    async fn revoked_unexpired(&mut self) -> Result<Vec<String>> {
        dispatch!(self.revoked_unexpired())
    }
    async fn mark_used(&mut self, ids: &[String], day: NaiveDate) -> Result<()> {
        dispatch!(self.mark_used(ids, day))
    }
    async fn record_event(
        &mut self,
        org_id: &str,
        action: Action,
        token_id: &str,
        related_token_id: Option<&str>,
        actor: &Caller,
    ) -> Result<()> {
        dispatch!(self.record_event(org_id, action, token_id, related_token_id, actor))
    }
    async fn list_events(
        &mut self,
        org_id: &str,
        token_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        dispatch!(self.list_events(org_id, token_id, before, limit))
    }
    async fn lock_key_sets(&mut self) -> Result<()> {
        dispatch!(self.lock_key_sets())
    }
    async fn published_keys(&mut self, key_set: &str) -> Result<Vec<KeyRow>> {
        dispatch!(self.published_keys(key_set))
    }
    async fn all_keys(&mut self) -> Result<Vec<KeyRow>> {
        dispatch!(self.all_keys())
    }
    async fn get_key(&mut self, kid: &str) -> Result<Option<KeyRow>> {
        dispatch!(self.get_key(kid))
    }
    async fn key_fingerprint(&mut self) -> Result<Vec<(String, String)>> {
        dispatch!(self.key_fingerprint())
    }
    async fn insert_key(&mut self, row: &KeyRow) -> Result<()> {
        dispatch!(self.insert_key(row))
    }
    async fn set_key_state(&mut self, kid: &str, state: &str) -> Result<()> {
        dispatch!(self.set_key_state(kid, state))
    }
    async fn update_sealed(&mut self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<()> {
        dispatch!(self.update_sealed(kid, nonce, sealed))
    }
    async fn keys_with_counts(&mut self) -> Result<Vec<KeyInfo>> {
        dispatch!(self.keys_with_counts())
    }
}
