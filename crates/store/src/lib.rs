//! The store of `access-tokens`: where token records, keys and audit events live, PostgreSQL in
//! production or an embedded SQLite file for a first run and development, with the migrations of
//! both (`migrations/`, embedded at compile time). It depends on the domain and on sqlx, never on
//! an HTTP crate (`scripts/check-crates.sh`); which of its errors mean "unavailable" it says itself
//! ([`is_unavailable`]), and the server maps them to statuses.
//!
//! Both implement one interface, [`Queries`], on their connection type; [`Store`], [`Conn`] and
//! [`Tx`] hold whichever the settings chose, and [`Db`] dispatches to it. The rest of the service
//! sees only these. Every query that reads or changes a token takes the caller's organization in
//! its WHERE clause: there is no read or change of a token by id alone.
//!
//! One row type serves both databases ([`types`] encodes times and lists for each), every time of
//! a record comes from the application's clock, and the SQL that reads the same on both is written
//! once (the `portable_queries!` macro of [`queries`]). The store also owns what is particular to a database: which of its
//! errors mean "unavailable" ([`is_unavailable`]) and the feed of revocations ([`listen`]).
//!
//! On PostgreSQL the store may use three servers (`pool::PgDatabase`): the pool's, perhaps a
//! transaction pooler in front of the primary (`pool::Pooler`); sessions direct to the primary,
//! for LISTEN and the migrations; and a read standby for [`Store::read_tokens`] and the other
//! unlocked reads ([`standby`]). Which serves what is decided here: the floors above ask for a
//! read, a connection or a transaction.

mod creates;
mod errors;
pub mod listen;
pub mod metrics;
pub mod pool;
pub mod postgres;
pub mod queries;
pub mod sqlite;
pub mod standby;
pub mod statements;
mod status_indices;
pub mod types;

use std::path::PathBuf;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::tokens::status_list::StatusRef;
use crate::tokens::{Actor, KeySetName, Owned, TokenRecord};
/// The domain, under the name the service gives it.
pub(crate) use access_tokens_domain as tokens;
pub use errors::is_unavailable;
pub use listen::{Change, RevocationFeed};
pub use metrics::StoreMetrics;
pub use pool::{OpenError, PgDatabase, Pooler, Purpose};
use pool::{pg_pool, session_pool, standby_pool};
pub use queries::{
    Action, AttemptOutcome, AuditEvent, ClaimedDelivery, DUE_NOTICE_SQL, Db, DeliveryRow,
    EventQuery, FederatedCredentialRow, Identified, KeyInfo, KeyRow, ListQuery, Lock,
    NO_POLICY_VERSION, NewDelivery, Queries, Result, StatusEntry, StatusIndexKey, StoredPolicy,
    TokenStatusEntry, WebhookEndpointRow,
};
use standby::Standby;
pub use statements::Pg;

/// Where the records live, as the settings name it.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(Box<PgDatabase>),
    /// The embedded store: one SQLite file, for one process.
    Sqlite(PathBuf),
}

/// A read that needs no lock and may be served by the read standby (`DATABASE_READ_URL`): there
/// once it has replayed every write acknowledged before the read began (read-your-writes, see
/// [`standby`]), else by the primary, as without a standby. A standby that lags, fails or is away
/// never fails the read: the primary serves it.
macro_rules! routed_read {
    ($store:ident, $db:ident => $call:expr) => {{
        if let Store::Postgres(pg) = $store
            && let Some(standby) = &pg.standby
            && let Some(mut conn) = standby.caught_up(&pg.pool).await?
        {
            let mut $db = Db::Postgres(Pg::new(&mut conn, standby.pooler, false));
            match $call.await {
                Ok(answer) => return Ok(answer),
                Err(e) => standby.failed(&e),
            }
        }
        let mut conn = $store.acquire().await?;
        let mut $db = conn.db();
        $call.await
    }};
}

/// A pool on one of the two stores.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqlitePool),
}

/// The PostgreSQL pools (the service's, the sessions', the read standby's), the writers that
/// group token creations (`store/creates.rs`), and what they count: waits for a connection and the size
/// of each group.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    pooler: Pooler,
    /// LISTEN and migrations: direct to the primary (the service's pool when no other is named).
    sessions: PgPool,
    standby: Option<std::sync::Arc<Standby>>,
    creates: creates::Creates,
    /// Status list indices reserved ahead of creations ([`Store::reserve_status`]).
    reserved: std::sync::Arc<status_indices::Reserved>,
    metrics: StoreMetrics,
}

