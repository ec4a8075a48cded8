//! Where token records, keys and audit events live: PostgreSQL in production, or an embedded
//! SQLite file for a first run and development.
//!
//! Both implement one interface, [`Queries`], on their connection type; [`Store`], [`Conn`] and
//! [`Tx`] hold whichever the settings chose, and [`Db`] dispatches to it. The rest of the service
//! sees only these. Every query that reads or changes a token takes the caller's organization in
//! its WHERE clause: there is no read or change of a token by id alone.
//!
//! One row type serves both databases ([`types`] encodes times and lists for each), every time of
//! a record comes from the application's clock, and the SQL that reads the same on both is written
//! once ([`portable_queries`]). The store also owns what is particular to a database: which of its
//! errors mean "unavailable" ([`is_unavailable`]) and the feed of revocations ([`listen`]).

mod creates;
pub mod listen;
pub mod pool;
pub mod postgres;
pub mod queries;
pub mod sqlite;
pub mod types;

use std::path::PathBuf;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgSeverity};
use sqlx::sqlite::SqlitePool;
use sqlx::{Postgres, Sqlite, Transaction};

use crate::error::Error;
use crate::metrics::StoreMetrics;
use crate::tokens::{Actor, TokenRecord};
pub use listen::{Change, RevocationFeed};
use pool::pg_pool;
pub use pool::{OpenError, Purpose};
pub use queries::{
    Action, AuditEvent, Db, Identified, KeyInfo, KeyRow, ListQuery, Lock, Queries, Result,
    StatusEntry,
};

/// Where the records live, as the settings name it.
#[derive(Debug, Clone)]
pub enum Database {
    Postgres(Box<PgConnectOptions>),
    /// The embedded store: one SQLite file, for one process.
    Sqlite(PathBuf),
}

/// A pool on one of the two stores.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqlitePool),
}

/// The PostgreSQL pool, the writers that group token creations ([`creates`]), and what they
/// count: waits for a connection and the size of each group.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    creates: creates::Creates,
    metrics: StoreMetrics,
}

impl PgStore {
    fn new(pool: PgPool) -> Self {
        let metrics = StoreMetrics::default();
        let creates = creates::Creates::start(pool.clone(), metrics.clone());
        Self {
            pool,
            creates,
            metrics,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Waits for a connection of `pool`, observed in `metrics`.
async fn timed_acquire(pool: &PgPool, metrics: &StoreMetrics) -> Result<PoolConnection<Postgres>> {
    let started = std::time::Instant::now();
    let conn = pool.acquire().await;
    metrics
        .acquire_seconds
        .observe(started.elapsed().as_secs_f64());
    conn
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
            Store::Postgres(pg) => Conn::Postgres(timed_acquire(&pg.pool, &pg.metrics).await?),
            Store::Sqlite(pool) => Conn::Sqlite(pool.acquire().await?),
        })
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a
    /// transaction that reads before it writes never fails to upgrade its lock.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Store::Postgres(pg) => {
                // Timed with its BEGIN: sqlx opens a pooled transaction in one call.
                let started = std::time::Instant::now();
                let tx = pg.pool.begin().await;
                pg.metrics
                    .acquire_seconds
                    .observe(started.elapsed().as_secs_f64());
                Tx::Postgres(tx?)
            }
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Writes a new token's record with its `created` audit event, atomically, and returns the
    /// record as stored. On PostgreSQL concurrent creations share one statement and one commit
    /// ([`creates`]); each is answered only after its row is committed. (Inside a transaction,
    /// [`Queries::insert_token`] writes the same, alone.)
    pub async fn create_token(&self, record: TokenRecord, actor: Actor) -> Result<TokenRecord> {
        match self {
            Store::Postgres(pg) => pg.creates.insert(record, actor).await,
            Store::Sqlite(pool) => pool.acquire().await?.insert_token(&record, &actor).await,
        }
    }

    /// Revocations committed from now on, by any replica: LISTEN/NOTIFY on PostgreSQL. `None` on
    /// the embedded store, which has no notifications (its readers check the row instead).
    pub async fn revocation_feed(&self) -> Option<Result<RevocationFeed>> {
        match self {
            Store::Postgres(pg) => Some(RevocationFeed::connect(&pg.pool).await),
            Store::Sqlite(_) => None,
        }
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        match self {
            Store::Postgres(pg) => sqlx::query("select 1").execute(&pg.pool).await.map(|_| ()),
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
            Store::Postgres(pg) => pg.pool.close().await,
            Store::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Failures that mean the database is away or overloaded, not that the request was wrong: the
/// client may retry (503). Everything else from the database is a 500.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                // FATAL ends the session (a database that refuses connections, a server shutting
                // down); SQLSTATE classes 08 connection, 53 resources, 57 operator, 58 system.
                return matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                    || matches!(pg.code().get(..2), Some("08" | "53" | "57" | "58"));
            }
            // SQLite: another writer held the database past the busy timeout (BUSY, LOCKED).
            matches!(sqlite::primary_code(db.as_ref()), Some(5 | 6))
        }
        _ => false,
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Error::DatabaseUnavailable(e)
        } else {
            Error::Database(e)
        }
    }
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
