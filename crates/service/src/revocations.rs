//! Which stored tokens are refused (revoked, or suspended until resumed), held in memory so that
//! checking a caller or introspecting a token needs no database round trip.
//!
//! Each replica loads the ids of revoked and suspended unexpired tokens and then follows the store's
//! feed of changes ([`RevocationFeed`]: LISTEN/NOTIFY on PostgreSQL, delivered at commit, in commit
//! order, so that after the last notification the set says what the rows say). A revocation answered by any replica reaches the others within milliseconds: the
//! bound is the notification's delivery, far under one second. The replica that revokes updates its
//! own set before it answers. A token whose row was deleted counts as revoked: the feed announces
//! the deletion and the reload reads its tombstone, so it stays refused after a restart too.
//!
//! While the listening connection is down the set may be stale, so it is not trusted: checks fall
//! back to reading the row (`Queries::refusal`) until the listener is back and has
//! reloaded the whole set (notifications sent in between are lost by design of LISTEN/NOTIFY).
//!
//! The embedded store has no notifications to follow, so its set is never current: every check
//! reads the row, which for an in-process SQLite file costs microseconds and stays right even
//! when another process changed the file.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::metrics::RevocationMetrics;
use crate::store::{Change, Queries, RevocationFeed, Store};
use crate::tokens::Refused;

/// Wait between attempts to re-establish the feed.
const RETRY: Duration = Duration::from_secs(1);

pub struct Revocations {
    store: Store,
    refused: RwLock<HashMap<String, Refused>>,
    /// True while the set is complete and the feed is connected.
    current: AtomicBool,
    metrics: RevocationMetrics,
}

impl Revocations {
    pub fn new(store: Store, metrics: RevocationMetrics) -> Self {
        Self {
            store,
            refused: RwLock::default(),
            current: AtomicBool::new(false),
            metrics,
        }
    }

    /// Marks the set current (the feed connected and the set loaded) or stale.
    fn set_current(&self, current: bool) {
        self.current.store(current, Ordering::Release);
        self.metrics.listener_up.set(i64::from(current));
    }

    /// Whether the store has a feed of revocations and it is down (or not yet connected): then
    /// other replicas' changes are announced to no one here, and whatever follows them (the
    /// caller checks, the status lists) must read the rows.
    pub fn feed_down(&self) -> bool {
        self.store.has_revocation_feed() && !self.current.load(Ordering::Acquire)
    }

    /// Why the token is refused, or `None` when it is usable: from memory when the set is
    /// current, else from its row.
    pub async fn refusal(&self, org_id: &str, token_id: &str) -> Result<Option<Refused>, Error> {
        if self.current.load(Ordering::Acquire) {
            let refused = match self.refused.read() {
                Ok(set) => set.get(token_id).copied(),
                Err(poisoned) => poisoned.into_inner().get(token_id).copied(),
            };
            return Ok(refused);
        }
        let mut conn = self.store.acquire().await?;
        Ok(conn.db().refusal(org_id, token_id).await?)
    }

    /// Applies a change to the set: this replica's (through the service's fan-out) or the
    /// feed's.
    pub fn change(&self, change: Change) {
        let mut set = match self.refused.write() {
            Ok(set) => set,
            Err(poisoned) => poisoned.into_inner(),
        };
        match change {
            // A revocation is for good: a later suspension notice cannot weaken it.
            Change::Refused(id, Refused::Suspended) => {
                set.entry(id).or_insert(Refused::Suspended);
            }
            Change::Refused(id, Refused::Revoked) => {
                set.insert(id, Refused::Revoked);
            }
            Change::Resumed(id) => {
                if set.get(&id) == Some(&Refused::Suspended) {
                    set.remove(&id);
                }
            }
        }
    }

    async fn reload(&self) -> Result<usize, sqlx::Error> {
        let refused = self.store.acquire().await?.db().refused_unexpired().await?;
        let count = refused.len();
        let set: HashMap<String, Refused> = refused.into_iter().collect();
        match self.refused.write() {
            Ok(mut slot) => *slot = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(count)
    }

    /// Follows revocations until the task is dropped: connect the feed, load the whole set, apply
    /// each revocation; on a lost connection, mark the set stale and start over. A store without a
    /// feed (the embedded one) returns at once, and the set stays unused. `on_change` is called
    /// with the token after each change the feed announces, and with `None` after each reload
    /// (what the status lists follow).
    pub async fn follow(&self, on_change: impl Fn(Option<&str>)) {
        loop {
            self.set_current(false);
            let Some(feed) = self.store.revocation_feed().await else {
                return;
            };
            if let Err(error) = self.apply(feed, &on_change).await {
                tracing::warn!(%error, "revocation listener lost its connection; checking rows until it is back");
            }
            self.set_current(false);
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn apply(
        &self,
        feed: sqlx::Result<RevocationFeed>,
        on_change: &impl Fn(Option<&str>),
    ) -> Result<(), sqlx::Error> {
        let mut feed = feed?;
        // Loaded once the feed listens, so that no revocation falls between the two.
        let count = self.reload().await?;
        self.set_current(true);
        // Changes missed while the feed was down reach the status lists too.
        on_change(None);
        tracing::debug!(refused = count, "revocation set loaded");
        loop {
            let change = feed.next().await?;
            self.metrics.notifications.inc();
            let id = match &change {
                Change::Refused(id, _) | Change::Resumed(id) => id.clone(),
            };
            self.change(change);
            on_change(Some(&id));
        }
    }
}
