//! How a store's connections run their statements ([`Statements`]): on which connection, and
//! whether a statement may stay prepared on it. SQLite's and a direct PostgreSQL connection's may
//! (sqlx's statement cache); behind a transaction pooler they may not ([`Pg`]).

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, PgConnection, Postgres, Result, Transaction};

use super::pool::Pooler;

/// Where a store's queries run, and whether their statements may stay prepared on the connection
/// for the next use: on SQLite and on a direct PostgreSQL connection they may (sqlx's statement
/// cache); behind a transaction pooler they may not (see [`super::pool::Pooler`]).
pub trait Statements {
    type Connection;
    fn conn(&mut self) -> &mut Self::Connection;
    /// Named statements, prepared once per connection and cached (sqlx's `persistent`).
    fn named(&self) -> bool;
}

impl Statements for SqliteConnection {
    type Connection = SqliteConnection;
    fn conn(&mut self) -> &mut SqliteConnection {
        self
    }
    fn named(&self) -> bool {
        true
    }
}

/// A PostgreSQL connection as the store uses it: directly, or behind a transaction pooler
/// (PgBouncer's `pool_mode = transaction`), where the server connection may change after every
/// transaction. There, statements are unnamed (sqlx's `persistent(false)`: nothing stays prepared
/// on a server connection another client gets next), and a call outside a transaction runs in one
/// of its own, since sqlx parses a statement and binds it in two exchanges, each ending with a
/// Sync after which the pooler may hand the server connection to someone else.
pub struct Pg<'c> {
    conn: &'c mut PgConnection,
    pooler: Pooler,
    in_transaction: bool,
}

impl<'c> Pg<'c> {
    pub(super) fn new(conn: &'c mut PgConnection, pooler: Pooler, in_transaction: bool) -> Self {
        Self {
            conn,
            pooler,
            in_transaction,
        }
    }

    /// Whether each call must be a transaction of its own (behind a pooler, outside one).
    fn needs_transaction(&self) -> bool {
        self.pooler == Pooler::Transaction && !self.in_transaction
    }

    async fn begin(&mut self) -> Result<PgTx<'_>> {
        Ok(PgTx {
            tx: self.conn.begin().await?,
            pooler: self.pooler,
        })
    }

    /// Runs `statements` on this connection; behind a transaction pooler and outside a
    /// transaction, in a transaction of their own, so that each statement's Parse and Bind reach
    /// the same server.
    pub(super) async fn on_one_server<T>(
        &mut self,
        statements: impl AsyncFnOnce(&mut Pg<'_>) -> Result<T>,
    ) -> Result<T> {
        if !self.needs_transaction() {
            return statements(self).await;
        }
        let mut tx = self.begin().await?;
        let out = statements(&mut tx.pg()).await?;
        tx.commit().await?;
        Ok(out)
    }
}

impl Statements for Pg<'_> {
    type Connection = PgConnection;
    fn conn(&mut self) -> &mut PgConnection {
        self.conn
    }
    fn named(&self) -> bool {
        self.pooler == Pooler::None
    }
}

/// A transaction on a [`Pg`] connection.
pub(super) struct PgTx<'c> {
    tx: Transaction<'c, Postgres>,
    pooler: Pooler,
}

impl PgTx<'_> {
    pub(super) fn pg(&mut self) -> Pg<'_> {
        Pg::new(&mut self.tx, self.pooler, true)
    }

    pub(super) async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }
}
