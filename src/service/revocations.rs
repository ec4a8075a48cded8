//! Which stored tokens are revoked, held in memory so that checking a caller or introspecting a
//! token needs no database round trip.
//!
//! Each replica loads the ids of revoked, unexpired tokens and then follows the store's feed of
//! revocations ([`RevocationFeed`]: LISTEN/NOTIFY on PostgreSQL, delivered at commit). A revocation answered by any replica reaches the others within milliseconds: the
//! bound is the notification's delivery, far under one second. The replica that revokes updates its
//! own set before it answers. A token whose row was deleted counts as revoked: the feed announces
//! the deletion and the reload reads its tombstone, so it stays refused after a restart too.
//!
//! While the listening connection is down the set may be stale, so it is not trusted: checks fall
//! back to reading the row (`Queries::is_unrevoked`) until the listener is back and has
//! reloaded the whole set (notifications sent in between are lost by design of LISTEN/NOTIFY).
//!
//! The embedded store has no notifications to follow, so its set is never current: every check
//! reads the row, which for an in-process SQLite file costs microseconds and stays right even
//! when another process changed the file.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::error::Error;
use crate::store::{Queries, RevocationFeed, Store};

/// Wait between attempts to re-establish the feed.
const RETRY: Duration = Duration::from_secs(1);

pub struct Revocations {
    store: Store,
    /// Told of every revocation this replica sees, so that the status lists follow.
    changed: Arc<Notify>,
    revoked: RwLock<HashSet<String>>,
    /// True while the set is complete and the feed is connected.
    current: AtomicBool,
}

impl Revocations {
    pub fn new(store: Store, changed: Arc<Notify>) -> Self {
        Self {
            store,
            changed,
            revoked: RwLock::default(),
            current: AtomicBool::new(false),
        }
    }

    /// Whether the token is unrevoked: from memory when the set is current, else from its row.
    pub async fn is_unrevoked(&self, org_id: &str, token_id: &str) -> Result<bool, Error> {
        if self.current.load(Ordering::Acquire) {
            let revoked = match self.revoked.read() {
                Ok(set) => set.contains(token_id),
                Err(poisoned) => poisoned.into_inner().contains(token_id),
            };
            return Ok(!revoked);
        }
        let mut conn = self.store.acquire().await?;
        Ok(conn.db().is_unrevoked(org_id, token_id).await?)
    }

    /// Records a revocation this replica just committed (or the feed announced).
    pub fn insert(&self, token_id: &str) {
        match self.revoked.write() {
            Ok(mut set) => set.insert(token_id.to_owned()),
            Err(poisoned) => poisoned.into_inner().insert(token_id.to_owned()),
        };
        self.changed.notify_one();
    }

    async fn reload(&self) -> Result<usize, sqlx::Error> {
        let ids = self.store.acquire().await?.db().revoked_unexpired().await?;
        let count = ids.len();
        let set: HashSet<String> = ids.into_iter().collect();
        match self.revoked.write() {
            Ok(mut slot) => *slot = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(count)
    }

    /// Follows revocations until the task is dropped: connect the feed, load the whole set, apply
    /// each revocation; on a lost connection, mark the set stale and start over. A store without a
    /// feed (the embedded one) returns at once, and the set stays unused.
    pub async fn follow(&self) {
        loop {
            self.current.store(false, Ordering::Release);
            let Some(feed) = self.store.revocation_feed().await else {
                return;
            };
            if let Err(error) = self.apply(feed).await {
                tracing::warn!(%error, "revocation listener lost its connection; checking rows until it is back");
            }
            self.current.store(false, Ordering::Release);
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn apply(&self, feed: sqlx::Result<RevocationFeed>) -> Result<(), sqlx::Error> {
        let mut feed = feed?;
        // Loaded once the feed listens, so that no revocation falls between the two.
        let count = self.reload().await?;
        self.current.store(true, Ordering::Release);
        // Revocations missed while the feed was down reach the status lists too.
        self.changed.notify_one();
        tracing::debug!(revoked = count, "revocation set loaded");
        loop {
            let id = feed.next().await?;
            self.insert(&id);
        }
    }
}
