//! Federated credentials (the trust rules under which a workload's OIDC token is exchanged for an
//! assume token) and the `jti`s of the workload tokens exchanged.

use super::*;

/// This aggregate's [`Queries`](super::Queries) methods, the same SQL on both stores.
macro_rules! federation_queries {
    () => {
        async fn insert_federated_credential(
            &mut self,
            c: &$crate::queries::FederatedCredentialRow,
        ) -> Result<()> {
            sqlx::query(
                "insert into federated_credentials (id, org_id, name, issuer, audience, subject,
                     claims, assignments, read_only, anonymize, created_by, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&c.id)
            .bind(&c.org_id)
            .bind(&c.name)
            .bind(&c.issuer)
            .bind(&c.audience)
            .bind(&c.subject)
            .bind(&c.claims)
            .bind(TextList::of(&c.assignments.0))
            .bind(c.read_only)
            .bind(c.anonymize)
            .bind(&c.created_by)
            .bind(c.created_at)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
        async fn federated_credentials(
            &mut self,
            org_id: &str,
            after: Option<(Timestamp, &str)>,
            limit: i64,
        ) -> Result<Vec<$crate::queries::FederatedCredentialRow>> {
            let (time, id) = after.unzip();
            sqlx::query_as(concat!(
                "select ",
                $crate::queries::credential_columns!(),
                " from federated_credentials
                 where org_id = $1 and ($2 is null or (created_at, id) < ($2, $3))
                 order by created_at desc, id desc
                 limit $4"
            ))
            .bind(org_id)
            .bind(time)
            .bind(id)
            .bind(limit)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn federated_credential(
            &mut self,
            org_id: &str,
            id: &str,
        ) -> Result<Option<$crate::queries::FederatedCredentialRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::queries::credential_columns!(),
                " from federated_credentials
                 where org_id = $1 and id = $2"
            ))
            .bind(org_id)
            .bind(id)
            .persistent(self.named())
            .fetch_optional(self.conn())
            .await
        }
        async fn delete_federated_credential(&mut self, org_id: &str, id: &str) -> Result<bool> {
            sqlx::query("delete from federated_credentials where org_id = $1 and id = $2")
                .bind(org_id)
                .bind(id)
                .persistent(self.named())
                .execute(self.conn())
                .await
                .map(|done| done.rows_affected() > 0)
        }
        async fn credentials_of_issuer(
            &mut self,
            issuer: &str,
        ) -> Result<Vec<$crate::queries::FederatedCredentialRow>> {
            sqlx::query_as(concat!(
                "select ",
                $crate::queries::credential_columns!(),
                " from federated_credentials
                 where issuer = $1 order by org_id, id limit 1000"
            ))
            .bind(issuer)
            .persistent(self.named())
            .fetch_all(self.conn())
            .await
        }
        async fn remember_jti(
            &mut self,
            issuer: &str,
            jti: &str,
            expires_at: Timestamp,
        ) -> Result<bool> {
            sqlx::query(
                "insert into federation_replays (issuer, jti, expires_at) values ($1, $2, $3)
                 on conflict (issuer, jti) do nothing",
            )
            .bind(issuer)
            .bind(jti)
            .bind(expires_at)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|done| done.rows_affected() == 1)
        }
        async fn forget_expired_jtis(&mut self, now: Timestamp) -> Result<u64> {
            sqlx::query("delete from federation_replays where expires_at < $1")
                .bind(now)
                .persistent(self.named())
                .execute(self.conn())
                .await
                .map(|done| done.rows_affected())
        }
        async fn set_creation_details(&mut self, token_id: &str, details: &str) -> Result<()> {
            sqlx::query(
                "update audit_events set details = $2
                 where token_id = $1 and action = 'created' and details is null",
            )
            .bind(token_id)
            .bind(details)
            .persistent(self.named())
            .execute(self.conn())
            .await
            .map(|_| ())
        }
    };
}
pub(crate) use federation_queries;

/// The columns of a federated credential, in [`FederatedCredentialRow`] order.
macro_rules! credential_columns {
    () => {
        "id, org_id, name, issuer, audience, subject, claims, assignments, read_only, anonymize, \
         created_by, created_at"
    };
}
pub(crate) use credential_columns;

/// A federated credential as stored: `claims` is a JSON object of claim name to exact value.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FederatedCredentialRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    pub subject: Option<String>,
    pub claims: Option<String>,
    pub assignments: TextList,
    pub read_only: bool,
    pub anonymize: bool,
    pub created_by: String,
    pub created_at: Timestamp,
}