impl PgStore {
    fn new(database: &PgDatabase, purpose: Purpose) -> Self {
        let pool = pg_pool(
            database.options.clone(),
            database.pooler,
            purpose,
            database.statement_timeout,
        );
        let sessions = match &database.session {
            Some(options) => session_pool(options.clone()),
            None => pool.clone(),
        };
        let standby = database.read.as_ref().map(|options| {
            std::sync::Arc::new(Standby::new(
                standby_pool(options.clone(), database.pooler, database.statement_timeout),
                database.pooler,
            ))
        });
        let metrics = StoreMetrics::default();
        let creates = creates::Creates::start(pool.clone(), database.pooler, metrics.clone());
        Self {
            pool,
            pooler: database.pooler,
            sessions,
            standby,
            creates,
            reserved: Default::default(),
            metrics,
        }
    }

    /// The service's pool: through the pooler, when there is one.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn pooler(&self) -> Pooler {
        self.pooler
    }
}

/// Waits for a connection of `pool`, observed in `metrics`.
async fn timed_acquire(pool: &PgPool, metrics: &StoreMetrics) -> Result<PoolConnection<Postgres>> {
    timed_wait(metrics, pool.acquire()).await
}

/// Waits for `waiting` (a connection, or a pooled transaction with its `BEGIN`), observed in
/// `metrics` as a wait for a connection.
/// The wait is counted in the `waiting` gauge while it lasts, also when the request is dropped
/// mid-wait (a client that hung up, a timeout).
async fn timed_wait<T>(metrics: &StoreMetrics, waiting: impl Future<Output = T>) -> T {
    struct Waiting<'a>(&'a prometheus_client::metrics::gauge::Gauge);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    let started = std::time::Instant::now();
    metrics.waiting.inc();
    let guard = Waiting(&metrics.waiting);
    let answer = waiting.await;
    drop(guard);
    metrics
        .acquire_seconds
        .observe(started.elapsed().as_secs_f64());
    answer
}

