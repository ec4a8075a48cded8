//! Which of the databases' errors mean "unavailable": the client may retry (503).

use sqlx::postgres::{PgDatabaseError, PgSeverity};

use super::sqlite;

/// Failures that mean the database is away or overloaded, not that the request was wrong: the
/// client may retry (503). Everything else from the database is a 500.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    if connection_closed(e) {
        return true;
    }
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                // SQLSTATE classes 53 resources, 57 operator, 58 system.
                return matches!(pg.code().get(..2), Some("53" | "57" | "58"));
            }
            // SQLite: another writer held the database past the busy timeout (BUSY, LOCKED).
            matches!(sqlite::primary_code(db.as_ref()), Some(5 | 6))
        }
        _ => false,
    }
}

/// Whether `error` says that the connection itself is gone (the server restarted or ended the
/// session, the network failed), as the pool's test of a connection before handing it out would
/// have found, rather than that a statement failed on a live one: I/O, FATAL (which ends the
/// session: a database that refuses connections, a server shutting down), or SQLSTATE class 08
/// (connection exception).
pub(crate) fn connection_closed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.try_downcast_ref::<PgDatabaseError>().is_some_and(|pg| {
            matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                || pg.code().starts_with("08")
        }),
        _ => false,
    }
}
