//! The feed of revocations on PostgreSQL: triggers notify the `access_tokens_revoked` channel on
//! every revocation, every deleted token row (which counts as revoked), every suspension and every
//! resumption, delivered at commit in commit order, and each replica listens on its own connection.
//! Notifications sent while the connection is down are lost (LISTEN/NOTIFY keeps no backlog), so a
//! reader reloads what it holds after every (re)connection, once the feed is listening.

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use sqlx::Result;

use crate::tokens::Refused;

pub const CHANNEL: &str = "access_tokens_revoked";

/// One change of a token's standing, as the channel announces it: the payload is the token id
/// (revoked or deleted), `suspended:<id>` or `resumed:<id>`. Token ids hold no `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Refused(String, Refused),
    Resumed(String),
}

impl Change {
    fn parse(payload: &str) -> Self {
        if let Some(id) = payload.strip_prefix("suspended:") {
            Change::Refused(id.to_owned(), Refused::Suspended)
        } else if let Some(id) = payload.strip_prefix("resumed:") {
            Change::Resumed(id.to_owned())
        } else {
            Change::Refused(payload.to_owned(), Refused::Revoked)
        }
    }
}

/// Changes of tokens' standing from the moment the feed connected, by any replica.
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

    /// The next change; an error once the connection is lost.
    pub async fn next(&mut self) -> Result<Change> {
        match self.listener.try_recv().await? {
            Some(notification) => Ok(Change::parse(notification.payload())),
            None => Err(sqlx::Error::Protocol(
                "the listening connection was lost".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_change() {
        let id = "api_5ZugdRXasLfWBypHi93Fk7";
        assert_eq!(
            Change::parse(id),
            Change::Refused(id.to_owned(), Refused::Revoked)
        );
        assert_eq!(
            Change::parse(&format!("suspended:{id}")),
            Change::Refused(id.to_owned(), Refused::Suspended)
        );
        assert_eq!(
            Change::parse(&format!("resumed:{id}")),
            Change::Resumed(id.to_owned())
        );
    }
}
