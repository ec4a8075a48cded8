//! How the stores' pools are opened: who opens them (the service or an operator command), how long
//! a request waits for a connection, and why opening failed.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// How long a request waits for a free connection before it answers 503 instead of hanging.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Operator commands wait longer than requests: nobody is queueing behind them.
pub(super) const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The service's pool on PostgreSQL. Connections open lazily: a database that is away later is
/// reported by the query that needs it (503), not by a hang.
pub(super) fn pg_pool(options: PgConnectOptions, purpose: Purpose) -> PgPool {
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
