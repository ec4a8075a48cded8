//! Token introspection (RFC 7662) for verifiers that must see revocations. Clients authenticate
//! with HTTP Basic against `INTROSPECTION_CLIENTS`; a token not currently valid (bad signature,
//! unknown or revoked key, expired, revoked, malformed) is inactive, and an active one answers
//! with its claims.
//!
//! Failed client authentications are counted per address (with failed caller authentications, in
//! the same limit) and per configured client id; once either is used up, the client is refused
//! before any secret is compared.

use serde_json::{Map, Value};

use crate::Service;
use crate::config::{IntrospectionClient, sha256};
use crate::error::{Error, Result};
use crate::keys::verify::verify_own;
use crate::metrics::Introspection;
use crate::tokens::TokenType;

/// Proof that an introspection client authenticated: [`Service::introspect`] takes one, and only
/// [`Service::authenticate_introspection_client`] makes it.
#[derive(Debug)]
pub struct IntrospectionClientAuthenticated(());

impl Service {
    /// HTTP Basic's client id and secret (`None` when none were sent) against the configured
    /// clients, within the failed-authentication limits of the client's address and of the
    /// client id it names.
    pub fn authenticate_introspection_client(
        &self,
        address: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Result<IntrospectionClientAuthenticated> {
        self.check_introspection_client(address, credentials)
            .inspect_err(|_| self.metrics.introspection(Introspection::ClientRefused))?;
        Ok(IntrospectionClientAuthenticated(()))
    }

    fn check_introspection_client(
        &self,
        address: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Result<()> {
        let limits = &self.rate_limits;
        if let Some(address) = address {
            limits.check_address(address)?;
        }
        let clients = &self.settings.introspection_clients;
        // Only configured ids are counted per client: made-up ids have no secret to guess, and
        // counting them would let anyone fill the limiter.
        let known_id = credentials
            .and_then(|(id, _)| clients.iter().find(|client| client.id == id))
            .map(|client| client.id.as_str());
        if let Some(id) = known_id {
            limits.check_introspection_client(id)?;
        }
        if let Some((id, secret)) = credentials
            && is_client(clients, id, secret)
        {
            return Ok(());
        }
        if let Some(address) = address {
            limits.failed_authentication(address);
        }
        if let Some(id) = known_id {
            limits.failed_introspection_client(id);
        }
        Err(Error::ClientUnauthorized(if clients.is_empty() {
            "introspection is off: no client is configured (INTROSPECTION_CLIENTS)"
        } else if credentials.is_none() {
            "client credentials (HTTP Basic) are required"
        } else {
            "unknown client id or wrong secret"
        }))
    }

    /// The claims of `token` when it is a currently valid token of this service, else `None`.
    /// Fails closed: when the revocation set is stale and the database does not answer, the
    /// answer is an error, never a wrong `active`.
    pub async fn introspect(
        &self,
        _client: &IntrospectionClientAuthenticated,
        token: &str,
    ) -> Result<Option<Map<String, Value>>> {
        let claims = self.evaluate(token).await?;
        self.metrics.introspection(if claims.is_some() {
            Introspection::Active
        } else {
            Introspection::Inactive
        });
        Ok(claims)
    }

    async fn evaluate(&self, token: &str) -> Result<Option<Map<String, Value>>> {
        let keys = self.keys.current();
        let Ok(own) = verify_own(&keys, token) else {
            return Ok(None);
        };
        let Some(token_type) = own
            .claim_str("token_type")
            .and_then(|t| t.parse::<TokenType>().ok())
        else {
            return Ok(None);
        };
        if token_type.key_set() != own.set {
            return Ok(None);
        }
        if token_type.is_stored() {
            let (Some(org_id), Some(token_id)) =
                (own.claim_str("org_id"), own.claim_str("token_id"))
            else {
                return Ok(None);
            };
            if self.revocations.refusal(org_id, token_id).await?.is_some() {
                return Ok(None);
            }
            self.usage.mark(token_id);
        }
        Ok(Some(own.claims))
    }
}

/// Whether `id` and `secret` are a configured client's; secrets are compared as SHA-256 digests
/// in constant time.
fn is_client(clients: &[IntrospectionClient], id: &str, secret: &str) -> bool {
    let given = sha256(secret.as_bytes());
    clients.iter().any(|client| {
        let same_secret =
            aws_lc_rs::constant_time::verify_slices_are_equal(&client.secret_sha256, &given)
                .is_ok();
        same_secret && client.id == id
    })
}
