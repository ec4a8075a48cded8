//! How the stores' pools are opened: who opens them (the service or an operator command), how long
//! a request waits for a connection, which PostgreSQL servers serve what (the pool, perhaps
//! through a transaction pooler; sessions; a read standby), and why opening failed.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// How long a request waits for a free connection before it answers 503 instead of hanging.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Operator commands wait longer than requests: nobody is queueing behind them.
pub(super) const COMMAND_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read waits for a connection to the standby before it is served by the primary:
/// a standby that is down refuses connections, and sqlx retries those until this runs out.
pub(super) const STANDBY_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// What stands between the service's pool and PostgreSQL (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode: a connection is one server session. Statements are
    /// prepared once per connection and cached (sqlx's default).
    #[default]
    None,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): the server session
    /// may change after every transaction. Statements are unnamed and every call runs in a
    /// transaction (see `statements::Pg`); LISTEN and migrations go to `DATABASE_LISTEN_URL`.
    Transaction,
}

impl Pooler {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "session" => Some(Pooler::None),
            "transaction" => Some(Pooler::Transaction),
            _ => None,
        }
    }
}

/// The PostgreSQL servers of the store, as the settings name them.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    /// The service's pool (`DATABASE_URL`): PostgreSQL, or a pooler in front of it.
    pub options: PgConnectOptions,
    /// What needs a session of its own, direct to PostgreSQL (`DATABASE_LISTEN_URL`): the
    /// revocation feed's LISTEN and the migrations (sqlx holds a session advisory lock while it
    /// migrates). `None`: the pool's server.
    pub session: Option<PgConnectOptions>,
    /// A streaming standby for the reads that may be served by one (`DATABASE_READ_URL`).
    pub read: Option<PgConnectOptions>,
    pub pooler: Pooler,
    /// The server cancels any statement of the service's pools (primary and standby) that runs
    /// longer (`statement_timeout`, sent when connecting; it bounds lock waits too). Not sent
    /// behind a transaction pooler, which refuses or drops start-up options: set the pooler's
    /// `query_timeout`, or the role's `statement_timeout`, there. Never on the session pool, where
    /// migrations may run long.
    pub statement_timeout: Option<Duration>,
}

impl PgDatabase {
    /// One server for everything, nothing in between.
    pub fn direct(options: PgConnectOptions) -> Self {
        Self {
            options,
            session: None,
            read: None,
            pooler: Pooler::None,
            statement_timeout: None,
        }
    }

    /// Where sessions go: `session`, else the pool's server.
    pub fn session_options(&self) -> &PgConnectOptions {
        self.session.as_ref().unwrap_or(&self.options)
    }
}

/// Who opens the store: the service (many short requests) or an operator command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Service,
    Command,
}

/// Why the store could not be opened; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// PostgreSQL at DATABASE_URL did not answer, or refused: what happened, and the fix.
    #[error("{0}")]
    Postgres(String),
    #[error("{0}")]
    Sqlite(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The service's pool on PostgreSQL. Connections open lazily: a database that is away later is
/// reported by the query that needs it (503), not by a hang. Behind a transaction pooler no
/// statement is cached, and `extra_float_digits` (which the service never needs) is not sent:
/// PgBouncer refuses start-up parameters it does not know unless told to ignore them.
pub(super) fn pg_pool(
    options: PgConnectOptions,
    pooler: Pooler,
    purpose: Purpose,
    statement_timeout: Option<Duration>,
) -> PgPool {
    let (connections, acquire) = match purpose {
        Purpose::Service => (SERVICE_CONNECTIONS, ACQUIRE_TIMEOUT),
        Purpose::Command => (2, COMMAND_ACQUIRE_TIMEOUT),
    };
    let options = match purpose {
        Purpose::Service => timed(options, pooler, statement_timeout),
        Purpose::Command => options,
    };
    lazy_pool(behind(pooler, options), connections, acquire)
}

/// `options` with the server's `statement_timeout` set, unless behind a transaction pooler.
fn timed(options: PgConnectOptions, pooler: Pooler, timeout: Option<Duration>) -> PgConnectOptions {
    match (pooler, timeout) {
        (Pooler::None, Some(timeout)) => {
            options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))])
        }
        _ => options,
    }
}

