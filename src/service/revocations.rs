//! Which stored tokens are revoked, held in memory so that checking a caller or introspecting a
//! token needs no database round trip.
//!
//! Each replica loads the ids of revoked, unexpired tokens and then follows the
//! `access_tokens_revoked` channel (LISTEN/NOTIFY; a trigger notifies on every revocation, delivered
//! at commit). A revocation answered by any replica reaches the others within milliseconds: the
//! bound is the notification's delivery, far under one second. The replica that revokes updates its
//! own set before it answers.
//!
//! While the listening connection is down the set may be stale, so it is not trusted: checks fall
//! back to reading the row (`store::tokens::is_unrevoked`) until the listener is back and has
//! reloaded the whole set (notifications sent in between are lost by design of LISTEN/NOTIFY).
//!
//! The embedded store has no notifications to follow, so its set is never current: every check
//! reads the row, which for an in-process SQLite file costs microseconds and stays right even
//! when another process changed the file.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::store::{Queries, Store};

pub const CHANNEL: &str = "access_tokens_revoked";
/// Wait between attempts to re-establish the listening connection.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Revocations {
    revoked: RwLock<HashSet<String>>,
    /// True while the set is complete and the listener is connected.
    current: AtomicBool,
}

impl Revocations {
    /// Whether the token is unrevoked: from memory when the set is current, else from its row.
    pub async fn is_unrevoked(
        &self,
        store: &Store,
        org_id: &str,
        token_id: &str,
    ) -> Result<bool, sqlx::Error> {
        if self.current.load(Ordering::Acquire) {
            let revoked = match self.revoked.read() {
                Ok(set) => set.contains(token_id),
                Err(poisoned) => poisoned.into_inner().contains(token_id),
            };
            return Ok(!revoked);
        }
        store
            .acquire()
            .await?
            .db()
            .is_unrevoked(org_id, token_id)
            .await
    }

    /// Records a revocation this replica just committed.
    pub fn insert(&self, token_id: &str) {
        match self.revoked.write() {
            Ok(mut set) => set.insert(token_id.to_owned()),
            Err(poisoned) => poisoned.into_inner().insert(token_id.to_owned()),
        };
    }

    async fn reload(&self, store: &Store) -> Result<usize, sqlx::Error> {
        let ids = store.acquire().await?.db().revoked_unexpired().await?;
        let count = ids.len();
        let set: HashSet<String> = ids.into_iter().collect();
        match self.revoked.write() {
            Ok(mut slot) => *slot = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(count)
    }

    /// Follows revocations until the task is dropped: listen, load the whole set, apply each
    /// notification; on a lost connection, mark the set stale and start over. On the embedded
    /// store there is nothing to follow: it returns at once, and the set stays unused.
    pub async fn follow(&self, store: Store) {
        let Store::Postgres(pg) = &store else {
            return;
        };
        let pool = pg.pool();
        loop {
            self.current.store(false, Ordering::Release);
            if let Err(error) = self.listen_once(&store, pool).await {
                tracing::warn!(%error, "revocation listener lost its connection; checking rows until it is back");
            }
            self.current.store(false, Ordering::Release);
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn listen_once(&self, store: &Store, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        // Loaded after LISTEN, so that no revocation falls between the two.
        let count = self.reload(store).await?;
        self.current.store(true, Ordering::Release);
        tracing::debug!(revoked = count, "revocation set loaded");
        while let Some(notification) = listener.try_recv().await? {
            self.insert(notification.payload());
        }
        Err(sqlx::Error::Protocol(
            "the listening connection was lost".into(),
        ))
    }
}
