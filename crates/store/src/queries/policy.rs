//! An organization's policy: reading it, locking it for a change, writing it and its event.

/// This aggregate's [`Queries`](super::Queries) methods whose SQL reads the same on both stores,
/// expanded in each store's `impl Queries` by `portable_queries!`:
/// `for_update` is the store's row lock clause, `id_in_list` its "`id` is one of the list in
/// `$1`".
macro_rules! policy_queries {
    (for_update: $for_update:literal, id_in_list: $id_in_list:literal) => {
        async fn get_policy(&mut self, org_id: &str) -> Result<Option<StoredPolicy>> {
            sqlx::query_as("select policy, version from org_policies where org_id = $1")
                .bind(org_id)
                .persistent(self.named()).fetch_optional(self.conn())
                .await
        }
        async fn lock_policy(
            &mut self,
            org_id: &str,
            default_policy: &str,
            updated_by: &str,
        ) -> Result<String> {
            // A missing row is written first, so that concurrent first changes of an
            // organization's policy queue on the row lock like later ones; a transaction that
            // changes nothing rolls it back.
            sqlx::query(
                "insert into org_policies (org_id, policy, updated_at, updated_by)
                 values ($1, $2, $3, $4)
                 on conflict (org_id) do nothing",
            )
            .bind(org_id)
            .bind(default_policy)
            .bind(Timestamp::now())
            .bind(updated_by)
            .persistent(self.named()).execute(self.conn())
            .await?;
            sqlx::query_scalar(concat!(
                "select policy from org_policies where org_id = $1",
                $for_update
            ))
            .bind(org_id)
            .persistent(self.named()).fetch_one(self.conn())
            .await
        }
        async fn update_policy(
            &mut self,
            org_id: &str,
            policy: &str,
            updated_by: &str,
        ) -> Result<i64> {
            sqlx::query_scalar(
                "update org_policies set policy = $2, updated_at = $3, updated_by = $4,
                     version = version + 1
                 where org_id = $1
                 returning version",
            )
            .bind(org_id)
            .bind(policy)
            .bind(Timestamp::now())
            .bind(updated_by)
            .persistent(self.named()).fetch_one(self.conn())
            .await
        }
        async fn record_org_event(
            &mut self,
            org_id: &str,
            action: &str,
            details: &str,
            actor: &Actor,
        ) -> Result<()> {
            // About no token: no token id, type or owner (so only admins list it).
            sqlx::query(
                "insert into audit_events (org_id, occurred_at, action, details, actor_org_id,
                     actor_home_org_id, actor_user_id, actor_token_id, source_ip, user_agent)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(org_id)
            .bind(Timestamp::now())
            .bind(action)
            .bind(details)
            .bind(&actor.org_id)
            .bind(&actor.home_org_id)
            .bind(&actor.user_id)
            .bind(&actor.token_id)
            .bind(&actor.source_ip)
            .bind(&actor.user_agent)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
    };
}
pub(crate) use policy_queries;

/// An organization's policy as stored: its JSON (see `tokens::policy`) and its version, raised
/// by every change. An organization that never set one has the default policy, version
/// [`NO_POLICY_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredPolicy {
    pub policy: String,
    pub version: i64,
}

/// The version of an organization without a stored policy.
pub const NO_POLICY_VERSION: i64 = 0;