impl Store {
    /// Opens the store, checks that it answers and applies pending migrations.
    pub async fn open(
        database: &Database,
        purpose: Purpose,
    ) -> std::result::Result<Self, OpenError> {
        let store = match database {
            Database::Postgres(database) => {
                let store = Store::Postgres(PgStore::new(database, purpose));
                if let Err(error) = store.ping().await {
                    return Err(pool::diagnose(&database.options, error).await);
                }
                store
            }
            Database::Sqlite(path) => Store::Sqlite(sqlite::open(path, purpose).await?),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        match self {
            // sqlx holds a session advisory lock while it migrates: direct, never through a pooler.
            Store::Postgres(pg) => postgres::MIGRATOR.run(&pg.sessions).await,
            Store::Sqlite(pool) => sqlite::MIGRATOR.run(pool).await,
        }
    }

    /// A connection for one or more statements outside a transaction.
    pub async fn acquire(&self) -> Result<Conn> {
        Ok(match self {
            Store::Postgres(pg) => {
                Conn::Postgres(timed_acquire(&pg.pool, &pg.metrics).await?, pg.pooler)
            }
            Store::Sqlite(pool) => Conn::Sqlite(pool.acquire().await?),
        })
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes never fails to upgrade its lock.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            // Timed with its BEGIN: sqlx opens a pooled transaction in one call.
            Store::Postgres(pg) => {
                Tx::Postgres(timed_wait(&pg.metrics, pg.pool.begin()).await?, pg.pooler)
            }
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// The status list place of a token of `key_set` about to be created, reserved ahead on
    /// PostgreSQL (`store/status_indices.rs`): the creation can sign its JWT while the row is
    /// written. `None` on SQLite, where [`Store::create_token`] takes the next index as it writes
    /// the row.
    pub async fn reserve_status(&self, key_set: KeySetName) -> Result<Option<StatusRef>> {
        match self {
            Store::Postgres(pg) => {
                pg.reserved
                    .take(&pg.pool, pg.pooler, &pg.metrics, key_set)
                    .await
            }
            Store::Sqlite(_) => Ok(None),
        }
    }

    /// Writes a new token's record with its `created` audit event, atomically, and returns the
    /// record as stored; `None`, writing nothing, when the organization's policy is no longer at
    /// `policy_version`, the version the creation was checked against. On PostgreSQL concurrent
    /// creations share one statement and one commit (`store/creates.rs`); each is answered only
    /// after its row is committed. (Inside a transaction, [`Queries::insert_token`] writes the
    /// same, alone.)
    pub async fn create_token(
        &self,
        record: TokenRecord,
        actor: Actor,
        policy_version: i64,
    ) -> Result<Option<TokenRecord>> {
        match self {
            Store::Postgres(pg) => pg.creates.insert(record, actor, Some(policy_version)).await,
            Store::Sqlite(_) => {
                // The write lock first: the policy's version is read and the row written with no
                // other writer between.
                let mut tx = self.begin().await?;
                let written = tx
                    .db()
                    .insert_token(&record, &actor, Some(policy_version))
                    .await?;
                if written.is_some() {
                    tx.commit().await?;
                }
                Ok(written)
            }
        }
    }

    /// A page of the organization's tokens ([`Queries::list_tokens`]), perhaps from the standby.
    pub async fn read_tokens(&self, q: &ListQuery<'_>) -> Result<Vec<TokenRecord>> {
        routed_read!(self, db => db.list_tokens(q))
    }

    /// One token of the organization, unlocked ([`Queries::get_token`]), perhaps from the standby.
    pub async fn read_token(
        &self,
        org_id: &str,
        id: &str,
        owner: Option<Owned<'_>>,
    ) -> Result<Option<TokenRecord>> {
        routed_read!(self, db => db.get_token(org_id, id, owner, Lock::None))
    }

    /// A page of the organization's audit events ([`Queries::list_events`]), perhaps from the
    /// standby.
    pub async fn read_events(&self, q: &EventQuery<'_>) -> Result<Vec<AuditEvent>> {
        routed_read!(self, db => db.list_events(q))
    }

    /// The organization's stored policy ([`Queries::get_policy`]), perhaps from the standby. (A
    /// creation checks the policy on the primary, in its own request.)
    pub async fn read_policy(&self, org_id: &str) -> Result<Option<StoredPolicy>> {
        routed_read!(self, db => db.get_policy(org_id))
    }

    /// Revocations committed from now on, by any replica: LISTEN/NOTIFY on PostgreSQL, on a
    /// session of its own (direct: a transaction pooler would drop it between transactions).
    /// `None` on the embedded store, which has no notifications (its readers check the row).
    pub async fn revocation_feed(&self) -> Option<Result<RevocationFeed>> {
        match self {
            Store::Postgres(pg) => Some(RevocationFeed::connect(&pg.sessions).await),
            Store::Sqlite(_) => None,
        }
    }

    /// Whether the store has a feed of revocations (PostgreSQL); the embedded store has none.
    pub fn has_revocation_feed(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        match self {
            // The simple protocol: one exchange, safe behind any pooler.
            Store::Postgres(pg) => sqlx::raw_sql("select 1")
                .execute(&pg.pool)
                .await
                .map(|_| ()),
            Store::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.map(|_| ()),
        }
    }

    /// What the store counts (on the embedded store, handles that stay at zero: it has no pool
    /// worth waiting for and no grouped writes).
    pub fn metrics(&self) -> StoreMetrics {
        match self {
            Store::Postgres(pg) => pg.metrics.clone(),
            Store::Sqlite(_) => StoreMetrics::default(),
        }
    }

    /// `(connections open, idle, maximum)` of the pool, from memory.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        fn count(n: usize) -> u32 {
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        match self {
            Store::Postgres(pg) => (
                pg.pool.size(),
                count(pg.pool.num_idle()),
                pg.pool.options().get_max_connections(),
            ),
            Store::Sqlite(pool) => (
                pool.size(),
                count(pool.num_idle()),
                pool.options().get_max_connections(),
            ),
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Postgres(pg) => {
                pg.pool.close().await;
                pg.sessions.close().await;
                if let Some(standby) = &pg.standby {
                    standby.close().await;
                }
            }
            Store::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A pooled connection of either store.
pub enum Conn {
    Postgres(PoolConnection<Postgres>, Pooler),
    Sqlite(PoolConnection<Sqlite>),
}

impl Conn {
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Conn::Postgres(c, pooler) => Db::Postgres(Pg::new(c, *pooler, false)),
            Conn::Sqlite(c) => Db::Sqlite(c),
        }
    }
}

/// A transaction of either store; dropped without `commit`, it rolls back.
pub enum Tx {
    Postgres(Transaction<'static, Postgres>, Pooler),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    pub fn db(&mut self) -> Db<'_> {
        match self {
            Tx::Postgres(t, pooler) => Db::Postgres(Pg::new(t, *pooler, true)),
            Tx::Sqlite(t) => Db::Sqlite(t),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(t, _) => t.commit().await,
            Tx::Sqlite(t) => t.commit().await,
        }
    }
}
