//! Status list indices reserved ahead, on PostgreSQL: a creation takes its token's index from
//! here before its row is written, so that the service can sign the JWT while the row is being
//! written instead of after (the index is one of the JWT's claims). The answer still waits for
//! the commit: a JWT leaves the service only once its row and its `created` event are committed.
//!
//! Indices come from the key set's sequence (`status_list_next_index`), [`BLOCK`] at a time, so
//! they are never shared: not between creations, not between replicas. An index reserved and
//! never written (the replica stopped, the insert failed) is a gap: its list shows 0 there and no
//! token ever names it.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::PgPool;

use super::metrics::StoreMetrics;
use super::pool::Pooler;
use super::queries::Result;
use super::statements::{Pg, Statements};
use super::timed_acquire;
use crate::tokens::KeySetName;
use crate::tokens::status_list::StatusRef;

/// Indices fetched per round trip: at 3,000 creations a second, one statement every 40 ms; at
/// most that many left unused per key set when a replica stops (of 2^20 per list).
pub const BLOCK: i32 = 128;

/// The indices this replica holds and has not handed out, per key set, each key set's in the
/// order the sequence gave them.
#[derive(Debug, Default)]
pub struct Reserved {
    free: Mutex<HashMap<KeySetName, Vec<i64>>>,
}

impl Reserved {
    /// The next reserved index of `key_set`, fetching a block first when none is left.
    pub async fn take(
        &self,
        pool: &PgPool,
        pooler: Pooler,
        metrics: &StoreMetrics,
        key_set: KeySetName,
    ) -> Result<Option<StatusRef>> {
        if let Some(n) = self.pop(key_set) {
            return Ok(sequence_ref(n));
        }
        let mut conn = timed_acquire(pool, metrics).await?;
        // A block in one statement; concurrent creations that found none left each fetch their
        // own and keep what they did not use.
        let mut fetched: Vec<i64> = Pg::new(&mut conn, pooler, false)
            .on_one_server(async |pg| {
                sqlx::query_scalar("select status_list_next_index($1) from generate_series(1, $2)")
                    .bind(key_set.as_str())
                    .bind(BLOCK)
                    .persistent(pg.named())
                    .fetch_all(pg.conn())
                    .await
            })
            .await?;
        // Handed out lowest first, as the sequence gave them.
        fetched.sort_unstable_by(|a, b| b.cmp(a));
        let first = fetched.pop();
        if !fetched.is_empty() {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let held = free.entry(key_set).or_default();
            held.extend(fetched);
            held.sort_unstable_by(|a, b| b.cmp(a));
        }
        Ok(first.and_then(sequence_ref))
    }

    fn pop(&self, key_set: KeySetName) -> Option<i64> {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&key_set)?
            .pop()
    }
}

fn sequence_ref(n: i64) -> Option<StatusRef> {
    u64::try_from(n).ok().and_then(StatusRef::from_sequence)
}
