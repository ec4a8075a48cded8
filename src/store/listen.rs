//! The feed of revocations on PostgreSQL: a trigger notifies the `access_tokens_revoked` channel
//! on every revocation and every deleted token row (which counts as revoked), delivered at commit, and each replica listens on its own connection.
//! Notifications sent while the connection is down are lost (LISTEN/NOTIFY keeps no backlog), so a
//! reader reloads what it holds after every (re)connection, once the feed is listening.

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use sqlx::Result;

pub const CHANNEL: &str = "access_tokens_revoked";

/// Ids of tokens revoked from the moment the feed connected, by any replica.
pub struct RevocationFeed {
    listener: PgListener,
}

impl RevocationFeed {
    /// Listens on a connection of its own; revocations committed after this returns are seen.
    pub(super) async fn connect(pool: &PgPool) -> Result<Self> {
        let mut listener = PgListener::connect_with(pool).await?;
        // A lost connection ends the feed instead of reconnecting behind the reader's back: the
        // reader must know, to reload what it missed.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Self { listener })
    }

    /// The next revoked token id; an error once the connection is lost.
    pub async fn next(&mut self) -> Result<String> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(notification.payload().to_owned()),
            None => Err(sqlx::Error::Protocol(
                "the listening connection was lost".into(),
            )),
        }
    }
}
