//! SQL, one module per table family. Query functions take a connection or transaction; every
//! query that reads or changes a token takes the caller's organization in its WHERE clause.

pub mod audit;
pub mod keys;
pub mod tokens;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// How long a request waits for a free connection before it answers 503 instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Operator commands wait longer than requests: nobody is queueing behind them.
const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The service's pool on `options`; connections are opened lazily, so a database that is briefly
/// away at start-up is reported by the first query rather than by a hang here.
pub fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(16)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(options)
}

/// A small pool for operator commands (`migrate`, `keys ...`).
pub fn command_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(COMMAND_ACQUIRE_TIMEOUT)
        .connect_lazy_with(options)
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether the database answers (readiness).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("select 1").execute(pool).await.map(|_| ())
}
