//! Leaked tokens: whoever holds one can revoke it (`POST /revoke`, possession is the authority),
//! and an organization's admin can learn whose a found token is (`POST /identify`). A revocation
//! by possession is a revocation like `DELETE`'s: the token is refused at once on every replica and
//! shows `1` in its status list, with an audit event `revoked` whose actor is the report's kind
//! and whose `details.reason` says why.

use serde_json::json;

use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::keys::verify::{MAX_TOKEN_BYTES, verify_own};
use crate::store::{Queries, Store};
use crate::tokens::{Actor, TokenRecord};

/// Tokens one request of revocation by possession may hold.
pub const MAX_REPORTED: usize = 1000;

/// Who reports a token, and what the audit event and the webhooks say of it.
#[derive(Debug, Clone)]
pub struct Report {
    /// `possession` or `secret_scanning`.
    pub actor_type: &'static str,
    /// `reported` or `leaked`.
    pub reason: &'static str,
    /// Where a scanner found it, and which.
    pub url: Option<String>,
    pub source: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The `(organization, token id)` a text names when it is a valid, unexpired token of this
/// service (signature, issuer and `typ` checked); `None` for anything else, said to no one.
fn stored_token(keys: &Keys, text: &str) -> Option<(String, String)> {
    if text.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let own = verify_own(keys, text.trim()).ok()?;
    if !own.set.has_status_lists() {
        // Contact identification tokens are never stored: nothing to revoke.
        return None;
    }
    Some((
        own.claim_str("org_id")?.to_owned(),
        own.claim_str("token_id")?.to_owned(),
    ))
}

/// Revokes every token of `tokens` that is a stored, unexpired and unrevoked token of this
/// service, and every token made from it (whoever held it may have made some), in one
/// transaction, each with its audit event. Answers, for each revoked token, the position in
/// `tokens` of the token reported and the record; the rest (garbage, another issuer's, expired,
/// revoked already, a duplicate) change nothing.
pub async fn revoke_reported(
    store: &Store,
    keys: &Keys,
    tokens: &[String],
    report: &Report,
) -> Result<Vec<(usize, TokenRecord)>> {
    let mut found: Vec<(usize, String, String)> = tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| stored_token(keys, t).map(|(org, id)| (i, org, id)))
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    // One order for every such transaction: two reports of the same tokens never deadlock.
    found.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
    let mut details = json!({ "reason": report.reason });
    if report.url.is_some() || report.source.is_some() {
        details["leak"] = json!({ "url": report.url, "source": report.source });
    }
    let details = details.to_string();
    let mut revoked = Vec::new();
    let mut tx = store.begin().await?;
    for (i, org, id) in found {
        if let Some((record, true)) = tx.db().revoke_token(&org, &id, None).await? {
            let actor = Actor {
                org_id: org,
                home_org_id: None,
                user_id: String::new(),
                token_id: None,
                source_ip: report.source_ip.clone(),
                user_agent: report.user_agent.clone(),
            };
            tx.db()
                .record_revocation(&record, None, &actor, Some(report.actor_type), &details)
                .await?;
            // Whoever held it may have made tokens with it: they go with it.
            let below = tx
                .db()
                .revoke_descendants(&record.org_id, &record.id)
                .await?;
            for child in below {
                tx.db()
                    .record_revocation(
                        &child,
                        Some(&record.id),
                        &actor,
                        Some(report.actor_type),
                        &details,
                    )
                    .await?;
                revoked.push((i, child));
            }
            revoked.push((i, record));
        }
    }
    tx.commit().await?;
    Ok(revoked)
}

/// The caller's organization's token that `text` is, revoked, suspended or expired alike; the
/// same 404 for anything else (garbage, another issuer's, another organization's).
pub async fn identify(store: &Store, keys: &Keys, org_id: &str, text: &str) -> Result<TokenRecord> {
    let not_found = || {
        Error::NotFound("no token of this organization issued by this service matches".to_owned())
    };
    if text.len() > MAX_TOKEN_BYTES {
        return Err(not_found());
    }
    let own =
        crate::keys::verify::verify_own_any_time(keys, text.trim()).map_err(|_| not_found())?;
    let (Some(org), Some(id)) = (own.claim_str("org_id"), own.claim_str("token_id")) else {
        return Err(not_found());
    };
    if org != org_id {
        return Err(not_found());
    }
    store
        .read_token(org_id, id, None)
        .await?
        .ok_or_else(not_found)
}