/// The pool of what needs a session (LISTEN, migrations): a few connections, direct.
pub(super) fn session_pool(options: PgConnectOptions) -> PgPool {
    lazy_pool(options, 2, COMMAND_ACQUIRE_TIMEOUT)
}

/// The pool on the read standby: as many connections as the primary's, a short wait for one.
pub(super) fn standby_pool(
    options: PgConnectOptions,
    pooler: Pooler,
    statement_timeout: Option<Duration>,
) -> PgPool {
    lazy_pool(
        behind(pooler, timed(options, pooler, statement_timeout)),
        SERVICE_CONNECTIONS,
        STANDBY_ACQUIRE_TIMEOUT,
    )
}

/// The service's connections to the primary, and as many to the standby.
const SERVICE_CONNECTIONS: u32 = 16;

/// A pool that opens its connections when they are first needed, at most `connections`, and
/// gives up waiting for one after `acquire`.
fn lazy_pool(options: PgConnectOptions, connections: u32, acquire: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(0)
        .acquire_timeout(acquire)
        .connect_lazy_with(options)
}

fn behind(pooler: Pooler, options: PgConnectOptions) -> PgConnectOptions {
    match pooler {
        Pooler::None => options,
        Pooler::Transaction => options
            .statement_cache_capacity(0)
            .extra_float_digits(None::<i8>),
    }
}

/// Why PostgreSQL at `options` did not answer the pool's first query (`error`), said as an
/// operator can act on it: the pool reports only "timed out" for a refused connection, so one
/// connection is made directly to learn what happened.
pub(super) async fn diagnose(options: &PgConnectOptions, error: sqlx::Error) -> OpenError {
    use sqlx::ConnectOptions;
    let host = format!("{}:{}", options.get_host(), options.get_port());
    let database = options.get_database().unwrap_or("postgres").to_owned();
    let user = options.get_username().to_owned();
    let direct = tokio::time::timeout(COMMAND_ACQUIRE_TIMEOUT, options.connect()).await;
    let cause = match direct {
        Ok(Ok(_connection)) => error,
        Ok(Err(direct)) => direct,
        Err(_) => {
            return OpenError::Postgres(format!(
                "PostgreSQL at DATABASE_URL ({host}) did not answer within {} s: check the host, the port and the network between",
                COMMAND_ACQUIRE_TIMEOUT.as_secs()
            ));
        }
    };
    OpenError::Postgres(explain(&cause, &host, &database, &user))
}

/// The sentence for a failed connection to `host`.
fn explain(error: &sqlx::Error, host: &str, database: &str, user: &str) -> String {
    match error {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "PostgreSQL at DATABASE_URL ({host}) refused the connection: nothing listens there; start PostgreSQL, or fix the host and port of DATABASE_URL"
        ),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("3D000") => format!(
                "the database {database:?} does not exist on PostgreSQL at {host}: create it (psql -h {} -p {} -U {user} -d postgres -c 'create database \"{database}\"'), or name an existing one in DATABASE_URL",
                host.rsplit_once(':').map_or(host, |(h, _)| h),
                host.rsplit_once(':').map_or("5432", |(_, p)| p),
            ),
            Some("28P01" | "28000") => format!(
                "PostgreSQL at {host} refused user {user:?}: check the user and password in DATABASE_URL, and pg_hba.conf"
            ),
            _ => format!(
                "PostgreSQL at DATABASE_URL ({host}) answered: {}",
                db.message()
            ),
        },
        other => format!("cannot reach PostgreSQL at DATABASE_URL ({host}): {other}"),
    }
}
