//! The read standby (`DATABASE_READ_URL`): a streaming replica of the primary that serves the reads
//! which need no lock (token lists and gets, audit events, the policy as read by `GET`), so that
//! their scans and rows cost the standby instead of the primary.
//!
//! Read-your-writes: before a read, the primary is asked for its WAL position
//! (`pg_current_wal_lsn()`, one tiny statement), and the standby serves the read only once it has
//! replayed up to there (`pg_last_wal_replay_lsn()`), waiting at most [`REPLAY_WAIT`]. Every write
//! acknowledged before the read began, by this replica or any other, is below that position, so the
//! read sees it; a caller that creates a token and lists right after finds it, whichever replica
//! answers either request. A standby further behind than that, failing or away: the primary
//! serves the read, and after a failure the standby rests for [`AWAY_FOR`] before it is tried
//! again. No read fails because of the standby.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Row};

use super::errors::is_unavailable;
use super::pool::Pooler;
use super::queries::Result;

/// How long a read waits for the standby to replay up to the primary's position before the
/// primary serves it. Streaming replay is milliseconds behind when the standby keeps up.
pub const REPLAY_WAIT: Duration = Duration::from_millis(500);
/// After the standby failed a read, reads go to the primary this long before it is tried again,
/// so that a standby that is down costs one failed attempt per interval, not one per read.
pub const AWAY_FOR: Duration = Duration::from_secs(5);
/// How often a read that waits for replay asks the standby again.
const REPLAY_POLL: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub(super) struct Standby {
    pool: PgPool,
    /// Whether a pooler stands in front of it, as in front of the primary (`DATABASE_POOLER`).
    pub(super) pooler: Pooler,
    away_until: Mutex<Option<Instant>>,
}

impl Standby {
    pub(super) fn new(pool: PgPool, pooler: Pooler) -> Self {
        Self {
            pool,
            pooler,
            away_until: Mutex::new(None),
        }
    }

    /// A connection to the standby once it has replayed what the primary had written when this
    /// was called. `None`: the primary must serve the read (the standby is resting, lagging or
    /// failing); an error only when the primary did not answer for its position.
    pub(super) async fn caught_up(
        &self,
        primary: &PgPool,
    ) -> Result<Option<PoolConnection<Postgres>>> {
        if self.resting() {
            return Ok(None);
        }
        let position = primary_position(primary).await?;
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                self.failed(&e);
                return Ok(None);
            }
        };
        match replayed(&mut conn, &position).await {
            Ok(true) => Ok(Some(conn)),
            Ok(false) => {
                tracing::debug!(%position, "the read standby is behind the primary; the primary serves the read");
                Ok(None)
            }
            Err(e) => {
                self.failed(&e);
                Ok(None)
            }
        }
    }

    fn resting(&self) -> bool {
        self.away_until
            .lock()
            .map(|until| until.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    /// A failed read: the primary serves it. A standby that is away rests for [`AWAY_FOR`]; any
    /// other error (a query cancelled by a conflict with recovery, say) concerns this read only.
    pub(super) fn failed(&self, error: &sqlx::Error) {
        if is_unavailable(error) {
            tracing::warn!(%error, rest_seconds = AWAY_FOR.as_secs(), "the read standby does not answer; the primary serves reads meanwhile");
            if let Ok(mut until) = self.away_until.lock() {
                *until = Some(Instant::now() + AWAY_FOR);
            }
        } else {
            tracing::warn!(%error, "a read failed on the standby; the primary serves it");
        }
    }

    pub(super) async fn close(&self) {
        self.pool.close().await;
    }
}

/// The primary's WAL write position, as PostgreSQL prints it (`16/B374D848`). Every transaction
/// committed (and acknowledged) before this call ends below it. A simple-protocol statement: safe
/// behind any pooler.
async fn primary_position(primary: &PgPool) -> Result<String> {
    let row = sqlx::raw_sql("select pg_current_wal_lsn()::text")
        .fetch_one(primary)
        .await?;
    let position: String = row.try_get(0)?;
    if position.is_empty() || !position.chars().all(|c| c.is_ascii_hexdigit() || c == '/') {
        return Err(sqlx::Error::Protocol(format!(
            "the primary's WAL position {position:?} is not an LSN"
        )));
    }
    Ok(position)
}

/// Whether the standby has replayed up to `position` (a checked LSN), asking again until
/// [`REPLAY_WAIT`] has passed. A server that is not in recovery is a primary: it has everything.
async fn replayed(conn: &mut sqlx::PgConnection, position: &str) -> Result<bool> {
    let sql = format!(
        "select case when pg_is_in_recovery()
             then coalesce(pg_last_wal_replay_lsn() >= '{position}'::pg_lsn, false)
             else true end"
    );
    let deadline = Instant::now() + REPLAY_WAIT;
    loop {
        let row = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&mut *conn)
            .await?;
        if row.try_get::<bool, _>(0)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(REPLAY_POLL).await;
    }
}
